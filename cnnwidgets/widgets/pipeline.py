"""Pipeline: one linked bench — enhance → segment → regions → recognise (→ retrieve).

The stages are those of :class:`cnnwidgets.engine.pipeline.Pipeline`. The enhancement row is a
:class:`FilterDesigner`'s control tabs and the segmentation row a :class:`ThresholdSegmenter`'s: the same controls,
bound to the same traits, whose engine calls become the pipeline's stages. One render runs the whole chain
(stages before the one that changed come from the cache) and then fills every thumbnail, so the picture never
mixes old and new stages.
"""

from __future__ import annotations

import base64
import contextlib
import html
import numbers

import ipywidgets as W
import numpy as np
import traitlets as T

from ..engine import pipeline as P
from ..engine.calls import Call, Ref
from ..io import resize_to_fit, to_jpeg_bytes, to_uint8
from ._base import WidgetBase, param
from ._inputs import TraitTypeError, TraitValueError, check_image, describe, load_source
from ._panels import ImagePanel
from .browser_widgets import Gallery
from .filter_designer import FilterDesigner
from .threshold_segmenter import ThresholdSegmenter

_BOX = {"width": "180px"}
__all__ = ["Pipeline"]

_THUMB = 220
_SEGMENT_MODES = ("global", "local", "regions")


def _data_url(rgb: np.ndarray, side: int = 120) -> str:
    small = resize_to_fit(rgb, side) if max(rgb.shape[:2]) > side else rgb
    return "data:image/jpeg;base64," + base64.b64encode(to_jpeg_bytes(small, quality=85)).decode("ascii")


def _hit_item(hit) -> dict:
    from .search_box import thumbnail_url

    try:
        thumb = thumbnail_url(hit.path, 120)
    except (ValueError, OSError):  # moved or deleted since it was indexed
        thumb = ""
    name = hit.path.replace("\\", "/").rsplit("/", 1)[-1]
    return {"path": hit.path, "name": name, "thumb": thumb, "score": float(hit.score), "scores": {}, "tags": []}


class Pipeline(WidgetBase):
    """The seed's whole flow on one image, each stage live.

    Parameters
    ----------
    image : any source :func:`cnnwidgets.io.load_image` accepts, or a sample name, optional
        Default: the ``coins`` sample. Images larger than ``work_side`` are processed at that size
        (:attr:`working_image`).
    index : cnnwidgets.index.ImageIndex, optional
        With an index, clicking a region searches it for similar images.
    work_side : int
        Long side of the image the pipeline runs on.
    show_code : bool
        Show the chain's script (``code``) under the widget.
    **kwargs
        Initial values of the traits below.

    Traits
    ------
    enhance_on : bool
        Run the enhancement stage (off: the segmentation reads the image itself).
    min_area, margin : int
        As :func:`cnnwidgets.engine.pipeline.find_regions`.
    model : str
        The CNN that recognises the regions; ``topk`` labels each.
    region : int
        The region whose retrieval results are shown (clicking a region sets it).
    result : dict
        Every stage's output: ``image``, ``enhance``, ``segment``, ``regions``, ``recognise`` (and ``retrieve``).
    code : str
        The chain as one script, from ``image`` (the :attr:`working_image`) and ``index``.

    Notes
    -----
    ``enhancer`` and ``segmenter`` are the embedded :class:`FilterDesigner` and :class:`ThresholdSegmenter`; set
    their traits (``pipeline.enhancer.cutoff = 0.2``, ``pipeline.segmenter.method = "li"``) to change a stage.
    """

    enhance_on = param(T.Bool(True), W.Checkbox, description="enhance first", indent=False)
    min_area = param(
        T.Int(20), W.BoundedIntText, feeds=P.find_regions, description="min area", min=1, max=100_000, layout=_BOX
    )
    margin = param(T.Int(8), W.BoundedIntText, feeds=P.find_regions, min=0, max=200, layout=_BOX)
    model = param(T.Unicode("efficientnet_lite0"), feeds=P.recognise)
    topk = param(T.Int(3), feeds=P.recognise, keyword="k")
    region = param(T.Int(0))

    def __init__(self, image=None, *, index=None, work_side: int = 512, show_code: bool = False, **kwargs):
        self.check_keywords(kwargs)
        check_image(image, owner="Pipeline")
        if index is not None and not callable(getattr(index, "search", None)):
            raise TraitTypeError(
                f"Pipeline: index must be a cnnwidgets.index.ImageIndex or None; got {describe(index)}"
            )
        if not isinstance(work_side, numbers.Integral) or isinstance(work_side, bool):
            raise TraitTypeError(f"Pipeline: work_side must be an int; got {describe(work_side)}")
        if work_side < 16:
            raise TraitValueError(f"Pipeline: work_side must be at least 16 pixels; got {work_side}")
        arr = load_source("coins" if image is None else image, mode="opaque", name="Pipeline.image")
        self.working_image = resize_to_fit(arr, int(work_side))
        self.index = index
        self._engine = P.Pipeline.default(index_given=index is not None)
        self._ready = False

        self.enhancer = FilterDesigner(self.working_image)
        self.segmenter = ThresholdSegmenter(self.working_image, preview_side=max(self.working_image.shape[:2]))
        self.enhancer.observe(self._stage_changed, names=self.enhancer.parameters())
        self.segmenter.observe(self._stage_changed, names=[*self.segmenter.parameters(), "mode"])

        self.p_input = ImagePanel("input", width=_THUMB, format="jpeg")
        self.p_enhanced = ImagePanel("enhanced", width=_THUMB, format="jpeg")
        self.p_mask = ImagePanel("segmented", width=_THUMB)
        self.p_regions = ImagePanel("regions", width=_THUMB, format="jpeg")
        for panel, cls in (
            (self.p_input, "cnnw-pl-input"),
            (self.p_enhanced, "cnnw-pl-enhanced"),
            (self.p_mask, "cnnw-pl-mask"),
            (self.p_regions, "cnnw-pl-regions"),
        ):
            panel.add_class(cls)
        self.regions_gallery = Gallery(empty_text="no regions: try another threshold or a smaller minimum area")
        self.regions_gallery.layout = W.Layout(max_width="760px", max_height="640px", overflow="auto")
        self.regions_gallery.add_class("cnnw-pl-gallery")
        self.retrieval_gallery = Gallery(empty_text="click a region to search the index")
        self.retrieval_gallery.add_class("cnnw-pl-retrieval")
        self.retrieval_gallery.layout.display = None if index is not None else "none"
        self.regions_gallery.observe(self._region_clicked, names="clicked")
        self.region_panel = ImagePanel("chosen region", width=160, format="jpeg")
        self.region_panel.add_class("cnnw-pl-region")
        self.region_info = W.HTML("")
        self.region_info.add_class("cnnw-pl-region-info")

        c_seg_mode = W.ToggleButtons(options=list(_SEGMENT_MODES), description="segment by")
        c = self.make_controls()
        seg = self.segmenter
        seg.bind(
            c_seg_mode,
            "mode",
            name="pipeline_mode",
            to_control=lambda w: w.mode if w.mode in _SEGMENT_MODES else "global",
        )
        self._mode_rows = {
            "global": W.VBox([W.HBox([seg.controls["method"], seg.controls["invert"]]), seg.controls["value"]]),
            "local": W.HBox([seg.controls["local_method"], seg.controls["window"]]),
            "regions": W.HBox([seg.controls["region_method"], seg.controls["clusters"]]),
        }
        seg_controls = W.VBox([c_seg_mode, *self._mode_rows.values()])
        seg.observe(self._show_mode_row, names="mode")
        self._show_mode_row()

        def row(title, controls, *pictures):
            head = W.HTML(f"<b>{html.escape(title)}</b>", layout=W.Layout(width="110px"))
            return W.HBox([head, controls, *pictures], layout=W.Layout(align_items="flex-start"))

        rows = W.VBox(
            [
                row("1 · enhance", W.VBox([c["enhance_on"], self.enhancer.tabs]), self.p_input, self.p_enhanced),
                row("2 · segment", seg_controls, self.p_mask),
                row("3 · regions", W.VBox([c["min_area"], c["margin"]]), self.p_regions),
                row("4 · recognise", self.regions_gallery, W.VBox([self.region_panel, self.region_info])),
                *([row("5 · retrieve", W.HTML("click a region above"), self.retrieval_gallery)] if index else []),
            ]
        )
        super().__init__([rows], show_code=show_code)
        self.add_class("cnnw-pipeline")
        self.observe(self._stage_changed, names=self.parameters())
        self.set_traits_from(kwargs)
        self._ready = True
        self.p_input.show(self._rgb(self.working_image))
        self.request_update()

    # ------------------------------------------------------------------ events
    def _stage_changed(self, change=None):
        if getattr(self, "_ready", False) and not self.is_quiet():
            self.request_update()

    def _show_mode_row(self, change=None):
        for mode, box in self._mode_rows.items():
            box.layout.display = None if self.segmenter.mode == mode else "none"

    def _region_clicked(self, change):
        path = (change["new"] or {}).get("path", "")
        if path.startswith("region:"):
            self.region = int(path.split(":", 1)[1])

    # ------------------------------------------------------------------ the chain
    def engine_pipeline(self) -> P.Pipeline:
        """The :class:`cnnwidgets.engine.pipeline.Pipeline` of the current controls (sharing one stage cache)."""
        p = self._engine.replaced("enhance", call=self.enhancer.filter_call(), enabled=self.enhance_on)
        p = p.replaced("regions", call=Call(P.find_regions, Ref("image"), **self.keywords(P.find_regions)))
        p = p.replaced("recognise", call=Call(P.recognise, **self.keywords(P.recognise)))
        if self.index is not None:
            p = p.replaced("retrieve", region=self.region)
        return p

    def _segment_recipe(self, segment_input):
        """The segmenter's recipe for ``segment_input`` (thresholds computed on that image)."""
        seg = self.segmenter
        if seg.mode not in _SEGMENT_MODES:
            seg.mode = "global"
        if (
            seg.source is None
            or seg.source.shape != segment_input.shape
            or not np.array_equal(seg.source, segment_input)
        ):
            with self.quiet():
                seg.image = segment_input
        return seg.recipe()

    def _render(self):
        p = self.engine_pipeline()
        # the enhancement's output is the segmenter's input: run the chain up to it, then splice the segmentation
        head = P.Pipeline([p.stage("enhance")]) if self.enhance_on else None
        if head is not None:
            head.cache = p.cache
            enhanced = head.run(self.working_image)["enhance"]
        else:
            enhanced = self.working_image
        p = p.replaced("segment", call=self._segment_recipe(enhanced))
        # the classical stages show at once; the CNN's labels and the retrieval follow when they are ready
        names = [s.name for s in p.stages]
        drawn = False  # the pictures of the classical stages, once drawn, are not encoded again below
        if "recognise" in names:
            quick = P.Pipeline(p.stages[: names.index("recognise")])
            quick.cache = p.cache
            with contextlib.suppress(P.StageError, ValueError):  # the full run below reports the failure
                self._show(quick.run(self.working_image), galleries=False)
                drawn = True
        try:
            out = p.run(self.working_image, index=self.index)
        except P.StageError as exc:
            self._show(exc.outputs, pictures=not drawn)
            raise exc.error from None
        self._show(out, pictures=not drawn)
        self.code = p.code()
        self.result = out
        n = len(out["regions"])
        top = f"; largest: {out['recognise'][0][0][0]} ({out['recognise'][0][0][1]:.0%})" if n else ""
        self.set_status(f"{n} region{'s' * (n != 1)}{top}")

    # ------------------------------------------------------------------ pictures
    @staticmethod
    def _rgb(arr) -> np.ndarray:
        a = np.asarray(arr)
        a = to_uint8(np.clip(a, 0, 1)) if a.dtype.kind == "f" else to_uint8(a)
        return np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a[..., :3]

    def _show(self, out: dict, *, pictures: bool = True, galleries: bool = True):
        """Draw the stages' outputs: ``pictures`` (the enhanced image, the mask and the regions' outlines) and
        ``galleries`` (the regions with the CNN's labels, the chosen region, the retrieval)."""
        from ..engine import segment

        if pictures and "enhance" in out:
            self.p_enhanced.show(self._rgb(out["enhance"]))
        seg = out.get("segment")
        if pictures and seg is not None:
            self.p_mask.show(seg if seg.dtype == bool else to_uint8(seg, rescale=True))
        regions = out.get("regions")
        if regions is None:
            return
        if pictures:
            outlines = np.zeros(self.working_image.shape[:2], np.int32)
            for i, reg in enumerate(regions):
                t, l_, b, r = reg.bbox
                outlines[t:b, [l_, r - 1]] = outlines[[t, b - 1], l_:r] = i + 1
            self.p_regions.show(segment.overlay(self._rgb(self.working_image), outlines, alpha=1.0))
        if not galleries:
            return
        labels = out.get("recognise") or []
        self.regions_gallery.items = [
            {
                "path": f"region:{i}",
                "name": f"region {i + 1} · {reg.area} px",
                "thumb": _data_url(reg.crop),
                "score": float(top[0][1]) if top else 0.0,
                "scores": {label[:14]: float(p) for label, p in top[:3]},
                "tags": [label for label, _ in top[:1]],
            }
            for i, (reg, top) in enumerate(zip(regions, labels))
        ]
        if regions and 0 <= self.region < len(regions):
            chosen, top = regions[self.region], labels[self.region] if self.region < len(labels) else []
            self.region_panel.set_title(f"region {self.region + 1} ({chosen.area} px)")
            self.region_panel.show(chosen.crop)
            rows = "".join(f"<li>{html.escape(name)}: {p:.0%}</li>" for name, p in top)
            self.region_info.value = f"<ol style='margin:0;padding-left:1.4em'>{rows}</ol>"
        else:
            self.region_panel.set_title("chosen region")
            self.region_info.value = "<i>no such region</i>"
        hits = out.get("retrieve") or []
        self.retrieval_gallery.items = [_hit_item(h) for h in hits]
