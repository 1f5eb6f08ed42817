"""FAISS indexes for one descriptor: choice of exact or approximate structure, GPU placement, search with ID filters.

Every "flat", "ivf" and "hnsw" index is wrapped in :class:`faiss.IndexIDMap2`, so its IDs are the row IDs of the
metadata table and vectors can be reconstructed by ID (for "more like this" and for rebuilding). An "ivfpq" index
is an :class:`cnnwidgets.index.ondisk.IVFPQIndex`: its inverted lists carry the row IDs themselves, and it keeps the
exact vectors by ID for re-ranking and reconstruction; loaded, the lists are memory-mapped and the exact vectors
read from disk when needed.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..engine import checks
from .ondisk import IVFPQIndex

__all__ = [
    "AUTO_THRESHOLD",
    "AUTO_MEMORY_BUDGET",
    "INDEX_TYPES",
    "choose_type",
    "new_index",
    "to_device",
    "to_cpu",
    "kind_of",
    "vectors_and_ids",
    "search",
    "set_search_params",
    "ivf_nlist",
    "ivf_nprobe",
]

AUTO_THRESHOLD = 50_000
"""``index_type="auto"`` uses an exact flat index below this many vectors and an approximate one above it.

An exact search costs N×D multiply-adds per query: for 50,000 CNN vectors (D = 1280) that is 64 M, about 10 ms
on one CPU core, still interactive. Above that the approximate index's speed-up (see ``bench/bench_index.py``)
outweighs its small recall loss (recall@10 ≥ 0.95 at the default search parameters).
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
  4 · 256 · 4√N bytes (4 MB at N = 10⁶), and the PCA matrices (12 MB with the quantiser, the whole ``.faiss``
  file at N = 10⁶); the IDs are mapped too.

2 GiB of vectors is 419,430 CNN vectors (2 GiB / 5,120 B), 4.2 million colour histograms (d = 128): a quarter of
an 8 GB laptop, which also holds the CNN, the notebook and the operating system. Above it IVF-PQ with exact
re-ranking is the structure that still fits: ``bench/bench_scale.py`` measured, at 10⁶ synthetic 1280-d vectors,
recall@10 0.916 at the default ``nprobe`` with float16 re-ranking, 335 MB resident in the searching process, and
2,652 B per vector on disk.
"""

INDEX_TYPES = ("auto", "flat", "ivf", "hnsw", "ivfpq")
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


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


def ivf_nlist(n: int) -> int:
    """Number of IVF cells for ``n`` vectors: about 4·√n, with at least 39 training points per cell."""
    return int(max(1, min(4 * math.sqrt(max(n, 1)), n // 39 if n >= 39 else 1)))


def ivf_nprobe(nlist: int) -> int:
    """Cells visited per IVF query: max(16, nlist / 32), at most nlist.

    ``bench/bench_index.py`` reaches recall@10 ≥ 0.95 on 100,000 clustered 512-d vectors with nprobe = 16 of
    1,264 cells; the default visits about twice that, since real embeddings are less tidy than the benchmark's.
    """
    return int(min(nlist, max(16, nlist // 32)))


IVFPQ_TRAIN_MAX = 1 << 17
"""At most this many vectors (a seeded random sample) train a new "ivfpq" index."""


def new_index(kind: str, dim: int, metric: str, train: np.ndarray | None = None):
    """An empty index of structure ``kind``; IVF and IVF-PQ are trained on ``train`` (required for them).

    "flat", "ivf" and "hnsw" are ID-mapped FAISS indexes; "ivfpq" is an :class:`~.ondisk.IVFPQIndex` of
    :func:`~.ondisk.ivfpq_factory` structure for ``len(train)`` vectors, keeping exact float32 vectors.
    """
    import faiss

    m = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
    if kind == "ivfpq":
        if train is None or len(train) == 0:
            raise ValueError("an IVF-PQ index needs training vectors")
        from .ondisk import ExactVectors, ivfpq_factory, trained_index

        factory = ivfpq_factory(len(train), dim)
        sample = train
        if len(train) > IVFPQ_TRAIN_MAX:
            pick = np.sort(np.random.default_rng(0).choice(len(train), IVFPQ_TRAIN_MAX, replace=False))
            sample = train[pick]
        return IVFPQIndex(
            trained_index(factory, dim, metric, sample),
            metric=metric,
            exact=ExactVectors(dim, "float32"),
            factory=factory,
        )
    if kind == "flat":
        inner = faiss.IndexFlatIP(dim) if metric == "ip" else faiss.IndexFlatL2(dim)
    elif kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, HNSW_M, m)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        inner.hnsw.efSearch = HNSW_EF_SEARCH
    elif kind == "ivf":
        if train is None or len(train) == 0:
            raise ValueError("an IVF index needs training vectors")
        nlist = ivf_nlist(len(train))
        quantizer = faiss.IndexFlatIP(dim) if metric == "ip" else faiss.IndexFlatL2(dim)
        inner = faiss.IndexIVFFlat(quantizer, dim, nlist, m)
        inner.train(np.ascontiguousarray(train, dtype=np.float32))
        inner.nprobe = ivf_nprobe(nlist)
        inner.make_direct_map()
        quantizer.this.disown()  # the IVF index owns and frees its quantizer
        inner.own_fields = True
    else:
        raise ValueError(f"index structure {kind!r}: expected 'flat', 'ivf', 'hnsw' or 'ivfpq'")
    return faiss.IndexIDMap2(inner)


def kind_of(index) -> str:
    """ "flat", "ivf" or "hnsw" for an ID-mapped index (CPU or GPU), "ivfpq" for an :class:`~.ondisk.IVFPQIndex`."""
    import faiss

    if isinstance(index, IVFPQIndex):
        return "ivfpq"
    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    name = type(inner).__name__
    if "HNSW" in name:
        return "hnsw"
    if "IVF" in name:
        return "ivf"
    return "flat"


@functools.lru_cache(maxsize=1)
def _gpu_resources():
    import faiss

    return faiss.StandardGpuResources()


def to_device(index, *, gpu: bool):
    """Move a CPU index to GPU 0 when ``gpu`` and its structure runs there (flat, IVF); otherwise return it."""
    if not gpu or kind_of(index) in ("hnsw", "ivfpq"):
        return index
    import faiss

    return faiss.index_cpu_to_gpu(_gpu_resources(), 0, index)


def to_cpu(index):
    """A CPU copy of a GPU index (the index itself when it is already on the CPU)."""
    import faiss

    if isinstance(index, IVFPQIndex):
        return index
    if "Gpu" in type(faiss.downcast_index(index.index) if hasattr(index, "index") else index).__name__:
        return faiss.index_gpu_to_cpu(index)
    return index


def vectors_and_ids(index) -> tuple[np.ndarray, np.ndarray]:
    """All stored vectors (float32, N×D) and their IDs (int64, N), in storage order (ID order for "ivfpq")."""
    import faiss

    if isinstance(index, IVFPQIndex):
        return index.vectors_and_ids()
    index = to_cpu(index)
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    n = index.ntotal
    if n == 0:
        return np.zeros((0, index.d), np.float32), ids
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexIVF):
        inner.make_direct_map()
        return np.vstack([index.reconstruct(int(i)) for i in ids]).astype(np.float32), ids
    return inner.reconstruct_n(0, n).astype(np.float32), ids


def set_search_params(index, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
    """Set IVF ``nprobe`` or HNSW ``efSearch`` on an index (ignored where they do not apply)."""
    import faiss

    if isinstance(index, IVFPQIndex):
        if nprobe is not None:
            index.nprobe = int(nprobe)
        return
    inner = faiss.downcast_index(index.index)
    if nprobe is not None and hasattr(inner, "nprobe"):
        inner.nprobe = int(nprobe)
    if ef_search is not None and hasattr(inner, "hnsw"):
        inner.hnsw.efSearch = int(ef_search)


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
    index : FAISS index or IVFPQIndex
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
    import faiss

    k = checks.integer("k", k, lo=0)
    q = query_matrix(queries, int(index.d))
    if allowed is not None:
        if isinstance(allowed, str):
            raise ValueError(f"allowed must be an array of integer IDs, got {checks.short(allowed)}")
        allowed = checks.numbers_array("allowed", allowed, ndim=1)
        if allowed.size and allowed.dtype.kind not in "iu":
            raise ValueError(f"allowed must be an array of integer IDs, got dtype {allowed.dtype}")
        allowed = np.ascontiguousarray(allowed, dtype=np.int64)
    if isinstance(index, IVFPQIndex):
        return index.search(q, k, allowed=allowed)
    n = index.ntotal if allowed is None else len(allowed)
    k = int(min(k, n))
    if k <= 0:
        return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
    if allowed is None:
        d, i = index.search(q, k)
        return d, i
    allowed = np.ascontiguousarray(allowed, dtype=np.int64)
    try:
        sel = faiss.IDSelectorBatch(allowed)
        kind = kind_of(index)
        params = (
            faiss.SearchParametersHNSW(sel=sel, efSearch=max(HNSW_EF_SEARCH, k))
            if kind == "hnsw"
            else faiss.SearchParametersIVF(sel=sel, nprobe=faiss.downcast_index(index.index).nprobe)
            if kind == "ivf"
            else faiss.SearchParameters(sel=sel)
        )
        d, i = index.search(q, k, params=params)
    except RuntimeError:  # structures without selector support (some GPU indexes): search all, then filter
        d, i = index.search(q, index.ntotal)
        keep = np.isin(i, allowed)
        d = np.stack([row[m][:k] for row, m in zip(d, keep)])
        i = np.stack([row[m][:k] for row, m in zip(i, keep)])
    return d, i
