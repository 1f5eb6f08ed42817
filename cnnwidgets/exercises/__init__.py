"""Exercises with feedback for the tutorial notebooks, and their grading.

Each tutorial has a few exercises. A student writes an answer in a cell and calls the matching check, which prints
friendly feedback: a right answer is confirmed, a wrong or missing one gets a hint. A check never raises in student
mode, so a half-done notebook still runs from top to bottom.

When grading, a wrong or missing answer raises :class:`AssertionError` whose message is the hint: under nbgrader
(which sets ``NBGRADER_EXECUTION`` to ``autograde`` or ``validate``), after :func:`grading` ``(True)``, and in the
solutions notebooks (``solutions=True``). :func:`write_course` turns the tutorials into an nbgrader course.

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

import os
from typing import Any

from . import answers as _answers  # noqa: F401 - registers the written-answer exercises
from . import widget_checks as _widget_checks  # noqa: F401 - registers the widget exercises
from .registry import REGISTRY, Exercise, Feedback

__all__ = ["Checker", "Feedback", "checks", "grading", "is_grading", "list_exercises", "write_course"]

_GRADING: list[bool | None] = [None]  # set by grading(); None: follow NBGRADER_EXECUTION


def grading(on: bool | None = True) -> None:
    """Make every check assert (``True``), print feedback only (``False``), or follow nbgrader (``None``).

    Parameters
    ----------
    on : bool or None
        ``None`` restores the default: grading while ``NBGRADER_EXECUTION`` is ``autograde`` or ``validate``.
    """
    if on is not None and not isinstance(on, bool):
        raise TypeError(f"on must be True, False or None, got {type(on).__name__}")
    _GRADING[0] = on


def is_grading() -> bool:
    """Whether checks raise :class:`AssertionError` on a wrong answer (see :func:`grading`)."""
    if _GRADING[0] is not None:
        return _GRADING[0]
    return os.environ.get("NBGRADER_EXECUTION", "") in ("autograde", "validate")


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
    keys = [notebook] if notebook is not None else sorted(REGISTRY)
    return {key: [ex.title for _, ex in sorted(registry(key).items())] for key in keys}


def registry(notebook: str) -> dict[int, Exercise]:
    """The exercises of ``notebook`` by number."""
    if notebook not in REGISTRY:
        raise ValueError(f"no exercises for notebook {notebook!r}; there are {sorted(REGISTRY)}")
    return REGISTRY[notebook]


def _run(check, answer: Any, context: dict, hint: str) -> Feedback:
    """A check's feedback; a malformed answer gets feedback too, never a traceback."""
    try:
        return check(answer, **context)
    except Exception as err:
        return Feedback(False, f"That answer could not be checked ({err}). Hint: {hint}")


def _verdict(ex: Exercise, answer: Any, context: dict) -> Feedback:
    """The visible check's feedback; when it passes but the hidden test fails, the hidden test's, with the hint."""
    feedback = _run(ex.check, answer, context, ex.hint)
    if feedback.passed and ex.hidden is not None:
        hidden = _run(ex.hidden, answer, context, ex.hint)
        if not hidden.passed:
            return Feedback(False, hidden.message + ("" if "Hint:" in hidden.message else f" Hint: {ex.hint}"))
    return feedback


class Checker:
    """The checks of one notebook: ``check.ex1(answer)``, ``check.ex2(answer)``, ...

    ``check.hidden.exN(answer)`` is exercise N's hidden test (the course's ``### BEGIN HIDDEN TESTS`` cells). The
    visible check runs it too: it never calls an answer right that its hidden test fails.

    Parameters
    ----------
    notebook : str
        The notebook's two-digit number, such as ``"01"``.
    solutions : bool, default False
        When True every check asserts that the answer is right (the solutions notebooks); when False a wrong answer
        prints a hint and the notebook goes on, unless :func:`is_grading`.

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
        self.exercises = registry(notebook)
        self.results: dict[int, Feedback] = {}
        self.hidden = _Hidden(self)

    def __getattr__(self, name: str):
        if name.startswith("ex") and name[2:].isdigit() and int(name[2:]) in self.__dict__.get("exercises", {}):
            number = int(name[2:])

            def check(answer=None, **context):
                __tracebackhide__ = True  # noqa: F841 - IPython and pytest show the hint, not this frame
                return self._check(number, answer, context)

            return check
        raise AttributeError(f"{type(self).__name__!r} has no exercise {name!r}")

    def __dir__(self):
        return [*super().__dir__(), *(f"ex{n}" for n in self.exercises)]

    def _check(self, number: int, answer: Any, context: dict) -> Feedback:
        __tracebackhide__ = True  # noqa: F841
        ex = self.exercises[number]
        label = f"Exercise {self.notebook}.{number}"
        if answer is None or answer is Ellipsis:
            feedback = Feedback(False, f"No answer yet. Put it in `answer` and run the cell again. Hint: {ex.hint}")
            print(feedback.message)
        else:
            feedback = _verdict(ex, answer, context)
            mark = "✔ right." if feedback.passed else "✘ not yet."
            print(f"{label} {mark} {feedback.message}")
        self.results[number] = feedback
        if not feedback.passed and (self.solutions or is_grading()):
            raise AssertionError(f"{label}: {feedback.message}")
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


class _Hidden:
    """``check.hidden.exN(answer)``: exercise N's hidden test. It prints nothing when it passes, and asserts with
    the exercise's hint when it fails (hidden tests run only when grading)."""

    def __init__(self, checker: Checker):
        self._checker = checker

    def __getattr__(self, name: str):
        exercises = self._checker.exercises
        if name.startswith("ex") and name[2:].isdigit() and int(name[2:]) in exercises:
            ex = exercises[int(name[2:])]

            def hidden(answer=None, **context):
                __tracebackhide__ = True  # noqa: F841
                label = f"Exercise {ex.notebook}.{ex.number}"
                if answer is None or answer is Ellipsis:
                    raise AssertionError(f"{label}: no answer. Hint: {ex.hint}")
                feedback = _verdict(ex, answer, context)
                if not feedback.passed:
                    extra = "" if "Hint:" in feedback.message else f" Hint: {ex.hint}"
                    raise AssertionError(f"{label}: {feedback.message}{extra}")
                return feedback

            return hidden
        raise AttributeError(f"no hidden test {name!r}")


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
    >>> checks("05").ex2(0.7).passed
    Exercise 05.2 ✔ right. 7 of the first 10 hits are relevant: P@10 = 0.7.
    True
    """
    return Checker(notebook, solutions=solutions)


def write_course(folder, **kwargs):
    """Write the tutorials as an nbgrader course into ``folder``; see :func:`cnnwidgets.exercises.course.write_course`."""
    from .course import write_course as write

    return write(folder, **kwargs)
