"""The bag-of-visual-words classifier: the retrieval pipeline of :mod:`cnnwidgets.engine.features`
(local descriptors, k-means vocabulary, Hellinger word histograms) as the descriptor of a
:class:`~cnnwidgets.engine.train.DescriptorClassifier` (standardisation + SVM)."""

from __future__ import annotations

import numpy as np

from .data import as_imageset, is_tensor
from .descriptors import DescriptorClassifier, fit_svm

__all__ = ["BoVWClassifier", "bovw_classifier"]

_DETECTORS = ("sift", "orb")
_DIMS = {"sift": 128, "orb": 256}


class BoVWClassifier(DescriptorClassifier):
    """Bag of visual words + SVM, made by :func:`bovw_classifier`: a :class:`DescriptorClassifier` whose descriptor
    is the word histogram of :meth:`histograms`.

    Attributes
    ----------
    detector : {"sift", "orb"}
        Also :attr:`descriptor`.
    vocabulary : numpy.ndarray
        K×D float32 visual words (k-means centres of RootSIFT descriptors, or of ORB descriptors unpacked to
        256 bits of 0/1, so squared Euclidean distance between them is the Hamming distance).
    svm : sklearn.pipeline.Pipeline
        Standardisation + SVM (:func:`make_svm`) on the word histograms.
    kernel : {"linear", "rbf"}
    classes : tuple of str
    image_size : int
        Longer image side the images are resized to before features are detected.
    grid : int or None
        Step of the dense keypoint grid, or None to use the detector's keypoints.
    """

    def __init__(self, detector, vocabulary, svm, classes, *, image_size, grid, max_features, kernel="linear"):
        super().__init__(detector, svm, classes, kernel=kernel)
        self.detector, self.vocabulary = detector, vocabulary
        self.image_size, self.grid, self.max_features = image_size, grid, max_features

    @property
    def name(self) -> str:
        """What the classifier is, for tables: ``"BoVW (SIFT, 50 words) + linear SVM"``."""
        svm = "linear" if self.kernel == "linear" else "RBF"
        return f"BoVW ({self.detector.upper()}, {len(self.vocabulary)} words) + {svm} SVM"

    def descriptors(self, image) -> np.ndarray:
        """M×D float32 local descriptors of one image (M may be 0); see :func:`cnnwidgets.engine.features.local_features`."""
        return _descriptors(image, self.detector, self.image_size, self.grid, self.max_features)

    def words(self, descriptors) -> np.ndarray:
        """Index of the nearest visual word for each descriptor (M int64)."""
        from ..features import visual_words

        return visual_words(np.asarray(descriptors, np.float32), vocabulary=self._vocabulary())

    def histograms(self, images) -> np.ndarray:
        """N×K float32 word histograms, L1-normalised and square-rooted (unit L2 norm; zero without features)."""
        from ..features import bovw

        vocab = self._vocabulary()
        return np.stack([bovw(self.descriptors(im), vocabulary=vocab) for im in images])

    def features(self, images) -> np.ndarray:
        """The :meth:`histograms` of a list or array of N images: N×K float32."""
        return self.histograms(list(images))

    def predict(self, images, *, features=None, histograms=None) -> np.ndarray:
        """N int64 class indices (``features`` or ``histograms``, from :meth:`histograms`, skip the descriptor)."""
        return super().predict(images, features=histograms if features is None else features)

    def _vocabulary(self):
        from ..features import Vocabulary

        return Vocabulary(self.detector, self.vocabulary)


def _descriptors(image, detector, image_size, grid, max_features) -> np.ndarray:
    from ..features import local_features

    arr = image.cpu() if is_tensor(image) else image
    return local_features(arr, kind=detector, max_features=max_features, side=image_size, enlarge=True, grid=grid)


def bovw_classifier(
    images,
    labels=None,
    *,
    detector: str = "sift",
    vocabulary=100,
    kernel: str = "linear",
    C: float = 1.0,
    image_size: int = 128,
    grid: int | None = None,
    max_features: int = 500,
    max_descriptors: int = 50_000,
    seed: int = 0,
) -> BoVWClassifier:
    """Train the classical bag-of-visual-words classifier the CNN replaced.

    Steps (those of the retrieval descriptors in :mod:`cnnwidgets.engine.features`): detect local features
    with OpenCV (RootSIFT or ORB) on each gray image resized to ``image_size``; cluster a sample of the
    descriptors with k-means (FAISS) into a vocabulary of visual words; describe each image by its
    L1-normalised, square-rooted histogram of nearest words; train an SVM (:func:`make_svm`: standardisation,
    then scikit-learn ``LinearSVC`` or an RBF ``SVC``) on the histograms.
    ``descriptor_classifier(images, descriptor="sift", options={...})`` calls this.

    Parameters
    ----------
    images : array, list of images, or a labelled dataset
        Training images (any kind :func:`cnnwidgets.io.load_image` reads), or an ImageSet /
        ImageFolder / torch Dataset when ``labels`` is None.
    labels : array of int, optional
        N class indices for plain images.
    detector : {"sift", "orb"}
    vocabulary : int or numpy.ndarray
        Number of visual words for k-means, or a K×D array of words to use as they are
        (D = 128 for SIFT, 256 for ORB's unpacked bits).
    kernel : {"linear", "rbf"}
        The SVM (:func:`make_svm`).
    C : float
        SVM regularisation.
    image_size : int
        Longer side images are resized to (small images are enlarged so detectors find features).
    grid : int, optional
        Sample descriptors on a dense grid with this step instead of detecting keypoints.
    max_features : int
        Keypoints per image kept by the detector.
    max_descriptors : int
        At most this many descriptors (a seeded random sample) go into k-means.
    seed : int
        Seeds the descriptor sample, k-means and the SVM.

    Returns
    -------
    BoVWClassifier

    Raises
    ------
    ValueError
        Unknown detector or kernel, a vocabulary of the wrong width, or too few features for the vocabulary.
    """
    from ..features import Vocabulary, bovw, learn_vocabulary
    from .descriptors import make_svm

    if detector not in _DETECTORS:
        raise ValueError(f"detector must be one of {_DETECTORS}, got {detector!r}")
    data = as_imageset(images if labels is None else (images, labels), name="images")
    if len(np.unique(data.labels)) < 2:
        raise ValueError("images: need at least two classes to train an SVM")
    make_svm(kernel=kernel, C=C, seed=seed)  # checks the options before the descriptors are computed
    descs = [_descriptors(im, detector, image_size, grid, max_features) for im in data.images]
    dim = _DIMS[detector]
    if isinstance(vocabulary, (int, np.integer)):
        k = int(vocabulary)
        if k < 2:
            raise ValueError(f"vocabulary must have at least 2 words, got {k}")
        found = sum(len(d) for d in descs)
        if found < k:
            raise ValueError(f"images: only {found} {detector.upper()} descriptors found, fewer than {k} words")
        vocab = learn_vocabulary(descs, kind=detector, size=k, max_descriptors=max_descriptors, seed=seed)
    else:
        centers = np.asarray(vocabulary, np.float32)
        if centers.ndim != 2 or centers.shape[1] != dim or len(centers) < 2:
            raise ValueError(f"vocabulary must be an int or a K×{dim} array for {detector}, got shape {centers.shape}")
        vocab = Vocabulary(detector, centers.copy())
    hists = np.stack([bovw(d, vocabulary=vocab) for d in descs])
    svm = fit_svm(hists, data.labels, kernel=kernel, C=C, seed=seed)
    return BoVWClassifier(
        detector,
        vocab.centers,
        svm,
        data.classes,
        image_size=image_size,
        grid=grid,
        max_features=max_features,
        kernel=kernel,
    )
