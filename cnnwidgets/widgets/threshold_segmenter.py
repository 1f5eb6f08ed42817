"""ThresholdSegmenter: global, local, edge-based and region-based segmentation on one bench.

The maths lives in :mod:`cnnwidgets.engine.segment`; this module only wires traits to panels.
"""

from __future__ import annotations

from typing import NamedTuple

import ipywidgets as W
import numpy as np
import traitlets as T

from ..engine import segment
from ..engine.calls import Call, Computed, Recipe, RecipeCache, Ref, Step
from ..io import resize_to_fit, to_jpeg_bytes
from ._base import WidgetBase, param, slider
from ._inputs import ImageSource, load_source
from ._panels import ImagePanel
from .browser_widgets import ClickImage, HistogramView

__all__ = ["ThresholdSegmenter", "HistogramView", "ClickImage"]

MODES = ("global", "local", "edges", "regions", "compare")
GLOBAL_CHOICES = ("fixed",) + segment.GLOBAL_METHODS + ("multiotsu",)
REGION_METHODS = ("grow", "watershed", "kmeans")


_SMALL = {"width": "300px"}  # a Layout of its own per control: hiding one must not hide the others
_WIDE = {"width": "420px"}


class _ImageState(NamedTuple):
    """Everything derived from one image; replaced as a whole, so a background render never mixes two images."""

    source: np.ndarray  # as loaded
    gray_full: np.ndarray  # its gray version, full resolution
    preview: np.ndarray  # source at display size
    gray: np.ndarray  # gray at display size
    scale: float  # preview / full
    auto: dict  # automatic thresholds of the full image: {method or ("multiotsu", classes): value or error}
    steps: RecipeCache  # step outputs on the preview


class ThresholdSegmenter(WidgetBase):
    """Separate foreground from background by threshold, edges or regions, and compare the methods.

    Parameters
    ----------
    image : any source :func:`cnnwidgets.io.load_image` accepts, or a sample name, optional
        Default: the ``coins`` sample. Thresholds and edges work on its gray version
        (:func:`cnnwidgets.engine.segment.as_gray`); region growing and k-means on the colours.
    **kwargs
        Initial values of the traits below.

    Raises
    ------
    TypeError, ValueError
        A keyword that is no trait, a trait value of the wrong type or not allowed, or an ``image`` that is no
        image source (a short message naming the parameter). An image that cannot be decoded shows in the
        status line instead.

    Traits
    ------
    mode : {"global", "local", "edges", "regions", "compare"}
        The visible tab; only it is computed.
    method : {"fixed", "otsu", "li", "yen", "triangle", "isodata", "mean", "minimum", "multiotsu"}
        Global method. Clicking or dragging on the histogram sets ``value`` and switches to ``"fixed"``.
    value : float
        The fixed threshold, in the image's units (0–255 for 8-bit images).
    invert : bool
        Foreground at or below the threshold.
    classes : int
        Classes of multi-Otsu (2–5).
    local_method, window, k, offset
        As :func:`cnnwidgets.engine.segment.local_threshold` (``window`` in full-resolution pixels).
    edge_method, sigma, edge_threshold, low, high
        As :func:`cnnwidgets.engine.segment.edges` (``sigma`` in full-resolution pixels; ``low``/``high``
        are Canny's thresholds, ``None`` for scikit-image's defaults).
    region_method : {"grow", "watershed", "kmeans"}
    seeds : list of [row, col]
        Seed points in full-resolution pixels; clicking on the region image appends one.
    tolerance : float
        Region-growing tolerance (gray levels, or colour distance).
    clusters, kmeans_seed : int
        k-means parameters.
    preview_side : int
        Images with a longer side are processed at this size while controls move; :meth:`compute_full`
        computes the full resolution.
    threshold : float or None
        The global threshold now applied (the first one for multi-Otsu).
    thresholds : dict
        ``{method: value}`` of the compare view (``None`` where a method fails on this image).
    stats : dict
        :func:`cnnwidgets.engine.segment.mask_stats` of the shown mask (empty for label images).
    result : numpy.ndarray or dict
        Mask (bool) or labels (int32) at preview size; in the compare view a dict ``{method: mask}``.
    code : str
        Python that reproduces the result at full resolution from ``image`` (the loaded array, :attr:`source`).
    """

    image = ImageSource()
    mode = T.Enum(MODES, "global")
    # global
    method = param(T.Enum(GLOBAL_CHOICES, "otsu"), W.Dropdown, layout=_SMALL)
    value = slider(128.0, 0, 255, 1, description="threshold", layout=_WIDE)
    invert = param(T.Bool(False), W.Checkbox, description="invert (foreground dark)")
    classes = slider(3, 2, 5, feeds=segment.threshold_values, layout=_SMALL)
    # local
    local_method = param(T.Enum(segment.LOCAL_METHODS, "sauvola"), W.Dropdown, description="method", layout=_SMALL)
    window = slider(25, 3, 151, 2, feeds=segment.local_threshold, layout=_SMALL)
    k = slider(0.2, -1.0, 1.0, 0.01, feeds=segment.local_threshold, layout=_SMALL)
    offset = slider(0.0, -50, 50, 0.5, feeds=segment.local_threshold, layout=_SMALL)
    # edges
    edge_method = param(T.Enum(segment.EDGE_METHODS, "sobel"), W.Dropdown, description="operator", layout=_SMALL)
    sigma = slider(1.0, 0, 8, 0.1, feeds=(segment.edges, segment.watershed), description="σ smoothing", layout=_SMALL)
    edge_threshold = slider(
        0.05, 0, 1, 0.005, feeds=segment.edge_mask, keyword="threshold", description="threshold", layout=_SMALL
    )
    low = param(T.Float(None, allow_none=True))  # Canny's thresholds: a box each, where 0 stands for None
    high = param(T.Float(None, allow_none=True))
    # regions
    region_method = param(T.Enum(REGION_METHODS, "grow"), W.Dropdown, description="method", layout=_SMALL)
    seeds = param(T.List([]))
    tolerance = slider(20.0, 0, 128, 0.5, feeds=segment.region_grow, layout=_SMALL)
    clusters = slider(3, 1, 12, feeds=segment.kmeans_regions, description="k-means k", layout=_SMALL)
    kmeans_seed = param(T.Int(0), feeds=segment.kmeans_regions, keyword="seed")
    preview_side = T.Int(512)
    threshold = T.Float(None, allow_none=True, read_only=True)
    thresholds = T.Dict({}, read_only=True)
    stats = T.Dict({}, read_only=True)

    def __init__(self, image=None, **kwargs):
        self.source = None
        self._data = None
        self._building = True
        self._build_controls()
        self._show_controls()
        super().__init__([self._upload, self._tabs, self._full_button])
        self.observe(self._params_changed, names=[n for n in self.parameters() if n != "method"])
        self.add_class("cnnw-threshold-segmenter")
        self.set_traits_from(kwargs, hold=False)
        self._building = False
        from ..datasets import sample

        self.image = sample("coins") if image is None else image

    # ----------------------------------------------------------------- layout
    def _build_controls(self):
        c = self.make_controls()
        self._upload = self._upload_control(lambda arr: setattr(self, "image", arr))
        # global
        self.hist = HistogramView(width=600, height=150)
        self.hist.observe(self._histogram_picked, names="picked")
        self.mask_panel = ImagePanel("mask", width=300)
        self.overlay_panel = ImagePanel("overlay", width=300, format="jpeg")
        self.mask_panel.add_class("cnnw-seg-mask")
        self.overlay_panel.add_class("cnnw-seg-overlay")
        global_tab = W.VBox(
            [
                W.HBox([c["method"], c["invert"]]),
                c["value"],
                c["classes"],
                self.hist,
                W.HBox([self.mask_panel, self.overlay_panel]),
            ]
        )
        # local
        self._surface_panel = ImagePanel("threshold surface", width=300)
        self._local_mask_panel = ImagePanel("mask", width=300)
        self._local_mask_panel.add_class("cnnw-seg-local-mask")
        local_tab = W.VBox(
            [
                W.HBox([c["local_method"], c["window"]]),
                W.HBox([c["k"], c["offset"]]),
                W.HBox([self._surface_panel, self._local_mask_panel]),
            ]
        )
        # edges
        self._low_w = W.FloatText(description="Canny low", layout=W.Layout(width="180px"))
        self._high_w = W.FloatText(description="Canny high", layout=W.Layout(width="180px"))
        self._response_panel = ImagePanel("response", width=300)
        self._edges_panel = ImagePanel("edges", width=300)
        self._edges_panel.add_class("cnnw-seg-edges")
        edges_tab = W.VBox(
            [
                W.HBox([c["edge_method"], c["sigma"]]),
                W.HBox([c["edge_threshold"], self._low_w, self._high_w]),
                W.HBox([self._response_panel, self._edges_panel]),
            ]
        )
        # regions
        clear = W.Button(description="Clear seeds", icon="eraser")
        clear.on_click(lambda _: setattr(self, "seeds", []))
        self.click_image = ClickImage(width=360, format="jpeg")
        self.click_image.add_class("cnnw-seg-click")
        self.click_image.observe(self._image_clicked, names="click")
        self._labels_panel = ImagePanel("labels", width=360, format="jpeg")
        regions_tab = W.VBox(
            [
                W.HBox([c["region_method"], c["tolerance"]]),
                W.HBox([c["clusters"], clear]),
                W.HBox(
                    [
                        W.VBox([W.HTML("<b>click to place seeds</b> (region growing, watershed)"), self.click_image]),
                        self._labels_panel,
                    ]
                ),
            ]
        )
        # compare
        self.compare_panels = {m: ImagePanel(m, width=190) for m in segment.GLOBAL_METHODS}
        for p in self.compare_panels.values():
            p.add_class("cnnw-seg-compare")
        compare_tab = W.GridBox(
            list(self.compare_panels.values()), layout=W.Layout(grid_template_columns="repeat(4, 200px)")
        )

        self._tabs = W.Tab([global_tab, local_tab, edges_tab, regions_tab, compare_tab])
        for i, title in enumerate(["Global", "Local", "Edges", "Regions", "Compare all"]):
            self._tabs.set_title(i, title)
        self.bind(
            self._tabs,
            "mode",
            attr="selected_index",
            to_control=lambda w: MODES.index(w.mode),
            from_control=lambda i: {"mode": MODES[i]},
        )
        self._full_button = self._full_resolution_button()
        c["value"].add_class("cnnw-seg-value")
        c["method"].add_class("cnnw-seg-method")
        for trait, box in (("low", self._low_w), ("high", self._high_w)):  # 0 in the box stands for None
            self.bind(
                box,
                trait,
                to_control=lambda w, t=trait: getattr(w, t) or 0.0,
                from_control=lambda v, t=trait: {t: v or None},
            )

    @T.observe("mode")
    def _mode_changed(self, change):
        self._show_controls()
        self.request_update()

    @T.observe("method")
    def _method_changed(self, change):
        self._show_controls()
        self.request_update()

    def _show_controls(self):
        self.controls["value"].layout.display = None if self.method == "fixed" else "none"
        self.controls["classes"].layout.display = None if self.method == "multiotsu" else "none"
        self.controls["invert"].layout.display = "none" if self.method == "multiotsu" else None

    # ----------------------------------------------------------------- input
    @T.observe("image")
    def _image_changed(self, change):
        if change["new"] is None:
            return
        try:
            src = load_source(change["new"], mode="keep")
        except Exception as exc:
            self.set_status(f"{type(exc).__name__}: {exc}", "error")
            return
        g = segment.as_gray(src)
        self._data = self._state_for(src, g, {})
        self.source = src
        lo, hi = float(g.min()), float(g.max())
        integer = g.dtype.kind in "ui"
        hi = max(hi, lo + (1 if integer else 1e-6))
        slider = self.controls["value"]
        slider.max = max(slider.max, hi)  # keep min <= max at every step
        slider.min = lo
        slider.max = hi
        slider.step = 1 if integer else (hi - lo) / 255
        if not lo <= self.value <= hi:
            self.value = float(round((lo + hi) / 2)) if integer else (lo + hi) / 2
        self.request_update()

    @T.observe("preview_side")
    def _preview_changed(self, change):
        d = self._data
        if d is not None:
            self._data = self._state_for(d.source, d.gray_full, d.auto)
            self.request_update()

    def _state_for(self, source, gray_full, auto) -> _ImageState:
        preview = resize_to_fit(source, max(16, int(self.preview_side)))
        scale = preview.shape[0] / source.shape[0]
        return _ImageState(source, gray_full, preview, segment.as_gray(preview), scale, auto, RecipeCache(6))

    def _draw_histogram(self, counts, centers, lines):
        """The full image's histogram (the recipe's ``histogram`` step) with the thresholds as lines."""
        width = float(centers[1] - centers[0]) if len(centers) > 1 else 1.0
        with self.hist.hold_sync():
            self.hist.counts = counts.tolist()  # unchanged counts send nothing (traitlets compares)
            self.hist.lo = float(centers[0]) - width / 2
            self.hist.hi = float(centers[-1]) + width / 2
            self.hist.lines = lines

    def _histogram_picked(self, change):
        v = change["new"]
        if v is None:
            return
        if self._data is not None and self._data.gray_full.dtype.kind in "ui":
            v = float(round(v))
        with self.hold_trait_notifications():
            self.method = "fixed"
            self.value = v

    def _image_clicked(self, change):
        click = change["new"]
        if len(click) < 2 or self.source is None:
            return
        h, w = self.source.shape[:2]
        row = min(h - 1, int(click[0] * h))
        col = min(w - 1, int(click[1] * w))
        self.seeds = list(self.seeds) + [[row, col]]

    def _params_changed(self, change):
        self.request_update()

    def request_update(self, change=None):
        if getattr(self, "_building", True) or self._data is None:
            return
        super().request_update(change)

    # ----------------------------------------------------------------- computing
    @staticmethod
    def _auto(d: _ImageState, key, call: Call) -> Computed:
        """A value of the full image (from its histogram: cheap), computed once per image."""
        if key not in d.auto:
            try:
                d.auto[key] = call.apply(d.gray_full)
            except ValueError as exc:
                d.auto[key] = exc
        value = d.auto[key]
        if isinstance(value, Exception):
            raise value
        return Computed(value, call)

    def recipe(self) -> Recipe:
        """The engine calls of the visible tab, at full resolution: ``result``, ``code`` and
        :meth:`compute_full` all come from it (the preview runs it with pixel lengths scaled)."""
        d = self._data
        if d is None:
            raise ValueError("no image loaded")
        inv = {"invert": True} if self.invert else {}
        mode = self.mode
        if mode == "global":
            histogram = Step("histogram", self._auto(d, "histogram", Call(segment.histogram)))
            if self.method == "multiotsu":
                levels = Call(segment.threshold_values, "multiotsu", **self.keywords(segment.threshold_values))
                ts = Step("thresholds", self._auto(d, ("multiotsu", self.classes), levels))
                return Recipe((histogram, ts, Step("result", Call(segment.threshold_classes, Ref("thresholds")))))
            if self.method == "fixed":
                return Recipe((histogram, Step("result", Call(segment.threshold, float(self.value), **inv))))
            t = Step("threshold", self._auto(d, self.method, Call(segment.threshold_value, self.method)))
            return Recipe((histogram, t, Step("result", Call(segment.threshold, Ref("threshold"), **inv))))
        if mode == "local":
            surface = Call(segment.local_threshold, self.local_method, **self.keywords(segment.local_threshold))
            return Recipe((Step("surface", surface), Step("result", Call(segment.threshold, Ref("surface"), **inv))))
        if mode == "edges":
            if self.edge_method == "canny":
                return Recipe.of(
                    Call(segment.edges, "canny", **self.keywords(segment.edges), low=self.low, high=self.high)
                )
            response = Call(segment.edges, self.edge_method, **self.keywords(segment.edges), output="response")
            mask = Call(segment.edge_mask, self.edge_method, data="response", **self.keywords(segment.edge_mask))
            return Recipe((Step("response", response), Step("result", mask)))
        if mode == "regions":
            seeds = [(int(r), int(c)) for r, c in self.seeds]
            if self.region_method == "grow":
                return Recipe.of(Call(segment.region_grow, seeds=seeds, **self.keywords(segment.region_grow)))
            if self.region_method == "watershed":
                return Recipe.of(Call(segment.watershed, markers=seeds or None, **self.keywords(segment.watershed)))
            return Recipe.of(Call(segment.kmeans_regions, **self.keywords(segment.kmeans_regions)))
        values = self._auto(d, "every method", Call(segment.auto_thresholds))
        return Recipe(
            (Step("thresholds", values), Step("result", Call(segment.threshold_each, Ref("thresholds"), **inv)))
        )

    def _render(self):
        d = self._data
        if d is None:
            return
        recipe = self.recipe()
        env = recipe.rescaled(d.scale, d.preview.shape).run(d.preview, cache=d.steps)
        result = env[recipe.output]
        gray = d.gray
        note = (
            ""
            if d.scale == 1
            else f" · preview {gray.shape[1]}×{gray.shape[0]} (“Full resolution” computes the full image)"
        )
        stats = {}
        if self.mode == "global":
            lines = [float(t) for t in np.atleast_1d(env.get("threshold", env.get("thresholds", self.value)))]
            self._draw_histogram(*env["histogram"], lines)
            self.set_trait("threshold", lines[0])
            if result.dtype == bool:
                stats = segment.mask_stats(result)
                self.mask_panel.show(result)
            else:
                self.mask_panel.show(result, rescale=True)
            self.overlay_panel.show(segment.overlay(self._preview_rgb(d), result))
            ts = ", ".join(f"{t:.4g}" for t in lines)
            msg = f"{self.method}: threshold {ts}"
        elif self.mode == "local":
            self._surface_panel.show(env["surface"], rescale=True)
            self._local_mask_panel.show(result)
            stats = segment.mask_stats(result)
            msg = f"{self.local_method}, window {self.window}"
        elif self.mode == "edges":
            resp = env.get("response")
            self._response_panel.show(gray if resp is None else np.abs(resp), rescale=resp is not None)
            self._response_panel.set_title(
                "image"
                if resp is None
                else ("|second derivative|" if self.edge_method in ("laplace", "log") else "gradient magnitude")
            )
            self._edges_panel.show(result)
            stats = segment.mask_stats(result)
            msg = f"{self.edge_method} edges"
        elif self.mode == "regions":
            seeds = [(r * d.scale, c * d.scale) for r, c in self.seeds]
            shown = segment.mark_points(segment.overlay(self._preview_rgb(d), result), seeds)
            self.click_image.value = to_jpeg_bytes(shown)
            self._labels_panel.show(segment.overlay(np.zeros(result.shape, np.uint8), result, alpha=1.0))
            n = int(len(np.unique(result[result > 0])))
            hint = self.region_method == "grow" and not self.seeds
            msg = "click on the image to place seeds" if hint else f"{self.region_method}: {n} region{'s' * (n != 1)}"
        else:
            values = env["thresholds"]
            for m, panel in self.compare_panels.items():
                t = values[m]
                if t is None:
                    panel.set_title(f"{m}: fails on this image")
                    panel.show(np.zeros((8, 8), np.uint8))
                else:
                    panel.set_title(f"{m}: {t:.4g}")
                    panel.show(result[m])
            self.set_trait("thresholds", dict(values))
            msg = "every global method on the same image"
        self.set_trait("stats", stats)
        self.code = recipe.code()
        self.result = result
        if stats:
            msg += f" · {100 * stats['area_fraction']:.1f} % foreground, {stats['components']} components"
        self.set_status(msg + note)

    @staticmethod
    def _preview_rgb(d: _ImageState):
        p = d.preview
        return p[..., :3] if p.ndim == 3 and p.shape[2] >= 3 else d.gray

    # ----------------------------------------------------------------- full resolution
    def compute_full(self):
        """Compute the current view at full resolution; sets and returns ``result`` (as :attr:`code` does)."""
        if self._data is None:
            raise ValueError("no image loaded")
        self.wait()
        return self.run_full(self.recipe(), self._data.source)
