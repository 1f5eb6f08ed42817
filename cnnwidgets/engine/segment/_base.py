"""Shared by the segmentation modules: method names, the gray conversion and the histogram."""

from __future__ import annotations

import numpy as np

from .. import checks, kinds

GLOBAL_METHODS = ("otsu", "li", "yen", "triangle", "isodata", "mean", "minimum")
"""Methods accepted by :func:`threshold_value`."""
LOCAL_METHODS = ("mean", "gaussian", "median", "niblack", "sauvola")
"""Methods accepted by :func:`local_threshold`."""
EDGE_METHODS = ("sobel", "prewitt", "scharr", "roberts", "laplace", "log", "canny")
"""Methods accepted by :func:`edges`."""
GRADIENT_METHODS = ("sobel", "prewitt", "scharr", "roberts")

_LUMA = (0.299, 0.587, 0.114)


# ----------------------------------------------------------------------------- input handling


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
    torch_in = kinds.is_torch(image)
    arr = kinds.to_numpy(image, name)
    if arr.dtype.kind == "f":
        checks.finite(name, arr)  # before the colour conversion, which would spread NaN with a warning
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
    if arr.dtype.kind not in "uif":
        raise ValueError(f"{name} has unsupported dtype {arr.dtype}")
    return arr


# ----------------------------------------------------------------------------- histogram


#: Integer images with more gray levels than this (a wide int32 range) are binned like float images.
MAX_INTEGER_LEVELS = 65536
#: Largest ``nbins`` of :func:`histogram`.
MAX_BINS = 65536


def histogram(gray, *, nbins: int = 256, max_levels: int = MAX_INTEGER_LEVELS):
    """Counts and bin centres of a gray image, as scikit-image's ``exposure.histogram(source_range="image")``.

    Parameters
    ----------
    gray : numpy.ndarray or torch.Tensor
        H×W (colour is converted with :func:`as_gray`). Integer images get one bin per integer value from their
        min to their max when that is at most ``max_levels`` values; float images, and integer images with a wider
        range, get ``nbins`` equal bins over [min, max].
    nbins : int
        1 … 65536.
    max_levels : int
        See ``gray`` (default 65536: every 8- and 16-bit image gets a bin per value).

    Returns
    -------
    counts : numpy.ndarray of float64
    centers : numpy.ndarray
        The value each bin stands for (integers for integer images with a bin per value).

    Raises
    ------
    ValueError
        For a ``gray`` that :func:`as_gray` refuses (no pixels, NaN or infinity), or ``nbins`` out of range.
    """
    nbins = checks.integer("nbins", nbins, lo=1, hi=MAX_BINS)
    gray = as_gray(gray, name="gray")
    lo, hi = gray.min(), gray.max()
    if gray.dtype.kind in "ui" and int(hi) - int(lo) < max_levels:
        lo, hi = int(lo), int(hi)
        if gray.dtype == np.uint8:
            import cv2

            counts = cv2.calcHist([np.ascontiguousarray(gray)], [0], None, [256], [0, 256]).ravel()[lo : hi + 1]
        else:
            counts = np.bincount((gray.ravel().astype(np.int64) - lo), minlength=hi - lo + 1)
        return counts.astype(np.float64), np.arange(lo, hi + 1)
    lo, hi = float(lo), float(hi)
    edges_ = np.linspace(lo, hi, nbins + 1)
    if lo == hi or not np.all(edges_[1:] > edges_[:-1]):
        # a constant image, or one whose range is too narrow for distinct float64 edges (a float16 colour image
        # made gray in float64 differs only by rounding): ±0.5 around it, or enough at large magnitudes
        mid = lo if lo == hi else (lo + hi) / 2
        pad = max(0.5, abs(mid) * 1e-6)
        lo, hi = mid - pad, mid + pad
        edges_ = np.linspace(lo, hi, nbins + 1)
    if gray.dtype == np.float32:
        import cv2

        # OpenCV's histogram is several times faster than NumPy's; its upper edge is exclusive, so nudge it
        top = float(np.nextafter(np.float32(hi), np.float32(np.inf)))
        counts = cv2.calcHist([np.ascontiguousarray(gray)], [0], None, [nbins], [lo, top]).ravel()
    else:
        # float64 bin edges (NumPy makes float16 ones, which collapse for many bins)
        counts, _ = np.histogram(gray.astype(np.float64, copy=False), bins=nbins, range=(lo, hi))
    return counts.astype(np.float64), (edges_[:-1] + edges_[1:]) / 2
