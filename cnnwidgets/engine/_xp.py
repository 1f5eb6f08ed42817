"""Array namespaces: the one module where the classical engine's NumPy and torch paths part.

The classical engine (enhance, segment, the classical descriptors) is written once against the Python array
API standard: ``xp = namespace(x)`` is NumPy (through ``array-api-compat``) for a NumPy array and torch for a
tensor, and ``fft(xp)`` its FFT module (``scipy.fft`` for NumPy: pocketfft in float32, several times faster
than ``numpy.fft`` on float32 planes). Where an input is computed is :func:`cnnwidgets.device.compute_device`'s
decision; :func:`to_device` moves an array there, :func:`to_numpy` and :func:`like` move results and constants.

The few operations the standard has no word for are here, each with its NumPy form (SciPy, OpenCV) and its torch
form, and nothing else in the classical engine tells the two apart:

* medians over square windows (:func:`median_filter`), the window unfolding of the weighted median
  (:func:`window_reduce`), max/min and valid-mean filters (:func:`window_max`, :func:`window_min`,
  :func:`box_mean_valid`) on N×C×H×W arrays with a replicate border;
* small correlations and box means of H×W float arrays with mirror borders (:func:`correlate`,
  :func:`sep_correlate`, :func:`box_mean`), OpenCV's ``filter2D``/``sepFilter2D``/``boxFilter`` on NumPy
  (:func:`pad`, the mirror padding the torch forms use, is itself namespace-neutral).

Nothing here imports torch for NumPy work: a tensor is recognised by its type's module, and torch is imported
only when a tensor is at hand or ``CNNWIDGETS_DEVICE`` names a device other than the CPU.
"""

from __future__ import annotations

import functools

import numpy as np
from array_api_compat import array_namespace, is_numpy_namespace

from ..device import compute_device
from .kinds import is_torch

__all__ = [
    "namespace",
    "fft",
    "compute_device",
    "to_device",
    "to_numpy",
    "like",
    "device_key",
    "nbytes",
    "median_hwc",
    "median_filter",
    "window_reduce",
    "window_max",
    "window_min",
    "box_mean_valid",
    "pad",
    "correlate",
    "sep_correlate",
    "box_mean",
]

#: Elements per chunk of unfolded windows (:func:`window_reduce`).
CHUNK_ELEMENTS = 32 * 2**20


def _torch():
    import torch

    return torch


# ============================================================================ namespaces and devices


def namespace(*arrays):
    """The array API namespace of ``arrays``: array-api-compat's NumPy or torch."""
    return array_namespace(*arrays)


def fft(xp):
    """The FFT module of namespace ``xp``: ``scipy.fft`` for NumPy, ``xp.fft`` otherwise (same signatures)."""
    if is_numpy_namespace(xp):
        import scipy.fft

        return scipy.fft
    return xp.fft


def to_device(x, device):
    """``x`` (NumPy or torch) where the engine computes: NumPy for ``device=None``, else a tensor on ``device``."""
    if device is None:
        return to_numpy(x)
    torch = _torch()
    if not is_torch(x):
        x = torch.from_numpy(np.ascontiguousarray(x))
    return x.to(device)


def to_numpy(x) -> np.ndarray:
    """A NumPy array of ``x`` (a tensor is detached and copied to the CPU)."""
    return x.detach().cpu().numpy() if is_torch(x) else np.asarray(x)


def like(a: np.ndarray, ref):
    """A NumPy constant ``a`` (a mask, a kernel) in ``ref``'s namespace and on its device."""
    if is_torch(ref):
        return _torch().from_numpy(np.ascontiguousarray(a)).to(ref.device)
    return a


def device_key(x) -> str:
    """A cache key for where ``x`` lives: ``"numpy"`` or the tensor's device."""
    return str(x.device) if is_torch(x) else "numpy"


def nbytes(x) -> int:
    """Bytes held by ``x`` (NumPy or torch)."""
    return x.element_size() * x.nelement() if is_torch(x) else x.nbytes


# ============================================================================ window filters, N×C×H×W, replicate border


def _torch_work_dtype(dtype):
    """The dtype torch's pad/pool/unfold compute a window filter of ``dtype`` in (exact for the values)."""
    torch = _torch()
    if dtype in (torch.float32, torch.float64):
        return dtype
    if dtype in (torch.uint8, torch.int8, torch.int16, torch.bool, torch.float16, torch.bfloat16) or dtype == getattr(
        torch, "uint16", None
    ):
        return torch.float32
    return torch.float64


def _cv2_median_ok(x: np.ndarray, k: int) -> bool:
    """Whether ``cv2.medianBlur`` filters this H×W[×C] array exactly (replicate border)."""
    channels = 1 if x.ndim == 2 else x.shape[2]
    if x.dtype == np.uint8:
        return channels in (1, 3, 4) or (k <= 5 and channels <= 4)
    return x.dtype in (np.uint16, np.float32) and k <= 5 and channels <= 4


def _cv2_median_dtype(dtype, k: int) -> bool:
    return dtype == np.uint8 or (dtype in (np.uint16, np.float32) and k <= 5)


def median_hwc(img: np.ndarray, k: int):
    """``cv2.medianBlur`` of an H×W or H×W×C NumPy image in one call (no layout copies), or None where it does
    not apply exactly."""
    if img.ndim in (2, 3) and img.dtype in (np.uint8, np.uint16, np.float32) and _cv2_median_ok(img, k):
        import cv2

        return cv2.medianBlur(np.ascontiguousarray(img), k).reshape(img.shape)
    return None


def _median_planes_cv2(x: np.ndarray, k: int) -> np.ndarray:
    """medianBlur over an N×C×H×W NumPy array, one image (all channels) at a time."""
    import cv2

    out = np.empty_like(x)
    c = x.shape[1]
    for i in range(x.shape[0]):
        hwc = np.ascontiguousarray(x[i].transpose(1, 2, 0))
        if _cv2_median_ok(hwc, k):
            res = cv2.medianBlur(hwc, k)
            out[i] = res[None] if res.ndim == 2 else res.transpose(2, 0, 1)
        else:
            for j in range(c):
                out[i, j] = cv2.medianBlur(np.ascontiguousarray(x[i, j]), k)
    return out


def _median_numpy(x: np.ndarray, k: int) -> np.ndarray:
    if _cv2_median_dtype(x.dtype, k):
        return _median_planes_cv2(x, k)
    from scipy import ndimage

    if x.dtype == bool:
        return ndimage.median_filter(x.view(np.uint8), size=(1, 1, k, k), mode="nearest").view(bool)
    if x.dtype == np.float16:
        return ndimage.median_filter(x.astype(np.float32), size=(1, 1, k, k), mode="nearest").astype(np.float16)
    return ndimage.median_filter(x, size=(1, 1, k, k), mode="nearest")


def median_filter(x, k: int):
    """k×k median of every plane of an N×C×H×W array (NumPy or torch), replicate border; same dtype and kind.

    NumPy: OpenCV's ``medianBlur`` where it is exact (uint8; uint16 and float32 up to 5×5), SciPy's
    ``median_filter`` otherwise. torch: the same OpenCV call for those dtypes on the CPU, unfolded windows
    (:func:`window_reduce`) everywhere else.
    """
    if not is_torch(x):
        return _median_numpy(x, k)
    torch = _torch()
    if x.device.type == "cpu" and x.dtype in (torch.uint8, torch.float32, getattr(torch, "uint16", None)):
        arr = x.numpy()
        if _cv2_median_dtype(arr.dtype, k):
            return torch.from_numpy(_median_planes_cv2(arr, k))
    return window_reduce(x, k, k, lambda win: win.median(dim=-1).values)


def window_reduce(x, kh: int, kw: int, reduce, *, chunk_elements: int | None = None):
    """Apply ``reduce`` ((…, kh·kw) → (…), in ``x``'s namespace) to every kh×kw window of an N×C×H×W array,
    replicate border, in chunks of rows; same dtype (torch computes in float32/float64 and casts back)."""
    n, c, h, w = x.shape
    chunk = CHUNK_ELEMENTS if chunk_elements is None else chunk_elements
    rows = max(1, chunk // max(1, n * c * w * kh * kw))
    if is_torch(x):
        torch = _torch()
        work = _torch_work_dtype(x.dtype)
        xw = x.to(work)
        padded = (
            torch.nn.functional.pad(xw, (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")
            if (kh > 1 or kw > 1)
            else xw
        )
        out = torch.empty((n, c, h, w), dtype=work, device=x.device)

        def windows(r0, r1):
            win = padded[:, :, r0 : r1 + kh - 1].unfold(2, kh, 1).unfold(3, kw, 1)
            return win.reshape(*win.shape[:4], kh * kw)

    else:
        padded = np.pad(x, ((0, 0), (0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)), mode="edge")
        out = np.empty_like(x)

        def windows(r0, r1):
            win = np.lib.stride_tricks.sliding_window_view(padded[:, :, r0 : r1 + kh - 1], (kh, kw), axis=(2, 3))
            return win.reshape(*win.shape[:4], kh * kw)

    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        out[:, :, r0:r1] = reduce(windows(r0, r1))
    if is_torch(x):
        return out.to(x.dtype) if x.dtype != _torch().bool else out > 0.5
    return out


def _pool(x, s: int, sign: int):
    torch = _torch()
    p = s // 2
    xp = torch.nn.functional.pad(x if sign > 0 else -x, (p, p, p, p), mode="replicate")
    y = torch.nn.functional.max_pool2d(xp, s, stride=1)
    return y if sign > 0 else -y


def window_max(x, s: int):
    """s×s maximum of every plane of an N×C×H×W array, replicate border (torch: a float dtype)."""
    if is_torch(x):
        return _pool(x, s, 1)
    from scipy import ndimage

    return ndimage.maximum_filter(x, size=(1, 1, s, s), mode="nearest")


def window_min(x, s: int):
    """s×s minimum of every plane of an N×C×H×W array, replicate border (torch: a float dtype)."""
    if is_torch(x):
        return _pool(x, s, -1)
    from scipy import ndimage

    return ndimage.minimum_filter(x, size=(1, 1, s, s), mode="nearest")


def box_mean_valid(x, win: int):
    """Mean of every win×win window lying inside each plane of an N×C×H×W float array: N×C×(H−win+1)×(W−win+1)."""
    if is_torch(x):
        return _torch().nn.functional.avg_pool2d(x, win, stride=1)
    from scipy import ndimage

    r = win // 2
    h, w = x.shape[-2:]
    return ndimage.uniform_filter(x, size=(1, 1, win, win))[..., r : h - r, r : w - r]


# ============================================================================ correlations of H×W float arrays, mirror borders


def _cv2_border(border: str):
    import cv2

    return {"symmetric": cv2.BORDER_REFLECT, "reflect101": cv2.BORDER_REFLECT_101}[border]


@functools.lru_cache(maxsize=64)
def _mirror_index(n: int, r: int, border: str) -> np.ndarray:
    i = np.arange(-r, n + r)
    if border == "symmetric":
        period = 2 * n
        i = np.mod(i, period)
        i = np.where(i >= n, period - 1 - i, i)
    elif border == "reflect101":
        if n == 1:
            i = np.zeros_like(i)
        else:
            period = 2 * n - 2
            i = np.mod(i, period)
            i = np.where(i >= n, period - i, i)
    else:
        raise ValueError(border)
    return i


def pad(x, ry: int, rx: int, border: str = "symmetric"):
    """Pad the last two axes of ``x`` (NumPy or torch) by ``ry`` rows and ``rx`` columns on each side, mirror
    border: ``"symmetric"`` (SciPy's ``"reflect"``, d c b a | a b c d) or ``"reflect101"`` (NumPy's
    ``"reflect"``, SciPy's ``"mirror"``, d c b | a b c d)."""
    xp = namespace(x)
    h, w = x.shape[-2:]
    if ry:
        x = xp.take(x, like(_mirror_index(h, ry, border), x), axis=x.ndim - 2)
    if rx:
        x = xp.take(x, like(_mirror_index(w, rx, border), x), axis=x.ndim - 1)
    return x


def correlate(x, kernel: np.ndarray, border: str = "symmetric"):
    """Correlate an H×W float array (NumPy or torch) with a kh×kw NumPy kernel (odd sides); same dtype.

    NumPy: ``cv2.filter2D``; torch: ``conv2d`` of the mirror-padded plane.
    """
    kh, kw = kernel.shape
    if is_torch(x):
        torch = _torch()
        weight = torch.as_tensor(np.ascontiguousarray(kernel), dtype=x.dtype, device=x.device)[None, None]
        return torch.nn.functional.conv2d(pad(x[None, None], kh // 2, kw // 2, border), weight)[0, 0]
    import cv2

    return cv2.filter2D(x, -1, kernel.astype(x.dtype), borderType=_cv2_border(border))


def sep_correlate(x, ky: np.ndarray, kx: np.ndarray, border: str = "symmetric"):
    """Correlate an H×W float array with ``ky`` down the columns and ``kx`` along the rows (odd lengths).

    NumPy: ``cv2.sepFilter2D``; torch: two ``conv2d`` of the mirror-padded plane. Same dtype.
    """
    if is_torch(x):
        torch = _torch()
        conv = torch.nn.functional.conv2d
        t = pad(x[None, None], len(ky) // 2, len(kx) // 2, border)
        wy = torch.as_tensor(np.ascontiguousarray(ky), dtype=x.dtype, device=x.device).view(1, 1, -1, 1)
        wx = torch.as_tensor(np.ascontiguousarray(kx), dtype=x.dtype, device=x.device).view(1, 1, 1, -1)
        return conv(conv(t, wy), wx)[0, 0]
    import cv2

    return cv2.sepFilter2D(x, -1, kx.astype(x.dtype), ky.astype(x.dtype), borderType=_cv2_border(border))


def box_mean(x, w: int, border: str = "symmetric"):
    """Mean over w×w windows (w odd) of an H×W float array, mirror border; same dtype.

    NumPy: ``cv2.boxFilter``; torch: ``avg_pool2d`` of the mirror-padded plane.
    """
    if is_torch(x):
        t = pad(x[None, None], w // 2, w // 2, border)
        return _torch().nn.functional.avg_pool2d(t, w, stride=1)[0, 0]
    import cv2

    return cv2.boxFilter(x, -1, (w, w), normalize=True, borderType=_cv2_border(border))
