"""Radially symmetric frequency masks: profiles, the cached FFT masks and the display mask."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

import numpy as np

from .. import _xp, checks
from ._layout import FILTER_SHAPES, MASK_CACHE_BYTES

# ============================================================================ masks

_is_number = checks.is_number


def check_params(shape, cutoff, order, width):
    checks.choice("shape", shape, FILTER_SHAPES)
    if not _is_number(cutoff) or not (0 < cutoff <= 0.5):
        raise ValueError(
            "cutoff must be a number with 0 < cutoff <= 0.5 (a fraction of the sampling frequency), "
            f"got {checks.short(cutoff)}"
        )
    checks.number("order", order, lo=0, lo_open=True)
    if width is not None and (not _is_number(width) or not width > 0):
        raise ValueError(f"width must be None (low/high-pass) or a positive band width, got {checks.short(width)}")


def _butterworth(d2, order, highpass: bool):
    """Butterworth gain at the squared normalised distance ``d2`` (scikit-image's construction); float64.

    The high-pass form ``1 / (1 + 1 / d2**order)`` has no cancellation at high orders or in the far tails.
    """
    # high orders over- or underflow the power (and 1 / a subnormal q): the gains are then exactly 0 or 1
    with np.errstate(divide="ignore", over="ignore"):
        q = np.power(d2, order)
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


def radial_frequencies(count: int = 201) -> np.ndarray:
    """``count`` evenly spaced radial frequencies from 0 to 0.5 cycles per pixel (the Nyquist limit): the x axis of
    a :func:`radial_profile` plot.

    Returns
    -------
    numpy.ndarray
        float64, shape (count,).
    """
    if not checks.is_integer(count) or count < 2:
        raise ValueError(f"count must be an integer of at least 2, got {checks.short(count)}")
    return np.linspace(0.0, 0.5, int(count))


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
    check_params(shape, cutoff, order, width)
    f = np.abs(checks.numbers_array("freq", freq, dtype=np.float64))
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
    """A small LRU cache of masks (NumPy arrays or device tensors) bounded by total bytes."""

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
        size = _xp.nbytes(value)
        with self.lock:
            if key not in self.items:
                self.items[key] = value
                self.bytes += size
                while self.bytes > self.budget and len(self.items) > 1:
                    _, old = self.items.popitem(last=False)
                    self.bytes -= _xp.nbytes(old)
        return value

    def clear(self):
        with self.lock:
            self.items.clear()
            self.bytes = 0


MASK_CACHE = _MaskCache(MASK_CACHE_BYTES)


def clear_cache():
    """Forget the cached FFT masks (they are rebuilt on demand)."""
    MASK_CACHE.clear()


def radial_grid(h, w, half: bool):
    fy = np.fft.fftfreq(h)[:, None]
    fx = (np.fft.rfftfreq(w) if half else np.fft.fftfreq(w))[None, :]
    return np.sqrt(fy * fy + fx * fx)


def rfft_mask(h, w, params: tuple, like):
    """The cached float32 mask for the real FFT of an H×W plane (shape H × (W//2+1)), in ``like``'s namespace and
    on its device."""

    def build():
        shape, highpass, cutoff, order, width = params
        if shape == "butterworth" and width is None:
            # exactly scikit-image's construction: squared distances over the cutoff, then the power
            fy = np.fft.fftfreq(h)[:, None] / cutoff
            fx = np.fft.rfftfreq(w)[None, :] / cutoff
            m = _butterworth(fy * fy + fx * fx, order, highpass)
        else:
            m = radial_profile(
                radial_grid(h, w, True), shape=shape, highpass=highpass, cutoff=cutoff, order=order, width=width
            )
        return _xp.like(m.astype(np.float32), like)

    return MASK_CACHE.get(("radial", h, w, params, _xp.device_key(like)), build)


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
    if not (isinstance(shape_hw, (tuple, list)) and len(shape_hw) == 2 and all(checks.is_integer(v) for v in shape_hw)):
        raise ValueError(f"shape_hw must be (H, W), two positive integers, got {checks.short(shape_hw)}")
    h, w = (int(v) for v in shape_hw)
    if h < 1 or w < 1:
        raise ValueError(f"shape_hw must be two positive sizes, got {shape_hw!r}")
    check_params(shape, cutoff, order, width)
    m = radial_profile(
        radial_grid(h, w, False), shape=shape, highpass=highpass, cutoff=cutoff, order=order, width=width
    )
    m = m.astype(np.float32)
    return np.fft.fftshift(m) if centered else m
