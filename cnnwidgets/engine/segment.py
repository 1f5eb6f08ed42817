"""Image segmentation: global and local thresholds, edges, regions.

Thresholds
    :func:`threshold_value` / :func:`threshold_values` compute a global threshold in the image's own units
    (0–255 for uint8, the data's range for float), following the definitions of
    ``skimage.filters.threshold_<method>``; :func:`threshold` turns a method, a number or a threshold
    surface into a boolean mask; :func:`local_threshold` gives the threshold surface of the local methods.
Edges
    :func:`edges` computes gradient magnitudes (Sobel, Prewitt, Scharr, Roberts) and second derivatives
    (Laplace, Laplacian of Gaussian) as torch convolutions on :func:`cnnwidgets.device.get_device`,
    with zero-crossing extraction (:func:`zero_crossings`), and Canny edges.
Regions
    :func:`region_grow` (seeded, gray or colour), :func:`watershed`, :func:`kmeans_colors`.
Display
    :func:`overlay` and :func:`mask_stats`.

Colour input is converted to gray first: uint8 with OpenCV's ITU-R 601 luma (as ``load_image(mode="gray")``),
float with the same weights. NumPy in gives NumPy out, torch in gives torch out (on the input's device).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import kinds

__all__ = [
    "GLOBAL_METHODS",
    "LOCAL_METHODS",
    "EDGE_METHODS",
    "GRADIENT_METHODS",
    "as_gray",
    "histogram",
    "threshold_value",
    "threshold_values",
    "threshold",
    "threshold_classes",
    "auto_thresholds",
    "threshold_each",
    "local_threshold",
    "edges",
    "edge_mask",
    "zero_crossings",
    "region_grow",
    "watershed",
    "kmeans_colors",
    "kmeans_regions",
    "overlay",
    "mask_stats",
]

GLOBAL_METHODS = ("otsu", "li", "yen", "triangle", "isodata", "mean", "minimum")
"""Methods accepted by :func:`threshold_value`."""
LOCAL_METHODS = ("mean", "gaussian", "median", "niblack", "sauvola")
"""Methods accepted by :func:`local_threshold`."""
EDGE_METHODS = ("sobel", "prewitt", "scharr", "roberts", "laplace", "log", "canny")
"""Methods accepted by :func:`edges`."""
GRADIENT_METHODS = ("sobel", "prewitt", "scharr", "roberts")

_LUMA = (0.299, 0.587, 0.114)


# ----------------------------------------------------------------------------- input handling


_is_torch = kinds.is_torch
_numpy = kinds.to_numpy
_like = kinds.like


def as_gray(image, *, name: str = "image") -> np.ndarray:
    """The gray version of an image, in its own units.

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
        H×W, H×W×1, H×W×3 or H×W×4 (alpha ignored); a tensor may also be C×H×W.

    Returns
    -------
    numpy.ndarray
        H×W. uint8 colour gives uint8 (OpenCV's ITU-R 601 luma), other gray dtypes are returned as they are
        (not copied), other colour images give float64 with the same weights. bool becomes uint8 {0, 1}.

    Raises
    ------
    ValueError
        If the shape is not an image's, or the data hold NaN or infinity.
    """
    torch_in = _is_torch(image)
    arr = _numpy(image, name)
    if torch_in and arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        if arr.dtype == np.uint8:
            import cv2

            arr = cv2.cvtColor(np.ascontiguousarray(arr[..., :3]), cv2.COLOR_RGB2GRAY)
        else:
            arr = arr[..., :3].astype(np.float64) @ np.array(_LUMA)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be H×W or H×W×C with C in 1, 3, 4; got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if arr.dtype.kind not in "uif":
        raise ValueError(f"{name} has unsupported dtype {arr.dtype}")
    return arr


# ----------------------------------------------------------------------------- histogram


def histogram(gray, *, nbins: int = 256):
    """Counts and bin centres of a gray image, as scikit-image's ``exposure.histogram(source_range="image")``.

    Parameters
    ----------
    gray : numpy.ndarray
        H×W. Integer images get one bin per integer value from their min to their max;
        float images get ``nbins`` equal bins over [min, max].

    Returns
    -------
    counts : numpy.ndarray of float64
    centers : numpy.ndarray
        The value each bin stands for (integers for integer images).
    """
    gray = np.asarray(gray)
    lo, hi = gray.min(), gray.max()
    if gray.dtype.kind in "ui":
        lo, hi = int(lo), int(hi)
        if gray.dtype == np.uint8:
            import cv2

            counts = cv2.calcHist([np.ascontiguousarray(gray)], [0], None, [256], [0, 256]).ravel()[lo : hi + 1]
        else:
            counts = np.bincount((gray.ravel().astype(np.int64) - lo), minlength=hi - lo + 1)
        return counts.astype(np.float64), np.arange(lo, hi + 1)
    lo, hi = float(lo), float(hi)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges_ = np.linspace(lo, hi, nbins + 1)
    if gray.dtype == np.float32:
        import cv2

        # OpenCV's histogram is several times faster than NumPy's; its upper edge is exclusive, so nudge it
        top = float(np.nextafter(np.float32(hi), np.float32(np.inf)))
        counts = cv2.calcHist([np.ascontiguousarray(gray)], [0], None, [nbins], [lo, top]).ravel()
    else:
        counts, _ = np.histogram(gray, bins=nbins, range=(lo, hi))
    return counts.astype(np.float64), (edges_[:-1] + edges_[1:]) / 2


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


def _minimum(counts, centers, max_iter: int = 10000):
    from scipy import ndimage as ndi

    def maxima(h):
        idx, direction = [], 1
        rising = h[1:] > h[:-1]
        falling = h[1:] < h[:-1]
        for i in range(h.shape[0] - 1):
            if direction > 0:
                if falling[i]:
                    direction = -1
                    idx.append(i)
            elif rising[i]:
                direction = 1
        return idx

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
        fine, edges_ = np.histogram(gray, bins=4096, range=(float(gray.min()), float(gray.max())))
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
        Histogram bins for float images (integer images use one bin per value).

    Returns
    -------
    float
        Pixels strictly above it are foreground. A constant image gives its value (so the mask is empty).

    Raises
    ------
    ValueError
        Unknown method, NaN/inf in the image, or (``"minimum"``) a histogram without two peaks.
    """
    if method not in GLOBAL_METHODS:
        raise ValueError(f"method must be one of {GLOBAL_METHODS}, got {method!r}")
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
        raise ValueError(f"method must be 'multiotsu', got {method!r}")
    if not 2 <= int(classes) <= 5:
        raise ValueError(f"classes must be between 2 and 5, got {classes}")
    classes = int(classes)
    gray = as_gray(image)
    counts, centers = histogram(gray, nbins=nbins)
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
        t = threshold_value(gray, method_or_value, **options)
    elif isinstance(method_or_value, (int, float, np.number)) and not isinstance(method_or_value, bool):
        t = float(method_or_value)
        if not math.isfinite(t):
            raise ValueError(f"method_or_value must be a finite number, got {method_or_value}")
    else:
        t = _numpy(method_or_value, "method_or_value")
        if t.shape != gray.shape:
            raise ValueError(f"threshold surface has shape {t.shape}, the image {gray.shape}")
    mask = gray <= t if invert else gray > t
    return _like(mask, image)


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
    gray = as_gray(image)
    return _like(np.digitize(gray, np.asarray(thresholds, dtype=np.float64), right=True).astype(np.int32), image)


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
    gray = as_gray(image)
    masks = {m: threshold(gray, float(t), invert=invert) for m, t in thresholds.items() if t is not None}
    return {m: _like(v, image) for m, v in masks.items()}


# ----------------------------------------------------------------------------- local thresholds


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


def _box_mean_cv(x: np.ndarray, w: int, border) -> np.ndarray:
    import cv2

    return cv2.boxFilter(x, cv2.CV_64F, (w, w), normalize=True, borderType=border)


def _local_mean_std(x: np.ndarray, w: int, *, backend: str):
    """Mean and standard deviation over w×w windows, mirror-padded without repeating the edge."""
    if backend == "opencv":
        import cv2

        m = _box_mean_cv(x, w, cv2.BORDER_REFLECT_101)
        m2 = _box_mean_cv(x * x, w, cv2.BORDER_REFLECT_101)
    else:
        import torch.nn.functional as F

        t = _to_torch(x, dtype="float64")
        p = _pad(t, w // 2, "reflect101")
        m = F.avg_pool2d(p, w, stride=1)
        m2 = F.avg_pool2d(p * p, w, stride=1)
        m, m2 = m[0, 0].cpu().numpy(), m2[0, 0].cpu().numpy()
    return m, np.sqrt(np.clip(m2 - m * m, 0, None))


def _backend() -> str:
    from ..device import get_device

    return "opencv" if get_device().type == "cpu" else "torch"


def local_threshold(
    image, method: str = "sauvola", *, window: int = 25, k: float = 0.2, offset: float = 0.0, r: float | None = None
):
    """The threshold surface of a local (adaptive) method.

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
        Gray or colour (see :func:`as_gray`); values are used in their own units.
    method : {"mean", "gaussian", "median", "niblack", "sauvola"}
        ``"mean"``, ``"gaussian"``, ``"median"``: ``skimage.filters.threshold_local(image, window, method, offset)``
        (Gaussian with sigma = (window - 1) / 6). ``"niblack"``: mean - k·std; ``"sauvola"``:
        mean·(1 + k·(std / r - 1)), both over window×window, as ``skimage.filters.threshold_niblack/_sauvola``.
    window : int
        Odd window side in pixels (≥ 3).
    k : float
        Weight of the standard deviation (Niblack, Sauvola).
    offset : float
        Subtracted from the mean/Gaussian/median surface.
    r : float, optional
        Sauvola's dynamic range of the standard deviation; default half the dtype's range
        (127.5 for uint8, 1 for float), as scikit-image.

    Returns
    -------
    numpy.ndarray or torch.Tensor of float64, H×W
        Pass it to :func:`threshold` for the mask (foreground where the image is above it).

    Notes
    -----
    Box and Gaussian windows run in OpenCV on the CPU and in torch on a GPU device; median uses SciPy.
    """
    if method not in LOCAL_METHODS:
        raise ValueError(f"method must be one of {LOCAL_METHODS}, got {method!r}")
    window = int(window)
    if window < 3 or window % 2 == 0:
        raise ValueError(f"window must be an odd integer ≥ 3, got {window}")
    gray = as_gray(image)
    x = gray.astype(np.float64)
    backend = _backend()
    if method in ("niblack", "sauvola"):
        m, s = _local_mean_std(x, window, backend=backend)
        if method == "niblack":
            out = m - k * s
        else:
            if r is None:  # half the dtype's range, as skimage's dtype_limits
                r = (
                    0.5 * (float(np.iinfo(gray.dtype).max) - np.iinfo(gray.dtype).min)
                    if gray.dtype.kind in "ui"
                    else 1.0
                )
            out = m * (1 + k * (s / r - 1))
    elif method == "median":
        from scipy import ndimage as ndi

        out = ndi.median_filter(x, size=window, mode="reflect") - offset
    elif method == "mean":
        if backend == "opencv":
            import cv2

            out = _box_mean_cv(x, window, cv2.BORDER_REFLECT) - offset
        else:
            import torch.nn.functional as F

            out = (
                F.avg_pool2d(_pad(_to_torch(x, dtype="float64"), window // 2, "symmetric"), window, stride=1)[0, 0]
                .cpu()
                .numpy()
                - offset
            )
    else:
        kern = _gauss_kernel((window - 1) / 6.0)
        out = _separable(x, kern, kern, backend=backend) - offset
    return _like(out, image)


# ----------------------------------------------------------------------------- torch convolution helpers


def _to_torch(x: np.ndarray, *, dtype: str = "float32"):
    import torch

    from ..device import get_device

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
    r = _numpy(response, "response").astype(np.float64, copy=False)
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
    return _like(out, response)


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
        the Laplacian of Gaussian (default 2), Canny's sigma (default 1).
    output : {"auto", "response", "edges"}
        ``"response"``: the magnitude or second-derivative image. ``"edges"``: a boolean edge mask
        (magnitude > ``threshold``; zero crossings whose jump exceeds ``threshold``; Canny edges).
        ``"auto"``: response for gradient operators, edges for the others.
    threshold : float
        See ``output``.
    low, high : float, optional
        Canny's hysteresis thresholds on the gradient magnitude (scikit-image's defaults when None).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        H×W float32 response, or H×W bool edges.

    Notes
    -----
    Gradient and second-derivative operators are convolutions in float32 with mirror borders (scipy's
    ``"reflect"``): torch ``conv2d`` on :func:`cnnwidgets.device.get_device` when that is a GPU, OpenCV's
    ``filter2D`` when it is the CPU (several times faster there than torch's single-channel convolution).
    Both give the same numbers (tests compare them).
    """
    if method not in EDGE_METHODS:
        raise ValueError(f"method must be one of {EDGE_METHODS}, got {method!r}")
    if output not in ("auto", "response", "edges"):
        raise ValueError(f"output must be 'auto', 'response' or 'edges', got {output!r}")
    gray = _float_image(as_gray(image))
    if method == "canny":
        from skimage.feature import canny

        if output == "response":
            raise ValueError("method 'canny' gives edges only; use output='edges' or 'auto'")
        out = canny(gray, sigma=1.0 if sigma is None else float(sigma), low_threshold=low, high_threshold=high)
        return _like(out, image)
    want_edges = output == "edges" or (output == "auto" and method in ("laplace", "log"))
    if method == "log":
        sigma = 2.0 if sigma is None else float(sigma)
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0 for the Laplacian of Gaussian, got {sigma}")
    resp = _edge_response(gray, method, float(sigma or 0.0), backend=_backend())
    if not want_edges:
        return _like(resp, image)
    return _like(edge_mask(resp, method, threshold=threshold), image)


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
    if method not in EDGE_METHODS or method == "canny":
        raise ValueError(f"method must be one of {tuple(m for m in EDGE_METHODS if m != 'canny')}, got {method!r}")
    resp = _numpy(response, "response")
    out = resp > threshold if method in GRADIENT_METHODS else zero_crossings(resp, threshold=threshold)
    return _like(out, response)


_LAPLACE = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], dtype=np.float64)


def _edge_response(gray: np.ndarray, method: str, sigma: float, *, backend: str) -> np.ndarray:
    """Gradient magnitude or second derivative of a float gray image, float32, scipy "reflect" borders.

    ``backend="torch"`` convolves on the configured device; ``"opencv"`` is the faster path on a CPU.
    """
    if backend == "opencv":
        import cv2

        x = np.ascontiguousarray(gray, dtype=np.float32)
        border = cv2.BORDER_REFLECT
        if method == "log":
            g0, g2 = (_gauss_kernel(sigma).astype(np.float32), _gauss_kernel(sigma, order=2).astype(np.float32))
            return cv2.sepFilter2D(x, cv2.CV_32F, g0, g2, borderType=border) + cv2.sepFilter2D(
                x, cv2.CV_32F, g2, g0, borderType=border
            )
        if sigma > 0:
            k = _gauss_kernel(sigma).astype(np.float32)
            x = cv2.sepFilter2D(x, cv2.CV_32F, k, k, borderType=border)
        if method == "laplace":
            return cv2.filter2D(x, cv2.CV_32F, _LAPLACE.astype(np.float32), borderType=border)
        gx, gy = (
            cv2.filter2D(x, cv2.CV_32F, k.astype(np.float32), borderType=border) for k in _gradient_kernels(method)
        )
        return cv2.magnitude(gx, gy) * np.float32(1 / math.sqrt(2))
    import torch.nn.functional as F

    t = _to_torch(gray)
    if method == "log":
        g0, g2 = _gauss_kernel(sigma), _gauss_kernel(sigma, order=2)
        p = _pad(t, len(g0) // 2, "symmetric")
        k0 = _kernel_t(g0, t).view(1, 1, 1, -1)
        k2 = _kernel_t(g2, t).view(1, 1, 1, -1)
        d2y = F.conv2d(F.conv2d(p, k2.transpose(2, 3)), k0)
        d2x = F.conv2d(F.conv2d(p, k0.transpose(2, 3)), k2)
        return (d2y + d2x)[0, 0].cpu().numpy()
    t = _smooth_t(t, sigma)
    if method == "laplace":
        return _conv(t, _LAPLACE[None])[0, 0].cpu().numpy()
    g = _conv(t, _gradient_kernels(method))[0]
    return ((g * g).sum(0) / 2).sqrt().cpu().numpy()


def _kernel_t(k: np.ndarray, like):
    import torch

    return torch.as_tensor(np.ascontiguousarray(k), dtype=like.dtype, device=like.device)


# ----------------------------------------------------------------------------- regions


def _seed_list(seeds, shape) -> list[tuple[int, int]]:
    pts = np.asarray(seeds, dtype=float).reshape(-1, 2) if len(seeds) else np.zeros((0, 2))
    out = []
    for y, x in pts:
        yi, xi = int(round(y)), int(round(x))
        if not (0 <= yi < shape[0] and 0 <= xi < shape[1]):
            raise ValueError(f"seed ({y}, {x}) lies outside the image of shape {shape[:2]}")
        out.append((yi, xi))
    return out


def region_grow(image, seeds, *, tolerance: float = 10.0, connectivity: int = 2):
    """Seeded region growing: the connected pixels whose value is within ``tolerance`` of each seed's value.

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
        H×W gray or H×W×C colour, in its own units.
    seeds : sequence of (row, col)
        One region per seed.
    tolerance : float
        Largest absolute difference (gray) or Euclidean distance (colour) from the seed's value.
    connectivity : {1, 2}
        4- or 8-neighbourhood.

    Returns
    -------
    numpy.ndarray or torch.Tensor of int32, H×W
        0 for unassigned pixels, i + 1 for the region of seed i; an earlier seed keeps pixels it reached first.
        For a gray image, region i equals ``skimage.segmentation.flood(image, seed, tolerance=tolerance,
        connectivity=connectivity)``.
    """
    import cv2

    arr = _numpy(image)
    if _is_torch(image) and arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3):
        raise ValueError(f"image must be H×W or H×W×C, got shape {arr.shape}")
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 or 2, got {connectivity}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be ≥ 0, got {tolerance}")
    pts = _seed_list(seeds, arr.shape)
    labels = np.zeros(arr.shape[:2], np.int32)
    x = arr.astype(np.float64)
    for i, (y0, x0) in enumerate(pts):
        if arr.ndim == 2:
            near = np.abs(x - x[y0, x0]) <= tolerance
        else:
            near = np.sqrt(((x - x[y0, x0]) ** 2).sum(-1)) <= tolerance
        _, comp = cv2.connectedComponents(near.view(np.uint8), connectivity=4 if connectivity == 1 else 8)
        region = (comp == comp[y0, x0]) & (labels == 0)
        labels[region] = i + 1
    return _like(labels, image)


def watershed(image, markers=None, *, sigma: float = 1.0, compactness: float = 0.0, marker_quantile: float = 0.1):
    """Watershed regions of the gradient magnitude (Sobel of the Gaussian-smoothed gray image).

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
        Gray or colour (see :func:`as_gray`).
    markers : int array H×W, sequence of (row, col), or None
        A label image (0 = unlabelled), or seed points (seed i gets label i + 1). None: the connected
        regions where the gradient is below its ``marker_quantile`` quantile.
    sigma : float
        Gaussian pre-smoothing before the gradient.
    compactness : float
        As ``skimage.segmentation.watershed``; larger gives more regular regions.

    Returns
    -------
    numpy.ndarray or torch.Tensor of int32, H×W
        Region labels (1..n). Equals ``skimage.segmentation.watershed(edges(image, "sobel", sigma=sigma), markers)``.
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import watershed as sk_watershed

    gray = as_gray(image)
    grad = edges(gray, "sobel", sigma=sigma, output="response")
    if markers is None:
        if not 0 < marker_quantile < 1:
            raise ValueError(f"marker_quantile must be in (0, 1), got {marker_quantile}")
        m, _ = ndi.label(grad <= np.quantile(grad, marker_quantile))
    else:
        m = markers if not _is_torch(markers) else markers.detach().cpu().numpy()
        m = np.asarray(m)
        if m.shape == gray.shape and m.dtype.kind in "iub":
            m = m.astype(np.int32)
        else:
            pts = _seed_list(m, gray.shape)
            if not pts:
                raise ValueError("markers: give at least one seed point")
            m = np.zeros(gray.shape, np.int32)
            for i, (y, x) in enumerate(pts):
                if m[y, x] == 0:
                    m[y, x] = i + 1
    labels = sk_watershed(grad, m, compactness=compactness).astype(np.int32)
    return _like(labels, image)


def kmeans_regions(image, clusters: int = 3, seed: int = 0):
    """Regions of similar colour: :func:`kmeans_colors` labels counted from 1, as region labels are.

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
        Gray or colour.
    clusters, seed : int
        ``k`` and ``seed`` of :func:`kmeans_colors`.

    Returns
    -------
    numpy.ndarray or torch.Tensor of int32, H×W
        Labels 1..clusters, ordered by increasing centre brightness.
    """
    labels, _ = kmeans_colors(image, clusters, seed)
    return labels + 1


def kmeans_colors(image, k: int = 3, seed: int = 0, *, max_iter: int = 50, sample: int = 200_000):
    """Cluster pixel colours with k-means (k-means++ start), in torch on :func:`cnnwidgets.device.get_device`.

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
        H×W gray or H×W×C colour, any dtype; clustered in float32 of the stored values.
    k : int
        Number of clusters, ≥ 1.
    seed : int
        Seed of the initialisation and of the pixel sample; same seed, same result.
    max_iter : int
    sample : int
        At most this many randomly chosen pixels fit the centres; every pixel is then assigned.

    Returns
    -------
    labels : numpy.ndarray or torch.Tensor of int32, H×W
        Cluster index 0..k-1, clusters ordered by increasing centre brightness (mean over channels).
    centers : numpy.ndarray of float32, k×C (C = 1 for gray)
    """
    import torch

    from ..device import get_device

    arr = _numpy(image)
    if _is_torch(image) and arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim not in (2, 3):
        raise ValueError(f"image must be H×W or H×W×C, got shape {arr.shape}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    h, w = arr.shape[:2]
    pixels = arr.reshape(h * w, -1).astype(np.float32)
    if len(np.unique(pixels[:: max(1, len(pixels) // 50_000)], axis=0)) < k and len(np.unique(pixels, axis=0)) < k:
        raise ValueError(f"the image has fewer than k={k} distinct colours")
    rng = np.random.default_rng(seed)
    fit = pixels if len(pixels) <= sample else pixels[rng.choice(len(pixels), sample, replace=False)]
    dev = get_device()
    X = torch.from_numpy(fit).to(dev)
    # k-means++
    centers = [X[int(rng.integers(len(fit)))]]
    d2 = ((X - centers[0]) ** 2).sum(1)
    for _ in range(1, k):
        p = d2.double().cpu().numpy()
        total = p.sum()
        idx = int(rng.choice(len(fit), p=p / total)) if total > 0 else int(rng.integers(len(fit)))
        centers.append(X[idx])
        d2 = torch.minimum(d2, ((X - X[idx]) ** 2).sum(1))
    C = torch.stack(centers)
    for _ in range(int(max_iter)):
        assign = torch.cdist(X, C).argmin(1)
        sums = torch.zeros_like(C).index_add_(0, assign, X)
        counts = torch.bincount(assign, minlength=k).to(X.dtype)[:, None]
        new = torch.where(counts > 0, sums / counts.clamp(min=1), C)
        if torch.allclose(new, C, atol=1e-4, rtol=0):
            C = new
            break
        C = new
    order = torch.argsort(C.mean(1))
    C = C[order]
    allX = torch.from_numpy(pixels).to(dev)
    labels = torch.cat([torch.cdist(chunk, C).argmin(1) for chunk in allX.split(1 << 20)])
    labels = labels.cpu().numpy().astype(np.int32).reshape(h, w)
    return _like(labels, image), C.cpu().numpy()


# ----------------------------------------------------------------------------- display

_PALETTE = np.array(
    [
        [230, 25, 75],
        [60, 180, 75],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
        [250, 190, 212],
        [0, 128, 128],
        [220, 190, 255],
        [170, 110, 40],
    ],
    dtype=np.uint8,
)


def overlay(image, mask_or_labels, *, alpha: float = 0.45, color=(255, 40, 40)) -> np.ndarray:
    """The image with a mask or a label image painted over it, for display.

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
        H×W gray or H×W×3/4 colour; uint8, or float in [0, 1].
    mask_or_labels : H×W bool mask or integer labels (0 = background, left unpainted)
    alpha : float
        Opacity of the paint, 0..1.
    color : (r, g, b)
        Paint for a boolean mask; labels use a fixed 12-colour palette, cycled.

    Returns
    -------
    numpy.ndarray of uint8, H×W×3
    """
    from ..io import to_uint8

    arr = _numpy(image)
    if _is_torch(image) and arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    base = to_uint8(arr)
    if base.ndim == 2:
        base = np.repeat(base[..., None], 3, axis=2)
    base = base[..., :3]
    lab = _numpy(mask_or_labels, "mask_or_labels")
    if lab.shape != base.shape[:2]:
        raise ValueError(f"mask_or_labels has shape {lab.shape}, the image {base.shape[:2]}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    import cv2

    base = np.ascontiguousarray(base)
    if lab.dtype == bool:
        sel = lab
        paint = np.empty_like(base)
        paint[:] = np.asarray(color, np.uint8)
    else:
        if lab.dtype.kind not in "ui":
            raise ValueError(f"mask_or_labels must be bool or integer, got {lab.dtype}")
        sel = lab > 0
        top = max(int(lab.max()), 0)
        lut = _PALETTE[(np.arange(top + 1) - 1) % len(_PALETTE)]
        paint = lut.take(np.clip(lab, 0, None), axis=0)
    blended = cv2.addWeighted(base, 1.0 - alpha, paint, alpha, 0.0)  # rounds to nearest, saturates
    return cv2.copyTo(blended, sel.view(np.uint8), base.copy())


def mask_stats(mask, *, connectivity: int = 2) -> dict:
    """Area fraction and number of connected components of a mask.

    Parameters
    ----------
    mask : H×W bool (numpy or torch); nonzero counts as foreground
    connectivity : {1, 2}
        4- or 8-neighbourhood for components.

    Returns
    -------
    dict
        ``{"area_fraction": float in [0, 1], "components": int, "pixels": int}``.
    """
    import cv2

    m = _numpy(mask, "mask")
    if m.ndim != 2:
        raise ValueError(f"mask must be H×W, got shape {m.shape}")
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 or 2, got {connectivity}")
    fg = (m != 0).astype(np.uint8)
    n, _ = cv2.connectedComponents(fg, connectivity=4 if connectivity == 1 else 8)
    pixels = int(fg.sum())
    return {"area_fraction": pixels / fg.size, "components": int(n - 1), "pixels": pixels}
