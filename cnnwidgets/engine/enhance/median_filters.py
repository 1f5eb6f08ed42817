"""Median filters: plain (OpenCV on the CPU where it applies, torch otherwise), weighted, adaptive, combinations."""

from __future__ import annotations

import numpy as np

from ...device import get_device
from .. import checks
from ..kinds import to_float
from ._layout import _CHUNK_ELEMENTS, _Layout

# ============================================================================ median filters


def _odd(size, name):
    if not checks.is_integer(size) or size < 1 or size % 2 == 0:
        raise ValueError(f"{name} must be an odd positive integer (window side in pixels), got {checks.short(size)}")
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
    if not isinstance(sizes, (list, tuple, np.ndarray)):
        raise ValueError(f"sizes must be a sequence of odd window sides, got {checks.short(sizes)}")
    sizes = [_odd(s, "sizes[]") for s in sizes]
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
