"""Write a tutorial notebook from a compact Python description (used to author notebooks/).

Each notebooks/src/nb_*.py script describes one tutorial notebook; run it from the repository root to rewrite the notebook:

    python notebooks/src/nb_00_getting_started.py

Usage::

    from make_notebook import write
    write("notebooks/00_getting_started.ipynb", [("md", "# Title"), ("code", "x = 1"), ("code", "# NBVAL_CHECK_OUTPUT\nprint(x)", "1\n")])
"""

import json
from pathlib import Path


def write(path, cells):
    nb = {
        "cells": [],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    for i, (kind, src, *expected) in enumerate(cells):
        src = src.strip("\n")
        cell = {
            "cell_type": "markdown" if kind == "md" else "code",
            "id": f"cell-{i:02d}",
            "metadata": {},
            "source": src,
        }
        if kind != "md":
            cell.update(execution_count=None, outputs=[])
            if expected:  # the stdout a "# NBVAL_CHECK_OUTPUT" cell must print
                cell["execution_count"] = i + 1
                cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": expected[0]}]
        nb["cells"].append(cell)
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
