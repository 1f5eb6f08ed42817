"""The structure of an IVF index and its training: cell counts, the IVF-PQ factory string, a trained empty index."""

from __future__ import annotations

import contextlib
import math

import numpy as np

__all__ = ["faiss_metric", "ivf_nlist", "ivf_nprobe", "ivfpq_factory", "trained_index", "SMALL_TRAIN", "PCA_TRAIN_MAX"]

SMALL_TRAIN = 20_000
"""Below this many training vectors :func:`trained_index` uses one FAISS thread: the k-means steps are then too
short to share between threads."""

PCA_TRAIN_MAX = 1 << 15
"""At most this many vectors (the first of the sample) train a PCA of :func:`trained_index`."""


def faiss_metric(metric: str):
    """FAISS's metric constant for ``metric`` ("ip": inner product, "l2": squared L2 distance)."""
    import faiss

    if metric not in ("ip", "l2"):
        raise ValueError(f"metric={metric!r}: expected 'ip' or 'l2'")
    return faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2


def ivf_nlist(n: int) -> int:
    """Number of IVF cells for ``n`` vectors: about 4·√n, with at least 39 training points per cell."""
    return int(max(1, min(4 * math.sqrt(max(n, 1)), n // 39 if n >= 39 else 1)))


def ivf_nprobe(nlist: int) -> int:
    """Cells visited per IVF query: max(16, nlist / 32), at most nlist."""
    return int(min(nlist, max(16, nlist // 32)))


def ivfpq_factory(n: int, d: int) -> str:
    """The FAISS ``index_factory`` string for ``n`` vectors of dimension ``d``, e.g. ``"PCAR256,IVF4000,PQ64"``.

    * Dimension: vectors longer than 256 are projected on their 256 principal axes and randomly rotated
      ("PCAR256"; :func:`trained_index` trains the PCA so that inner products keep their meaning). OPQ learns a
      better rotation but trains far more slowly; pass ``factory="OPQ64_256,IVF…,PQ64"`` to
      :func:`~cnnwidgets.index.ondisk.build_ondisk` to use it.
    * Codes: ``m = d' / 4`` sub-quantisers (4 dimensions each, at most 64), 8 bits each, so 64 bytes per vector
      at d' = 256 (1/80 of the 5,120 float32 bytes of a 1280-d vector). Below 39 · 256 training vectors the codes
      get fewer bits (``log2(n / 39)``, at least 1), so that every centroid has training data.
    * Cells: ``4·√n``, at most ``n / 39`` (:func:`ivf_nlist`).
    """
    n, d = int(n), int(d)
    if d < 1:
        raise ValueError(f"d={d}: expected a positive dimension")
    d_out = min(d, 256)
    m = max(q for q in range(1, max(1, d_out // 4) + 1) if d_out % q == 0)
    nbits = 8 if n >= 39 * 256 else max(1, min(8, int(math.floor(math.log2(max(n, 78) / 39)))))
    codes = f"PQ{m}" if nbits == 8 else f"PQ{m}x{nbits}"
    transform = f"PCAR{d_out}," if d_out < d else ""
    return f"{transform}IVF{ivf_nlist(n)},{codes}"


def trained_index(factory: str, d: int, metric: str, sample: np.ndarray):
    """A trained, empty FAISS index of ``factory`` (an IVF structure), trained on ``sample`` (float32, N×d).

    A PCA in the chain is trained, for the "ip" metric, on the sample and its negation: their mean is 0, so the
    PCA projects without subtracting a mean and inner products are those of the projected vectors (a centred
    PCA would add a term that depends on each vector). An OPQ rotation is trained with codes of the same bit
    count as the IVF-PQ codes. Polysemous training of the codes is turned off: searches do not use it, and it
    is most of the training time. The sample is repeated when it has fewer points than a k-means has centroids.
    A sample of fewer than :data:`SMALL_TRAIN` vectors trains on one thread.

    Raises
    ------
    ValueError
        If ``factory`` is not an IVF structure.
    """
    import faiss

    from ..device import threads

    with threads(1) if len(sample) < SMALL_TRAIN else contextlib.nullcontext():
        return _trained(faiss, factory, int(d), metric, sample)


def _trained(faiss, factory: str, d: int, metric: str, sample: np.ndarray):
    ix = faiss.index_factory(d, factory, faiss_metric(metric))
    try:
        ivf = faiss.extract_index_ivf(ix)
    except RuntimeError:
        raise ValueError(f"factory {factory!r} is not an IVF structure") from None
    x = np.ascontiguousarray(sample, dtype=np.float32)
    inner = faiss.downcast_index(ivf)
    if hasattr(inner, "do_polysemous_training"):
        inner.do_polysemous_training = False  # searches never use it
    pq = getattr(inner, "pq", None)
    need = max(ivf.nlist, 1 << pq.nbits if pq is not None else 1)
    if len(x) < need:  # k-means needs at least as many points as centroids
        x = np.resize(x, (need, x.shape[1]))
    if isinstance(ix, faiss.IndexPreTransform):
        _train_chain(faiss, ix, x, metric, pq)
    else:
        ix.train(x)
    ivf.nprobe = ivf_nprobe(ivf.nlist)
    return ix


def _train_chain(faiss, ix, x: np.ndarray, metric: str, pq) -> None:
    """Train the transforms of ``ix`` (a PCA on ±x for "ip", an OPQ with ``pq``'s bits) and the index behind them."""
    opq_pqs = []
    y = x
    for j in range(ix.chain.size()):
        vt = faiss.downcast_VectorTransform(ix.chain.at(j))
        if isinstance(vt, faiss.PCAMatrix):
            part = y[:PCA_TRAIN_MAX]
            vt.train(np.concatenate([part, -part]) if metric == "ip" else part)
        elif isinstance(vt, faiss.OPQMatrix) and pq is not None:
            opq_pqs.append(faiss.ProductQuantizer(vt.d_out, vt.M, pq.nbits))
            vt.pq = opq_pqs[-1]
            vt.train(y)
        elif not vt.is_trained:
            vt.train(y)
        y = vt.apply(y)
    ix.index.train(y)
    ix.is_trained = True
    for j in range(ix.chain.size()):
        vt = faiss.downcast_VectorTransform(ix.chain.at(j))
        if isinstance(vt, faiss.OPQMatrix):
            vt.pq = None
