"""Showing segmentations: coloured overlays and mask statistics."""

from __future__ import annotations

import numpy as np

from .. import checks
from ..kinds import is_torch, to_numpy

# ----------------------------------------------------------------------------- display

_PALETTE = np.frombuffer(
    bytes.fromhex("e6194b 3cb44b 0082c8 f58230 911eb4 46f0f0 f032e6 d2f53c fabed4 008080 dcbeff aa6e28"), np.uint8
).reshape(-1, 3)
"""12 colours far apart, as RGB rows (uint8, 12×3), that label images cycle through."""


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
    from ...io import to_uint8

    arr = to_numpy(image)
    if is_torch(image) and arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3, 4))):
        raise ValueError(f"image must be H×W or H×W×C with C in 1, 3, 4; got shape {arr.shape}")
    checks.numbers_array("image", arr)
    alpha = checks.number("alpha", alpha, lo=0, hi=1)
    color = checks.rgb_color("color", color)
    base = to_uint8(arr)
    if base.ndim == 3 and base.shape[2] == 1:
        base = base[..., 0]
    if base.ndim == 2:
        base = np.repeat(base[..., None], 3, axis=2)
    base = base[..., :3]
    lab = to_numpy(mask_or_labels, "mask_or_labels")
    if lab.shape != base.shape[:2]:
        raise ValueError(f"mask_or_labels has shape {lab.shape}, the image {base.shape[:2]}")
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
        # label v > 0 gets palette entry (v − 1) mod 12, computed per pixel: a look-up table up to the largest
        # label would be as long as that label (2**62 for an int64 image)
        paint = _PALETTE[(lab.astype(np.int64) - 1) % len(_PALETTE)]
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

    m = checks.numbers_array("mask", to_numpy(mask, "mask"))
    if m.ndim != 2:
        raise ValueError(f"mask must be H×W, got shape {m.shape}")
    checks.choice("connectivity", connectivity, (1, 2))
    fg = (m != 0).astype(np.uint8)
    n, _ = cv2.connectedComponents(fg, connectivity=4 if connectivity == 1 else 8)
    pixels = int(fg.sum())
    return {"area_fraction": pixels / fg.size, "components": int(n - 1), "pixels": pixels}


def mark_points(image, points, *, radius: int = 2, color=(255, 255, 0)) -> np.ndarray:
    """A copy of an RGB image with a filled square drawn at each (row, col) point (seeds, clicks).

    Parameters
    ----------
    image : numpy.ndarray
        H×W×3 uint8.
    points : sequence of (row, col)
        Pixel positions (rounded); squares are clipped at the border, points outside the image draw nothing.
    radius : int
        Half the side of each square (side 2·radius + 1), ≥ 0.
    color : (int, int, int)
        0 … 255 each.

    Returns
    -------
    numpy.ndarray
        H×W×3 uint8.
    """
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"image must be an H×W×3 uint8 array, got {checks.short(image)}")
    radius = checks.integer("radius", radius, lo=0)
    color = checks.rgb_color("color", color)
    out = image.copy()
    h, w = out.shape[:2]
    for y, x in checks.points("points", points):
        # clipped to the image: a negative stop would count from the far end
        y0, y1 = min(max(0, y - radius), h), min(max(0, y + radius + 1), h)
        x0, x1 = min(max(0, x - radius), w), min(max(0, x + radius + 1), w)
        out[y0:y1, x0:x1] = color
    return out
