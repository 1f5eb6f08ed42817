"""Classical classifiers: a global image descriptor (HOG, GIST, colour, texture, a bag of visual words) followed by
standardisation and a support vector machine.

:func:`descriptor_classifier` trains one for any descriptor of :mod:`cnnwidgets.engine.features` or any function
from images to feature vectors; the bag of visual words (:func:`~cnnwidgets.engine.train.bovw_classifier`, whose
vocabulary is learnt from the training images) is one case of it, and every case shares one SVM code path.
"""

from __future__ import annotations

import numpy as np

from .data import as_imageset, is_tensor

__all__ = [
    "DescriptorClassifier",
    "descriptor_classifier",
    "make_svm",
    "fit_svm",
    "GLOBAL_DESCRIPTORS",
    "BAG_OF_WORDS",
    "SVM_KERNELS",
]

GLOBAL_DESCRIPTORS = ("hog", "gist", "glcm", "color_set", "correlogram", "color", "moments")
"""Names of the :mod:`cnnwidgets.engine.features` descriptors :func:`descriptor_classifier` computes as they are."""
BAG_OF_WORDS = ("sift", "orb")
"""Descriptor names that learn a visual vocabulary from the training images first (:func:`bovw_classifier`)."""
SVM_KERNELS = ("linear", "rbf")
"""``"linear"``: scikit-learn ``LinearSVC``; ``"rbf"``: ``SVC(kernel="rbf", gamma="scale")``."""

_LABELS = {
    "hog": "HOG",
    "gist": "GIST",
    "glcm": "GLCM",
    "color_set": "colour set",
    "correlogram": "colour correlogram",
    "color": "colour histogram",
    "moments": "colour moments",
}


def _function(name: str):
    from .. import features

    return {
        "hog": features.hog,
        "gist": features.gist,
        "glcm": features.glcm,
        "color_set": features.color_set,
        "correlogram": features.color_correlogram,
        "color": features.color_histogram,
        "moments": features.color_moments,
    }[name]


def make_svm(*, kernel: str = "linear", C: float = 1.0, seed: int = 0):
    """The untrained SVM every classical classifier uses: ``StandardScaler`` followed by the kernel's SVM.

    Parameters
    ----------
    kernel : {"linear", "rbf"}
        ``"linear"``: ``LinearSVC(C=C, random_state=seed, max_iter=20_000)`` (one-vs-rest);
        ``"rbf"``: ``SVC(kernel="rbf", C=C, gamma="scale")`` (one-vs-one).
    C : float
        Regularisation (larger: fewer training errors allowed).
    seed : int
        Seeds ``LinearSVC``'s coordinate descent.

    Returns
    -------
    sklearn.pipeline.Pipeline
    """
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    if kernel not in SVM_KERNELS:
        raise ValueError(f"kernel={kernel!r}: expected one of {SVM_KERNELS}")
    if not C > 0:
        raise ValueError(f"C={C!r}: expected a positive number")
    svm = LinearSVC(C=C, random_state=seed, max_iter=20_000) if kernel == "linear" else SVC(C=C, gamma="scale")
    return make_pipeline(StandardScaler(), svm)


def _as_list(images) -> list:
    return [im.cpu() if is_tensor(im) else im for im in images]


class DescriptorClassifier:
    """A global image descriptor followed by standardisation and an SVM, made by :func:`descriptor_classifier`.

    Attributes
    ----------
    descriptor : str or callable
        A name of :data:`GLOBAL_DESCRIPTORS` (or ``"sift"`` / ``"orb"`` for :class:`BoVWClassifier`), or the function
        from a list of N images to an N×D array that was given.
    options : dict
        Keyword arguments the descriptor function is called with.
    svm : sklearn.pipeline.Pipeline
        From :func:`make_svm`, trained on the training images' descriptors.
    kernel : {"linear", "rbf"}
    classes : tuple of str
    """

    def __init__(self, descriptor, svm, classes, *, kernel: str = "linear", options=None):
        self.descriptor, self.svm, self.classes, self.kernel = descriptor, svm, tuple(classes), kernel
        self.options = dict(options or {})

    @property
    def name(self) -> str:
        """What the classifier is, for tables: ``"HOG + linear SVM"``."""
        d = self.descriptor
        label = _LABELS.get(d, d) if isinstance(d, str) else getattr(d, "__name__", type(d).__name__)
        return f"{label} + {'linear' if self.kernel == 'linear' else 'RBF'} SVM"

    def features(self, images) -> np.ndarray:
        """N×D float32 descriptors of a list or array of N images (what the SVM sees, before standardisation)."""
        images = _as_list(images)
        fn = _function(self.descriptor) if isinstance(self.descriptor, str) else self.descriptor
        feats = np.asarray(fn(images, **self.options), np.float32)
        if feats.ndim != 2 or len(feats) != len(images):
            raise ValueError(
                f"descriptor {self.descriptor!r} returned shape {feats.shape} for {len(images)} images; expected N×D"
            )
        return feats

    def predict(self, images, *, features=None) -> np.ndarray:
        """N int64 class indices (``features``, from :meth:`features`, skips the descriptor)."""
        f = self.features(images) if features is None else np.asarray(features, np.float32)
        return np.asarray(self.svm.predict(f), np.int64)

    def score(self, dataset) -> float:
        """Accuracy on a labelled dataset."""
        data = as_imageset(dataset)
        return float((self.predict(data.images) == data.labels).mean())


def fit_svm(features, labels, *, kernel: str = "linear", C: float = 1.0, seed: int = 0):
    """:func:`make_svm` trained on N×D ``features`` and N integer ``labels`` (at least two classes)."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        raise ValueError("images: need at least two classes to train an SVM")
    svm = make_svm(kernel=kernel, C=C, seed=seed)
    svm.fit(np.asarray(features, np.float32), labels)
    return svm


def descriptor_classifier(
    images,
    labels=None,
    *,
    descriptor="hog",
    options=None,
    kernel: str = "linear",
    C: float = 1.0,
    seed: int = 0,
) -> DescriptorClassifier:
    """Train a classical classifier: a global image descriptor, standardised, then an SVM.

    The seed's §7.1 pipeline: each image becomes one fixed-length vector (HOG, GIST, a colour or texture
    descriptor of :mod:`cnnwidgets.engine.features`, or a bag of SIFT/ORB visual words), each dimension is scaled
    to zero mean and unit variance over the training images, and a support vector machine separates the classes.

    Parameters
    ----------
    images : array, list of images, or a labelled dataset
        Training images, or an ImageSet / ImageFolder / torch Dataset when ``labels`` is None.
    labels : array of int, optional
        N class indices for plain images.
    descriptor : str or callable
        One of :data:`GLOBAL_DESCRIPTORS` (``"hog"``, ``"gist"``, ``"glcm"``, ``"color_set"``, ``"correlogram"``,
        ``"color"``, ``"moments"``), one of :data:`BAG_OF_WORDS` (``"sift"``, ``"orb"``: :func:`bovw_classifier`,
        which learns the vocabulary), or a function mapping a list of N images to an N×D array.
    options : dict, optional
        Keyword arguments of the descriptor: for a global descriptor those of its function
        (``{"side": 64}`` for :func:`~cnnwidgets.engine.features.hog`), for a bag of words those of
        :func:`bovw_classifier` (``{"vocabulary": 50, "grid": 8}``).
    kernel : {"linear", "rbf"}
        The SVM (:func:`make_svm`).
    C : float
        SVM regularisation.
    seed : int
        Seeds the SVM (and a bag of words' descriptor sample and k-means).

    Returns
    -------
    DescriptorClassifier
        :class:`BoVWClassifier` for ``"sift"`` and ``"orb"``.

    Raises
    ------
    ValueError
        An unknown descriptor or kernel, fewer than two classes, or a descriptor function that does not return N×D.
    """
    data = as_imageset(images if labels is None else (images, labels), name="images")
    if isinstance(descriptor, str) and descriptor in BAG_OF_WORDS:
        from .bovw import bovw_classifier

        return bovw_classifier(data, detector=descriptor, kernel=kernel, C=C, seed=seed, **(options or {}))
    if isinstance(descriptor, str) and descriptor not in GLOBAL_DESCRIPTORS:
        raise ValueError(
            f"descriptor={descriptor!r}: expected one of {GLOBAL_DESCRIPTORS + BAG_OF_WORDS} or a function"
        )
    if not isinstance(descriptor, str) and not callable(descriptor):
        raise ValueError(f"descriptor={descriptor!r}: expected a descriptor name or a function")
    make_svm(kernel=kernel, C=C, seed=seed)  # checks the options before the descriptors are computed
    if len(np.unique(data.labels)) < 2:
        raise ValueError("images: need at least two classes to train an SVM")
    clf = DescriptorClassifier(descriptor, None, data.classes, kernel=kernel, options=options)
    clf.svm = fit_svm(clf.features(data.images), data.labels, kernel=kernel, C=C, seed=seed)
    return clf
