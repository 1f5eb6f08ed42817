"""The tutorials as an nbgrader course, graded by a real nbgrader: release, three submissions, autograde, feedback.

Two assignments, one classical (01, a FilterDesigner exercise among them) and one CNN (03, a LayerVisualizer
exercise): the instructor's own solutions get full marks, the untouched student version gets no autograded points,
and a submission with one typical wrong answer loses that exercise's points and reads its hint in the feedback.
The autograde time of each submission goes to ``tests/artifacts/course_timings.json``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cnnwidgets import exercises
from cnnwidgets.exercises import course

pytest.importorskip("nbgrader")

ARTIFACTS = Path(__file__).parent / "artifacts"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
# (assignment, exercise whose answer the wrong submission changes, the wrong answer, a line of its hint)
ASSIGNMENTS = {
    "01_image_enhancement": ("2", 'answer = "gaussian"', "The transform of a Gaussian is a Gaussian"),
    "03_cnn_basics": ("5", 'lv.layer = "blocks.6.0.conv_dw"\nanswer = lv', "an earlier layer already has them"),
}


def nbgrader(root: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)  # nbgrader runs alembic from PATH
    env = {**os.environ, "CNNWIDGETS_DEVICE": "cpu", "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    env.pop("NBGRADER_EXECUTION", None)
    cmd = [str(Path(sys.executable).with_name("nbgrader")), *args]
    out = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def answered(release: Path, instructor: Path, wrong: dict | None = None) -> dict:
    """The released notebook with each solution stub replaced by the instructor's answer (or a wrong one)."""
    nb = json.loads(release.read_text())
    answers = {}
    for cell in cells(instructor):
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id", "")
        if grade_id.startswith("answer-"):
            text = source(cell)
            answers[grade_id] = text[text.index("### BEGIN SOLUTION") + 19 : text.index("### END SOLUTION")].strip()
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id", "")
        if grade_id in answers:
            number = grade_id.split("-")[1]
            text = wrong[number] if wrong and number in wrong else answers[grade_id]
            cell["source"] = source(cell).replace(STUB, text)
    return nb


def grade(root: Path, name: str) -> dict:
    """Release assignment ``name`` of the course at ``root``, submit the instructor's answers, the untouched student
    version and one wrong answer, autograde each and write their feedback; returns ``{student: autograde seconds}``.
    """
    number, wrong_answer, _ = ASSIGNMENTS[name]
    nbgrader(root, "generate_assignment", name, "--create", "--force")
    release = root / "release" / name / f"{name}.ipynb"
    instructor = root / "source" / name / f"{name}.ipynb"
    submissions = {
        "instructor": answered(release, instructor),
        "untouched": json.loads(release.read_text()),
        "wrong": answered(release, instructor, {number: wrong_answer}),
    }
    for student, nb in submissions.items():
        folder = root / "submitted" / student / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.ipynb").write_text(json.dumps(nb))
        (folder / "timestamp.txt").write_text("2026-12-07 09:00:00.000000 UTC")
    timings = {}
    for student in submissions:
        t0 = time.monotonic()
        nbgrader(root, "autograde", name, "--student", student, "--create", "--force")
        timings[student] = round(time.monotonic() - t0, 1)
    nbgrader(root, "generate_feedback", name, "--force")
    return timings


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Each assignment graded in a course of its own (each with its own gradebook), the two at once, and
    ``nbgrader validate`` of the first one's sources beside them.

    Returns ``(roots, scores, timings, validated)``: the course folder of each assignment, ``{(assignment, student):
    (score, max score)}``, ``{"assignment/student": autograde seconds}``, and the validate run (a future: its
    ``result()`` raises if validate failed).
    """
    roots = {
        name: exercises.write_course(tmp_path_factory.mktemp("course"), notebooks=[name[:2]]) for name in ASSIGNMENTS
    }
    first = next(iter(ASSIGNMENTS))
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = {name: pool.submit(grade, roots[name], name) for name in ASSIGNMENTS}
        validated = pool.submit(
            nbgrader, roots[first], "validate", str(roots[first] / "source" / first / f"{first}.ipynb")
        )
        timings = {f"{name}/{student}": t for name, run in runs.items() for student, t in run.result().items()}
    from nbgrader.api import Gradebook

    scores = {}
    for name, root in roots.items():
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
            for student in ("instructor", "untouched", "wrong"):
                sub = gb.find_submission(name, student)
                scores[(name, student)] = (sub.score, sub.max_score)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "course_timings.json").write_text(
        json.dumps({"autograde_s": timings, "scores": {f"{a}/{s}": v for (a, s), v in scores.items()}}, indent=1)
    )
    return roots, scores, timings, validated


def test_course_sources_pass_nbgrader_validate(graded):
    roots, _, _, validated = graded
    out = validated.result()
    assert "Success! Your notebook passes all the tests." in out.stdout, out.stdout[-2000:]
    config = (roots["01_image_enhancement"] / "nbgrader_config.py").read_text()
    assert "ExecutePreprocessor.timeout = 300" in config


def test_course_cells_follow_nbgrader_schema(tmp_path):
    root = exercises.write_course(tmp_path)
    names = sorted(p.name for p in (root / "source").iterdir())
    assert names == ["00_getting_started", "01_image_enhancement", "02_segmentation", "03_cnn_basics",
                     "04_cnn_classification", "05_image_retrieval", "06_pipeline"]  # fmt: skip
    for name in names:
        nb = cells(root / "source" / name / f"{name}.ipynb")
        metas = [c["metadata"]["nbgrader"] for c in nb]
        assert len({m["grade_id"] for m in metas}) == len(metas)  # grade ids are unique
        for cell, m in zip(nb, metas):
            assert m["schema_version"] == 3 and m["locked"] == (not m["solution"])
            if m["solution"]:
                assert "### BEGIN SOLUTION" in source(cell) and source(cell).startswith("answer = None")
            if m["grade"]:
                assert m["points"] == course.POINTS and "assert check." in source(cell)
        n_exercises = len(exercises.list_exercises(name[:2])[name[:2]])
        assert sum(m["solution"] for m in metas) == n_exercises
        assert sum(m["grade"] for m in metas) >= n_exercises
    hidden = [c for c in cells(root / "source" / "01_image_enhancement" / "01_image_enhancement.ipynb")
              if "### BEGIN HIDDEN TESTS" in source(c)]  # fmt: skip
    assert len(hidden) == 1 and "check.hidden.ex5(answer)" in source(hidden[0])
    with pytest.raises(ValueError, match="notebooks: no tutorial '99'"):
        exercises.write_course(tmp_path / "x", notebooks=["99"])
    with pytest.raises(ValueError, match="points must be a positive integer"):
        exercises.write_course(tmp_path / "x", points=0)


def test_student_version_has_no_solution_text(graded):
    roots, _, _, _ = graded
    for name, root in roots.items():
        release = (root / "release" / name / f"{name}.ipynb").read_text()
        for cell in cells(root / "source" / name / f"{name}.ipynb"):
            text = source(cell)
            if "### BEGIN SOLUTION" in text:
                solution = text[text.index("### BEGIN SOLUTION") + 19 : text.index("### END SOLUTION")].strip()
                for line in solution.splitlines():
                    if line.strip() and line.strip() != "answer = fd" and len(line.strip()) > 12:
                        assert line.strip() not in release, (name, line)
            if "### BEGIN HIDDEN TESTS" in text:
                assert "check.hidden" not in release
        assert "### BEGIN SOLUTION" not in release and STUB.splitlines()[1] in release


def test_autograde_scores_the_three_submissions(graded):
    _, scores, timings, _ = graded
    for name in ASSIGNMENTS:
        score, top = scores[(name, "instructor")]
        assert top > 0 and score == top, (name, scores)
        assert scores[(name, "untouched")][0] == 0, (name, scores)
        lost = top - scores[(name, "wrong")][0]
        hidden = name.startswith("03")  # the changed answer is a widget exercise: its hidden test fails too
        assert lost == course.POINTS * (2 if hidden else 1), (name, scores)
    assert all(t < 120 for t in timings.values()), timings


def test_feedback_shows_the_hint_not_the_check(graded):
    roots, _, _, _ = graded
    for name, (number, _, hint_text) in ASSIGNMENTS.items():
        root = roots[name]
        html = (root / "feedback" / "wrong" / name / f"{name}.html").read_text()
        text = re.sub(r"<[^>]+>", "", html)
        assert hint_text in text, name
        assert "_nb0" not in text and "def _check" not in text  # no source of the checks
        assert f"check.hidden.ex{number}" not in text or name.startswith("03")
        good = (root / "feedback" / "instructor" / name / f"{name}.html").read_text()
        assert "AssertionError" not in good


@pytest.mark.parametrize("mode", ["autograde", "validate"])
def test_checks_assert_under_nbgrader_and_print_otherwise(monkeypatch, capsys, mode):
    check = exercises.checks("01")
    assert check.ex2("gaussian").passed is False  # student mode: feedback, no exception
    assert "not yet" in capsys.readouterr().out
    monkeypatch.setenv("NBGRADER_EXECUTION", mode)
    assert exercises.is_grading()
    with pytest.raises(AssertionError) as err:
        check.ex2("gaussian")
    assert str(err.value).startswith("Exercise 01.2: The transform of a Gaussian is a Gaussian")
    with pytest.raises(AssertionError, match="No answer yet"):
        check.ex2(None)
    assert check.ex2("ideal").passed
    monkeypatch.delenv("NBGRADER_EXECUTION")
    exercises.grading(True)
    try:
        with pytest.raises(AssertionError):
            check.ex3("gaussian")
    finally:
        exercises.grading(None)
    assert not exercises.is_grading()


def test_a_visible_check_never_passes_what_its_hidden_test_fails():
    from cnnwidgets import FilterDesigner, sample

    camera = sample("camera")
    check = exercises.checks("01")
    fd = FilterDesigner(camera, noise="gaussian", noise_amount=0.1)
    fd.cutoff = 0.2
    assert check.ex5(fd).passed
    check.hidden.ex5(fd)  # passes
    fd.cutoff = 0.1  # the default: below 26.5 dB
    assert not check.ex5(fd).passed
    with pytest.raises(AssertionError, match="Exercise 01.5"):
        check.hidden.ex5(fd)
    # a forged result (the widget's picture replaced): the visible check would see 26.5 dB in its metrics, the hidden
    # test recomputes the filter from the traits and refuses it, and so does the visible one
    fd.cutoff = 0.2
    fd.wait()
    fd.result = fd.result[::-1].copy()
    assert not check.ex5(fd).passed
    with pytest.raises(AssertionError):
        check.hidden.ex5(fd)


def test_cli_writes_a_course(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "cnnwidgets", "course", str(tmp_path / "c"), "--notebooks", "02"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "c" / "source" / "02_segmentation" / "02_segmentation.ipynb").is_file()
    assert "02_segmentation" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "cnnwidgets", "course", str(tmp_path / "d"), "--notebooks", "77"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "77" in bad.stderr
