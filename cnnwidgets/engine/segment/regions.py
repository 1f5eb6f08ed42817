"""Region-based segmentation: seeded region growing, watershed, k-means colour clustering."""

from __future__ import annotations

import numpy as np
from array_api_compat import device as array_device

from .. import _xp, checks
from ..calls import pixel_lengths
from ..kinds import is_torch, like, to_numpy
from ._base import as_gray
from .edge_maps import edges

# ----------------------------------------------------------------------------- regions


def _seed_list(seeds, shape, name="seeds") -> list[tuple[int, int]]:
    return checks.points(name, seeds, shape[:2])


def _pixels(image) -> np.ndarray:
    """H×W or H×W×C NumPy pixels of an image (torch C×H×W moved to channels last), numbers without NaN/inf."""
    arr = to_numpy(image)
    if is_torch(image) and arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim not in (2, 3):
        raise ValueError(f"image must be H×W or H×W×C, got shape {arr.shape}")
    return checks.numbers_array("image", arr)


@pixel_lengths(seeds="points")
def region_grow(image, seeds, *, tolerance: float = 10.0, connectivity: int = 2):
    """Seeded region growing: the connected pixels whose value is within ``tolerance`` of each seed's value.

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
        H×W gray or H×W×C colour, in its own units.
    seeds : sequence of (row, col)
        One region per seed.
    tolerance : float
        Largest absolute difference (gray) or Euclidean distance (colour) from the seed's value.
    connectivity : {1, 2}
        4- or 8-neighbourhood.

    Returns
    -------
    numpy.ndarray or torch.Tensor of int32, H×W
        0 for unassigned pixels, i + 1 for the region of seed i; an earlier seed keeps pixels it reached first.
        For a gray image, region i equals ``skimage.segmentation.flood(image, seed, tolerance=tolerance,
        connectivity=connectivity)``.
    """
    import cv2

    arr = _pixels(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    checks.choice("connectivity", connectivity, (1, 2))
    tolerance = checks.number("tolerance", tolerance, lo=0)
    pts = _seed_list(seeds, arr.shape)
    labels = np.zeros(arr.shape[:2], np.int32)
    x = arr.astype(np.float64)
    for i, (y0, x0) in enumerate(pts):
        if arr.ndim == 2:
            near = np.abs(x - x[y0, x0]) <= tolerance
        else:
            near = np.sqrt(((x - x[y0, x0]) ** 2).sum(-1)) <= tolerance
        _, comp = cv2.connectedComponents(near.view(np.uint8), connectivity=4 if connectivity == 1 else 8)
        region = (comp == comp[y0, x0]) & (labels == 0)
        labels[region] = i + 1
    return like(labels, image)


@pixel_lengths(markers="points", sigma="length")
def watershed(image, markers=None, *, sigma: float = 1.0, compactness: float = 0.0, marker_quantile: float = 0.1):
    """Watershed regions of the gradient magnitude (Sobel of the Gaussian-smoothed gray image).

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
        Gray or colour (see :func:`as_gray`).
    markers : int array H×W, sequence of (row, col), or None
        A label image (0 = unlabelled), or seed points (seed i gets label i + 1). None: the connected
        regions where the gradient is below its ``marker_quantile`` quantile.
    sigma : float
        Gaussian pre-smoothing before the gradient.
    compactness : float
        As ``skimage.segmentation.watershed``; larger gives more regular regions.

    Returns
    -------
    numpy.ndarray or torch.Tensor of int32, H×W
        Region labels (1..n). Equals ``skimage.segmentation.watershed(edges(image, "sobel", sigma=sigma), markers)``.
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import watershed as sk_watershed

    checks.number("compactness", compactness, lo=0)
    if markers is None:
        checks.number("marker_quantile", marker_quantile, lo=0, hi=1, lo_open=True, hi_open=True)
    gray = as_gray(image)
    grad = edges(gray, "sobel", sigma=sigma, output="response")
    if markers is None:
        m, _ = ndi.label(grad <= np.quantile(grad, marker_quantile))
    else:
        m = markers if not is_torch(markers) else markers.detach().cpu().numpy()
        m = checks.numbers_array("markers", m)
        if m.shape == gray.shape and m.dtype.kind in "iub":
            if m.dtype.kind != "b" and (m.min() < 0 or m.max() > np.iinfo(np.int32).max):
                raise ValueError(f"markers: labels must lie in 0 … 2**31 − 1, got {m.min()} … {m.max()}")
            m = m.astype(np.int32)
        else:
            pts = _seed_list(m, gray.shape, "markers")
            if not pts:
                raise ValueError("markers: give at least one seed point")
            m = np.zeros(gray.shape, np.int32)
            for i, (y, x) in enumerate(pts):
                if m[y, x] == 0:
                    m[y, x] = i + 1
    labels = sk_watershed(grad, m, compactness=compactness).astype(np.int32)
    return like(labels, image)


def kmeans_regions(image, clusters: int = 3, seed: int = 0):
    """Regions of similar colour: :func:`kmeans_colors` labels counted from 1, as region labels are.

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
        Gray or colour.
    clusters, seed : int
        ``k`` and ``seed`` of :func:`kmeans_colors`.

    Returns
    -------
    numpy.ndarray or torch.Tensor of int32, H×W
        Labels 1..clusters, ordered by increasing centre brightness.
    """
    checks.integer("clusters", clusters, lo=1)
    checks.integer("seed", seed, lo=0)
    labels, _ = kmeans_colors(image, clusters, seed)
    return labels + 1


#: Largest pixel magnitude k-means computes in float32: (2 · 1e15)² · 4 channels stays far below its 3.4e38.
_FLOAT32_SAFE = 1e15


def kmeans_colors(image, k: int = 3, seed: int = 0, *, max_iter: int = 50, sample: int = 200_000):
    """Cluster pixel colours with k-means (k-means++ start), where :func:`cnnwidgets.device.compute_device` says.

    Parameters
    ----------
    image : numpy.ndarray, PIL image or torch.Tensor
        H×W gray or H×W×C colour, any dtype; clustered in float32 of the stored values.
    k : int
        Number of clusters, ≥ 1.
    seed : int
        Seed of the initialisation and of the pixel sample (≥ 0); same seed, same result.
    max_iter : int
        Most Lloyd iterations (≥ 0).
    sample : int
        At most this many randomly chosen pixels fit the centres (≥ 1); every pixel is then assigned.

    Returns
    -------
    labels : numpy.ndarray or torch.Tensor of int32, H×W
        Cluster index 0..k-1, clusters ordered by increasing centre brightness (mean over channels).
    centers : numpy.ndarray of float32, k×C (C = 1 for gray)
    """
    if not (checks.is_integer(k) and k >= 1):
        raise ValueError(f"k must be ≥ 1, got {checks.short(k)}")
    k = int(k)
    checks.integer("seed", seed, lo=0)
    max_iter = checks.integer("max_iter", max_iter, lo=0)
    sample = checks.integer("sample", sample, lo=1)
    arr = _pixels(image)
    h, w = arr.shape[:2]
    pixels = arr.reshape(h * w, -1).astype(np.float64)
    # float32 as documented; float64 for values whose squared distances would overflow float32 (int64 extremes)
    if not np.abs(pixels).max() > _FLOAT32_SAFE:
        pixels = pixels.astype(np.float32)
    if len(np.unique(pixels[:: max(1, len(pixels) // 50_000)], axis=0)) < k and len(np.unique(pixels, axis=0)) < k:
        raise ValueError(f"the image has fewer than k={checks.short(k)} distinct colours")
    rng = np.random.default_rng(seed)
    fit = pixels if len(pixels) <= sample else pixels[rng.choice(len(pixels), sample, replace=False)]
    dev = _xp.compute_device(image)
    X = _xp.to_device(fit, dev)
    xp = _xp.namespace(X)
    # k-means++
    picks = [int(rng.integers(len(fit)))]
    d2 = xp.sum((X - X[picks[0]]) ** 2, axis=1)
    for _ in range(1, k):
        p = _xp.to_numpy(d2).astype(np.float64)
        total = p.sum()
        idx = int(rng.choice(len(fit), p=p / total)) if total > 0 else int(rng.integers(len(fit)))
        picks.append(idx)
        d2 = xp.minimum(d2, xp.sum((X - X[idx]) ** 2, axis=1))
    C = xp.stack([X[i] for i in picks])
    ids = xp.arange(k, device=array_device(X))
    for _ in range(int(max_iter)):
        onehot = xp.astype(_nearest(X, C)[:, None] == ids[None, :], X.dtype)  # n × k
        sums = xp.matmul(xp.matrix_transpose(onehot), X)
        counts = xp.sum(onehot, axis=0)[:, None]
        new = xp.where(counts > 0, sums / xp.clip(counts, min=1), C)
        if bool(xp.all(xp.abs(new - C) <= 1e-4)):
            C = new
            break
        C = new
    C = xp.take(C, xp.argsort(xp.mean(C, axis=1)), axis=0)
    labels = _nearest(_xp.to_device(pixels, dev), C)
    labels = _xp.to_numpy(labels).astype(np.int32).reshape(h, w)
    return like(labels, image), _xp.to_numpy(C).astype(np.float32, copy=False)


def _nearest(X, C, chunk: int = 1 << 18):
    """Index of the nearest row of ``C`` (k × C) for every row of ``X`` (n × C), squared Euclidean distance."""
    xp = _xp.namespace(X)
    parts = [
        xp.argmin(xp.sum((X[i : i + chunk, None, :] - C[None, :, :]) ** 2, axis=2), axis=1)
        for i in range(0, X.shape[0], chunk)
    ]
    return xp.concat(parts) if len(parts) > 1 else parts[0]
