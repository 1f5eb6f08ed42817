"""The checks of the tutorials' written answers: each returns :class:`Feedback` with a hint that fits the mistake
(the widget exercises are in :mod:`cnnwidgets.exercises.widget_checks`).

Most written answers are checked from data, ``written_answers.json``: for each exercise ``"<notebook>.<number>"``
its ``title`` and ``hint``, how the answer is ``read`` (:data:`READERS`), the ``cases`` it tells apart in order,
the right answer's first, and the hint for anything else (``otherwise``). A case has one matcher (:data:`MATCHERS`)
and either ``"right"`` (the confirmation) or ``"hint"``. The exercises whose check computes something are the
functions below.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .registry import Feedback, as_choice, as_number, as_shape, as_word, exercise, hint, noisy_camera, ok

READERS: dict[str, Callable[[Any], Any]] = {
    "shape": as_shape,
    "number": as_number,
    "word": as_word,
    "choice": as_choice,
    "text": lambda answer: str(answer).strip(),
}
"""How a written answer is read before it is matched: a tuple of ints, a finite float, a lower-case word (``-``
and ``_`` as spaces), the first letter of a choice, the text itself (stripped); None where it cannot be read."""


def _equals(values: list) -> Callable[[Any], bool]:
    allowed = [tuple(v) if isinstance(v, list) else v for v in values]  # a list in the data is a shape
    return lambda value: value in allowed


MATCHERS: dict[str, Callable[[Any], Callable[[Any], bool]]] = {
    "equals": _equals,
    "near": lambda spec: lambda value: value is not None and abs(value - spec[0]) < spec[1],
    "within": lambda spec: lambda value: value is not None and abs(value - spec[0]) <= spec[1],
    "above": lambda bound: lambda value: value is not None and value > bound,
    "below": lambda bound: lambda value: value is not None and value < bound,
    "between": lambda spec: lambda value: value is not None and spec[0] < value < spec[1],
    "length": lambda n: lambda value: value is not None and len(value) == n,
    "contains": lambda text: lambda value: text in value,
    "starts_with": lambda prefixes: lambda value: value.startswith(tuple(prefixes)),
}
"""What a case accepts of a read answer, made from the case's value in the data: ``equals``, any of a list (a
list inside it is a shape); ``near`` ``[target, tolerance]``, a number closer than the tolerance; ``within``, the
same with the tolerance included; ``above`` or ``below`` a bound; ``between`` ``[low, high]``, both excluded;
``length``, a shape of that many axes; ``contains``, a text inside; ``starts_with``, one of a list of texts."""


def _case(case: dict) -> tuple[Callable[[Any], bool], Feedback]:
    """One case of the data as (the matcher, the feedback it gives)."""
    (kind,) = set(case) & set(MATCHERS)
    (verdict,) = set(case) & {"right", "hint"}
    return MATCHERS[kind](case[kind]), (ok if verdict == "right" else hint)(case[verdict])


def _register_written(key: str, spec: dict) -> None:
    """Register the exercise ``key`` ("<notebook>.<number>") of the data: its check reads the answer and gives the
    feedback of the first case that accepts it, else the hint ``otherwise``."""
    notebook, number = key.split(".")
    read, cases, otherwise = READERS[spec["read"]], [_case(c) for c in spec["cases"]], hint(spec["otherwise"])

    def check(answer) -> Feedback:
        value = read(answer)
        return next((feedback for accepts, feedback in cases if accepts(value)), otherwise)

    check.__name__ = check.__qualname__ = f"_nb{notebook}_ex{number}"
    exercise(notebook, int(number), spec["title"], spec["hint"])(check)


for _key, _spec in json.loads(Path(__file__).with_name("written_answers.json").read_text(encoding="utf-8")).items():
    _register_written(_key, _spec)


@exercise("00", 3, "the error for a broken file", "Try io.load_image on a file that is not an image and catch it.")
def _nb00_ex3(answer):
    from .. import io

    name = answer.__name__ if isinstance(answer, type) else str(answer).strip().split(".")[-1]
    if answer is io.ImageLoadError or name == "ImageLoadError":
        return ok("io.ImageLoadError names the file and the reason; catch it to skip bad files.")
    if name in {"ValueError", "OSError", "Exception", "IOError", "UnidentifiedImageError"}:
        return hint("cnnwidgets raises its own, more specific error class: look in cnnwidgets.io.")
    return hint("Run io.load_image on a broken file inside try/except Exception as err and print type(err).")


def _camera_psnr(cutoff: float) -> float:
    from ..engine import enhance

    camera, noisy = noisy_camera()
    return float(enhance.psnr(camera, enhance.frequency_filter(noisy, cutoff=cutoff, order=2)))


@exercise("01", 1, "a cutoff that reaches 25 dB", "Try cutoffs between 0.02 and 0.5 and print the PSNR of each.")
def _nb01_ex1(answer):
    cutoff = as_number(answer)
    if cutoff is None or not 0 < cutoff <= 0.5:
        return hint("The cutoff is a fraction of the sampling frequency: a number between 0 and 0.5, such as 0.3.")
    score = _camera_psnr(cutoff)
    if score >= 25:
        return ok(f"cutoff {cutoff:g} gives {score:.2f} dB.")
    if cutoff < 0.2:
        return hint(f"{score:.2f} dB: the result is too blurred. Raise the cutoff to keep more detail.")
    return hint(f"{score:.2f} dB: too much noise passes. Lower the cutoff.")


@exercise("02", 2, "the threshold for an unevenly lit page", "Compare a global and a local method on the shadow.")
def _nb02_ex2(answer):
    from ..engine import segment

    word = as_word(answer)
    if word in {"sauvola", "niblack", "local", "adaptive", "local sauvola", "local niblack"}:
        return ok("A local threshold follows the lighting, so the shadowed corner keeps only the text.")
    if word in {"mean", "gaussian", "median"}:
        return hint("Ambiguous: 'mean' is both a global and a local method. Name a local one built for text.")
    if word in segment.GLOBAL_METHODS or word == "fixed":
        return hint("One threshold for the whole page turns the shadow to ink. Which methods use a window?")
    return hint(f"Answer with a method name, such as one of {segment.LOCAL_METHODS}.")


@exercise("05", 1, "a text query for a class without captions", "The predicted labels are stored as tags.")
def _nb05_ex1(answer, *, index=None, folder="coffee"):
    if not isinstance(answer, str) or not answer.strip():
        return hint("Answer with a query string.")
    if folder in answer.lower():
        return hint(f"'{folder}' is in the file names, so keywords find it. Use a word only the labels know.")
    if index is None:
        return hint("Pass the index too: check.ex1(answer, index=index).")
    hits = index.search(text=answer, k=5)
    inside = [f"/{folder}/" in h.path.replace("\\", "/") for h in hits]
    if hits and all(inside):
        return ok(f"All 5 hits for {answer!r} are {folder} images, found through their predicted labels.")
    tags = {t for h in index.search(text=folder, k=3) for t, _ in h.tags[:3]}
    return hint(f"{sum(inside)} of 5 hits are {folder} images. Its images carry labels such as {sorted(tags)}.")
