"""Showing segmentations: coloured overlays and mask statistics."""

from __future__ import annotations

import numpy as np

from ._base import _is_torch, _numpy

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
    from ...io import to_uint8

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


def mark_points(image, points, *, radius: int = 2, color=(255, 255, 0)) -> np.ndarray:
    """A copy of an RGB image with a filled square drawn at each (row, col) point (seeds, clicks).

    Parameters
    ----------
    image : numpy.ndarray
        H×W×3 uint8.
    points : sequence of (row, col)
        Pixel positions; squares are clipped at the border.
    radius : int
        Half the side of each square (side 2·radius + 1).
    color : (int, int, int)

    Returns
    -------
    numpy.ndarray
        H×W×3 uint8.
    """
    out = np.array(image, copy=True)
    for r, c in points:
        y, x = int(r), int(c)
        out[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1] = color
    return out
