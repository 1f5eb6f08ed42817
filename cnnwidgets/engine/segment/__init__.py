"""Image segmentation: global and local thresholds, edges, regions.

Thresholds
    :func:`threshold_value` / :func:`threshold_values` compute a global threshold in the image's own units
    (0–255 for uint8, the data's range for float), following the definitions of
    ``skimage.filters.threshold_<method>``; :func:`threshold` turns a method, a number or a threshold
    surface into a boolean mask; :func:`local_threshold` gives the threshold surface of the local methods.
Edges
    :func:`edges` computes gradient magnitudes (Sobel, Prewitt, Scharr, Roberts) and second derivatives
    (Laplace, Laplacian of Gaussian) as torch convolutions on :func:`cnnwidgets.device.get_device`,
    with zero-crossing extraction (:func:`zero_crossings`), and Canny edges.
Regions
    :func:`region_grow` (seeded, gray or colour), :func:`watershed`, :func:`kmeans_colors`.
Display
    :func:`overlay` and :func:`mask_stats`.

Colour input is converted to gray first: uint8 with OpenCV's ITU-R 601 luma (as ``load_image(mode="gray")``),
float with the same weights. NumPy in gives NumPy out, torch in gives torch out (on the input's device).

Invalid input: arguments are checked on entry (:mod:`cnnwidgets.engine.checks`). A wrong type, shape or dtype, or a
parameter beyond its documented bounds, raises a ValueError that names it (and shows arrays by shape and dtype,
never their values); an image, a threshold surface, a response or a list of seeds holding NaN or infinity is
refused the same way, so no function returns NaN or infinity for finite input.
"""

from __future__ import annotations

from .._packages import adopt_public_names
from ._base import EDGE_METHODS, GLOBAL_METHODS, GRADIENT_METHODS, LOCAL_METHODS, as_gray, histogram
from .display import mark_points, mask_stats, overlay
from .edge_maps import edge_mask, edges, zero_crossings
from .local import local_threshold
from .regions import kmeans_colors, kmeans_regions, region_grow, watershed
from .thresholds import auto_thresholds, threshold, threshold_classes, threshold_each, threshold_value, threshold_values

__all__ = [
    "GLOBAL_METHODS",
    "LOCAL_METHODS",
    "EDGE_METHODS",
    "GRADIENT_METHODS",
    "as_gray",
    "histogram",
    "threshold_value",
    "threshold_values",
    "threshold",
    "threshold_classes",
    "auto_thresholds",
    "threshold_each",
    "local_threshold",
    "edges",
    "edge_mask",
    "zero_crossings",
    "region_grow",
    "watershed",
    "kmeans_colors",
    "kmeans_regions",
    "overlay",
    "mask_stats",
    "mark_points",
]

adopt_public_names(globals())
