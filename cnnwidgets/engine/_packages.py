"""What the engine's function-family packages (enhance, segment, layers) share."""

from __future__ import annotations

__all__ = ["adopt_public_names"]


def adopt_public_names(namespace: dict) -> None:
    """Make the package the home of its public functions and classes (their ``__module__``).

    ``segment.threshold`` is defined in ``segment/thresholds.py`` but belongs to ``cnnwidgets.engine.segment``:
    that is the name help(), the docs and the code the widgets show (``segment.threshold(image, ...)``) use.

    Parameters
    ----------
    namespace : dict
        The package's ``globals()``, with ``__name__`` and ``__all__``.
    """
    package = namespace["__name__"]
    for name in namespace["__all__"]:
        obj = namespace[name]
        if callable(obj) and getattr(obj, "__module__", "").startswith(package + "."):
            obj.__module__ = package
