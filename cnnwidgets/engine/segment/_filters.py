"""Separable and small convolutions on the CPU (OpenCV) or the configured torch device, with SciPy-style borders."""

from __future__ import annotations

import functools

import numpy as np

# ----------------------------------------------------------------------------- torch convolution helpers


def _gauss_kernel(sigma: float, truncate: float = 4.0, order: int = 0) -> np.ndarray:
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 * (x / sigma) ** 2)
    phi /= phi.sum()
    if order == 0:
        return phi
    if order == 2:  # as scipy.ndimage: second derivative of the normalised Gaussian
        return phi * (x * x / sigma**4 - 1 / sigma**2)
    raise ValueError(order)


def _backend() -> str:
    from ...device import get_device

    return "opencv" if get_device().type == "cpu" else "torch"


def _to_torch(x: np.ndarray, *, dtype: str = "float32"):
    import torch

    from ...device import get_device

    return torch.from_numpy(np.ascontiguousarray(x, dtype=getattr(np, dtype)))[None, None].to(get_device())


@functools.lru_cache(maxsize=64)
def _pad_index(n: int, r: int, mode: str, device) -> object:
    import torch

    i = np.arange(-r, n + r)
    if mode == "symmetric":  # d c b a | a b c d | d c b a  (scipy "reflect")
        period = 2 * n
        i = np.mod(i, period)
        i = np.where(i >= n, period - 1 - i, i)
    elif mode == "reflect101":  # d c b | a b c d | c b a  (numpy "reflect", OpenCV default)
        if n == 1:
            i = np.zeros_like(i)
        else:
            period = 2 * n - 2
            i = np.mod(i, period)
            i = np.where(i >= n, period - i, i)
    else:
        raise ValueError(mode)
    return torch.as_tensor(i, device=device)


def _pad(t, r: int, mode: str):
    """Pad a 1×C×H×W tensor by ``r`` on each side of H and W."""
    if r == 0:
        return t
    _, _, h, w = t.shape
    t = t.index_select(2, _pad_index(h, r, mode, t.device))
    return t.index_select(3, _pad_index(w, r, mode, t.device))


def _conv(t, kernels: np.ndarray, *, mode: str = "symmetric"):
    """Correlate a 1×1×H×W tensor with K kernels (K×kh×kw, odd sides) → 1×K×H×W, mirror padding."""
    import torch
    import torch.nn.functional as F

    kh, kw = kernels.shape[1:]
    r = kh // 2
    weight = torch.as_tensor(kernels, dtype=t.dtype, device=t.device)[:, None]
    return F.conv2d(_pad(t, r, mode), weight)


def _separable(x: np.ndarray, ky: np.ndarray, kx: np.ndarray, *, backend: str = "torch") -> np.ndarray:
    """Correlate with ky along rows and kx along columns, scipy "reflect" (symmetric) borders; float64 out."""
    if backend == "opencv":
        import cv2

        return cv2.sepFilter2D(
            x.astype(np.float64), cv2.CV_64F, kx[::-1].copy(), ky[::-1].copy(), borderType=cv2.BORDER_REFLECT
        )
    import torch
    import torch.nn.functional as F

    t = _to_torch(x, dtype="float64")
    r = len(ky) // 2
    t = _pad(t, r, "symmetric")
    t = F.conv2d(t, torch.as_tensor(ky[::-1].copy(), dtype=t.dtype, device=t.device).view(1, 1, -1, 1))
    t = F.conv2d(t, torch.as_tensor(kx[::-1].copy(), dtype=t.dtype, device=t.device).view(1, 1, 1, -1))
    return t[0, 0].cpu().numpy()


def _smooth_t(t, sigma: float):
    """Gaussian smoothing of a 1×1×H×W tensor as ``scipy.ndimage.gaussian_filter(mode="reflect", truncate=4)``."""
    import torch
    import torch.nn.functional as F

    if not sigma or sigma <= 0:
        return t
    k = torch.as_tensor(_gauss_kernel(sigma), dtype=t.dtype, device=t.device)
    r = len(k) // 2
    t = _pad(t, r, "symmetric")
    t = F.conv2d(t, k.view(1, 1, -1, 1))
    return F.conv2d(t, k.view(1, 1, 1, -1))


# convolution kernels, written as correlation weights (flipped from the convolution kernels)
_SMOOTH = {"sobel": np.array([1, 2, 1]) / 4, "prewitt": np.full(3, 1 / 3), "scharr": np.array([3, 10, 3]) / 16}
_DERIV = np.array([-1.0, 0.0, 1.0])  # correlation form of scikit-image's convolution kernel [1, 0, -1]


def _gradient_kernels(method: str) -> np.ndarray:
    if method == "roberts":
        # scikit-image's 2×2 Roberts kernels, flipped for correlation, placed at the lower-right of a 3×3 window
        pos = np.zeros((3, 3))
        neg = np.zeros((3, 3))
        pos[1, 1], pos[2, 2] = -1.0, 1.0
        neg[1, 2], neg[2, 1] = -1.0, 1.0
        return np.stack([pos, neg])
    s = _SMOOTH[method]
    return np.stack([np.outer(_DERIV, s), np.outer(s, _DERIV)])


def _float_image(gray: np.ndarray) -> np.ndarray:
    """scikit-image's ``img_as_float``: integers scaled to [0, 1] (signed to [-1, 1]), floats kept."""
    if gray.dtype.kind == "f":
        return gray
    info = np.iinfo(gray.dtype)
    if gray.dtype.kind == "u":
        return gray.astype(np.float64) / info.max
    return np.maximum(gray.astype(np.float64) / info.max, -1.0)
