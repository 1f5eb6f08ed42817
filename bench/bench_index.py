"""Benchmark the FAISS structures behind cnnwidgets.index against NumPy brute force.

Data: 100,000 × 512 float32 unit vectors around 1,000 Gaussian centres (about 100 per centre, like photos of
1,000 things; per-dimension noise 0.35, so an image's cosine to its centre is about 0.94; seeded), 1,000 queries
from the same distribution, k = 10, inner product (cosine), indexes as :mod:`cnnwidgets.index.vectors` builds
them. ``--clusters 64`` gives a harder case for the approximate indexes: ~1,600 near-equidistant points per
cluster, so the true top 10 is spread over many IVF cells.

Cases (one JSON line each):

* flat: ``IndexFlatIP`` (what ``index_type="flat"`` uses) vs NumPy (blocked matrix product + argpartition).
  Same results: fraction of identical top-10 IDs and the largest score difference. Target: ≥ 3× NumPy.
* ivf: IVF-Flat with 4·√N cells; the smallest nprobe from 1, 2, 3, 4, 6, 8, … whose recall@10 against the exact
  result is ≥ 0.95; speed-up over flat at that nprobe. Target: ≥ 10× flat.
* hnsw: HNSW-Flat (M = 32, efConstruction = 80, the library's settings); the smallest efSearch from
  16, 24, 32, 40, 48, 64, … with recall@10 ≥ 0.95; speed-up over flat. Target: ≥ 10× flat.
* gpu (only when ``cnnwidgets.device.faiss_gpu_available()``): GPU flat vs CPU flat, same results.

Times are medians of ``--repeats`` runs.
Usage: ``python bench/bench_index.py [--n 100000] [--clusters 1000] [--noise 0.35] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

os.environ.setdefault("CNNWIDGETS_DEVICE", "cpu")


def clustered(n, d, seed, *, n_clusters=1000, noise=0.35):
    """Unit vectors around ``n_clusters`` Gaussian centres (the same centres for every seed)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(12345).normal(size=(n_clusters, d))
    x = centres[rng.integers(0, len(centres), n)] + noise * rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, dtype=np.float32)


def numpy_topk(x, q, k, block=250):
    ids = np.empty((len(q), k), np.int64)
    for s in range(0, len(q), block):
        sims = q[s : s + block] @ x.T
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, 1), axis=1, kind="stable")
        ids[s : s + block] = np.take_along_axis(part, order, 1)
    return ids


def median_time(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def recall(found, truth):
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth)]))


def emit(case):
    print(json.dumps(case), flush=True)


def main(argv=None):
    import faiss

    from cnnwidgets.device import faiss_gpu_available
    from cnnwidgets.index import vectors

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--noise", type=float, default=0.35)
    ap.add_argument("--skip-hnsw", action="store_true")
    args = ap.parse_args(argv)
    n, d, k = args.n, args.d, args.k
    x = clustered(n, d, 0, n_clusters=args.clusters, noise=args.noise)
    q = clustered(args.queries, d, 1, n_clusters=args.clusters, noise=args.noise)
    common = {
        "n": n,
        "d": d,
        "clusters": args.clusters,
        "noise": args.noise,
        "queries": args.queries,
        "k": k,
        "faiss_threads": faiss.omp_get_max_threads(),
    }

    t_np, truth = median_time(lambda: numpy_topk(x, q, k), args.repeats)
    flat = vectors.new_index("flat", d, "ip")
    flat.add_with_ids(x, np.arange(n))
    t_flat, (dist, ids) = median_time(lambda: vectors.search(flat, q, k), args.repeats)
    top_ref = np.stack([x[t] @ qq for t, qq in zip(truth, q)])
    same = float(np.mean(ids == truth))
    emit(
        {
            "case": "flat_vs_numpy",
            **common,
            "numpy_s": round(t_np, 4),
            "faiss_flat_s": round(t_flat, 4),
            "speedup": round(t_np / t_flat, 2),
            "target": ">= 3",
            "same_ids": round(same, 5),
            "max_score_diff": float(np.abs(dist - top_ref).max()),
        }
    )

    t0 = time.perf_counter()
    ivf = vectors.new_index("ivf", d, "ip", train=x)
    ivf.add_with_ids(x, np.arange(n))
    build_ivf = time.perf_counter() - t0
    nlist = faiss.downcast_index(ivf.index).nlist
    for nprobe in [
        p for p in (1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 20, 24, 32, 48, 64, 96, 128, 256, 512, 1024) if p <= nlist
    ]:
        vectors.set_search_params(ivf, nprobe=nprobe)
        _, got = vectors.search(ivf, q, k)
        r = recall(got, truth)
        if r >= 0.95:
            break
    t_ivf, _ = median_time(lambda: vectors.search(ivf, q, k), args.repeats)
    emit(
        {
            "case": "ivf",
            **common,
            "nlist": nlist,
            "nprobe": nprobe,
            "recall@10": round(r, 4),
            "build_s": round(build_ivf, 2),
            "ivf_s": round(t_ivf, 4),
            "flat_s": round(t_flat, 4),
            "speedup_vs_flat": round(t_flat / t_ivf, 2),
            "target": ">= 10",
        }
    )

    if not args.skip_hnsw:
        t0 = time.perf_counter()
        hnsw = vectors.new_index("hnsw", d, "ip")
        hnsw.add_with_ids(x, np.arange(n))
        build_hnsw = time.perf_counter() - t0
        for ef in (16, 24, 32, 40, 48, 64, 96, 128, 256, 512):
            vectors.set_search_params(hnsw, ef_search=ef)
            _, got = vectors.search(hnsw, q, k)
            r = recall(got, truth)
            if r >= 0.95:
                break
        t_hnsw, _ = median_time(lambda: vectors.search(hnsw, q, k), args.repeats)
        graph = (
            faiss.serialize_index(faiss.downcast_index(hnsw.index)).nbytes
            - faiss.serialize_index(faiss.downcast_index(flat.index)).nbytes
        )
        emit(
            {
                "case": "hnsw",
                **common,
                "M": vectors.HNSW_M,
                "efConstruction": vectors.HNSW_EF_CONSTRUCTION,
                "efSearch": ef,
                "recall@10": round(r, 4),
                "build_s": round(build_hnsw, 2),
                "hnsw_s": round(t_hnsw, 4),
                "flat_s": round(t_flat, 4),
                "speedup_vs_flat": round(t_flat / t_hnsw, 2),
                "target": ">= 10",
                "graph_bytes_per_vector": round(graph / n, 1),
            }
        )

    if faiss_gpu_available():
        gpu = vectors.to_device(vectors.new_index("flat", d, "ip"), gpu=True)
        gpu.add_with_ids(x, np.arange(n))
        vectors.search(gpu, q[:10], k)  # warm-up
        t_gpu, (gd, gi) = median_time(lambda: vectors.search(gpu, q, k), args.repeats)
        emit(
            {
                "case": "gpu_flat",
                **common,
                "gpu_s": round(t_gpu, 4),
                "cpu_flat_s": round(t_flat, 4),
                "speedup_vs_cpu_flat": round(t_flat / t_gpu, 2),
                "same_ids": round(float(np.mean(gi == ids)), 5),
                "max_score_diff": float(np.abs(gd - dist).max()),
            }
        )


if __name__ == "__main__":
    main()
