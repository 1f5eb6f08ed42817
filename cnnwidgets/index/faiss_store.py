"""The in-memory vector store: an ID-mapped FAISS index ("flat", "ivf" or "hnsw"), on the CPU or a GPU.

It answers the vector-store protocol of :class:`~.store.VectorStore`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..files import atomic_write
from .ivfpq_train import ivf_nlist, ivf_nprobe
from .store import VectorStore

__all__ = ["FaissStore", "HNSW_M", "HNSW_EF_CONSTRUCTION", "HNSW_EF_SEARCH"]

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


@functools.lru_cache(maxsize=1)
def _gpu_resources():
    import faiss

    return faiss.StandardGpuResources()


class FaissStore(VectorStore):
    """Vectors by ID in an ID-mapped FAISS index (:class:`faiss.IndexIDMap2`), held in memory.

    Parameters
    ----------
    faiss_index : faiss.IndexIDMap2
        The ID map around a flat, IVF-flat or HNSW index, on the CPU or a GPU; its IDs are the row IDs.
    """

    def __init__(self, faiss_index):
        self.faiss_index = faiss_index

    @classmethod
    def new(cls, kind: str, dim: int, metric: str, train: np.ndarray | None = None) -> FaissStore:
        """An empty store of structure ``kind`` ("flat", "ivf" or "hnsw"); "ivf" is trained on ``train``."""
        import faiss

        m = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
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
        return cls(faiss.IndexIDMap2(inner))

    # ------------------------------------------------------------------ what it holds
    @property
    def index(self):
        """The FAISS structure inside the ID map (as :attr:`faiss.IndexIDMap2.index`)."""
        return self.faiss_index.index

    @property
    def metric(self) -> str:
        import faiss

        return "ip" if self.faiss_index.metric_type == faiss.METRIC_INNER_PRODUCT else "l2"

    @property
    def gpu(self) -> bool:
        """Whether the structure runs on a GPU."""
        import faiss

        return "Gpu" in type(faiss.downcast_index(self.index)).__name__

    @property
    def kind(self) -> str:
        """ "flat", "ivf" or "hnsw"."""
        import faiss

        name = type(faiss.downcast_index(self.index)).__name__
        return "hnsw" if "HNSW" in name else "ivf" if "IVF" in name else "flat"

    def __repr__(self) -> str:
        return f"FaissStore({self.ntotal} × {self.d}, {self.kind}{', GPU' if self.gpu else ''})"

    def stored_ids(self) -> np.ndarray:
        """All IDs, sorted (int64, N)."""
        import faiss

        return np.sort(faiss.vector_to_array(self.faiss_index.id_map).astype(np.int64))

    def id_sets(self, name: str) -> dict:
        """``{"<name>.faiss": sorted IDs}``."""
        return {f"{name}.faiss": self.stored_ids()}

    # ------------------------------------------------------------------ devices and copies
    def to_cpu(self) -> FaissStore:
        """The store on the CPU (itself when it is there)."""
        import faiss

        return FaissStore(faiss.index_gpu_to_cpu(self.faiss_index)) if self.gpu else self

    def to_device(self, *, gpu: bool) -> FaissStore:
        """The store on GPU 0 when ``gpu`` and its structure runs there (flat, IVF); otherwise itself."""
        if not gpu or self.gpu or self.kind == "hnsw":
            return self
        import faiss

        return FaissStore(faiss.index_cpu_to_gpu(_gpu_resources(), 0, self.faiss_index))

    def empty_copy(self) -> FaissStore:
        """An empty CPU store of the same structure (an IVF keeps its trained cells)."""
        import faiss

        if self.kind != "ivf":
            return FaissStore.new(self.kind, self.d, self.metric)
        copy = faiss.clone_index(self.to_cpu().faiss_index)
        copy.reset()
        return FaissStore(copy)

    def set_search_params(self, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Set IVF ``nprobe`` or HNSW ``efSearch`` (ignored where they do not apply)."""
        import faiss

        inner = faiss.downcast_index(self.index)
        if nprobe is not None and hasattr(inner, "nprobe"):
            inner.nprobe = int(nprobe)
        if ef_search is not None and hasattr(inner, "hnsw"):
            inner.hnsw.efSearch = int(ef_search)

    # ------------------------------------------------------------------ adding and removing
    def add_with_ids(self, x: np.ndarray, ids: np.ndarray) -> None:
        """Add vectors ``x`` (float32, N×D) under ``ids`` (int64, N)."""
        self.faiss_index.add_with_ids(np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(ids, np.int64))

    def remove_ids(self, ids) -> int:
        """Remove ``ids`` (int64 array); returns how many were stored.

        A flat CPU index deletes in place; HNSW cannot delete, and IVF and GPU indexes do not compact their IDs, so
        they are rebuilt from the kept vectors.
        """
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if self.kind == "flat" and not self.gpu:
            return int(self.faiss_index.remove_ids(ids))
        x, stored = self.vectors_and_ids()
        keep = ~np.isin(stored, ids)
        rebuilt = self.empty_copy()
        if keep.any():
            rebuilt.add_with_ids(x[keep], stored[keep])
        self.faiss_index = rebuilt.to_device(gpu=self.gpu).faiss_index
        return int(len(stored) - keep.sum())

    # ------------------------------------------------------------------ reading
    def reconstruct(self, key: int) -> np.ndarray:
        """The vector of ID ``key`` (float32, D)."""
        return self.faiss_index.reconstruct(int(key))

    def vectors_and_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """All stored vectors (float32, N×D) and their IDs (int64, N), in storage order."""
        import faiss

        cpu = self.to_cpu().faiss_index
        ids = faiss.vector_to_array(cpu.id_map).astype(np.int64)
        if cpu.ntotal == 0:
            return np.zeros((0, cpu.d), np.float32), ids
        inner = faiss.downcast_index(cpu.index)
        if isinstance(inner, faiss.IndexIVF):
            inner.make_direct_map()
            return np.vstack([cpu.reconstruct(int(i)) for i in ids]).astype(np.float32), ids
        return inner.reconstruct_n(0, cpu.ntotal).astype(np.float32), ids

    def search(self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None):
        """The ``k`` nearest of each query (float32, Q×D), among ``allowed`` IDs (int64) when given.

        Returns
        -------
        (distances, ids) : float32 (Q, k'), int64 (Q, k') with k' = min(k, number searchable): inner products
        for "ip", squared L2 distances for "l2".
        """
        import faiss

        q = queries
        n = self.ntotal if allowed is None else len(allowed)
        k = int(min(k, n))
        if k <= 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        if allowed is None:
            return self.faiss_index.search(q, k)
        allowed = np.ascontiguousarray(allowed, dtype=np.int64)
        try:
            sel = faiss.IDSelectorBatch(allowed)
            kind = self.kind
            params = (
                faiss.SearchParametersHNSW(sel=sel, efSearch=max(HNSW_EF_SEARCH, k))
                if kind == "hnsw"
                else faiss.SearchParametersIVF(sel=sel, nprobe=faiss.downcast_index(self.index).nprobe)
                if kind == "ivf"
                else faiss.SearchParameters(sel=sel)
            )
            return self.faiss_index.search(q, k, params=params)
        except RuntimeError:  # structures without selector support (some GPU indexes): search all, then filter
            d, i = self.faiss_index.search(q, self.ntotal)
            keep = np.isin(i, allowed)
            d = np.stack([row[m][:k] for row, m in zip(d, keep)])
            i = np.stack([row[m][:k] for row, m in zip(i, keep)])
            return d, i

    # ------------------------------------------------------------------ files
    def write(self, folder, name: str) -> list[str]:
        """Write ``<name>.faiss`` (FAISS's own format, from a CPU copy) into ``folder`` atomically."""
        import faiss

        cpu = self.to_cpu().faiss_index
        atomic_write(Path(folder) / f"{name}.faiss", lambda tmp: faiss.write_index(cpu, str(tmp)))
        return [f"{name}.faiss"]

    @classmethod
    def open(cls, folder, name: str, *, root=None) -> FaissStore:
        """Read ``<name>.faiss`` of ``folder``, an ID-mapped FAISS index.

        Raises
        ------
        cnnwidgets.index.IndexLoadError
            If the file is missing, unreadable by FAISS, or not an ID-mapped index.
        """
        import faiss

        from .storage import IndexLoadError

        folder = Path(folder)
        prefix = f"{folder.name}/" if root is not None else ""
        where = root if root is not None else folder
        f = folder / f"{name}.faiss"
        if not f.exists():
            raise IndexLoadError(where, f"{prefix}{name}.faiss is missing (descriptor {name!r} is in the manifest)")
        try:
            ix = faiss.read_index(str(f))
        except RuntimeError as exc:
            raise IndexLoadError(
                where, f"{prefix}{name}.faiss cannot be read by FAISS ({str(exc).splitlines()[0]})"
            ) from None
        if not hasattr(ix, "id_map"):
            ix = faiss.downcast_index(ix)
        if not hasattr(ix, "id_map"):
            raise IndexLoadError(where, f"{name}.faiss is not an ID-mapped index")
        return cls(ix)
