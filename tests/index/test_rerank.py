"""Re-ranking (α-QE, diffusion, k-reciprocal) against brute-force reference implementations on small data."""

import numpy as np
import pytest

from cnnwidgets.index import ImageIndex
from cnnwidgets.index.evaluation import evaluate
from cnnwidgets.index.rerank import (
    QE_NEIGHBOURS,
    RERANK_DEPTH,
    diffusion_scores,
    expand_query,
    kreciprocal_distances,
)


def _clusters(n=60, d=16, classes=6, noise=0.8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, d))
    x = np.vstack([centres[i % classes] + noise * rng.normal(size=d) for i in range(n)]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = [i % classes for i in range(n)]
    return x, labels


@pytest.fixture(scope="module")
def data():
    x, labels = _clusters()
    paths = [f"/set/c{c}/img{n}.png" for n, c in enumerate(labels)]
    index = ImageIndex.from_vectors(paths, {"cnn": x, "color": np.abs(x)})
    return index, x, paths, labels


# ---------------------------------------------------------------- brute-force references
def reference_qe(x, q, own, n, alpha=3.0):
    sims = x @ q
    order = [int(i) for i in np.argsort(-sims, kind="stable") if i != own][:n]
    e = q.astype(np.float64).copy()
    for i in order:
        e += max(float(sims[i]), 0.0) ** alpha * x[i]
    return e / np.linalg.norm(e)


def reference_diffusion(q, x, k=10, alpha=0.99, gamma=3.0, iterations=6000):
    m = len(x)
    sim = x.astype(np.float64) @ x.astype(np.float64).T
    near = []
    for i in range(m):
        others = sorted((j for j in range(m) if j != i), key=lambda j: -sim[i, j])
        near.append(set(others[:k]))
    a = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            if i != j and j in near[i] and i in near[j]:
                a[i, j] = max(sim[i, j], 0.0) ** gamma
    deg = a.sum(1)
    s = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            if deg[i] > 0 and deg[j] > 0:
                s[i, j] = a[i, j] / np.sqrt(deg[i] * deg[j])
    qs = np.maximum(x.astype(np.float64) @ q, 0.0) ** gamma
    y = np.zeros(m)
    for j in sorted(range(m), key=lambda j: -qs[j])[:k]:
        y[j] = qs[j]
    f = y.copy()
    for _ in range(iterations):  # f = sum over t of (alpha S)^t y
        f = alpha * s @ f + y
    return f


def reference_kreciprocal(q, x, k1=20, k2=6, lam=0.3):
    pts = np.vstack([q[None, :], x]).astype(np.float64)
    p = len(pts)
    d = np.array([[max(((pts[i] - pts[j]) ** 2).sum(), 0.0) for j in range(p)] for i in range(p)])
    d = d / d.max(axis=1, keepdims=True)
    rank = [sorted(range(p), key=lambda j: (d[i, j], j)) for i in range(p)]

    def recip(i, kk):
        return {j for j in rank[i][: kk + 1] if i in rank[j][: kk + 1]}

    v = np.zeros((p, p))
    for i in range(p):
        r = recip(i, k1)
        expanded = set(r)
        for c in r:
            rc = recip(c, int(round(k1 / 2)))
            if len(rc & r) > 2 / 3 * len(rc):
                expanded |= rc
        total = sum(np.exp(-d[i, j]) for j in expanded)
        for j in expanded:
            v[i, j] = np.exp(-d[i, j]) / total
    v = np.array([v[rank[i][:k2]].mean(axis=0) for i in range(p)])
    out = []
    for j in range(1, p):
        jac = 1 - np.minimum(v[0], v[j]).sum() / np.maximum(v[0], v[j]).sum()
        out.append((1 - lam) * jac + lam * d[0, j])
    return np.array(out)


# ---------------------------------------------------------------- the functions
def test_expand_query_matches_the_reference(data):
    _, x, _, _ = data
    q = x[3]
    sims = x @ q
    nn = [i for i in np.argsort(-sims, kind="stable") if i != 3][:QE_NEIGHBOURS]
    np.testing.assert_allclose(expand_query(q, x[nn]), reference_qe(x, q, 3, QE_NEIGHBOURS), atol=1e-6)
    avg = expand_query(q, x[nn], alpha=0.0)  # average query expansion
    np.testing.assert_allclose(avg, (q + x[nn].sum(0)) / np.linalg.norm(q + x[nn].sum(0)), atol=1e-6)


def test_diffusion_matches_the_power_series():
    x, _ = _clusters(n=40, seed=1)
    q = x[0] + 0.1 * x[1]
    q = (q / np.linalg.norm(q)).astype(np.float32)
    got, want = diffusion_scores(q, x, k=8), reference_diffusion(q, x, k=8)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-8)


def test_kreciprocal_matches_the_reference():
    x, _ = _clusters(n=45, seed=2)
    q = x[5]
    np.testing.assert_allclose(kreciprocal_distances(q, x[6:]), reference_kreciprocal(q, x[6:]), atol=1e-6)
    np.testing.assert_allclose(
        kreciprocal_distances(q, x[6:], k1=7, k2=3, lam=0.5), reference_kreciprocal(q, x[6:], 7, 3, 0.5), atol=1e-6
    )


# ---------------------------------------------------------------- through search
def test_search_with_qe_is_a_search_with_the_expanded_query(data):
    index, x, paths, _ = data
    hits = index.search(image=paths[3], mode="cnn", k=10, rerank="qe")
    e = reference_qe(x, x[3], 3, QE_NEIGHBOURS)
    want = np.argsort(-(x @ e.astype(np.float32)), kind="stable")[:10]
    assert [h.path for h in hits] == [paths[i] for i in want]
    assert [h.scores["qe"] for h in hits] == pytest.approx((x @ e)[want].tolist(), abs=1e-5)


def test_search_with_diffusion_and_kreciprocal_reorders_the_shortlist(data):
    index, x, paths, _ = data
    assert len(paths) < RERANK_DEPTH  # the shortlist is the whole set here
    order = np.argsort(-(x @ x[7]), kind="stable")
    d = diffusion_scores(x[7], x[order])
    hits = index.search(image=paths[7], mode="cnn", k=12, rerank="diffusion")
    assert [h.path for h in hits] == [paths[order[j]] for j in np.argsort(-d, kind="stable")[:12]]
    assert hits[0].scores["diffusion"] == pytest.approx(d.max()) and "cnn" in hits[0].scores
    kr = kreciprocal_distances(x[7], x[order])
    hits = index.search(image=paths[7], mode="cnn", k=12, rerank="kreciprocal")
    assert [h.path for h in hits] == [paths[order[j]] for j in np.argsort(kr, kind="stable")[:12]]


def test_semantic_mode_keeps_class_matches_first_when_reranked():
    x, labels = _clusters(n=30, seed=3)
    paths = [f"/s/{n}.png" for n in range(30)]
    tags = [[("tabby" if c % 2 else "beagle", 0.9)] for c in labels]
    index = ImageIndex.from_vectors(paths, {"cnn": x}, tags=tags)
    for rerank in ("qe", "diffusion", "kreciprocal"):
        hits = index.search(image=paths[0], mode="semantic", k=30, rerank=rerank)
        flags = [h.scores["class_match"] for h in hits]
        assert flags == sorted(flags, reverse=True) and sum(flags) == 15, rerank


def test_rerank_is_checked_and_reported_by_evaluate(data):
    index, _, paths, labels = data
    with pytest.raises(ValueError, match="rerank"):
        index.search(image=paths[0], mode="cnn", rerank="magic")
    assert index.search(text="x", mode="text", k=3, rerank="qe") == index.search(text="x", mode="text", k=3)
    lab = dict(zip(paths, labels))
    out = evaluate(index, lab, modes=["cnn", "color"], rerank=["qe", "diffusion"])
    assert set(out) == {"cnn", "color", "cnn+qe", "cnn+diffusion", "color+qe", "color+diffusion"}
    assert out["cnn+qe"]["queries"] == out["cnn"]["queries"] == len(paths)
    assert out["cnn+diffusion"]["mAP"] >= out["cnn"]["mAP"] - 0.05
