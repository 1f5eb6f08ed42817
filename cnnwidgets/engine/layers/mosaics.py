"""Pictures of many maps at once: normalisation, tiling feature maps and kernels into one mosaic."""

from __future__ import annotations

import math

import numpy as np

from .. import checks

# ----------------------------------------------------------------------------- mosaics

#: Longest side :func:`enlarge` aims at.
MAX_ENLARGE_SIDE = 16384


def _maps_array(name: str, value) -> np.ndarray:
    """``value`` as float32 NumPy numbers with at least one element and no NaN or infinity."""
    if value is None or isinstance(value, str):
        raise ValueError(f"{name} must be an array of numbers, got {checks.short(value)}")
    a = checks.numbers_array(name, value, allow_empty=False)
    return a.astype(np.float32)


def normalize(x, *, axis=None, eps: float = 1e-8) -> np.ndarray:
    """Rescale to [0, 1] by min and max (over ``axis``; all of ``x`` by default).

    A constant input gives zeros. Returns float32; the input is not changed. ``x`` must hold at least one
    number and no NaN or infinity; ``eps`` (the smallest range divided by) lies in (0, 1].
    """
    eps = checks.number("eps", eps, lo=0, hi=1, lo_open=True)
    a = _maps_array("x", x)
    lo = a.min(axis=axis, keepdims=True)
    hi = a.max(axis=axis, keepdims=True)
    return np.asarray((a - lo) / np.maximum(hi - lo, np.float32(eps)), dtype=np.float32)  # 0-d stays an array


def tile(
    maps,
    *,
    columns: int | None = None,
    pad: int = 1,
    per_map: bool = True,
    max_maps: int | None = None,
    pad_value: float = 1.0,
) -> np.ndarray:
    """Arrange C maps (C×H×W, or C×H×W×3 colour) into one mosaic image.

    Parameters
    ----------
    maps : array-like
        C×H×W activations or kernels (C×H×W×3 for colour tiles), any real dtype.
    columns : int, optional
        Tiles per row (≥ 1; more than C gives C); default ``ceil(sqrt(C))``.
    pad : int
        Pixels of ``pad_value`` (in [0, 1]) between tiles, ≥ 0.
    per_map : bool
        Normalise each map to [0, 1] on its own (shows the pattern of weak maps);
        False normalises all maps together (shows which maps are strong).
    max_maps : int, optional
        Show only the first ``max_maps`` maps (≥ 1).

    Returns
    -------
    numpy.ndarray
        float32 in [0, 1]: rows·(H+pad)−pad × columns·(W+pad)−pad (×3 for colour tiles).
        Tile ``i`` sits at row ``i // columns``, column ``i % columns``.
    """
    if columns is not None:
        checks.integer("columns", columns, lo=1)
    pad = checks.integer("pad", pad, lo=0)
    if max_maps is not None:
        checks.integer("max_maps", max_maps, lo=1)
    pad_value = checks.number("pad_value", pad_value, lo=0, hi=1)  # the mosaic lies in [0, 1]
    if maps is None or isinstance(maps, str):
        raise ValueError(f"tile: maps must be C×H×W or C×H×W×3, got {checks.short(maps)}")
    a = checks.numbers_array("maps", maps).astype(np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.ndim not in (3, 4) or (a.ndim == 4 and a.shape[3] != 3):
        raise ValueError(f"tile: maps must be C×H×W or C×H×W×3, got shape {a.shape}")
    if max_maps is not None:
        a = a[:max_maps]
    c, h, w = a.shape[:3]
    if c == 0:
        raise ValueError("tile: no maps to tile")
    if h == 0 or w == 0:
        raise ValueError(f"tile: maps have no pixels (shape {a.shape})")
    a = normalize(a, axis=tuple(range(1, a.ndim))) if per_map else normalize(a)
    cols = min(int(columns), c) if columns else int(math.ceil(math.sqrt(c)))
    rows = int(math.ceil(c / cols))
    shape = (rows * (h + pad) - pad, cols * (w + pad) - pad) + a.shape[3:]
    out = np.full(shape, pad_value, dtype=np.float32)
    for i in range(c):
        r, q = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = a[i]
    return out


def tile_index(
    mosaic_shape, map_shape, y: int, x: int, *, columns: int | None = None, count: int | None = None, pad: int = 1
) -> int | None:
    """Which tile of a :func:`tile` mosaic the pixel (y, x) falls in, or None (padding or outside).

    ``mosaic_shape`` is the mosaic's shape, ``map_shape`` (H, W) of one map (positive ints), ``y`` and ``x``
    integers; ``columns``, ``count`` (the number of maps tiled) and ``pad`` as given to :func:`tile`.
    """
    for name, shape, lo in (("mosaic_shape", mosaic_shape, 0), ("map_shape", map_shape, 1)):
        if not (isinstance(shape, (tuple, list)) and len(shape) >= 2 and all(checks.is_integer(v) for v in shape)):
            raise ValueError(f"{name} must be a shape of at least two integers, got {checks.short(shape)}")
        if min(shape[:2]) < lo:
            raise ValueError(f"{name} must have sides ≥ {lo}, got {tuple(shape)}")
    checks.integer("y", y)
    checks.integer("x", x)
    if columns is not None:
        checks.integer("columns", columns, lo=1)
    if count is not None:
        checks.integer("count", count, lo=0)
    pad = checks.integer("pad", pad, lo=0)
    if not (0 <= y < mosaic_shape[0] and 0 <= x < mosaic_shape[1]):
        return None
    h, w = map_shape[:2]
    cols = int(columns) if columns else int(math.ceil(math.sqrt(count or 1)))
    if count:
        cols = min(cols, count)  # as tile() does
    r, ry = divmod(int(y), h + pad)
    q, rx = divmod(int(x), w + pad)
    if ry >= h or rx >= w or q >= cols:
        return None
    i = r * cols + q
    return i if count is None or i < count else None


def kernel_mosaic(weights, *, max_maps: int | None = 64, pad: int = 1) -> np.ndarray:
    """A picture of convolution kernels.

    Parameters
    ----------
    weights : array-like
        out × in × kH × kW (from :func:`kernels`).

    Returns
    -------
    numpy.ndarray
        float32 in [0, 1]. Kernels over 3 inputs (an RGB first layer) are colour tiles
        kH×kW×3; other kernels are averaged over their inputs; 1×1 kernels are shown as the
        out × in weight matrix instead (one pixel per weight).
    """
    if max_maps is not None:
        checks.integer("max_maps", max_maps, lo=1)
    checks.integer("pad", pad, lo=0)
    w = _maps_array("weights", weights)
    if w.ndim != 4:
        raise ValueError(f"kernel_mosaic: weights must be out×in×kH×kW, got shape {w.shape}")
    if w.shape[2] == 1 and w.shape[3] == 1:
        return normalize(w[:, :, 0, 0])
    if w.shape[1] == 3:
        rgb = np.transpose(w, (0, 2, 3, 1))
        return tile(rgb, per_map=False, max_maps=max_maps, pad=pad)
    return tile(w.mean(axis=1), per_map=True, max_maps=max_maps, pad=pad)


def as_maps(activation) -> np.ndarray:
    """A layer's output as maps to tile: C×H×W stays, a vector becomes one square map.

    Parameters
    ----------
    activation : numpy.ndarray
        C×H×W feature maps, or any other shape (a linear layer's vector, 1×1 pooled maps).

    Returns
    -------
    numpy.ndarray
        C×H×W as given, or 1×S×S float32 with S = ceil(sqrt(size)), padded with the minimum value.
    """
    act = checks.numbers_array("activation", activation, allow_empty=False) if not isinstance(activation, str) else None
    if act is None:
        raise ValueError(f"activation must be an array of numbers, got {checks.short(activation)}")
    if act.ndim == 3 and act.shape[1] * act.shape[2] > 1:
        return act
    v = act.reshape(-1)
    side = int(np.ceil(np.sqrt(v.size)))
    sq = np.full(side * side, v.min(), dtype=np.float32)
    sq[: v.size] = v
    return sq.reshape(1, side, side)


def enlarge(image, side: int) -> np.ndarray:
    """Nearest-neighbour enlargement by the integer factor that brings the long side closest below ``side``.

    Parameters
    ----------
    image : numpy.ndarray
        H×W or H×W×C, at least one pixel, no NaN or infinity.
    side : int
        Target long side in pixels, 1 … 16384; images already that large are returned as they are.

    Returns
    -------
    numpy.ndarray
        (f·H)×(f·W)(×C) with f = max(1, side // max(H, W)), each pixel repeated f×f times.
    """
    side = checks.integer("side", side, lo=1, hi=MAX_ENLARGE_SIDE)
    img = checks.numbers_array("image", image, ndim=(2, 3), allow_empty=False)
    f = max(1, side // max(img.shape[:2]))
    return np.repeat(np.repeat(img, f, axis=0), f, axis=1) if f > 1 else img
