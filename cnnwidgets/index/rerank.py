"""Re-ranking the first results of an image query with the stored vectors: query expansion, diffusion, k-reciprocal.

All three use only vectors already in the index (one descriptor's FAISS vectors) and cost a few milliseconds
per query on a shortlist of :data:`RERANK_DEPTH` images:

- ``"qe"``, α-query expansion (Radenović, Tolias and Chum, 2018): the query vector plus its
  :data:`QE_NEIGHBOURS` nearest neighbours, each weighted by its similarity to the query to the power α
  (α = 0 is average query expansion), renormalised; then the search runs again with it. One extra search.
- ``"diffusion"`` (Iscen et al., 2017, on the shortlist): a mutual k-nearest-neighbour graph of the shortlist
  with affinities ``max(0, s)^γ``, symmetrically normalised (``S``); the query's similarities to its k nearest
  shortlisted images (``y``); the ranking is by ``f = (I − α S)⁻¹ y``. One M×M similarity matrix and one
  linear solve.
- ``"kreciprocal"`` (Zhong et al., 2017, on the shortlist): the Jaccard distance between k-reciprocal
  neighbour sets (expanded, weighted by ``exp(−d)``, averaged over the ``k2`` nearest), mixed with the original
  distance as ``(1 − λ) d_J + λ d``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "RERANKERS",
    "RERANK_DEPTH",
    "QE_NEIGHBOURS",
    "expand_query",
    "diffusion_scores",
    "kreciprocal_distances",
]

RERANKERS = ("qe", "diffusion", "kreciprocal")
RERANK_DEPTH = 100
"""How many first results diffusion and k-reciprocal re-rank (the rest keep their order)."""
QE_NEIGHBOURS = 5
"""How many nearest neighbours α-query expansion adds to the query."""


def expand_query(query: np.ndarray, neighbours: np.ndarray, *, alpha: float = 3.0, metric: str = "ip") -> np.ndarray:
    """α-query expansion: the query plus its neighbours weighted by ``max(0, similarity)^alpha``.

    Parameters
    ----------
    query : numpy.ndarray
        float32, shape (D,).
    neighbours : numpy.ndarray
        float32, shape (n, D): the query's nearest neighbours (the query's own row left out).
    alpha : float
        0 gives average query expansion; larger values trust the nearest neighbours more.
    metric : {"ip", "l2"}
        "ip": similarity is the inner product and the result is scaled to unit length (for unit-length
        descriptors). "l2": similarity is ``1 / (1 + L2)`` and the result is the weighted mean.

    Returns
    -------
    numpy.ndarray
        float32, shape (D,).
    """
    q = np.asarray(query, np.float64)
    x = np.asarray(neighbours, np.float64).reshape(-1, q.shape[0])
    if metric == "ip":
        sim = x @ q
    else:
        sim = 1.0 / (1.0 + np.sqrt(((x - q) ** 2).sum(axis=1)))
    w = np.maximum(sim, 0.0) ** alpha
    out = q + w @ x
    if metric == "ip":
        norm = np.linalg.norm(out)
        return (out / norm if norm > 0 else q).astype(np.float32)
    return (out / (1.0 + w.sum())).astype(np.float32)


def _similarities(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Similarity of every row of ``a`` to every row of ``b``: inner product, or ``1 / (1 + L2)``; float64.

    The products are float32 (the vectors' own precision, and several times faster than float64 on small
    matrices).
    """
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    ab = (a @ b.T).astype(np.float64)
    if metric == "ip":
        return ab
    d2 = (a.astype(np.float64) ** 2).sum(1)[:, None] + (b.astype(np.float64) ** 2).sum(1)[None, :] - 2.0 * ab
    return 1.0 / (1.0 + np.sqrt(np.maximum(d2, 0.0)))


def _mutual(nearest: np.ndarray) -> np.ndarray:
    """Which points are each other's neighbours: bool, P×P, ``[i, j]`` when ``j`` is in row ``i`` of ``nearest``
    (int, P×k, the indices of each point's nearest points) and ``i`` in row ``j``."""
    p, k = nearest.shape
    among = np.zeros((p, p), bool)
    among[np.repeat(np.arange(p), k), nearest.ravel()] = True
    return among & among.T


def diffusion_scores(
    query: np.ndarray,
    candidates: np.ndarray,
    *,
    k: int = 10,
    alpha: float = 0.99,
    gamma: float = 3.0,
    metric: str = "ip",
) -> np.ndarray:
    """Diffusion scores of shortlisted images for a query: ``f = (I − α S)⁻¹ y``.

    Parameters
    ----------
    query : numpy.ndarray
        float32, shape (D,).
    candidates : numpy.ndarray
        float32, shape (M, D): the shortlist.
    k : int
        Neighbours per node of the mutual kNN graph, and the query's neighbours in ``y``.
    alpha : float
        In [0, 1): how far scores spread along the graph.
    gamma : float
        Affinity exponent: ``a = max(0, s)^γ``.
    metric : {"ip", "l2"}
        How similarity is computed (see :func:`expand_query`).

    Returns
    -------
    numpy.ndarray
        float64, shape (M,): higher ranks first.
    """
    x = np.asarray(candidates, np.float64)
    m = len(x)
    if m == 0:
        return np.zeros(0)
    kk = max(1, min(int(k), m - 1))
    a = np.maximum(_similarities(x, x, metric), 0.0) ** gamma
    np.fill_diagonal(a, 0.0)
    if m > 1:
        a = np.where(_mutual(np.argpartition(-a, kk - 1, axis=1)[:, :kk]), a, 0.0)  # mutual nearest neighbours only
    deg = a.sum(axis=1)
    inv = np.where(deg > 0, 1.0 / np.sqrt(np.where(deg > 0, deg, 1.0)), 0.0)
    s = inv[:, None] * a * inv[None, :]
    qs = np.maximum(_similarities(np.asarray(query)[None, :], x, metric)[0], 0.0) ** gamma
    y = np.zeros(m)
    top = np.argsort(-qs, kind="stable")[: min(int(k), m)]
    y[top] = qs[top]
    return np.linalg.solve(np.eye(m) - alpha * s, y)


def kreciprocal_distances(
    query: np.ndarray,
    candidates: np.ndarray,
    *,
    k1: int = 20,
    k2: int = 6,
    lam: float = 0.3,
    metric: str = "ip",
) -> np.ndarray:
    """k-reciprocal re-ranking distances of shortlisted images to a query (smaller ranks first).

    The query and the M candidates form P = M + 1 points. Their distance ``d`` is the squared Euclidean one
    (``2 − 2 s`` for unit vectors under "ip"), each row divided by its maximum. For each point p, its
    k-reciprocal set R(p, k1) holds the points among its ``k1 + 1`` nearest that have p among theirs; it is
    extended by R(c, k1 / 2) of each member c that shares more than two thirds of it; its members get weights
    ``exp(−d(p, ·))`` summing to 1 (vector V_p), and V_p is replaced by the mean over p's ``k2`` nearest points.
    The Jaccard distance is ``d_J = 1 − Σ min(V_q, V_c) / Σ max(V_q, V_c)``, and the result
    ``(1 − λ) d_J + λ d``.

    Parameters
    ----------
    query : numpy.ndarray
        float32, shape (D,).
    candidates : numpy.ndarray
        float32, shape (M, D).
    k1, k2 : int
        Reciprocal neighbourhood size and local query expansion size (limited to P − 1).
    lam : float
        Weight of the original distance.
    metric : {"ip", "l2"}

    Returns
    -------
    numpy.ndarray
        float64, shape (M,).
    """
    x = np.vstack([np.asarray(query, np.float32)[None, :], np.asarray(candidates, np.float32)])
    p = len(x)
    if p <= 1:
        return np.zeros(0)
    gram = (x @ x.T).astype(np.float64)  # float32 products, as in _similarities
    if metric == "ip":
        d = np.maximum(2.0 - 2.0 * gram, 0.0)
    else:
        sq = np.diag(gram)
        d = np.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0)
    np.fill_diagonal(d, 0.0)
    d = d / np.maximum(d.max(axis=1, keepdims=True), 1e-12)
    k1 = max(1, min(int(k1), p - 1))
    k2 = max(1, min(int(k2), p))
    rank = np.argsort(d, axis=1, kind="stable")

    members = _mutual(rank[:, : k1 + 1])  # [i, j]: j among i's k1 + 1 nearest and i among j's
    half = _mutual(rank[:, : max(1, int(round(k1 / 2))) + 1])
    half_f, members_f = half.astype(np.float32), members.astype(np.float32)  # counts ≤ P are exact in float32
    overlap = half_f @ members_f.T  # [c, i]: |R(c, k1/2) ∩ R(i, k1)|
    joins = members & (2.0 / 3.0 * half.sum(axis=1)[None, :] < overlap.T)  # [i, c]: c's set extends i's
    expanded = members | ((joins.astype(np.float32) @ half_f) > 0)
    v = np.where(expanded, np.exp(-d), 0.0)
    v /= v.sum(axis=1, keepdims=True)
    if k2 > 1:
        v = v[rank[:, :k2]].mean(axis=1)
    vmin = np.minimum(v[0][None, :], v[1:]).sum(axis=1)
    vmax = np.maximum(v[0][None, :], v[1:]).sum(axis=1)
    jaccard = 1.0 - vmin / np.maximum(vmax, 1e-12)
    return (1.0 - lam) * jaccard + lam * d[0, 1:]
