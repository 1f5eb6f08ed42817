"""Image enhancement: frequency-domain filters, median filters, noise and quality metrics.

Image layouts
-------------
Every function takes NumPy arrays, PIL images or torch tensors and returns the kind it was given
(a PIL image gives a NumPy array):

* NumPy: H×W (gray), H×W×C (colour, channels last) or N×C×H×W (a batch).
* torch: H×W, C×H×W or N×C×H×W.

Colour channels and batch items are filtered independently.

Every function is written once and runs on its input's array namespace (:mod:`cnnwidgets.engine._xp`), where
:func:`cnnwidgets.device.compute_device` says: NumPy input with NumPy/SciPy (OpenCV where faster) on the CPU,
importing no torch, unless ``CNNWIDGETS_DEVICE`` names a GPU; a tensor with torch on its device.

Frequency filters compute with ``scipy.fft`` (NumPy) or ``torch.fft`` (tensors); their masks are
cached per image size, parameters and device. Frequencies are fractions of the sampling frequency
(cycles per pixel, 0 … 0.5), as scikit-image's ``cutoff_frequency_ratio``.

Median filters use OpenCV's ``medianBlur`` on the CPU where it applies (it is the fastest correct
path), SciPy's ``median_filter`` for other NumPy dtypes and torch on a GPU. Their border convention is
*replicate* (the edge pixel repeats), which is OpenCV's ``BORDER_REPLICATE`` and SciPy's ``mode="nearest"``.

Invalid input: arguments are checked on entry (:mod:`cnnwidgets.engine.checks`). A wrong type, shape or dtype, or a
parameter beyond its documented bounds, raises a ValueError that names it (and shows arrays by shape and dtype,
never their values); an image holding NaN or infinity is refused the same way, so no function returns NaN or
infinity for finite input.
"""

from __future__ import annotations

from .._packages import adopt_public_names
from ._layout import FILTER_SHAPES, NOISE_KINDS
from .frequency import Fourier, fourier, frequency_filter, homomorphic_filter, notch_filter, spectrum
from .masks import clear_cache, frequency_mask, radial_frequencies, radial_profile
from .median_filters import adaptive_median, center_weighted_kernel, median, median_combination, weighted_median
from .quality import add_noise, psnr, ssim

__all__ = [
    "FILTER_SHAPES",
    "NOISE_KINDS",
    "frequency_filter",
    "fourier",
    "Fourier",
    "frequency_mask",
    "radial_profile",
    "radial_frequencies",
    "spectrum",
    "notch_filter",
    "homomorphic_filter",
    "median",
    "weighted_median",
    "center_weighted_kernel",
    "adaptive_median",
    "median_combination",
    "add_noise",
    "psnr",
    "ssim",
    "clear_cache",
]

adopt_public_names(globals())
