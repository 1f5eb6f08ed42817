"""Vector stores for one descriptor: choice of structure, creation, and the checked search every query goes through.

A store is a :class:`~.faiss_store.FaissStore` ("flat", "ivf", "hnsw": an ID-mapped FAISS index in memory, on
the CPU or a GPU) or an :class:`~.ondisk.IVFPQIndex` ("ivfpq": inverted lists memory-mapped, exact vectors read
from disk); both answer the protocol of :mod:`.store`, whose IDs are the row IDs of the metadata
table. The functions here pick a structure (:func:`choose_type`), make a store (:func:`new_index`), open a
written one (:func:`open_store`) and check queries before a store searches them (:func:`search`).
"""

from __future__ import annotations

import numpy as np

from ..engine import checks
from .faiss_store import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, FaissStore
from .ivfpq_train import ivf_nlist, ivf_nprobe
from .ondisk import IVFPQIndex

__all__ = [
    "AUTO_THRESHOLD",
    "AUTO_MEMORY_BUDGET",
    "INDEX_TYPES",
    "choose_type",
    "new_index",
    "open_store",
    "to_device",
    "kind_of",
    "vectors_and_ids",
    "search",
    "set_search_params",
    "ivf_nlist",
    "ivf_nprobe",
    "HNSW_M",
    "HNSW_EF_CONSTRUCTION",
    "HNSW_EF_SEARCH",
]

AUTO_THRESHOLD = 50_000
"""``index_type="auto"`` uses an exact flat index below this many vectors and an approximate one above it.

An exact search costs N×D multiply-adds per query: 64 M for 50,000 CNN vectors (D = 1280), still interactive on
one CPU core. Above that an approximate index is faster for a small loss of recall (``bench/bench_index.py``).
"""

AUTO_MEMORY_BUDGET = 2 * 1024**3
"""``index_type="auto"`` uses "ivfpq" once the float32 vectors of a descriptor would take more bytes than this.

Bytes per vector held in RAM at search time, for dimension d (d = 1280 for the "cnn" descriptor of
EfficientNet-Lite0):

* flat: 4·d (5,120 B); IVF-flat: 4·d + 8 (5,128 B); HNSW (M = 32): 4·d + 2·M·4 = 4·d + 256 (5,376 B);
  all three must be in memory whole.
* ivfpq saved and loaded: nothing per vector is read in advance. On disk: 64 B of codes + 8 B of ID in the
  inverted lists (memory-mapped) and 2·d (float16) or 4·d (float32, what :class:`~cnnwidgets.index.ImageIndex`
  keeps) of exact vectors, read ``max(4k, 100)`` rows per query for re-ranking. In RAM: the coarse quantiser,
  4 · 256 · 4√N bytes (4 MB at N = 10⁶), and the PCA matrices; the IDs are mapped too.

2 GiB of vectors is 419,430 CNN vectors (2 GiB / 5,120 B), 4.2 million colour histograms (d = 128): a quarter of
an 8 GB laptop, which also holds the CNN, the notebook and the operating system. Above it IVF-PQ with exact
re-ranking is the structure that still fits (``bench/bench_scale.py`` measures its recall and memory).
"""

INDEX_TYPES = ("auto", "flat", "ivf", "hnsw", "ivfpq")


def choose_type(index_type: str, n: int, *, gpu: bool, dim: int | None = None) -> str:
    """The concrete structure for ``n`` vectors of dimension ``dim``: ``index_type`` itself unless it is ``"auto"``.

    Auto picks "flat" below :data:`AUTO_THRESHOLD`, "ivfpq" when ``n × 4 × dim`` bytes exceed
    :data:`AUTO_MEMORY_BUDGET` (never when ``dim`` is not given), else "hnsw" on the CPU or "ivf" on a GPU (FAISS
    has no GPU HNSW).
    """
    if index_type not in INDEX_TYPES:
        raise ValueError(f"index_type={index_type!r}: expected one of {INDEX_TYPES}")
    if index_type != "auto":
        return index_type
    if dim is not None and n * 4 * int(dim) > AUTO_MEMORY_BUDGET:
        return "ivfpq"
    if n < AUTO_THRESHOLD:
        return "flat"
    return "ivf" if gpu else "hnsw"


IVFPQ_TRAIN_MAX = 1 << 17
"""At most this many vectors (a seeded random sample) train a new "ivfpq" index."""


def new_index(kind: str, dim: int, metric: str, train: np.ndarray | None = None):
    """An empty store of structure ``kind``; IVF and IVF-PQ are trained on ``train`` (required for them).

    "flat", "ivf" and "hnsw" are each a :class:`~.faiss_store.FaissStore`; "ivfpq" is an
    :class:`~.ondisk.IVFPQIndex` of :func:`~.ivfpq_train.ivfpq_factory` structure for ``len(train)`` vectors,
    keeping exact float32 vectors.
    """
    if kind == "ivfpq":
        return IVFPQIndex.new(dim, metric, train, train_max=IVFPQ_TRAIN_MAX)
    return FaissStore.new(kind, dim, metric, train)


def open_store(kind: str | None, folder, name: str, *, root=None):
    """The store of structure ``kind`` written as ``name`` in ``folder`` (its class's ``open``), checked."""
    return (IVFPQIndex if kind == "ivfpq" else FaissStore).open(folder, name, root=root)


def kind_of(store) -> str:
    """ "flat", "ivf", "hnsw" or "ivfpq"."""
    return store.kind


def to_device(store, *, gpu: bool):
    """``store`` on GPU 0 when ``gpu`` and its structure runs there (flat, IVF); otherwise ``store`` itself."""
    return store.to_device(gpu=gpu)


def vectors_and_ids(store) -> tuple[np.ndarray, np.ndarray]:
    """All stored vectors (float32, N×D) and their IDs (int64, N), in storage order (ID order for "ivfpq")."""
    return store.vectors_and_ids()


def set_search_params(store, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
    """Set IVF ``nprobe`` or HNSW ``efSearch`` on a store (ignored where they do not apply)."""
    store.set_search_params(nprobe=nprobe, ef_search=ef_search)


def query_matrix(queries, dim: int, name: str = "queries") -> np.ndarray:
    """``queries`` (D or Q×D numbers) as a C-contiguous float32 Q×D matrix, or a ValueError naming ``name``: another
    dimension, NaN or infinity (also from float64 values beyond float32), or what is not numbers."""
    if queries is None or isinstance(queries, str):
        raise ValueError(f"{name} must be a D or Q×D array of numbers (D = {dim}), got {checks.short(queries)}")
    q = checks.numbers_array(name, queries)
    if q.ndim not in (1, 2) or q.shape[-1] != dim:
        raise ValueError(f"{name} must be a D or Q×D array with D = {dim}, got shape {q.shape}")
    q = np.ascontiguousarray(np.atleast_2d(q), dtype=np.float32)
    return checks.finite(name, q)


def search(index, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None):
    """Search ``queries`` (float32, Q×D) for the ``k`` nearest; ``allowed`` restricts to those IDs.

    Parameters
    ----------
    index : FaissStore or IVFPQIndex
    queries : array_like
        D or Q×D numbers, D the index's dimension, finite (other dtypes are converted to float32).
    k : int
        ≥ 0 (0 gives no columns; more than there are gives them all).
    allowed : array_like of int, optional
        IDs the results are restricted to.

    Returns
    -------
    (distances, ids) : float32 (Q, k'), int64 (Q, k') with k' = min(k, number searchable); FAISS's raw
    values: inner products for "ip" indexes, squared L2 distances for "l2" ones ("ivfpq": of the exact vectors
    of its re-ranked candidates, :meth:`~.ondisk.IVFPQIndex.search`).

    Raises
    ------
    ValueError
        For queries of another dimension, with NaN or infinity or not numbers, a ``k`` that is not an integer ≥ 0,
        or ``allowed`` that are not integers.
    """
    k = checks.integer("k", k, lo=0)
    q = query_matrix(queries, int(index.d))
    if allowed is not None:
        if isinstance(allowed, str):
            raise ValueError(f"allowed must be an array of integer IDs, got {checks.short(allowed)}")
        allowed = checks.numbers_array("allowed", allowed, ndim=1)
        if allowed.size and allowed.dtype.kind not in "iu":
            raise ValueError(f"allowed must be an array of integer IDs, got dtype {allowed.dtype}")
        allowed = np.ascontiguousarray(allowed, dtype=np.int64)
    return index.search(q, k, allowed=allowed)
