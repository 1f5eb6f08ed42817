"""SearchBox: type words, drop an image, or click a result for "more like this"; over :class:`cnnwidgets.index.ImageIndex`."""

from __future__ import annotations

import base64
import html
import numbers
import time
from pathlib import Path

import ipywidgets as W
import traitlets as T

from ..engine.calls import Call, Recipe, Ref, Step
from ..index.image_index import MODES, ImageIndex
from ._base import WidgetBase, param
from ._inputs import TraitTypeError, TraitValueError, describe
from ._panels import ImagePanel
from .browser_widgets import Gallery

__all__ = ["SearchBox", "Gallery"]


def thumbnail_url(path: str, side: int = 160) -> str:
    from ..io import load_image, resize_to_fit, to_jpeg_bytes

    img = load_image(path, mode="rgb")
    if max(img.shape[:2]) > side:
        img = resize_to_fit(img, side)
    return "data:image/jpeg;base64," + base64.b64encode(to_jpeg_bytes(img, quality=80)).decode("ascii")


class SearchBox(WidgetBase):
    """Search an image index by text, example image, or both, and browse the results.

    Parameters
    ----------
    index : cnnwidgets.index.ImageIndex
    text, mode, k : optional
        Initial trait values.

    Traits
    ------
    text : str
        Words to search for.
    mode : str
        One of :data:`cnnwidgets.index.MODES` ("auto" by default).
    k : int
        Number of results (1–100).
    image_path : str
        Path of the example image ("" for none or for an uploaded image, held in :attr:`query_image`).
    results : list of dict
        The hits as :meth:`cnnwidgets.index.Hit.to_dict` gives them.

    Clicking a result sets ``image_path`` to it, clears ``text`` and searches again ("more like this").
    """

    text = param(
        T.Unicode(""),
        W.Text,
        description="",
        placeholder="words, e.g. 'kitten' — Enter to search",
        continuous_update=False,
        layout={"width": "320px"},
    )
    mode = param(T.Enum(MODES, default_value="auto"), W.Dropdown, layout={"width": "180px"})
    k = param(T.Int(12), W.BoundedIntText, min=1, max=100, layout={"width": "120px"})
    image_path = param(T.Unicode(""))
    results = T.List()

    def __init__(self, index, *, text: str = "", mode: str = "auto", k: int = 12, thumb_side: int = 160):
        if not callable(getattr(index, "search", None)):
            raise TraitTypeError(f"SearchBox: index must be a cnnwidgets.index.ImageIndex; got {describe(index)}")
        if not isinstance(thumb_side, numbers.Integral) or isinstance(thumb_side, bool):
            raise TraitTypeError(f"SearchBox: thumb_side must be an int; got {describe(thumb_side)}")
        if not 16 <= thumb_side <= 1024:
            raise TraitValueError(f"SearchBox: thumb_side must lie in 16 … 1024 pixels; got {thumb_side}")
        self.index = index
        self.query_image = None
        self.thumb_side = thumb_side
        self._thumbs = {}
        c = self.make_controls()
        for name in ("text", "mode", "k"):
            c[name].add_class(f"cnnw-search-{name}")
        self._button = W.Button(description="Search", button_style="primary", layout=W.Layout(width="90px"))
        self._button.add_class("cnnw-search-button")
        self._clear = W.Button(description="Clear image", layout=W.Layout(width="110px"))
        upload = self._upload_control(self._on_upload, description="Query image")
        self._query_panel = ImagePanel("query image", width=96)
        self._query_panel.layout.display = "none"
        self.gallery = Gallery()
        self.gallery.add_class("cnnw-search-gallery")
        super().__init__(
            [
                W.HBox([c["text"], self._button, c["mode"], c["k"]]),
                W.HBox([upload, self._clear, self._query_panel]),
                self.gallery,
            ],
            show_code=True,
        )
        self.add_class("cnnw-searchbox")
        self._button.on_click(lambda _: self.request_update())
        self._clear.on_click(lambda _: self.clear_image())
        self.gallery.observe(self._on_click, names="clicked")
        self.observe(self._changed, names=self.parameters())
        with self.quiet():
            self.text, self.mode = text, mode
            self.k = int(k) if isinstance(k, numbers.Integral) and not isinstance(k, bool) else k
        self.request_update()

    @classmethod
    def from_folder(cls, path, *, descriptors=("cnn", "color"), captions=None, **kwargs) -> SearchBox:
        """Index a folder (with a progress bar) and open a SearchBox on it. ``kwargs`` go to :class:`SearchBox`."""
        from ..index import ImageIndex

        return cls(ImageIndex.build(path, descriptors=descriptors, captions=captions, progress=True), **kwargs)

    # ------------------------------------------------------------------ events
    def _changed(self, change):
        if change["name"] == "k" and not 1 <= change["new"] <= 100:
            self.k = max(1, min(100, int(change["new"])))
            return
        if not self.is_quiet():
            self.request_update()

    def _on_upload(self, array):
        self.query_image = array
        with self.quiet():
            self.image_path = ""
        self.request_update()

    def _on_click(self, change):
        path = (change["new"] or {}).get("path")
        if path:
            self.more_like_this(path)

    def more_like_this(self, path: str):
        """Search with the image at ``path`` as the example (what a click on a result does)."""
        with self.quiet():
            self.query_image = None
            self.text = ""
            if self.mode == "text":
                self.mode = "auto"
            self.image_path = str(path)
        self.request_update()

    def clear_image(self):
        """Forget the example image (uploaded or clicked)."""
        with self.quiet():
            self.query_image = None
            self.image_path = ""
        self.request_update()

    # ------------------------------------------------------------------ rendering
    def _query(self):
        if self.query_image is not None:
            return self.query_image, "query_image"
        if self.image_path:
            return self.image_path, repr(self.image_path)
        return None, None

    def recipe(self) -> Recipe:
        """The index search of the current query (text, example image or both): ``result`` and ``code``."""
        kw = {}
        text = self.text.strip()
        if text:
            kw["text"] = text
        if self.query_image is not None:
            kw["image"] = Ref("query_image")
        elif self.image_path:
            kw["image"] = self.image_path
        kw.update(mode=self.mode, k=self.k)
        return Recipe((Step("result", Call(ImageIndex.search, data="index", **kw)),))

    def _render(self):
        image, _ = self._query()
        text = self.text.strip()
        if image is not None:
            self._query_panel.layout.display = None
            from ..io import load_image

            self._query_panel.show(load_image(image, mode="rgb"))
        else:
            self._query_panel.layout.display = "none"
        if not text and image is None:
            self.results, self.result, self.code = [], [], ""
            self.gallery.items = []
            self.set_status("type words or drop an image")
            return
        recipe = self.recipe()
        self.code = recipe.code()
        self.set_status("searching…", "busy")
        start = time.perf_counter()
        hits = recipe(None, inputs={"index": self.index, "query_image": self.query_image})
        ms = (time.perf_counter() - start) * 1000
        self.result = hits
        self.results = [h.to_dict() for h in hits]
        self.gallery.items = [self._item(h) for h in hits]
        self.set_status(f"{len(hits)} results in {ms:.0f} ms" + ("" if hits else ": the index is empty"))

    def _item(self, hit) -> dict:
        if hit.path not in self._thumbs:
            try:
                self._thumbs[hit.path] = thumbnail_url(hit.path, self.thumb_side)
            except (ValueError, OSError):  # moved or deleted since it was indexed: show the entry without a picture
                self._thumbs[hit.path] = ""

        return {
            "path": hit.path,
            "name": Path(hit.path).name,
            "thumb": self._thumbs[hit.path],
            "score": float(hit.score),
            "scores": {k: float(v) for k, v in hit.scores.items() if k != "class_match"},
            "tags": [html.unescape(t) for t, _ in hit.tags[:3]],
        }
