"""Local (adaptive) thresholds: a threshold surface from windowed statistics."""

from __future__ import annotations

import numpy as np

from .. import _xp, checks
from ..calls import pixel_lengths
from ..kinds import like
from ._base import LOCAL_METHODS, as_gray
from ._filters import choose_backend, gauss_kernel, on_backend, separable

# ----------------------------------------------------------------------------- local thresholds

#: Largest window of :func:`local_threshold` (SciPy's median filter and OpenCV's box filter allocate per window).
MAX_WINDOW = 4095


def _local_mean_std(x: np.ndarray, w: int, *, backend):
    """Mean and standard deviation over w×w windows, mirror-padded without repeating the edge."""
    t = on_backend(x, backend, "float64")
    m = _xp.to_numpy(_xp.box_mean(t, w, "reflect101"))
    m2 = _xp.to_numpy(_xp.box_mean(t * t, w, "reflect101"))
    return m, np.sqrt(np.clip(m2 - m * m, 0, None))


@pixel_lengths(window="odd")
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
        Odd window side in pixels (≥ 3, at most 4095).
    k : float
        Weight of the standard deviation (Niblack, Sauvola).
    offset : float
        Subtracted from the mean/Gaussian/median surface.
    r : float, optional
        Sauvola's dynamic range of the standard deviation (> 0); default half the dtype's range
        (127.5 for uint8, 1 for float), as scikit-image.

    Returns
    -------
    numpy.ndarray or torch.Tensor of float64, H×W
        Pass it to :func:`threshold` for the mask (foreground where the image is above it).

    Raises
    ------
    ValueError
        For parameters out of their bounds, and when ``k``, ``r`` or ``offset`` make the surface overflow float64.

    Notes
    -----
    Box and Gaussian windows run in OpenCV on the CPU and in torch on a GPU device
    (:func:`cnnwidgets.device.compute_device`); median uses SciPy.
    """
    checks.choice("method", method, LOCAL_METHODS)
    if not (checks.is_integer(window) and 3 <= window <= MAX_WINDOW and window % 2 == 1):
        raise ValueError(f"window must be an odd integer ≥ 3 (at most {MAX_WINDOW}), got {checks.short(window)}")
    window = int(window)
    k = checks.number("k", k)
    offset = checks.number("offset", offset)
    if r is not None:
        r = checks.number("r", r, lo=0, lo_open=True)
    gray = as_gray(image)
    x = gray.astype(np.float64)
    backend = choose_backend(image)
    if method in ("niblack", "sauvola"):
        m, s = _local_mean_std(x, window, backend=backend)
        if method == "niblack":
            with np.errstate(over="ignore", invalid="ignore"):  # checked below
                out = m - k * s
        else:
            if r is None:  # half the dtype's range, as skimage's dtype_limits
                r = (
                    0.5 * (float(np.iinfo(gray.dtype).max) - np.iinfo(gray.dtype).min)
                    if gray.dtype.kind in "ui"
                    else 1.0
                )
            with np.errstate(over="ignore", invalid="ignore"):  # checked below
                out = m * (1 + k * (s / r - 1))
    elif method == "median":
        from scipy import ndimage as ndi

        out = ndi.median_filter(x, size=window, mode="reflect") - offset
    elif method == "mean":
        out = _xp.to_numpy(_xp.box_mean(on_backend(x, backend, "float64"), window, "symmetric")) - offset
    else:
        kern = gauss_kernel((window - 1) / 6.0)
        out = separable(x, kern, kern, backend=backend) - offset
    if not np.isfinite(out).all():  # k · std or std / r past float64 (huge k, tiny r, the int64 range)
        raise ValueError(f"k={k!r}, offset={offset!r} and r={r!r} make the threshold surface overflow float64")
    return like(out, image)
