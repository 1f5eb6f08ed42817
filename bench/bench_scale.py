"""Scaling benchmark: search a million CNN-sized vectors with structures that do not hold them in memory.

Case ``search`` (one JSON line per structure, then a summary line):

* Data: ``--n`` (default 1,000,000) synthetic unit vectors of dimension 1280 (EfficientNet-Lite0's "cnn"
  descriptor, compared by inner product), generated in shards of 50,000 that are never all in memory at once
  (seeded). Each vector is a common non-negative direction (length 1, as the ReLU features of a CNN share a
  positive mean) plus one of N/100 cluster centres plus a variation in a 32-dimensional subspace (one of 8
  bases, length ``--spread`` = 0.8) plus isotropic noise (length ``--noise`` = 0.4), normalised: photos of N/100
  things, about 100 each, that vary along a few directions (pose, light). Centres and bases are Gaussian with a
  power-law spectrum over random orthonormal axes (variance of axis i ∝ 1/i, expected length 1), as the spectrum
  of CNN embeddings decays; isotropic centres would leave nothing for a PCA or a coarse quantiser to find.
  Cosine similarities then resemble EfficientNet features': about 0.83 to the nearest vector, 0.79 to the 10th,
  0.36 between random pairs (printed with the data). ``--queries`` queries (default 1,000) come from the same
  distribution with another seed.
* Ground truth: exact top-10 by inner product, streaming over the shards (each shard is generated once and
  appended to a float32 file, which the builds below read back shard by shard).
* Structures:
  - ``flat_100k``: ``IndexFlatIP`` on the first 100,000 vectors, in memory; its recall is against the exact top
    10 of that subset (1.0 by construction), its memory and speed are the reference.
  - ``ivf_flat_ondisk``: ``IVF1024,Flat`` (√N cells: 4·√N cells of 1280-d k-means took too long to train here),
    lists on disk (:func:`cnnwidgets.index.ondisk.build_ondisk`, ``exact_dtype=None``).
  - ``ivfpq_ondisk``: the default "ivfpq" structure (:func:`cnnwidgets.index.ondisk.ivfpq_factory`, PCA to 256
    dimensions, 64-byte codes), lists and float16 exact vectors on disk; searched at several ``nprobe`` without
    re-ranking, with float16 re-ranking (the files as saved) and with float32 re-ranking (the same lists with the
    float32 vectors), re-ranking ``max(4k, 100)`` candidates.
* Per structure and setting: recall@10 against the exact search of the same queries, queries/s (median of
  ``--repeats`` runs of all queries, one call each), resident memory of the searching process (a fresh
  subprocess per structure: VmRSS after the searches, its anonymous and file-backed parts, and the peak VmHWM,
  from /proc/self/status), bytes per vector on disk, build time.

The page cache is warm (the files were just written); RssFile counts the pages of mapped files the searches
touched (the inverted lists; IVF-PQ reads its exact vectors with positioned reads, which leave them in the page
cache and out of the process, see :class:`cnnwidgets.index.ondisk.FileRows`). Targets: IVF-PQ on disk with re-ranking recall@10 ≥ 0.90 and VmRSS < 1 GB at 1,000,000 vectors.
Temporary files go to a folder under ``--workdir`` (default the system's temporary folder) that is removed
at the end (``--keep`` keeps it).

Case ``build``: one folder of ``--images`` (2,000) JPEGs (``bench_retrieval.make_folder``: rotations, scales and
crops of the bundled samples, ≤ 256 px) and one broken file, indexed with the default descriptors by the local
executor and by Ray with 1 and 2 actors (one CPU each) on a local 2-CPU cluster started once before the timings;
builds interleaved, medians of ``--build-repeats``; ratio of each to the local build; max abs difference of the
Ray vectors from the local ones, and whether tags, paths and the skipped list are identical.

Usage: ``python bench/bench_scale.py --case search|build|all [--n 1000000] [--queries 1000] [--images 2000]
[--build-repeats 2] [--workdir /tmp]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("CNNWIDGETS_DEVICE", "cpu")

DIM = 1280
SHARD = 50_000
K = 10


# ---------------------------------------------------------------------------------------------- data
class Synthetic:
    """Seeded clustered unit vectors with a power-law spectrum, generated shard by shard (see the module docstring)."""

    def __init__(self, *, clusters=10_000, rank=32, bases=8, offset=1.0, spread=0.8, noise=0.4, seed=12345):
        rng = np.random.default_rng(seed)
        axes, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
        power = np.arange(1, DIM + 1) ** -0.5  # variance of axis i ∝ 1/i
        shaped = (axes * (power / np.sqrt((power**2).sum()))[None, :]).T.astype(np.float32)  # rows s_i·u_i
        self.centres = rng.standard_normal((clusters, DIM), dtype=np.float32) @ shaped
        self.bases = np.stack(
            [
                rng.standard_normal((rank, DIM), dtype=np.float32) / np.float32(np.sqrt(rank)) @ shaped
                for _ in range(bases)
            ]
        )
        common = np.abs(rng.standard_normal(DIM)).astype(np.float32)
        self.common = np.float32(offset) * common / np.linalg.norm(common)
        self.spread, self.noise, self.seed = float(spread), float(noise), seed

    def vectors(self, n: int, stream: int) -> np.ndarray:
        """``n`` vectors (float32, n × 1280) of random stream ``stream``."""
        rng = np.random.default_rng([self.seed, stream])
        label = rng.integers(0, len(self.centres), n)
        x = self.centres[label] + self.common
        z = rng.standard_normal((n, self.bases.shape[1]), dtype=np.float32) * np.float32(self.spread)
        basis = label % len(self.bases)
        for b in range(len(self.bases)):
            sel = basis == b
            x[sel] += z[sel] @ self.bases[b]
        x += np.float32(self.noise / np.sqrt(DIM)) * rng.standard_normal((n, DIM), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x


def topk_merge(best_s, best_i, s, offset, k=K):
    """Merge the top ``k`` of score block ``s`` (Q × n, IDs ``offset + column``) into the running top ``k``."""
    part = np.argpartition(-s, k, axis=1)[:, :k]
    cand_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
    cand_i = np.concatenate([best_i, part + offset], axis=1)
    order = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(cand_s, order, 1), np.take_along_axis(cand_i, order, 1)


def make_data(n, queries, work: Path, gen: Synthetic):
    """Write the vectors (float32, ID order), the queries and the exact top-10 IDs (of all n and of the first
    100,000); return the mean cosine of the queries' 1st and 10th neighbours and of random pairs."""
    q = gen.vectors(queries, stream=10**6)
    np.save(work / "queries.npy", q)
    best = (np.full((queries, K), -np.inf, np.float32), np.zeros((queries, K), np.int64))
    sub = min(n, 100_000)
    best_sub = best
    with open(work / "vectors.f32", "wb") as f:
        for s in range(0, n, SHARD):
            x = gen.vectors(min(SHARD, n - s), stream=s // SHARD)
            f.write(x.tobytes())
            sims = q @ x.T
            best = topk_merge(*best, sims, s)
            if s < sub:
                best_sub = topk_merge(*best_sub, sims[:, : sub - s], s)
    np.save(work / "truth.npy", best[1])
    np.save(work / "truth_100k.npy", best_sub[1])
    pairs = gen.vectors(2000, stream=10**6 + 1)
    return {
        "cos_1st": round(float(best[0][:, 0].mean()), 3),
        "cos_10th": round(float(best[0][:, K - 1].mean()), 3),
        "cos_random_pairs": round(float((pairs[:1000] * pairs[1000:]).sum(1).mean()), 3),
    }


def shards_from(path: Path, n: int):
    """(ids, vectors) shards read back from the float32 file."""
    x = np.memmap(path, dtype=np.float32, mode="r", shape=(n, DIM))
    for s in range(0, n, SHARD):
        yield np.arange(s, min(s + SHARD, n), dtype=np.int64), np.array(x[s : s + SHARD])


def folder_bytes(folder: Path) -> dict:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}


# ---------------------------------------------------------------------------------------------- measuring
def memory() -> dict:
    """VmRSS, RssAnon, RssFile and VmHWM of this process in MB (1e6 bytes)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = round(int(value.split()[0]) * 1024 / 1e6, 1)
    return out


def recall(found, truth):
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / len(b) for a, b in zip(found, truth)]))


def timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def child(spec: dict) -> dict:
    """Search one structure in this (fresh) process; called through ``--child``."""
    import faiss

    from cnnwidgets.index import ondisk

    base = memory()
    q = np.load(spec["queries"])
    truth = np.load(spec["truth"])
    t0 = time.perf_counter()
    if spec["kind"] == "flat":
        x = np.memmap(spec["vectors"], dtype=np.float32, mode="r", shape=(spec["n"], DIM))
        index = faiss.IndexFlatIP(DIM)
        for s in range(0, spec["n"], SHARD):
            index.add(np.array(x[s : s + SHARD]))
        del x
        search = {"exact": lambda: index.search(q, K)[1]}
    else:
        index = ondisk.IVFPQIndex.open(spec["folder"], spec["name"])
        search = {}
        for nprobe in spec["nprobe"]:
            search[f"nprobe={nprobe}"] = lambda nprobe=nprobe: index.search(q, K, nprobe=nprobe, refine=False)[1]
            if index.exact is not None:
                search[f"nprobe={nprobe},refine=float16"] = lambda nprobe=nprobe: index.search(q, K, nprobe=nprobe)[1]
    opened_s = time.perf_counter() - t0
    opened = memory()
    results = {}
    for label, fn in search.items():
        t, ids = timed(fn, spec["repeats"])
        results[label] = {"recall@10": round(recall(ids, truth), 4), "qps": round(len(q) / t, 1)}
    after = memory()
    if spec.get("float32"):  # the same lists, re-ranked with the float32 vectors (after the memory reading)
        x32 = ondisk.FileRows(Path(spec["float32"]), "<f4", (index.ntotal, DIM))
        index.exact = ondisk.ExactVectors.wrap(x32, np.arange(index.ntotal, dtype=np.int64), "float32")
        for nprobe in spec["nprobe"]:
            t, ids = timed(lambda nprobe=nprobe: index.search(q, K, nprobe=nprobe)[1], spec["repeats"])
            results[f"nprobe={nprobe},refine=float32"] = {
                "recall@10": round(recall(ids, truth), 4),
                "qps": round(len(q) / t, 1),
            }
    return {
        "open_s": round(opened_s, 2),
        "memory_before": base,
        "memory_opened": opened,
        "memory": after,
        "results": results,
    }


def run_child(spec: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def c_stdout_to_stderr():
    """Send what C code prints to stdout (FAISS's "resizing ... bytes") to stderr, keeping stdout JSON lines."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def emit(case: dict) -> None:
    print(json.dumps(case), flush=True)


def load_average() -> list:
    return [round(v, 2) for v in os.getloadavg()]


# ---------------------------------------------------------------------------------------------- cases
def case_search(args) -> list[dict]:
    """Flat (100k subset), IVF-flat on disk and IVF-PQ on disk: recall@10, queries/s, memory, disk."""
    import faiss

    from cnnwidgets.index import ondisk, storage, vectors

    n = args.n
    work = Path(tempfile.mkdtemp(prefix="bench_scale-", dir=args.workdir))
    common = {"n": n, "d": DIM, "queries": args.queries, "k": K, "faiss_threads": faiss.omp_get_max_threads()}
    rows = []
    try:
        t = time.perf_counter()
        gen = Synthetic(clusters=max(1, n // 100), spread=args.spread, noise=args.noise)
        profile = make_data(n, args.queries, work, gen)
        emit({"step": "data + exact ground truth", **common, **profile, "seconds": round(time.perf_counter() - t, 1)})
        spec = {"queries": str(work / "queries.npy"), "repeats": args.repeats}

        sub = min(n, 100_000)
        res = run_child(
            {
                **spec,
                "kind": "flat",
                "vectors": str(work / "vectors.f32"),
                "n": sub,
                "truth": str(work / "truth_100k.npy"),
            }
        )
        rows.append(
            {"case": "search", "structure": "flat_100k", **common, "n": sub, "bytes_per_vector_ram": 4 * DIM, **res}
        )
        emit(rows[-1])

        nlist_flat = max(1, int(round(np.sqrt(n))))
        factory = f"IVF{nlist_flat},Flat"
        t = time.perf_counter()
        with c_stdout_to_stderr():
            ivf = ondisk.build_ondisk(
                shards_from(work / "vectors.f32", n),
                work / "ivf_flat",
                name="cnn",
                factory=factory,
                exact_dtype=None,
                train_size=min(n, 40 * nlist_flat),
            )
        build_s = time.perf_counter() - t
        nprobe_flat = vectors.ivf_nprobe(ivf.nlist)
        del ivf
        sizes = folder_bytes(work / "ivf_flat")
        res = run_child(
            {
                **spec,
                "kind": "ivf",
                "folder": str(work / "ivf_flat"),
                "name": "cnn",
                "truth": str(work / "truth.npy"),
                "nprobe": [nprobe_flat, 2 * nprobe_flat],
            }
        )
        rows.append(
            {
                "case": "search",
                "structure": "ivf_flat_ondisk",
                "factory": factory,
                **common,
                "build_s": round(build_s, 1),
                "disk_bytes": sizes,
                "bytes_per_vector_disk": round(sum(sizes.values()) / n, 1),
                **res,
            }
        )
        emit(rows[-1])
        shutil.rmtree(work / "ivf_flat")

        t = time.perf_counter()
        with c_stdout_to_stderr():
            pq = ondisk.build_ondisk(
                shards_from(work / "vectors.f32", n), work / "ivfpq", name="cnn", count=n, exact_dtype="float16"
            )
        build_s = time.perf_counter() - t
        factory, default_nprobe = pq.factory, pq.nprobe
        del pq
        sizes = folder_bytes(work / "ivfpq")
        t = time.perf_counter()
        for f in sizes:
            storage.sha256(work / "ivfpq" / f)
        sha_s = time.perf_counter() - t
        probes = sorted({max(1, default_nprobe // 2), default_nprobe, 2 * default_nprobe})
        res = run_child(
            {
                **spec,
                "kind": "ivfpq",
                "folder": str(work / "ivfpq"),
                "name": "cnn",
                "truth": str(work / "truth.npy"),
                "nprobe": probes,
                "float32": str(work / "vectors.f32"),
            }
        )
        rows.append(
            {
                "case": "search",
                "structure": "ivfpq_ondisk",
                "factory": factory,
                "default_nprobe": default_nprobe,
                **common,
                "build_s": round(build_s, 1),
                "sha256_all_files_s": round(sha_s, 1),
                "disk_bytes": sizes,
                "bytes_per_vector_disk": round(sum(sizes.values()) / n, 1),
                "bytes_per_vector_lists": round((sizes["cnn.ivfdata"]) / n, 1),
                **res,
            }
        )
        emit(rows[-1])
        best = max(
            (v for k_, v in res["results"].items() if "refine=float16" in k_),
            key=lambda v: v["recall@10"],
            default=None,
        )
        emit(
            {
                "case": "search",
                "summary": True,
                "ivfpq_best_recall@10_float16": best and best["recall@10"],
                "ivfpq_vmrss_mb": res["memory"]["VmRSS"],
                "targets": "recall@10 >= 0.90, VmRSS < 1000 MB",
                "load_average": load_average(),
            }
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return rows


# ---------------------------------------------------------------------------------------------- build
def _vectors_by_path(index, name: str) -> dict:
    from cnnwidgets.index.vectors import vectors_and_ids

    x, ids = vectors_and_ids(index.faiss[name])
    path = {int(r.id): r.path for r in index.rows}
    return {path[int(i)]: v for i, v in zip(ids, x)}


def case_build(args) -> list[dict]:
    """Local vs Ray (1 and 2 actors) on one folder of ``--images`` JPEGs plus a broken file; builds interleaved,
    medians of ``--build-repeats``; the Ray rows checked against the local ones (vectors, tags, skipped)."""
    import ray

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_retrieval import make_folder

    from cnnwidgets.engine.models import shared_model
    from cnnwidgets.index import ImageIndex, raycluster
    from cnnwidgets.index.executors import LocalExecutor, RayExecutor

    work = Path(tempfile.mkdtemp(prefix="bench-scale-build-", dir=args.workdir))
    try:
        folder = work / "photos"
        make_folder(folder, args.images)
        (folder / "broken.jpg").write_bytes(b"not a jpeg")
        shared_model("efficientnet_lite0")  # model loading and the ONNX export are not indexing
        ImageIndex.build(sorted(folder.rglob("*.jpg"))[:8], progress=False)
        t = time.perf_counter()
        raycluster.connect(ray, num_cpus=2)  # the local cluster the CLI starts: loopback, token, no dashboard
        cluster_start = time.perf_counter() - t
        configs = {"local": LocalExecutor(), "ray_1": RayExecutor(workers=1), "ray_2": RayExecutor(workers=2)}
        times = {name: [] for name in configs}
        built = {}
        for _ in range(args.build_repeats):
            for name, executor in configs.items():
                t = time.perf_counter()
                built[name] = ImageIndex.build(folder, progress=False, executor=executor)
                times[name].append(time.perf_counter() - t)
        ray.shutdown()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    local = built["local"]
    base = statistics.median(times["local"])
    rows = []
    for name, index in built.items():
        agree = {
            "same_paths": index.paths == local.paths,
            "same_tags": [[t for t, _ in r] for r in index.tags] == [[t for t, _ in r] for r in local.tags],
            "same_skipped": index.skipped == local.skipped,
        }
        for d in local.descriptors:
            a, b = _vectors_by_path(local, d), _vectors_by_path(index, d)
            agree[f"max_abs_diff_{d}"] = float(max(np.abs(a[p] - b[p]).max() for p in a))
        med = statistics.median(times[name])
        rows.append(
            {
                "case": "build",
                "executor": name,
                "images": len(index),
                "skipped": len(index.skipped),
                "median_s": round(med, 2),
                "runs_s": [round(x, 2) for x in times[name]],
                "images_per_s": round(len(index) / med, 1),
                "ratio_to_local": round(base / med, 2),
                "ray_cluster_start_s": round(cluster_start, 1),
                "load_average": load_average(),
                **agree,
            }
        )
        emit(rows[-1])
    return rows


CASES = {"search": case_search, "build": case_build}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", choices=[*CASES, "all"], default="all")
    ap.add_argument("--n", type=int, default=1_000_000, help="vectors in the search case")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--spread", type=float, default=0.8, help="length of the within-cluster variation")
    ap.add_argument("--noise", type=float, default=0.4, help="length of the isotropic noise")
    ap.add_argument("--workdir", default=None, help="folder for the temporary files (default: system temp)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary files")
    ap.add_argument("--images", type=int, default=2000, help="JPEGs in the build case")
    ap.add_argument("--build-repeats", type=int, default=2, help="builds per executor in the build case")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return
    emit({"start": True, "load_average": load_average(), "cases": args.case})
    for name, fn in CASES.items():
        if args.case in (name, "all"):
            fn(args)


if __name__ == "__main__":
    main()
