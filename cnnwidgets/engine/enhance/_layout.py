"""Shared by the enhancement modules: filter names, and the N×C×H×W view of any image with its way back."""

from __future__ import annotations

import numpy as np

from .. import _xp, checks, kinds
from ..kinds import to_float

FILTER_SHAPES = ("ideal", "butterworth", "exponential", "gaussian")
"""Names accepted by ``shape=`` in :func:`frequency_filter` and :func:`frequency_mask`."""

NOISE_KINDS = ("gaussian", "salt_and_pepper", "speckle", "periodic")
"""Names accepted by ``kind=`` in :func:`add_noise`."""

#: Images with more pixels than this are filtered one channel at a time to bound peak memory.
_PLANE_BY_PLANE_PIXELS = 4_000_000
#: Budget of the FFT-mask cache in bytes.
MASK_CACHE_BYTES = 256 * 2**20
#: Elements per chunk in the window filters that unfold their windows (the weighted median; medians on a GPU).
CHUNK_ELEMENTS = _xp.CHUNK_ELEMENTS


# ============================================================================ layouts


class Layout:
    """Converts an image to an N×C×H×W view and back to the caller's kind and layout.

    Refuses what is not an image: another type, another number of dimensions, no pixels, complex or object
    data, NaN or infinity (a ValueError naming ``name``). ``target`` is where the image is computed
    (:func:`cnnwidgets.device.compute_device`: None for NumPy on the CPU, else a torch device).
    """

    def __init__(self, image, name: str = "image"):

        self.torch = kinds.is_torch(image)
        if not self.torch and not isinstance(image, np.ndarray):
            if type(image).__module__.startswith("PIL"):
                image = kinds.to_numpy(image, name)
            else:
                try:
                    image = np.asarray(image)
                except Exception:
                    raise TypeError(
                        f"{name}: expected a NumPy array, PIL image or torch tensor, got {type(image).__name__}"
                    ) from None
                if image.dtype == object:
                    raise TypeError(
                        f"{name}: expected a NumPy array, PIL image or torch tensor, got {type(image).__name__}"
                    )
        if image.ndim not in (2, 3, 4):
            raise ValueError(
                f"{name}: expected H×W, H×W×C (C×H×W for torch) or N×C×H×W, got shape {tuple(image.shape)}"
            )
        if min(image.shape) == 0:
            raise ValueError(f"{name}: image has no pixels (shape {tuple(image.shape)})")
        if self.torch and (image.is_complex()):
            raise ValueError(f"{name}: complex tensors are not images")
        if not self.torch and image.dtype.kind not in "buif":
            raise ValueError(f"{name}: unsupported dtype {image.dtype}")
        checks.finite(name, image)
        self.ndim = image.ndim
        self.image = image.detach() if self.torch else image
        self.device = image.device if self.torch else None
        self.target = _xp.compute_device(image)

    # numpy / torch view in N×C×H×W (no copy where possible)
    def nchw(self):
        x = self.image
        if self.ndim == 2:
            return x[None, None]
        if self.ndim == 3:
            return x[None] if self.torch else x.transpose(2, 0, 1)[None]
        return x

    def planes(self):
        """The N×C×H×W view where the image is computed (:attr:`target`), dtype unchanged."""
        return _xp.to_device(self.nchw(), self.target)

    @property
    def hw(self):
        s = self.image.shape
        return (s[0], s[1]) if (self.ndim == 2 or (self.ndim == 3 and not self.torch)) else (s[-2], s[-1])

    def restore(self, y):
        """Turn an N×C×H×W result (NumPy or torch) back into the input's kind and layout."""
        y = y.to(self.device) if self.torch else _xp.to_numpy(y)
        if self.ndim == 2:
            return y[0, 0]
        if self.ndim == 3:
            return y[0] if self.torch else y[0].transpose(1, 2, 0)  # a channels-last view; no copy
        return y


def _to_float32(x):
    """float32 of an array where it is computed: integers scaled to [0, 1] (:func:`cnnwidgets.engine.kinds.to_float`)."""
    xp = _xp.namespace(x)
    if x.dtype == xp.bool or x.dtype == xp.float64:
        x = xp.astype(x, xp.float32)
    return to_float(x)


def float_planes(layout: Layout):
    """The image as a float32 N×C×H×W array where it is computed (integers scaled to [0, 1])."""
    return _to_float32(layout.planes())


def map_planes(image, fn, *, name="image"):
    """Apply ``fn`` (float32 array …×H×W → same shape, in its own namespace) to every plane; small images in one
    batch.

    Large images go one plane at a time and land in a preallocated output, so a 24-megapixel
    RGB photo never holds more than one float plane's FFT at once.
    """
    layout = Layout(image, name)
    h, w = layout.hw
    nc = int(np.prod(layout.image.shape)) // (h * w)
    if h * w * nc <= _PLANE_BY_PLANE_PIXELS or nc == 1:
        return layout.restore(fn(float_planes(layout)))
    src = layout.nchw()
    n, c = src.shape[:2]
    if layout.torch:
        out = layout.image.new_empty((n, c, h, w), dtype=_xp.namespace(layout.image).float32)
        dest = out
    else:
        shape = {2: (h, w), 3: (h, w, c), 4: (n, c, h, w)}[layout.ndim]
        out = np.empty(shape, np.float32)
        dest = out[None, None] if layout.ndim == 2 else (out.transpose(2, 0, 1)[None] if layout.ndim == 3 else out)
    for i in range(n):
        for j in range(c):
            res = fn(_to_float32(_xp.to_device(src[i, j], layout.target)))
            dest[i, j] = res.to(layout.device) if layout.torch else _xp.to_numpy(res)
            del res
    if layout.torch:
        return out[0, 0] if layout.ndim == 2 else (out[0] if layout.ndim == 3 else out)
    return out
