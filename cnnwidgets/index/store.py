"""The vector-store protocol: what every store of one descriptor's vectors answers, by row ID.

Every vector store of an :class:`~cnnwidgets.index.ImageIndex` answers one protocol, whatever holds its
vectors: :class:`~.faiss_store.FaissStore` (an ID-mapped FAISS index in memory, on the CPU or a GPU) and
:class:`~.ondisk.IVFPQIndex` (inverted lists memory-mapped, exact vectors on disk) are the two kinds, so the code
that adds, searches, saves and loads never asks which one it holds:

=====================================  ==============================================================================
``kind``, ``d``, ``ntotal``            structure name, dimension, number of vectors stored
``add_with_ids(x, ids)``               add float32 N×D vectors under int64 IDs
``remove_ids(ids)``                    remove IDs; returns how many were stored
``search(q, k, allowed=None)``         the ``k`` nearest of each query (float32 Q×D), among ``allowed`` IDs if given
``reconstruct(id)``                    the stored vector of one ID
``vectors_and_ids()``                  all vectors and their IDs
``empty_copy()``                       an empty store of the same structure (trained cells kept)
``set_search_params(...)``             ``nprobe`` / ``ef_search`` where they apply
``to_device(gpu=...)``                 the store on GPU 0 where its structure runs there
``write(folder, name)``                write its files into ``folder``; returns their names
``open(folder, name, root=None)``      (class method) the store written as ``name`` in ``folder``, checked
``reopened(folder, name, root=None)``  the store to search once it was written there
``id_sets(name)``                      ``{file name: sorted IDs}`` to check against the metadata table
=====================================  ==============================================================================
"""

from __future__ import annotations

__all__ = ["VectorStore"]


class VectorStore:
    """The base of the vector stores: the sizes of its FAISS index, and the defaults of the protocol.

    Attributes
    ----------
    faiss_index : faiss.Index
        The FAISS index that holds the vectors (or their codes) under their IDs.
    kind : str
        The structure: "flat", "ivf", "hnsw" or "ivfpq".
    """

    faiss_index = None
    kind = ""

    @property
    def d(self) -> int:
        """Dimension of the vectors added and searched."""
        return int(self.faiss_index.d)

    @property
    def ntotal(self) -> int:
        """Number of vectors stored."""
        return int(self.faiss_index.ntotal)

    def to_device(self, *, gpu: bool):
        """The store on GPU 0 where its structure runs there; here, itself."""
        return self

    def reopened(self, folder, name: str, *, root=None):
        """The store to search once written as ``name`` in ``folder``; here, itself (its vectors stay in memory)."""
        return self
