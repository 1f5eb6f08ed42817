"""Write a tutorial notebook from a compact Python description (used to author notebooks/).

Each notebooks/src/nb_*.py script describes one tutorial notebook; run it from the repository root to rewrite the notebook:

    python notebooks/src/nb_00_getting_started.py

Usage::

    from make_notebook import write
    write("notebooks/00_getting_started.ipynb", [("md", "# Title"), ("code", "x = 1"), ("code", "# NBVAL_CHECK_OUTPUT\nprint(x)", "1\n")])

Exercises: a cell ``("exercise", student_source, solution_source)`` becomes a code cell holding the student source in
the tutorial notebook, and the solution source in a second notebook of the same name under ``notebooks/solutions/``,
which is written whenever a notebook has exercises. ``{solutions}`` in either source is replaced by ``False`` in the
tutorial and ``True`` in the solutions (``check = exercises.checks("01", solutions={solutions})``).
"""

import json
from pathlib import Path


def write(path, cells):
    path = Path(path)
    _write(path, [_version(cell, solutions=False) for cell in cells])
    if any(cell[0] == "exercise" for cell in cells):
        (path.parent / "solutions").mkdir(exist_ok=True)
        _write(path.parent / "solutions" / path.name, [_version(cell, solutions=True) for cell in cells])


def _version(cell, *, solutions):
    kind, src, *rest = cell
    if kind == "exercise":  # ("exercise", student source, solution source[, metadata])
        meta = rest[1] if len(rest) > 1 else {}
        src = rest[0] if solutions else src
        return ("code", src.replace("{solutions}", str(solutions)), meta)
    if kind == "code":
        src = src.replace("{solutions}", str(solutions))
    return (kind, src, *rest)


def _write(path, cells):
    nb = {
        "cells": [],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    for i, (kind, src, *rest) in enumerate(cells):
        src = src.strip("\n")
        expected = [r for r in rest if isinstance(r, str)]
        meta = next((r for r in rest if isinstance(r, dict)), {})
        cell = {
            "cell_type": "markdown" if kind == "md" else "code",
            "id": f"cell-{i:02d}",
            "metadata": meta,
            "source": src,
        }
        if kind != "md":
            cell.update(execution_count=None, outputs=[])
            if expected:  # the stdout a "# NBVAL_CHECK_OUTPUT" cell must print
                cell["execution_count"] = i + 1
                cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": expected[0]}]
        nb["cells"].append(cell)
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def exercises(notebook, items, *, intro=""):
    """The cells of a notebook's exercise section: a heading, the checker, then per exercise a task and an answer cell.

    Parameters
    ----------
    notebook : str
        The notebook's number, as ``cnnwidgets.exercises.checks`` takes it.
    items : list of tuple or dict
        ``(task_markdown, solution_source)`` or ``(task_markdown, solution_source, extra_check_arguments)``; the
        solution source sets ``answer``. The student's cell reads ``answer = None  # your answer here``.
        A widget exercise is a dict with ``task``, ``setup`` (a cell that shows the widget), ``student`` (the
        student's starting lines) and ``solution``; its check also has a hidden test (``check.hidden.exN``).
    intro : str
        Markdown after the heading.
    """
    cells = [
        (
            "md",
            "## Exercises with feedback\nWrite your answer in the cell, run it, and read the feedback. A wrong answer "
            "gets a hint; nothing breaks, so you can come back later. " + intro,
        ),
        (
            "code",
            f'from cnnwidgets import exercises\n\ncheck = exercises.checks("{notebook}", solutions={{solutions}})',
        ),
    ]
    for number, item in enumerate(items, 1):
        if isinstance(item, dict):  # a widget exercise: a setup cell shows the widget, the answer sets it
            task, solution, extra = item["task"], item["solution"], item.get("extra")
            student = item["student"].strip()
        else:
            task, solution, *more = item
            extra = more[0] if more else None
            student = "answer = None  # your answer here"
        call = f"check.ex{number}(answer{', ' + extra if extra else ''})"
        meta = {"cnnwidgets": {"exercise": f"{notebook}.{number}", "check": call}}
        if isinstance(item, dict):
            meta["cnnwidgets"]["hidden"] = f"check.hidden.ex{number}(answer{', ' + extra if extra else ''})"
        cells.append(("md", f"**Exercise {number}.** {task.strip()}"))
        if isinstance(item, dict):
            cells.append(("code", item["setup"].strip()))
        cells.append(("exercise", f"{student}\n{call}", f"{solution.strip()}\n{call}", meta))
    cells.append(("code", "print(check.summary())"))
    return cells
