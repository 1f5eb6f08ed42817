"""Searching an IVF-PQ index: quantised candidates from the visited cells, re-ranked by their exact vectors.

A search of ``k`` asks the quantised index for ``max(REFINE_FACTOR·k, REFINE_MIN)`` candidates
(:func:`candidates`) and, when the exact vectors are kept, orders them by their exact inner product or squared L2
distance to the query (:func:`refine`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["REFINE_FACTOR", "REFINE_MIN", "candidates", "refine"]

REFINE_FACTOR = 4
"""Candidates re-ranked with exact vectors per query: ``max(REFINE_FACTOR * k, REFINE_MIN)``."""
REFINE_MIN = 100
_QUERY_BLOCK = 64


def candidates(faiss_index, queries: np.ndarray, k: int, *, nprobe: int, allowed=None):
    """The ``k`` nearest codes of each query (float32, Q×D) in ``nprobe`` cells, among ``allowed`` IDs when given.

    Returns
    -------
    (distances, ids) : float32 (Q, k), int64 (Q, k); ID −1 where the visited cells hold fewer than ``k``.
    """
    import faiss

    ivf_params = faiss.SearchParametersIVF(nprobe=int(nprobe))
    if allowed is not None:
        ivf_params.sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
    params = (
        faiss.SearchParametersPreTransform(index_params=ivf_params)
        if isinstance(faiss_index, faiss.IndexPreTransform)
        else ivf_params
    )
    return faiss_index.search(queries, k, params=params)


def refine(exact, metric: str, queries: np.ndarray, cand: np.ndarray, k: int):
    """Exact re-ranking of candidate IDs ``cand`` (Q × kc, −1 for none) by ``exact.take`` → the best ``k`` per query.

    Returns
    -------
    (distances, ids) : float32 (Q, k), int64 (Q, k); inner products ("ip", highest first) or squared L2 distances
    ("l2", lowest first); ID −1 and the worst value where a query had fewer than ``k`` candidates.
    """
    worst = np.float32(-np.finfo(np.float32).max if metric == "ip" else np.finfo(np.float32).max)
    out_d = np.full((len(queries), k), worst, np.float32)
    out_i = np.full((len(queries), k), -1, np.int64)
    for s in range(0, len(queries), _QUERY_BLOCK):
        block = cand[s : s + _QUERY_BLOCK]
        valid = block >= 0
        uniq = np.unique(block[valid])
        x = exact.take(uniq)
        for j, (row, ok) in enumerate(zip(block, valid)):
            ids = row[ok]
            xs = x[np.searchsorted(uniq, ids)]
            q = queries[s + j]
            if metric == "ip":
                sc = xs @ q
                order = np.argsort(-sc, kind="stable")[:k]
            else:
                sc = ((xs - q) ** 2).sum(axis=1)
                order = np.argsort(sc, kind="stable")[:k]
            out_d[s + j, : len(order)] = sc[order]
            out_i[s + j, : len(order)] = ids[order]
    return out_d, out_i
