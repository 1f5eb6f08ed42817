"""Exercises with feedback for the tutorial notebooks.

Each tutorial has a few exercises. A student writes an answer in a cell and calls the matching check, which prints
friendly feedback: a right answer is confirmed, a wrong or missing one gets a hint. A check never raises in student
mode, so a half-done notebook still runs from top to bottom. In solutions mode every check asserts, which is how the
solutions notebooks prove that the answers they show are right.

Examples
--------
>>> from cnnwidgets import exercises
>>> check = exercises.checks("03")
>>> check.ex1(14).passed
Exercise 03.1 ✘ not yet. That forgets the padding: it adds 1 pixel on each side, 2 in all.
False
>>> check.ex1(15).passed
Exercise 03.1 ✔ right. (32 + 2·1 − 5) // 2 + 1 = 15.
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Checker", "Feedback", "checks", "list_exercises"]


@dataclass(frozen=True)
class Feedback:
    """The outcome of one check.

    Attributes
    ----------
    passed : bool
        Whether the answer is right.
    message : str
        What the student reads: a confirmation, or a hint that fits the mistake.
    """

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed


@dataclass(frozen=True)
class _Exercise:
    notebook: str
    number: int
    title: str
    hint: str
    check: Callable[..., Feedback]


_REGISTRY: dict[str, dict[int, _Exercise]] = {}


def _exercise(notebook: str, number: int, title: str, hint: str):
    def register(fn):
        _REGISTRY.setdefault(notebook, {})[number] = _Exercise(notebook, number, title, hint, fn)
        return fn

    return register


def _ok(message: str) -> Feedback:
    return Feedback(True, message)


def _hint(message: str) -> Feedback:
    return Feedback(False, message)


def _word(answer: Any) -> str:
    return str(answer).strip().lower().replace("-", " ").replace("_", " ")


def _number(answer: Any) -> float | None:
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _shape(answer: Any) -> tuple[int, ...] | None:
    try:
        return tuple(int(v) for v in answer)
    except (TypeError, ValueError):
        return None


def _choice(answer: Any) -> str:
    return str(answer).strip().lower().strip("()").strip()[:1]


# ---------------------------------------------------------------- 00 getting started


@_exercise("00", 1, "the shape of the coffee sample", "Call datasets.sample('coffee') and read its .shape.")
def _nb00_ex1(answer):
    shape = _shape(answer)
    if shape == (400, 600, 3):
        return _ok("400 rows, 600 columns, 3 colour channels (RGB).")
    if shape == (600, 400, 3):
        return _hint("Close: NumPy puts the rows (the height) first, then the columns (the width).")
    if shape is not None and len(shape) == 2:
        return _hint("coffee is a colour image: the shape has a third axis for the channels.")
    return _hint("Not quite. Print datasets.sample('coffee').shape and copy the tuple.")


@_exercise("00", 2, "the shape of a grey-scale load", "Load chelsea with io.load_image(..., mode='gray').")
def _nb00_ex2(answer):
    shape = _shape(answer)
    if shape == (300, 451):
        return _ok("mode='gray' keeps height and width and drops the channel axis.")
    if shape is not None and len(shape) == 3:
        return _hint("mode='gray' gives one value per pixel: there is no channel axis any more.")
    if shape == (451, 300):
        return _hint("Rows (the height) come first in NumPy.")
    return _hint("Not quite. chelsea in colour is (300, 451, 3); what is left without the colours?")


@_exercise("00", 3, "the error for a broken file", "Try io.load_image on a file that is not an image and catch it.")
def _nb00_ex3(answer):
    from . import io

    name = answer.__name__ if isinstance(answer, type) else str(answer).strip().split(".")[-1]
    if answer is io.ImageLoadError or name == "ImageLoadError":
        return _ok("io.ImageLoadError names the file and the reason; catch it to skip bad files.")
    if name in {"ValueError", "OSError", "Exception", "IOError", "UnidentifiedImageError"}:
        return _hint("cnnwidgets raises its own, more specific error class: look in cnnwidgets.io.")
    return _hint("Run io.load_image on a broken file inside try/except Exception as err and print type(err).")


@_exercise("00", 4, "the classes of the shapes set", "datasets.shapes(16, seed=0).classes lists them.")
def _nb00_ex4(answer):
    value = _number(answer)
    if value == 4:
        return _ok("Four classes: circles, squares, triangles and crosses.")
    if value is not None and value > 4:
        return _hint("That counts images, not classes: look at .classes, not .labels.")
    return _hint("Count the entries of datasets.shapes(16, seed=0).classes.")


# ---------------------------------------------------------------- 01 image enhancement


def _camera_psnr(cutoff: float) -> float:
    from .datasets import sample
    from .engine import enhance

    camera = sample("camera")
    noisy = enhance.add_noise(camera, kind="gaussian", amount=0.1, seed=0)
    return float(enhance.psnr(camera, enhance.frequency_filter(noisy, cutoff=cutoff, order=2)))


@_exercise("01", 1, "a cutoff that reaches 25 dB", "Try cutoffs between 0.02 and 0.5 and print the PSNR of each.")
def _nb01_ex1(answer):
    cutoff = _number(answer)
    if cutoff is None or not 0 < cutoff <= 0.5:
        return _hint("The cutoff is a fraction of the sampling frequency: a number between 0 and 0.5, such as 0.3.")
    score = _camera_psnr(cutoff)
    if score >= 25:
        return _ok(f"cutoff {cutoff:g} gives {score:.2f} dB.")
    if cutoff < 0.2:
        return _hint(f"{score:.2f} dB: the result is too blurred. Raise the cutoff to keep more detail.")
    return _hint(f"{score:.2f} dB: too much noise passes. Lower the cutoff.")


@_exercise("01", 2, "the low-pass that rings", "Compare the overshoot next to the edge for each shape.")
def _nb01_ex2(answer):
    word = _word(answer)
    if word == "ideal":
        return _ok("The ideal mask's sharp edge in frequency is a sinc in space: ripples (Gibbs ringing) at edges.")
    if word == "butterworth":
        return _hint("Butterworth of low order rings only a little. Which mask jumps from 1 to 0 at the cutoff?")
    if word in {"gaussian", "exponential"}:
        return _hint("The transform of a Gaussian is a Gaussian: it has no ripples. Which mask has a sharp edge?")
    return _hint("Answer with a shape name: 'ideal', 'butterworth' or 'gaussian'.")


@_exercise("01", 3, "the filter for salt-and-pepper noise", "Look at what each filter does to an isolated white pixel.")
def _nb01_ex3(answer):
    word = _word(answer)
    if "median" in word:
        return _ok("A median ignores the rare extreme values in its window, so impulses vanish and edges stay sharp.")
    if word in {"gaussian", "butterworth", "ideal", "low pass", "lowpass", "mean", "average", "box"}:
        return _hint(
            "A linear filter spreads each impulse over its neighbours instead of removing it. Try a rank filter."
        )
    return _hint("Answer with a filter name, such as 'median' or 'gaussian'.")


@_exercise("01", 4, "the mean of a high-pass result", "Compute frequency_filter(camera, highpass=True, ...).mean().")
def _nb01_ex4(answer):
    value = _number(answer)
    if value is not None and abs(value) < 1e-3:
        return _ok("A high-pass mask is 0 at the centre of the spectrum, the DC term, which is the mean.")
    if value is not None and abs(value - 129.06) < 1:
        return _hint("That is the mean of camera itself. What does a high-pass mask do to the zero frequency?")
    return _hint("The centre of the spectrum (zero frequency) holds the mean. What value has a high-pass mask there?")


# ---------------------------------------------------------------- 02 segmentation


@_exercise("02", 1, "count the coins", "Fill the holes of the coin region, label it, keep objects above 300 pixels.")
def _nb02_ex1(answer):
    value = _number(answer)
    if value == 24:
        return _ok("24 coins.")
    if value is not None and value > 24:
        return _hint("Small specks count as objects too: keep only those larger than 300 pixels.")
    if value is not None and value < 24:
        return _hint(
            "Coins are missing: fill the holes before labelling, and use the watershed so touching coins split."
        )
    return _hint("Answer with the number of coins, an integer.")


@_exercise("02", 2, "the threshold for an unevenly lit page", "Compare a global and a local method on the shadow.")
def _nb02_ex2(answer):
    from .engine import segment

    word = _word(answer)
    if word in {"sauvola", "niblack", "local", "adaptive", "local sauvola", "local niblack"}:
        return _ok("A local threshold follows the lighting, so the shadowed corner keeps only the text.")
    if word in {"mean", "gaussian", "median"}:
        return _hint("Ambiguous: 'mean' is both a global and a local method. Name a local one built for text.")
    if word in segment.GLOBAL_METHODS or word == "fixed":
        return _hint("One threshold for the whole page turns the shadow to ink. Which methods use a window?")
    return _hint(f"Answer with a method name, such as one of {segment.LOCAL_METHODS}.")


@_exercise("02", 3, "the Otsu threshold of coins", "segment.threshold_value(coins, 'otsu').")
def _nb02_ex3(answer):
    value = _number(answer)
    if value is not None and abs(value - 107) <= 1:
        return _ok("Otsu: 107, where the between-class variance of the histogram is largest.")
    if value is not None and abs(value - 94.6) <= 1:
        return _hint("That is Li's threshold. Otsu maximises the variance between the two classes.")
    if value is not None and 0 < value < 1:
        return _hint("coins is uint8: its thresholds are on the 0–255 scale.")
    return _hint("Compute segment.threshold_value(coins, 'otsu').")


@_exercise("02", 4, "the edge detector with thin, linked edges", "Which detector thins and uses two thresholds?")
def _nb02_ex4(answer):
    word = _word(answer)
    if word == "canny":
        return _ok("Canny: non-maximum suppression thins the edges, hysteresis links them.")
    if word in {"sobel", "prewitt", "scharr", "roberts"}:
        return _hint("A gradient magnitude gives thick edges. Which method suppresses non-maxima?")
    if word in {"laplace", "log", "laplacian"}:
        return _hint("Zero crossings give closed but noisy contours. Which method uses hysteresis?")
    return _hint("Answer with a method name from segment.EDGE_METHODS.")


# ---------------------------------------------------------------- 03 CNN basics


@_exercise("03", 1, "a convolution's output size", "size = floor((n + 2·padding − kernel) / stride) + 1")
def _nb03_ex1(answer):
    value = _number(answer)
    if value == 15:
        return _ok("(32 + 2·1 − 5) // 2 + 1 = 15.")
    if value == 14:
        return _hint("That forgets the padding: it adds 1 pixel on each side, 2 in all.")
    if value == 30:
        return _hint("That forgets the stride: with stride 2 the kernel moves 2 pixels at a time.")
    if value == 28:
        return _hint("That forgets both padding and stride.")
    if value == 16:
        return _hint("Round down, and subtract the kernel size before dividing by the stride.")
    return _hint("Use floor((n + 2·padding − kernel) / stride) + 1 with n=32, kernel=5, stride=2, padding=1.")


@_exercise("03", 2, "the parameters of a convolution", "weights: out × in × k × k, plus one bias per output.")
def _nb03_ex2(answer):
    value = _number(answer)
    if value == 448:
        return _ok("16 × 3 × 3 × 3 = 432 weights + 16 biases = 448.")
    if value == 432:
        return _hint("Each output channel also has a bias.")
    if value in {144, 160}:
        return _hint("Each kernel spans all 3 input channels.")
    return _hint("Count the weights of 16 kernels of 3 × 3 × 3, then add the biases.")


@_exercise("03", 3, "why max pooling is not invertible", "Write down two different windows with the same maximum.")
def _nb03_ex3(answer):
    letter = _choice(answer)
    if letter == "b":
        return _ok("Many inputs give the same output: the three smaller values of each 2×2 window are discarded.")
    hints = {
        "a": "ReLU is non-linear too, yet on positive values it is the identity. What is lost in a window?",
        "c": "Max pooling keeps the number of channels; it works on each channel alone.",
        "d": "A stride alone loses nothing if nothing is thrown away. What happens to the other values?",
    }
    return _hint(hints.get(letter, "Answer with one letter: 'a', 'b', 'c' or 'd'."))


@_exercise("03", 4, "the layer whose maps respond to edges", "Compare the maps of the first and the deepest layer.")
def _nb03_ex4(answer):
    word = str(answer).strip()
    if word == "conv_stem":
        return _ok("The first convolution sees only a few pixels: its kernels are edge and colour detectors.")
    if word.startswith("blocks") or word.startswith("bn2") or word.startswith("conv_head"):
        return _hint("Deep layers see large areas and respond to parts and objects. Edges come first.")
    return _hint("Answer with a layer name shown above, e.g. 'blocks.3.0.conv_pw'.")


# ---------------------------------------------------------------- 04 CNN classification


@_exercise("04", 1, "the chance accuracy on digits", "How many classes are there, all about equally common?")
def _nb04_ex1(answer):
    value = _number(answer)
    if value is not None and abs(value - 0.1) < 0.005:
        return _ok("Ten classes: guessing is right one time in ten.")
    if value is not None and abs(value - 10) < 0.5:
        return _hint("Give the accuracy as a fraction between 0 and 1, as train.evaluate_classifier does.")
    if value is not None and abs(value - 0.5) < 0.01:
        return _hint("There are more than two classes.")
    return _hint("Accuracy by chance is 1 / (number of classes).")


@_exercise("04", 2, "the support set of the few-shot classifier", "5 examples for each class of the shapes set.")
def _nb04_ex2(answer):
    value = _number(answer)
    if value == 20:
        return _ok("4 classes × 5 examples = 20 labelled images.")
    if value == 5:
        return _hint("5 examples per class, and there are several classes.")
    if value in {75, 80}:
        return _hint("That is the whole set or the queries; the support set holds only the labelled examples.")
    return _hint("Multiply the number of classes by 5.")


@_exercise("04", 3, "the better features for shapes", "Compare the accuracies in the table compare_features printed.")
def _nb04_ex3(answer):
    word = _word(answer)
    if word in {"cnn", "cnn features", "deep"}:
        return _ok("The CNN's features describe whole shapes; SIFT keypoints on flat shapes are few and alike.")
    if word in {"bovw", "sift", "bag of visual words", "bag of words"}:
        return _hint("Look again at the two accuracies: which row is higher?")
    return _hint("Answer 'cnn' or 'bovw'.")


@_exercise("04", 4, "the first layer of efficientnet_lite0", "viz.controls['layer'] lists the layers in order.")
def _nb04_ex4(answer):
    word = str(answer).strip()
    if word == "conv_stem":
        return _ok("conv_stem: a stride-2 3×3 convolution, the layer whose maps respond to edges.")
    if word in {"bn1", "bn1.act"}:
        return _hint("That follows the first convolution; name the convolution itself.")
    return _hint("Open the layer dropdown of the LayerVisualizer: the first entry.")


# ---------------------------------------------------------------- 05 image retrieval


@_exercise("05", 1, "a text query for a class without captions", "The predicted labels are stored as tags.")
def _nb05_ex1(answer, *, index=None, folder="coffee"):
    if not isinstance(answer, str) or not answer.strip():
        return _hint("Answer with a query string.")
    if folder in answer.lower():
        return _hint(f"'{folder}' is in the file names, so keywords find it. Use a word only the labels know.")
    if index is None:
        return _hint("Pass the index too: check.ex1(answer, index=index).")
    hits = index.search(text=answer, k=5)
    inside = [f"/{folder}/" in h.path.replace("\\", "/") for h in hits]
    if hits and all(inside):
        return _ok(f"All 5 hits for {answer!r} are {folder} images, found through their predicted labels.")
    tags = {t for h in index.search(text=folder, k=3) for t, _ in h.tags[:3]}
    return _hint(f"{sum(inside)} of 5 hits are {folder} images. Its images carry labels such as {sorted(tags)}.")


@_exercise("05", 2, "precision@10 by hand", "Relevant hits among the first 10, divided by 10.")
def _nb05_ex2(answer):
    value = _number(answer)
    if value is not None and abs(value - 0.7) < 1e-6:
        return _ok("7 of the first 10 hits are relevant: P@10 = 0.7.")
    if value == 7:
        return _hint("Divide by 10: precision is a fraction.")
    if value is not None and abs(value - 0.3) < 1e-6:
        return _hint("That is the share of wrong hits.")
    return _hint("Count the R in R R N R R N N R R R and divide by 10.")


@_exercise("05", 3, "average precision by hand", "Average the precision at each relevant hit over all relevant items.")
def _nb05_ex3(answer):
    value = _number(answer)
    if value is not None and abs(value - 5 / 6) < 1e-3:
        return _ok("(1/1 + 2/3) / 2 = 0.833.")
    if value is not None and abs(value - 2 / 3) < 1e-3:
        return _hint("That is the precision at rank 3 only. Average it with the precision at the first hit.")
    if value is not None and abs(value - 5 / 9) < 1e-3:
        return _hint("Divide by the number of relevant items (2), not by the number of ranks.")
    return _hint("Ranks: R N R, 2 relevant items. Precision is 1/1 at rank 1 and 2/3 at rank 3.")


@_exercise("05", 4, "the descriptor that fails on colour changes", "Compare the per-distortion table above.")
def _nb05_ex4(answer):
    word = _word(answer)
    if word in {"color", "colour", "color histogram", "colour histogram"}:
        return _ok("A colour histogram changes with the colours; SIFT and the CNN look at structure.")
    if word in {"cnn", "sift", "moments"}:
        return _hint("That one keeps a high precision on the colour-changed versions. Which one drops?")
    return _hint("Answer with a descriptor name: 'cnn', 'color', 'moments' or 'sift'.")


# ---------------------------------------------------------------- 06 pipeline


@_exercise("06", 1, "the regions of the default pipeline", "len(chain.run(coins)['regions']).")
def _nb06_ex1(answer):
    value = _number(answer)
    if value == 24:
        return _ok("24 regions, one per coin.")
    return _hint("Run the default pipeline on coins and count the regions it returns.")


@_exercise("06", 2, "what the low-pass does to false regions", "Compare the counts with and without enhancement.")
def _nb06_ex2(answer):
    word = _word(answer)
    if word in {"fewer", "less", "lower", "decreases", "fewer regions"}:
        return _ok("Smoothing removes the noise specks before the threshold, so fewer false regions are found.")
    if word in {"more", "higher", "increases", "more regions"}:
        return _hint("Look at the printed counts again: which is larger, with or without the filter?")
    return _hint("Answer 'fewer' or 'more'.")


@_exercise("06", 3, "a cutoff that is too low", "Try cutoff 0.02 and look at the regions.")
def _nb06_ex3(answer):
    letter = _choice(answer)
    if letter == "a":
        return _ok("A low cutoff blurs the gaps between coins away, so neighbours merge into one region.")
    hints = {
        "b": "Noise is removed by a low cutoff, not added. What happens to the dark gaps between coins?",
        "c": "The image keeps its size; only its detail changes.",
    }
    return _hint(hints.get(letter, "Answer with one letter: 'a', 'b' or 'c'."))


# ---------------------------------------------------------------- checker


def list_exercises(notebook: str | None = None) -> dict[str, list[str]]:
    """List the exercises of one tutorial notebook or of all of them.

    Parameters
    ----------
    notebook : str, optional
        The notebook's two-digit number, such as ``"01"``; all notebooks when omitted.

    Returns
    -------
    dict of str to list of str
        For each notebook, the titles of its exercises in order.

    Examples
    --------
    >>> list_exercises("06")["06"][0]
    'the regions of the default pipeline'
    """
    keys = [notebook] if notebook is not None else sorted(_REGISTRY)
    return {key: [ex.title for _, ex in sorted(_registry(key).items())] for key in keys}


def _registry(notebook: str) -> dict[int, _Exercise]:
    if notebook not in _REGISTRY:
        raise ValueError(f"no exercises for notebook {notebook!r}; there are {sorted(_REGISTRY)}")
    return _REGISTRY[notebook]


class Checker:
    """The checks of one notebook: ``check.ex1(answer)``, ``check.ex2(answer)``, ...

    Parameters
    ----------
    notebook : str
        The notebook's two-digit number, such as ``"01"``.
    solutions : bool, default False
        When True every check asserts that the answer is right (the solutions notebooks); when False a wrong answer
        prints a hint and the notebook goes on.

    Attributes
    ----------
    results : dict of int to Feedback
        The latest feedback of each exercise checked so far.

    Examples
    --------
    >>> check = Checker("02")
    >>> check.ex2("otsu").passed
    Exercise 02.2 ✘ not yet. One threshold for the whole page turns the shadow to ink. Which methods use a window?
    False
    """

    def __init__(self, notebook: str, *, solutions: bool = False):
        self.notebook = notebook
        self.solutions = solutions
        self.exercises = _registry(notebook)
        self.results: dict[int, Feedback] = {}

    def __getattr__(self, name: str):
        if name.startswith("ex") and name[2:].isdigit() and int(name[2:]) in self.__dict__.get("exercises", {}):
            number = int(name[2:])
            return lambda answer=None, **context: self._check(number, answer, context)
        raise AttributeError(f"{type(self).__name__!r} has no exercise {name!r}")

    def __dir__(self):
        return [*super().__dir__(), *(f"ex{n}" for n in self.exercises)]

    def _check(self, number: int, answer: Any, context: dict) -> Feedback:
        ex = self.exercises[number]
        label = f"Exercise {self.notebook}.{number}"
        if answer is None or answer is Ellipsis:
            feedback = Feedback(False, f"No answer yet. Put it in `answer` and run the cell again. Hint: {ex.hint}")
            print(feedback.message)
        else:
            try:
                feedback = ex.check(answer, **context)
            except Exception as err:  # a malformed answer gets feedback, never a traceback
                feedback = Feedback(False, f"That answer could not be checked ({err}). Hint: {ex.hint}")
            mark = "✔ right." if feedback.passed else "✘ not yet."
            print(f"{label} {mark} {feedback.message}")
        self.results[number] = feedback
        if self.solutions:
            assert feedback.passed, f"{label}: {feedback.message}"
        return feedback

    def summary(self) -> str:
        """One line per exercise: its title and whether it has passed.

        Returns
        -------
        str
            The lines, joined by newlines.
        """
        lines = []
        for number, ex in sorted(self.exercises.items()):
            state = self.results.get(number)
            mark = "·" if state is None else ("✔" if state.passed else "✘")
            lines.append(f"{mark} {self.notebook}.{number} {ex.title}")
        return "\n".join(lines)


def checks(notebook: str, *, solutions: bool = False) -> Checker:
    """The checks of one tutorial notebook.

    Parameters
    ----------
    notebook : str
        The notebook's two-digit number, such as ``"01"``.
    solutions : bool, default False
        Assert in every check (the solutions notebooks).

    Returns
    -------
    Checker
        Call ``check.exN(answer)`` for exercise N.

    Examples
    --------
    >>> check = checks("05")
    >>> check.ex2(0.7).passed
    Exercise 05.2 ✔ right. 7 of the first 10 hits are relevant: P@10 = 0.7.
    True
    """
    return Checker(notebook, solutions=solutions)
