"""Learning: training loops, transfer learning, few-shot prototypes and the classical descriptor + SVM baselines.

Datasets
--------
Every function here accepts the same kinds of labelled data:

- :class:`cnnwidgets.datasets.ImageSet` (from ``digits()``, ``shapes()`` or :func:`split`),
- :class:`cnnwidgets.datasets.ImageFolder` (class subfolders give the labels),
- a ``(images, labels)`` pair (N×H×W[×C] array or a list of images; N integer labels),
- a ``torch.utils.data.Dataset`` whose items are ``(image, label)``; an image that is already a
  float C×H×W tensor is used as it is, anything else goes through :func:`input_batch`.

The sets this module is meant for (teaching sets, a user's labelled folder) are read into memory once.

Contents
--------
- :mod:`.data`: :func:`as_imageset`, :func:`split`, :func:`input_batch` (images → the float N×C×H×W tensor a
  model takes).
- :mod:`.fit`: :func:`fit` trains any ``torch.nn.Module`` classifier with a progress bar, per-epoch metrics sent
  to a callback and a stop signal; seeded runs on the CPU give identical weights. :func:`predict`,
  :func:`evaluate_classifier`, :func:`confusion_matrix`.
- :mod:`.classifiers`: :func:`transfer_learn` (frozen pretrained backbone + a trained linear head →
  :class:`LinearHeadClassifier`) and :class:`PrototypeClassifier` (few-shot, nearest class-mean embedding).
- :mod:`.descriptors`: :func:`descriptor_classifier`, a global descriptor of :mod:`cnnwidgets.engine.features`
  (HOG, GIST, colour, texture) or any function from images to vectors, standardised, then an SVM
  (:func:`make_svm`) → :class:`DescriptorClassifier`. :mod:`.bovw`: :func:`bovw_classifier`, the
  bag-of-visual-words case (its vocabulary is learnt from the training images) → :class:`BoVWClassifier`.
- :mod:`.compare`: :func:`compare_features` reports accuracy and time per image of descriptors + SVM against CNN
  features + linear head on one split (:func:`compare_bovw_cnn`: the bag of words alone); :func:`format_table`.
"""

from __future__ import annotations

from .._packages import adopt_public_names
from .bovw import BoVWClassifier, bovw_classifier
from .classifiers import LinearHeadClassifier, PrototypeClassifier, transfer_learn
from .compare import compare_bovw_cnn, compare_features, format_table
from .data import as_imageset, input_batch, split
from .data import split_indices as _split_indices  # noqa: F401  (tests/widgets/test_training.py)
from .descriptors import (
    BAG_OF_WORDS,
    GLOBAL_DESCRIPTORS,
    SVM_KERNELS,
    DescriptorClassifier,
    descriptor_classifier,
    make_svm,
)
from .fit import History, confusion_matrix, evaluate_classifier, fit, predict

evaluate = evaluate_classifier
"""The name :func:`evaluate_classifier` had before (``cnnwidgets.index.evaluate`` scores retrieval)."""

__all__ = [
    "History",
    "as_imageset",
    "split",
    "input_batch",
    "fit",
    "predict",
    "evaluate_classifier",
    "evaluate",
    "confusion_matrix",
    "transfer_learn",
    "LinearHeadClassifier",
    "PrototypeClassifier",
    "descriptor_classifier",
    "DescriptorClassifier",
    "make_svm",
    "GLOBAL_DESCRIPTORS",
    "BAG_OF_WORDS",
    "SVM_KERNELS",
    "bovw_classifier",
    "BoVWClassifier",
    "compare_features",
    "compare_bovw_cnn",
    "format_table",
]

adopt_public_names(globals())
