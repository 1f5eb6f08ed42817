"""The exercise registry: what a check returns (:class:`Feedback`), how exercises are registered, and the small
parsers checks share. The checks themselves live in :mod:`cnnwidgets.exercises.answers` and :mod:`cnnwidgets.exercises.widget_checks`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
class Exercise:
    """One exercise: where it is, what it asks, its checks."""

    notebook: str
    number: int
    title: str
    hint: str
    check: Callable[..., Feedback]
    hidden: Callable[..., Feedback] | None = None


REGISTRY: dict[str, dict[int, Exercise]] = {}


def exercise(notebook: str, number: int, title: str, hint: str, *, hidden=None):
    """Register the decorated function as exercise ``number`` of ``notebook``.

    ``hidden`` is the check of the hidden test (nbgrader's ``### BEGIN HIDDEN TESTS``), run on the same answer and
    context; the visible check runs it too, so it never calls an answer right that the hidden test fails.
    """

    def register(fn):
        REGISTRY.setdefault(notebook, {})[number] = Exercise(notebook, number, title, hint, fn, hidden)
        return fn

    return register


def ok(message: str) -> Feedback:
    return Feedback(True, message)


def hint(message: str) -> Feedback:
    return Feedback(False, message)


def as_word(answer: Any) -> str:
    return str(answer).strip().lower().replace("-", " ").replace("_", " ")


def as_number(answer: Any) -> float | None:
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def as_shape(answer: Any) -> tuple[int, ...] | None:
    try:
        return tuple(int(v) for v in answer)
    except (TypeError, ValueError):
        return None


def as_choice(answer: Any) -> str:
    return str(answer).strip().lower().strip("()").strip()[:1]


def noisy_camera():
    """(camera, camera with Gaussian noise of amount 0.1, seed 0): the image notebook 01's exercises filter."""
    from ..datasets import sample
    from ..engine import enhance

    camera = sample("camera")
    return camera, enhance.add_noise(camera, kind="gaussian", amount=0.1, seed=0)
