"""Benchmark retrieval quality, indexing throughput and index memory of cnnwidgets.index.

Cases (one JSON line each):

* quality: the distortion set of ``notebooks/05_image_retrieval.ipynb`` (6 samples × 8 versions: original,
  rotations by 90° and 25°, crop, half size, stretch, noise, hue rotation; 192 px); leave-one-out
  precision@10 and mAP per mode from :func:`cnnwidgets.index.evaluate`.
* throughput: a folder of ``--images`` (1,000) JPEGs (random rotations, scales and crops of the bundled
  samples, ≤ 256 px) indexed with the default descriptors (cnn + color, tags from the CNN), on the CPU;
  images per second including loading, the CNN embedding, classification for tags, colour histograms and FAISS
  adds (wall clock, and the process's CPU seconds, which show how much a shared machine slowed it down).
  Also the saved index's bytes per image on disk.
* memory: a 100,000-image index with cnn (1280-d) + color (128-d) descriptors, 5 tags, a path and a
  fingerprint per image (synthetic vectors, flat FAISS), saved; then a fresh process loads the model, and
  we measure how much its resident memory (VmRSS) grows when it loads the index and runs a search.
  Target: < 1 GB. Bytes per image in RAM and on disk.

Usage: ``python bench/bench_retrieval.py [--cases quality,throughput,memory] [--images 1000] [--memory-n 100000]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("CNNWIDGETS_DEVICE", "cpu")
NOTEBOOK_SAMPLES = ("chelsea", "coffee", "astronaut", "rocket", "immunohistochemistry", "coins")


def emit(case):
    print(json.dumps(case), flush=True)


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def quality(work: Path):
    from cnnwidgets.index import ImageIndex, distortion_set, evaluate

    labels = distortion_set(work / "quality", samples=NOTEBOOK_SAMPLES, size=192)
    t = time.perf_counter()
    index = ImageIndex.build(
        work / "quality", descriptors=("cnn", "color", "moments", "sift"), vocabulary_size=128, progress=False
    )
    build_s = time.perf_counter() - t
    res = evaluate(index, labels, modes=["text", "color", "moments", "sift", "cnn", "fusion", "semantic"], k=10)
    for mode, r in res.items():
        emit(
            {
                "case": "quality",
                "mode": mode,
                "images": len(index),
                "precision@10": round(r["precision@10"], 4),
                "mAP": round(r["mAP"], 4),
                "queries": r["queries"],
                "note": "max precision@10 is 0.7 (7 relevant per query)" if mode != "text" else "query = sample name",
                "build_s": round(build_s, 1),
            }
        )


def make_folder(folder: Path, n: int, seed: int = 0):
    import cv2
    from PIL import Image

    from cnnwidgets.datasets import list_samples, sample
    from cnnwidgets.io import load_image, resize_to_fit, to_uint8

    rng = np.random.default_rng(seed)
    bases = [resize_to_fit(load_image(to_uint8(sample(s)), mode="rgb"), 320) for s in list_samples()]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = bases[i % len(bases)]
        h, w = img.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-180, 180)), float(rng.uniform(0.6, 1.2)))
        out = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        y, x = rng.integers(0, h // 5), rng.integers(0, w // 5)
        out = resize_to_fit(np.ascontiguousarray(out[y : y + int(h * 0.8), x : x + int(w * 0.8)]), 256)
        sub = folder / f"{i // 100:02d}"
        sub.mkdir(exist_ok=True)
        Image.fromarray(out).save(sub / f"img_{i:05d}.jpg", quality=90)


def throughput(work: Path, n: int):
    from cnnwidgets.engine.models import shared_model
    from cnnwidgets.index import ImageIndex

    make_folder(work / "photos", n)
    shared_model("efficientnet_lite0")  # model loading is not indexing
    t, c = time.perf_counter(), time.process_time()
    index = ImageIndex.build(work / "photos", progress=False)
    secs, cpu = time.perf_counter() - t, time.process_time() - c
    out = index.save(work / "photos.index")
    disk = folder_bytes(out)
    emit(
        {
            "case": "throughput",
            "images": len(index),
            "descriptors": list(index.descriptors),
            "seconds": round(secs, 1),
            "images_per_s": round(len(index) / secs, 2),
            "cpu_s": round(cpu, 1),
            "cpu_s_per_image": round(cpu / len(index), 3),
            "disk_bytes_per_image": round(disk / len(index)),
            "torch_threads": __import__("torch").get_num_threads(),
        }
    )


_MEASURE = r"""
import gc, json, sys, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
from cnnwidgets.index import ImageIndex
from cnnwidgets.engine.models import shared_model
shared_model("efficientnet_lite0"); gc.collect()
before = rss()
t = time.perf_counter()
index = ImageIndex.load(sys.argv[1], progress=False)
load_s = time.perf_counter() - t
hits = index.search(image=index.paths[123], mode="cnn", k=10)
hits = index.search(image=index.paths[456], mode="color", k=10)
gc.collect()
after = rss()
print(json.dumps({"n": len(index), "rss_before": before, "rss_after": after, "load_s": load_s}))
"""


def memory(work: Path, n: int):
    from cnnwidgets.engine.models import imagenet_labels
    from cnnwidgets.index import ImageIndex

    rng = np.random.default_rng(0)
    labels = imagenet_labels()
    cnn = rng.standard_normal((n, 1280), dtype=np.float32)
    cnn /= np.linalg.norm(cnn, axis=1, keepdims=True)
    color = rng.random((n, 128), dtype=np.float32)
    color /= np.linalg.norm(color, axis=1, keepdims=True)
    paths = [f"/home/user/photos/{i // 1000:03d}/IMG_{i:06d}.jpg" for i in range(n)]
    tags = [
        [(labels[j], float(p)) for j, p in zip(rng.integers(0, 1000, 5), np.sort(rng.random(5))[::-1])]
        for _ in range(n)
    ]
    index = ImageIndex.from_vectors(paths, {"cnn": cnn, "color": color}, tags=tags, index_type="flat")
    index.fingerprints = [
        (int(rng.integers(50_000, 5_000_000)), 1_700_000_000_000_000_000 + i, f"{rng.integers(0, 2**63):040x}")
        for i in range(n)
    ]
    del cnn, color
    out = index.save(work / "big.index")
    disk = folder_bytes(out)
    del index
    r = subprocess.run([sys.executable, "-c", _MEASURE, str(out)], capture_output=True, text=True, check=True)
    m = json.loads(r.stdout.strip().splitlines()[-1])
    added = m["rss_after"] - m["rss_before"]
    emit(
        {
            "case": "memory",
            "images": m["n"],
            "descriptors": ["cnn", "color"],
            "dims": [1280, 128],
            "index_type": "flat",
            "ram_added_bytes": added,
            "ram_added_gb": round(added / 1e9, 3),
            "ram_bytes_per_image": round(added / m["n"]),
            "target": "< 1 GB",
            "disk_bytes_per_image": round(disk / m["n"]),
            "load_s": round(m["load_s"], 2),
            "vector_bytes_per_image": (1280 + 128) * 4,
        }
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="quality,throughput,memory")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--memory-n", type=int, default=100_000)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench_retrieval_"))
    try:
        for case in args.cases.split(","):
            if case == "quality":
                quality(work)
            elif case == "throughput":
                throughput(work, args.images)
            elif case == "memory":
                memory(work, args.memory_n)
            else:
                raise SystemExit(f"unknown case {case!r}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
