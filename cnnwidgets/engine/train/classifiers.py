"""Classifiers on a frozen pretrained backbone: :func:`transfer_learn` → :class:`LinearHeadClassifier`
(a trained linear head), and :class:`PrototypeClassifier` (few-shot, nearest class-mean embedding)."""

from __future__ import annotations

import numpy as np

from ...datasets import ImageSet
from .data import as_imageset
from .fit import fit

__all__ = ["LinearHeadClassifier", "transfer_learn", "PrototypeClassifier"]


def _embed(model, images, batch_size, progress):
    from .. import models

    feats = models.embed(model, images, batch_size=batch_size, progress=progress)
    return np.asarray(feats, np.float32)


def resolve_backbone(model, device):
    """``model`` itself, or for a registry name the shared pretrained model (:func:`~cnnwidgets.engine.models.shared_model`)."""
    if isinstance(model, str):
        from .. import models

        return models.shared_model(model, pretrained=True, device=device)
    return model


class _ClassScores:
    """``predict``, ``classify`` and ``score`` of a classifier whose ``_class_scores(images, features)`` are N×K
    float32 scores per class (higher is better: probabilities, or similarities to prototypes) and whose
    ``_class_names()`` name the K classes."""

    _topk = 5  # classes listed by classify when topk is not given

    def predict(self, images, *, features=None) -> np.ndarray:
        """N int64 indices of the best-scored class (``features`` may be given to skip the backbone)."""
        return self._class_scores(images, features).argmax(1).astype(np.int64)

    def classify(self, images, *, topk: int | None = None):
        """``[(class name, score), …]`` per image, best first (a list of such lists)."""
        scores = self._class_scores(images, None)
        k = min(self._topk if topk is None else topk, scores.shape[1])
        names = self._class_names()
        return [[(names[j], float(row[j])) for j in np.argsort(-row)[:k]] for row in scores]

    def score(self, dataset) -> float:
        """Accuracy on a labelled dataset."""
        data = as_imageset(dataset)
        return float((self.predict(data.images) == data.labels).mean())


class LinearHeadClassifier(_ClassScores):
    """A frozen pretrained backbone followed by a trained linear layer.

    Made by :func:`transfer_learn`. Images are embedded with
    :func:`cnnwidgets.engine.models.embed` (L2-normalised pooled backbone features) and the
    head maps those features to class logits.

    Attributes
    ----------
    backbone : torch.nn.Module
        Unchanged by training.
    head : torch.nn.Linear
        D → K, on the CPU.
    classes : tuple of str
    history : History
        The head's training run.
    """

    def __init__(self, backbone, head, classes, history, *, batch_size: int = 32):
        self.backbone, self.head, self.classes, self.history = backbone, head, tuple(classes), history
        self.batch_size = batch_size

    def features(self, images, *, progress=None) -> np.ndarray:
        """N×D float32 L2-normalised backbone features."""
        return _embed(self.backbone, images, self.batch_size, progress)

    def predict_proba(self, images, *, features=None) -> np.ndarray:
        """N×K float32 class probabilities (``features`` may be given to skip the backbone)."""
        import torch

        f = self.features(images) if features is None else np.asarray(features, np.float32)
        with torch.inference_mode():
            return torch.softmax(self.head(torch.from_numpy(f)), 1).numpy()

    def _class_scores(self, images, features) -> np.ndarray:
        return self.predict_proba(images, features=features)

    def _class_names(self) -> tuple:
        return self.classes


def transfer_learn(
    model,
    dataset,
    *,
    epochs: int = 100,
    lr: float = 0.01,
    val=None,
    batch_size: int = 64,
    weight_decay: float = 1e-4,
    seed: int | None = 0,
    device=None,
    callback=None,
    stop=None,
    progress: bool = True,
) -> LinearHeadClassifier:
    """Transfer learning: keep a pretrained backbone frozen and fit a linear head on labelled images.

    The backbone's features are computed once (inference mode, no gradients), which is the same
    as training a frozen backbone with a new last layer, only much faster; then a
    ``torch.nn.Linear`` head is trained on them with :func:`fit`.

    Parameters
    ----------
    model : str or torch.nn.Module
        A registry name (``"efficientnet_lite0"``) or a model from :func:`~cnnwidgets.engine.models.create_model`.
    dataset : ImageSet, ImageFolder, (images, labels) or torch Dataset
        E.g. ``ImageFolder("my_photos/")`` with one subfolder per class.
    epochs, lr, batch_size, weight_decay, seed, callback, stop, progress
        Passed to :func:`fit` for the head.
    val : float, dataset or None
        Held-out fraction or a separate labelled dataset.

    Returns
    -------
    LinearHeadClassifier
    """
    import torch

    backbone = resolve_backbone(model, device)
    data = as_imageset(dataset)
    feats = torch.from_numpy(_embed(backbone, data.images, 32, progress or None))
    val_arg = val
    if val is not None and not isinstance(val, float):
        vdata = as_imageset(val, name="val")
        val_arg = (torch.from_numpy(_embed(backbone, vdata.images, 32, progress or None)), vdata.labels)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(int(seed))
        head = torch.nn.Linear(feats.shape[1], len(data.classes))
    history = fit(
        head,
        ImageSet(feats, data.labels, data.classes),
        epochs=epochs,
        lr=lr,
        val=val_arg,
        batch_size=batch_size,
        weight_decay=weight_decay,
        seed=seed,
        device="cpu",
        callback=callback,
        stop=stop,
        progress=progress,
    )
    return LinearHeadClassifier(backbone, head.cpu().eval(), data.classes, history)


# ============================================================================ few-shot


class PrototypeClassifier(_ClassScores):
    """Few-shot classification: each class is the mean of its images' embeddings.

    With as few as 5 labelled images per class, an image is given the class whose prototype
    is nearest to its embedding (the prototypical-network rule, on a frozen pretrained backbone).

    Parameters
    ----------
    model : str, torch.nn.Module or callable
        A registry name, a registry model (embedded with :func:`cnnwidgets.engine.models.embed`),
        or any callable mapping a list/array of N images to an N×D array of features.
    metric : {"cosine", "euclidean"}
        ``"cosine"``: prototypes are the L2-normalised class means and the score is the dot product;
        ``"euclidean"``: prototypes are the plain class means and the score is minus the squared distance.
    batch_size : int
    device : str or torch.device, optional
        Used when ``model`` is a name.

    Attributes
    ----------
    prototypes_ : numpy.ndarray
        K×D float32, after :meth:`fit`.
    classes_ : tuple of str
    counts_ : numpy.ndarray
        Support images per class.
    """

    _topk = 3

    def __init__(self, model="efficientnet_lite0", *, metric: str = "cosine", batch_size: int = 32, device=None):
        if metric not in ("cosine", "euclidean"):
            raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
        self.model, self.metric, self.batch_size, self.device = model, metric, batch_size, device
        self._backbone = self.prototypes_ = None

    def features(self, images) -> np.ndarray:
        """N×D float32 features of ``images`` from the classifier's model."""
        m = self.model
        if isinstance(m, str):
            if self._backbone is None:
                self._backbone = resolve_backbone(m, self.device)
            m = self._backbone
        import torch

        if isinstance(m, torch.nn.Module):
            return _embed(m, images, self.batch_size, None)
        f = np.asarray(m(images), np.float32)
        if f.ndim != 2 or len(f) != len(images):
            raise ValueError(f"the feature function returned shape {f.shape} for {len(images)} images; expected N×D")
        return f

    def fit(self, dataset, labels=None, *, classes=None, min_shots: int = 1) -> PrototypeClassifier:
        """Compute one prototype per class from labelled support images.

        Parameters
        ----------
        dataset : ImageSet, ImageFolder, torch Dataset, or images (with ``labels``)
        labels : array of int, optional
            Given when ``dataset`` is a plain list/array of images.
        classes : sequence of str, optional
            Class names for plain labels.
        min_shots : int
            Refuse classes with fewer support images than this.

        Returns
        -------
        PrototypeClassifier
            ``self``.

        Raises
        ------
        ValueError
            A class with fewer than ``min_shots`` images (named in the message).
        """
        data = as_imageset(dataset if labels is None else (dataset, labels), name="support set")
        cls = tuple(classes) if classes is not None else data.classes
        if len(cls) <= data.labels.max():
            raise ValueError(f"{len(cls)} class names for labels up to {data.labels.max()}")
        counts = np.bincount(data.labels, minlength=len(cls))
        short = [f"{cls[k]!r} ({counts[k]})" for k in range(len(cls)) if counts[k] < max(1, min_shots)]
        if short:
            raise ValueError(
                f"support set: need at least {max(1, min_shots)} images per class; too few for {', '.join(short)}"
            )
        feats = self.features(data.images)
        protos = np.stack([feats[data.labels == k].mean(0) for k in range(len(cls))]).astype(np.float32)
        if self.metric == "cosine":
            protos /= np.maximum(np.linalg.norm(protos, axis=1, keepdims=True), 1e-12)
        self.prototypes_, self.classes_, self.counts_ = protos, cls, counts
        return self

    def _check_fitted(self):
        if self.prototypes_ is None:
            raise RuntimeError("PrototypeClassifier: call fit() with a support set first")

    def scores(self, images, *, features=None) -> np.ndarray:
        """N×K float32 similarity to each prototype (higher is nearer)."""
        self._check_fitted()
        f = self.features(images) if features is None else np.asarray(features, np.float32)
        p = self.prototypes_
        if self.metric == "cosine":
            f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
            return (f @ p.T).astype(np.float32)
        d2 = (f * f).sum(1, keepdims=True) - 2.0 * f @ p.T + (p * p).sum(1)[None]
        return (-np.maximum(d2, 0.0)).astype(np.float32)

    def _class_scores(self, images, features) -> np.ndarray:
        return self.scores(images, features=features)

    def _class_names(self) -> tuple:
        return self.classes_
