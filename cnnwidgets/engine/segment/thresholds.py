"""Global thresholds: one or several values from the histogram, and the masks or classes they give."""

from __future__ import annotations

import numpy as np

from .. import checks
from ..kinds import like, to_numpy
from ._base import GLOBAL_METHODS, as_gray, histogram

#: Most histogram bins of the multi-level Otsu search (its cost grows with their square).
MAX_MULTIOTSU_BINS = 1024

# ----------------------------------------------------------------------------- global thresholds


def _otsu(counts, centers):
    w1 = np.cumsum(counts)
    w2 = np.cumsum(counts[::-1])[::-1]
    m1 = np.cumsum(counts * centers) / np.maximum(w1, 1e-300)
    m2 = (np.cumsum((counts * centers)[::-1]) / np.maximum(w2[::-1], 1e-300))[::-1]
    var = w1[:-1] * w2[1:] * (m1[:-1] - m2[1:]) ** 2
    return centers[int(np.argmax(var))]


def _yen(counts, centers):
    pmf = counts / counts.sum()
    p1 = np.cumsum(pmf)
    p1_sq = np.cumsum(pmf**2)
    p2_sq = np.cumsum(pmf[::-1] ** 2)[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        crit = np.log(((p1[:-1] * (1.0 - p1[:-1])) ** 2) / (p1_sq[:-1] * p2_sq[1:]))
    crit = np.where(np.isfinite(crit), crit, -np.inf)
    return centers[int(np.argmax(crit))]


def _isodata(counts, centers):
    csuml = np.cumsum(counts)
    csumh = csuml[-1] - csuml
    csum_i = np.cumsum(counts * centers)
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = csum_i[:-1] / csuml[:-1]
        higher = (csum_i[-1] - csum_i[:-1]) / csumh[:-1]
    mean = (lower + higher) / 2.0
    width = centers[1] - centers[0]
    dist = mean - centers[:-1]
    found = centers[:-1][(dist >= 0) & (dist < width)]
    if found.size == 0:
        raise ValueError("isodata found no threshold for this image")
    return found[0]


def _triangle(counts, centers):
    counts = counts.copy()
    nbins = len(counts)
    peak = int(np.argmax(counts))
    height = counts[peak]
    low, high = np.flatnonzero(counts)[[0, -1]]
    flip = peak - low < high - peak
    if flip:
        counts = counts[::-1]
        low = nbins - high - 1
        peak = nbins - peak - 1
    width = peak - low
    x1 = np.arange(width)
    y1 = counts[x1 + low]
    norm = np.sqrt(height**2 + width**2)
    length = (height / norm) * x1 - (width / norm) * y1
    level = int(np.argmax(length)) + low if width > 0 else low
    if flip:
        level = nbins - level - 1
    return centers[level]


def _maxima(h) -> list:
    """scikit-image's ``find_local_maxima_idx`` (plateaus count once), vectorised: the first fall after a rise
    (or after the start), flat steps ignored."""
    rising = h[1:] > h[:-1]
    steps = np.flatnonzero(rising | (h[1:] < h[:-1]))  # the non-flat steps, in order
    up = rising[steps]
    first_fall = ~up & np.concatenate([[True], up[:-1]])
    return steps[first_fall].tolist()


def _minimum(counts, centers, max_iter: int = 10000):
    from scipy import ndimage as ndi

    maxima = _maxima

    smooth = counts.astype(np.float32)
    for _ in range(max_iter):
        smooth = ndi.uniform_filter1d(smooth, 3)
        peaks = maxima(smooth)
        if len(peaks) < 3:
            break
    if len(peaks) != 2:
        raise ValueError("method 'minimum': the smoothed histogram does not have two peaks; choose another method")
    i = int(np.argmin(smooth[peaks[0] : peaks[1] + 1]))
    return centers[peaks[0] + i]


def _li(gray, counts, centers):
    # Li's iterative minimum cross entropy, on the histogram (exact for integer images).
    if gray.dtype.kind in "ui":
        tol = 0.5
    else:
        fine, edges_ = np.histogram(
            gray.astype(np.float64, copy=False), bins=4096, range=(float(gray.min()), float(gray.max()))
        )
        counts, centers = fine.astype(np.float64), (edges_[:-1] + edges_[1:]) / 2
        tol = (edges_[1] - edges_[0]) / 2
    lo = float(gray.min())
    c = centers - lo
    keep = counts > 0
    counts, c = counts[keep], c[keep]
    t_next = float((counts * c).sum() / counts.sum()) if gray.dtype.kind == "f" else float(np.mean(gray) - lo)
    t_curr = -2 * tol
    for _ in range(1000):
        if abs(t_next - t_curr) <= tol:
            break
        t_curr = t_next
        fg = c > t_curr
        if not fg.any() or fg.all():
            break
        mean_fore = np.average(c[fg], weights=counts[fg])
        mean_back = np.average(c[~fg], weights=counts[~fg])
        if mean_back == 0:
            break
        t_next = (mean_back - mean_fore) / (np.log(mean_back) - np.log(mean_fore))
    return t_next + lo


def threshold_value(image, method: str = "otsu", *, nbins: int = 256) -> float:
    """One global threshold, in the image's own units.

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
        Gray (H×W) or colour (converted with :func:`as_gray`); uint8, other integers or float.
    method : {"otsu", "li", "yen", "triangle", "isodata", "mean", "minimum"}
        The definitions of ``skimage.filters.threshold_<method>``.
    nbins : int
        Histogram bins for float images, 2 … 65536 (integer images use one bin per value, see :func:`histogram`).

    Returns
    -------
    float
        Pixels strictly above it are foreground. A constant image gives its value (so the mask is empty).

    Raises
    ------
    ValueError
        Unknown method, NaN/inf in the image, ``nbins`` not in 2 … 65536, or (``"minimum"``) a histogram
        without two peaks.
    """
    checks.choice("method", method, GLOBAL_METHODS)
    checks.integer("nbins", nbins, lo=2, hi=65536)
    gray = as_gray(image)
    lo, hi = gray.min(), gray.max()
    if lo == hi:
        return float(lo)
    if method == "mean":
        return float(gray.mean(dtype=np.float64))
    counts, centers = histogram(gray, nbins=nbins)
    if method == "li":
        return float(_li(gray, counts, centers))
    fn = {"otsu": _otsu, "yen": _yen, "isodata": _isodata, "triangle": _triangle, "minimum": _minimum}[method]
    return float(fn(counts, centers))


def threshold_values(image, method: str = "multiotsu", *, classes: int = 3, nbins: int = 256) -> np.ndarray:
    """Several thresholds that split the gray levels into ``classes`` classes (multi-level Otsu).

    Maximises the between-class variance over all threshold combinations, as
    ``skimage.filters.threshold_multiotsu``; ties go to the lowest thresholds.

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
    method : {"multiotsu"}
    classes : int
        2 to 5.
    nbins : int
        Histogram bins for float images, 2 … 1024. Integer images use one bin per value when they have at most
        1024 gray levels, ``nbins`` equal bins otherwise (the search's cost grows with the square of the bins).

    Returns
    -------
    numpy.ndarray of float64, shape (classes - 1,)
        Increasing thresholds; ``np.digitize(gray, t, right=True)`` gives class labels 0..classes-1.

    Raises
    ------
    ValueError
        Unknown method, ``classes`` out of range, or fewer distinct gray levels than classes.
    """
    if method != "multiotsu":
        raise ValueError(f"method must be 'multiotsu', got {checks.short(method)}")
    if not (checks.is_integer(classes) and 2 <= classes <= 5):
        raise ValueError(f"classes must be between 2 and 5, got {checks.short(classes)}")
    classes = int(classes)
    checks.integer("nbins", nbins, lo=2, hi=MAX_MULTIOTSU_BINS)
    gray = as_gray(image)
    counts, centers = histogram(gray, nbins=nbins, max_levels=MAX_MULTIOTSU_BINS)
    prob = counts / counts.sum()
    nonzero = np.flatnonzero(prob)
    if nonzero.size < classes:
        raise ValueError(
            f"the image has only {nonzero.size} distinct gray levels; it cannot be split into {classes} classes"
        )
    if nonzero.size == classes:
        return centers[nonzero[:-1]].astype(np.float64)
    n = prob.size
    P = np.concatenate([[0.0], np.cumsum(prob)])
    S = np.concatenate([[0.0], np.cumsum(prob * np.arange(n))])
    # score[i, j]: w * mu^2 of the class holding bins i..j (inclusive), in bin-index units.
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    w = P[j + 1] - P[i]
    s = S[j + 1] - S[i]
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where((j >= i) & (w > 0), s * s / w, 0.0)
    score = np.where(j >= i, score, -np.inf)
    # best[k][t]: best total over bins 0..t split into k+1 classes; arg[k][t]: last threshold (end of class k).
    best = score[0].copy()
    args = []
    for _ in range(classes - 2):
        cand = best[:-1, None] + score[1:, :]  # cand[t, j]: best split of bins 0..t, plus one class t+1..j
        a = np.argmax(cand, axis=0)  # first maximum: the lowest threshold wins ties
        best = cand[a, np.arange(n)]
        args.append(a)
    last = best[:-1] + score[1:, n - 1]
    t = [int(np.argmax(last))]
    for a in reversed(args):
        t.append(int(a[t[-1]]))
    idx = np.array(sorted(t))
    return centers[idx].astype(np.float64)


def threshold(image, method_or_value="otsu", *, invert: bool = False, **options):
    """A boolean foreground mask.

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
        Gray or colour (see :func:`as_gray`).
    method_or_value : str, number or array
        A method of :func:`threshold_value`, a fixed threshold in the image's units,
        or an H×W threshold surface (from :func:`local_threshold`).
    invert : bool
        Foreground is at or below the threshold instead of strictly above it.
    **options
        Passed to :func:`threshold_value` (``nbins``).

    Returns
    -------
    numpy.ndarray or torch.Tensor of bool, H×W
    """
    gray = as_gray(image)
    if isinstance(method_or_value, str):
        if method_or_value not in GLOBAL_METHODS:
            raise ValueError(f"method_or_value: method must be one of {GLOBAL_METHODS}, got {method_or_value!r}")
        try:
            t = threshold_value(gray, method_or_value, **options)
        except ValueError as exc:  # the image is checked: this is about the method (or nbins)
            raise ValueError(f"method_or_value={method_or_value!r}: {exc}") from None
    elif checks.is_integer(method_or_value) or isinstance(method_or_value, (float, np.floating)):
        t = checks.number("method_or_value", method_or_value)
    elif method_or_value is None or isinstance(method_or_value, (bool, np.bool_)):
        raise ValueError(
            f"method_or_value must be a method name, a number or a threshold surface, got {method_or_value!r}"
        )
    else:
        t = checks.numbers_array("method_or_value", to_numpy(method_or_value, "method_or_value"))
        if t.shape != gray.shape:
            raise ValueError(f"threshold surface has shape {t.shape}, the image {gray.shape}")
    mask = gray <= t if invert else gray > t
    return like(mask, image)


def threshold_classes(image, thresholds):
    """Class labels from several thresholds (multi-Otsu): 0 up to the first threshold, 1 up to the second, ….

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
        Gray or colour (see :func:`as_gray`).
    thresholds : sequence of float
        Increasing thresholds in the image's units, e.g. from :func:`threshold_values`.

    Returns
    -------
    numpy.ndarray or torch.Tensor of int32, H×W
        ``numpy.digitize(gray, thresholds, right=True)``: a pixel equal to a threshold joins the lower class.
    """
    if thresholds is None or isinstance(thresholds, str):
        raise ValueError(f"thresholds must be a sequence of increasing numbers, got {checks.short(thresholds)}")
    t = checks.numbers_array("thresholds", thresholds, ndim=1, dtype=np.float64)
    if np.any(np.diff(t) < 0):
        raise ValueError(f"thresholds must be increasing, got {checks.short(thresholds)}")
    gray = as_gray(image)
    return like(np.digitize(gray, t, right=True).astype(np.int32), image)


def auto_thresholds(image, methods=GLOBAL_METHODS, *, nbins: int = 256) -> dict:
    """Every automatic global threshold of one image, for comparing them.

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
        Gray or colour (see :func:`as_gray`).
    methods : sequence of str
        Names from :data:`GLOBAL_METHODS`.

    Returns
    -------
    dict
        ``{method: threshold}``, with ``None`` for a method that fails on this image (``"minimum"`` on a
        histogram without two peaks).
    """
    if isinstance(methods, str) or not isinstance(methods, (list, tuple)):
        raise ValueError(f"methods must be a sequence of method names, got {checks.short(methods)}")
    checks.integer("nbins", nbins, lo=2, hi=65536)
    gray = as_gray(image)
    out = {}
    for m in methods:
        try:
            out[m] = threshold_value(gray, m, nbins=nbins)
        except ValueError:
            out[m] = None
    return out


def threshold_each(image, thresholds: dict, *, invert: bool = False) -> dict:
    """One mask per named threshold.

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
        Gray or colour (see :func:`as_gray`).
    thresholds : dict
        ``{name: threshold}`` as :func:`auto_thresholds` gives; names whose threshold is ``None`` are left out.
    invert : bool
        As in :func:`threshold`.

    Returns
    -------
    dict
        ``{name: H×W bool mask}``.
    """
    if not isinstance(thresholds, dict):
        raise ValueError(f"thresholds must be a dict {{name: threshold}}, got {checks.short(thresholds)}")
    values = {m: checks.number(f"thresholds[{m!r}]", t) for m, t in thresholds.items() if t is not None}
    gray = as_gray(image)
    masks = {m: threshold(gray, t, invert=invert) for m, t in values.items()}
    return {m: like(v, image) for m, v in masks.items()}
