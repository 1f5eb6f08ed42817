"""Classical descriptors + SVM against CNN features + a linear head, on the same split."""

from __future__ import annotations

import time

from .classifiers import resolve_backbone, transfer_learn
from .data import as_imageset
from .descriptors import descriptor_classifier

__all__ = ["compare_features", "compare_bovw_cnn", "format_table"]


def _row(method, feature, accuracy, fit_seconds, predict_seconds, n_train, n_test) -> dict:
    return {
        "method": method,
        "feature": feature,
        "accuracy": accuracy,
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "ms_per_image": 1000.0 * predict_seconds / n_test,
        "n_train": n_train,
        "n_test": n_test,
    }


def compare_features(
    train,
    test,
    *,
    features=("hog", "gist", "sift"),
    model="efficientnet_lite0",
    kernel: str = "linear",
    C: float = 1.0,
    options=None,
    epochs: int = 100,
    seed: int = 0,
    device=None,
) -> list[dict]:
    """Accuracy and time per image of classical descriptors + SVM and of CNN features + a linear head, on one split.

    Each classical row is :func:`descriptor_classifier` (the descriptor, standardisation, an SVM) trained on
    ``train`` and scored on ``test``; the CNN row is :func:`transfer_learn` (the frozen backbone's pooled features and
    a trained linear layer) on the same images.

    Parameters
    ----------
    train, test : labelled datasets
        E.g. from :func:`split`.
    features : sequence of str or callable
        Descriptors for :func:`descriptor_classifier`, one row each, in this order: names of
        :data:`GLOBAL_DESCRIPTORS` or :data:`BAG_OF_WORDS`, or functions from N images to an N×D array.
    model : str, torch.nn.Module or None
        The CNN backbone for :func:`transfer_learn` (its row comes last); None leaves the CNN out.
    kernel, C
        The SVM of every classical row (:func:`make_svm`).
    options : dict, optional
        Per feature name, the keyword arguments of :func:`descriptor_classifier`'s ``options``:
        ``{"sift": {"vocabulary": 50}, "hog": {"side": 64}}``.
    epochs : int
        Epochs for the linear head.
    seed : int
        Seeds the SVMs, the bags of words' k-means and the head.
    device : str or torch.device, optional
        Where a registry model named by ``model`` is placed.

    Returns
    -------
    list of dict
        One row per method: ``method`` (e.g. ``"HOG + linear SVM"``), ``feature`` (the descriptor's name, ``"cnn"``
        for the CNN), ``accuracy`` (on ``test``), ``fit_seconds`` (descriptors of the training images and the fit),
        ``predict_seconds`` (descriptors of the test images and the prediction), ``ms_per_image``
        (``1000 × predict_seconds / n_test``: the cost of classifying one new image), ``n_train``, ``n_test``.
        :func:`format_table` prints them.
    """
    tr, te = as_imageset(train, name="train"), as_imageset(test, name="test")
    n_train, n_test = len(tr.labels), len(te.labels)
    options = dict(options or {})
    rows = []
    for feature in features:
        key = feature if isinstance(feature, str) else getattr(feature, "__name__", "descriptor")
        t0 = time.perf_counter()
        clf = descriptor_classifier(tr, descriptor=feature, options=options.get(key), kernel=kernel, C=C, seed=seed)
        t1 = time.perf_counter()
        acc = float((clf.predict(te.images) == te.labels).mean())
        t2 = time.perf_counter()
        rows.append(_row(clf.name, key, acc, t1 - t0, t2 - t1, n_train, n_test))
    if model is not None:
        backbone = resolve_backbone(model, device)
        name = (getattr(backbone, "cnnw_config", None) or {}).get("name", type(backbone).__name__)
        t0 = time.perf_counter()
        head = transfer_learn(backbone, tr, epochs=epochs, seed=seed, progress=False, device=device)
        t1 = time.perf_counter()
        acc = float((head.predict(te.images) == te.labels).mean())
        t2 = time.perf_counter()
        rows.append(_row(f"{name} features + linear head", "cnn", acc, t1 - t0, t2 - t1, n_train, n_test))
    return rows


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
    """Bag of visual words + linear SVM against CNN features + linear head: :func:`compare_features` with one feature.

    Parameters
    ----------
    train, test : labelled datasets
    model : str or torch.nn.Module
    detector : {"sift", "orb"}
    vocabulary, grid
        Passed to :func:`bovw_classifier`.
    epochs, seed, device
        As in :func:`compare_features`.

    Returns
    -------
    list of dict
        Two rows (bag of words, then CNN) as :func:`compare_features` returns them.
    """
    return compare_features(
        train,
        test,
        features=(detector,),
        options={detector: {"vocabulary": vocabulary, "grid": grid}},
        model=model,
        epochs=epochs,
        seed=seed,
        device=device,
    )


def format_table(rows: list[dict]) -> str:
    """A Markdown table of :func:`compare_features` rows: accuracy, fit time and milliseconds per test image."""
    lines = ["| method | test accuracy | fit s | predict s | ms / image |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['accuracy']:.3f} | {r['fit_seconds']:.1f} | {r['predict_seconds']:.1f} "
            f"| {r['ms_per_image']:.1f} |"
        )
    return "\n".join(lines)
