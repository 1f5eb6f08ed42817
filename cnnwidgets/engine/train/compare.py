"""The bag-of-visual-words baseline against CNN features + a linear head, on the same split."""

from __future__ import annotations

import time

from .bovw import bovw_classifier
from .classifiers import resolve_backbone, transfer_learn
from .data import as_imageset

__all__ = ["compare_bovw_cnn", "format_table"]


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
    backbone = resolve_backbone(model, device)
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
