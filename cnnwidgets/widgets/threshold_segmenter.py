"""ThresholdSegmenter: global, local, edge-based and region-based segmentation on one bench.

The maths lives in :mod:`cnnwidgets.engine.segment`; this module only wires traits to panels.
"""

from __future__ import annotations

import pathlib
from typing import NamedTuple

import anywidget
import ipywidgets as W
import numpy as np
import traitlets as T

from ..engine import segment
from ..io import load_image, resize_to_fit, to_jpeg_bytes
from ._base import Bench, ImagePanel

__all__ = ["ThresholdSegmenter", "HistogramView", "ClickImage"]

_STATIC = pathlib.Path(__file__).parent / "static"

MODES = ("global", "local", "edges", "regions", "compare")
GLOBAL_CHOICES = ("fixed",) + segment.GLOBAL_METHODS + ("multiotsu",)
REGION_METHODS = ("grow", "watershed", "kmeans")


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


class _Prepared(NamedTuple):
    """Everything derived from one image; replaced as a whole, so a background render never mixes two images."""

    source: np.ndarray  # as loaded
    gray_full: np.ndarray  # its gray version, full resolution
    preview: np.ndarray  # source at display size
    gray: np.ndarray  # gray at display size
    scale: float  # preview / full
    auto: dict  # cache of automatic thresholds (full-resolution histogram)


def _odd(n: float) -> int:
    n = max(3, int(round(n)))
    return n if n % 2 else n + 1


class ThresholdSegmenter(Bench):
    """Separate foreground from background by threshold, edges or regions, and compare the methods.

    Parameters
    ----------
    image : any source :func:`cnnwidgets.io.load_image` accepts, optional
        Default: the ``coins`` sample. Thresholds and edges work on its gray version
        (:func:`cnnwidgets.engine.segment.as_gray`); region growing and k-means on the colours.
    **kwargs
        Initial values of the traits below.

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

    image = T.Any(None, allow_none=True)
    mode = T.Enum(MODES, "global")
    method = T.Enum(GLOBAL_CHOICES, "otsu")
    value = T.Float(128.0)
    invert = T.Bool(False)
    classes = T.Int(3)
    local_method = T.Enum(segment.LOCAL_METHODS, "sauvola")
    window = T.Int(25)
    k = T.Float(0.2)
    offset = T.Float(0.0)
    edge_method = T.Enum(segment.EDGE_METHODS, "sobel")
    sigma = T.Float(1.0)
    edge_threshold = T.Float(0.05)
    low = T.Float(None, allow_none=True)
    high = T.Float(None, allow_none=True)
    region_method = T.Enum(REGION_METHODS, "grow")
    seeds = T.List([])
    tolerance = T.Float(20.0)
    clusters = T.Int(3)
    kmeans_seed = T.Int(0)
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
        self.add_class("cnnw-threshold-segmenter")
        for name, value in kwargs.items():
            setattr(self, name, value)
        self._building = False
        from ..datasets import sample

        self.image = sample("coins") if image is None else image

    # ----------------------------------------------------------------- layout
    def _build_controls(self):
        def small():  # one Layout per control: hiding one must not hide the others
            return W.Layout(width="300px")

        self._upload = self._upload_control(lambda arr: setattr(self, "image", arr))
        # global
        self.hist = HistogramView(width=600, height=150)
        self.hist.observe(self._histogram_picked, names="picked")
        self._method_w = W.Dropdown(options=GLOBAL_CHOICES, description="method", layout=small())
        self._value_w = W.FloatSlider(
            description="threshold", min=0, max=255, step=1, continuous_update=True, layout=W.Layout(width="420px")
        )
        self._classes_w = W.IntSlider(description="classes", min=2, max=5, layout=small())
        self._invert_w = W.Checkbox(description="invert (foreground dark)")
        self._mask_panel = ImagePanel("mask", width=300)
        self._overlay_panel = ImagePanel("overlay", width=300, format="jpeg")
        self._mask_panel.add_class("cnnw-seg-mask")
        self._overlay_panel.add_class("cnnw-seg-overlay")
        global_tab = W.VBox(
            [
                W.HBox([self._method_w, self._invert_w]),
                self._value_w,
                self._classes_w,
                self.hist,
                W.HBox([self._mask_panel, self._overlay_panel]),
            ]
        )
        # local
        self._local_method_w = W.Dropdown(options=segment.LOCAL_METHODS, description="method", layout=small())
        self._window_w = W.IntSlider(description="window", min=3, max=151, step=2, layout=small())
        self._k_w = W.FloatSlider(description="k", min=-1.0, max=1.0, step=0.01, layout=small())
        self._offset_w = W.FloatSlider(description="offset", min=-50, max=50, step=0.5, layout=small())
        self._surface_panel = ImagePanel("threshold surface", width=300)
        self._local_mask_panel = ImagePanel("mask", width=300)
        self._local_mask_panel.add_class("cnnw-seg-local-mask")
        local_tab = W.VBox(
            [
                W.HBox([self._local_method_w, self._window_w]),
                W.HBox([self._k_w, self._offset_w]),
                W.HBox([self._surface_panel, self._local_mask_panel]),
            ]
        )
        # edges
        self._edge_method_w = W.Dropdown(options=segment.EDGE_METHODS, description="operator", layout=small())
        self._sigma_w = W.FloatSlider(description="σ smoothing", min=0, max=8, step=0.1, layout=small())
        self._edge_thr_w = W.FloatSlider(
            description="threshold", min=0, max=1, step=0.005, readout_format=".3f", layout=small()
        )
        self._low_w = W.FloatText(description="Canny low", layout=W.Layout(width="180px"))
        self._high_w = W.FloatText(description="Canny high", layout=W.Layout(width="180px"))
        self._response_panel = ImagePanel("response", width=300)
        self._edges_panel = ImagePanel("edges", width=300)
        self._edges_panel.add_class("cnnw-seg-edges")
        edges_tab = W.VBox(
            [
                W.HBox([self._edge_method_w, self._sigma_w]),
                W.HBox([self._edge_thr_w, self._low_w, self._high_w]),
                W.HBox([self._response_panel, self._edges_panel]),
            ]
        )
        # regions
        self._region_method_w = W.Dropdown(options=REGION_METHODS, description="method", layout=small())
        self._tolerance_w = W.FloatSlider(description="tolerance", min=0, max=128, step=0.5, layout=small())
        self._clusters_w = W.IntSlider(description="k-means k", min=1, max=12, layout=small())
        clear = W.Button(description="Clear seeds", icon="eraser")
        clear.on_click(lambda _: setattr(self, "seeds", []))
        self.click_image = ClickImage(width=360, format="jpeg")
        self.click_image.add_class("cnnw-seg-click")
        self.click_image.observe(self._image_clicked, names="click")
        self._labels_panel = ImagePanel("labels", width=360, format="jpeg")
        regions_tab = W.VBox(
            [
                W.HBox([self._region_method_w, self._tolerance_w]),
                W.HBox([self._clusters_w, clear]),
                W.HBox(
                    [
                        W.VBox([W.HTML("<b>click to place seeds</b> (region growing, watershed)"), self.click_image]),
                        self._labels_panel,
                    ]
                ),
            ]
        )
        # compare
        self._compare_panels = {m: ImagePanel(m, width=190) for m in segment.GLOBAL_METHODS}
        for p in self._compare_panels.values():
            p.add_class("cnnw-seg-compare")
        compare_tab = W.GridBox(
            list(self._compare_panels.values()), layout=W.Layout(grid_template_columns="repeat(4, 200px)")
        )

        self._tabs = W.Tab([global_tab, local_tab, edges_tab, regions_tab, compare_tab])
        for i, title in enumerate(["Global", "Local", "Edges", "Regions", "Compare all"]):
            self._tabs.set_title(i, title)
        self._tabs.observe(self._tab_changed, names="selected_index")
        self._full_button = self._full_resolution_button()
        for trait, w in [
            ("method", self._method_w),
            ("value", self._value_w),
            ("classes", self._classes_w),
            ("invert", self._invert_w),
            ("local_method", self._local_method_w),
            ("window", self._window_w),
            ("k", self._k_w),
            ("offset", self._offset_w),
            ("edge_method", self._edge_method_w),
            ("sigma", self._sigma_w),
            ("edge_threshold", self._edge_thr_w),
            ("region_method", self._region_method_w),
            ("tolerance", self._tolerance_w),
            ("clusters", self._clusters_w),
        ]:
            W.link((self, trait), (w, "value"))
        self._value_w.add_class("cnnw-seg-value")
        self._method_w.add_class("cnnw-seg-method")
        self._low_w.observe(lambda c: setattr(self, "low", c["new"] or None), names="value")
        self._high_w.observe(lambda c: setattr(self, "high", c["new"] or None), names="value")

    def _tab_changed(self, change):
        self.mode = MODES[change["new"]]

    @T.observe("mode")
    def _mode_changed(self, change):
        self._tabs.selected_index = MODES.index(change["new"])
        self._show_controls()
        self.request_update()

    @T.observe("method")
    def _method_changed(self, change):
        self._show_controls()
        self.request_update()

    def _show_controls(self):
        self._value_w.layout.display = None if self.method == "fixed" else "none"
        self._classes_w.layout.display = None if self.method == "multiotsu" else "none"
        self._invert_w.layout.display = "none" if self.method == "multiotsu" else None

    # ----------------------------------------------------------------- input
    @T.observe("image")
    def _image_changed(self, change):
        if change["new"] is None:
            return
        try:
            src = load_image(change["new"], mode="keep")
        except Exception as exc:
            self.set_status(f"{type(exc).__name__}: {exc}", "error")
            return
        g = segment.as_gray(src)
        self._data = self._prepare(src, g, {})
        self.source = src
        lo, hi = float(g.min()), float(g.max())
        integer = g.dtype.kind in "ui"
        hi = max(hi, lo + (1 if integer else 1e-6))
        slider = self._value_w
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
            self._data = self._prepare(d.source, d.gray_full, d.auto)
            self.request_update()

    def _prepare(self, source, gray_full, auto) -> _Prepared:
        preview = resize_to_fit(source, max(16, int(self.preview_side)))
        counts, centers = segment.histogram(gray_full)
        width = float(centers[1] - centers[0]) if len(centers) > 1 else 1.0
        with self.hist.hold_sync():
            self.hist.counts = counts.tolist()
            self.hist.lo = float(centers[0]) - width / 2
            self.hist.hi = float(centers[-1]) + width / 2
        return _Prepared(source, gray_full, preview, segment.as_gray(preview), preview.shape[0] / source.shape[0], auto)

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

    @T.observe("low", "high")
    def _canny_thresholds_changed(self, change):
        box = self._low_w if change["name"] == "low" else self._high_w
        box.value = change["new"] or 0.0  # 0 in the box stands for None (scikit-image's default)

    @T.observe(
        "value",
        "invert",
        "classes",
        "local_method",
        "window",
        "k",
        "offset",
        "edge_method",
        "sigma",
        "edge_threshold",
        "low",
        "high",
        "region_method",
        "seeds",
        "tolerance",
        "clusters",
        "kmeans_seed",
    )
    def _params_changed(self, change):
        self.request_update()

    def request_update(self, change=None):
        if getattr(self, "_building", True) or self._data is None:
            return
        super().request_update(change)

    # ----------------------------------------------------------------- computing
    @staticmethod
    def _auto_threshold(d: _Prepared, method):
        """Automatic thresholds come from the full-resolution histogram (cheap) and are cached per image."""
        if method not in d.auto:
            try:
                d.auto[method] = segment.threshold_value(d.gray_full, method)
            except ValueError as exc:
                d.auto[method] = exc
        return d.auto[method]

    def _global_threshold(self, d: _Prepared):
        if self.method == "fixed":
            return float(self.value)
        t = self._auto_threshold(d, self.method)
        if isinstance(t, Exception):
            raise t
        return t

    def _compute(self, d: _Prepared, full: bool):
        """Run the current mode on the preview (or the full image); returns (result, panels-to-show)."""
        src = d.source if full else d.preview
        gray = d.gray_full if full else d.gray
        s = 1.0 if full else d.scale
        mode = self.mode
        if mode == "global":
            if self.method == "multiotsu":
                key = ("multiotsu", self.classes)
                if key not in d.auto:
                    d.auto[key] = segment.threshold_values(d.gray_full, "multiotsu", classes=self.classes)
                ts = d.auto[key]
                labels = np.digitize(gray, ts, right=True).astype(np.int32)
                return labels, {"thresholds": [float(t) for t in ts]}
            t = self._global_threshold(d)
            return segment.threshold(gray, t, invert=self.invert), {"thresholds": [t]}
        if mode == "local":
            surface = segment.local_threshold(
                gray,
                self.local_method,
                window=_odd(self.window * s) if s != 1 else self.window,
                k=self.k,
                offset=self.offset,
            )
            return segment.threshold(gray, surface, invert=self.invert), {"surface": surface}
        if mode == "edges":
            sigma = self.sigma * s
            if self.edge_method == "canny":
                return segment.edges(gray, "canny", sigma=sigma, low=self.low, high=self.high), {"response": None}
            response = segment.edges(gray, self.edge_method, output="response", sigma=sigma)
            if self.edge_method in segment.GRADIENT_METHODS:  # as edges(..., output="edges"), without recomputing
                edge_mask = response > self.edge_threshold
            else:
                edge_mask = segment.zero_crossings(response, threshold=self.edge_threshold)
            return edge_mask, {"response": response}
        if mode == "regions":
            seeds = [(min(src.shape[0] - 1, int(r * s)), min(src.shape[1] - 1, int(c * s))) for r, c in self.seeds]
            if self.region_method == "grow":
                if not seeds:
                    return np.zeros(gray.shape, np.int32), {"hint": "click on the image to place seeds"}
                return segment.region_grow(src, seeds, tolerance=self.tolerance), {}
            if self.region_method == "watershed":
                return segment.watershed(gray, seeds or None, sigma=self.sigma * s), {}
            labels, _ = segment.kmeans_colors(src, self.clusters, self.kmeans_seed)
            return labels + 1, {}
        # compare
        masks, values = {}, {}
        for m in segment.GLOBAL_METHODS:
            t = self._auto_threshold(d, m)
            values[m] = None if isinstance(t, Exception) else t
            masks[m] = None if isinstance(t, Exception) else segment.threshold(gray, t, invert=self.invert)
        return masks, {"values": values}

    def _render(self):
        d = self._data
        if d is None:
            return
        result, extra = self._compute(d, full=False)
        gray = d.gray
        note = (
            ""
            if d.scale == 1
            else f" · preview {gray.shape[1]}×{gray.shape[0]} (“Full resolution” computes the full image)"
        )
        stats = {}
        if self.mode == "global":
            self.hist.lines = extra["thresholds"]
            self.set_trait("threshold", extra["thresholds"][0])
            if result.dtype == bool:
                stats = segment.mask_stats(result)
                self._mask_panel.show(result)
            else:
                self._mask_panel.show(result, rescale=True)
            self._overlay_panel.show(segment.overlay(self._preview_rgb(d), result))
            ts = ", ".join(f"{t:.4g}" for t in extra["thresholds"])
            msg = f"{self.method}: threshold {ts}"
        elif self.mode == "local":
            self._surface_panel.show(extra["surface"], rescale=True)
            self._local_mask_panel.show(result)
            stats = segment.mask_stats(result)
            msg = f"{self.local_method}, window {self.window}"
        elif self.mode == "edges":
            resp = extra["response"]
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
            shown = segment.overlay(self._preview_rgb(d), result)
            for r, c in self.seeds:
                y, x = int(r * d.scale), int(c * d.scale)
                shown[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3] = (255, 255, 0)
            self.click_image.value = to_jpeg_bytes(shown)
            self._labels_panel.show(segment.overlay(np.zeros(result.shape, np.uint8), result, alpha=1.0))
            n = int(len(np.unique(result[result > 0])))
            msg = extra.get("hint") or f"{self.region_method}: {n} region{'s' * (n != 1)}"
        else:
            for m, panel in self._compare_panels.items():
                t = extra["values"][m]
                if t is None:
                    panel.set_title(f"{m}: fails on this image")
                    panel.show(np.zeros((8, 8), np.uint8))
                else:
                    panel.set_title(f"{m}: {t:.4g}")
                    panel.show(result[m])
            self.set_trait("thresholds", extra["values"])
            msg = "every global method on the same image"
        self.set_trait("stats", stats)
        self.code = self._code_string()
        self.result = result
        if stats:
            msg += f" · {100 * stats['area_fraction']:.1f} % foreground, {stats['components']} components"
        self.set_status(msg + note)

    @staticmethod
    def _preview_rgb(d: _Prepared):
        p = d.preview
        return p[..., :3] if p.ndim == 3 and p.shape[2] >= 3 else d.gray

    # ----------------------------------------------------------------- code and full resolution
    def _code_string(self) -> str:
        head = "from cnnwidgets.engine import segment\n"
        inv = ", invert=True" if self.invert else ""
        if self.mode == "global":
            if self.method == "multiotsu":
                return (
                    "import numpy as np\n"
                    + head
                    + f"thresholds = segment.threshold_values(image, 'multiotsu', classes={self.classes})\n"
                    "result = np.digitize(segment.as_gray(image), thresholds, right=True).astype('int32')"
                )
            what = repr(float(self.value)) if self.method == "fixed" else repr(self.method)
            return head + f"result = segment.threshold(image, {what}{inv})"
        if self.mode == "local":
            return head + (
                f"surface = segment.local_threshold(image, {self.local_method!r}, window={self.window}, k={self.k!r}, offset={self.offset!r})\n"
                f"result = segment.threshold(image, surface{inv})"
            )
        if self.mode == "edges":
            if self.edge_method == "canny":
                return (
                    head
                    + f"result = segment.edges(image, 'canny', sigma={self.sigma!r}, low={self.low!r}, high={self.high!r})"
                )
            return (
                head
                + f"result = segment.edges(image, {self.edge_method!r}, sigma={self.sigma!r}, output='edges', threshold={self.edge_threshold!r})"
            )
        if self.mode == "regions":
            seeds = [(int(r), int(c)) for r, c in self.seeds]
            if self.region_method == "grow":
                return head + f"result = segment.region_grow(image, {seeds}, tolerance={self.tolerance!r})"
            if self.region_method == "watershed":
                return head + f"result = segment.watershed(image, {seeds or None}, sigma={self.sigma!r})"
            return (
                head
                + f"labels, centers = segment.kmeans_colors(image, {self.clusters}, {self.kmeans_seed})\nresult = labels + 1"
            )
        working = [m for m in segment.GLOBAL_METHODS if self.thresholds.get(m, 0) is not None]  # skip failing ones
        return head + f"result = {{m: segment.threshold(image, m{inv}) for m in {working!r}}}"

    def compute_full(self):
        """Compute the current view at full resolution; sets and returns ``result`` (as :attr:`code` does)."""
        d = self._data
        if d is None:
            raise ValueError("no image loaded")
        result, _ = self._compute(d, full=True)
        if self.mode == "compare":
            result = {m: v for m, v in result.items() if v is not None}
        self.code = self._code_string()
        self.result = result
        return result
