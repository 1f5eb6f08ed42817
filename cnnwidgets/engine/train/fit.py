"""The training loop (:func:`fit`) and what reads a trained classifier: :func:`predict`,
:func:`evaluate_classifier`, :func:`confusion_matrix`."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field

import numpy as np

from cnnwidgets.device import get_device
from cnnwidgets.device import threads as computing_with

from .data import input_batch, labelled_tensors, split_indices

__all__ = ["History", "fit", "predict", "evaluate_classifier", "confusion_matrix"]


def _series(key: str) -> property:
    """A read-only attribute: the list of ``key`` over the finished epochs."""
    return property(lambda self: [e[key] for e in self.epochs], doc=f"``{key}`` per finished epoch.")


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

    loss = _series("loss")
    accuracy = _series("accuracy")
    val_loss = _series("val_loss")
    val_accuracy = _series("val_accuracy")

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


def _check_fit_args(epochs, lr, batch_size, optimizer, schedule, threads):
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


def _train_and_val_tensors(model, dataset, val, seed):
    """(x, y, x_val, y_val, classes); a float ``val`` holds out that fraction of ``dataset`` (stratified)."""
    import torch

    x, y, classes = labelled_tensors(dataset, model, "dataset")
    if isinstance(val, float):
        tr, va = split_indices(y.numpy(), val, 0 if seed is None else seed)
        tr_t, va_t = torch.from_numpy(tr), torch.from_numpy(va)
        return x[tr_t], y[tr_t], x[va_t], y[va_t], classes
    if val is not None:
        xv, yv, _ = labelled_tensors(val, model, "val")
        return x, y, xv, yv, classes
    return x, y, None, None, classes


def _optimizer(model, optimizer, lr, weight_decay):
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters (all are frozen)")
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)


def _torch_threads(threads):
    """``cnnwidgets.device.threads(threads)`` for the block; nothing changes when ``threads`` is None."""
    return computing_with(int(threads)) if threads is not None else contextlib.nullcontext()


@contextlib.contextmanager
def _seeded(seed, dev):
    """A generator for the shuffling, and torch's global RNG seeded for the block, its state restored after."""
    import torch

    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        gen = torch.Generator()
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(int(seed))
            torch.manual_seed(int(seed))
        yield gen


def _train_epoch(model, x, y, order, opt, sched, dev, batch_size, stop, check_classes):
    """One pass over ``x`` in ``order``. Returns (summed loss, correct, seen, stopped).

    ``check_classes``: the number of classes the first batch's logits are checked against (None: no check).
    """
    import torch.nn.functional as F

    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for i in range(0, len(x), batch_size):
        if _stop_requested(stop):
            return total_loss, correct, seen, True
        idx = order[i : i + batch_size]
        xb, yb = x[idx].to(dev), y[idx].to(dev)
        logits = model(xb)
        if check_classes is not None and i == 0:
            _check_outputs(logits, check_classes)
        loss = F.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        total_loss += float(loss.detach()) * len(idx)
        correct += int((logits.detach().argmax(1) == yb).sum())
        seen += len(idx)
    return total_loss, correct, seen, False


def _validate(model, xv, yv, dev, metrics):
    """Fill ``val_loss`` and ``val_accuracy`` of ``metrics`` (the model in eval mode)."""
    import torch.nn.functional as F

    vl = _batched_logits(model, xv, dev, 512)
    metrics["val_loss"] = float(F.cross_entropy(vl, yv))
    metrics["val_accuracy"] = float((vl.argmax(1) == yv).float().mean())


def _show(bar, metrics):
    if bar is None:
        return
    post = {"loss": f"{metrics['loss']:.3f}", "acc": f"{metrics['accuracy']:.3f}"}
    if metrics["val_accuracy"] is not None:
        post["val_acc"] = f"{metrics['val_accuracy']:.3f}"
    bar.set_postfix(post)
    bar.update(1)


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
        Maps a float N×C×H×W batch (as :func:`input_batch` makes it) to N×K logits, K ≥ number of classes.
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

    _check_fit_args(epochs, lr, batch_size, optimizer, schedule, threads)
    epochs, batch_size = int(epochs), int(batch_size)
    dev = get_device(device)
    x, y, xv, yv, classes = _train_and_val_tensors(model, dataset, val, seed)
    model.to(dev)
    opt = _optimizer(model, optimizer, lr, weight_decay)
    steps = math.ceil(len(x) / batch_size) * epochs
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps) if schedule else None
    history = History(classes=classes)
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc="training", unit="epoch")
    try:
        with _torch_threads(threads), _seeded(seed, dev) as gen:
            for epoch in range(1, epochs + 1):
                order = torch.randperm(len(x), generator=gen)
                check = len(classes) if epoch == 1 else None
                loss, correct, seen, stopped = _train_epoch(
                    model, x, y, order, opt, sched, dev, batch_size, stop, check
                )
                history.stopped = stopped
                if stopped and seen == 0:
                    break
                metrics = {
                    "epoch": epoch,
                    "epochs": epochs,
                    "loss": loss / seen,
                    "accuracy": correct / seen,
                    "val_loss": None,
                    "val_accuracy": None,
                    "seconds": time.perf_counter() - start,
                    "lr": opt.param_groups[0]["lr"],
                }
                model.eval()
                if xv is not None:
                    _validate(model, xv, yv, dev, metrics)
                history.epochs.append(metrics)
                _show(bar, metrics)
                if callback is not None:
                    callback(dict(metrics))
                if stopped:
                    break
    finally:
        if bar is not None:
            bar.close()
        model.eval()
    if xv is not None and history.epochs:
        pred = _batched_logits(model, xv, dev, 512).argmax(1).numpy()
        history.confusion = confusion_matrix(yv.numpy(), pred, n_classes=len(classes))
    history.seconds = time.perf_counter() - start
    return history


def predict(model, images, *, batch_size: int = 256, device=None) -> tuple[np.ndarray, np.ndarray]:
    """Class indices and softmax probabilities of a classifier for a batch of images.

    Parameters
    ----------
    model : torch.nn.Module
    images : array, list of images or float N×C×H×W tensor
        As :func:`input_batch` takes them.

    Returns
    -------
    labels : numpy.ndarray
        N int64.
    probs : numpy.ndarray
        N×K float32, rows sum to 1.
    """
    import torch

    dev = get_device(device)
    model.to(dev).eval()
    logits = _batched_logits(model, input_batch(images, model), dev, batch_size)
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


def evaluate_classifier(model, dataset, *, batch_size: int = 256, device=None) -> dict:
    """Accuracy, mean cross-entropy and confusion matrix of a classifier on a labelled dataset.

    Returns
    -------
    dict
        ``accuracy`` (float in [0, 1]), ``loss`` (float), ``confusion`` (K×K int64), ``n`` (int),
        ``classes`` (tuple of str).
    """
    import torch.nn.functional as F

    dev = get_device(device)
    x, y, classes = labelled_tensors(dataset, model, "dataset")
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
