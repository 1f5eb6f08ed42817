"""The on-disk IVF-PQ vector store: an index for collections larger than memory, and its assembly from shards.

An :class:`IVFPQIndex` is an inverted-file index with product quantisation (FAISS ``IndexIVFPQ``), optionally
behind a PCA or an OPQ rotation that reduces the dimension, whose IDs are the row IDs themselves (``add_with_ids``;
no ``IndexIDMap2``). It answers the vector-store protocol of :class:`~.store.VectorStore` (add, search,
reconstruct, write, open). Its parts live beside it: the structure and its training in :mod:`.ivfpq_train`,
the exact vectors in :mod:`.exact_vectors`, the search and re-ranking in :mod:`.ivfpq_search`, the files and
their checks in :mod:`.ivfpq_files`, the assembly from shards in :mod:`.ivfpq_build`.

Opened from a folder, its lists are memory-mapped and its exact vectors read from disk when a search needs them.
:func:`~.ivfpq_build.build_ondisk` assembles those files from shards of vectors that never need to be in memory
together, with :func:`faiss.contrib.ondisk.merge_ondisk`.

Adding to or removing from an index whose lists are on disk first copies its lists into memory
(``count × (code_size + 8)`` bytes: 72 MB per million vectors with 64-byte codes); the exact vectors stay on disk
and new ones are kept in memory until the index is written again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import ivfpq_files, ivfpq_search
from .exact_vectors import EXACT_DTYPES, ExactVectors, FileRows, map_file
from .ivfpq_build import build_ondisk
from .ivfpq_search import REFINE_FACTOR, REFINE_MIN
from .ivfpq_train import faiss_metric, ivf_nprobe, ivfpq_factory, trained_index
from .store import VectorStore

__all__ = [
    "EXACT_DTYPES",
    "REFINE_FACTOR",
    "REFINE_MIN",
    "ExactVectors",
    "FileRows",
    "IVFPQIndex",
    "build_ondisk",
    "ivfpq_factory",
    "map_file",
    "trained_index",
]


class IVFPQIndex(VectorStore):
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

    kind = "ivfpq"

    def __init__(self, faiss_index, *, metric: str, exact: ExactVectors | None = None, factory: str = ""):
        import faiss

        faiss_metric(metric)
        self.faiss_index = faiss_index
        self.ivf = faiss.extract_index_ivf(faiss_index)
        self.metric = metric
        self.exact = exact
        self.factory = factory
        self.refine_factor = REFINE_FACTOR
        self.refine_min = REFINE_MIN
        self.folder = None

    @classmethod
    def new(cls, dim: int, metric: str, train: np.ndarray, *, train_max: int) -> IVFPQIndex:
        """An empty index of :func:`~.ivfpq_train.ivfpq_factory` structure for ``len(train)`` vectors, trained on
        at most ``train_max`` of them (a seeded random sample), keeping exact float32 vectors."""
        if train is None or len(train) == 0:
            raise ValueError("an IVF-PQ index needs training vectors")
        factory = ivfpq_factory(len(train), dim)
        sample = train
        if len(train) > train_max:
            sample = train[np.sort(np.random.default_rng(0).choice(len(train), train_max, replace=False))]
        ix = trained_index(factory, dim, metric, sample)
        return cls(ix, metric=metric, exact=ExactVectors(dim, "float32"), factory=factory)

    # ------------------------------------------------------------------ sizes and search parameters
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

    def set_search_params(self, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Set the cells visited per query (``ef_search`` does not apply)."""
        if nprobe is not None:
            self.nprobe = int(nprobe)

    # ------------------------------------------------------------------ adding and removing
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

    # ------------------------------------------------------------------ reading
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

    def id_sets(self, name: str) -> dict:
        """``{file name: sorted IDs}``: those of the inverted lists and, when kept, of the exact vectors."""
        out = {f"{name}.ivfdata": self.stored_ids()}
        if self.exact is not None:
            out[f"{name}.ids"] = self.exact.ids
        return out

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
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        n = self.ntotal if allowed is None else len(allowed)
        k = int(min(k, n))
        if k <= 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        refine = self.exact is not None if refine is None else bool(refine)
        if refine and self.exact is None:
            raise ValueError("refine=True needs the exact vectors, and this index keeps none")
        kc = int(min(n, max(self.refine_factor * k, self.refine_min))) if refine else k
        probe = self.nprobe if nprobe is None else nprobe
        dist, ids = ivfpq_search.candidates(self.faiss_index, q, kc, nprobe=probe, allowed=allowed)
        if not refine:
            return dist[:, :k], ids[:, :k]
        return ivfpq_search.refine(self.exact, self.metric, q, ids, k)

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
        """The file names of index ``name`` in its folder (:func:`.ivfpq_files.file_names`)."""
        return ivfpq_files.file_names(name, exact=exact)

    def write(self, folder, name: str) -> list[str]:
        """Write the index as ``name`` into ``folder`` (see :mod:`.ivfpq_files`); returns the file names.

        The lists are merged into a new ``.ivfdata`` file; this index keeps its own lists (in memory or mapped).
        The files are written atomically, the ``.ivfpq.json`` renamed into place last.
        """
        import faiss

        with ivfpq_files.writing(folder, name, exact=self.exact is not None) as tmp:
            out = self._empty_faiss()
            ivfpq_files.write_lists(out, self.ivf.invlists, tmp[".ivfdata"])
            faiss.write_index(out, str(tmp[".faiss"]))
            del out
            if self.exact is not None:
                self.exact.write(tmp[".exact"], tmp[".ids"])
            ivfpq_files.write_info(tmp[".ivfpq.json"], self.info(name))
        return self.files(name, exact=self.exact is not None)

    def info(self, name: str) -> dict:
        """The description that ``<name>.ivfpq.json`` holds: structure, sizes, search parameters, exact dtype."""
        return {
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
        """Open index ``name`` of ``folder``: lists memory-mapped, exact vectors read when needed; its files are
        checked, and the parameters and errors are those of :func:`.ivfpq_files.read_files`."""
        ix, info, exact = ivfpq_files.read_files(folder, name, root=root)
        out = cls(ix, metric=info.get("metric", "ip"), exact=exact, factory=str(info.get("factory", "")))
        out.nprobe = int(info.get("nprobe", ivf_nprobe(out.nlist)))
        out.refine_factor = int(info.get("refine_factor", REFINE_FACTOR))
        out.refine_min = int(info.get("refine_min", REFINE_MIN))
        out.folder = Path(folder)
        return out

    def reopened(self, folder, name: str, *, root=None) -> IVFPQIndex:
        """The index to search once written to ``folder``: opened from those files, lists memory-mapped."""
        return self.open(folder, name, root=root)
