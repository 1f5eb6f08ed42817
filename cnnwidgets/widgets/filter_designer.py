"""FilterDesigner: frequency-domain and median filters on one image, with noise and quality metrics.

Thin front end over :mod:`cnnwidgets.engine.enhance`: every control is a traitlet, the picture
is recomputed with the latest values (see :class:`~cnnwidgets.widgets._base.Bench`), ``result``
holds the filtered image and ``code`` the engine calls that reproduce it.
"""

from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
import traitlets as T

from ..engine import enhance
from ..io import load_image, resize_to_fit, to_float, to_uint8
from ._base import Bench, ImagePanel

__all__ = ["FilterDesigner"]

METHODS = ("frequency", "median", "weighted_median", "adaptive_median")
RESPONSES = (
    ("low-pass", False, False),
    ("high-pass", True, False),
    ("band-pass", False, True),
    ("band-stop", True, True),
)
_DISPLAY_SIDE = 300  # long side of the PNGs sent to the browser: one image pixel per CSS pixel of a panel
_PANEL_WIDTH = 300
_MASK_SIDE = 300  # long side of the displayed mask


def _pretty(value) -> str:
    return repr(round(value, 6)) if isinstance(value, float) else repr(value)


class FilterDesigner(Bench):
    """Design a filter and see the image, its centred spectrum, the mask and the result side by side.

    Parameters
    ----------
    image : any source :func:`cnnwidgets.io.load_image` accepts, optional
        The clean image (default: the ``astronaut`` sample). Gray stays gray, colour is filtered per channel.
    **kwargs
        Initial values of the traits below.

    Traits
    ------
    method : {"frequency", "median", "weighted_median", "adaptive_median"}
        The active filter (the frequency tab or the spatial tab's choice).
    shape, highpass, cutoff, order, width
        As in :func:`cnnwidgets.engine.enhance.frequency_filter`; ``band`` switches low/high-pass to band-pass/stop.
    size : int
        Median window side (odd).
    weights : list of list of int
        Weighted-median kernel (odd sides).
    max_size : int
        Largest window of the adaptive median (odd).
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

    image = T.Any(None, allow_none=True)
    method = T.Enum(METHODS, "frequency")
    shape = T.Enum(enhance.FILTER_SHAPES, "butterworth")
    highpass = T.Bool(False)
    band = T.Bool(False)
    cutoff = T.Float(0.1)
    order = T.Float(2.0)
    width = T.Float(0.05)
    size = T.Int(3)
    weights = T.List([[1, 1, 1], [1, 3, 1], [1, 1, 1]])
    max_size = T.Int(7)
    noise = T.Enum(("none",) + enhance.NOISE_KINDS, "none")
    noise_amount = T.Float(0.05)
    seed = T.Int(0)
    preview_side = T.Int(1024)
    metrics = T.Dict({})

    _FILTER_TRAITS = ("method", "shape", "highpass", "band", "cutoff", "order", "width", "size", "weights", "max_size")
    _NOISE_TRAITS = ("noise", "noise_amount", "seed")

    def __init__(self, image=None, **kwargs):
        self.source = None  # the loaded full-resolution image
        self._state = (None, {})  # (preview, its cache), swapped as one so a running render never mixes images
        self._syncing = False
        self._controls = {}
        self._build_controls()
        panels = W.HBox([self.p_input, self.p_spectrum, W.VBox([self.p_mask, self.profile]), self.p_result])
        top = W.HBox([self.upload, self.full_button, self.info])
        super().__init__([top, panels, self.tabs])
        self.add_class("cnnw-filter-designer")
        with self.hold_trait_notifications():
            for name, value in kwargs.items():
                setattr(self, name, value)
        self._sync_all_controls()
        self._update_enabled()
        from ..datasets import sample

        self.image = sample("astronaut") if image is None else image

    # ------------------------------------------------------------------ controls
    def _build_controls(self):
        self.p_input = ImagePanel("input", width=_PANEL_WIDTH)
        self.p_spectrum = ImagePanel("centred log spectrum", width=_PANEL_WIDTH)
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

        slider = dict(continuous_update=True, layout=W.Layout(width="420px"), style={"description_width": "80px"})
        c_shape = W.ToggleButtons(options=list(enhance.FILTER_SHAPES), description="shape")
        c_response = W.ToggleButtons(options=[r[0] for r in RESPONSES], description="response")
        c_cutoff = W.FloatSlider(min=0.005, max=0.5, step=0.005, readout_format=".3f", description="cutoff", **slider)
        c_order = W.FloatSlider(min=0.5, max=10.0, step=0.5, description="order", **slider)
        c_width = W.FloatSlider(
            min=0.005, max=0.5, step=0.005, readout_format=".3f", description="band width", **slider
        )
        c_cutoff.add_class("cnnw-fd-cutoff")
        self._bind("shape", c_shape)
        self._bind_response(c_response)
        self._bind("cutoff", c_cutoff)
        self._bind("order", c_order)
        self._bind("width", c_width)
        freq_box = W.VBox([c_shape, c_response, c_cutoff, c_order, c_width])

        c_method = W.Dropdown(
            options=[
                ("median", "median"),
                ("weighted median", "weighted_median"),
                ("adaptive median", "adaptive_median"),
            ],
            description="filter",
        )
        c_size = W.IntSlider(min=1, max=15, step=2, description="window", **slider)
        c_max = W.IntSlider(min=3, max=15, step=2, description="max window", **slider)
        c_ksize = W.Dropdown(options=[3, 5, 7], description="kernel")
        self.weight_grid = W.GridBox(layout=W.Layout(grid_gap="2px"))
        self._spatial_method = c_method
        c_method.observe(lambda ch: self._set_trait("method", ch["new"]), names="value")
        c_ksize.observe(self._kernel_size_changed, names="value")
        self._kernel_size = c_ksize
        self._bind("size", c_size)
        self._bind("max_size", c_max)
        self._weights_box = W.VBox(
            [W.HTML("<b>weighted-median weights</b> (edit the grid)"), c_ksize, self.weight_grid]
        )
        spatial_box = W.VBox([c_method, c_size, self._weights_box, c_max])

        c_noise = W.Dropdown(options=["none"] + list(enhance.NOISE_KINDS), description="noise")
        c_noise.add_class("cnnw-fd-noise")
        c_amount = W.FloatSlider(min=0.0, max=0.5, step=0.01, description="amount", **slider)
        c_seed = W.IntText(description="seed", layout=W.Layout(width="200px"))
        self.metrics_view = W.HTML("")
        self._bind("noise", c_noise)
        self._bind("noise_amount", c_amount)
        self._bind("seed", c_seed)
        noise_box = W.VBox([c_noise, c_amount, c_seed, self.metrics_view])

        self.tabs = W.Tab([freq_box, spatial_box, noise_box])
        self.tabs.add_class("cnnw-fd-tabs")
        for i, title in enumerate(("frequency", "spatial (median)", "noise")):
            self.tabs.set_title(i, title)
        self.tabs.observe(self._tab_changed, names="selected_index")

    def _bind(self, trait, control):
        """Two-way link between a trait and a control; the trait keeps values the control cannot show."""
        self._controls[trait] = control
        control.observe(lambda ch: self._set_trait(trait, ch["new"]), names="value")

    def _bind_response(self, control):
        self._controls["response"] = control

        def changed(ch):
            for name, hp, band in RESPONSES:
                if name == ch["new"]:
                    with self.hold_trait_notifications():
                        self._set_trait("highpass", hp)
                        self._set_trait("band", band)

        control.observe(changed, names="value")

    def _set_trait(self, name, value):
        if not self._syncing and getattr(self, name) != value:
            setattr(self, name, value)

    def _sync_control(self, name):
        self._syncing = True
        try:
            if name in ("highpass", "band"):
                resp = next(r[0] for r in RESPONSES if r[1] == self.highpass and r[2] == self.band)
                self._controls["response"].value = resp
            elif name == "method":
                if self.method != "frequency":
                    self._spatial_method.value = self.method
                    if self.tabs.selected_index != 1:
                        self.tabs.selected_index = 1
                elif self.tabs.selected_index != 0:
                    self.tabs.selected_index = 0
            elif name == "weights":
                self._rebuild_weight_grid()
            elif name in self._controls:
                self._controls[name].value = getattr(self, name)
        except (T.TraitError, ValueError, TypeError):
            pass  # the control cannot show this value; the trait keeps it and the status line reports errors
        finally:
            self._syncing = False

    def _sync_all_controls(self):
        for name in self._FILTER_TRAITS + self._NOISE_TRAITS:
            self._sync_control(name)

    def _rebuild_weight_grid(self):
        try:
            w = np.asarray(self.weights, dtype=np.int64)
            assert w.ndim == 2
        except Exception:
            return
        cells = []
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                box = W.BoundedIntText(value=int(w[i, j]), min=0, max=99, layout=W.Layout(width="52px"))
                box.observe(lambda ch, i=i, j=j: self._weight_edited(i, j, ch["new"]), names="value")
                cells.append(box)
        self.weight_grid.children = cells
        self.weight_grid.layout.grid_template_columns = f"repeat({w.shape[1]}, 56px)"
        if w.shape[0] == w.shape[1] and w.shape[0] in (3, 5, 7):
            self._kernel_size.value = w.shape[0]

    def _weight_edited(self, i, j, value):
        if self._syncing:
            return
        w = [list(row) for row in self.weights]
        w[i][j] = int(value)
        self.weights = w

    def _kernel_size_changed(self, change):
        if self._syncing:
            return
        k = change["new"]
        if len(self.weights) != k:
            self.weights = enhance.center_weighted_kernel(k, 3).tolist()

    def _tab_changed(self, change):
        if self._syncing:
            return
        if change["new"] == 0:
            self.method = "frequency"
        elif change["new"] == 1:
            self.method = self._spatial_method.value

    # ------------------------------------------------------------------ inputs
    def _on_upload(self, array):
        self.image = array

    @T.observe("image")
    def _image_changed(self, change):
        try:
            arr = load_image(change["new"], mode="keep")
            if arr.ndim == 3 and arr.shape[2] == 4:
                arr = load_image(arr, mode="rgb")
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
        self._state = (preview, {})
        h, w = self.source.shape[:2]
        ph, pw = preview.shape[:2]
        note = "" if (ph, pw) == (h, w) else f" — preview {pw}×{ph}; “Full resolution” computes the full image"
        self.info.value = f"<span style='font-size:12px'>image {w}×{h}{html.escape(note)}</span>"

    @T.observe(*_FILTER_TRAITS, *_NOISE_TRAITS)
    def _controls_changed(self, change):
        self._sync_control(change["name"])
        self._update_enabled()
        self.request_update()

    def _update_enabled(self):
        """Grey out the controls the current filter does not use."""
        self._controls["order"].disabled = self.shape in ("ideal", "gaussian")
        self._controls["width"].disabled = not self.band
        self._controls["size"].disabled = self.method != "median"
        self._controls["max_size"].disabled = self.method != "adaptive_median"
        self._weights_box.layout.display = None if self.method == "weighted_median" else "none"
        self._controls["noise_amount"].disabled = self._controls["seed"].disabled = self.noise == "none"

    # ------------------------------------------------------------------ computation
    def _noise_kwargs(self):
        return dict(kind=self.noise, amount=float(self.noise_amount), seed=int(self.seed))

    def _filter_call(self):
        """(engine function name, keyword arguments) of the active filter."""
        if self.method == "frequency":
            kw = dict(shape=self.shape, highpass=self.highpass, cutoff=float(self.cutoff), order=float(self.order))
            if self.band:
                kw["width"] = float(self.width)
            return "frequency_filter", kw
        if self.method == "median":
            return "median", dict(size=int(self.size))
        if self.method == "weighted_median":
            return "weighted_median", dict(weights=[list(map(int, r)) for r in self.weights])
        return "adaptive_median", dict(max_size=int(self.max_size))

    def _apply(self, image):
        """The active filter on ``image``, exactly as the engine returns it."""
        name, kw = self._filter_call()
        if name == "weighted_median":
            return enhance.weighted_median(image, kw["weights"])
        return getattr(enhance, name)(image, **kw)

    def _code_string(self):
        name, kw = self._filter_call()
        lines = ["from cnnwidgets.engine import enhance"]
        src = "image"
        if self.noise != "none":
            args = ", ".join(f"{k}={_pretty(v)}" for k, v in self._noise_kwargs().items())
            lines.append(f"noisy = enhance.add_noise(image, {args})")
            src = "noisy"
        if name == "weighted_median":
            lines.append(f"result = enhance.weighted_median({src}, {kw['weights']!r})")
        else:
            args = ", ".join(f"{k}={_pretty(v)}" for k, v in kw.items())
            lines.append(f"result = enhance.{name}({src}, {args})")
        return "\n".join(lines)

    @staticmethod
    def _display(arr, rescale: bool = False):
        """uint8 copy of ``arr`` for a panel: clipped (or min-max stretched), shrunk to the display size."""
        u8 = to_uint8(np.asarray(arr), rescale=rescale)
        return resize_to_fit(np.ascontiguousarray(u8), _DISPLAY_SIDE)

    @staticmethod
    def _cached(cache, key, make):
        if key not in cache:
            cache[key] = make()
        return cache[key]

    def _render(self):
        preview, cache = self._state
        if preview is None:
            return
        noise_key = ("noisy",) + tuple(self._noise_kwargs().items()) if self.noise != "none" else ("clean",)
        clean_f, noisy, out = self._run_cached(preview, cache, noise_key)
        h, w = preview.shape[:2]

        # input and its spectrum change only with the image or the noise
        if cache.get("shown_input") != noise_key:
            self.p_input.show(self._display(noisy))
            spec = enhance.spectrum(noisy)
            spec = spec.mean(axis=2) if spec.ndim == 3 else spec
            self.p_spectrum.show(self._display(spec, rescale=True))
            cache["shown_input"] = noise_key
            cache.pop("shown_mask", None)

        name, kw = self._filter_call()
        mask_key = (name, tuple(sorted((k, str(v)) for k, v in kw.items())), h, w)
        if cache.get("shown_mask") != mask_key:
            if name == "frequency_filter":
                # the mask depends on frequency as a fraction of the sampling rate, so a display-size
                # grid shows the same picture as the full one at a fraction of the cost
                scale = min(1.0, _MASK_SIDE / max(h, w))
                mask = enhance.frequency_mask((max(1, round(h * scale)), max(1, round(w * scale))), **kw)
                self.p_mask.set_title("filter mask (centred)")
                self.p_mask.show(self._display(mask))
                self.profile.value = self._profile_svg(kw)
            else:
                spec = enhance.spectrum(out)
                spec = spec.mean(axis=2) if spec.ndim == 3 else spec
                self.p_mask.set_title("result spectrum")
                self.p_mask.show(self._display(spec, rescale=True))
                self.profile.value = self._kernel_note(name, kw)
            cache["shown_mask"] = mask_key

        shown = out
        if name == "frequency_filter" and self.highpass and not self.band:
            self.p_result.set_title("result (high-pass, rescaled)")
            self.p_result.show(self._display(shown, rescale=True))
        else:
            self.p_result.set_title("result")
            self.p_result.show(self._display(shown))

        if self.noise != "none":
            m = {
                "psnr_input": enhance.psnr(clean_f, noisy),
                "psnr_result": enhance.psnr(clean_f, out),
                "ssim_input": enhance.ssim(clean_f, noisy),
                "ssim_result": enhance.ssim(clean_f, out),
            }
            self.metrics_view.value = (
                "<table style='font-size:13px'><tr><th></th><th>PSNR (dB)</th><th>SSIM</th></tr>"
                f"<tr><td>noisy input</td><td>{m['psnr_input']:.2f}</td><td>{m['ssim_input']:.4f}</td></tr>"
                f"<tr><td>result</td><td>{m['psnr_result']:.2f}</td><td>{m['ssim_result']:.4f}</td></tr></table>"
            )
        else:
            m = {}
            self.metrics_view.value = "<i>choose a noise kind to compare against the clean image</i>"
        self.metrics = m
        self.code = self._code_string()
        self.result = out

    def _run_cached(self, preview, cache, noise_key):
        clean_f = self._cached(cache, "clean_f", lambda: to_float(preview))
        if cache.get("input_key") != noise_key:  # keep the filter input of the current noise only
            cache.pop("input", None)
            cache.pop("prepared", None)
            cache["input_key"] = noise_key
        # without noise the filters get the stored dtype (OpenCV's median is fastest on uint8)
        make = (
            (lambda: enhance.add_noise(preview, **self._noise_kwargs())) if self.noise != "none" else (lambda: preview)
        )
        noisy = self._cached(cache, "input", make)
        if self.method == "frequency":
            # the input's FFT is computed once; a control change costs one mask product and one inverse FFT
            prepared = self._cached(cache, "prepared", lambda: enhance.prepare(noisy))
            return clean_f, noisy, self._apply(prepared)
        return clean_f, noisy, self._apply(noisy)

    def _profile_svg(self, kw):
        f = np.linspace(0.0, 0.5, 201)
        g = enhance.radial_profile(f, **kw)
        wpx, hpx, pad = _PANEL_WIDTH - 10, 90, 22
        xs = pad + f / 0.5 * (wpx - pad - 6)
        ys = 6 + (1.0 - g) * (hpx - pad - 6)
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
        cx = pad + kw["cutoff"] / 0.5 * (wpx - pad - 6)
        base = hpx - pad
        return (
            f"<svg viewBox='0 0 {wpx} {hpx}' width='100%' style='font:10px sans-serif;max-width:{wpx}px'>"
            f"<line x1='{pad}' y1='{base}' x2='{wpx - 6}' y2='{base}' stroke='#444'/>"
            f"<line x1='{pad}' y1='6' x2='{pad}' y2='{base}' stroke='#444'/>"
            f"<line x1='{cx:.1f}' y1='6' x2='{cx:.1f}' y2='{base}' stroke='#aaa' stroke-dasharray='3,3'/>"
            f"<polyline points='{pts}' fill='none' stroke='#1565c0' stroke-width='2'/>"
            f"<text x='{pad}' y='{base + 12}'>0</text><text x='{wpx - 30}' y='{base + 12}'>0.5</text>"
            f"<text x='2' y='12'>1</text><text x='2' y='{base}'>0</text>"
            f"<text x='{pad + 40}' y='{hpx - 2}'>radial frequency (cycles/pixel)</text></svg>"
        )

    @staticmethod
    def _kernel_note(name, kw):
        if name == "weighted_median":
            w = np.asarray(kw["weights"])
            return f"<span style='font-size:12px'>weighted median, {w.shape[0]}×{w.shape[1]} kernel, total weight {int(w.sum())}</span>"
        if name == "median":
            return (
                f"<span style='font-size:12px'>median over {kw['size']}×{kw['size']} windows (replicate border)</span>"
            )
        return f"<span style='font-size:12px'>adaptive median, windows 3×3 … {kw['max_size']}×{kw['max_size']}</span>"

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
        src = enhance.add_noise(self.source, **self._noise_kwargs()) if self.noise != "none" else self.source
        out = self._apply(src)
        del src
        self.code = self._code_string()
        self.result = out
        return out
