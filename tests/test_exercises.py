"""Exercises: a right answer passes, typical wrong answers get the matching hint, nothing raises in student mode."""

import numpy as np
import pytest

from cnnwidgets import exercises, io
from cnnwidgets.exercises import Checker, checks, list_exercises
from cnnwidgets.index import ImageIndex


class Widget:
    """A widget answer, built when the test runs: ``Widget(build, **traits)``."""

    def __init__(self, build, **traits):
        self.build, self.traits = build, traits

    def __call__(self):
        w = self.build()
        for name, value in self.traits.items():
            setattr(w, name, value)
        return w


def _fd():
    from cnnwidgets import FilterDesigner, sample

    return FilterDesigner(sample("camera"), noise="gaussian", noise_amount=0.1)


def _ts():
    from cnnwidgets import ThresholdSegmenter, sample

    return ThresholdSegmenter(sample("coins"), method="fixed")


def _lv():
    from cnnwidgets import LayerVisualizer, sample

    return LayerVisualizer(sample("chelsea", mode="rgb"), model="efficientnet_lite0")


def _pl(cutoff):
    def build():
        from cnnwidgets import Pipeline, sample

        w = Pipeline(sample("coins"))
        w.enhancer.cutoff = cutoff
        return w

    return build


def _dash(lr):
    def build():
        from cnnwidgets import TrainingDashboard

        w = TrainingDashboard("tiny_cnn", "digits", epochs=2, lr=lr)
        return w.start()

    return build


RIGHT = {
    "00": [(400, 600, 3), (300, 451), io.ImageLoadError, 4],
    "01": [0.2, "ideal", "median", 0.0, Widget(_fd, cutoff=0.2)],
    "02": [24, "sauvola", 107, "canny", Widget(_ts, value=105)],
    "03": [15, 448, "b", "conv_stem", Widget(_lv, layer="blocks.5.0.conv_dw")],
    "04": [0.1, 20, "cnn", "conv_stem", Widget(_dash(0.005))],
    "05": [None, 0.7, 5 / 6, "color", None],
    "06": [24, "fewer", "a", Widget(_pl(0.2))],
}

# each exercise (notebook.number): its typical wrong answers, each with a phrase of the hint it must get
WRONG_ANSWERS = {
    "00.1": [((600, 400, 3), "rows"), ((400, 600), "third axis")],
    "00.2": [((300, 451, 3), "no channel axis")],
    "00.3": [(ValueError, "more specific")],
    "00.4": [(16, "counts images")],
    "01.1": [(0.02, "Raise the cutoff"), (0.5, "Lower the cutoff"), (3, "between 0 and 0.5")],
    "01.2": [("gaussian", "no ripples"), ("butterworth", "jumps from 1 to 0")],
    "01.3": [("gaussian", "spreads each impulse")],
    "01.4": [(129.06, "mean of camera")],
    "01.5": [
        (Widget(_fd), "too blurred"),
        (Widget(_fd, cutoff=0.45), "too much noise"),
        (Widget(_fd, cutoff=0.2, highpass=True), "low-pass"),
        (Widget(_fd, cutoff=0.2, noise_amount=0.05), "Keep the noise"),
        (0.2, "Answer with the widget itself"),
    ],
    "02.1": [(40, "specks"), (20, "fill the holes")],
    "02.2": [("otsu", "whole page"), ("mean", "Ambiguous")],
    "02.3": [(94.6, "Li's"), (0.42, "0–255")],
    "02.4": [("sobel", "thick edges"), ("log", "hysteresis")],
    "02.5": [
        (Widget(_ts), "parts of the coins are missing"),
        (Widget(_ts, value=60), "background comes in"),
        (Widget(_ts, value=105, invert=True), "not inverted"),
    ],
    "03.1": [(14, "padding"), (30, "stride"), (28, "both")],
    "03.2": [(432, "bias"), (144, "input channels")],
    "03.3": [("a", "ReLU"), ("c", "channels"), ("d", "stride alone")],
    "03.4": [("bn2.act", "Deep layers")],
    "03.5": [
        (Widget(_lv, layer="blocks.6.0.conv_dw"), "an earlier layer already has them"),
        (Widget(_lv, layer="conv_stem"), "Look at a deeper layer"),
    ],
    "04.1": [(10, "fraction"), (0.5, "more than two")],
    "04.2": [(5, "several classes"), (80, "whole set")],
    "04.3": [("bovw", "which row is higher")],
    "04.4": [("bn1", "convolution itself")],
    "04.5": [(Widget(_dash(0.5)), "diverges"), (Widget(_dash(5e-4)), "ten times larger or smaller")],
    "05.1": [("coffee cup", "file names")],
    "05.2": [(7, "Divide by 10"), (0.3, "wrong hits")],
    "05.3": [(2 / 3, "rank 3 only"), (5 / 9, "number of relevant items")],
    "05.4": [("sift", "Which one drops")],
    "06.1": [(23, "count the regions")],
    "06.2": [("more", "printed counts")],
    "06.3": [("b", "not added"), ("c", "keeps its size")],
    "06.4": [(Widget(_pl(0.05)), "neighbouring coins merge")],
}
WRONG = [(key[:2], int(key[3:]), answer, hint) for key, cases in WRONG_ANSWERS.items() for answer, hint in cases]


def test_every_notebook_has_three_to_five_exercises():
    counts = {nb: len(titles) for nb, titles in list_exercises().items()}
    assert set(counts) == {"00", "01", "02", "03", "04", "05", "06"}
    assert all(3 <= n <= 5 for n in counts.values()), counts
    assert {nb: len(answers) for nb, answers in RIGHT.items()} == counts


@pytest.mark.parametrize("notebook", sorted(RIGHT))
def test_right_answers_pass_even_in_solutions_mode(notebook, capsys):
    check = checks(notebook, solutions=True)
    for number, answer in enumerate(RIGHT[notebook], 1):
        if answer is None:
            continue  # needs an index: below
        answer = answer() if isinstance(answer, Widget) else answer
        assert getattr(check, f"ex{number}")(answer).passed
        assert "✔ right." in capsys.readouterr().out
    assert "✔" in check.summary()


@pytest.mark.parametrize(("notebook", "number", "answer", "hint"), WRONG)
def test_typical_wrong_answers_get_the_matching_hint(notebook, number, answer, hint, capsys):
    answer = answer() if isinstance(answer, Widget) else answer
    feedback = getattr(checks(notebook), f"ex{number}")(answer)
    assert not feedback.passed and hint in feedback.message
    out = capsys.readouterr().out
    assert "✘ not yet." in out and hint in out


def test_no_answer_and_broken_answers_give_a_hint_and_never_raise(capsys):
    check = checks("01")
    assert not check.ex1(None).passed and "No answer yet" in capsys.readouterr().out
    assert not check.ex1("a lot").passed  # not a number
    assert not check.ex1([1, 2]).passed
    assert not checks("00").ex1(object()).passed
    assert not checks("05").ex1(42).passed
    assert "✘ 01.1" in check.summary() and "· 01.2" in check.summary()


def test_solutions_mode_asserts_on_a_wrong_answer(capsys):
    with pytest.raises(AssertionError, match="Exercise 03.1"):
        checks("03", solutions=True).ex1(14)
    with pytest.raises(AssertionError, match="No answer yet"):
        checks("03", solutions=True).ex2()


def test_unknown_notebook_and_exercise():
    with pytest.raises(ValueError, match="no exercises"):
        Checker("99")
    with pytest.raises(AttributeError):
        checks("06").ex9  # noqa: B018
    assert "ex3" in dir(checks("06"))


def _tagged_index():
    folders = ["coffee"] * 5 + ["coins"] * 5 + ["chelsea"] * 5
    tags = [[("espresso", 0.8), ("cup", 0.1)]] * 5 + [[("coin", 0.9)]] * 5 + [[("tabby", 0.9)]] * 5
    paths = [f"/set/{folder}/{folder}_{i}.png" for i, folder in enumerate(folders)]
    vectors = np.eye(len(paths), 16, dtype=np.float32)
    return ImageIndex.from_vectors(paths, {"cnn": vectors}, tags=tags)


def test_a_text_query_for_a_class_without_captions(capsys):
    index = _tagged_index()
    check = checks("05", solutions=True)
    assert check.ex1("espresso", index=index).passed
    student = checks("05")
    assert "Pass the index" in student.ex1("espresso").message
    wrong = student.ex1("tabby cat", index=index)
    assert not wrong.passed and "0 of 5" in wrong.message and "espresso" in wrong.message
    # the same through the SearchBox, graded from its text and results; the hidden test searches again
    from cnnwidgets import SearchBox

    box = SearchBox(index, k=8)
    box.text = "espresso"
    assert check.ex5(box).passed
    check.hidden.ex5(box)
    box.text = "coffee cup"
    assert "file names" in student.ex5(box).message
    box.text = "tabby"
    assert "0 of the first 5" in student.ex5(box).message
    box.text = "espresso"
    box.wait()
    box.results = box.results[:5][::-1] + box.results[5:]  # a forged gallery: all 5 coffee, in another order
    assert not student.ex5(box).passed  # the hidden test searches again and refuses it, so the visible check does


def test_the_module_is_listed_and_documented():
    assert exercises.__all__ == [
        "Checker",
        "Feedback",
        "checks",
        "grading",
        "is_grading",
        "list_exercises",
        "write_course",
    ]
    assert bool(exercises.Feedback(True, "ok")) and not exercises.Feedback(False, "no")
