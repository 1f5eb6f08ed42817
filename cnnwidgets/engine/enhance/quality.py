"""Noise models and quality metrics (PSNR, SSIM)."""

from __future__ import annotations

import math

import numpy as np

from .. import _xp, checks
from ..kinds import to_float
from ._layout import NOISE_KINDS, Layout, float_planes
from .median_filters import odd_window

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
        Seed for reproducible noise, 0 … 2**63 − 1. The noise is drawn by NumPy's ``default_rng(seed)`` whatever
        the input's kind and device, so a seed gives the same noise for NumPy and torch, CPU and GPU.
    frequency : (float, float)
        (fy, fx) of the periodic noise in cycles per pixel (finite numbers).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32 clipped to [0, 1], the input's shape and kind.
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"kind must be one of {NOISE_KINDS}, got {kind!r}")
    if not checks.is_number(amount) or amount < 0:
        raise ValueError(f"amount must be a number >= 0, got {amount!r}")
    if kind == "salt_and_pepper" and amount > 1:
        raise ValueError(f"amount is a fraction of pixels for salt_and_pepper (0 … 1), got {amount!r}")
    if seed is not None:
        checks.integer("seed", seed, lo=0, hi=2**63 - 1)
    if not (
        isinstance(frequency, (tuple, list, np.ndarray))
        and len(frequency) == 2
        and all(map(checks.is_number, frequency))
    ):
        raise ValueError(f"frequency must be (fy, fx), two finite numbers, got {checks.short(frequency)}")
    layout = Layout(image)
    # past this the clipped result no longer changes, and amount × N(0, 1) stays finite in float32 (0 × inf is NaN)
    amount = min(float(amount), 1e30)
    x = float_planes(layout)
    xp = _xp.namespace(x)
    rng = np.random.default_rng(None if seed is None else int(seed))
    n, c, h, w = x.shape
    if kind == "gaussian":
        y = x + _xp.like(amount * rng.standard_normal(x.shape, dtype=np.float32), x)
    elif kind == "speckle":
        y = x + x * _xp.like(amount * rng.standard_normal(x.shape, dtype=np.float32), x)
    elif kind == "periodic":
        fy, fx = (float(v) for v in frequency)
        rows = np.arange(h, dtype=np.float64)[:, None]
        cols = np.arange(w, dtype=np.float64)[None, :]
        wave = np.sin(2 * math.pi * (fy * rows + fx * cols)).astype(np.float32)
        y = x + _xp.like(np.float32(amount) * wave, x)
    else:
        u = _xp.like(rng.random((n, 1, h, w), dtype=np.float32), x)
        y = xp.where(u < amount / 2, 0.0, xp.where(u < amount, 1.0, x))
    return layout.restore(xp.clip(y, 0.0, 1.0))


def _metric_pair(image_true, image_test, data_range):
    if data_range is not None:
        checks.number("data_range", data_range, lo=0, lo_open=True)
    a, b = Layout(image_true, "image_true"), Layout(image_test, "image_test")
    if tuple(a.image.shape) != tuple(b.image.shape):
        raise ValueError(
            f"image_true and image_test must have the same shape, got {tuple(a.image.shape)} and {tuple(b.image.shape)}"
        )

    def prep(layout):
        x = layout.planes()
        xp = _xp.namespace(x)
        if data_range is None:
            return xp.astype(to_float(xp.astype(x, xp.float32) if x.dtype == xp.bool else x), xp.float64)
        return xp.astype(x, xp.float64)

    x, y = prep(a), prep(b)
    if _xp.is_torch(x) != _xp.is_torch(y):  # a tensor and an array: compute both in torch, where the tensor is
        device = (x if _xp.is_torch(x) else y).device
        x, y = _xp.to_device(x, device), _xp.to_device(y, device)
    return x, y, (1.0 if data_range is None else float(data_range))


def psnr(image_true, image_test, *, data_range=None):
    """Peak signal-to-noise ratio in dB, as ``skimage.metrics.peak_signal_noise_ratio``.

    Parameters
    ----------
    image_true, image_test : numpy.ndarray, PIL.Image.Image or torch.Tensor
        Same shape and layout.
    data_range : float, optional
        Peak-to-peak range of the data (> 0); by default both images are scaled to [0, 1]
        (:func:`cnnwidgets.io.to_float`) and the range is 1.

    Returns
    -------
    float
        ``inf`` for identical images.
    """
    x, y, r = _metric_pair(image_true, image_test, data_range)
    mse = float(_xp.namespace(x).mean((x - y) ** 2))
    if mse == 0:
        return math.inf
    # log10(r² / mse) as a difference of logarithms: r² / mse over- or underflows for extreme ranges
    return 10.0 * (2.0 * math.log10(r) - math.log10(mse))


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
        Odd window side, ≥ 3.

    Returns
    -------
    float
        In [−1, 1]; 1 for identical images.
    """
    win = odd_window(win_size, "win_size")
    if win < 3:
        raise ValueError(f"win_size must be at least 3 (the sample covariance needs two pixels), got {win_size!r}")
    x, y, r = _metric_pair(image_true, image_test, data_range)
    if min(x.shape[-2:]) < win:
        raise ValueError(f"ssim: images of {tuple(x.shape[-2:])} pixels are smaller than win_size={win}")
    xp = _xp.namespace(x)
    n, c, h, w = x.shape
    x = xp.reshape(x, (n * c, 1, h, w))
    y = xp.reshape(y, (n * c, 1, h, w))

    def filt(t):
        return _xp.box_mean_valid(t, win)

    npx = win * win
    cov_norm = npx / (npx - 1)
    ux, uy = filt(x), filt(y)
    vx = cov_norm * (filt(x * x) - ux * ux)
    vy = cov_norm * (filt(y * y) - uy * uy)
    vxy = cov_norm * (filt(x * y) - ux * uy)
    c1, c2 = (0.01 * r) * (0.01 * r), (0.03 * r) * (0.03 * r)
    if c1 == 0 or math.isinf(c2):
        raise ValueError(f"data_range={data_range!r} is too small or too large for SSIM's constants (0.01 × range)²")
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(xp.mean(s))
