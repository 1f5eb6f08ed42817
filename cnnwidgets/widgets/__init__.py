"""Thin ipywidgets/anywidget front ends over :mod:`cnnwidgets.engine`; imported on first use.

The classes are those of the widget registry (:data:`cnnwidgets.registry.CLASSES`).
"""

import importlib

from ..registry import CLASSES

__all__ = sorted(CLASSES)


def __getattr__(name: str):
    module = CLASSES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
