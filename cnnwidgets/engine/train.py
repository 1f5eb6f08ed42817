"""Learning: training loops, transfer learning, few-shot prototypes and the bag-of-visual-words baseline.

Datasets
--------
Every function here accepts the same kinds of labelled data:

- :class:`cnnwidgets.datasets.ImageSet` (from ``digits()``, ``shapes()`` or :func:`split`),
- :class:`cnnwidgets.datasets.ImageFolder` (class subfolders give the labels),
- a ``(images, labels)`` pair (N×H×W[×C] array or a list of images; N integer labels),
- a ``torch.utils.data.Dataset`` whose items are ``(image, label)``; an image that is already a
  float C×H×W tensor is used as it is, anything else goes through :func:`prepare`.

The sets this module is meant for (teaching sets, a user's labelled folder) are read into memory once.

Contents
--------
- :func:`fit` trains any ``torch.nn.Module`` classifier with a progress bar, per-epoch metrics sent to a
  callback and a stop signal; seeded runs on the CPU give identical weights.
- :func:`predict`, :func:`evaluate`, :func:`confusion_matrix`, :func:`split`, :func:`as_imageset`, :func:`prepare`.
- :func:`transfer_learn`: frozen pretrained backbone + a trained linear head → :class:`LinearHeadClassifier`.
- :class:`PrototypeClassifier`: few-shot classification by the nearest class-mean embedding.
- :func:`bovw_classifier`: OpenCV SIFT/ORB descriptors, k-means vocabulary, word histograms, linear SVM
  → :class:`BoVWClassifier`; :func:`compare_bovw_cnn` reports it against CNN features + linear head.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..datasets import ImageSet

__all__ = [
    "History",
    "as_imageset",
    "split",
    "prepare",
    "fit",
    "predict",
    "evaluate",
    "confusion_matrix",
    "transfer_learn",
    "LinearHeadClassifier",
    "PrototypeClassifier",
    "bovw_classifier",
    "BoVWClassifier",
    "compare_bovw_cnn",
    "format_table",
]


# ============================================================================ data


def _is_tensor(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "dtype") and hasattr(x, "shape")


def _class_names(labels: np.ndarray) -> tuple:
    n = int(labels.max()) + 1 if len(labels) else 0
    return tuple(str(i) for i in range(n))


def _is_torch_dataset(obj) -> bool:
    import sys

    data = sys.modules.get("torch.utils.data")  # a torch Dataset exists only once this module is imported
    return data is not None and isinstance(obj, data.Dataset) and hasattr(obj, "__len__")


def as_imageset(dataset, *, name: str = "dataset") -> ImageSet:
    """Read any accepted labelled dataset into an :class:`~cnnwidgets.datasets.ImageSet`.

    Parameters
    ----------
    dataset : ImageSet, ImageFolder, (images, labels) or torch.utils.data.Dataset
        See the module docstring.
    name : str
        How error messages refer to the argument.

    Returns
    -------
    ImageSet
        ``images`` is the original array for array input, else a list (images may differ in size);
        ``labels`` is an int64 array with values in ``0 … len(classes) - 1``. The input is not modified.

    Raises
    ------
    ValueError
        Empty dataset, labels and images of different length, negative labels (e.g. images lying
        directly in an ImageFolder's root instead of a class subfolder), or an unsupported type.
    """
    from ..datasets import ImageFolder

    if isinstance(dataset, ImageSet):
        images, labels, classes = dataset.images, np.asarray(dataset.labels), tuple(dataset.classes)
    elif isinstance(dataset, ImageFolder):
        if not dataset.classes:
            raise ValueError(f"{name}: {dataset.root} has no class subfolders, so its images have no labels")
        unlabelled = [p for p, lab in zip(dataset.paths, dataset.labels) if lab < 0]
        if unlabelled:
            raise ValueError(
                f"{name}: {len(unlabelled)} image(s) lie directly in {dataset.root} instead of a class subfolder, "
                f"e.g. {unlabelled[0].name}"
            )
        images = [dataset[i][0] for i in range(len(dataset))]
        labels, classes = np.asarray(dataset.labels), tuple(dataset.classes)
    elif isinstance(dataset, tuple) and len(dataset) == 2:
        images, labels = dataset
        labels = np.asarray(labels.cpu() if _is_tensor(labels) else labels)
        classes = None
    elif _is_torch_dataset(dataset):
        items = [dataset[i] for i in range(len(dataset))]
        if items and not (isinstance(items[0], (tuple, list)) and len(items[0]) == 2):
            raise ValueError(f"{name}: items of a torch Dataset must be (image, label) pairs")
        images = [x for x, _ in items]
        labels = np.asarray([int(y) for _, y in items])
        classes = tuple(getattr(dataset, "classes", ()) or ()) or None
    else:
        raise ValueError(
            f"{name}: expected an ImageSet, ImageFolder, (images, labels) pair or torch Dataset, got {type(dataset).__name__}"
        )
    if len(images) == 0:
        raise ValueError(f"{name}: the dataset is empty")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{name}: {len(images)} images but labels of shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name}: labels must be integers, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.min() < 0:
        raise ValueError(f"{name}: labels must be ≥ 0, found {labels.min()}")
    classes = tuple(classes) if classes else _class_names(labels)
    if labels.max() >= len(classes):
        raise ValueError(f"{name}: label {labels.max()} but only {len(classes)} classes")
    return ImageSet(images, labels, classes)


def _take(images, idx):
    if isinstance(images, np.ndarray) or _is_tensor(images):
        return images[idx]
    return [images[i] for i in idx]


def _split_indices(labels: np.ndarray, fraction: float, seed: int):
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"test/val fraction must lie strictly between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    first, second = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        k = int(round(len(idx) * fraction))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        second.extend(idx[:k])
        first.extend(idx[k:])
    return np.sort(np.asarray(first, np.int64)), np.sort(np.asarray(second, np.int64))


def split(dataset, *, test: float = 0.25, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Split a labelled dataset into train and test parts, stratified by class.

    Parameters
    ----------
    dataset : ImageSet, ImageFolder, (images, labels) or torch Dataset
    test : float
        Fraction of each class that goes to the test part (every class with ≥ 2 images gets
        at least one image on each side).
    seed : int
        The same seed gives the same split.

    Returns
    -------
    (ImageSet, ImageSet)
        Train and test sets with the original class names; images keep their order.
    """
    data = as_imageset(dataset)
    tr, te = _split_indices(data.labels, test, seed)
    return (
        ImageSet(_take(data.images, tr), data.labels[tr], data.classes),
        ImageSet(_take(data.images, te), data.labels[te], data.classes),
    )


def _model_config(model):
    cfg = getattr(model, "cnnw_config", None)
    return cfg if isinstance(cfg, dict) else None


def prepare(images, model=None):
    """Turn images into the float N×C×H×W tensor a model takes.

    Parameters
    ----------
    images : numpy.ndarray, list of images, or torch.Tensor
        N×H×W or N×H×W×C arrays (uint8 or float in [0, 1]), a list of images of any size and kind
        :func:`cnnwidgets.io.load_image` reads, or a float tensor (N×C×H×W images, or N×D features),
        or a list of float tensors, which are taken as model-ready and only stacked / cast to float32.
    model : torch.nn.Module, optional
        A model from :func:`cnnwidgets.engine.models.create_model` (it carries ``cnnw_config``): its own
        input size, channels and normalisation are applied through :func:`cnnwidgets.engine.models.preprocess`.
        Without one, images are only scaled to [0, 1] and stacked (they must share one size).

    Returns
    -------
    torch.Tensor
        float32 N×C×H×W on the CPU.
    """
    import torch

    if _is_tensor(images) and images.is_floating_point():
        return images.detach().to("cpu", torch.float32)
    if isinstance(images, list) and images and _is_tensor(images[0]) and images[0].is_floating_point():
        return torch.stack([x.detach().to("cpu", torch.float32) for x in images])
    if model is not None and _model_config(model) is not None:
        from . import models

        batch = list(images) if isinstance(images, np.ndarray) else images
        return models.preprocess(batch, model).detach().to("cpu", torch.float32)
    from ..io import to_float

    arrs = [np.asarray(to_float(np.asarray(x.cpu() if _is_tensor(x) else x))) for x in images]
    shapes = {a.shape for a in arrs}
    if len(shapes) != 1:
        raise ValueError(
            f"images differ in shape {sorted(shapes)[:3]}; give a model with cnnw_config so they are resized"
        )
    x = np.stack(arrs)
    x = x[:, None] if x.ndim == 3 else np.moveaxis(x, -1, 1)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def _tensors(dataset, model, name):
    """(X float32 N×… tensor, y int64 tensor, classes) for a dataset."""
    import torch

    data = as_imageset(dataset, name=name)
    x = prepare(data.images, model)
    return x, torch.from_numpy(data.labels), data.classes


# ============================================================================ training


@dataclass
class History:
    """What :func:`fit` did.

    Attributes
    ----------
    epochs : list of dict
        One dict per finished epoch with ``epoch`` (1-based), ``epochs`` (planned), ``loss``,
        ``accuracy`` (training, over the epoch), ``val_loss`` and ``val_accuracy`` (None without a
        validation set), ``seconds`` (since the start) and ``lr``.
    stopped : bool
        True when the stop signal ended training early.
    classes : tuple of str
    confusion : numpy.ndarray or None
        K×K int64 confusion matrix (rows true class, columns predicted) of the final model on the
        validation set, None without one.
    seconds : float
        Wall time of the whole run.
    """

    epochs: list = field(default_factory=list)
    stopped: bool = False
    classes: tuple = ()
    confusion: np.ndarray | None = None
    seconds: float = 0.0

    def _series(self, key):
        return [e[key] for e in self.epochs]

    @property
    def loss(self) -> list:
        return self._series("loss")

    @property
    def accuracy(self) -> list:
        return self._series("accuracy")

    @property
    def val_loss(self) -> list:
        return self._series("val_loss")

    @property
    def val_accuracy(self) -> list:
        return self._series("val_accuracy")

    @property
    def final(self) -> dict:
        """The last epoch's metrics ({} when no epoch finished)."""
        return dict(self.epochs[-1]) if self.epochs else {}


def _stop_requested(stop) -> bool:
    if stop is None:
        return False
    if hasattr(stop, "is_set"):
        return bool(stop.is_set())
    return bool(stop())


def _batched_logits(model, x, dev, batch_size):
    import torch

    outs = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            outs.append(model(x[i : i + batch_size].to(dev)).float().cpu())
    return torch.cat(outs) if outs else torch.empty(0)


def _check_outputs(logits, n_classes):
    if logits.ndim != 2:
        raise ValueError(f"model must return N×K logits, got shape {tuple(logits.shape)}")
    if logits.shape[1] < n_classes:
        raise ValueError(
            f"model has {logits.shape[1]} outputs but the dataset has {n_classes} classes; "
            f"create it with num_classes={n_classes}"
        )


def fit(
    model,
    dataset,
    *,
    epochs: int = 5,
    lr: float = 1e-3,
    device=None,
    callback=None,
    batch_size: int = 64,
    seed: int | None = 0,
    val=None,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    schedule: str | None = None,
    stop=None,
    progress: bool = True,
    threads: int | None = None,
) -> History:
    """Train a classifier with cross-entropy, reporting metrics after every epoch.

    The model is trained in place (that is the point) and left in eval mode on ``device``;
    the dataset is not modified.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a float N×C×H×W batch (as :func:`prepare` makes it) to N×K logits, K ≥ number of classes.
    dataset : ImageSet, ImageFolder, (images, labels) or torch Dataset
        Training data, read into memory once (see the module docstring).
    epochs : int
        Passes over the training data (≥ 1).
    lr : float
        Learning rate.
    device : str or torch.device, optional
        Where to train; default :func:`cnnwidgets.device.get_device`.
    callback : callable, optional
        Called as ``callback(metrics)`` after every epoch with that epoch's dict (see :class:`History`).
    batch_size : int
    seed : int or None
        Seeds the shuffling and every random layer (dropout) for this run only; the global torch
        RNG state is restored afterwards. On the CPU, the same seed and inputs give identical weights.
        None draws fresh randomness.
    val : float, dataset or None
        A fraction of ``dataset`` held out (stratified, by ``seed``) or a separate labelled dataset,
        evaluated after every epoch.
    optimizer : {"adam", "sgd"}
        Adam, or SGD with momentum 0.9.
    weight_decay : float
    schedule : {None, "cosine"}
        ``"cosine"`` decays the learning rate from ``lr`` to 0 along a half cosine over all batches
        (usually a few points more accuracy in a few epochs); None keeps it constant.
    stop : threading.Event or callable, optional
        Checked before every batch; when set (or when it returns True) training ends after the
        current batch and ``History.stopped`` is True.
    progress : bool
        Show a tqdm progress bar over the epochs.
    threads : int, optional
        CPU threads for torch during this run (``torch.set_num_threads``, process-wide, restored
        afterwards). A small network on small batches gains little from several threads, and on a
        busy machine one thread is often several times faster; None leaves torch's setting alone.

    Returns
    -------
    History

    Raises
    ------
    ValueError
        Bad arguments, an unusable dataset, or a model with fewer outputs than classes.
    """
    import torch
    import torch.nn.functional as F

    from ..device import get_device

    if int(epochs) < 1:
        raise ValueError(f"epochs must be ≥ 1, got {epochs}")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if schedule not in (None, "cosine"):
        raise ValueError(f"schedule must be None or 'cosine', got {schedule!r}")
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads must be ≥ 1, got {threads}")
    dev = get_device(device)
    x, y, classes = _tensors(dataset, model, "dataset")
    if isinstance(val, float):
        tr, va = _split_indices(y.numpy(), val, 0 if seed is None else seed)
        tr_t, va_t = torch.from_numpy(tr), torch.from_numpy(va)
        x, y, xv, yv = x[tr_t], y[tr_t], x[va_t], y[va_t]
    elif val is not None:
        xv, yv, _ = _tensors(val, model, "val")
    else:
        xv = yv = None

    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters (all are frozen)")
    opt = (
        torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        if optimizer == "adam"
        else torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    )
    steps_per_epoch = math.ceil(len(x) / int(batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps_per_epoch * int(epochs)) if schedule else None
    n_classes = len(classes)
    history = History(classes=classes)
    start = time.perf_counter()
    fork_devices = [dev] if dev.type == "cuda" else []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(epochs), desc="training", unit="epoch")
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        with torch.random.fork_rng(devices=fork_devices):
            gen = torch.Generator()
            if seed is None:
                gen.seed()
            else:
                gen.manual_seed(int(seed))
                torch.manual_seed(int(seed))
            for epoch in range(1, int(epochs) + 1):
                model.train()
                order = torch.randperm(len(x), generator=gen)
                total_loss, correct, seen = 0.0, 0, 0
                for i in range(0, len(x), int(batch_size)):
                    if _stop_requested(stop):
                        history.stopped = True
                        break
                    idx = order[i : i + int(batch_size)]
                    xb, yb = x[idx].to(dev), y[idx].to(dev)
                    logits = model(xb)
                    if epoch == 1 and i == 0:
                        _check_outputs(logits, n_classes)
                    loss = F.cross_entropy(logits, yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if sched is not None:
                        sched.step()
                    total_loss += float(loss.detach()) * len(idx)
                    correct += int((logits.detach().argmax(1) == yb).sum())
                    seen += len(idx)
                if history.stopped and seen == 0:
                    break
                metrics = {
                    "epoch": epoch,
                    "epochs": int(epochs),
                    "loss": total_loss / seen,
                    "accuracy": correct / seen,
                    "val_loss": None,
                    "val_accuracy": None,
                    "seconds": time.perf_counter() - start,
                    "lr": opt.param_groups[0]["lr"],
                }
                model.eval()
                if xv is not None:
                    vl = _batched_logits(model, xv, dev, 512)
                    metrics["val_loss"] = float(F.cross_entropy(vl, yv))
                    metrics["val_accuracy"] = float((vl.argmax(1) == yv).float().mean())
                history.epochs.append(metrics)
                if bar is not None:
                    post = {"loss": f"{metrics['loss']:.3f}", "acc": f"{metrics['accuracy']:.3f}"}
                    if metrics["val_accuracy"] is not None:
                        post["val_acc"] = f"{metrics['val_accuracy']:.3f}"
                    bar.set_postfix(post)
                    bar.update(1)
                if callback is not None:
                    callback(dict(metrics))
                if history.stopped:
                    break
    finally:
        if threads is not None:
            torch.set_num_threads(old_threads)
        if bar is not None:
            bar.close()
        model.eval()
    if xv is not None and history.epochs:
        pred = _batched_logits(model, xv, dev, 512).argmax(1).numpy()
        history.confusion = confusion_matrix(yv.numpy(), pred, n_classes=n_classes)
    history.seconds = time.perf_counter() - start
    return history


def predict(model, images, *, batch_size: int = 256, device=None) -> tuple[np.ndarray, np.ndarray]:
    """Class indices and softmax probabilities of a classifier for a batch of images.

    Parameters
    ----------
    model : torch.nn.Module
    images : array, list of images or float N×C×H×W tensor
        As :func:`prepare` takes them.

    Returns
    -------
    labels : numpy.ndarray
        N int64.
    probs : numpy.ndarray
        N×K float32, rows sum to 1.
    """
    import torch

    from ..device import get_device

    dev = get_device(device)
    model.to(dev).eval()
    logits = _batched_logits(model, prepare(images, model), dev, batch_size)
    probs = torch.softmax(logits, 1).numpy().astype(np.float32)
    return probs.argmax(1).astype(np.int64), probs


def confusion_matrix(y_true, y_pred, *, n_classes: int | None = None) -> np.ndarray:
    """K×K int64 counts: row = true class, column = predicted class."""
    y_true = np.asarray(y_true, np.int64)
    y_pred = np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    k = n_classes if n_classes is not None else int(max(y_true.max(initial=-1), y_pred.max(initial=-1)) + 1)
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def evaluate(model, dataset, *, batch_size: int = 256, device=None) -> dict:
    """Accuracy, mean cross-entropy and confusion matrix of a classifier on a labelled dataset.

    Returns
    -------
    dict
        ``accuracy`` (float in [0, 1]), ``loss`` (float), ``confusion`` (K×K int64), ``n`` (int),
        ``classes`` (tuple of str).
    """
    import torch.nn.functional as F

    from ..device import get_device

    dev = get_device(device)
    x, y, classes = _tensors(dataset, model, "dataset")
    model.to(dev).eval()
    logits = _batched_logits(model, x, dev, batch_size)
    _check_outputs(logits, len(classes))
    pred = logits.argmax(1)
    return {
        "accuracy": float((pred == y).float().mean()),
        "loss": float(F.cross_entropy(logits, y)),
        "confusion": confusion_matrix(y.numpy(), pred.numpy(), n_classes=len(classes)),
        "n": len(y),
        "classes": classes,
    }


# ============================================================================ transfer learning


def _embed(model, images, batch_size, progress):
    from . import models

    feats = models.embed(model, images, batch_size=batch_size, progress=progress)
    return np.asarray(feats, np.float32)


def _resolve_model(model, device):
    if isinstance(model, str):
        from . import models

        return models.create_model(model, pretrained=True, device=device)
    return model


class LinearHeadClassifier:
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

    def predict(self, images, *, features=None) -> np.ndarray:
        """N int64 class indices."""
        return self.predict_proba(images, features=features).argmax(1).astype(np.int64)

    def classify(self, images, *, topk: int = 5):
        """``[(class name, probability), …]`` per image, best first (a list of such lists)."""
        probs = self.predict_proba(images)
        k = min(topk, probs.shape[1])
        return [[(self.classes[j], float(p[j])) for j in np.argsort(-p)[:k]] for p in probs]

    def score(self, dataset) -> float:
        """Accuracy on a labelled dataset."""
        data = as_imageset(dataset)
        return float((self.predict(data.images) == data.labels).mean())


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

    backbone = _resolve_model(model, device)
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


class PrototypeClassifier:
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

    def __init__(self, model="efficientnet_lite0", *, metric: str = "cosine", batch_size: int = 32, device=None):
        if metric not in ("cosine", "euclidean"):
            raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
        self.model = model
        self.metric = metric
        self.batch_size = batch_size
        self.device = device
        self._backbone = None
        self.prototypes_ = None

    def features(self, images) -> np.ndarray:
        """N×D float32 features of ``images`` from the classifier's model."""
        m = self.model
        if isinstance(m, str):
            if self._backbone is None:
                self._backbone = _resolve_model(m, self.device)
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

    def predict(self, images, *, features=None) -> np.ndarray:
        """N int64 indices of the nearest prototype."""
        return self.scores(images, features=features).argmax(1).astype(np.int64)

    def classify(self, images, *, topk: int = 3):
        """``[(class name, score), …]`` per image, nearest first (a list of such lists)."""
        s = self.scores(images)
        k = min(topk, s.shape[1])
        return [[(self.classes_[j], float(row[j])) for j in np.argsort(-row)[:k]] for row in s]

    def score(self, dataset) -> float:
        """Accuracy on a labelled dataset."""
        data = as_imageset(dataset)
        return float((self.predict(data.images) == data.labels).mean())


# ============================================================================ bag of visual words

_DETECTORS = ("sift", "orb")


def _gray_resized(image, size: int) -> np.ndarray:
    import cv2

    from ..io import load_image

    arr = image.cpu() if _is_tensor(image) else image
    gray = load_image(arr, mode="gray")
    h, w = gray.shape
    scale = size / max(h, w)
    if scale != 1.0:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)
    return gray


def _make_detector(detector: str, max_features: int):
    import cv2

    if detector == "sift":
        return cv2.SIFT_create(nfeatures=max_features)
    return cv2.ORB_create(nfeatures=max_features, edgeThreshold=15, patchSize=15)


class BoVWClassifier:
    """Bag of visual words + linear SVM, made by :func:`bovw_classifier`.

    Attributes
    ----------
    detector : {"sift", "orb"}
    vocabulary : numpy.ndarray
        K×D float32 visual words (k-means centres; ORB descriptors are unpacked to 256 bits of 0/1,
        so squared Euclidean distance between them is the Hamming distance).
    svm : sklearn.pipeline.Pipeline
        Standardisation + ``LinearSVC`` on the word histograms.
    classes : tuple of str
    image_size : int
        Longer image side the images are resized to before features are detected.
    grid : int or None
        Step of the dense keypoint grid, or None to use the detector's keypoints.
    """

    def __init__(self, detector, vocabulary, svm, classes, *, image_size, grid, max_features):
        self.detector, self.vocabulary, self.svm, self.classes = detector, vocabulary, svm, tuple(classes)
        self.image_size, self.grid, self.max_features = image_size, grid, max_features

    def descriptors(self, image) -> np.ndarray:
        """M×D float32 local descriptors of one image (M may be 0)."""
        return _descriptors(image, self.detector, self.image_size, self.grid, self.max_features)

    def words(self, descriptors) -> np.ndarray:
        """Index of the nearest visual word for each descriptor (M int64)."""
        return _nearest_word(np.asarray(descriptors, np.float32), self.vocabulary)

    def histograms(self, images) -> np.ndarray:
        """N×K float32 word histograms, each summing to 1 (all zero for an image without features)."""
        return np.stack([_histogram(self.words(self.descriptors(im)), len(self.vocabulary)) for im in images])

    def predict(self, images, *, histograms=None) -> np.ndarray:
        """N int64 class indices."""
        h = self.histograms(images) if histograms is None else histograms
        return np.asarray(self.svm.predict(h), np.int64)

    def score(self, dataset) -> float:
        """Accuracy on a labelled dataset."""
        data = as_imageset(dataset)
        return float((self.predict(data.images) == data.labels).mean())


def _descriptors(image, detector, image_size, grid, max_features) -> np.ndarray:
    import cv2

    gray = _gray_resized(image, image_size)
    det = _make_detector(detector, max_features)
    if grid:
        h, w = gray.shape
        margin = 8 if detector == "sift" else 16
        kps = [
            cv2.KeyPoint(float(x), float(y), float(2 * grid))
            for y in range(margin, h - margin + 1, grid)
            for x in range(margin, w - margin + 1, grid)
        ]
        _, des = det.compute(gray, kps)
    else:
        _, des = det.detectAndCompute(gray, None)
    dim = 128 if detector == "sift" else 256
    if des is None or len(des) == 0:
        return np.zeros((0, dim), np.float32)
    if detector == "orb":
        return np.unpackbits(des, axis=1).astype(np.float32)
    return des.astype(np.float32)


def _nearest_word(des: np.ndarray, vocab: np.ndarray) -> np.ndarray:
    if len(des) == 0:
        return np.zeros(0, np.int64)
    d2 = (des * des).sum(1, keepdims=True) - 2.0 * des @ vocab.T + (vocab * vocab).sum(1)[None]
    return d2.argmin(1).astype(np.int64)


def _histogram(words: np.ndarray, k: int) -> np.ndarray:
    h = np.bincount(words, minlength=k).astype(np.float32)
    return h / h.sum() if h.sum() > 0 else h


def bovw_classifier(
    images,
    labels=None,
    *,
    detector: str = "sift",
    vocabulary=100,
    C: float = 1.0,
    image_size: int = 128,
    grid: int | None = None,
    max_features: int = 500,
    max_descriptors: int = 50_000,
    seed: int = 0,
) -> BoVWClassifier:
    """Train the classical bag-of-visual-words classifier the CNN replaced.

    Steps: detect local features with OpenCV (SIFT or ORB) on each gray image resized to
    ``image_size``; cluster a sample of the descriptors with k-means into a vocabulary of visual
    words; describe each image by its normalised histogram of nearest words; train a linear SVM
    (scikit-learn ``LinearSVC`` after standardisation) on the histograms.

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
        Unknown detector, a vocabulary of the wrong width, or no features found in any image.
    """
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    if detector not in _DETECTORS:
        raise ValueError(f"detector must be one of {_DETECTORS}, got {detector!r}")
    data = as_imageset(images if labels is None else (images, labels), name="images")
    if len(np.unique(data.labels)) < 2:
        raise ValueError("images: need at least two classes to train an SVM")
    descs = [_descriptors(im, detector, image_size, grid, max_features) for im in data.images]
    dim = 128 if detector == "sift" else 256
    if isinstance(vocabulary, (int, np.integer)):
        k = int(vocabulary)
        if k < 2:
            raise ValueError(f"vocabulary must have at least 2 words, got {k}")
        pool = np.concatenate(descs) if descs else np.zeros((0, dim), np.float32)
        if len(pool) < k:
            raise ValueError(f"images: only {len(pool)} {detector.upper()} descriptors found, fewer than {k} words")
        rng = np.random.default_rng(seed)
        if len(pool) > max_descriptors:
            pool = pool[rng.choice(len(pool), max_descriptors, replace=False)]
        km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=2048).fit(pool)
        vocab = km.cluster_centers_.astype(np.float32)
    else:
        vocab = np.asarray(vocabulary, np.float32)
        if vocab.ndim != 2 or vocab.shape[1] != dim or len(vocab) < 2:
            raise ValueError(f"vocabulary must be an int or a K×{dim} array for {detector}, got shape {vocab.shape}")
        vocab = vocab.copy()
    hists = np.stack([_histogram(_nearest_word(d, vocab), len(vocab)) for d in descs])
    svm = make_pipeline(StandardScaler(), LinearSVC(C=C, random_state=seed, max_iter=20_000))
    svm.fit(hists, data.labels)
    return BoVWClassifier(
        detector, vocab, svm, data.classes, image_size=image_size, grid=grid, max_features=max_features
    )


# ============================================================================ comparison


def compare_bovw_cnn(
    train,
    test,
    *,
    model="efficientnet_lite0",
    detector: str = "sift",
    vocabulary: int = 100,
    grid: int | None = None,
    epochs: int = 100,
    seed: int = 0,
    device=None,
) -> list[dict]:
    """Accuracy of BoVW + linear SVM against CNN features + linear head, on the same split.

    Parameters
    ----------
    train, test : labelled datasets
        E.g. from :func:`split`.
    model : str or torch.nn.Module
        The CNN backbone for :func:`transfer_learn`.
    detector, vocabulary, grid
        Passed to :func:`bovw_classifier`.
    epochs : int
        Epochs for the linear head.
    seed : int

    Returns
    -------
    list of dict
        One row per method: ``method``, ``accuracy`` (on ``test``), ``fit_seconds``,
        ``predict_seconds``, ``n_train``, ``n_test``. :func:`format_table` prints them.
    """
    tr, te = as_imageset(train, name="train"), as_imageset(test, name="test")
    rows = []
    t0 = time.perf_counter()
    bovw = bovw_classifier(tr, detector=detector, vocabulary=vocabulary, grid=grid, seed=seed)
    t1 = time.perf_counter()
    acc = float((bovw.predict(te.images) == te.labels).mean())
    t2 = time.perf_counter()
    rows.append(
        {
            "method": f"BoVW ({detector.upper()}, {len(bovw.vocabulary)} words) + linear SVM",
            "accuracy": acc,
            "fit_seconds": t1 - t0,
            "predict_seconds": t2 - t1,
            "n_train": len(tr.labels),
            "n_test": len(te.labels),
        }
    )
    backbone = _resolve_model(model, device)
    name = (getattr(backbone, "cnnw_config", None) or {}).get("name", type(backbone).__name__)
    t0 = time.perf_counter()
    clf = transfer_learn(backbone, tr, epochs=epochs, seed=seed, progress=False, device=device)
    t1 = time.perf_counter()
    acc = float((clf.predict(te.images) == te.labels).mean())
    t2 = time.perf_counter()
    rows.append(
        {
            "method": f"{name} features + linear head",
            "accuracy": acc,
            "fit_seconds": t1 - t0,
            "predict_seconds": t2 - t1,
            "n_train": len(tr.labels),
            "n_test": len(te.labels),
        }
    )
    return rows


def format_table(rows: list[dict]) -> str:
    """A Markdown table of :func:`compare_bovw_cnn` rows."""
    lines = ["| method | test accuracy | fit s | predict s |", "|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['accuracy']:.3f} | {r['fit_seconds']:.1f} | {r['predict_seconds']:.1f} |")
    return "\n".join(lines)
