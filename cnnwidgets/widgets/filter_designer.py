"""FilterDesigner: frequency-domain and median filters on one image, with noise and quality metrics.

Thin front end over :mod:`cnnwidgets.engine.enhance`: every control is a traitlet, the picture
is recomputed with the latest values (see :class:`~cnnwidgets.widgets._base.WidgetBase`), ``result``
holds the filtered image and ``code`` the engine calls that reproduce it.
"""

from __future__ import annotations

import functools
import html

import ipywidgets as W
import numpy as np
import traitlets as T

from ..engine import enhance
from ..engine.calls import IMAGE, NO_DATA, Call, Recipe, RecipeCache, Step
from ..io import resize_to_fit, to_float, to_uint8
from ._base import WidgetBase, clean_float, param, slider
from ._inputs import ImageSource, load_source
from ._panels import ImagePanel
from ._plots import html_table, line_plot_svg
from .browser_widgets import ClickImage

__all__ = ["FilterDesigner"]

METHODS = ("frequency", "median", "weighted_median", "adaptive_median", "notch", "homomorphic")
_SPECTRUM_METHODS = ("notch", "homomorphic")  # the methods of the "notch / homomorphic" tab
RESPONSES = (
    ("low-pass", False, False),
    ("high-pass", True, False),
    ("band-pass", False, True),
    ("band-stop", True, True),
)
_DISPLAY_SIDE = 300  # long side of the PNGs sent to the browser: one image pixel per CSS pixel of a panel
_PANEL_WIDTH = 300
_MASK_SIDE = 300  # long side of the displayed mask


_SLIDER = {"continuous_update": True, "layout": {"width": "420px"}, "style": {"description_width": "80px"}}

_slider = functools.partial(slider, **_SLIDER)  # a slider in this widget's width (a call's options win)


def _with_notch_rings(spectrum_u8, centers, radius):
    """RGB copy of a displayed centred spectrum with a red ring at each notch centre and its mirror.

    Parameters
    ----------
    spectrum_u8 : numpy.ndarray
        h×w (or h×w×3) uint8, frequency 0 at row h // 2, column w // 2.
    centers : sequence of (fy, fx)
        Cycles per pixel.
    radius : float
        Ring radius in cycles per pixel (at least 2 display pixels are drawn).
    """
    rgb = np.repeat(spectrum_u8[:, :, None], 3, axis=2) if spectrum_u8.ndim == 2 else spectrum_u8[:, :, :3].copy()
    h, w = rgb.shape[:2]
    rows, cols = np.ogrid[:h, :w]
    ring = np.zeros((h, w), dtype=bool)
    r_px = max(2.0, radius * min(h, w))
    for fy, fx in centers:
        for sy, sx in ((fy, fx), (-fy, -fx)):
            ring |= np.abs(np.hypot(rows - (h // 2 + sy * h), cols - (w // 2 + sx * w)) - r_px) < 1.0
    rgb[ring] = (255, 40, 40)
    return rgb


class FilterDesigner(WidgetBase):
    """Design a filter and see the image, its centred spectrum, the mask and the result side by side.

    Parameters
    ----------
    image : any source :func:`cnnwidgets.io.load_image` accepts, or a sample name, optional
        The clean image (default: the ``astronaut`` sample). Gray stays gray, colour is filtered per channel.
    **kwargs
        Initial values of the traits below.

    Raises
    ------
    TypeError, ValueError
        A keyword that is no trait, a trait value of the wrong type or not allowed, or an ``image`` that is no
        image source (a short message naming the parameter; see :mod:`cnnwidgets.widgets._inputs`). An image that
        cannot be decoded shows in the status line instead.

    Traits
    ------
    method : {"frequency", "median", "weighted_median", "adaptive_median", "notch", "homomorphic"}
        The active filter (the frequency tab, the spatial tab's or the notch / homomorphic tab's choice).
    shape, highpass, cutoff, order, width
        As in :func:`cnnwidgets.engine.enhance.frequency_filter`; ``band`` switches low/high-pass to band-pass/stop.
    size : int
        Median window side (odd).
    weights : list of list of int
        Weighted-median kernel (odd sides).
    max_size : int
        Largest window of the adaptive median (odd).
    notches : list of [fy, fx]
        Notch centres in cycles per pixel (−0.5 … 0.5), one per pair: the engine also removes (−fy, −fx).
        A click on the spectrum adds one (and switches ``method`` to ``"notch"``); a click near a centre or
        its mirror removes it.
    notch_radius, notch_order
        ``radius`` and ``order`` of :func:`cnnwidgets.engine.enhance.notch_filter`.
    gamma_low, gamma_high, homomorphic_cutoff, sharpness
        γL, γH, cutoff and c of :func:`cnnwidgets.engine.enhance.homomorphic_filter`.
    noise : {"none", "gaussian", "salt_and_pepper", "speckle", "periodic"}
        Noise added to the clean image before filtering; ``noise_amount`` and ``seed`` as in
        :func:`cnnwidgets.engine.enhance.add_noise`.
    preview_side : int
        Images with a longer side are filtered on a preview of this size while the controls move;
        :meth:`compute_full` filters at full resolution.
    metrics : dict
        PSNR (dB) and SSIM of the filter input and of the result against the clean image (when noise is on).
    result : numpy.ndarray
        The filtered image (H×W or H×W×3) at preview size, or at full size after :meth:`compute_full`:
        float32 from the frequency filters and after noise, the image's dtype from the median filters.
    code : str
        Python that reproduces ``result`` at full resolution from ``image`` (the loaded array, :attr:`source`).
    """

    image = ImageSource()
    method = param(T.Enum(METHODS, "frequency"))
    # frequency filters
    shape = param(T.Enum(enhance.FILTER_SHAPES, "butterworth"), W.ToggleButtons, feeds=enhance.frequency_filter)
    highpass = param(T.Bool(False), feeds=enhance.frequency_filter)
    band = param(T.Bool(False))
    cutoff = _slider(0.1, 0.005, 0.5, 0.005, feeds=enhance.frequency_filter)
    order = _slider(2.0, 0.5, 10.0, 0.5, feeds=enhance.frequency_filter)
    width = _slider(0.05, 0.005, 0.5, 0.005, feeds=enhance.frequency_filter, description="band width")
    # median filters
    size = _slider(3, 1, 15, 2, feeds=enhance.median, description="window")
    weights = param(T.List([[1, 1, 1], [1, 3, 1], [1, 1, 1]]))
    max_size = _slider(7, 3, 15, 2, feeds=enhance.adaptive_median, description="max window")
    # notch and homomorphic filters
    notches = param(T.List([]))
    notch_radius = _slider(0.02, 0.005, 0.1, 0.005, feeds=enhance.notch_filter, keyword="radius", description="radius")
    notch_order = _slider(2.0, 0.5, 10.0, 0.5, feeds=enhance.notch_filter, keyword="order", description="order")
    gamma_low = _slider(0.5, 0.0, 1.0, 0.05, feeds=enhance.homomorphic_filter, description="γL")
    gamma_high = _slider(1.5, 1.0, 3.0, 0.05, feeds=enhance.homomorphic_filter, description="γH")
    homomorphic_cutoff = _slider(
        0.05, 0.005, 0.5, 0.005, feeds=enhance.homomorphic_filter, keyword="cutoff", description="cutoff"
    )
    sharpness = _slider(1.0, 0.1, 5.0, 0.1, feeds=enhance.homomorphic_filter, description="c")
    # noise
    noise = param(T.Enum(("none",) + enhance.NOISE_KINDS, "none"), W.Dropdown)
    noise_amount = _slider(0.05, 0.0, 0.5, 0.01, feeds=enhance.add_noise, keyword="amount", description="amount")
    seed = param(T.Int(0), W.IntText, feeds=enhance.add_noise, layout={"width": "200px"})
    preview_side = T.Int(1024)
    metrics = T.Dict({})

    def __init__(self, image=None, **kwargs):
        self.source = None  # the loaded full-resolution image
        # (preview, step cache, display cache), swapped as one so a running render never mixes images
        self._state = (None, RecipeCache(), {})
        self._build_controls()
        self.observe(self._controls_changed, names=self.parameters())
        panels = W.HBox([self.p_input, self.p_spectrum, W.VBox([self.p_mask, self.profile]), self.p_result])
        top = W.HBox([self.upload, self.full_button, self.info])
        super().__init__([top, panels, self.tabs])
        self.add_class("cnnw-filter-designer")
        self.set_traits_from(kwargs)
        self._update_enabled()
        from ..datasets import sample

        self.image = sample("astronaut") if image is None else image

    # ------------------------------------------------------------------ controls
    def _build_controls(self):
        self.p_input = ImagePanel("input", width=_PANEL_WIDTH)
        self.p_spectrum = ImagePanel("centred log spectrum", width=_PANEL_WIDTH)
        # the spectrum takes clicks (notch placement): a ClickImage stands where the panel's plain image was
        self.spectrum_click = ClickImage(width=_PANEL_WIDTH, format="png")
        self.spectrum_click.add_class("cnnw-fd-spectrum-click")
        self.spectrum_click.layout.max_width = "100%"
        self.spectrum_click.observe(self._spectrum_clicked, names="click")
        self.p_spectrum.image = self.spectrum_click
        self.p_spectrum.children = (self.p_spectrum.title, self.spectrum_click)
        self.p_mask = ImagePanel("filter mask", width=_PANEL_WIDTH)
        self.p_result = ImagePanel("result", width=_PANEL_WIDTH)
        self.p_input.add_class("cnnw-fd-input")
        self.p_spectrum.add_class("cnnw-fd-spectrum")
        self.p_mask.add_class("cnnw-fd-mask")
        self.p_result.add_class("cnnw-fd-result")
        self.profile = W.HTML("", layout=W.Layout(width="100%", max_width=f"{_PANEL_WIDTH}px"))
        self.profile.add_class("cnnw-fd-profile")
        self.info = W.HTML("")
        self.upload = self._upload_control(self._on_upload)
        self.full_button = self._full_resolution_button()

        c = self.make_controls()
        c_response = W.ToggleButtons(options=[r[0] for r in RESPONSES], description="response")
        c["cutoff"].add_class("cnnw-fd-cutoff")
        self.bind(
            c_response,
            ("highpass", "band"),
            name="response",
            to_control=lambda w: next(r[0] for r in RESPONSES if r[1:] == (w.highpass, w.band)),
            from_control=lambda v: next({"highpass": hp, "band": band} for n, hp, band in RESPONSES if n == v),
        )
        freq_box = W.VBox([c["shape"], c_response, c["cutoff"], c["order"], c["width"]])

        c_method = W.Dropdown(
            options=[
                ("median", "median"),
                ("weighted median", "weighted_median"),
                ("adaptive median", "adaptive_median"),
            ],
            description="filter",
        )
        c_ksize = W.Dropdown(options=[3, 5, 7], description="kernel")
        self.weight_grid = W.GridBox(layout=W.Layout(grid_gap="2px"))
        self.bind(
            c_method,
            "method",
            name="spatial_method",
            to_control=lambda w: w.method if w.method != "frequency" else c_method.value,
            from_control=lambda v: {"method": v},
        )
        self.bind(
            c_ksize,
            "weights",
            name="kernel_size",
            to_control=lambda w: len(w.weights) if len(w.weights) in (3, 5, 7) else c_ksize.value,
            from_control=lambda k: (
                {} if len(self.weights) == k else {"weights": enhance.center_weighted_kernel(k, 3).tolist()}
            ),
        )
        self._weights_box = W.VBox(
            [W.HTML("<b>weighted-median weights</b> (edit the grid)"), c_ksize, self.weight_grid]
        )
        spatial_box = W.VBox([c_method, c["size"], self._weights_box, c["max_size"]])

        c["noise"].add_class("cnnw-fd-noise")
        self.metrics_view = W.HTML("")
        noise_box = W.VBox([c["noise"], c["noise_amount"], c["seed"], self.metrics_view])

        c_spectral = W.ToggleButtons(options=list(_SPECTRUM_METHODS), description="filter")
        c_spectral.add_class("cnnw-fd-spectral-method")
        self.bind(
            c_spectral,
            "method",
            name="spectral_method",
            to_control=lambda w: w.method if w.method in _SPECTRUM_METHODS else c_spectral.value,
            from_control=lambda v: {"method": v},
        )
        c["notch_radius"].add_class("cnnw-fd-notch-radius")
        c_clear = W.Button(description="clear notches", layout=W.Layout(width="140px"))
        c_clear.on_click(lambda _: setattr(self, "notches", []))
        self.notch_info = W.HTML("")
        self.notch_info.add_class("cnnw-fd-notch-info")
        self._notch_box = W.VBox(
            [
                W.HTML(
                    "click on the <b>spectrum</b> to place a notch pair (its mirror is added); click near one to remove it"
                ),
                c["notch_radius"],
                c["notch_order"],
                c_clear,
                self.notch_info,
            ]
        )
        c["gamma_high"].add_class("cnnw-fd-gamma-high")
        self._homomorphic_box = W.VBox(
            [
                W.HTML("H(f) = (γH − γL)(1 − exp(−c f² / cutoff²)) + γL on log(1 + image)"),
                c["gamma_low"],
                c["gamma_high"],
                c["homomorphic_cutoff"],
                c["sharpness"],
            ]
        )
        spectral_box = W.VBox([c_spectral, self._notch_box, self._homomorphic_box])

        self.tabs = W.Tab([freq_box, spatial_box, noise_box, spectral_box])
        self.tabs.add_class("cnnw-fd-tabs")
        for i, title in enumerate(("frequency", "spatial (median)", "noise", "notch / homomorphic")):
            self.tabs.set_title(i, title)
        self.bind(
            self.tabs,
            "method",
            name="tab",
            attr="selected_index",
            to_control=lambda w: 0 if w.method == "frequency" else 3 if w.method in _SPECTRUM_METHODS else 1,
            from_control=lambda i: {
                0: {"method": "frequency"},
                1: {"method": c_method.value},
                3: {"method": c_spectral.value},
            }.get(i, {}),
        )
        self.bind(self.weight_grid, "weights", name="weights", attr="children", to_control=self._weight_cells)

    def _weight_cells(self, _=None):
        """One integer box per weight (the grid the weighted-median kernel is edited in)."""
        try:
            w = np.asarray(self.weights, dtype=np.int64)
        except (TypeError, ValueError):
            return self.weight_grid.children
        if w.ndim != 2:
            return self.weight_grid.children
        cells = []
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                box = W.BoundedIntText(value=int(w[i, j]), min=0, max=99, layout=W.Layout(width="52px"))
                # the grid is rebuilt from the trait whenever it changes, so each cell only reports edits
                box.observe(lambda ch, i=i, j=j: self._weight_edited(i, j, ch["new"]), names="value")
                cells.append(box)
        self.weight_grid.layout.grid_template_columns = f"repeat({w.shape[1]}, 56px)"
        return tuple(cells)

    def _weight_edited(self, i, j, value):
        if self.is_quiet():
            return
        w = [list(row) for row in self.weights]
        w[i][j] = int(value)
        self.weights = w

    # ------------------------------------------------------------------ inputs
    def _on_upload(self, array):
        self.image = array

    def _spectrum_clicked(self, change):
        """A click on the centred spectrum: remove the notch under it (or its mirror's), else add one there."""
        click = change["new"]
        preview = self._state[0]
        if len(click) < 2 or preview is None:
            return
        h, w = preview.shape[:2]
        # the centred spectrum has frequency 0 at row h // 2, column w // 2, and 1 / h cycles per pixel per row
        fy = (min(h - 1, int(click[0] * h)) - h // 2) / h
        fx = (min(w - 1, int(click[1] * w)) - w // 2) / w
        near = max(float(self.notch_radius), 2.0 / min(h, w))
        kept = [c for c in self.notches if min(np.hypot(c[0] - fy, c[1] - fx), np.hypot(c[0] + fy, c[1] + fx)) > near]
        if len(kept) == len(self.notches):
            kept.append([round(fy, 4), round(fx, 4)])
        with self.hold_trait_notifications():
            self.method = "notch"
            self.notches = kept

    @T.observe("image")
    def _image_changed(self, change):
        try:
            arr = load_source(change["new"], mode="opaque")
        except Exception as exc:
            self.set_status(f"{getattr(exc, 'source', 'image')}: {getattr(exc, 'reason', exc)}", "error")
            return
        self.source = arr
        self._make_preview()
        self.request_update()

    @T.observe("preview_side")
    def _preview_changed(self, change):
        if self.source is not None:
            self._make_preview()
            self.request_update()

    def _make_preview(self):
        preview = resize_to_fit(self.source, max(16, int(self.preview_side)))
        self._state = (preview, RecipeCache(), {})
        h, w = self.source.shape[:2]
        ph, pw = preview.shape[:2]
        note = "" if (ph, pw) == (h, w) else f" — preview {pw}×{ph}; “Full resolution” computes the full image"
        self.info.value = f"<span style='font-size:12px'>image {w}×{h}{html.escape(note)}</span>"

    def _controls_changed(self, change):
        self._update_enabled()
        self.request_update()

    def _update_enabled(self):
        """Grey out the controls the current filter does not use."""
        self.controls["order"].disabled = self.shape in ("ideal", "gaussian")
        self.controls["width"].disabled = not self.band
        self.controls["size"].disabled = self.method != "median"
        self.controls["max_size"].disabled = self.method != "adaptive_median"
        self._notch_box.layout.display = None if self.method == "notch" else "none"
        self._homomorphic_box.layout.display = None if self.method == "homomorphic" else "none"
        self._weights_box.layout.display = None if self.method == "weighted_median" else "none"
        self.controls["noise_amount"].disabled = self.controls["seed"].disabled = self.noise == "none"

    # ------------------------------------------------------------------ computation
    def filter_call(self, data: str = IMAGE) -> Call:
        """The engine call of the active filter, on the variable ``data``."""
        if self.method == "frequency":
            kw = self.keywords(enhance.frequency_filter)
            if not self.band:
                del kw["width"]
            return Call(enhance.frequency_filter, data=data, **kw)
        if self.method == "weighted_median":
            return Call(enhance.weighted_median, [list(map(int, r)) for r in self.weights], data=data)
        if self.method == "notch":
            centers = [[clean_float(fy), clean_float(fx)] for fy, fx in self.notches]
            return Call(enhance.notch_filter, data=data, centers=centers, **self.keywords(enhance.notch_filter))
        fn = {"median": enhance.median, "adaptive_median": enhance.adaptive_median}.get(self.method)
        return Call(fn or enhance.homomorphic_filter, data=data, **self.keywords(fn or enhance.homomorphic_filter))

    def recipe(self) -> Recipe:
        """Noise (when chosen), the spectrum, the active filter and the pictures drawn from them: what ``result``,
        ``code``, the panels and :meth:`compute_full` (the steps ``result`` needs) run.

        Steps: ``noisy`` (with noise), ``spectrum`` (centred log spectrum of the filter's input), for a frequency
        filter ``mask`` (on a display-size grid: the mask depends only on frequency as a fraction of the sampling
        rate), ``frequencies`` and ``profile`` (its gain along the radius), then ``result``, and for the other
        filters ``result_spectrum``.
        """
        steps, data = [], IMAGE
        if self.noise != "none":
            noise = Call(enhance.add_noise, kind=self.noise, **self.keywords(enhance.add_noise))
            steps.append(Step("noisy", noise))
            data = "noisy"
        steps.append(Step("spectrum", Call(enhance.spectrum, data=data, mean_over_channels=True)))
        call = self.filter_call(data)
        if self.method == "frequency":
            kw = call.keywords()
            steps += [
                Step("mask", Call(enhance.frequency_mask, data=self._mask_shape(), **kw)),
                Step("frequencies", Call(enhance.radial_frequencies, data=NO_DATA)),
                Step("profile", Call(enhance.radial_profile, data="frequencies", **kw)),
            ]
        steps.append(Step("result", call))
        if self.method != "frequency":
            steps.append(Step("result_spectrum", Call(enhance.spectrum, data="result", mean_over_channels=True)))
        return Recipe(tuple(steps))

    def _mask_shape(self) -> tuple:
        """(H, W) of the displayed mask: the image's shape, shrunk to :data:`_MASK_SIDE` on its long side."""
        preview = self._state[0] if self._state[0] is not None else self.source
        h, w = preview.shape[:2] if preview is not None else (_MASK_SIDE, _MASK_SIDE)
        scale = min(1.0, _MASK_SIDE / max(h, w))
        return (max(1, round(h * scale)), max(1, round(w * scale)))

    @staticmethod
    def _display(arr, rescale: bool = False):
        """uint8 copy of ``arr`` for a panel: clipped (or min-max stretched), shrunk to the display size."""
        u8 = to_uint8(np.asarray(arr), rescale=rescale)
        return resize_to_fit(np.ascontiguousarray(u8), _DISPLAY_SIDE)

    def _render(self):
        preview, cache, shown = self._state
        if preview is None:
            return
        recipe = self.recipe()
        # the filter input's FFT is computed once per input: a cutoff change costs one mask product and one
        # inverse FFT; without noise the filters get the stored dtype (OpenCV's median is fastest on uint8)
        env = recipe.run(preview, cache=cache, reuse={enhance.frequency_filter: enhance.fourier})
        noisy, out = env.get("noisy", preview), env["result"]
        expressions = {s.name: s.call.expression() for s in recipe.steps}

        noise_key = expressions.get("noisy", "clean")
        if shown.get("input") != noise_key:  # input and its spectrum change only with the image or the noise
            self.p_input.show(self._display(noisy))
            shown["spectrum"] = self._display(env["spectrum"], rescale=True)
            shown["input"] = noise_key
            shown.pop("mask", None)
            shown.pop("marks", None)
        marks = (tuple(map(tuple, self.notches)), clean_float(self.notch_radius)) if self.method == "notch" else ()
        if shown.get("marks") != marks:  # the notch rings are drawn over the cached spectrum
            self.p_spectrum.show(_with_notch_rings(shown["spectrum"], *marks) if marks else shown["spectrum"])
            shown["marks"] = marks

        mask_key = (noise_key, expressions["result"], preview.shape)
        if shown.get("mask") != mask_key:
            if "mask" in env:
                self.p_mask.set_title("filter mask (centred)")
                self.p_mask.show(self._display(env["mask"]))
                self.profile.value = line_plot_svg(
                    env["frequencies"],
                    env["profile"],
                    marker=clean_float(self.cutoff),
                    width=_PANEL_WIDTH - 10,
                    x_label="radial frequency (cycles/pixel)",
                )
            else:
                self.p_mask.set_title("result spectrum")
                self.p_mask.show(self._display(env["result_spectrum"], rescale=True))
                self.profile.value = self._kernel_note()
            shown["mask"] = mask_key

        if self.method == "frequency" and self.highpass and not self.band:
            self.p_result.set_title("result (high-pass, rescaled)")
            self.p_result.show(self._display(out, rescale=True))
        else:
            self.p_result.set_title("result")
            self.p_result.show(self._display(out))

        if self.noise != "none":
            if "clean_f" not in shown:
                shown["clean_f"] = to_float(preview)
            clean_f = shown["clean_f"]
            m = {
                "psnr_input": enhance.psnr(clean_f, noisy),
                "psnr_result": enhance.psnr(clean_f, out),
                "ssim_input": enhance.ssim(clean_f, noisy),
                "ssim_result": enhance.ssim(clean_f, out),
            }
            self.metrics_view.value = html_table(
                ["", "PSNR (dB)", "SSIM"],
                [
                    ["noisy input", f"{m['psnr_input']:.2f}", f"{m['ssim_input']:.4f}"],
                    ["result", f"{m['psnr_result']:.2f}", f"{m['ssim_result']:.4f}"],
                ],
            )
        else:
            m = {}
            self.metrics_view.value = "<i>choose a noise kind to compare against the clean image</i>"
        if self.method == "notch":
            pairs = len(self.notches)
            text = f"{pairs} notch pair{'s' * (pairs != 1)}"
            if m:
                text += f"; PSNR {m['psnr_input']:.2f} dB before → {m['psnr_result']:.2f} dB after"
            else:
                text += "; add periodic noise (noise tab) to compare PSNR before and after"
            self.notch_info.value = f"<span style='font-size:12px'>{html.escape(text)}</span>"
        self.metrics = m
        self.code = recipe.code()
        self.result = out

    def _kernel_note(self) -> str:
        """One line on the active spatial or spectral filter, from the traits."""
        if self.method == "weighted_median":
            w = np.asarray(self.weights)
            text = f"weighted median, {w.shape[0]}×{w.shape[1]} kernel, total weight {int(w.sum())}"
        elif self.method == "median":
            text = f"median over {self.size}×{self.size} windows (replicate border)"
        elif self.method == "notch":
            pts = ", ".join(f"±({fy:g}, {fx:g})" for fy, fx in self.notches) or "none yet: click the spectrum"
            text = f"notch-reject at {pts} cycles/pixel, radius {self.notch_radius:g}, order {self.notch_order:g}"
        elif self.method == "homomorphic":
            text = (
                f"homomorphic: gain {self.gamma_low:g} below, {self.gamma_high:g} above cutoff "
                f"{self.homomorphic_cutoff:g} cycles/pixel (c = {self.sharpness:g}), on log(1 + image)"
            )
        else:
            text = f"adaptive median, windows 3×3 … {self.max_size}×{self.max_size}"
        return f"<span style='font-size:12px'>{html.escape(text)}</span>"

    # ------------------------------------------------------------------ full resolution
    def compute_full(self):
        """Filter the full-resolution image with the current settings; sets and returns ``result``.

        Returns
        -------
        numpy.ndarray
            The shape of :attr:`source` (H×W or H×W×3); dtype as for ``result``.
        """
        if self.source is None:
            raise ValueError("no image loaded")
        self.wait()  # a preview render in flight must not overwrite the full result
        # the filters take the stored dtype directly, so no full-size float copy of the input is made
        return self.run_full(self.recipe(), self.source)
