"""cnnwidgets: a notebook lab bench for image processing and convolutional networks.

Public names are imported lazily, so ``import cnnwidgets`` is fast and importing
the engine never pulls in the widget stack.
"""

from __future__ import annotations

import importlib

from .registry import CLASSES

__version__ = "0.1.0"

_LAZY = {
    # device policy
    "get_device": "cnnwidgets.device",
    "faiss_gpu_available": "cnnwidgets.device",
    # image I/O
    "ImageLoadError": "cnnwidgets.io",
    "load_image": "cnnwidgets.io",
    "to_png_bytes": "cnnwidgets.io",
    "to_float": "cnnwidgets.io",
    "to_uint8": "cnnwidgets.io",
    # offline data
    "list_samples": "cnnwidgets.datasets",
    "sample": "cnnwidgets.datasets",
    "digits": "cnnwidgets.datasets",
    "shapes": "cnnwidgets.datasets",
    "ImageFolder": "cnnwidgets.datasets",
    # models
    "list_models": "cnnwidgets.engine.models",
    "create_model": "cnnwidgets.engine.models",
    # retrieval
    "ImageIndex": "cnnwidgets.index",
    # widgets: one row each in the widget registry
    **CLASSES,
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnwidgets' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
