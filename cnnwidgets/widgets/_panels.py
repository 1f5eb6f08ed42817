"""Pictures in a widget: a titled image panel fed from NumPy arrays, and Matplotlib figures as PNG bytes."""

from __future__ import annotations

import html
import threading

import ipywidgets as W
import numpy as np

from ..io import to_png_bytes

__all__ = ["ImagePanel", "RunButtons", "figure_png"]


class ImagePanel(W.VBox):
    """A titled image shown from a NumPy array, sent to the browser as PNG bytes.

    Parameters
    ----------
    title : str
        Caption above the image.
    width : int
        Display width in CSS pixels (the image keeps its aspect ratio).
    format : {"png", "jpeg"}
        Encoding sent to the browser. JPEG (quality 90) encodes photographs several times faster than PNG;
        keep PNG for masks, labels and anything that must stay exact.
    """

    def __init__(self, title: str = "", *, width: int = 256, format: str = "png", **kwargs):
        if format not in ("png", "jpeg"):
            raise ValueError(f"format must be 'png' or 'jpeg', got {format!r}")
        self.format = format
        self._title_text = title
        self.title = W.HTML(f"<b>{html.escape(title)}</b>")
        self.image = W.Image(format=format, layout=W.Layout(width=f"{width}px", height="auto", object_fit="contain"))
        self.array = None
        super().__init__([self.title, self.image], **kwargs)
        self.add_class("cnnw-panel")
        self._describe()

    def show(self, array, *, rescale: bool = False):
        """Display an H×W or H×W×C array (any dtype :func:`cnnwidgets.io.to_uint8` takes)."""
        from ..io import to_uint8

        arr = np.asarray(array)
        if rescale:
            arr = to_uint8(arr, rescale=True)
        self.array = arr
        if self.format == "jpeg":
            from ..io import to_jpeg_bytes

            self.image.value = to_jpeg_bytes(arr)
        else:
            self.image.value = to_png_bytes(arr)
        self._describe()

    def set_title(self, title: str):
        self._title_text = title
        self._describe()

    def _describe(self):
        """The image's text alternative, in the title line for screen readers (not shown): what the picture is."""
        if self.array is None:
            self.alt = f"{self._title_text or 'image'} (not computed yet)"
        else:
            h, w = self.array.shape[:2]
            kind = "colour" if self.array.ndim == 3 and self.array.shape[2] >= 3 else "grey-level"
            self.alt = f"{self._title_text or 'image'}: {kind} image, {w} by {h} pixels"
        self.title.value = (
            f"<b>{html.escape(self._title_text)}</b><span class='cnnw-alt' style='position:absolute;left:-10000px;"
            f"width:1px;height:1px;overflow:hidden'>{html.escape(self.alt)}</span>"
        )


def figure_png(fig, *, dpi: int = 80) -> bytes:
    """Render a Matplotlib figure to PNG bytes and close it (Agg backend, no pyplot state)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


class RunButtons:
    """The Start and Stop buttons of a training run, and the event Stop sets.

    Parameters
    ----------
    css : str
        The buttons get the classes ``cnnw-<css>-start`` and ``cnnw-<css>-stop``.
    on_start, on_stop : callable
        Called with no argument when the button is clicked.

    Attributes
    ----------
    start, stop : ipywidgets.Button
    stop_event : threading.Event
        Set by :meth:`request_stop`, cleared by :meth:`begin`; the training loop reads it.
    """

    def __init__(self, css: str, on_start, on_stop):
        self.start = W.Button(description="Start", button_style="success", icon="play")
        self.stop = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.start.add_class(f"cnnw-{css}-start")
        self.stop.add_class(f"cnnw-{css}-stop")
        self.start.on_click(lambda _b: on_start())
        self.stop.on_click(lambda _b: on_stop())
        self.stop_event = threading.Event()

    def begin(self) -> None:
        """A run starts: Stop is enabled, Start disabled, the stop event cleared."""
        self.stop_event.clear()
        self.start.disabled, self.stop.disabled = True, False

    def end(self) -> None:
        """The run ended: Start is enabled again."""
        self.start.disabled, self.stop.disabled = False, True

    def request_stop(self) -> None:
        """Ask the run to end (sets the stop event)."""
        self.stop_event.set()
