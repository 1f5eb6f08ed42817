"""Argument checks shared by the engine's public functions.

Every check raises a :class:`ValueError` whose message names the parameter, says what it must be and shows what
it got by type, shape and dtype for arrays and by a short ``repr`` otherwise (never an array's contents), so that
a message stays one line long whatever the input. The engine's rule for NaN and infinity: an array argument (an
image, a kernel, a list of points or numbers) that holds them is refused (:func:`finite`); a scalar parameter is
checked against its bounds like any other value (:func:`number`).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import kinds

__all__ = [
    "short",
    "is_integer",
    "is_number",
    "integer",
    "number",
    "choice",
    "finite",
    "numbers_array",
    "points",
    "rgb_color",
]

_SHORT = 40


def short(value) -> str:
    """``value`` as a message shows it: arrays by kind, shape and dtype, other values by a ``repr`` of at most 40
    characters."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if kinds.is_torch(value):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= _SHORT else text[: _SHORT - 1] + "…"


def is_integer(value) -> bool:
    """True for a Python or NumPy integer (not a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value) -> bool:
    """True for a finite real number (Python or NumPy, not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)


def _bounds(lo, hi, lo_open=False, hi_open=False) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '≥'} {lo}"
    if hi is not None:
        return f" {'<' if hi_open else '≤'} {hi}"
    return ""


def integer(name: str, value, *, lo=None, hi=None, odd: bool = False) -> int:
    """``value`` as an int, or a ValueError: ``{name} must be an [odd] integer [bounds], got …``.

    Parameters
    ----------
    name : str
        The parameter's name as the caller knows it.
    value : object
        A Python or NumPy integer; bools, floats (also whole ones) and strings are refused.
    lo, hi : int, optional
        Inclusive bounds.
    odd : bool
        Require an odd value.
    """
    ok = (
        is_integer(value)
        and (lo is None or value >= lo)
        and (hi is None or value <= hi)
        and (not odd or value % 2 == 1)
    )
    if not ok:
        what = "an odd integer" if odd else "an integer"
        raise ValueError(f"{name} must be {what}{_bounds(lo, hi)}, got {short(value)}")
    return int(value)


def number(name: str, value, *, lo=None, hi=None, lo_open: bool = False, hi_open: bool = False) -> float:
    """``value`` as a float, or a ValueError when it is not a finite real number within the bounds.

    ``lo_open`` / ``hi_open`` make a bound exclusive.
    """
    ok = (
        is_number(value)
        and (lo is None or (value > lo if lo_open else value >= lo))
        and (hi is None or (value < hi if hi_open else value <= hi))
    )
    if not ok:
        raise ValueError(f"{name} must be a finite number{_bounds(lo, hi, lo_open, hi_open)}, got {short(value)}")
    return float(value)


def choice(name: str, value, options):
    """``value`` if it is one of ``options``, else a ValueError listing them."""
    if not isinstance(value, (str, int, float, type(None))) or value not in options:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {short(value)}")
    return value


def finite(name: str, array):
    """``array`` (NumPy or torch) unchanged, or a ValueError when it holds NaN or infinity.

    Uses the minimum and maximum (which NaN and infinity reach) rather than an element-wise mask, so it allocates
    nothing.
    """
    if kinds.is_torch(array):
        if array.is_floating_point() and array.numel():
            lo, hi = array.aminmax() if array.ndim else (array, array)
            if not (bool(lo.isfinite()) and bool(hi.isfinite())):
                raise ValueError(f"{name} contains NaN or infinity ({short(array)})")
        return array
    a = np.asarray(array)
    if a.dtype.kind in "fc" and a.size and not (np.isfinite(a.min()) and np.isfinite(a.max())):
        raise ValueError(f"{name} contains NaN or infinity ({short(a)})")
    return array


def numbers_array(name: str, value, *, ndim=None, dtype=None, allow_empty: bool = True) -> np.ndarray:
    """``value`` (array-like or tensor) as a NumPy array of real numbers without NaN or infinity.

    Parameters
    ----------
    ndim : int or tuple of int, optional
        Accepted numbers of dimensions.
    dtype : numpy dtype, optional
        Convert to it (after the checks).
    allow_empty : bool
        Accept an array without elements.
    """
    if kinds.is_torch(value):
        value = value.detach().cpu().numpy()
    try:
        a = np.asarray(value)
    except (TypeError, ValueError):  # ragged nested sequences
        raise ValueError(f"{name} must be an array of numbers, got {short(value)}") from None
    if a.dtype.kind not in "buif":
        raise ValueError(f"{name} must be an array of numbers, got {short(value)}")
    if ndim is not None and a.ndim not in ((ndim,) if isinstance(ndim, int) else tuple(ndim)):
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {a.shape}")
    if not allow_empty and a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    finite(name, a)
    return a if dtype is None else a.astype(dtype)


def points(name: str, value, shape=None) -> list[tuple[int, int]]:
    """A sequence of (row, col) points as rounded ints, each inside an image of ``shape`` (H, W) when given."""
    if value is None or isinstance(value, str):
        raise ValueError(f"{name} must be a sequence of (row, col) points, got {short(value)}")
    pts = numbers_array(name, value)
    if pts.size == 0:
        return []
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"{name} must be a sequence of (row, col) points, got shape {pts.shape}")
    out = []
    for y, x in pts.astype(np.float64):
        yi, xi = int(round(y)), int(round(x))
        if shape is not None and not (0 <= yi < shape[0] and 0 <= xi < shape[1]):
            raise ValueError(f"{name}: point ({y:g}, {x:g}) lies outside the image of shape {tuple(shape[:2])}")
        out.append((yi, xi))
    return out


def rgb_color(name: str, value) -> tuple[int, int, int]:
    """An (r, g, b) colour of three integers in 0…255."""
    ok = isinstance(value, (tuple, list, np.ndarray)) and len(value) == 3
    ok = ok and all(is_integer(c) or (is_number(c) and float(c).is_integer()) for c in value)
    if not ok or not all(0 <= c <= 255 for c in value):
        raise ValueError(f"{name} must be three integers 0…255 (r, g, b), got {short(value)}")
    return tuple(int(c) for c in value)
