"""IVF-PQ indexes for collections larger than memory: inverted lists memory-mapped, exact vectors read from disk.

An :class:`IVFPQIndex` is an inverted-file index with product quantisation (FAISS ``IndexIVFPQ``), optionally
behind a PCA or an OPQ rotation that reduces the dimension, whose IDs are the row IDs themselves (``add_with_ids``;
no ``IndexIDMap2``). A search asks the quantised index for ``max(REFINE_FACTOR·k, REFINE_MIN)`` candidates and,
when the exact vectors are kept, re-ranks them by their exact inner product or L2 distance.

Files of one index named ``name`` in a folder (a generation folder of an index folder, see
:mod:`cnnwidgets.index.storage`)::

    <name>.faiss        the FAISS index (PCA or OPQ matrix, coarse quantiser, PQ codebooks, list offsets)
    <name>.ivfdata      the inverted lists: per list its codes and IDs (faiss.OnDiskInvertedLists)
    <name>.exact        exact vectors, raw little-endian float16 or float32, C order, one row per ID (optional)
    <name>.ids          the ID of each row of <name>.exact, raw little-endian int64 (with <name>.exact)
    <name>.ivfpq.json   structure, metric, count, dimension, exact dtype, search parameters; written last

:meth:`IVFPQIndex.open` memory-maps ``.ivfdata`` and opens ``.exact`` for positioned reads (:class:`FileRows`):
nothing of either is read until a search needs it, and the rows a re-ranking reads are not kept by the process
(mapped, each 2.5 KB row brings its neighbouring pages into the resident set; see :class:`FileRows`). :func:`build_ondisk` assembles these files from shards of vectors that never need to be in memory together:
it trains on a sample, adds each shard to an empty trained copy, writes per-shard indexes and merges their lists
into one ``.ivfdata`` file with :func:`faiss.contrib.ondisk.merge_ondisk`.

Adding to or removing from an index whose lists are on disk first copies its lists into memory
(``count × (code_size + 8)`` bytes: 72 MB per million vectors with 64-byte codes); the exact vectors stay on disk
and new ones are kept in memory until the index is written again.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = [
    "EXACT_DTYPES",
    "REFINE_FACTOR",
    "REFINE_MIN",
    "ExactVectors",
    "IVFPQIndex",
    "ivfpq_factory",
    "trained_index",
    "build_ondisk",
    "map_file",
    "FileRows",
]

EXACT_DTYPES = ("float32", "float16")
REFINE_FACTOR = 4
"""Candidates re-ranked with exact vectors per query: ``max(REFINE_FACTOR * k, REFINE_MIN)``."""
REFINE_MIN = 100
FORMAT = "cnnwidgets-ivfpq"
FORMAT_VERSION = 1
_LE = {"float32": "<f4", "float16": "<f2"}
_BLOCK = 1 << 16
_SHARD_BYTES = 256 << 20
"""Codes buffered in memory before a shard index is written by :func:`build_ondisk`."""


def _faiss_metric(metric: str):
    import faiss

    if metric not in ("ip", "l2"):
        raise ValueError(f"metric={metric!r}: expected 'ip' or 'l2'")
    return faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2


def ivfpq_factory(n: int, d: int) -> str:
    """The FAISS ``index_factory`` string for ``n`` vectors of dimension ``d``, e.g. ``"PCAR256,IVF4000,PQ64"``.

    * Dimension: vectors longer than 256 are projected on their 256 principal axes and randomly rotated
      ("PCAR256"; :func:`trained_index` trains the PCA so that inner products keep their meaning). OPQ would
      learn a better rotation but its training took 134 s for 65,536 vectors of 256 dimensions (5 iterations)
      on the shared 2-core development machine, against 15 s for the PCA of 65,536 1280-d vectors; pass
      ``factory="OPQ64_256,IVF…,PQ64"`` to :func:`build_ondisk` to use it.
    * Codes: ``m = d' / 4`` sub-quantisers (4 dimensions each, at most 64), 8 bits each, so 64 bytes per vector
      at d' = 256 (1/80 of the 5,120 float32 bytes of a 1280-d vector). Below 39 · 256 training vectors the codes
      get fewer bits (``log2(n / 39)``, at least 1), so that every centroid has training data.
    * Cells: ``4·√n``, at most ``n / 39`` (:func:`cnnwidgets.index.vectors.ivf_nlist`).
    """
    from .vectors import ivf_nlist

    n, d = int(n), int(d)
    if d < 1:
        raise ValueError(f"d={d}: expected a positive dimension")
    d_out = min(d, 256)
    m = max(q for q in range(1, max(1, d_out // 4) + 1) if d_out % q == 0)
    nbits = 8 if n >= 39 * 256 else max(1, min(8, int(math.floor(math.log2(max(n, 78) / 39)))))
    codes = f"PQ{m}" if nbits == 8 else f"PQ{m}x{nbits}"
    transform = f"PCAR{d_out}," if d_out < d else ""
    return f"{transform}IVF{ivf_nlist(n)},{codes}"


SMALL_TRAIN = 20_000
"""Below this many training vectors :func:`trained_index` uses one FAISS thread: the k-means steps are then too short
to share, and on this 2-core machine under load two threads trained 3,000 vectors (``PCAR256,IVF32,PQ64x6``,
d = 320) in 13.9 s, one thread in 2.3 s."""

PCA_TRAIN_MAX = 1 << 15
"""At most this many vectors (the first of the sample) train a PCA of :func:`trained_index`."""


def trained_index(factory: str, d: int, metric: str, sample: np.ndarray):
    """A trained, empty FAISS index of ``factory`` (an IVF structure), trained on ``sample`` (float32, N×d).

    A PCA in the chain is trained, for the "ip" metric, on the sample and its negation: their mean is 0, so the
    PCA projects without subtracting a mean and inner products are those of the projected vectors (a centred
    PCA would add a term that depends on each vector). An OPQ rotation is trained with codes of the same bit
    count as the IVF-PQ codes. Polysemous training of the codes is turned off: searches do not use it, and it
    took 7.0 of the 7.5 s that training 4,000 vectors of 64 dimensions took here (``IVF102,PQ16x6``). The sample
    is repeated when it has fewer points than a k-means has centroids. A sample of fewer than
    :data:`SMALL_TRAIN` vectors trains on one thread.
    """
    import faiss

    from ..device import threads

    with threads(1) if len(sample) < SMALL_TRAIN else contextlib.nullcontext():
        return _trained(faiss, factory, int(d), metric, sample)


def _trained(faiss, factory: str, d: int, metric: str, sample: np.ndarray):
    ix = faiss.index_factory(d, factory, _faiss_metric(metric))
    try:
        ivf = faiss.extract_index_ivf(ix)
    except RuntimeError:
        raise ValueError(f"factory {factory!r} is not an IVF structure") from None
    x = np.ascontiguousarray(sample, dtype=np.float32)
    inner = faiss.downcast_index(ivf)
    if hasattr(inner, "do_polysemous_training"):
        inner.do_polysemous_training = False  # searches never use it; it was 94% of the training time
    pq = getattr(inner, "pq", None)
    need = max(ivf.nlist, 1 << pq.nbits if pq is not None else 1)
    if len(x) < need:  # k-means needs at least as many points as centroids
        x = np.resize(x, (need, x.shape[1]))
    opq_pqs = []
    if isinstance(ix, faiss.IndexPreTransform):
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
    else:
        ix.train(x)
    ivf.nprobe = _default_nprobe(ivf.nlist)
    return ix


class _Growing:
    """An int64 array appended to in place: :attr:`view` shows the first ``n`` of an owned buffer that doubles."""

    def __init__(self, values: np.ndarray):
        self._buf = np.array(values, np.int64)
        self.view = self._buf[:]

    def extend(self, new: np.ndarray) -> np.ndarray:
        n = len(self.view)
        if n + len(new) > len(self._buf):
            buf = np.empty(max(2 * (n + len(new)), 1024), np.int64)
            buf[:n] = self.view
            self._buf = buf
        self._buf[n : n + len(new)] = new
        self.view = self._buf[: n + len(new)]
        return self.view


def _default_nprobe(nlist: int) -> int:
    from .vectors import ivf_nprobe

    return ivf_nprobe(nlist)


class ExactVectors:
    """Exact vectors by ID, for re-ranking: rows in a file (:class:`FileRows`) plus chunks added in memory.

    Parameters
    ----------
    dim : int
    dtype : {"float32", "float16"}
        Storage type; :meth:`take` always returns float32.
    """

    def __init__(self, dim: int, dtype: str = "float32"):
        if dtype not in EXACT_DTYPES:
            raise ValueError(f"exact dtype {dtype!r}: expected one of {EXACT_DTYPES}")
        self.dim = int(dim)
        self.dtype = dtype
        self._chunks: list[np.ndarray] = []
        self._starts: list[int] = []
        self._rows = 0
        self._ids = np.zeros(0, np.int64)  # live IDs, sorted (a view of a buffer that may be longer)
        self._pos = None  # the row of each ID in the chunks (None while _identity)
        self._identity = True  # row j holds the vector of _ids[j]
        self._grow_ids = self._grow_pos = None  # the buffers _ids and _pos are views of, while appended to
        self._n_on_disk = 0  # the first chunks are rows of files

    @classmethod
    def wrap(cls, x, ids: np.ndarray, dtype: str) -> ExactVectors:
        """A store over existing rows ``x`` (N×D: a :class:`FileRows`, a memory-mapped or an in-memory array) whose
        row ``j`` is the vector of ``ids[j]``.

        Raises
        ------
        ValueError
            If ``ids`` holds an ID twice.
        """
        store = cls(x.shape[1], dtype)
        store._chunks, store._starts, store._rows = [x], [0], len(x)
        store._n_on_disk = int(isinstance(x, (FileRows, np.memmap)))
        if len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1])):
            store._ids, store._pos, store._identity = ids, None, True
        else:
            order = np.argsort(ids, kind="stable")
            sorted_ids = np.asarray(ids)[order]
            if np.any(sorted_ids[1:] == sorted_ids[:-1]):
                raise ValueError("an ID is listed twice")
            store._ids, store._pos, store._identity = sorted_ids, order.astype(np.int64), False
        return store

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> np.ndarray:
        """The stored IDs, sorted (int64, N)."""
        return np.asarray(self._ids)

    @property
    def on_disk(self) -> bool:
        """Whether some stored rows are read from a file when needed rather than held in memory."""
        return self._n_on_disk > 0

    @property
    def nbytes(self) -> int:
        """Bytes of the stored rows (on disk or in memory)."""
        return self._rows * self.dim * np.dtype(self.dtype).itemsize

    def _positions(self) -> np.ndarray:
        return np.arange(len(self._ids), dtype=np.int64) if self._identity else self._pos

    def _consolidate(self) -> None:
        """Join the chunks added in memory into one (file chunks come first and stay), keeping row numbers."""
        files = self._chunks[: self._n_on_disk]
        added = self._chunks[self._n_on_disk :]
        if len(added) > 1:
            self._chunks = files + [np.concatenate(added)]
            self._starts = self._starts[: len(files) + 1]

    def add(self, ids: np.ndarray, x: np.ndarray) -> None:
        """Store ``x`` (N×D) under ``ids`` (int64, N; none of them stored yet).

        IDs above every stored one (the usual case: row IDs only grow) are appended without sorting, to buffers
        that grow by doubling, so that adding batch after batch costs time in proportion to the rows added.
        """
        ids = np.asarray(ids, np.int64).ravel()
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.dim or len(x) != len(ids):
            raise ValueError(f"expected {len(ids)} × {self.dim} vectors, got {x.shape}")
        if len(ids) == 0:
            return
        rows = np.arange(self._rows, self._rows + len(ids), dtype=np.int64)
        self._chunks.append(np.ascontiguousarray(x, dtype=self.dtype))
        self._starts.append(self._rows)
        self._rows += len(ids)
        n = len(self._ids)
        if bool(np.all(ids[1:] > ids[:-1])) and (n == 0 or ids[0] > self._ids[n - 1]):
            identity = self._identity and n == rows[0]  # still row j = j-th ID
            if self._grow_ids is None or self._grow_ids.view is not self._ids:
                self._grow_ids = _Growing(self._ids)
            if not identity and (self._grow_pos is None or self._grow_pos.view is not self._pos):
                self._grow_pos = _Growing(self._positions())
            self._ids = self._grow_ids.extend(ids)
            self._pos = None if identity else self._grow_pos.extend(rows)
            self._identity = identity
            return
        all_ids = np.concatenate([self.ids, ids])
        all_pos = np.concatenate([self._positions(), rows])
        order = np.argsort(all_ids, kind="stable")
        all_ids = all_ids[order]
        if np.any(all_ids[1:] == all_ids[:-1]):
            self._chunks.pop()
            self._starts.pop()
            self._rows -= len(ids)
            raise ValueError("an ID is already stored")
        self._ids, self._pos, self._identity = all_ids, all_pos[order], False

    def remove(self, ids: np.ndarray) -> None:
        """Forget ``ids`` (the rows stay in their chunks until the store is written)."""
        keep = ~np.isin(np.asarray(self._ids), np.asarray(ids, np.int64))
        self._pos = self._positions()[keep]
        self._ids = np.asarray(self._ids)[keep]
        self._identity = False

    def take(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of ``ids`` as float32 (len(ids) × D).

        Raises
        ------
        KeyError
            If an ID is not stored.
        """
        ids = np.asarray(ids, np.int64).ravel()
        stored = np.asarray(self._ids)
        at = np.searchsorted(stored, ids)
        found = at < len(stored)
        found[found] = stored[at[found]] == ids[found]
        if not found.all():
            raise KeyError(f"ID {int(ids[~found][0])} has no stored vector")
        rows = at if self._identity else self._pos[at]
        self._consolidate()
        out = np.empty((len(ids), self.dim), np.float32)
        starts = np.asarray(self._starts, np.int64)
        chunk_of = np.searchsorted(starts, rows, side="right") - 1
        for c in np.unique(chunk_of):
            sel = np.flatnonzero(chunk_of == c)
            local = rows[sel] - starts[c]
            order = np.argsort(local, kind="stable")  # read a file front to back
            out[sel[order]] = self._chunks[c][local[order]]
        return out

    def write(self, exact_path: Path, ids_path: Path) -> int:
        """Write the vectors in ID order (raw little-endian ``dtype``) and their IDs (raw int64); return the count."""
        ids = np.asarray(self._ids)
        with open(exact_path, "wb") as fx, open(ids_path, "wb") as fi:
            for s in range(0, len(ids), _BLOCK):
                block = ids[s : s + _BLOCK]
                fx.write(self.take(block).astype(_LE[self.dtype]).tobytes())
                fi.write(block.astype("<i8").tobytes())
        return len(ids)


class IVFPQIndex:
    """An IVF-PQ index over row IDs, with its inverted lists in memory or memory-mapped from disk.

    Parameters
    ----------
    faiss_index : faiss.Index
        A trained ``IndexIVFPQ`` (or another ``IndexIVF``), bare or inside an ``IndexPreTransform`` (PCA, OPQ); its
        IDs are the row IDs.
    metric : {"ip", "l2"}
    exact : ExactVectors, optional
        The exact vectors by ID; when given, searches re-rank the quantised candidates with them and
        :meth:`reconstruct` returns them (otherwise it decodes the codes).
    factory : str
        The ``index_factory`` string the structure came from (for reports).

    Attributes
    ----------
    refine_factor, refine_min : int
        A re-ranked search of ``k`` asks for ``max(refine_factor * k, refine_min)`` candidates.
    folder : pathlib.Path or None
        Where the index was opened from.
    """

    def __init__(self, faiss_index, *, metric: str, exact: ExactVectors | None = None, factory: str = ""):
        import faiss

        _faiss_metric(metric)
        self.faiss_index = faiss_index
        self.ivf = faiss.extract_index_ivf(faiss_index)
        self.metric = metric
        self.exact = exact
        self.factory = factory
        self.refine_factor = REFINE_FACTOR
        self.refine_min = REFINE_MIN
        self.folder = None

    # ------------------------------------------------------------------ FAISS-like surface
    @property
    def d(self) -> int:
        """Dimension of the vectors added and searched (before any PCA or OPQ reduction)."""
        return int(self.faiss_index.d)

    @property
    def ntotal(self) -> int:
        return int(self.faiss_index.ntotal)

    @property
    def nprobe(self) -> int:
        """IVF cells visited per query."""
        return int(self.ivf.nprobe)

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self.ivf.nprobe = int(value)

    @property
    def nlist(self) -> int:
        return int(self.ivf.nlist)

    @property
    def code_size(self) -> int:
        """Bytes of one vector's code in the inverted lists (besides its 8-byte ID)."""
        return int(self.ivf.code_size)

    @property
    def on_disk(self) -> bool:
        """Whether the inverted lists are memory-mapped from a file (read-only)."""
        import faiss

        return isinstance(faiss.downcast_InvertedLists(self.ivf.invlists), faiss.OnDiskInvertedLists)

    def __repr__(self) -> str:
        where = f"lists on disk in {self.folder}" if self.on_disk else "lists in memory"
        exact = f"exact {self.exact.dtype}" if self.exact is not None else "no exact vectors"
        return f"IVFPQIndex({self.ntotal} × {self.d}, {self.factory or 'IVF'}, nprobe={self.nprobe}, {where}, {exact})"

    def _writable(self) -> None:
        """Copy memory-mapped (read-only) inverted lists into memory, so that they can change."""
        import faiss

        if not self.on_disk:
            return
        src = self.ivf.invlists
        dst = faiss.ArrayInvertedLists(self.ivf.nlist, self.ivf.code_size)
        for lst in range(self.ivf.nlist):
            size = src.list_size(lst)
            if size:
                dst.add_entries(lst, size, src.get_ids(lst), src.get_codes(lst))
        self.ivf.replace_invlists(dst, True)
        dst.this.disown()

    def add_with_ids(self, x: np.ndarray, ids: np.ndarray) -> None:
        """Add vectors ``x`` (float32, N×D) under ``ids`` (int64, N), which must not be stored yet."""
        x = np.ascontiguousarray(np.atleast_2d(x), dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if x.shape[1] != self.d or len(x) != len(ids):
            raise ValueError(f"expected {len(ids)} × {self.d} vectors, got {x.shape}")
        if len(ids) == 0:
            return
        if self.exact is not None:
            self.exact.add(ids, x)
        self._writable()
        self.faiss_index.add_with_ids(x, ids)

    def remove_ids(self, ids) -> int:
        """Remove ``ids`` (int64 array); returns how many were stored."""
        import faiss

        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self._writable()
        removed = int(self.faiss_index.remove_ids(faiss.IDSelectorBatch(ids)))
        if self.exact is not None:
            self.exact.remove(ids)
        return removed

    def reset(self) -> None:
        """Remove every vector (the trained structure stays)."""
        self.remove_ids(self.stored_ids())

    def stored_ids(self) -> np.ndarray:
        """All IDs in the inverted lists, sorted (int64, N); reads the IDs of every list."""
        import faiss

        lists = self.ivf.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(lst), lists.list_size(lst)).copy()
            for lst in range(self.ivf.nlist)
            if lists.list_size(lst)
        ]
        return np.sort(np.concatenate(parts).astype(np.int64)) if parts else np.zeros(0, np.int64)

    def reconstruct_batch(self, ids) -> np.ndarray:
        """The vectors of ``ids`` (float32, len × D): exact when kept, else decoded from their codes (approximate)."""
        import faiss

        ids = np.asarray(ids, np.int64).ravel()
        if self.exact is not None:
            return self.exact.take(ids)
        if self.ivf.direct_map.type == faiss.DirectMap.NoMap:
            self.ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        return (
            np.vstack([self.faiss_index.reconstruct(int(i)) for i in ids])
            if len(ids)
            else np.zeros((0, self.d), np.float32)
        )

    def reconstruct(self, key: int) -> np.ndarray:
        """The vector of ID ``key`` (float32, D); see :meth:`reconstruct_batch`."""
        return self.reconstruct_batch([int(key)])[0]

    def vectors_and_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """All vectors (float32, N×D, as :meth:`reconstruct_batch` gives them) and their IDs (int64, N, sorted)."""
        ids = self.exact.ids if self.exact is not None else self.stored_ids()
        return self.reconstruct_batch(ids), ids

    def search(
        self, queries: np.ndarray, k: int, *, allowed=None, nprobe: int | None = None, refine: bool | None = None
    ):
        """The ``k`` nearest stored vectors of each query, among ``allowed`` IDs when given.

        Parameters
        ----------
        queries : numpy.ndarray
            float32, Q×D (or D).
        k : int
        allowed : numpy.ndarray, optional
            int64 IDs the results are restricted to.
        nprobe : int, optional
            Cells to visit (default :attr:`nprobe`).
        refine : bool, optional
            Re-rank ``max(refine_factor·k, refine_min)`` quantised candidates by their exact vectors; default:
            when exact vectors are kept.

        Returns
        -------
        (distances, ids) : float32 (Q, k'), int64 (Q, k') with k' = min(k, number searchable); inner products for
        "ip", squared L2 distances for "l2" (exact after re-ranking, from the codes without); ID −1 where fewer
        than k' were found in the visited cells.
        """
        import faiss

        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        n = self.ntotal if allowed is None else len(allowed)
        k = int(min(k, n))
        if k <= 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        refine = self.exact is not None if refine is None else bool(refine)
        if refine and self.exact is None:
            raise ValueError("refine=True needs the exact vectors, and this index keeps none")
        kc = int(min(n, max(self.refine_factor * k, self.refine_min))) if refine else k
        ivf_params = faiss.SearchParametersIVF(nprobe=int(self.nprobe if nprobe is None else nprobe))
        sel = None
        if allowed is not None:
            sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            ivf_params.sel = sel
        params = (
            faiss.SearchParametersPreTransform(index_params=ivf_params)
            if isinstance(self.faiss_index, faiss.IndexPreTransform)
            else ivf_params
        )
        dist, ids = self.faiss_index.search(q, kc, params=params)
        if not refine:
            return dist[:, :k], ids[:, :k]
        return self._refine(q, ids, k)

    def _refine(self, q: np.ndarray, cand: np.ndarray, k: int):
        """Exact re-ranking of candidate IDs ``cand`` (Q × kc, −1 for none) → the best ``k`` per query."""
        worst = np.float32(-np.finfo(np.float32).max if self.metric == "ip" else np.finfo(np.float32).max)
        out_d = np.full((len(q), k), worst, np.float32)
        out_i = np.full((len(q), k), -1, np.int64)
        for s in range(0, len(q), 64):
            block = cand[s : s + 64]
            valid = block >= 0
            uniq = np.unique(block[valid])
            x = self.exact.take(uniq)
            for j, (row, ok) in enumerate(zip(block, valid)):
                ids = row[ok]
                xs = x[np.searchsorted(uniq, ids)]
                qq = q[s + j]
                if self.metric == "ip":
                    sc = xs @ qq
                    order = np.argsort(-sc, kind="stable")[:k]
                else:
                    sc = ((xs - qq) ** 2).sum(axis=1)
                    order = np.argsort(sc, kind="stable")[:k]
                out_d[s + j, : len(order)] = sc[order]
                out_i[s + j, : len(order)] = ids[order]
        return out_d, out_i

    # ------------------------------------------------------------------ structure copies
    def _empty_faiss(self):
        """A trained, empty copy of the FAISS index with its lists in memory (the index itself is unchanged)."""
        import faiss

        ivf, top = self.ivf, self.faiss_index
        saved, own, n_ivf, n_top = ivf.invlists, ivf.own_invlists, ivf.ntotal, top.ntotal
        placeholder = faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)
        ivf.own_invlists = False
        ivf.invlists = placeholder
        ivf.ntotal = top.ntotal = 0
        try:
            copy = faiss.clone_index(top)
        finally:
            ivf.invlists = saved
            ivf.own_invlists = own
            ivf.ntotal, top.ntotal = n_ivf, n_top
        copy_ivf = faiss.extract_index_ivf(copy)
        if copy_ivf.direct_map.type != faiss.DirectMap.NoMap:
            copy_ivf.set_direct_map_type(faiss.DirectMap.NoMap)
        return copy

    def empty_copy(self) -> IVFPQIndex:
        """A trained, empty index of the same structure (lists in memory, exact vectors of the same dtype if kept)."""
        exact = ExactVectors(self.d, self.exact.dtype) if self.exact is not None else None
        copy = IVFPQIndex(self._empty_faiss(), metric=self.metric, exact=exact, factory=self.factory)
        copy.refine_factor, copy.refine_min = self.refine_factor, self.refine_min
        return copy

    # ------------------------------------------------------------------ files
    @staticmethod
    def files(name: str, *, exact: bool = True) -> list[str]:
        """The file names of index ``name`` in its folder."""
        out = [f"{name}.faiss", f"{name}.ivfdata"]
        return out + ([f"{name}.exact", f"{name}.ids"] if exact else []) + [f"{name}.ivfpq.json"]

    def write(self, folder, name: str) -> list[str]:
        """Write the index as ``name`` into ``folder`` (see the module's file list); returns the file names.

        The lists are merged into a new ``.ivfdata`` file; this index keeps its own lists (in memory or mapped).
        Every file is written under a temporary name and renamed, the ``.ivfpq.json`` last.
        """
        import faiss

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            lists_path = tmp / f"{name}.ivfdata"
            ondisk = faiss.OnDiskInvertedLists(self.ivf.nlist, self.ivf.code_size, str(lists_path))
            if self.ntotal:
                sources = faiss.InvertedListsPtrVector()
                sources.push_back(self.ivf.invlists)
                ondisk.merge_from_multiple(sources.data(), 1, False, False)
            else:  # merging nothing would map a file of 0 bytes; an empty file is not mapped
                lists_path.touch()
            out = self._empty_faiss()
            out_ivf = faiss.extract_index_ivf(out)
            out_ivf.replace_invlists(ondisk, True)
            ondisk.this.disown()
            out.ntotal = out_ivf.ntotal = self.ntotal
            if self.exact is not None:
                self.exact.write(tmp / f"{name}.exact", tmp / f"{name}.ids")
            _finish_files(out, folder, tmp, name, self._info(name))
            del out, out_ivf
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.files(name, exact=self.exact is not None)

    def _info(self, name: str) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": name,
            "factory": self.factory,
            "metric": self.metric,
            "dim": self.d,
            "count": self.ntotal,
            "nlist": self.nlist,
            "code_size": self.code_size,
            "nprobe": self.nprobe,
            "refine_factor": self.refine_factor,
            "refine_min": self.refine_min,
            "exact_dtype": None if self.exact is None else self.exact.dtype,
        }

    @classmethod
    def open(cls, folder, name: str, *, root=None) -> IVFPQIndex:
        """Open index ``name`` of ``folder``, memory-mapping its lists and exact vectors.

        Parameters
        ----------
        folder : str or pathlib.Path
        name : str
        root : str or pathlib.Path, optional
            The index folder that ``folder`` belongs to; errors then name it and the file as ``<folder>/<file>``.

        Raises
        ------
        cnnwidgets.index.IndexLoadError
            If a file is missing, unreadable or disagrees with ``<name>.ivfpq.json`` (count, dimension, sizes, IDs).
        """
        import faiss

        from .storage import IndexLoadError

        folder = Path(folder)
        where = root if root is not None else folder
        prefix = f"{folder.name}/" if root is not None else ""

        def fail(problem: str):
            return IndexLoadError(where, problem)

        info_path = folder / f"{name}.ivfpq.json"
        if not info_path.exists():
            raise fail(f"{prefix}{info_path.name} is missing")
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise fail(f"{prefix}{info_path.name} is not valid JSON ({exc})") from None
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            raise fail(f"{prefix}{info_path.name} does not describe a {FORMAT}")
        if not isinstance(info.get("format_version"), int) or info["format_version"] > FORMAT_VERSION:
            raise fail(f"{prefix}{info_path.name}: format version {info.get('format_version')!r} is not supported")
        for f in (f"{name}.faiss", f"{name}.ivfdata"):
            if not (folder / f).exists():
                raise fail(f"{prefix}{f} is missing")
        try:  # the lists are mapped below, from this folder (the path stored in the file may be elsewhere)
            ix = faiss.read_index(str(folder / f"{name}.faiss"), faiss.IO_FLAG_SKIP_IVF_DATA)
        except RuntimeError as exc:
            raise fail(f"{prefix}{name}.faiss cannot be read by FAISS ({str(exc).splitlines()[0]})") from None
        try:
            ivf = faiss.extract_index_ivf(ix)
        except RuntimeError:
            raise fail(f"{prefix}{name}.faiss is not an IVF index") from None
        lists = faiss.downcast_InvertedLists(ivf.invlists)
        if not isinstance(lists, faiss.OnDiskInvertedLists):
            raise fail(f"{prefix}{name}.faiss does not keep its lists on disk")
        lists_path = folder / f"{name}.ivfdata"
        if lists_path.stat().st_size != lists.totsize:
            raise fail(
                f"{prefix}{lists_path.name} has {lists_path.stat().st_size} bytes, {name}.faiss expects {lists.totsize}"
            )
        lists.filename = str(lists_path)
        lists.read_only = True
        if lists.totsize:
            lists.do_mmap()
        if ix.ntotal != info.get("count") or ix.d != info.get("dim"):
            raise fail(
                f"{prefix}{name}.faiss holds {ix.ntotal} × {ix.d}, {info_path.name} says "
                f"{info.get('count')} × {info.get('dim')}"
            )
        exact = None
        dtype = info.get("exact_dtype")
        if dtype is not None:
            if dtype not in EXACT_DTYPES:
                raise fail(f"{prefix}{info_path.name}: exact dtype {dtype!r} is not one of {EXACT_DTYPES}")
            exact = _open_exact(folder, name, dtype, int(ix.ntotal), int(ix.d), fail, prefix)
        out = cls(ix, metric=info.get("metric", "ip"), exact=exact, factory=str(info.get("factory", "")))
        out.nprobe = int(info.get("nprobe", _default_nprobe(out.nlist)))
        out.refine_factor = int(info.get("refine_factor", REFINE_FACTOR))
        out.refine_min = int(info.get("refine_min", REFINE_MIN))
        out.folder = folder
        return out


def map_file(path: Path, dtype, shape: tuple) -> np.ndarray:
    """A read-only array over the whole of file ``path`` (memory-mapped; nothing is read until it is touched)."""
    import mmap

    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return np.frombuffer(mm, dtype=dtype).reshape(shape)


class FileRows:
    """Rows of a raw C-order array file, read when indexed with positioned reads; nothing is kept in memory.

    Re-ranking reads about 100 scattered rows per query. Memory-mapped instead, each row read maps its page and,
    through the kernel's read-ahead and fault-around, its neighbours: after 9,000 queries on a warm 1M-vector
    float16 file the searching process held 2.7 GB of it (1.7 GB with ``MADV_RANDOM``), where these reads leave
    the rows in the page cache, which the kernel shares and reclaims, and out of the process
    (``bench/bench_scale.py``).

    Parameters
    ----------
    path : pathlib.Path
    dtype : numpy dtype
        Of the file's values (e.g. ``"<f2"``).
    shape : (int, int)
        Rows and values per row; the file holds exactly ``rows × values × itemsize`` bytes.
    """

    def __init__(self, path, dtype, shape: tuple):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.shape = (int(shape[0]), int(shape[1]))
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))  # closed with the object
        self._lock = None if hasattr(os, "pread") else threading.Lock()

    def __len__(self) -> int:
        return self.shape[0]

    def __del__(self):
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def _read(self, offset: int, size: int) -> bytes:
        if self._lock is None:
            return os.pread(self._fd, size, offset)
        with self._lock:  # no pread (Windows): seek and read under a lock
            os.lseek(self._fd, offset, os.SEEK_SET)
            return os.read(self._fd, size)

    def __getitem__(self, rows) -> np.ndarray:
        """The rows ``rows`` (int array), in that order, as an array of :attr:`dtype` (len × values)."""
        rows = np.asarray(rows, np.int64).ravel()
        out = np.empty((len(rows), self.shape[1]), self.dtype)
        if len(rows) == 0:
            return out
        if rows.min() < 0 or rows.max() >= self.shape[0]:
            raise IndexError(f"{self.path.name}: rows outside 0..{self.shape[0] - 1}")
        order = np.argsort(rows, kind="stable")
        r = rows[order]
        cut = np.flatnonzero(np.diff(r) != 1) + 1  # runs of consecutive rows are read at once
        for a, b in zip(np.concatenate([[0], cut]), np.concatenate([cut, [len(r)]])):
            size = int(b - a) * self._row_bytes
            data = self._read(int(r[a]) * self._row_bytes, size)
            if len(data) != size:
                raise OSError(f"{self.path}: {len(data)} bytes read where {size} were expected (truncated?)")
            out[order[a:b]] = np.frombuffer(data, self.dtype).reshape(int(b - a), self.shape[1])
        return out


def _open_exact(folder: Path, name: str, dtype: str, count: int, dim: int, fail, prefix: str) -> ExactVectors:
    xf, idf = folder / f"{name}.exact", folder / f"{name}.ids"
    for f in (xf, idf):
        if not f.exists():
            raise fail(f"{prefix}{f.name} is missing")
    want_x = count * dim * np.dtype(dtype).itemsize
    if xf.stat().st_size != want_x:
        raise fail(f"{prefix}{xf.name} has {xf.stat().st_size} bytes, {count} × {dim} {dtype} needs {want_x}")
    if idf.stat().st_size != 8 * count:
        raise fail(f"{prefix}{idf.name} has {idf.stat().st_size} bytes, {count} int64 IDs need {8 * count}")
    if count == 0:
        return ExactVectors(dim, dtype)
    x = FileRows(xf, _LE[dtype], (count, dim))
    ids = map_file(idf, "<i8", (count,))
    try:
        return ExactVectors.wrap(x, ids, dtype)
    except ValueError as exc:
        raise fail(f"{prefix}{idf.name}: {exc}") from None


def _finish_files(out, folder: Path, tmp: Path, name: str, info: dict) -> None:
    """Move the files of ``name`` written in ``tmp`` into ``folder``: lists, exact vectors, FAISS file, info last.

    ``tmp`` holds ``<name>.ivfdata`` (the on-disk lists of ``out``) and, when ``info["exact_dtype"]`` is set,
    ``<name>.exact`` and ``<name>.ids``.
    """
    import faiss

    lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(out).invlists)
    final_lists = folder / f"{name}.ivfdata"
    os.replace(tmp / f"{name}.ivfdata", final_lists)  # the mapping follows the file
    lists.filename = str(final_lists)
    faiss.write_index(out, str(tmp / f"{name}.faiss"))
    if info["exact_dtype"] is not None:
        os.replace(tmp / f"{name}.exact", folder / f"{name}.exact")
        os.replace(tmp / f"{name}.ids", folder / f"{name}.ids")
    os.replace(tmp / f"{name}.faiss", folder / f"{name}.faiss")
    (tmp / f"{name}.ivfpq.json").write_text(json.dumps(info, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp / f"{name}.ivfpq.json", folder / f"{name}.ivfpq.json")


def _chunks_of(shards: Iterable):
    for ids, x in shards:
        ids = np.ascontiguousarray(ids, dtype=np.int64).ravel()
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or len(x) != len(ids):
            raise ValueError(f"a shard has {len(ids)} IDs and vectors of shape {x.shape}; expected (n,) and (n, d)")
        yield ids, x


def build_ondisk(
    shards: Iterable,
    folder,
    *,
    name: str = "cnn",
    metric: str = "ip",
    factory: str | None = None,
    count: int | None = None,
    train_size: int | None = None,
    exact_dtype: str | None = "float16",
    nprobe: int | None = None,
) -> IVFPQIndex:
    """Assemble an on-disk IVF index from shards of vectors that need not fit in memory together.

    The first ``train_size`` vectors of the stream train the structure (shuffle the shards upstream if they are
    ordered by content). Each shard is then encoded by an empty trained copy; shard indexes of up to 256 MB of
    codes are written to a temporary folder inside ``folder`` and merged into one ``<name>.ivfdata`` file by
    :func:`faiss.contrib.ondisk.merge_ondisk`; the exact vectors are streamed to ``<name>.exact``. Memory in use:
    the training sample, one shard, 256 MB of codes and the coarse quantiser.

    Parameters
    ----------
    shards : iterable of (numpy.ndarray, numpy.ndarray)
        ``(ids, vectors)`` pairs: int64 (n,) and float32 (n, d), d the same for all. IDs are the row IDs and must
        be unique over all shards.
    folder : str or pathlib.Path
        Where the files listed in :mod:`cnnwidgets.index.ondisk` are written (created if needed); a generation
        folder of an index folder, or any folder of its own.
    name : str
        File stem, the descriptor name in an index folder.
    metric : {"ip", "l2"}
        Inner product (L2-normalised vectors, cosine) or squared L2 distance.
    factory : str, optional
        A FAISS ``index_factory`` string of an IVF structure, e.g. ``"PCAR256,IVF4096,PQ64"``, ``"OPQ64_256,IVF4096,PQ64"`` or
        ``"IVF4096,Flat"``; default :func:`ivfpq_factory` of ``count`` and d.
    count : int, optional
        The total number of vectors, or an estimate; it sizes the default structure. Needed when ``factory`` is
        not given, unless the whole stream fits in the training sample.
    train_size : int, optional
        Training sample size; default ``max(50 × cells, 65,536)``, at most ``count``.
    exact_dtype : {"float16", "float32", None}
        Keep the exact vectors for re-ranking in this type (float16 halves the file, 2 bytes per dimension;
        ``bench/bench_scale.py`` measures its effect on recall), or not at all.
    nprobe : int, optional
        Cells visited per query (stored with the index); default :func:`cnnwidgets.index.vectors.ivf_nprobe`.

    Returns
    -------
    IVFPQIndex
        Opened from ``folder``: lists memory-mapped, exact vectors read from their file when needed.

    Raises
    ------
    ValueError
        If there are no vectors, shards disagree in dimension or an ID occurs twice, ``factory`` is not an IVF
        structure, or the default structure needs ``count``; ``folder`` then holds no file of ``name``.
    """
    import faiss
    from faiss.contrib.ondisk import merge_ondisk

    from .vectors import ivf_nlist

    if exact_dtype is not None and exact_dtype not in EXACT_DTYPES:
        raise ValueError(f"exact_dtype={exact_dtype!r}: expected one of {EXACT_DTYPES} or None")
    _faiss_metric(metric)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stream = _chunks_of(shards)
    buffered, seen = [], 0
    limit = train_size
    if limit is None:
        limit = max(50 * ivf_nlist(count), 1 << 16) if count is not None else 1 << 16
        if count is not None:
            limit = min(limit, int(count))
    exhausted = False
    while seen < limit:
        try:
            ids, x = next(stream)
        except StopIteration:
            exhausted = True
            break
        buffered.append((ids, x))
        seen += len(ids)
    if seen == 0:
        raise ValueError("build_ondisk: the shards hold no vectors")
    d = buffered[0][1].shape[1]
    if any(x.shape[1] != d for _, x in buffered):
        raise ValueError("build_ondisk: shards differ in dimension")
    if factory is None:
        if count is None and not exhausted:
            raise ValueError(
                "build_ondisk: give count= (the number of vectors, an estimate will do) or factory=; "
                f"the stream holds more than the {limit} training vectors"
            )
        factory = ivfpq_factory(seen if count is None else count, d)
    sample = np.concatenate([x for _, x in buffered])[:limit]
    try:
        trained = trained_index(factory, d, metric, sample)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"build_ondisk: factory {factory!r} cannot be trained ({str(exc).splitlines()[0]})") from None
    del sample
    ivf = faiss.extract_index_ivf(trained)
    ivf.nprobe = int(nprobe) if nprobe is not None else _default_nprobe(ivf.nlist)
    template = faiss.serialize_index(trained)
    tmp = folder / f".{name}-shards-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        shard_files = []
        exact_tmp, ids_tmp = tmp / f"{name}.exact", tmp / f"{name}.ids"
        current, total, last_id, ascending = None, 0, None, True

        def flush():
            nonlocal current
            if current is not None and current.ntotal:
                f = tmp / f"shard{len(shard_files):05d}.faiss"
                faiss.write_index(current, str(f))
                shard_files.append(str(f))
            current = None

        code_size = ivf.code_size
        with open(exact_tmp, "wb") as fx, open(ids_tmp, "wb") as fi:
            for ids, x in _chained(buffered, stream):
                if x.shape[1] != d:
                    raise ValueError(f"build_ondisk: a shard has dimension {x.shape[1]}, the first had {d}")
                if len(ids) == 0:
                    continue
                if current is None:
                    current = faiss.deserialize_index(template)
                current.add_with_ids(x, ids)
                if exact_dtype is not None:
                    fx.write(x.astype(_LE[exact_dtype]).tobytes())
                fi.write(ids.astype("<i8").tobytes())
                if ascending:
                    ascending = bool(np.all(ids[1:] > ids[:-1])) and (last_id is None or ids[0] > last_id)
                last_id = int(ids[-1])
                total += len(ids)
                if current.ntotal * (code_size + 8) >= _SHARD_BYTES:
                    flush()
            flush()
        all_ids = np.memmap(ids_tmp, dtype="<i8", mode="r", shape=(total,))
        if not ascending and len(np.unique(all_ids)) != total:
            raise ValueError("build_ondisk: an ID occurs twice in the shards")
        del all_ids
        out = faiss.deserialize_index(template)
        merge_ondisk(out, shard_files, str(tmp / f"{name}.ivfdata"))
        for f in shard_files:
            os.remove(f)
        info = dict(IVFPQIndex(out, metric=metric, factory=factory)._info(name), exact_dtype=exact_dtype)
        _finish_files(out, folder, tmp, name, info)
        del out
    except BaseException:
        for f in IVFPQIndex.files(name):
            (folder / f).unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return IVFPQIndex.open(folder, name)


def _chained(buffered: list, stream):
    """The buffered shards (released as they are handed out), then the rest of the stream."""
    while buffered:
        yield buffered.pop(0)
    yield from stream
