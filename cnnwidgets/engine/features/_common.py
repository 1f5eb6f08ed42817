"""What the descriptor modules share: one image or a list, the working copies of an image."""

from __future__ import annotations

import numpy as np

from ...io import load_image, resize_to_fit
from .. import checks

WORK_SIDE = 256  # colour and texture statistics are computed on a copy at most this large


def many(images) -> bool:
    """True for a list or tuple of images (an N×D result), False for one image (a D vector)."""
    return isinstance(images, (list, tuple))


def stack(vectors: list, dim: int) -> np.ndarray:
    """The N×D float32 matrix of ``vectors`` (0×D when there are none)."""
    return np.stack(vectors).astype(np.float32, copy=False) if vectors else np.zeros((0, dim), np.float32)


def reduced_rgb(image) -> np.ndarray:
    """RGB uint8 H×W×3 with the longer side reduced to at most :data:`WORK_SIDE` (area interpolation)."""
    arr = load_image(image, mode="rgb")
    return resize_to_fit(arr, WORK_SIDE) if max(arr.shape[:2]) > WORK_SIDE else arr


def reduced_gray(image) -> np.ndarray:
    """Grey uint8 H×W (ITU-R 601 luma) with the longer side reduced to at most :data:`WORK_SIDE`."""
    arr = load_image(image, mode="gray")
    return resize_to_fit(arr, WORK_SIDE) if max(arr.shape) > WORK_SIDE else arr


def square_gray(image, side: int) -> np.ndarray:
    """Grey uint8 ``side``×``side``: the whole image resized, aspect ratio not kept.

    OpenCV ``INTER_AREA`` when both sides shrink, ``INTER_LINEAR`` otherwise.
    """
    import cv2

    gray = load_image(image, mode="gray")
    h, w = gray.shape
    if (h, w) == (side, side):
        return gray
    interp = cv2.INTER_AREA if h >= side and w >= side else cv2.INTER_LINEAR
    return cv2.resize(gray, (side, side), interpolation=interp)


def positive_int(name: str, value) -> int:
    """``value`` as an int, or a ValueError naming the option when it is not a positive whole number."""
    if not checks.is_integer(value) or value < 1:
        raise ValueError(f"{name}={checks.short(value)}: expected a positive int")
    return int(value)


def int_sequence(name: str, values) -> tuple:
    """A non-empty sequence of positive ints (distances), or a ValueError naming the option."""
    if not isinstance(values, (list, tuple, np.ndarray)):
        raise ValueError(f"{name}={checks.short(values)}: expected a sequence of positive ints")
    out = tuple(positive_int(name, d) for d in values)
    if not out:
        raise ValueError(f"{name}=(): expected at least one distance")
    return out
