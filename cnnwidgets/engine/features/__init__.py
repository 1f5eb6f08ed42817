"""Image descriptors for retrieval: colour, shape, texture, bags of local features, CNN embeddings.

Every descriptor returns a float32 vector (or an N×D float32 matrix for a list of images), normalised so
that FAISS computes its natural distance directly:

============================  ===================  ===================================================  ========
descriptor                    dimension            natural distance                                     FAISS
============================  ===================  ===================================================  ========
:func:`color_histogram`       prod(bins)           Bhattacharyya / Hellinger between histograms         inner product
:func:`color_moments`         9                    Euclidean between per-channel moments                L2
:func:`color_set`             166                  Hamming between binary colour sets                   L2
:func:`color_correlogram`     64 × distances       Euclidean between auto-correlograms                  L2
:func:`hog`                   1764                 cosine between HOG vectors                           inner product
:func:`gist`                  512                  cosine (Euclidean on unit vectors) between GISTs     inner product
:func:`glcm`                  48                   Euclidean between range-scaled Haralick properties   L2
:func:`sift_bovw`             vocabulary size      Hellinger between visual-word histograms             inner product
:func:`orb_bovw`              vocabulary size      Hellinger between visual-word histograms             inner product
:func:`cnn`                   model feature width  cosine between CNN embeddings                        inner product
============================  ===================  ===================================================  ========

Histograms (colour and visual words) are L1-normalised and then square-rooted, so their inner product is the
Bhattacharyya coefficient ``sum(sqrt(p * q))`` in [0, 1] and the L2 distance between two vectors is
``sqrt(2) × Hellinger``. :data:`METRICS` maps descriptor names to the FAISS metric they need.

The classical descriptors live in submodules and are used from here: :func:`hog` and :func:`gist` (with
:func:`gabor_bank`) in ``features.shape``, :func:`color_set` and :func:`color_correlogram` (with the
quantisations :func:`hsv166` and :func:`rgb64`) in ``features.color_sets``, :func:`glcm` in ``features.texture``.

Invalid input: arguments are checked on entry (:mod:`cnnwidgets.engine.checks`). A wrong type, shape or dtype, or a
parameter beyond its documented bounds, raises a ValueError that names it (and shows arrays by shape and dtype,
never their values); an image (see :func:`cnnwidgets.io.load_image`) or a descriptor array holding NaN or infinity
is refused the same way, so no function returns NaN or infinity for finite input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...io import load_image, resize_to_fit
from .. import checks
from .._packages import adopt_public_names
from .color_sets import CORRELOGRAM_DISTANCES, HSV_COLORS, RGB_COLORS, color_correlogram, color_set, hsv166, rgb64
from .shape import GIST_PREFILTER_SIGMA, gabor_bank, gist, hog
from .texture import GLCM_ANGLES, GLCM_DISTANCES, GLCM_PROPERTIES, glcm

__all__ = [
    "METRICS",
    "color_histogram",
    "color_moments",
    "color_set",
    "color_correlogram",
    "hsv166",
    "rgb64",
    "HSV_COLORS",
    "RGB_COLORS",
    "CORRELOGRAM_DISTANCES",
    "hog",
    "gist",
    "gabor_bank",
    "GIST_PREFILTER_SIGMA",
    "glcm",
    "GLCM_PROPERTIES",
    "GLCM_ANGLES",
    "GLCM_DISTANCES",
    "local_features",
    "Vocabulary",
    "learn_vocabulary",
    "visual_words",
    "bovw",
    "sift_bovw",
    "orb_bovw",
    "cnn",
    "cnn_with_tags",
]

METRICS = {
    "color": "ip",
    "moments": "l2",
    "color_set": "l2",
    "correlogram": "l2",
    "hog": "ip",
    "gist": "ip",
    "glcm": "l2",
    "sift": "ip",
    "orb": "ip",
    "cnn": "ip",
}
"""FAISS metric per descriptor name: ``"ip"`` (inner product, higher is closer) or ``"l2"`` (squared L2)."""

_RANGES = {"rgb": ((0, 256), (0, 256), (0, 256)), "hsv": ((0, 180), (0, 256), (0, 256))}
_WORK_SIDE = 256  # colour statistics are computed on a copy at most this large: plenty for 8-bin histograms


def _rgb(image) -> np.ndarray:
    arr = load_image(image, mode="rgb")
    return resize_to_fit(arr, _WORK_SIDE) if max(arr.shape[:2]) > _WORK_SIDE else arr


def _convert(rgb: np.ndarray, space: str) -> np.ndarray:
    import cv2

    if space == "rgb":
        return rgb
    if space == "hsv":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)  # H in [0, 180), S and V in [0, 255]
    raise ValueError(f"space={checks.short(space)}: expected 'rgb' or 'hsv'")


def _space(space) -> str:
    if not isinstance(space, str) or space not in _RANGES:
        raise ValueError(f"space={checks.short(space)}: expected 'rgb' or 'hsv'")
    return space


def _many(images) -> bool:
    return isinstance(images, (list, tuple))


def color_histogram(image, *, space: str = "hsv", bins=(8, 4, 4)) -> np.ndarray:
    """Joint 3-D colour histogram, L1-normalised and square-rooted.

    Parameters
    ----------
    image : image or list of images
        Anything :func:`cnnwidgets.io.load_image` accepts; grey images are treated as RGB with equal channels.
        Images larger than 256 pixels on a side are reduced first (area interpolation).
    space : {"hsv", "rgb"}
        Colour space. HSV uses OpenCV's ranges (H in [0, 180)).
    bins : int or tuple of 3 ints
        Bins per channel, 1 … 256 each (the channels have 8 bits); the vector has ``prod(bins)`` entries. The
        default (8, 4, 4) gives 128.

    Returns
    -------
    numpy.ndarray
        float32, shape (prod(bins),) for one image or (N, prod(bins)) for a list; entries in [0, 1]
        with unit L2 norm. The inner product of two vectors is their Bhattacharyya coefficient.
    """
    _space(space)
    if _many(image):
        return (
            np.stack([color_histogram(im, space=space, bins=bins) for im in image])
            if image
            else np.zeros((0, int(np.prod(_bins(bins)))), np.float32)
        )
    import cv2

    b = _bins(bins)
    arr = _convert(_rgb(image), space)
    ranges = [v for r in _RANGES[space] for v in r]
    hist = cv2.calcHist([arr], [0, 1, 2], None, list(b), ranges).ravel().astype(np.float64)
    hist /= max(hist.sum(), 1.0)
    return np.sqrt(hist).astype(np.float32)


def _bins(bins) -> tuple:
    b = (bins,) * 3 if checks.is_integer(bins) else tuple(bins) if isinstance(bins, (tuple, list)) else ()
    if len(b) != 3 or not all(checks.is_integer(x) and 1 <= x <= 256 for x in b):
        raise ValueError(f"bins={checks.short(bins)}: expected an int or three ints, each 1 … 256")
    return tuple(int(x) for x in b)


def color_moments(image, *, space: str = "hsv") -> np.ndarray:
    """Mean, standard deviation and skewness of each colour channel (Stricker and Orengo's colour moments).

    Channel values are scaled to [0, 1] first. Skewness is the signed cube root of the third central moment,
    so all nine numbers share the channel's unit and Euclidean distance weighs them alike.

    Parameters
    ----------
    image : image or list of images
    space : {"hsv", "rgb"}

    Returns
    -------
    numpy.ndarray
        float32, shape (9,) ordered ``[mean_0, mean_1, mean_2, std_0, std_1, std_2, skew_0, skew_1, skew_2]``,
        or (N, 9) for a list. Means and standard deviations lie in [0, 1], skewness in [-1, 1].
        Natural distance: L2.
    """
    _space(space)
    if _many(image):
        return np.stack([color_moments(im, space=space) for im in image]) if image else np.zeros((0, 9), np.float32)
    arr = _convert(_rgb(image), space).reshape(-1, 3).astype(np.float64)
    arr /= np.array((180.0, 255.0, 255.0) if space == "hsv" else (255.0, 255.0, 255.0))
    mean = arr.mean(axis=0)
    centred = arr - mean
    std = np.sqrt((centred**2).mean(axis=0))
    skew = np.cbrt((centred**3).mean(axis=0))
    return np.concatenate([mean, std, skew]).astype(np.float32)


# ----------------------------------------------------------------------------- local features

_LOCAL_SIDE = 512
_ORB_BORDER = 15  # edgeThreshold and patchSize: ORB's default 31 loses the border, most of a small image


def local_features(
    image,
    *,
    kind: str = "sift",
    max_features: int = 500,
    side: int = _LOCAL_SIDE,
    enlarge: bool = False,
    grid: int | None = None,
) -> np.ndarray:
    """Detect keypoints and compute their OpenCV descriptors on the grey image.

    Parameters
    ----------
    image : image
        Reduced to at most ``side`` pixels on its longer side first (area interpolation).
    kind : {"sift", "orb"}
    max_features : int
        At most this many keypoints (the strongest), ≥ 1.
    side : int
        Longer side the grey image is reduced to (default 512), 1 … 4096.
    enlarge : bool
        Also enlarge smaller images to ``side`` (bilinear), so detectors find features on tiny images.
    grid : int, optional
        Describe a dense grid of keypoints with this step (≥ 1, and size ``2 * grid``) instead of detecting them.

    Returns
    -------
    numpy.ndarray
        float32, shape (M, 128) for SIFT (RootSIFT: L1-normalised, square-rooted, values in [0, 1]) or
        (M, 256) for ORB (the 256 descriptor bits unpacked to 0.0/1.0, so squared Euclidean distance is the
        Hamming distance). M may be 0 for a flat image.
    """
    import cv2

    max_features = checks.integer("max_features", max_features, lo=1, hi=2**31 - 1)
    side = checks.integer("side", side, lo=1, hi=4096)
    if grid is not None:
        grid = checks.integer("grid", grid, lo=1)
    if kind == "sift":
        det = cv2.SIFT_create(nfeatures=max_features)
        dim = 128
    elif kind == "orb":
        det = cv2.ORB_create(nfeatures=max_features, edgeThreshold=_ORB_BORDER, patchSize=_ORB_BORDER)
        dim = 256
    else:
        raise ValueError(f"kind={checks.short(kind)}: expected 'sift' or 'orb'")
    gray = _gray_at(image, side, enlarge)
    if kind == "orb" and min(gray.shape) < 2:  # OpenCV's ORB fails on one-pixel-thin images (no pyramid)
        return np.zeros((0, dim), np.float32)
    if grid:
        h, w = gray.shape
        margin = 8 if kind == "sift" else 16
        kps = [
            cv2.KeyPoint(float(x), float(y), float(2 * grid))
            for y in range(margin, h - margin + 1, grid)
            for x in range(margin, w - margin + 1, grid)
        ]
        if not kps:  # no grid point inside the margins (OpenCV's compute fails on an empty list)
            return np.zeros((0, dim), np.float32)
        _, desc = det.compute(gray, kps)
    else:
        _, desc = det.detectAndCompute(gray, None)
    if desc is None or len(desc) == 0:
        return np.zeros((0, dim), np.float32)
    if kind == "orb":
        return np.unpackbits(desc, axis=1).astype(np.float32)
    desc = desc.astype(np.float32)
    desc /= np.maximum(desc.sum(axis=1, keepdims=True), 1e-12)
    return np.sqrt(desc)


def _gray_at(image, side: int, enlarge: bool) -> np.ndarray:
    """The grey uint8 image with its longer side reduced to ``side`` (or enlarged to it when ``enlarge``)."""
    import cv2

    gray = load_image(image, mode="gray")
    h, w = gray.shape
    if max(h, w) > side:
        return resize_to_fit(gray, side)
    if enlarge and max(h, w) < side:
        scale = side / max(h, w)
        return cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_LINEAR)
    return gray


@dataclass(frozen=True)
class Vocabulary:
    """A visual vocabulary: k-means centres of local descriptors.

    Attributes
    ----------
    kind : {"sift", "orb"}
    centers : numpy.ndarray
        float32, shape (K, 128) or (K, 256).
    """

    kind: str
    centers: np.ndarray

    @property
    def size(self) -> int:
        return int(self.centers.shape[0])

    def save(self, path) -> None:
        """Write the centres as a ``.npy`` file (no pickling)."""
        np.save(Path(path), np.ascontiguousarray(self.centers, dtype=np.float32), allow_pickle=False)

    @classmethod
    def load(cls, path, *, kind: str) -> Vocabulary:
        return cls(kind, np.load(Path(path), allow_pickle=False).astype(np.float32))


def learn_vocabulary(
    images,
    *,
    kind: str = "sift",
    size: int = 256,
    max_features: int = 300,
    max_descriptors: int = 100_000,
    seed: int = 0,
) -> Vocabulary:
    """Learn a visual vocabulary with k-means (FAISS) over the local descriptors of ``images``.

    Parameters
    ----------
    images : list of images, or list of (M_i, D) descriptor arrays from :func:`local_features`
    kind : {"sift", "orb"}
    size : int
        Number of visual words (≥ 1); lowered to the number of descriptors when there are fewer.
    max_features : int
        Keypoints per image (≥ 1).
    max_descriptors : int
        A random sample of at most this many descriptors (≥ 1) is clustered.
    seed : int
        0 … 2**31 − 1.

    Returns
    -------
    Vocabulary

    Raises
    ------
    ValueError
        If the images have no keypoints at all, a descriptor array holds NaN or infinity, or a parameter is out of
        its bounds.
    """
    import faiss

    if kind not in ("sift", "orb"):
        raise ValueError(f"kind={checks.short(kind)}: expected 'sift' or 'orb'")
    size = checks.integer("size", size, lo=1)
    checks.integer("max_features", max_features, lo=1)
    max_descriptors = checks.integer("max_descriptors", max_descriptors, lo=1)
    seed = checks.integer("seed", seed, lo=0, hi=2**31 - 1)
    if not isinstance(images, (list, tuple)):
        raise ValueError(f"images must be a list of images or descriptor arrays, got {checks.short(images)}")
    descs = [
        checks.finite("images[]", d) if _is_desc(d, kind) else local_features(d, kind=kind, max_features=max_features)
        for d in images
    ]
    allx = np.concatenate([d for d in descs if len(d)], axis=0) if any(len(d) for d in descs) else None
    if allx is None:
        raise ValueError("learn_vocabulary: the images have no keypoints (flat or tiny images?)")
    rng = np.random.default_rng(seed)
    if len(allx) > max_descriptors:
        allx = allx[rng.choice(len(allx), max_descriptors, replace=False)]
    k = int(min(size, len(allx)))
    km = faiss.Kmeans(
        allx.shape[1], k, niter=20, seed=seed, verbose=False, min_points_per_centroid=1, max_points_per_centroid=10_000
    )
    km.train(np.ascontiguousarray(allx, dtype=np.float32))
    return Vocabulary(kind, km.centroids.astype(np.float32))


def _is_desc(x, kind) -> bool:
    return (
        isinstance(x, np.ndarray)
        and x.ndim == 2
        and x.dtype == np.float32
        and x.shape[1] == (128 if kind == "sift" else 256)
    )


def visual_words(descriptors: np.ndarray, *, vocabulary: Vocabulary) -> np.ndarray:
    """Index of the nearest visual word (squared L2, exact) of each descriptor.

    Parameters
    ----------
    descriptors : numpy.ndarray
        float32, shape (M, D) from :func:`local_features`.
    vocabulary : Vocabulary

    Returns
    -------
    numpy.ndarray
        int64, shape (M,), values in ``0 … vocabulary.size - 1``.
    """
    import faiss

    descriptors = _descriptor_rows(descriptors, vocabulary)
    if len(descriptors) == 0:
        return np.zeros(0, np.int64)
    index = faiss.IndexFlatL2(vocabulary.centers.shape[1])
    index.add(np.ascontiguousarray(vocabulary.centers, dtype=np.float32))
    _, words = index.search(np.ascontiguousarray(descriptors, dtype=np.float32), 1)
    return words[:, 0].astype(np.int64)


def _descriptor_rows(descriptors, vocabulary: Vocabulary) -> np.ndarray:
    """``descriptors`` as an M×D array of finite numbers with the vocabulary's D, or a ValueError (also when
    ``vocabulary`` is not a :class:`Vocabulary`)."""
    if not isinstance(vocabulary, Vocabulary):
        raise ValueError(f"vocabulary must be a Vocabulary, got {checks.short(vocabulary)}")
    if descriptors is None or isinstance(descriptors, str):
        raise ValueError(f"descriptors must be an M×D array, got {checks.short(descriptors)}")
    d = checks.numbers_array("descriptors", descriptors)
    dim = vocabulary.centers.shape[1]
    if d.size == 0 and d.ndim <= 2:
        return np.zeros((0, dim), np.float32)
    if d.ndim != 2 or d.shape[1] != dim:
        raise ValueError(f"descriptors must be M×{dim} for this vocabulary, got shape {d.shape}")
    return d


def bovw(descriptors: np.ndarray, *, vocabulary: Vocabulary) -> np.ndarray:
    """Aggregate local descriptors into a visual-word histogram (hard assignment), L1-normalised, square-rooted.

    Parameters
    ----------
    descriptors, vocabulary
        As for :func:`visual_words`, which assigns the words.

    Returns
    -------
    numpy.ndarray
        float32, shape (K,), values in [0, 1], unit L2 norm (all zeros when M = 0).
        Inner product = Bhattacharyya coefficient of the word histograms.
    """
    descriptors = _descriptor_rows(descriptors, vocabulary)
    hist = np.zeros(vocabulary.size, np.float64)
    if len(descriptors):
        hist = np.bincount(visual_words(descriptors, vocabulary=vocabulary), minlength=vocabulary.size)
        hist = hist.astype(np.float64) / len(descriptors)
    return np.sqrt(hist).astype(np.float32)


def _bovw_images(images, vocabulary: Vocabulary, kind: str, max_features: int) -> np.ndarray:
    if not isinstance(vocabulary, Vocabulary):
        raise ValueError(f"vocabulary must be a Vocabulary, got {checks.short(vocabulary)}")
    checks.integer("max_features", max_features, lo=1)
    if vocabulary.kind != kind:
        raise ValueError(f"vocabulary is for {vocabulary.kind!r} descriptors, not {kind!r}")
    if _many(images):
        out = [bovw(local_features(im, kind=kind, max_features=max_features), vocabulary=vocabulary) for im in images]
        return np.stack(out) if out else np.zeros((0, vocabulary.size), np.float32)
    return bovw(local_features(images, kind=kind, max_features=max_features), vocabulary=vocabulary)


def sift_bovw(image, *, vocabulary: Vocabulary, max_features: int = 300) -> np.ndarray:
    """Bag of visual words over RootSIFT descriptors: robust to rotation, scaling and moderate stretching.

    Parameters
    ----------
    image : image or list of images
    vocabulary : Vocabulary
        From :func:`learn_vocabulary` with ``kind="sift"``.
    max_features : int

    Returns
    -------
    numpy.ndarray
        float32, shape (K,) or (N, K); see :func:`bovw`.
    """
    return _bovw_images(image, vocabulary, "sift", max_features)


def orb_bovw(image, *, vocabulary: Vocabulary, max_features: int = 300) -> np.ndarray:
    """Bag of visual words over ORB descriptors (bits as 0/1 floats); faster than SIFT, less distinctive.

    Returns
    -------
    numpy.ndarray
        float32, shape (K,) or (N, K); see :func:`bovw`.
    """
    return _bovw_images(image, vocabulary, "orb", max_features)


def cnn(
    image, *, model, batch_size: int = 32, progress=None, backend: str = "auto", precision: str = "fp32"
) -> np.ndarray:
    """Global CNN embedding from :func:`cnnwidgets.engine.models.embed`.

    Parameters
    ----------
    image : image or list of images
    model : torch.nn.Module or str
        A model from :func:`cnnwidgets.engine.models.create_model`, or a registry name
        (the process-wide :func:`cnnwidgets.engine.models.shared_model`).
    batch_size : int
    progress : bool or None
    backend : {"auto", "onnx", "torch"}
        ONNX Runtime or torch (see :mod:`cnnwidgets.engine.models.runtime`).
    precision : {"fp32", "bf16", "int8", "auto"}
        As for :func:`cnnwidgets.engine.models.embed`.

    Returns
    -------
    numpy.ndarray
        float32, shape (D,) or (N, D), unit L2 norm. Natural distance: cosine (inner product).
    """
    from .. import models

    if isinstance(model, str):
        model = models.shared_model(model)
    single = not _many(image)
    out = models.embed(
        model,
        [image] if single else list(image),
        batch_size=batch_size,
        progress=progress,
        backend=backend,
        precision=precision,
    )
    out = np.ascontiguousarray(out, dtype=np.float32)
    return out[0] if single else out


def cnn_with_tags(
    images, *, model, topk: int = 5, batch_size: int = 32, progress=None, backend: str = "auto", precision="fp32"
) -> tuple[np.ndarray, list]:
    """CNN embeddings and top-k class predictions of a list of images from one forward pass each.

    Equals ``(cnn(images, model=model), models.classify(model, images, topk=topk))`` at the cost of :func:`cnn`:
    one forward pass gives the pooled features and the logits (:func:`cnnwidgets.engine.models.embed_and_classify`),
    run as :func:`cnnwidgets.engine.models.embed` runs it (ONNX Runtime on the CPU, or torch with BatchNorm folded,
    in chunks of 8 images).

    Parameters
    ----------
    images : list of images
    model : torch.nn.Module or str
        From :func:`cnnwidgets.engine.models.create_model`, or a registry name.
    topk : int
    batch_size : int
    progress : bool or None
    backend : {"auto", "onnx", "torch"}
    precision : {"fp32", "bf16", "int8", "auto"}

    Returns
    -------
    (numpy.ndarray, list)
        float32 (N, D) unit-norm embeddings, and per image a list of ``(label, probability)``, best first.
    """
    from .. import models

    images = list(images)
    if not images:
        raise ValueError("cnn_with_tags: no images given")
    if isinstance(model, str):
        model = models.shared_model(model)
    vecs, tags = models.embed_and_classify(
        model, images, topk=topk, batch_size=batch_size, progress=progress, backend=backend, precision=precision
    )
    return np.ascontiguousarray(vecs, dtype=np.float32), tags


adopt_public_names(globals())
