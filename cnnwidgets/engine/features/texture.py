"""Texture from the grey-level co-occurrence matrix (Haralick et al., 1973), by scikit-image."""

from __future__ import annotations

import math

import numpy as np

from ._common import int_sequence, many, positive_int, reduced_gray, stack

__all__ = ["GLCM_PROPERTIES", "GLCM_ANGLES", "GLCM_DISTANCES", "glcm"]

GLCM_PROPERTIES = ("contrast", "homogeneity", "energy", "correlation")
"""The ``skimage.feature.graycoprops`` properties of :func:`glcm`, in the vector's order."""
GLCM_ANGLES = (0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4)
"""Directions of the pixel pairs: 0°, 45°, 90° and 135° (radians)."""
GLCM_DISTANCES = (1, 3, 5)
"""Default pixel-pair distances. scikit-image rounds each offset, so 45° at distance 2 would repeat distance 1."""


def glcm(image, *, levels: int = 32, distances=GLCM_DISTANCES) -> np.ndarray:
    """Haralick texture: contrast, homogeneity, energy and correlation of the grey-level co-occurrence matrix.

    The grey image (ITU-R 601 luma, longer side reduced to at most 256 pixels) is quantised to ``levels``
    grey levels (``grey × levels // 256``); ``skimage.feature.graycomatrix`` counts the pairs at each distance
    and each of the four :data:`GLCM_ANGLES` (symmetric, normalised) and ``skimage.feature.graycoprops`` gives the
    four :data:`GLCM_PROPERTIES` of each matrix.

    The properties live on different scales (contrast up to ``(levels − 1)²``, correlation in [−1, 1]), so each is
    mapped onto [0, 1] by its own definition before Euclidean distances are taken: contrast, the mean squared
    grey-level difference of a pair, becomes the root-mean-square difference as a fraction of the grey range,
    ``sqrt(contrast) / (levels − 1)``; homogeneity and energy are already in [0, 1]; correlation becomes
    ``(1 + correlation) / 2``. No statistics of a collection enter, so a vector never changes when other images
    are indexed.

    Parameters
    ----------
    image : image or list of images
    levels : int
        Grey levels, 2–256 (default 32).
    distances : sequence of int
        Pixel-pair distances (default (1, 3, 5)).

    Returns
    -------
    numpy.ndarray
        float32, shape (4 × len(distances) × 4,) — 48 by default, ordered property, distance, angle — or (N, 48)
        for a list; entries in [0, 1]. Natural distance: Euclidean (FAISS squared L2; scores ``1 / (1 + L2)``).
    """
    levels = positive_int("levels", levels)
    if not 2 <= levels <= 256:
        raise ValueError(f"levels={levels}: expected 2 to 256 grey levels")
    dists = int_sequence("distances", distances)
    dim = len(GLCM_PROPERTIES) * len(dists) * len(GLCM_ANGLES)
    if many(image):
        return stack([glcm(im, levels=levels, distances=dists) for im in image], dim)
    from skimage.feature import graycomatrix, graycoprops

    q = (reduced_gray(image).astype(np.int32) * levels // 256).astype(np.uint8)
    m = graycomatrix(q, dists, GLCM_ANGLES, levels=levels, symmetric=True, normed=True)
    contrast, homogeneity, energy, correlation = (graycoprops(m, p) for p in GLCM_PROPERTIES)
    parts = (np.sqrt(contrast) / (levels - 1), homogeneity, energy, (1.0 + correlation) / 2)
    vec = np.concatenate([np.nan_to_num(p, nan=0.0).ravel() for p in parts])
    return np.clip(vec, 0.0, 1.0).astype(np.float32)
