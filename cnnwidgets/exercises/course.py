"""The tutorials as an nbgrader course: :func:`write_course`.

The course is made from the solutions notebooks, which ``notebooks/src`` writes together with the tutorials, so
the tutorials, their solutions and the course never drift. In each exercise:

- the answer is a solution cell (``### BEGIN SOLUTION`` … ``### END SOLUTION``), after ``answer = None`` so that an
  unanswered exercise is graded as unanswered, not with the previous exercise's answer;
- the check is an autograded test cell worth :data:`POINTS` points; under nbgrader a wrong answer raises
  :class:`AssertionError` whose message is the hint (see :func:`cnnwidgets.exercises.is_grading`);
- a widget exercise, graded from the widget's traits and ``result``, has a second, hidden test cell
  (``### BEGIN HIDDEN TESTS``) worth as much, which recomputes the result from the widget's settings.

Every other cell, setup and explanation alike, is read-only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..files import atomic_write

__all__ = ["POINTS", "TIMEOUT_S", "tutorials_folder", "course_notebook", "write_course"]

POINTS = 1
"""Points of each autograded test cell."""

TIMEOUT_S = 300
"""nbgrader's time limit for one cell (its default of 30 s is shorter than a CNN's first load)."""

_SCHEMA = 3

NBGRADER_CONFIG = """\
# nbgrader configuration of the cnnwidgets tutorials course (written by `cnnwidgets course`).
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "cnnwidgets"
c.ExecutePreprocessor.timeout = {timeout}
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
"""


def tutorials_folder() -> Path:
    """The folder that holds the tutorial notebooks and their ``solutions/``: ``notebooks/`` of a source checkout,
    else ``<prefix>/share/cnnwidgets/notebooks`` of an installed wheel.

    Raises
    ------
    FileNotFoundError
        If neither the installed package nor a source checkout has them.
    """
    import sys

    checkout = Path(__file__).resolve().parents[2] / "notebooks"  # a source checkout (an editable install)
    installed = Path(sys.prefix) / "share" / "cnnwidgets" / "notebooks"  # the wheel's shared data
    for folder in (checkout, installed):
        if (folder / "solutions").is_dir():
            return folder
    raise FileNotFoundError(f"the tutorial notebooks are not installed: no {installed / 'solutions'}")


def _meta(grade_id: str, *, solution: bool = False, grade: bool = False, points: int = 0) -> dict:
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": not solution,
        "schema_version": _SCHEMA,
        "solution": solution,
        "task": False,
    }
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def _code(source: str, meta: dict) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": meta, "outputs": [], "source": source}


def course_notebook(solutions_nb: dict, name: str, *, points: int = POINTS) -> dict:
    """The nbgrader source notebook made from one solutions notebook.

    Parameters
    ----------
    solutions_nb : dict
        The solutions notebook (nbformat 4, as JSON); its exercise cells carry ``metadata.cnnwidgets``.
    name : str
        The assignment's name (cell ids and grade ids start with its number).
    points : int
        Points of each test cell.

    Returns
    -------
    dict
        The notebook, in nbformat 4.
    """
    cells = []
    for i, cell in enumerate(solutions_nb["cells"]):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        source = source.replace("solutions=True", "solutions=False")
        info = cell.get("metadata", {}).get("cnnwidgets")
        if cell["cell_type"] != "code" or not info:
            out = {"cell_type": cell["cell_type"], "metadata": _meta(f"read-only-{i:02d}"), "source": source}
            if cell["cell_type"] == "code":
                out.update(execution_count=None, outputs=[])
            cells.append(out)
            continue
        number = info["exercise"].split(".")[-1]
        check = info["check"]
        answer = source[: source.rindex(check)].strip("\n") if check in source else source
        solution = f"answer = None\n### BEGIN SOLUTION\n{answer}\n### END SOLUTION"
        cells.append(_code(solution, _meta(f"answer-{number}", solution=True)))
        cells.append(_code(f"assert {check}", _meta(f"check-{number}", grade=True, points=points)))
        if info.get("hidden"):
            hidden = f"# hidden test of exercise {number}\n### BEGIN HIDDEN TESTS\nassert {info['hidden']}\n### END HIDDEN TESTS"
            cells.append(_code(hidden, _meta(f"hidden-check-{number}", grade=True, points=points)))
    for i, cell in enumerate(cells):
        cell["id"] = f"{name[:2]}-{i:03d}-{cell['metadata']['nbgrader']['grade_id']}"[:64]
    return {
        "cells": cells,
        "metadata": dict(solutions_nb.get("metadata", {})),
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write_course(folder, *, notebooks=None, points: int = POINTS, timeout: int = TIMEOUT_S) -> Path:
    """Write the tutorials as an nbgrader course: ``nbgrader_config.py`` and ``source/<NN_name>/<NN_name>.ipynb``.

    Parameters
    ----------
    folder : str or os.PathLike
        The course's root folder (created if missing); existing sources of the same names are replaced.
    notebooks : iterable of str, optional
        Two-digit tutorial numbers (``["01", "03"]``); all tutorials with exercises when omitted.
    points : int
        Points of each autograded test cell.
    timeout : int
        nbgrader's time limit per cell, in seconds.

    Returns
    -------
    pathlib.Path
        ``folder``.

    Raises
    ------
    ValueError
        For an unknown tutorial number, or ``points``/``timeout`` that are not positive integers.
    """
    for label, value in (("points", points), ("timeout", timeout)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    root = tutorials_folder()
    found = {p.stem[:2]: p for p in sorted((root / "solutions").glob("[0-9][0-9]_*.ipynb"))}
    wanted = sorted(found) if notebooks is None else [str(n) for n in notebooks]
    unknown = [n for n in wanted if n not in found]
    if unknown:
        raise ValueError(f"notebooks: no tutorial {unknown[0]!r} with exercises; there are {sorted(found)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for number in wanted:
        path = found[number]
        if not re.fullmatch(r"\d\d_[a-z0-9_]+", path.stem):
            continue
        nb = course_notebook(json.loads(path.read_text(encoding="utf-8")), path.stem, points=points)
        target = folder / "source" / path.stem
        target.mkdir(parents=True, exist_ok=True)
        atomic_write(target / f"{path.stem}.ipynb", json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    atomic_write(folder / "nbgrader_config.py", NBGRADER_CONFIG.format(timeout=int(timeout)))
    return folder
