"""Median filters: plain (OpenCV on the CPU where it applies), weighted, adaptive, combinations.

Written once for every array namespace; the window operations that differ between NumPy and torch (the median,
the unfolded windows, max/min filters) are in :mod:`cnnwidgets.engine._xp`.
"""

from __future__ import annotations

import numpy as np

from .. import _xp, checks
from ..kinds import to_float
from ._layout import CHUNK_ELEMENTS, Layout

# the unfolded-window reduction (the torch path of the medians on a GPU, and of the weighted median everywhere)
_torch_window_reduce = _xp.window_reduce

# ============================================================================ median filters


def odd_window(size, name):
    if not checks.is_integer(size) or size < 1 or size % 2 == 0:
        raise ValueError(f"{name} must be an odd positive integer (window side in pixels), got {checks.short(size)}")
    return int(size)


def median(image, *, size=3):
    """Median filter with a size×size square window and replicate border.

    Equals ``scipy.ndimage.median_filter(image, size=(size, size[, 1]), mode="nearest")`` and, where it
    applies, ``cv2.medianBlur(image, size)``. On the CPU, OpenCV does the work for uint8 (any size) and for
    uint16/float32 (sizes 3 and 5), SciPy's ``median_filter`` other NumPy arrays; tensors on a GPU use torch.

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
    k = odd_window(size, "size")
    layout = Layout(image)
    if k == 1:
        return image.clone() if layout.torch else np.array(layout.image, copy=True)
    if not layout.torch and layout.target is None:
        out = _xp.median_hwc(layout.image, k)  # one OpenCV call on the image as it is, where it applies
        if out is not None:
            return out
    return layout.restore(_xp.median_filter(layout.planes(), k))


def center_weighted_kernel(size=3, center=3):
    """Integer weights of a centre-weighted median: all ones, ``center`` in the middle.

    Returns
    -------
    numpy.ndarray
        size×size int64.
    """
    k = odd_window(size, "size")
    checks.integer("center", center, lo=1)
    w = np.ones((k, k), np.int64)
    w[k // 2, k // 2] = center
    return w


def _check_weights(weights):
    if weights is None or isinstance(weights, str):
        raise ValueError(f"weights must be a 2-D kernel of integers, got {checks.short(weights)}")
    w = checks.numbers_array("weights", weights)
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
    w = _check_weights(weights)
    layout = Layout(image)
    x = layout.planes()
    xp = _xp.namespace(x)
    flat = _xp.like(w.reshape(-1), x)
    rank = (int(w.sum()) - 1) // 2

    def reduce(win):
        idx = xp.argsort(win, axis=-1)
        vals = xp.take_along_axis(win, idx, axis=-1)
        cum = xp.cumulative_sum(flat[idx], axis=-1)
        pos = xp.sum(xp.astype(cum <= rank, xp.int64), axis=-1, keepdims=True)
        return xp.take_along_axis(vals, pos, axis=-1)[..., 0]

    y = _xp.window_reduce(x, w.shape[0], w.shape[1], reduce, chunk_elements=CHUNK_ELEMENTS)
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
    smax = odd_window(max_size, "max_size")
    if smax < 3:
        raise ValueError(f"max_size must be at least 3, got {max_size!r}")
    layout = Layout(image)
    x = layout.planes()
    xp = _xp.namespace(x)
    z = _work(x)
    out = xp.asarray(z, copy=True)
    pending = xp.ones(z.shape, dtype=xp.bool, device=_device(z))
    zmed = z
    for s in range(3, smax + 1, 2):
        zmax, zmin = _xp.window_max(z, s), _xp.window_min(z, s)
        zmed = _work(_xp.median_filter(x, s))
        stage_a = (zmin < zmed) & (zmed < zmax) & pending
        keep = (zmin < z) & (z < zmax)
        out = xp.where(stage_a, xp.where(keep, z, zmed), out)
        pending = pending & ~stage_a
        if not bool(xp.any(pending)):
            break
    out = xp.where(pending, zmed, out)
    return layout.restore(xp.astype(out, x.dtype))


def _work(x):
    """``x`` in a dtype its window max/min compute in exactly: torch's pools need a float, SciPy's filters take
    neither bool nor float16."""
    if _xp.is_torch(x):
        return x.to(_xp._torch_work_dtype(x.dtype))
    if x.dtype == bool:
        return x.view(np.uint8)
    return x.astype(np.float32) if x.dtype == np.float16 else x


def _device(x):
    from array_api_compat import device

    return device(x)


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
    if not isinstance(sizes, (list, tuple, np.ndarray)):
        raise ValueError(f"sizes must be a sequence of odd window sides, got {checks.short(sizes)}")
    sizes = [odd_window(s, "sizes[]") for s in sizes]
    if not sizes:
        raise ValueError("sizes: give at least one window size")
    if coefficients is None:
        coefficients = [1.0 / len(sizes)] * len(sizes)
    if not isinstance(coefficients, (list, tuple, np.ndarray)):
        raise ValueError(f"coefficients must be a sequence of numbers, got {checks.short(coefficients)}")
    coefficients = [checks.number("coefficients[]", c) for c in coefficients]
    if len(coefficients) != len(sizes):
        raise ValueError(f"coefficients: need one per size ({len(sizes)}), got {len(coefficients)}")
    total = None
    for s, c in zip(sizes, coefficients):
        term = to_float(median(image, size=s))
        total = term * c if total is None else total + term * c
    return total
