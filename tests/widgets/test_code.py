"""Every widget's ``code`` reproduces its ``result``: each array and list it holds, run in a fresh namespace."""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np
import pytest

from cnnwidgets import datasets
from cnnwidgets.engine import train
from cnnwidgets.engine.pipeline import Pipeline
from cnnwidgets.registry import CLASSES

IMAGE_WIDGETS = {"FilterDesigner": "astronaut", "ThresholdSegmenter": "coins", "LayerVisualizer": "chelsea"}


TIMINGS = {"seconds"}  # wall-clock fields: they differ from run to run


def _holds_data(value) -> bool:
    """True for an array or list, or a container (dict, NamedTuple, dataclass, tuple) holding one."""
    if isinstance(value, (np.ndarray, list)):
        return True
    if isinstance(value, dict):
        return any(_holds_data(v) for v in value.values())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_holds_data(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, tuple):
        return any(_holds_data(v) for v in value)
    return False


def _selected(value, made: dict) -> bool:
    """True when ``value`` is one element of a list the code made (a step picked in the view)."""
    for out in made.values():
        for field in getattr(out, "_fields", ()):
            items = getattr(out, field)
            if isinstance(items, list) and any(_equal(value, item) for item in items):
                return True
    return False


def _equal(a, b) -> bool:
    try:
        _same(a, b, "")
    except AssertionError:
        return False
    return True


def _same(shown, made, where: str) -> int:
    """Compare a result value with what the code made; returns how many arrays and lists were compared."""
    if isinstance(shown, np.ndarray):
        assert isinstance(made, np.ndarray), where
        assert shown.shape == made.shape, where
        if shown.dtype.kind in "fc":
            np.testing.assert_allclose(made, shown, atol=1e-5, err_msg=where)
        else:
            np.testing.assert_array_equal(made, shown, err_msg=where)
        return 1
    if isinstance(shown, dict):
        assert sorted(shown) == sorted(made), where
        return sum(_same(v, made[k], f"{where}[{k!r}]") for k, v in shown.items() if k not in TIMINGS)
    if isinstance(shown, tuple) and hasattr(shown, "_fields"):  # a NamedTuple: its fields
        return sum(_same(getattr(shown, f), getattr(made, f), f"{where}.{f}") for f in shown._fields)
    if dataclasses.is_dataclass(shown) and not isinstance(shown, type):
        fields = [f.name for f in dataclasses.fields(shown) if f.name not in TIMINGS]
        return sum(_same(getattr(shown, f), getattr(made, f), f"{where}.{f}") for f in fields)
    if isinstance(shown, (list, tuple)):
        assert len(shown) == len(made), where
        return 1 + sum(_same(a, b, f"{where}[{i}]") for i, (a, b) in enumerate(zip(shown, made)))
    if isinstance(shown, numbers.Real) and not isinstance(shown, bool):
        assert made == pytest.approx(shown, abs=1e-6), where
    return 0


def _widget(name, folder_index):
    import cnnwidgets

    cls = getattr(cnnwidgets, name)
    if name in IMAGE_WIDGETS:
        image = datasets.sample(IMAGE_WIDGETS[name], mode="rgb" if name == "LayerVisualizer" else "keep")
        return cls(image), {"image": image}
    if name == "TrainingDashboard":
        data = train.split(datasets.digits(), test=0.1, seed=0)[1]
        w = cls("tiny_cnn", data, epochs=1)
        w.start()
        return w, {"dataset": data}
    if name in ("SearchBox", "Pipeline"):
        index, root, _ = folder_index(
            {"samples": ("astronaut", "chelsea", "coffee"), "distortions": ("original", "crop")},
            descriptors=("cnn", "color"),
        )
        if name == "SearchBox":
            w = cls(index, k=4)
            w.text = "cat"
            return w, {"index": index}
        w = cls("coins", index=index)
        return w, {"index": index, "image": None}
    return cls(), {}


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_code_reproduces_every_array_and_list_in_result(name, folder_index):
    w, ns = _widget(name, folder_index)
    w.wait()
    assert w.code and w.result is not None, f"{name}: {w.status}"
    if name == "Pipeline":
        ns["image"] = w.working_image
    if w.code.startswith("index.search("):
        made = {"result": eval(w.code, ns)}
    else:
        exec(w.code, ns)
        made = ns
    result = w.result if isinstance(w.result, dict) else {"result": w.result}
    if name == "TrainingDashboard":
        result = {"history": w.result}
    if name == "Pipeline":  # the script names each stage's output by its variable (enhance → enhanced)
        result = {k if k == "image" else Pipeline.variable(k): v for k, v in result.items()}
    compared = 0
    for key, value in result.items():
        if not _holds_data(value):
            continue  # view state: a layer name, a shape, a chosen channel
        if key not in made and _selected(value, made):
            continue  # the step of a list of steps the view shows
        assert key in made, f"{name}: result[{key!r}] is not made by its code:\n{w.code}"
        compared += _same(value, made[key], f"{name}.result[{key!r}]")
    assert compared > 0, f"{name}: no array or list compared"
