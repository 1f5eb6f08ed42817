"""Global shape descriptors of the grey image: HOG and GIST (a Gabor filter bank after Oliva & Torralba)."""

from __future__ import annotations

import functools
import math

import numpy as np

from .. import _xp
from ._common import many, positive_int, square_gray, stack

__all__ = ["hog", "gabor_bank", "gist", "GIST_PREFILTER_SIGMA"]

GIST_PREFILTER_SIGMA = 1 / 20
"""Standard deviation of the Gaussian of GIST's prefilter, as a fraction of the image side (6.4 px at 128 px):
the spatial counterpart of Oliva & Torralba's whitening filter at 4 cycles per image."""

_GABOR_SIGMA_F = 0.5622  # σ·f of a Gabor with a one-octave half-magnitude bandwidth: sqrt(ln 2 / 2) / π · 3
_GABOR_TOP = 0.25  # centre frequency of the finest scale, cycles per pixel
_GIST_CHUNK = 8  # images filtered together: bounds the memory of the N × orientations × L × L responses
# GIST vectors of a smaller norm (before scaling) are the float32 rounding noise of a flat image: up to 1.3e-4 for
# flat 128–512 px images, while a single pixel one grey level off its flat surround gives 1.3e-3
_FLAT_NORM = 4e-4
MAX_SCALES = 7  # the 7th octave's kernels are 865 px wide (radius 432); an 8th would be 1729 px, 12th 27,633 px
MAX_ORIENTATIONS = 64


def _radius(scale: int) -> int:
    """Radius ``ceil(3σ)`` of the Gabor kernels of scale ``scale`` (0 = finest), as :func:`_bank` builds them."""
    return math.ceil(3 * (_GABOR_SIGMA_F / (_GABOR_TOP / 2**scale)))


def _bank_size(scales, orientations) -> tuple[int, int]:
    """``scales`` and ``orientations`` checked against the bank's bounds (its kernels' memory)."""
    scales, orientations = positive_int("scales", scales), positive_int("orientations", orientations)
    if scales > MAX_SCALES:
        raise ValueError(
            f"scales={scales}: at most {MAX_SCALES} (scale {scales - 1}'s kernels would be {2 * _radius(scales - 1) + 1} px wide)"
        )
    if orientations > MAX_ORIENTATIONS:
        raise ValueError(f"orientations={orientations}: at most {MAX_ORIENTATIONS}")
    return scales, orientations


def _hog_dim(side, orientations, cell, block) -> int:
    cells = side // cell
    blocks = max(cells - block + 1, 0)
    return blocks * blocks * block * block * orientations


def hog(image, *, side: int = 128, orientations: int = 9, cell: int = 16, block: int = 2) -> np.ndarray:
    """Histogram of oriented gradients (Dalal & Triggs) of the whole image, by ``skimage.feature.hog``.

    The grey image (ITU-R 601 luma) is resized to ``side``×``side`` (aspect ratio not kept; area
    interpolation when shrinking, bilinear when enlarging), so every image gives a vector of the same length.
    scikit-image computes unsigned gradient orientations in ``orientations`` bins per ``cell``×``cell`` cell and
    normalises each ``block``×``block`` block of cells with L2-Hys; the concatenated blocks are then scaled to
    unit L2 norm.

    Parameters
    ----------
    image : image or list of images
        Anything :func:`cnnwidgets.io.load_image` accepts; colour is converted to grey.
    side : int
        The image is resized to this square first (default 128).
    orientations : int
        Orientation bins over 0–180° (default 9).
    cell : int
        Cell side in pixels (default 16: an 8×8 grid of cells at 128 px).
    block : int
        Block side in cells (default 2).

    Returns
    -------
    numpy.ndarray
        float32, shape (D,) for one image or (N, D) for a list, with
        ``D = ((side // cell) - block + 1)² × block² × orientations`` (1764 with the defaults); entries
        ≥ 0, unit L2 norm (all zeros for a flat image). Natural distance: cosine, so the FAISS metric is the
        inner product; on unit vectors the squared L2 distance is ``2 − 2 × cosine`` and ranks alike.
    """
    side, orientations, cell, block = (
        positive_int(n, v)
        for n, v in (("side", side), ("orientations", orientations), ("cell", cell), ("block", block))
    )
    dim = _hog_dim(side, orientations, cell, block)
    if dim == 0:
        raise ValueError(f"hog: side={side} holds fewer than block={block} cells of {cell} px on a side")
    if many(image):
        return stack([hog(im, side=side, orientations=orientations, cell=cell, block=block) for im in image], dim)
    from skimage.feature import hog as skimage_hog

    vec = skimage_hog(
        square_gray(image, side),
        orientations=orientations,
        pixels_per_cell=(cell, cell),
        cells_per_block=(block, block),
        block_norm="L2-Hys",
        feature_vector=True,
    ).astype(np.float64)
    return (vec / max(float(np.linalg.norm(vec)), 1e-12)).astype(np.float32)


# ----------------------------------------------------------------------------- GIST


@functools.lru_cache(maxsize=8)
def _bank(scales: int, orientations: int) -> tuple:
    out = []
    for s in range(scales):
        f = _GABOR_TOP / 2**s
        sigma = _GABOR_SIGMA_F / f
        r = math.ceil(3 * sigma)
        y, x = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
        envelope = np.exp(-(x**2 + y**2) / (2 * sigma**2))
        kernels = []
        for o in range(orientations):
            theta = math.pi * o / orientations
            carrier = np.exp(2j * math.pi * f * (x * math.cos(theta) + y * math.sin(theta)))
            dc = (envelope * carrier).sum() / envelope.sum()  # the carrier's mean under the envelope: removed
            k = envelope * (carrier - dc)
            kernels.append(k / np.sqrt((np.abs(k) ** 2).sum()))
        out.append(np.stack(kernels).astype(np.complex128))
    return tuple(out)


def gabor_bank(*, scales: int = 4, orientations: int = 8) -> list:
    """The complex Gabor filters of :func:`gist`, one array per scale.

    Scale ``s`` (0 = finest) has centre frequency ``f = 0.25 / 2**s`` cycles per pixel and a Gaussian envelope of
    standard deviation ``σ = 0.5622 / f`` pixels (a one-octave bandwidth), truncated at ``ceil(3σ)``;
    orientation ``o`` has its carrier along ``θ = π o / orientations``:
    ``g(x, y) = exp(-(x² + y²) / 2σ²) · (exp(2πi f (x cos θ + y sin θ)) − κ)``, with ``κ`` the carrier's
    envelope-weighted mean over the kernel (so that ``g`` sums to zero: a flat image gives no response; about
    ``exp(-2π² f² σ²)`` ≈ 0.002), scaled to unit L2 norm. ``x`` runs along columns, ``y`` along rows, both
    centred on the middle element.

    Parameters
    ----------
    scales : int
        Number of octaves, 1 … 7 (default 4: 0.25, 0.125, 0.0625 and 0.03125 cycles per pixel, kernels of 15, 29,
        55 and 109 pixels; the 7th is 865 pixels wide).
    orientations : int
        Orientations per scale over 0–180°, 1 … 64 (default 8).

    Returns
    -------
    list of numpy.ndarray
        complex128, scale ``s`` of shape (orientations, 2 r + 1, 2 r + 1), ``r = ceil(3σ)``.
    """
    return [k.copy() for k in _bank(*_bank_size(scales, orientations))]


def _gaussian_kernel(sigma: float) -> np.ndarray:
    """SciPy's Gaussian (``scipy.ndimage.gaussian_filter``, truncate 4) as a 2-D kernel: float64 (2r+1, 2r+1)."""
    r = int(4.0 * sigma + 0.5)
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    return np.outer(k, k)


def _kernels(kind: tuple) -> np.ndarray:
    """The kernels of ``("gauss", sigma)`` (1, 2r+1, 2r+1) float64 or ``("gabor", scales, orientations, s)``."""
    if kind[0] == "gauss":
        return _gaussian_kernel(kind[1])[None]
    return _bank(kind[1], kind[2])[kind[3]]


_AXES = (-2, -1)


@functools.lru_cache(maxsize=32)
def _spectra(kind: tuple, side: int, device):
    """FFT length, kernel radius and the kernels' spectra: zero-padded to L×L and centred on (0, 0);
    (K, L, L) for Gabor kernels, the half spectrum (K, L, L // 2 + 1) for the real Gaussian; NumPy for
    ``device=None``, else tensors on ``device``."""
    import scipy.fft

    kernels = _kernels(kind)
    r = kernels.shape[-1] // 2
    n = scipy.fft.next_fast_len(side + 2 * r)
    padded = np.zeros((len(kernels), n, n), kernels.dtype)
    padded[:, : 2 * r + 1, : 2 * r + 1] = kernels
    padded = np.roll(padded, (-r, -r), axis=(1, 2))
    if kind[0] == "gabor":
        spec = scipy.fft.fftn(padded.astype(np.complex64), axes=_AXES)
    else:
        spec = scipy.fft.rfftn(padded.astype(np.float32), axes=_AXES)
    return n, r, _xp.to_device(spec, device)


def _convolve(planes, kind: tuple):
    """``planes`` (N, S, S) float32 (NumPy or torch) convolved with the kernels of ``kind``, mirror boundary
    (SciPy's ``mode="mirror"``): (N, K, S, S) in the same namespace, complex64 for Gabor kernels, float32 for the
    Gaussian."""
    f = _xp.fft(_xp.namespace(planes))
    side = planes.shape[-1]
    n, r, spec = _spectra(kind, side, planes.device if _xp.is_torch(planes) else None)
    padded = _xp.pad(planes, r, r, "reflect101")
    if kind[0] == "gabor":
        out = f.ifftn(f.fftn(padded, s=(n, n), axes=_AXES)[:, None] * spec[None], axes=_AXES)
    else:
        out = f.irfftn(f.rfftn(padded, s=(n, n), axes=_AXES)[:, None] * spec[None], s=(n, n), axes=_AXES)
    return out[..., r : r + side, r : r + side]


def _gist_batch(gray: np.ndarray, scales: int, orientations: int, grid: int) -> np.ndarray:
    device = _xp.compute_device()  # NumPy on the CPU unless CNNWIDGETS_DEVICE names a GPU
    if device is not None:
        from ...device import apply_thread_policy

        apply_thread_policy()
    side = gray.shape[-1]
    x = _xp.to_device(gray.astype(np.float32), device)
    xp = _xp.namespace(x)
    x = xp.log1p(x)
    blur = ("gauss", GIST_PREFILTER_SIGMA * side)
    white = x - _convolve(x, blur)[:, 0]
    local = xp.sqrt(xp.clip(_convolve(white**2, blur)[:, 0], min=0.0))
    x = white / (0.2 + local)
    cells = []
    n = x.shape[0]
    for s in range(scales):
        energy = xp.abs(_convolve(x, ("gabor", scales, orientations, s)))  # N, orientations, side, side
        c = side // grid
        cells.append(xp.mean(xp.reshape(energy, (n, orientations, grid, c, grid, c)), axis=(3, 5)))
    vec = xp.astype(xp.reshape(xp.concat(cells, axis=1), (n, -1)), xp.float64)
    norm = xp.linalg.vector_norm(vec, axis=1, keepdims=True)
    # a flat image leaves only rounding noise (which scaled up gave vectors of any norm, 0.2 or 1): all zeros,
    # as documented
    vec = xp.where(norm > _FLAT_NORM, vec / xp.clip(norm, min=_FLAT_NORM), xp.zeros_like(vec))
    return _xp.to_numpy(xp.astype(vec, xp.float32))


def gist(image, *, side: int = 128, scales: int = 4, orientations: int = 8, grid: int = 4) -> np.ndarray:
    """GIST: mean local energy of a Gabor filter bank on a grid of cells (after Oliva & Torralba, 2001).

    Steps, on the grey image (ITU-R 601 luma) resized to ``side``×``side``:

    1. prefilter (as Oliva & Torralba's ``prefilt``): ``x = log(1 + grey)`` with grey in [0, 255];
       whitening ``w = x − G ∗ x``; local contrast normalisation ``w / (0.2 + sqrt(G ∗ w²))``, with ``G`` the
       Gaussian of standard deviation ``side / 20`` (:data:`GIST_PREFILTER_SIGMA`) truncated at 4σ;
    2. convolve with every filter of :func:`gabor_bank` (``scales`` × ``orientations`` complex Gabors);
       the local energy is the magnitude of the complex response;
    3. average the energy over a ``grid``×``grid`` grid of equal cells;
    4. scale the vector to unit L2 norm.

    Convolutions are products of FFTs (``scipy.fft`` on the CPU; ``torch.fft`` where
    :func:`cnnwidgets.device.compute_device` names a GPU; images in batches of 8) of the image mirrored at its border by
    the kernel radius (SciPy's ``mode="mirror"``), so the result equals a direct spatial convolution of the same
    kernels.

    Parameters
    ----------
    image : image or list of images
    side : int
        The image is resized to this square (default 128); a multiple of ``grid``, larger than the biggest
        kernel's radius (54 px with 4 scales).
    scales, orientations : int
        Size of the bank (default 4 × 8 = 32 filters), see :func:`gabor_bank`.
    grid : int
        Cells per side (default 4).

    Returns
    -------
    numpy.ndarray
        float32, shape (scales × orientations × grid²,) — 512 with the defaults, ordered scale, orientation,
        cell row, cell column — or (N, 512) for a list; entries ≥ 0 with unit L2 norm (all zeros for a flat
        image). Natural distance: Euclidean between unit vectors, which ranks as the cosine: the FAISS metric is
        the inner product.
    """
    side, grid = positive_int("side", side), positive_int("grid", grid)
    scales, orientations = _bank_size(scales, orientations)
    if side % grid:
        raise ValueError(f"gist: side={side} is not a multiple of grid={grid}")
    radius = _radius(scales - 1)  # known before the bank is built
    if side <= radius:
        raise ValueError(
            f"gist: side={side} must exceed the largest Gabor kernel radius ({radius} px); use fewer scales"
        )
    dim = scales * orientations * grid * grid
    if not many(image):
        return _gist_batch(square_gray(image, side)[None], scales, orientations, grid)[0]
    images = list(image)
    out = [
        _gist_batch(np.stack([square_gray(im, side) for im in images[i : i + _GIST_CHUNK]]), scales, orientations, grid)
        for i in range(0, len(images), _GIST_CHUNK)
    ]
    return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros((0, dim), np.float32)
