"""The anywidget front-end pieces: one Python class per ES module in ``static/``.

- :class:`HistogramView` (``histogram.js``): a histogram with draggable threshold lines.
- :class:`ClickImage` (``clickimage.js``): an image that reports where it was clicked.
- :class:`Gallery` (``gallery.js``, ``gallery.css``): clickable result thumbnails with score bars.
"""

from __future__ import annotations

import pathlib

import anywidget
import traitlets as T

__all__ = ["HistogramView", "ClickImage", "Gallery"]

_STATIC = pathlib.Path(__file__).parent / "static"


class HistogramView(anywidget.AnyWidget):
    """A histogram with threshold lines; clicking or dragging on it sets ``picked`` (a value in image units)."""

    _esm = _STATIC / "histogram.js"
    counts = T.List(T.Float()).tag(sync=True)
    lo = T.Float(0.0).tag(sync=True)
    hi = T.Float(255.0).tag(sync=True)
    lines = T.List(T.Float()).tag(sync=True)
    log_scale = T.Bool(False).tag(sync=True)
    width = T.Int(512).tag(sync=True)
    height = T.Int(150).tag(sync=True)
    picked = T.Float(None, allow_none=True).tag(sync=True)


class ClickImage(anywidget.AnyWidget):
    """A PNG or JPEG image that reports clicks as ``click = [row_fraction, col_fraction, counter]``."""

    _esm = _STATIC / "clickimage.js"
    value = T.Bytes(b"").tag(sync=True)
    format = T.Enum(("png", "jpeg"), "png").tag(sync=True)
    width = T.Int(320).tag(sync=True)
    click = T.List([]).tag(sync=True)


class Gallery(anywidget.AnyWidget):
    """Clickable thumbnails with a score bar per descriptor and the predicted labels.

    Traits
    ------
    items : list of dict
        ``{path, name, thumb (data URL of a JPEG), score, scores: {name: value}, tags: [label, ...]}``.
    clicked : dict
        ``{path, n}`` set by the browser when a thumbnail is clicked (``n`` counts clicks).
    """

    _esm = _STATIC / "gallery.js"
    _css = _STATIC / "gallery.css"
    items = T.List(T.Dict()).tag(sync=True)
    clicked = T.Dict().tag(sync=True)
    empty_text = T.Unicode("type words or drop an image").tag(sync=True)
