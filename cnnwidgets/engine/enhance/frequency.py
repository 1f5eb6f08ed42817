"""Frequency-domain filters: low/high/band filters through the real FFT, notch and homomorphic filtering, the spectrum.

Written once for every array namespace (:mod:`cnnwidgets.engine._xp`): ``scipy.fft`` on NumPy, ``torch.fft`` on
tensors.
"""

from __future__ import annotations

import numpy as np

from .. import _xp, checks
from ._layout import Layout, float_planes, map_planes
from .masks import MASK_CACHE, check_params, radial_grid, rfft_mask

# ============================================================================ frequency filters


def frequency_filter(image, *, shape="butterworth", highpass=False, cutoff=0.1, order=2.0, width=None):
    """Filter an image in the frequency domain with a radially symmetric mask.

    The image is transformed with the real 2-D FFT (``scipy.fft`` for NumPy input, ``torch.fft`` for tensors;
    no padding, periodic boundary), multiplied by the mask and transformed back.

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
    check_params(shape, cutoff, order, width)
    params = (shape, bool(highpass), float(cutoff), float(order), None if width is None else float(width))
    if isinstance(image, Fourier):
        h, w = image.hw
        spec = image.spectrum
        return image.layout.restore(_irfft2(spec * rfft_mask(h, w, params, spec), (h, w)))

    def run(x):
        h, w = x.shape[-2:]
        return _irfft2(_rfft2(x) * rfft_mask(h, w, params, x), (h, w))

    return map_planes(image, run)


_AXES = (-2, -1)


def _rfft2(x):
    return _xp.fft(_xp.namespace(x)).rfftn(x, axes=_AXES)


def _irfft2(spec, hw):
    return _xp.fft(_xp.namespace(spec)).irfftn(spec, s=hw, axes=_AXES)


class Fourier:
    """An image with its Fourier transform computed once, to filter it many times (a widget's slider).

    ``frequency_filter(fourier(image), ...)`` equals ``frequency_filter(image, ...)`` and skips the forward FFT.
    Meant for display-size images: it keeps the whole half-spectrum (8 bytes per pixel and channel) on the device.

    Attributes
    ----------
    spectrum : numpy.ndarray or torch.Tensor
        complex64 N×C×H×(W//2+1), the real FFT of the float32 planes, where the image is computed
        (:func:`cnnwidgets.device.compute_device`).
    hw : tuple of int
        (H, W).
    """

    def __init__(self, image):
        self.layout = Layout(image)
        self.hw = self.layout.hw
        self.spectrum = _rfft2(float_planes(self.layout))
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

    def run(x):
        xp = _xp.namespace(x)
        f = _xp.fft(xp)
        return xp.log1p(f.fftshift(xp.abs(f.fftn(x, axes=_AXES)), axes=_AXES))

    out = map_planes(image, run)
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
        Empty: nothing is removed (the image comes back as float32).
    radius : float
        Notch radius in cycles per pixel (gain 0.5 at this distance from a centre).
    order : float
        Butterworth order of each notch.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32, the input's shape and kind.
    """
    if centers is None or isinstance(centers, str):
        raise ValueError(f"centers must be a sequence of (fy, fx) frequencies, got {checks.short(centers)}")
    pts = checks.numbers_array("centers", centers, dtype=np.float64)
    if pts.size and (pts.ndim != 2 or pts.shape[1] != 2):
        raise ValueError(f"centers must be a sequence of (fy, fx) frequencies, got shape {pts.shape}")
    pts = pts.reshape(-1, 2)
    if np.any(np.abs(pts) > 0.5):
        raise ValueError(
            f"centers: frequencies must lie in [-0.5, 0.5] cycles per pixel, got up to {np.abs(pts).max():g}"
        )
    checks.number("radius", radius, lo=0, lo_open=True)
    checks.number("order", order, lo=0, lo_open=True)
    key = ("notch", tuple(map(tuple, pts.tolist())), float(radius), float(order))

    def run(x):
        h, w = x.shape[-2:]

        def build():
            fy = np.fft.fftfreq(h)[:, None]
            fx = np.fft.rfftfreq(w)[None, :]
            m = np.ones((h, w // 2 + 1))
            with np.errstate(divide="ignore", over="ignore"):  # at a centre d2 = 0: gain 1 / (1 + inf) = 0
                for cy, cx in pts:
                    for sy, sx in ((cy, cx), (-cy, -cx)):
                        d2 = (fy - sy) ** 2 + (fx - sx) ** 2
                        m *= 1.0 / (1.0 + np.power(radius * radius / d2, order))
            return _xp.like(m.astype(np.float32), x)

        mask = MASK_CACHE.get((key, h, w, _xp.device_key(x)), build)
        return _irfft2(_rfft2(x) * mask, (h, w))

    return map_planes(image, run)


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
        Gains for low (illumination) and high (reflectance) frequencies, 0 … 100; ``gamma_low < 1 < gamma_high``
        evens out lighting and raises contrast.
    sharpness : float
        Steepness of the transition (> 0).
    rescale : bool
        Stretch each plane to [0, 1] (min–max) at the end; otherwise return ``exp(·) − 1`` as computed.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32, the input's shape and kind.

    Raises
    ------
    ValueError
        For parameters out of their bounds, and with ``rescale=False`` when ``exp(·) − 1`` exceeds float32
        (large gains on large values); the rescaled result is computed without overflow.
    """
    if not (checks.is_number(cutoff) and 0 < cutoff <= 0.5):
        raise ValueError(f"cutoff must satisfy 0 < cutoff <= 0.5, got {checks.short(cutoff)}")
    checks.number("gamma_low", gamma_low, lo=0, hi=100)
    checks.number("gamma_high", gamma_high, lo=0, hi=100)
    checks.number("sharpness", sharpness, lo=0, lo_open=True)
    key = ("homomorphic", float(cutoff), float(gamma_low), float(gamma_high), float(sharpness))

    def run(x):
        h, w = x.shape[-2:]

        def build():
            f2 = radial_grid(h, w, True) ** 2
            m = (gamma_high - gamma_low) * (1.0 - np.exp(-sharpness * f2 / cutoff**2)) + gamma_low
            return _xp.like(m.astype(np.float32), x)

        xp = _xp.namespace(x)
        mask = MASK_CACHE.get((key, h, w, _xp.device_key(x)), build)
        z = _irfft2(_rfft2(xp.log1p(xp.clip(x, min=0))) * mask, (h, w))
        with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf is handled below (NumPy warns)
            y = xp.expm1(z)
        if rescale:
            lo = xp.min(y, axis=_AXES, keepdims=True)
            hi = xp.max(y, axis=_AXES, keepdims=True)
            if bool(xp.all(xp.isfinite(hi))):
                return (y - lo) / xp.clip(hi - lo, min=1e-12)
            # exp overflows float32: (e^z − e^lo) / (e^hi − e^lo) with every exponent shifted by the maximum
            zlo = xp.min(z, axis=_AXES, keepdims=True)
            zhi = xp.max(z, axis=_AXES, keepdims=True)
            return (xp.exp(z - zhi) - xp.exp(zlo - zhi)) / xp.clip(-xp.expm1(zlo - zhi), min=1e-12)
        if not bool(xp.all(xp.isfinite(y))):
            raise ValueError(
                f"gamma_high={gamma_high!r}: exp of the filtered log-image exceeds float32; "
                "use smaller gains, smaller values or rescale=True"
            )
        return y

    return map_planes(image, run)
