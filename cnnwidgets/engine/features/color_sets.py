"""Colour descriptors that keep more than a histogram: Smith & Chang's colour sets, Huang et al.'s correlogram."""

from __future__ import annotations

import numpy as np

from .. import checks
from ._common import int_sequence, many, reduced_rgb, stack

__all__ = ["HSV_COLORS", "RGB_COLORS", "CORRELOGRAM_DISTANCES", "color_set", "color_correlogram", "hsv166", "rgb64"]

HSV_COLORS = 166
"""Colours of :func:`hsv166`: 18 hues × 3 saturations × 3 values, and 4 greys."""
RGB_COLORS = 64
"""Colours of :func:`rgb64`: 4 levels per RGB channel."""
CORRELOGRAM_DISTANCES = (1, 3, 5, 7)
"""Default distances of :func:`color_correlogram` (chessboard, in pixels), as in Huang et al. (1997)."""


def _rgb8(rgb) -> np.ndarray:
    """``rgb`` if it is an H×W×3 uint8 array, else a ValueError (the quantisations read 8-bit channels)."""
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise ValueError(f"rgb must be an H×W×3 uint8 array, got {checks.short(rgb)}")
    return rgb


def hsv166(rgb: np.ndarray) -> np.ndarray:
    """Smith & Chang's 166-colour quantisation of HSV, computed exactly from the 8-bit RGB values.

    With ``V = max(R, G, B) / 255``, ``S = (max − min) / max`` and the hue ``H`` in degrees (the usual hexcone
    formula, the first of R, G, B that is largest choosing the sector):

    * a pixel is **grey** when ``S < 0.2`` or ``V < 0.2``: colour ``162 + min(floor(4 V), 3)`` (4 greys,
      black to white);
    * otherwise colour ``9 h + 3 s + v`` with hue bin ``h = floor(H / 20°)`` (0–17, red at 0) and
      saturation and value bins ``s = min(floor((S − 0.2) / 0.8 × 3), 2)``, ``v`` likewise from ``V``.

    Integer arithmetic only, so no pixel lands in a neighbouring bin by rounding.

    Parameters
    ----------
    rgb : numpy.ndarray
        uint8, H×W×3 (RGB).

    Returns
    -------
    numpy.ndarray
        int16, H×W, colours 0–165.
    """
    c = _rgb8(rgb).astype(np.int32)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    mx = c.max(axis=-1)
    d = mx - c.min(axis=-1)
    grey = (5 * d < mx) | (5 * mx < 255)
    dd = np.maximum(d, 1)
    hue = (
        np.where(
            mx == r,
            np.floor_divide(3 * (g - b), dd),
            np.where(mx == g, 6 + np.floor_divide(3 * (b - r), dd), 12 + np.floor_divide(3 * (r - g), dd)),
        )
        % 18
    )
    mxx = np.maximum(mx, 1)
    sat = np.minimum(np.floor_divide(15 * d - 3 * mx, 4 * mxx), 2)
    val = np.minimum(np.floor_divide(15 * mx - 765, 1020), 2)
    out = np.where(grey, 162 + np.minimum(4 * mx // 255, 3), 9 * hue + 3 * sat + val)
    return out.astype(np.int16)


def rgb64(rgb: np.ndarray) -> np.ndarray:
    """Huang et al.'s 64-colour quantisation: the top two bits of each channel, ``16 (R >> 6) + 4 (G >> 6) + (B >> 6)``.

    Parameters
    ----------
    rgb : numpy.ndarray
        The image, as for :func:`hsv166`: uint8, H×W×3 (RGB).

    Returns
    -------
    numpy.ndarray
        int16, H×W, colours 0–63.
    """
    c = _rgb8(rgb).astype(np.int16) >> 6
    return 16 * c[..., 0] + 4 * c[..., 1] + c[..., 2]


def color_set(image, *, min_fraction: float = 0.01) -> np.ndarray:
    """Binary colour set (Smith & Chang, 1996): which of the 166 HSV colours cover a part of the image.

    Colour ``c`` of :func:`hsv166` is in the set when at least ``min_fraction`` of the pixels have it. Images
    larger than 256 pixels on a side are reduced first (area interpolation), as for :func:`color_histogram`.

    Two sets are compared by their **Hamming distance**, the number of colours in one set but not the other.
    The vector holds each colour as 0.0 or 1.0, so the squared Euclidean distance between two vectors *is* the
    Hamming distance: the FAISS metric is squared L2, and search scores are ``1 / (1 + sqrt(Hamming))``. (The
    Jaccard distance, ``Hamming / |A ∪ B|``, is not a FAISS metric; rank a shortlist by it if needed.)

    Parameters
    ----------
    image : image or list of images
    min_fraction : float
        Smallest share of the pixels, in (0, 1], that puts a colour in the set (default 0.01).

    Returns
    -------
    numpy.ndarray
        float32, shape (166,) for one image or (N, 166) for a list; entries 0.0 or 1.0.
    """
    if not (checks.is_number(min_fraction) and 0 < min_fraction <= 1):
        raise ValueError(f"min_fraction={checks.short(min_fraction)}: expected a share of the pixels in (0, 1]")
    if many(image):
        return stack([color_set(im, min_fraction=min_fraction) for im in image], HSV_COLORS)
    labels = hsv166(reduced_rgb(image))
    counts = np.bincount(labels.ravel(), minlength=HSV_COLORS)
    return (counts >= float(min_fraction) * labels.size).astype(np.float32)


def _ring_counts(n: int, d: int) -> np.ndarray:
    """Per row (or column) index 0…n-1: how many rows lie within ``d`` of it inside 0…n-1; int64 (n,)."""
    i = np.arange(n)
    return np.minimum(i + d, n - 1) - np.maximum(i - d, 0) + 1


def color_correlogram(image, *, distances=CORRELOGRAM_DISTANCES) -> np.ndarray:
    """Colour auto-correlogram (Huang et al., 1997): how likely a pixel at distance d has the same colour.

    For each colour ``c`` of :func:`rgb64` and each distance ``d``,
    ``α_c(d) = #{(p, q): colour(p) = colour(q) = c, |p − q|∞ = d} / #{(p, q): colour(p) = c, |p − q|∞ = d}``,
    over ordered pairs of pixels of the image (``|p − q|∞`` the chessboard distance), i.e. the probability that
    a pixel ``q`` on the square ring of radius ``d`` around a pixel of colour ``c`` also has colour ``c``. The
    denominator counts only the ring pixels inside the image, so the border is not mistaken for other colours.
    A colour absent from the image gets 0. Images larger than 256 pixels on a side are reduced first (area
    interpolation).

    Unlike a histogram it says how colours are laid out: large uniform regions give α near 1, a colour
    scattered in specks gives α near 0.

    Parameters
    ----------
    image : image or list of images
    distances : sequence of int
        Ring radii in pixels (default (1, 3, 5, 7)).

    Returns
    -------
    numpy.ndarray
        float32, shape (64 × len(distances),) — 256 by default, ordered distance then colour — or (N, 256) for a
        list; entries in [0, 1]. Natural distance: Euclidean (FAISS squared L2; scores ``1 / (1 + L2)``).
        Huang et al.'s relative L1 distance ``Σ |a − b| / (1 + a + b)`` is not a FAISS metric.
    """
    dists = int_sequence("distances", distances)
    if many(image):
        return stack([color_correlogram(im, distances=dists) for im in image], RGB_COLORS * len(dists))
    q = rgb64(reduced_rgb(image)).astype(np.uint8)
    h, w = q.shape
    flat = q.ravel()
    out = []
    for d in dists:
        # per pixel p: how many q on half of the ring (each unordered pair once) share its colour; the other half
        # counts the same pairs from their other end
        same = np.zeros((h, w), np.int32)
        # the offsets of half the ring that stay inside the image (a ring past the image has none; listing all of
        # a ring of radius 10**9 would take minutes and gigabytes)
        offsets = [(d, dx) for dx in range(max(-d, 1 - w), min(d, w - 1) + 1)] if d < h else []
        offsets += [(dy, d) for dy in range(max(-d + 1, 1 - h), min(d - 1, h - 1) + 1)] if d < w else []
        for dy, dx in offsets:
            pa = (slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx)))
            pb = (slice(max(0, dy), h - max(0, -dy)), slice(max(0, dx), w - max(0, -dx)))
            same[pa] += q[pa] == q[pb]
        d = min(d, max(h, w) + 1)  # rings past the image are alike (and 10**30 would overflow int64)
        rows_d, cols_d = _ring_counts(h, d), _ring_counts(w, d)
        rows_in, cols_in = _ring_counts(h, d - 1), _ring_counts(w, d - 1)
        ring = np.outer(rows_d, cols_d) - np.outer(rows_in, cols_in)  # ring pixels inside the image, per pixel
        total = np.bincount(flat, weights=ring.ravel(), minlength=RGB_COLORS)
        pairs = np.bincount(flat, weights=same.ravel(), minlength=RGB_COLORS)
        out.append(np.divide(2 * pairs, total, out=np.zeros(RGB_COLORS), where=total > 0))
    return np.concatenate(out).astype(np.float32)
