"""Image enhancement: frequency-domain filters, median filters, noise and quality metrics.

Image layouts
-------------
Every function takes NumPy arrays, PIL images or torch tensors and returns the kind it was given
(a PIL image gives a NumPy array):

* NumPy: H×W (gray), H×W×C (colour, channels last) or N×C×H×W (a batch).
* torch: H×W, C×H×W or N×C×H×W.

Colour channels and batch items are filtered independently.

Frequency filters compute with ``torch.fft`` on :func:`cnnwidgets.device.get_device`; their masks are
cached per image size, parameters and device. Frequencies are fractions of the sampling frequency
(cycles per pixel, 0 … 0.5), as scikit-image's ``cutoff_frequency_ratio``.

Median filters use OpenCV's ``medianBlur`` on the CPU where it applies (it is the fastest correct
path) and torch everywhere else. Their border convention is *replicate* (the edge pixel repeats),
which is OpenCV's ``BORDER_REPLICATE`` and SciPy's ``mode="nearest"``.
"""

from __future__ import annotations

import math
import numbers
import threading
from collections import OrderedDict

import numpy as np

from ..device import get_device
from ..io import to_float
from . import kinds

__all__ = [
    "FILTER_SHAPES",
    "NOISE_KINDS",
    "frequency_filter",
    "fourier",
    "Fourier",
    "frequency_mask",
    "radial_profile",
    "spectrum",
    "notch_filter",
    "homomorphic_filter",
    "median",
    "weighted_median",
    "center_weighted_kernel",
    "adaptive_median",
    "median_combination",
    "add_noise",
    "psnr",
    "ssim",
    "clear_cache",
]

FILTER_SHAPES = ("ideal", "butterworth", "exponential", "gaussian")
"""Names accepted by ``shape=`` in :func:`frequency_filter` and :func:`frequency_mask`."""

NOISE_KINDS = ("gaussian", "salt_and_pepper", "speckle", "periodic")
"""Names accepted by ``kind=`` in :func:`add_noise`."""

#: Images with more pixels than this are filtered one channel at a time to bound peak memory.
_PLANE_BY_PLANE_PIXELS = 4_000_000
#: Budget of the FFT-mask cache in bytes.
_MASK_CACHE_BYTES = 256 * 2**20
#: Elements per chunk in the unfold-based (torch) median filters.
_CHUNK_ELEMENTS = 32 * 2**20


# ============================================================================ layouts


class _Layout:
    """Converts an image to an N×C×H×W view and back to the caller's kind and layout."""

    def __init__(self, image, name: str = "image"):

        self.torch = kinds.is_torch(image)
        if not self.torch and not isinstance(image, np.ndarray):
            if type(image).__module__.startswith("PIL"):
                image = kinds.to_numpy(image, name)
            else:
                try:
                    image = np.asarray(image)
                except Exception:
                    raise TypeError(
                        f"{name}: expected a NumPy array, PIL image or torch tensor, got {type(image).__name__}"
                    ) from None
                if image.dtype == object:
                    raise TypeError(
                        f"{name}: expected a NumPy array, PIL image or torch tensor, got {type(image).__name__}"
                    )
        if image.ndim not in (2, 3, 4):
            raise ValueError(
                f"{name}: expected H×W, H×W×C (C×H×W for torch) or N×C×H×W, got shape {tuple(image.shape)}"
            )
        if min(image.shape) == 0:
            raise ValueError(f"{name}: image has no pixels (shape {tuple(image.shape)})")
        if self.torch and (image.is_complex()):
            raise ValueError(f"{name}: complex tensors are not images")
        if not self.torch and image.dtype.kind not in "buif":
            raise ValueError(f"{name}: unsupported dtype {image.dtype}")
        self.ndim = image.ndim
        self.image = image
        self.device = image.device if self.torch else None

    # numpy / torch view in N×C×H×W (no copy where possible)
    def nchw(self):
        x = self.image
        if self.ndim == 2:
            return x[None, None]
        if self.ndim == 3:
            return x[None] if self.torch else x.transpose(2, 0, 1)[None]
        return x

    @property
    def hw(self):
        s = self.image.shape
        return (s[0], s[1]) if (self.ndim == 2 or (self.ndim == 3 and not self.torch)) else (s[-2], s[-1])

    def restore(self, y):
        """Turn an N×C×H×W result (numpy or torch) back into the input's kind and layout."""
        import torch

        if self.torch:
            y = torch.as_tensor(y) if not isinstance(y, torch.Tensor) else y
            y = y.to(self.device)
            return y[0, 0] if self.ndim == 2 else (y[0] if self.ndim == 3 else y)
        if isinstance(y, torch.Tensor):
            y = y.cpu().numpy()
        if self.ndim == 2:
            return y[0, 0]
        if self.ndim == 3:
            return y[0].transpose(1, 2, 0)  # a channels-last view; no copy
        return y


def _float_planes(layout: _Layout, device):
    """The image as float32 N×C×H×W torch tensor on ``device`` (integers scaled to [0, 1])."""
    import torch

    x = layout.nchw()
    if not layout.torch:
        x = torch.from_numpy(np.ascontiguousarray(x) if x.dtype == bool else x)
    if x.dtype == torch.bool or x.dtype == torch.float64:
        x = x.float()
    return to_float(x.to(device)).contiguous()


def _map_planes(image, fn, *, name="image"):
    """Apply ``fn`` (float32 tensor …×H×W → same shape) to every plane; small images in one batch.

    Large images go one plane at a time and land in a preallocated output, so a 24-megapixel
    RGB photo never holds more than one float plane's FFT at once.
    """
    import torch

    layout = _Layout(image, name)
    device = get_device()
    h, w = layout.hw
    nc = int(np.prod(layout.image.shape)) // (h * w)
    with torch.no_grad():
        if h * w * nc <= _PLANE_BY_PLANE_PIXELS or nc == 1:
            return layout.restore(fn(_float_planes(layout, device)))
        src = layout.nchw()
        n, c = src.shape[:2]
        if layout.torch:
            out = torch.empty((n, c, h, w), dtype=torch.float32, device=layout.device)
            dest = out
        else:
            shape = {2: (h, w), 3: (h, w, c), 4: (n, c, h, w)}[layout.ndim]
            out = np.empty(shape, np.float32)
            dest = out[None, None] if layout.ndim == 2 else (out.transpose(2, 0, 1)[None] if layout.ndim == 3 else out)
        for i in range(n):
            for j in range(c):
                plane = src[i, j]
                plane = plane if layout.torch else torch.from_numpy(np.ascontiguousarray(plane))
                plane = to_float(
                    plane.to(device).float() if plane.dtype in (torch.bool, torch.float64) else plane.to(device)
                )
                res = fn(plane)
                if layout.torch:
                    dest[i, j] = res.to(layout.device)
                else:
                    dest[i, j] = res.cpu().numpy()
                del plane, res
        if layout.torch:
            return out[0, 0] if layout.ndim == 2 else (out[0] if layout.ndim == 3 else out)
        return out


# ============================================================================ masks


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)


def _check_params(shape, cutoff, order, width):
    if shape not in FILTER_SHAPES:
        raise ValueError(f"shape must be one of {FILTER_SHAPES}, got {shape!r}")
    if not _is_number(cutoff) or not (0 < cutoff <= 0.5):
        raise ValueError(
            f"cutoff must be a number with 0 < cutoff <= 0.5 (a fraction of the sampling frequency), got {cutoff!r}"
        )
    if not _is_number(order) or not order > 0:
        raise ValueError(f"order must be a positive number, got {order!r}")
    if width is not None and (not _is_number(width) or not width > 0):
        raise ValueError(f"width must be None (low/high-pass) or a positive band width, got {width!r}")


def _butterworth(d2, order, highpass: bool):
    """Butterworth gain at the squared normalised distance ``d2`` (scikit-image's construction); float64.

    The high-pass form ``1 / (1 + 1 / d2**order)`` has no cancellation at high orders or in the far tails.
    """
    q = np.power(d2, order)
    with np.errstate(divide="ignore"):
        return 1.0 / (1.0 + 1.0 / q) if highpass else 1.0 / (1.0 + q)


def _lowpass_profile(d, shape, order):
    """Low-pass gain at normalised distance ``d`` (1 at the cutoff); float64 arrays."""
    if shape == "ideal":
        return (d <= 1.0).astype(np.float64)
    if shape == "butterworth":
        return _butterworth(d * d, order, False)
    if shape == "exponential":
        return np.exp(-math.log(2.0) * np.power(d, order))
    return np.exp(-0.5 * d * d)  # gaussian


def _complement(gain, d, shape, order):
    """1 − low-pass gain, computed without cancellation for Butterworth (high orders, far tails)."""
    if shape == "butterworth":
        return _butterworth(d * d, order, True)
    return 1.0 - gain


def radial_profile(freq, *, shape="butterworth", highpass=False, cutoff=0.1, order=2.0, width=None):
    """Gain of a radially symmetric frequency filter at radial frequencies ``freq``.

    Parameters
    ----------
    freq : array_like
        Radial frequencies in cycles per pixel (0 … about 0.707), any shape.
    shape, highpass, cutoff, order, width
        As in :func:`frequency_filter`.

    Returns
    -------
    numpy.ndarray
        float64 gains in [0, 1], the shape of ``freq``.
    """
    _check_params(shape, cutoff, order, width)
    f = np.abs(np.asarray(freq, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if width is None:
            d = f / cutoff
            if shape == "ideal":
                return (d > 1.0).astype(np.float64) if highpass else (d <= 1.0).astype(np.float64)
            low = _lowpass_profile(d, shape, order)
            return _complement(low, d, shape, order) if highpass else low
        if shape == "ideal":
            inside = np.abs(f - cutoff) <= width / 2.0
            return (~inside if highpass else inside).astype(np.float64)
        # band distance: 0 on the ring f = cutoff, 1 at about cutoff ± width/2 (Gonzalez & Woods)
        t = np.abs(f * f - cutoff * cutoff) / (f * width)
        t = np.where(f == 0, np.inf, t)
        low = _lowpass_profile(t, shape, order)
        return _complement(low, t, shape, order) if highpass else low


class _MaskCache:
    """A small LRU cache of device tensors bounded by total bytes."""

    def __init__(self, budget: int):
        self.budget = budget
        self.items: OrderedDict = OrderedDict()
        self.bytes = 0
        self.lock = threading.Lock()

    def get(self, key, build):
        with self.lock:
            hit = self.items.get(key)
            if hit is not None:
                self.items.move_to_end(key)
                return hit
        value = build()
        size = value.element_size() * value.nelement()
        with self.lock:
            if key not in self.items:
                self.items[key] = value
                self.bytes += size
                while self.bytes > self.budget and len(self.items) > 1:
                    _, old = self.items.popitem(last=False)
                    self.bytes -= old.element_size() * old.nelement()
        return value

    def clear(self):
        with self.lock:
            self.items.clear()
            self.bytes = 0


_MASKS = _MaskCache(_MASK_CACHE_BYTES)


def clear_cache():
    """Forget the cached FFT masks (they are rebuilt on demand)."""
    _MASKS.clear()


def _radial_grid(h, w, half: bool):
    fy = np.fft.fftfreq(h)[:, None]
    fx = (np.fft.rfftfreq(w) if half else np.fft.fftfreq(w))[None, :]
    return np.sqrt(fy * fy + fx * fx)


def _rfft_mask(h, w, params: tuple, device):
    """The cached float32 mask for ``torch.fft.rfft2`` of an H×W plane (shape H × (W//2+1))."""
    import torch

    def build():
        shape, highpass, cutoff, order, width = params
        if shape == "butterworth" and width is None:
            # exactly scikit-image's construction: squared distances over the cutoff, then the power
            fy = np.fft.fftfreq(h)[:, None] / cutoff
            fx = np.fft.rfftfreq(w)[None, :] / cutoff
            m = _butterworth(fy * fy + fx * fx, order, highpass)
        else:
            m = radial_profile(
                _radial_grid(h, w, True), shape=shape, highpass=highpass, cutoff=cutoff, order=order, width=width
            )
        return torch.from_numpy(m.astype(np.float32)).to(device)

    return _MASKS.get(("radial", h, w, params, str(device)), build)


def frequency_mask(shape_hw, *, shape="butterworth", highpass=False, cutoff=0.1, order=2.0, width=None, centered=True):
    """The gain mask :func:`frequency_filter` multiplies the spectrum with, for display.

    Parameters
    ----------
    shape_hw : tuple of int
        (H, W) of the image.
    shape, highpass, cutoff, order, width
        As in :func:`frequency_filter`.
    centered : bool
        Shift zero frequency to the centre (as :func:`spectrum` does); ``False`` gives NumPy's FFT order.

    Returns
    -------
    numpy.ndarray
        H×W float32 gains in [0, 1].
    """
    h, w = (int(v) for v in shape_hw)
    if h < 1 or w < 1:
        raise ValueError(f"shape_hw must be two positive sizes, got {shape_hw!r}")
    _check_params(shape, cutoff, order, width)
    m = radial_profile(
        _radial_grid(h, w, False), shape=shape, highpass=highpass, cutoff=cutoff, order=order, width=width
    )
    m = m.astype(np.float32)
    return np.fft.fftshift(m) if centered else m


# ============================================================================ frequency filters


def frequency_filter(image, *, shape="butterworth", highpass=False, cutoff=0.1, order=2.0, width=None):
    """Filter an image in the frequency domain with a radially symmetric mask.

    The image is transformed with ``torch.fft.rfft2`` (no padding, periodic boundary), multiplied by
    the mask and transformed back.

    Parameters
    ----------
    image : numpy.ndarray, PIL.Image.Image or torch.Tensor
        H×W, H×W×C (C×H×W for torch) or N×C×H×W; integers are scaled to [0, 1] first.
    shape : {"ideal", "butterworth", "exponential", "gaussian"}
        Low-pass profile at normalised frequency ``D = f / cutoff``:
        ideal ``D <= 1``; Butterworth ``1 / (1 + D**(2*order))`` (scikit-image's squared Butterworth, gain 0.5
        at the cutoff); exponential ``exp(-ln 2 * D**order)`` (gain 0.5 at the cutoff); Gaussian
        ``exp(-D**2 / 2)`` (the cutoff is the standard deviation). ``order`` is used by Butterworth and exponential.
    highpass : bool
        Use ``1 − low-pass`` (high-pass, or band-stop when ``width`` is given).
    cutoff : float
        Cutoff frequency as a fraction of the sampling frequency, 0 < cutoff <= 0.5
        (scikit-image's ``cutoff_frequency_ratio``); with ``width``, the centre of the band.
    order : float
        Steepness (> 0).
    width : float, optional
        Band width in the same units: ``highpass=False`` gives a band-pass, ``True`` a band-stop filter.
        The band profile is the low-pass profile at the band distance ``|f**2 − cutoff**2| / (f * width)``
        (Gonzalez & Woods); the ideal band is ``|f − cutoff| <= width / 2``.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32, the input's shape and kind. Values are not clipped (a high-pass result is centred on 0).

    Notes
    -----
    With ``shape="butterworth"`` the result equals
    ``skimage.filters.butterworth(image, cutoff_frequency_ratio=cutoff, high_pass=highpass, order=order, channel_axis=…)``.
    """
    import torch

    _check_params(shape, cutoff, order, width)
    params = (shape, bool(highpass), float(cutoff), float(order), None if width is None else float(width))
    if isinstance(image, Fourier):
        h, w = image.hw
        with torch.no_grad():
            spec = image.spectrum
            return image.layout.restore(torch.fft.irfft2(spec * _rfft_mask(h, w, params, spec.device), s=(h, w)))

    def run(x):
        h, w = x.shape[-2:]
        mask = _rfft_mask(h, w, params, x.device)
        return torch.fft.irfft2(torch.fft.rfft2(x) * mask, s=(h, w))

    return _map_planes(image, run)


class Fourier:
    """An image with its Fourier transform computed once, to filter it many times (a widget's slider).

    ``frequency_filter(fourier(image), ...)`` equals ``frequency_filter(image, ...)`` and skips the forward FFT.
    Meant for display-size images: it keeps the whole half-spectrum (8 bytes per pixel and channel) on the device.

    Attributes
    ----------
    spectrum : torch.Tensor
        complex64 N×C×H×(W//2+1), ``torch.fft.rfft2`` of the float32 planes.
    hw : tuple of int
        (H, W).
    """

    def __init__(self, image):
        import torch

        self.layout = _Layout(image)
        self.hw = self.layout.hw
        with torch.no_grad():
            self.spectrum = torch.fft.rfft2(_float_planes(self.layout, get_device()))
        self.layout.image = None  # only the layout is needed to restore results; do not keep the pixels


def fourier(image) -> Fourier:
    """Compute an image's Fourier transform once for repeated :func:`frequency_filter` calls.

    Parameters
    ----------
    image : numpy.ndarray, PIL.Image.Image or torch.Tensor
        Any layout of :func:`frequency_filter`.

    Returns
    -------
    Fourier
    """
    return Fourier(image)


def spectrum(image, *, mean_over_channels: bool = False):
    """Centred log-magnitude spectrum ``log(1 + |FFT|)`` of each plane, for display.

    Parameters
    ----------
    image : numpy.ndarray, PIL.Image.Image or torch.Tensor
        Any layout of :func:`frequency_filter`; integers are scaled to [0, 1] first.
    mean_over_channels : bool
        Average the spectra of a colour image's channels into one H×W picture.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32 ≥ 0, the input's shape and kind, zero frequency at index (H//2, W//2).
    """
    import torch

    def run(x):
        return torch.log1p(torch.fft.fftshift(torch.fft.fft2(x).abs(), dim=(-2, -1)))

    out = _map_planes(image, run)
    if mean_over_channels and out.ndim == 3:
        return out.mean(axis=2) if isinstance(out, np.ndarray) else out.mean(dim=0)
    return out


def notch_filter(image, *, centers, radius=0.02, order=2.0):
    """Remove periodic noise: Butterworth notch-reject filters at given frequencies and their mirrors.

    Parameters
    ----------
    image : numpy.ndarray, PIL.Image.Image or torch.Tensor
        Any layout of :func:`frequency_filter`.
    centers : sequence of (fy, fx)
        Frequencies to remove, in cycles per pixel (−0.5 … 0.5); each is also removed at (−fy, −fx).
    radius : float
        Notch radius in cycles per pixel (gain 0.5 at this distance from a centre).
    order : float
        Butterworth order of each notch.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32, the input's shape and kind.
    """
    import torch

    pts = np.asarray(centers, dtype=np.float64).reshape(-1, 2) if len(centers) else np.zeros((0, 2))
    if pts.size == 0:
        raise ValueError("centers: give at least one (fy, fx) frequency to remove")
    if np.any(np.abs(pts) > 0.5):
        raise ValueError(f"centers: frequencies must lie in [-0.5, 0.5] cycles per pixel, got {pts.tolist()}")
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    if not order > 0:
        raise ValueError(f"order must be positive, got {order!r}")
    key = ("notch", tuple(map(tuple, pts.tolist())), float(radius), float(order))

    def run(x):
        h, w = x.shape[-2:]

        def build():
            fy = np.fft.fftfreq(h)[:, None]
            fx = np.fft.rfftfreq(w)[None, :]
            m = np.ones((h, w // 2 + 1))
            with np.errstate(divide="ignore"):
                for cy, cx in pts:
                    for sy, sx in ((cy, cx), (-cy, -cx)):
                        d2 = (fy - sy) ** 2 + (fx - sx) ** 2
                        m *= 1.0 / (1.0 + np.power(radius * radius / d2, order))
            return torch.from_numpy(m.astype(np.float32)).to(x.device)

        mask = _MASKS.get((key, h, w, str(x.device)), build)
        return torch.fft.irfft2(torch.fft.rfft2(x) * mask, s=(h, w))

    return _map_planes(image, run)


def homomorphic_filter(image, *, cutoff=0.05, gamma_low=0.5, gamma_high=1.5, sharpness=1.0, rescale=True):
    """Illumination correction: compress the slow (illumination) part of ``log(1 + image)``, boost the rest.

    The filter is ``(gamma_high − gamma_low) * (1 − exp(−sharpness * f**2 / cutoff**2)) + gamma_low``
    applied to the spectrum of ``log(1 + image)``, followed by ``exp(·) − 1`` (Gonzalez & Woods).

    Parameters
    ----------
    image : numpy.ndarray, PIL.Image.Image or torch.Tensor
        Any layout of :func:`frequency_filter`; integers are scaled to [0, 1] first.
    cutoff : float
        Where the gain moves from ``gamma_low`` to ``gamma_high``, in cycles per pixel (0 < cutoff <= 0.5).
    gamma_low, gamma_high : float
        Gains for low (illumination) and high (reflectance) frequencies; ``gamma_low < 1 < gamma_high``
        evens out lighting and raises contrast.
    sharpness : float
        Steepness of the transition (> 0).
    rescale : bool
        Stretch each plane to [0, 1] (min–max) at the end; otherwise return ``exp(·) − 1`` as computed.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32, the input's shape and kind.
    """
    import torch

    if not (_is_number(cutoff) and 0 < cutoff <= 0.5):
        raise ValueError(f"cutoff must satisfy 0 < cutoff <= 0.5, got {cutoff!r}")
    if not sharpness > 0:
        raise ValueError(f"sharpness must be positive, got {sharpness!r}")
    key = ("homomorphic", float(cutoff), float(gamma_low), float(gamma_high), float(sharpness))

    def run(x):
        h, w = x.shape[-2:]

        def build():
            f2 = _radial_grid(h, w, True) ** 2
            m = (gamma_high - gamma_low) * (1.0 - np.exp(-sharpness * f2 / cutoff**2)) + gamma_low
            return torch.from_numpy(m.astype(np.float32)).to(x.device)

        mask = _MASKS.get((key, h, w, str(x.device)), build)
        y = torch.expm1(torch.fft.irfft2(torch.fft.rfft2(torch.log1p(x.clamp_min(0))) * mask, s=(h, w)))
        if rescale:
            lo = y.amin(dim=(-2, -1), keepdim=True)
            hi = y.amax(dim=(-2, -1), keepdim=True)
            y = (y - lo) / (hi - lo).clamp_min(1e-12)
        return y

    return _map_planes(image, run)


# ============================================================================ median filters


def _odd(size, name):
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)) or size < 1 or size % 2 == 0:
        raise ValueError(f"{name} must be an odd positive integer (window side in pixels), got {size!r}")
    return int(size)


def _cv2_median_ok(x: np.ndarray, k: int) -> bool:
    """Whether ``cv2.medianBlur`` filters this H×W[×C] array exactly (replicate border)."""
    channels = 1 if x.ndim == 2 else x.shape[2]
    if x.dtype == np.uint8:
        return channels in (1, 3, 4) or (k <= 5 and channels <= 4)
    return x.dtype in (np.uint16, np.float32) and k <= 5 and channels <= 4


def _torch_work_dtype(dtype):
    import torch

    if dtype in (torch.float32, torch.float64):
        return dtype
    if dtype in (torch.uint8, torch.int8, torch.int16, torch.bool, torch.float16, torch.bfloat16) or dtype == getattr(
        torch, "uint16", None
    ):
        return torch.float32
    return torch.float64


def _windows(x, kh, kw, row0, row1):
    """Unfolded replicate-padded windows of rows [row0, row1) of a padded N×C×H'×W' tensor: (…, kh*kw)."""
    sub = x[:, :, row0 : row1 + kh - 1]
    win = sub.unfold(2, kh, 1).unfold(3, kw, 1)
    return win.reshape(*win.shape[:4], kh * kw)


def _torch_window_reduce(x, kh, kw, reduce):
    """Apply ``reduce`` (…, K) → (…) to every kh×kw window of an N×C×H×W tensor, replicate border, in row chunks."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    work = _torch_work_dtype(x.dtype)
    xp = F.pad(x.to(work), (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate") if (kh > 1 or kw > 1) else x.to(work)
    out = torch.empty((n, c, h, w), dtype=work, device=x.device)
    rows = max(1, _CHUNK_ELEMENTS // max(1, n * c * w * kh * kw))
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        out[:, :, r0:r1] = reduce(_windows(xp, kh, kw, r0, r1))
    return out.to(x.dtype) if x.dtype != torch.bool else out > 0.5


def _median_planes_cv2(x: np.ndarray, k: int) -> np.ndarray:
    """medianBlur over an N×C×H×W NumPy array, one image (all channels) at a time."""
    import cv2

    out = np.empty_like(x)
    c = x.shape[1]
    for i in range(x.shape[0]):
        hwc = np.ascontiguousarray(x[i].transpose(1, 2, 0))
        if _cv2_median_ok(hwc, k):
            res = cv2.medianBlur(hwc, k)
            out[i] = res[None] if res.ndim == 2 else res.transpose(2, 0, 1)
        else:
            for j in range(c):
                out[i, j] = cv2.medianBlur(np.ascontiguousarray(x[i, j]), k)
    return out


def median(image, *, size=3):
    """Median filter with a size×size square window and replicate border.

    Equals ``scipy.ndimage.median_filter(image, size=(size, size[, 1]), mode="nearest")`` and, where it
    applies, ``cv2.medianBlur(image, size)``. On the CPU, OpenCV does the work for uint8 (any size) and for
    uint16/float32 (sizes 3 and 5); other cases and GPUs use torch.

    Parameters
    ----------
    image : numpy.ndarray, PIL.Image.Image or torch.Tensor
        Any layout of :func:`frequency_filter`; any real dtype, values unchanged in kind.
    size : int
        Odd window side in pixels (1 returns a copy).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Same shape, dtype and kind as the input.
    """
    k = _odd(size, "size")
    layout = _Layout(image)
    device = get_device()
    if k == 1:
        return image.clone() if layout.torch else np.array(layout.image, copy=True)
    src = layout.nchw()
    on_cpu = device.type == "cpu" and (not layout.torch or layout.device.type == "cpu")
    if on_cpu:
        img = layout.image
        if (
            not layout.torch
            and layout.ndim in (2, 3)
            and img.dtype in (np.uint8, np.uint16, np.float32)
            and _cv2_median_ok(img, k)
        ):
            import cv2

            out = cv2.medianBlur(np.ascontiguousarray(img), k)  # one call, no layout copies
            return out.reshape(img.shape)
        arr = src.cpu().numpy() if layout.torch else src
        if arr.dtype == np.uint8 or (arr.dtype in (np.uint16, np.float32) and k <= 5):
            return layout.restore(_median_planes_cv2(arr, k))
    import torch

    x = src if layout.torch else torch.from_numpy(np.ascontiguousarray(src))
    with torch.no_grad():
        y = _torch_window_reduce(x.to(device), k, k, lambda win: win.median(dim=-1).values)
    return layout.restore(y)


def center_weighted_kernel(size=3, center=3):
    """Integer weights of a centre-weighted median: all ones, ``center`` in the middle.

    Returns
    -------
    numpy.ndarray
        size×size int64.
    """
    k = _odd(size, "size")
    if not isinstance(center, (int, np.integer)) or center < 1:
        raise ValueError(f"center must be a positive integer, got {center!r}")
    w = np.ones((k, k), np.int64)
    w[k // 2, k // 2] = center
    return w


def _check_weights(weights):
    w = np.asarray(weights)
    if w.ndim != 2 or w.shape[0] % 2 == 0 or w.shape[1] % 2 == 0:
        raise ValueError(f"weights must be a 2-D kernel with odd sides, got shape {w.shape}")
    if w.dtype.kind == "f":
        if not np.all(np.isfinite(w)) or np.any(w != np.round(w)):
            raise ValueError("weights must be whole numbers (how often each pixel counts)")
        w = w.astype(np.int64)
    elif w.dtype.kind not in "uib":
        raise ValueError(f"weights must be integers, got dtype {w.dtype}")
    w = w.astype(np.int64)
    if np.any(w < 0):
        raise ValueError("weights must not be negative")
    if w.sum() == 0:
        raise ValueError("weights must not all be zero")
    return w


def weighted_median(image, weights):
    """Weighted median filter: each window pixel counts as often as its integer weight.

    The output is the lower median (rank ``(sum(weights) − 1) // 2``) of the window values repeated by
    their weights; replicate border. Weights of all ones give :func:`median`; see
    :func:`center_weighted_kernel` for the centre-weighted median.

    Parameters
    ----------
    image : numpy.ndarray, PIL.Image.Image or torch.Tensor
        Any layout of :func:`frequency_filter`; any real dtype.
    weights : array_like
        kh×kw non-negative integers, odd sides, not all zero.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Same shape, dtype and kind as the input.
    """
    import torch

    w = _check_weights(weights)
    layout = _Layout(image)
    device = get_device()
    src = layout.nchw()
    x = src if layout.torch else torch.from_numpy(np.ascontiguousarray(src))
    flat = torch.from_numpy(w.reshape(-1)).to(device)
    rank = (int(w.sum()) - 1) // 2

    def reduce(win):
        vals, idx = win.sort(dim=-1)
        cum = flat[idx].cumsum(dim=-1)
        pos = (cum <= rank).sum(dim=-1, keepdim=True)
        return vals.gather(-1, pos).squeeze(-1)

    with torch.no_grad():
        y = _torch_window_reduce(x.to(device), w.shape[0], w.shape[1], reduce)
    return layout.restore(y)


def adaptive_median(image, *, max_size=7):
    """Adaptive median filter for impulse (salt-and-pepper) noise (Gonzalez & Woods).

    For each pixel the window grows from 3×3 until its median lies strictly between the window's
    minimum and maximum (stage A); the pixel is then kept if it too lies strictly between them and
    replaced by the median otherwise (stage B). If the window reaches ``max_size`` without passing
    stage A, the median of the largest window is output. Replicate border.

    Parameters
    ----------
    image : numpy.ndarray, PIL.Image.Image or torch.Tensor
        Any layout of :func:`frequency_filter`; any real dtype.
    max_size : int
        Largest odd window side (≥ 3).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Same shape, dtype and kind as the input.
    """
    import torch
    import torch.nn.functional as F

    smax = _odd(max_size, "max_size")
    if smax < 3:
        raise ValueError(f"max_size must be at least 3, got {max_size!r}")
    layout = _Layout(image)
    device = get_device()
    src = layout.nchw()
    x = src if layout.torch else torch.from_numpy(np.ascontiguousarray(src))
    x = x.to(device)
    work = _torch_work_dtype(x.dtype)
    with torch.no_grad():
        z = x.to(work)
        out = z.clone()
        pending = torch.ones_like(z, dtype=torch.bool)
        zmed = z
        for s in range(3, smax + 1, 2):
            p = s // 2
            zp = F.pad(z, (p, p, p, p), mode="replicate")
            zmax = F.max_pool2d(zp, s, stride=1)
            zmin = -F.max_pool2d(-zp, s, stride=1)
            med = median(x if layout.torch or device.type != "cpu" else src, size=s)
            zmed = (
                (med if isinstance(med, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(med)))
                .to(device)
                .to(work)
            )
            stage_a = (zmin < zmed) & (zmed < zmax) & pending
            keep = (zmin < z) & (z < zmax)
            out = torch.where(stage_a, torch.where(keep, z, zmed), out)
            pending &= ~stage_a
            if not bool(pending.any()):
                break
        out = torch.where(pending, zmed, out)
    return layout.restore(out.to(x.dtype))


def median_combination(image, *, sizes=(3, 5, 7), coefficients=None):
    """A linear combination of medians over several window sizes, ``Σ coefficients[i] * median(image, size=sizes[i])``.

    Parameters
    ----------
    image : numpy.ndarray, PIL.Image.Image or torch.Tensor
        Any layout of :func:`frequency_filter`; integers are scaled to [0, 1].
    sizes : sequence of int
        Odd window sides.
    coefficients : sequence of float, optional
        One per size; default equal weights summing to 1.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32, the input's shape and kind.
    """
    sizes = [_odd(s, "sizes[]") for s in sizes]
    if not sizes:
        raise ValueError("sizes: give at least one window size")
    if coefficients is None:
        coefficients = [1.0 / len(sizes)] * len(sizes)
    coefficients = [float(c) for c in coefficients]
    if len(coefficients) != len(sizes):
        raise ValueError(f"coefficients: need one per size ({len(sizes)}), got {len(coefficients)}")
    total = None
    for s, c in zip(sizes, coefficients):
        term = to_float(median(image, size=s))
        total = term * c if total is None else total + term * c
    return total


# ============================================================================ noise and metrics


def add_noise(image, *, kind="gaussian", amount=0.05, seed=None, frequency=(0.1, 0.15)):
    """Add synthetic noise to an image.

    Parameters
    ----------
    image : numpy.ndarray, PIL.Image.Image or torch.Tensor
        Any layout of :func:`frequency_filter`; integers are scaled to [0, 1] first.
    kind : {"gaussian", "salt_and_pepper", "speckle", "periodic"}
        gaussian: ``x + amount * N(0, 1)``; salt_and_pepper: a fraction ``amount`` of pixel positions set to
        0 or 1 (half each, all channels of a pixel together); speckle: ``x + x * amount * N(0, 1)``;
        periodic: ``x + amount * sin(2π (fy * row + fx * col))``.
    amount : float
        Noise strength (≥ 0), see ``kind``.
    seed : int, optional
        Seed for reproducible noise.
    frequency : (float, float)
        (fy, fx) of the periodic noise in cycles per pixel.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32 clipped to [0, 1], the input's shape and kind.
    """
    import torch

    if kind not in NOISE_KINDS:
        raise ValueError(f"kind must be one of {NOISE_KINDS}, got {kind!r}")
    if not _is_number(amount) or amount < 0:
        raise ValueError(f"amount must be a number >= 0, got {amount!r}")
    if kind == "salt_and_pepper" and amount > 1:
        raise ValueError(f"amount is a fraction of pixels for salt_and_pepper (0 … 1), got {amount!r}")
    layout = _Layout(image)
    device = get_device()
    with torch.no_grad():
        x = _float_planes(layout, device)
        gen = torch.Generator().manual_seed(int(seed) if seed is not None else int(torch.seed() % 2**63))
        n, c, h, w = x.shape
        if kind == "gaussian":
            y = x + amount * torch.randn(x.shape, generator=gen).to(device)
        elif kind == "speckle":
            y = x + x * (amount * torch.randn(x.shape, generator=gen).to(device))
        elif kind == "periodic":
            fy, fx = (float(v) for v in frequency)
            rows = torch.arange(h, dtype=torch.float64)[:, None]
            cols = torch.arange(w, dtype=torch.float64)[None, :]
            wave = torch.sin(2 * math.pi * (fy * rows + fx * cols)).float().to(device)
            y = x + amount * wave
        else:
            u = torch.rand((n, 1, h, w), generator=gen).to(device)
            y = torch.where(u < amount / 2, 0.0, torch.where(u < amount, 1.0, x))
        y = y.clamp_(0.0, 1.0)
    return layout.restore(y)


def _metric_pair(image_true, image_test, data_range):
    import torch

    a, b = _Layout(image_true, "image_true"), _Layout(image_test, "image_test")
    if tuple(a.image.shape) != tuple(b.image.shape):
        raise ValueError(
            f"image_true and image_test must have the same shape, got {tuple(a.image.shape)} and {tuple(b.image.shape)}"
        )
    device = get_device()

    def prep(layout):
        x = layout.nchw()
        x = x if layout.torch else torch.from_numpy(np.ascontiguousarray(x))
        x = x.to(device)
        if data_range is None:
            return to_float(x.float() if x.dtype == torch.bool else x).double()
        return x.double()

    return prep(a), prep(b), (1.0 if data_range is None else float(data_range))


def psnr(image_true, image_test, *, data_range=None):
    """Peak signal-to-noise ratio in dB, as ``skimage.metrics.peak_signal_noise_ratio``.

    Parameters
    ----------
    image_true, image_test : numpy.ndarray, PIL.Image.Image or torch.Tensor
        Same shape and layout.
    data_range : float, optional
        Peak-to-peak range of the data; by default both images are scaled to [0, 1]
        (:func:`cnnwidgets.io.to_float`) and the range is 1.

    Returns
    -------
    float
        ``inf`` for identical images.
    """
    x, y, r = _metric_pair(image_true, image_test, data_range)
    mse = float(((x - y) ** 2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(r * r / mse)


def ssim(image_true, image_test, *, data_range=None, win_size=7):
    """Mean structural similarity, as ``skimage.metrics.structural_similarity`` with its defaults.

    Uniform win_size×win_size windows, K1 = 0.01, K2 = 0.03, sample covariance; the border of
    ``(win_size − 1) // 2`` pixels is left out of the mean; colour channels are averaged
    (``channel_axis=-1``).

    Parameters
    ----------
    image_true, image_test : numpy.ndarray, PIL.Image.Image or torch.Tensor
        Same shape and layout, each side at least ``win_size``.
    data_range : float, optional
        As in :func:`psnr`.
    win_size : int
        Odd window side.

    Returns
    -------
    float
        In [−1, 1]; 1 for identical images.
    """
    import torch.nn.functional as F

    win = _odd(win_size, "win_size")
    x, y, r = _metric_pair(image_true, image_test, data_range)
    if min(x.shape[-2:]) < win:
        raise ValueError(f"ssim: images of {tuple(x.shape[-2:])} pixels are smaller than win_size={win}")
    n, c, h, w = x.shape
    x = x.reshape(n * c, 1, h, w)
    y = y.reshape(n * c, 1, h, w)

    def filt(t):
        return F.avg_pool2d(t, win, stride=1)

    npx = win * win
    cov_norm = npx / (npx - 1)
    ux, uy = filt(x), filt(y)
    vx = cov_norm * (filt(x * x) - ux * ux)
    vy = cov_norm * (filt(y * y) - uy * uy)
    vxy = cov_norm * (filt(x * y) - ux * uy)
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean())
