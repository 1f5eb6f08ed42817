"""Edges from first and second derivatives of the gray level, and Canny."""

from __future__ import annotations

import numpy as np

from .. import _xp, checks
from ..calls import pixel_lengths
from ..kinds import is_torch, like, to_numpy
from ._base import EDGE_METHODS, GRADIENT_METHODS, as_gray
from ._filters import choose_backend, float_image, gauss_kernel, gradient_kernels, on_backend

#: Largest ``sigma`` of :func:`edges` (its Gaussian has 8 sigma + 1 taps).
MAX_SIGMA = 100.0


def zero_crossings(response, *, threshold: float = 0.0):
    """Pixels where a second-derivative response changes sign.

    A pixel is marked when it is positive and a 4-neighbour is negative with a difference above ``threshold``.

    Parameters
    ----------
    response : numpy.ndarray or torch.Tensor, H×W float
    threshold : float
        Minimum jump across the crossing (in the response's units); 0 keeps every crossing.

    Returns
    -------
    numpy.ndarray or torch.Tensor of bool, H×W
    """
    threshold = checks.number("threshold", threshold)
    r = checks.numbers_array("response", to_numpy(response, "response")).astype(np.float64, copy=False)
    if r.ndim != 2:
        raise ValueError(f"response must be H×W, got shape {r.shape}")
    out = np.zeros(r.shape, bool)
    pos = r > 0
    for a, b in (
        (np.s_[:, :-1], np.s_[:, 1:]),
        (np.s_[:, 1:], np.s_[:, :-1]),
        (np.s_[:-1, :], np.s_[1:, :]),
        (np.s_[1:, :], np.s_[:-1, :]),
    ):
        out[a] |= pos[a] & (r[b] < 0) & (r[a] - r[b] > threshold)
    return like(out, response)


@pixel_lengths(sigma="length")
def edges(
    image,
    method: str = "sobel",
    *,
    sigma: float | None = None,
    output: str = "auto",
    threshold: float = 0.0,
    low: float | None = None,
    high: float | None = None,
):
    """Edge maps from first and second derivatives of the gray level.

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
        Gray or colour (see :func:`as_gray`). Integer images are scaled to [0, 1] first, as scikit-image does.
    method : {"sobel", "prewitt", "scharr", "roberts", "laplace", "log", "canny"}
        Gradient operators give ``skimage.filters.<method>``'s magnitude sqrt((gx² + gy²) / 2);
        ``"laplace"`` is ``skimage.filters.laplace`` (3×3, centre +4); ``"log"`` is
        ``scipy.ndimage.gaussian_laplace``; ``"canny"`` is ``skimage.feature.canny``.
    sigma : float, optional
        Gaussian pre-smoothing for the gradient operators and Laplace (default 0: none), the scale of
        the Laplacian of Gaussian (default 2; at least 0.1), Canny's sigma (default 1); at most 100.
    output : {"auto", "response", "edges"}
        ``"response"``: the magnitude or second-derivative image. ``"edges"``: a boolean edge mask
        (magnitude > ``threshold``; zero crossings whose jump exceeds ``threshold``; Canny edges).
        ``"auto"``: response for gradient operators, edges for the others.
    threshold : float
        See ``output`` (a finite number).
    low, high : float, optional
        Canny's hysteresis thresholds on the gradient magnitude, ``0 <= low <= high`` (scikit-image's defaults
        when None).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        H×W float32 response, or H×W bool edges.

    Notes
    -----
    Gradient and second-derivative operators are convolutions in float32 with mirror borders (scipy's
    ``"reflect"``): torch ``conv2d`` when :func:`cnnwidgets.device.compute_device` picks a GPU, OpenCV's
    ``filter2D`` on the CPU (several times faster there than torch's single-channel convolution).
    Both give the same numbers (tests compare them).
    """
    checks.choice("method", method, EDGE_METHODS)
    checks.choice("output", output, ("auto", "response", "edges"))
    if sigma is not None:
        sigma = checks.number("sigma", sigma, lo=0, hi=MAX_SIGMA)
    threshold = checks.number("threshold", threshold)
    if method == "canny":
        if output == "response":
            raise ValueError("method 'canny' gives edges only; use output='edges' or 'auto'")
        low = None if low is None else checks.number("low", low, lo=0)
        high = None if high is None else checks.number("high", high, lo=0)
        if low is not None and high is not None and low > high:
            raise ValueError(f"low must not exceed high (Canny's hysteresis), got low={low:g}, high={high:g}")
    gray = _scaled_gray(image)
    if method == "canny":
        from skimage.feature import canny

        out = canny(gray, sigma=1.0 if sigma is None else sigma, low_threshold=low, high_threshold=high)
        return like(out, image)
    want_edges = output == "edges" or (output == "auto" and method in ("laplace", "log"))
    if method == "log":
        sigma = 2.0 if sigma is None else sigma
        if sigma < 0.1:
            raise ValueError(f"sigma must be ≥ 0.1 for the Laplacian of Gaussian, got {sigma}")
    with np.errstate(over="ignore", invalid="ignore"):  # checked below
        resp = _edge_response(gray, method, float(sigma or 0.0), backend=choose_backend(image))
    if not np.isfinite(resp).all():
        raise ValueError(f"image: values up to {float(np.abs(gray).max()):.3g} overflow the float32 edge response")
    if not want_edges:
        return like(resp, image)
    return like(edge_mask(resp, method, threshold=threshold), image)


def _scaled_gray(image) -> np.ndarray:
    """The gray image in [0, 1] for integer input (scikit-image's ``img_as_float``), float kept.

    Integer colour is scaled too: :func:`as_gray` turns uint16 or int32 colour into float64 gray in the
    image's own units, which would otherwise be taken as float data (a uint16 RGB image then gave responses
    65535 times those of the same image in gray).
    """
    gray = as_gray(image)
    dtype = np.dtype(str(image.dtype).removeprefix("torch.")) if is_torch(image) else np.asarray(image).dtype
    if gray.dtype.kind == "f" and dtype.kind in "ui":
        info = np.iinfo(dtype)
        gray = gray / info.max if dtype.kind == "u" else np.maximum(gray / info.max, -1.0)
    return float_image(gray)


def edge_mask(response, method: str = "sobel", *, threshold: float = 0.0):
    """Edges from a response of :func:`edges` (``output="response"``), as ``output="edges"`` gives them.

    Parameters
    ----------
    response : numpy.ndarray or torch.Tensor
        H×W float gradient magnitude or second derivative.
    method : str
        The operator that made ``response``: gradient operators are thresholded (``response > threshold``),
        ``"laplace"`` and ``"log"`` give their zero crossings (:func:`zero_crossings`).
    threshold : float
        See ``method``.

    Returns
    -------
    numpy.ndarray or torch.Tensor of bool, H×W
    """
    if not isinstance(method, str) or method not in EDGE_METHODS or method == "canny":
        raise ValueError(
            f"method must be one of {tuple(m for m in EDGE_METHODS if m != 'canny')}, got {checks.short(method)}"
        )
    threshold = checks.number("threshold", threshold)
    resp = checks.numbers_array("response", to_numpy(response, "response"))
    if resp.ndim != 2:
        raise ValueError(f"response must be H×W, got shape {resp.shape}")
    if method in GRADIENT_METHODS:
        # compared in the response's float type, as NumPy compares with a Python float, but clipped to its range
        # first (NumPy's own cast of 1e300 to float32 overflows)
        t = threshold
        if resp.dtype.kind == "f":
            info = np.finfo(resp.dtype)
            t = resp.dtype.type(min(max(threshold, float(info.min)), float(info.max)))
        out = resp > t
    else:
        out = zero_crossings(resp, threshold=threshold)
    return like(out, response)


_LAPLACE = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], dtype=np.float64)


def _edge_response(gray: np.ndarray, method: str, sigma: float, *, backend) -> np.ndarray:
    """Gradient magnitude or second derivative of a float gray image, float32, scipy "reflect" borders.

    ``backend``: ``"opencv"`` (NumPy, the faster path on a CPU), ``"torch"`` (the configured device) or a torch
    device; the computation is the same, in that namespace (:mod:`cnnwidgets.engine._xp`).
    """
    x = on_backend(gray, backend)
    xp = _xp.namespace(x)
    if method == "log":
        g0, g2 = gauss_kernel(sigma), gauss_kernel(sigma, order=2)
        return _xp.to_numpy(_xp.sep_correlate(x, g2, g0) + _xp.sep_correlate(x, g0, g2))
    if sigma > 0:
        k = gauss_kernel(sigma)
        x = _xp.sep_correlate(x, k, k)
    if method == "laplace":
        return _xp.to_numpy(_xp.correlate(x, _LAPLACE))
    gx, gy = (_xp.correlate(x, k) for k in gradient_kernels(method))
    return _xp.to_numpy(xp.sqrt((gx * gx + gy * gy) / 2))
