"""Pure computation: image enhancement, segmentation, CNN models and layers, training, descriptors.

Nothing in this package imports ipywidgets, traitlets or IPython. Submodules are
imported on first use: ``from cnnwidgets.engine import enhance``.
"""

import importlib

_SUBMODULES = ("enhance", "segment", "models", "layers", "train", "features", "text", "calls", "pipeline")

__all__ = list(_SUBMODULES)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
