"""The convolution, activation and pooling arithmetic of one small matrix, worked out step by step (the playground)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from cnnwidgets.engine import checks, kinds

# ----------------------------------------------------------------------------- playground: convolution


def _as_2d(x, name: str) -> np.ndarray:
    a = kinds.to_numpy(x, name) if kinds.is_torch(x) else np.asarray(x)
    if a.ndim != 2 or a.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a 2-D array of numbers, got shape {a.shape} dtype {a.dtype}")
    return checks.finite(name, a).astype(np.float64)


def _windows(a: np.ndarray, shape: tuple[int, int], stride: int, too_large: str) -> tuple[np.ndarray, list]:
    """Every ``shape`` window of the 2-D ``a`` at ``stride``, row by row, and the output they fill.

    Returns
    -------
    output : numpy.ndarray
        float64, shape ((H − kH) // stride + 1, (W − kW) // stride + 1), not yet filled.
    windows : list of (row, col, top, left, window)
        The output position, the window's top-left corner in ``a``, and a kH×kW copy of its values.

    Raises
    ------
    ValueError
        With the message ``too_large`` when not one window fits.
    """
    kh, kw = shape
    oh = (a.shape[0] - kh) // stride + 1
    ow = (a.shape[1] - kw) // stride + 1
    if oh < 1 or ow < 1:
        raise ValueError(too_large)
    corners = [(i, j, i * stride, j * stride) for i in range(oh) for j in range(ow)]
    windows = [(i, j, top, left, a[top : top + kh, left : left + kw].copy()) for i, j, top, left in corners]
    return np.empty((oh, ow)), windows


class ConvStep(NamedTuple):
    """One sliding-window position of :func:`conv2d_steps`."""

    row: int  #: output row
    col: int  #: output column
    top: int  #: row of the window's top-left corner in the padded input
    left: int  #: column of the window's top-left corner in the padded input
    window: np.ndarray  #: kH×kW input values under the kernel
    products: np.ndarray  #: kH×kW element-wise products window · kernel
    value: float  #: sum of the products plus the bias


class ConvSteps(NamedTuple):
    """Result of :func:`conv2d_steps`."""

    output: np.ndarray  #: oH×oW float64
    steps: list  #: list of ConvStep, row by row
    padded: np.ndarray  #: the zero-padded input
    kernel: np.ndarray  #: the kernel as applied (flipped when ``flip=True``)


def conv2d_steps(
    image, kernel, *, stride: int = 1, padding: int = 0, bias: float = 0.0, flip: bool = False
) -> ConvSteps:
    """A small 2-D convolution computed one window at a time, keeping every step.

    ``output[i, j] = sum(padded[i·s : i·s+kH, j·s : j·s+kW] * kernel) + bias`` — the
    cross-correlation CNNs call convolution (``torch.nn.functional.conv2d``). With
    ``flip=True`` the kernel is rotated by 180° first (the convolution of signal processing).
    The textbook example: a 4×4 image and a 3×3 kernel give a 2×2 output in 4 steps.

    Parameters
    ----------
    image : array-like
        H×W numbers (numpy or torch).
    kernel : array-like
        kH×kW numbers.
    stride, padding : int
        Window step and zero padding on every side.
    bias : float
        Added to every output value.
    flip : bool
        Rotate the kernel by 180° (true convolution).

    Returns
    -------
    ConvSteps
        ``output`` has shape ((H + 2p − kH) // s + 1, (W + 2p − kW) // s + 1), float64.
    """
    img = _as_2d(image, "image")
    k = _as_2d(kernel, "kernel")
    stride = checks.integer("stride", stride, lo=1)
    padding = checks.integer("padding", padding, lo=0)
    bias = checks.number("bias", bias)
    if flip:
        k = k[::-1, ::-1].copy()
    padded = np.pad(img, padding)
    too_large = f"kernel {k.shape} is larger than the padded image {padded.shape}"
    out, windows = _windows(padded, k.shape, stride, too_large)
    steps = []
    for i, j, top, left, window in windows:
        prod = window * k
        value = float(prod.sum() + bias)
        out[i, j] = value
        steps.append(ConvStep(i, j, top, left, window, prod, value))
    return ConvSteps(out, steps, padded, k)


# ----------------------------------------------------------------------------- playground: activations


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # stable for large |x|


ACTIVATIONS = {
    "relu": (lambda x, a: np.maximum(x, 0.0), lambda x, a: (x > 0).astype(np.float64)),
    "prelu": (lambda x, a: np.where(x > 0, x, a * x), lambda x, a: np.where(x > 0, 1.0, a)),
    "elu": (
        lambda x, a: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))),
        lambda x, a: np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0))),
    ),
    "sigmoid": (lambda x, a: _sigmoid(x), lambda x, a: _sigmoid(x) * (1 - _sigmoid(x))),
    "tanh": (lambda x, a: np.tanh(x), lambda x, a: 1 - np.tanh(x) ** 2),
}
"""name → (f(x, alpha), f'(x, alpha)). ``alpha`` is PReLU's negative slope and ELU's saturation;
ReLU's derivative at 0 is taken as 0 (as torch does)."""

_DEFAULT_ALPHA = {"prelu": 0.25, "elu": 1.0}


def _act_args(x, kind, alpha):
    if not isinstance(kind, str) or kind not in ACTIVATIONS:
        raise ValueError(f"kind: unknown activation {checks.short(kind)}; choose from {sorted(ACTIVATIONS)}")
    a = _DEFAULT_ALPHA.get(kind, 0.0) if alpha is None else checks.number("alpha", alpha)
    is_t = isinstance(x, torch.Tensor)
    arr = checks.numbers_array("x", x)
    return arr.astype(np.float64), a, is_t, x


def _apply(fn, arr, a, is_t, x, alpha):
    """``fn(arr, a)`` as the kind of ``x``; a ValueError naming ``alpha`` when the values overflow the result's dtype
    (a large ``alpha`` on large inputs, or a float16 tensor)."""
    with np.errstate(over="ignore", invalid="ignore"):
        y = np.asarray(fn(arr, a))
        dtype = x.dtype if is_t and x.is_floating_point() else torch.float64
        out = kinds.like(y, x, torch_dtype=dtype) if is_t else y
    if not (bool(torch.isfinite(out).all()) if is_t else np.isfinite(out).all()):
        raise ValueError(f"alpha={alpha!r} with x of {checks.short(x)}: the result overflows its dtype")
    return out


def activate(x, kind: str, *, alpha: float | None = None):
    """Apply an activation function element-wise.

    Parameters
    ----------
    x : array-like or torch.Tensor
        Any shape.
    kind : {"relu", "prelu", "elu", "sigmoid", "tanh"}
    alpha : float, optional
        PReLU's slope for x < 0 (default 0.25) or ELU's α (default 1.0).

    Returns
    -------
    numpy.ndarray (float64) or torch.Tensor (the input's float dtype), same shape as ``x``.
    """
    arr, a, is_t, orig = _act_args(x, kind, alpha)
    return _apply(ACTIVATIONS[kind][0], arr, a, is_t, orig, alpha)


def activation_grad(x, kind: str, *, alpha: float | None = None):
    """Derivative of :func:`activate` with respect to x, element-wise (same parameters and return)."""
    arr, a, is_t, orig = _act_args(x, kind, alpha)
    return _apply(ACTIVATIONS[kind][1], arr, a, is_t, orig, alpha)


# ----------------------------------------------------------------------------- playground: pooling


class PoolStep(NamedTuple):
    """One window of :func:`pool2d_steps`."""

    row: int
    col: int
    top: int
    left: int
    window: np.ndarray  #: size×size input values
    value: float  #: the pooled value
    chosen: tuple | None  #: (dy, dx) of the value picked in the window (max, stochastic); None for mean
    probabilities: np.ndarray | None  #: stochastic pooling's p = a / sum(a) over the window; None otherwise


class PoolSteps(NamedTuple):
    """Result of :func:`pool2d_steps`."""

    output: np.ndarray  #: oH×oW float64
    steps: list  #: list of PoolStep, row by row


def pool2d_steps(x, *, size: int = 2, stride: int | None = None, mode: str = "max", seed: int | None = 0) -> PoolSteps:
    """2-D pooling computed one window at a time, keeping every step.

    Parameters
    ----------
    x : array-like
        H×W numbers. Stochastic pooling needs non-negative values (activations after a ReLU).
    size : int
        Window side (≥ 1).
    stride : int, optional
        Window step (≥ 1); default ``size`` (non-overlapping windows).
    mode : {"max", "mean", "stochastic"}
        ``"stochastic"`` (Zeiler & Fergus, 2013): within each window, pick one value at random
        with probability proportional to it (p = a / Σa); an all-zero window gives 0.
    seed : int or None
        Seed of the random generator for stochastic pooling (≥ 0; same seed → same picks).

    Returns
    -------
    PoolSteps
        ``output`` has shape ((H − size) // stride + 1, (W − size) // stride + 1), float64.
    """
    a = _as_2d(x, "x")
    size = checks.integer("size", size, lo=1)
    stride = size if stride is None else checks.integer("stride", stride, lo=1)
    if seed is not None:
        checks.integer("seed", seed, lo=0)
    if not isinstance(mode, str) or mode not in ("max", "mean", "stochastic"):
        raise ValueError(f"mode must be 'max', 'mean' or 'stochastic', got {checks.short(mode)}")
    if mode == "stochastic" and (a < 0).any():
        raise ValueError("x: stochastic pooling needs non-negative values (apply a ReLU first)")
    out, windows = _windows(a, (size, size), stride, f"pool size {size} is larger than the input {a.shape}")
    rng = np.random.default_rng(seed)
    steps = []
    for i, j, top, left, win in windows:
        chosen, probs = None, None
        if mode == "max":
            chosen = np.unravel_index(int(win.argmax()), win.shape)
            value = float(win[chosen])
        elif mode == "mean":
            value = float(win.mean())
        else:
            total = win.sum()
            probs = win / total if total > 0 else np.zeros_like(win)
            if total > 0:
                chosen = np.unravel_index(int(rng.choice(win.size, p=probs.ravel())), win.shape)
                value = float(win[chosen])
            else:
                value = 0.0
        if chosen is not None:
            chosen = (int(chosen[0]), int(chosen[1]))
        out[i, j] = value
        steps.append(PoolStep(i, j, top, left, win, value, chosen, probs))
    return PoolSteps(out, steps)
