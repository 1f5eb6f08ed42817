"""Small convolutions with SciPy-style mirror borders: OpenCV on NumPy, torch on a GPU (:mod:`cnnwidgets.engine._xp`)."""

from __future__ import annotations

import numpy as np

from .. import _xp

# ----------------------------------------------------------------------------- backends


def gauss_kernel(sigma: float, truncate: float = 4.0, order: int = 0) -> np.ndarray:
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 * (x / sigma) ** 2)
    phi /= phi.sum()
    if order == 0:
        return phi
    if order == 2:  # as scipy.ndimage: second derivative of the normalised Gaussian
        return phi * (x * x / sigma**4 - 1 / sigma**2)
    raise ValueError(order)


def choose_backend(image=None):
    """Where the convolutions of ``image`` run: ``"opencv"`` (NumPy on the CPU) or a torch device (a GPU).

    :func:`cnnwidgets.device.compute_device` decides; a tensor on the CPU is convolved by OpenCV too (it is
    several times faster there than torch's single-channel convolution).
    """
    dev = _xp.compute_device(image)
    return "opencv" if dev is None or dev.type == "cpu" else dev


def on_backend(x: np.ndarray, backend, dtype: str = "float32"):
    """``x`` as the backend computes it: a contiguous NumPy array for ``"opencv"``, else a torch tensor on the
    backend's device (``"torch"``: :func:`cnnwidgets.device.get_device`)."""
    x = np.ascontiguousarray(x, dtype=getattr(np, dtype))
    if backend == "opencv":
        return x
    if backend == "torch":
        from ...device import get_device

        backend = get_device()
    return _xp.to_device(x, backend)


def separable(x: np.ndarray, ky: np.ndarray, kx: np.ndarray, *, backend="torch") -> np.ndarray:
    """Convolve with ky along rows and kx along columns, scipy "reflect" (symmetric) borders; float64 out."""
    return _xp.to_numpy(_xp.sep_correlate(on_backend(x, backend, "float64"), ky[::-1], kx[::-1], "symmetric"))


# convolution kernels, written as correlation weights (flipped from the convolution kernels)
_SMOOTH = {"sobel": np.array([1, 2, 1]) / 4, "prewitt": np.full(3, 1 / 3), "scharr": np.array([3, 10, 3]) / 16}
_DERIV = np.array([-1.0, 0.0, 1.0])  # correlation form of scikit-image's convolution kernel [1, 0, -1]


def gradient_kernels(method: str) -> np.ndarray:
    if method == "roberts":
        # scikit-image's 2×2 Roberts kernels, flipped for correlation, placed at the lower-right of a 3×3 window
        pos = np.zeros((3, 3))
        neg = np.zeros((3, 3))
        pos[1, 1], pos[2, 2] = -1.0, 1.0
        neg[1, 2], neg[2, 1] = -1.0, 1.0
        return np.stack([pos, neg])
    s = _SMOOTH[method]
    return np.stack([np.outer(_DERIV, s), np.outer(s, _DERIV)])


def float_image(gray: np.ndarray) -> np.ndarray:
    """scikit-image's ``img_as_float``: integers scaled to [0, 1] (signed to [-1, 1]), floats kept."""
    if gray.dtype.kind == "f":
        return gray
    info = np.iinfo(gray.dtype)
    if gray.dtype.kind == "u":
        return gray.astype(np.float64) / info.max
    return np.maximum(gray.astype(np.float64) / info.max, -1.0)
