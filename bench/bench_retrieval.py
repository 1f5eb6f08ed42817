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

* hierarchy: the class-word set (:func:`cnnwidgets.index.evaluation.class_word_set`: 6 class words, 16 images
  each, from 10 bundled photos and augmentations; no captions, file names without class words); precision@10 of
  each class word as a text query with the WordNet hierarchy part and without it (``weights={"hierarchy": 0}``),
  and the same with tags cut to a depth of 1, 3, 5, 10 and 20 labels (to choose the stored depth).
* everyday: the held-out photos (:func:`cnnwidgets.index.evaluation.everyday_word_set`: 20 ImageNet validation
  photos that ship with foolbox 3.3.4 and 16 OpenCV sample photos of Debian's opencv-doc, 16 images each with
  augmentations; no captions): precision@10 and mAP of each everyday word
  (:data:`~cnnwidgets.index.evaluation.EVERYDAY_WORDS`) and each concept word with no class
  (:data:`~cnnwidgets.index.evaluation.CONCEPT_WORDS`) as text queries, with glosses and hierarchy, without
  glosses, and without either; the same for places and activities over one row per ImageNet class
  (:data:`~cnnwidgets.index.evaluation.CONCEPT_CLASSES`) and for the class-word set; image search on the held-out
  images (leave-one-out mAP, "cnn" and k-reciprocal); the first text query after
  ``ImageIndex.load`` (median of 7 loads). Needs ``pip install --no-deps foolbox==3.3.4`` and
  ``apt-get install opencv-doc``.
* rerank: leave-one-out precision@10 and mAP of the image modes on the distortion set and the class-word set,
  without re-ranking and with each re-ranker ("qe", "diffusion", "kreciprocal").
* latency: a 1,000-image index (synthetic 1280-d vectors in 20 clusters, 5 tags per image drawn from the
  ImageNet labels), saved. First text query after ``ImageIndex.load``, median of 7 loads, with the stored text
  embeddings and with them dropped (what a format-1 index costs); a fresh process's load and first query,
  MiniLM's own loading included. Search latency per query (k = 10, median of 200 queries) without re-ranking
  and with each re-ranker, in "cnn" and "semantic" modes.
* descriptors: milliseconds per image of each descriptor of :mod:`cnnwidgets.engine.features` (the classical
  ones: color_set, correlogram, hog, gist, glcm; and color, moments and cnn to compare), on ``--descriptor-images``
  (32) photos of the throughput set (≤ 256 px, decoded beforehand): the median of one call per image, and a call
  on the whole list divided by its length; each as a ratio to the colour histogram. Against the references in
  the same run: ``skimage.feature.hog`` / ``graycomatrix`` + ``graycoprops`` on the same input, and GIST's FFT
  against the direct spatial convolution of the same bank (``scipy.signal.convolve2d``, 2 images). Then
  leave-one-out precision@10 and mAP of each on the distortion set (6 samples × 8 versions, 192 px).
* int8: the CPU's int8 flags; efficientnet_lite0's fp32 and int8 ONNX Runtime sessions on batches of 8 and 32
  class-word photos (median of 7 interleaved runs each); the first-use cost of the int8 model (quantization and
  check, in an empty folder); on the class-word set, top-1 label agreement, top-10 neighbour overlap and
  precision@10 of fp32 and int8 embeddings; top-1 agreement on the held-out photos of the everyday case; and
  ``ImageIndex.build`` of ``--images`` (1,000) photos with fp32 and with int8 (2 interleaved builds each, the
  faster kept; images per second).

Usage: ``python bench/bench_retrieval.py [--cases quality,throughput,memory,hierarchy,everyday,rerank,latency,descriptors,int8]
[--images 1000] [--memory-n 100000] [--descriptor-images 32]``. On a shared machine, ``OMP_NUM_THREADS=1`` keeps OpenBLAS's threads
from competing with other processes on the small matrices of re-ranking.
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


def _text_quality(index, labels, *, weights=None):
    """Precision@10 and average precision of each class word as a text query, and their means."""
    from cnnwidgets.index import evaluate

    res = evaluate(index, labels, modes=["text"], weights=weights, details=True)["text"]
    per_word = {}
    for word in sorted(set(labels.values())):
        hits = index.search(text=word, mode="text", k=10, weights=weights)
        per_word[word] = float(np.mean([labels[h.path] == word for h in hits]))
    common = [w for w in per_word if w != "person"]
    return {
        "precision@10": {w: round(v, 3) for w, v in per_word.items()},
        "mean_precision@10": round(res["precision@10"], 3),
        "mean_precision@10_without_person": round(float(np.mean([per_word[w] for w in common])), 3),
        "mAP": round(res["mAP"], 3),
        "mAP_without_person": round(float(np.mean([res["per_query"][w] for w in common])), 3),
    }


def hierarchy(work: Path):
    from cnnwidgets.engine.models import classify
    from cnnwidgets.index import ImageIndex
    from cnnwidgets.index.build import TOPK_TAGS
    from cnnwidgets.index.evaluation import class_word_set
    from cnnwidgets.io import load_image

    labels = class_word_set(work / "words")
    index = ImageIndex.build(work / "words", descriptors=("cnn",), progress=False)
    for name, weights in (("with hierarchy", None), ("without hierarchy", {"hierarchy": 0.0})):
        emit(
            {
                "case": "hierarchy",
                "text": name,
                "tags": TOPK_TAGS,
                "images": len(index),
                **_text_quality(index, labels, weights=weights),
            }
        )
    images = [load_image(path, mode="rgb") for path in index.paths]
    deep = classify(index.model, images, topk=20)
    x = np.vstack([index.faiss["cnn"].reconstruct(int(i)) for i in index.ids])
    for depth in (1, 3, 5, 10, 20):
        tags = [[(str(t), float(q)) for t, q in row[:depth]] for row in deep]
        cut = ImageIndex.from_vectors(index.paths, {"cnn": x}, tags=tags)
        for name, weights in (("with hierarchy", None), ("without hierarchy", {"hierarchy": 0.0})):
            emit({"case": "hierarchy", "text": name, "tag_depth": depth, **_text_quality(cut, labels, weights=weights)})


def _word_table(index, groups, queries: dict) -> dict:
    """Precision@10 and AP of each query word (``{word: groups it should find}``) under three text scorers.

    ``now``: glosses and hierarchy; ``no glosses``: the hierarchy without glosses; ``neither``: that, with the
    hierarchy part off (text search before the hierarchy).
    """
    from cnnwidgets.index.evaluation import average_precision
    from cnnwidgets.index.search import TextScorer

    plain = index.hierarchy.without_glosses()
    scorers = {
        "now": (TextScorer(index.rows, text_vectors=index.text_vectors, hierarchy=index.hierarchy), None),
        "no glosses": (TextScorer(index.rows, text_vectors=index.text_vectors, hierarchy=plain), None),
        "neither": (TextScorer(index.rows, text_vectors=index.text_vectors, hierarchy=plain), {"hierarchy": 0.0}),
    }
    groups = np.asarray(groups)
    out = {}
    for name, (scorer, weights) in scorers.items():
        p10, ap = {}, {}
        for word, wanted in queries.items():
            relevant = np.isin(groups[np.argsort(-scorer.scores(word, weights=weights), kind="stable")], wanted)
            p10[word] = round(float(relevant[:10].mean()), 2)
            ap[word] = average_precision(relevant)
        out[name] = {
            "precision@10": p10,
            "mean_precision@10": round(float(np.mean(list(p10.values()))), 3),
            "lowest": min(p10.values()),
            "mAP": round(float(np.mean(list(ap.values()))), 3),
        }
    return out


def everyday(work: Path):
    from cnnwidgets.engine.text import embed_text
    from cnnwidgets.index import ImageIndex, evaluate
    from cnnwidgets.index.evaluation import (
        CLASS_WORD_SOURCES,
        CONCEPT_CLASSES,
        CONCEPT_WORDS,
        EVERYDAY_WORDS,
        class_word_set,
        everyday_word_set,
    )
    from cnnwidgets.index.hierarchy import default_hierarchy

    labels = everyday_word_set(work / "everyday")
    index = ImageIndex.build(work / "everyday", descriptors=("cnn",), progress=False)
    groups = [labels[p] for p in index.paths]
    for name, queries in (("everyday words", EVERYDAY_WORDS), ("concept words", CONCEPT_WORDS)):
        for scorer, table in _word_table(index, groups, queries).items():
            emit({"case": "everyday", "set": name, "images": len(index), "text": scorer, **table})

    image = evaluate(index, labels, modes=["cnn"], rerank=["kreciprocal"])
    emit(
        {
            "case": "everyday",
            "set": "image search, leave-one-out (relevant: the views of the same photo)",
            **{mode: {k: round(v, 3) for k, v in r.items() if k != "queries"} for mode, r in image.items()},
        }
    )

    classes = list(default_hierarchy().labels)
    rows = ImageIndex.from_vectors(
        [f"/classes/{n:04d}.png" for n in range(len(classes))],
        {"cnn": np.eye(len(classes), 8, dtype=np.float32)},
        tags=[[(label, 0.9)] for label in classes],
    )
    for scorer, table in _word_table(rows, classes, CONCEPT_CLASSES).items():
        emit({"case": "everyday", "set": "concept classes (one row per ImageNet class)", "text": scorer, **table})

    words = class_word_set(work / "words")
    dev = ImageIndex.build(work / "words", descriptors=("cnn",), progress=False)
    dev_words = {w: (w,) for w in CLASS_WORD_SOURCES}
    for scorer, table in _word_table(dev, [words[p] for p in dev.paths], dev_words).items():
        emit({"case": "everyday", "set": "class-word set (where the rules were made)", "text": scorer, **table})

    root = index.save(work / "everyday_index")
    embed_text("warm up")  # MiniLM in memory, as in a session that searched before
    times = []
    for _ in range(7):
        loaded = ImageIndex.load(root, progress=False)
        t = time.perf_counter()
        loaded.search(text="music", mode="text", k=10)
        times.append(time.perf_counter() - t)
    emit(
        {
            "case": "everyday",
            "what": "first text query after load (median of 7 loads)",
            "ms": round(float(np.median(times)) * 1e3, 1),
        }
    )


def rerank(work: Path):
    from cnnwidgets.index import ImageIndex, distortion_set, evaluate
    from cnnwidgets.index.evaluation import class_word_set

    sets = {
        "distortion": distortion_set(work / "rr_distortion", samples=NOTEBOOK_SAMPLES, size=192),
        "class words": class_word_set(work / "rr_words"),
    }
    for set_name, labels in sets.items():
        folder = Path(next(iter(labels))).parent.parent
        index = ImageIndex.build(folder, descriptors=("cnn", "color"), progress=False)
        res = evaluate(
            index, labels, modes=["color", "cnn", "fusion", "semantic"], rerank=["qe", "diffusion", "kreciprocal"]
        )
        for key, r in res.items():
            mode, _, reranker = key.partition("+")
            emit(
                {
                    "case": "rerank",
                    "set": set_name,
                    "images": len(index),
                    "mode": mode,
                    "rerank": reranker or None,
                    "precision@10": round(r["precision@10"], 4),
                    "mAP": round(r["mAP"], 4),
                    "delta_mAP": round(r["mAP"] - res[mode]["mAP"], 4),
                    "queries": r["queries"],
                }
            )


def _synthetic_index(n=1000, dim=1280, clusters=20, seed=0):
    from cnnwidgets.engine.models import imagenet_labels
    from cnnwidgets.index import ImageIndex

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = (centres[np.arange(n) % clusters] + 1.5 * rng.normal(size=(n, dim))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = imagenet_labels()
    tags = []
    for _ in range(n):
        pick = rng.choice(1000, 5, replace=False)
        prob = np.sort(rng.dirichlet(np.ones(6)))[::-1][:5]
        tags.append([(labels[j], float(q)) for j, q in zip(pick, prob)])
    paths = [f"/synthetic/c{i % clusters}/img_{i:05d}.jpg" for i in range(n)]
    return ImageIndex.from_vectors(paths, {"cnn": x}, tags=tags)


def latency(work: Path):
    from cnnwidgets.index import ImageIndex
    from cnnwidgets.index.search import TextVectors

    index = _synthetic_index()
    index.search(text="warm up", k=10)  # MiniLM loaded, as in a session that built or searched before
    root = index.save(work / "latency.index")
    words = ["dog", "bird", "vehicle", "fruit", "cat", "building", "food"]
    stored, dropped, loads = [], [], []
    for word in words:
        t = time.perf_counter()
        again = ImageIndex.load(root, progress=False)
        loads.append(time.perf_counter() - t)
        t = time.perf_counter()
        again.search(text=word, k=10)
        stored.append(time.perf_counter() - t)
        old = ImageIndex.load(root, progress=False)
        old.text_vectors, old._hierarchy = TextVectors(), None  # as a format-1 index: nothing stored
        t = time.perf_counter()
        old.search(text=word, k=10)
        dropped.append(time.perf_counter() - t)
    emit(
        {
            "case": "latency",
            "what": "first text query after load",
            "images": len(index),
            "load_ms": round(1000 * float(np.median(loads)), 1),
            "first_query_ms": round(1000 * float(np.median(stored)), 1),
            "first_query_without_stored_embeddings_ms": round(1000 * float(np.median(dropped)), 1),
            "ratio": round(float(np.median(dropped) / np.median(stored)), 1),
            "target_ms": 200,
        }
    )
    code = (
        "import time, json; t = time.perf_counter(); from cnnwidgets.index import ImageIndex; "
        f"ix = ImageIndex.load({str(root)!r}, progress=False); t1 = time.perf_counter(); "
        "ix.search(text='dog', k=10); t2 = time.perf_counter(); "
        "print(json.dumps({'import_and_load_s': t1 - t, 'first_query_s': t2 - t1}))"
    )
    fresh = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    emit(
        {
            "case": "latency",
            "what": "fresh process: import + load, then first text query (MiniLM loading included)",
            "images": len(index),
            "import_and_load_s": round(fresh["import_and_load_s"], 2),
            "first_query_s": round(fresh["first_query_s"], 2),
        }
    )
    queries = index.paths[::5]
    for mode in ("cnn", "semantic"):
        base = None
        for reranker in (None, "qe", "diffusion", "kreciprocal"):
            index.search(image=queries[0], mode=mode, k=10, rerank=reranker)
            times = []
            for q in queries:
                t = time.perf_counter()
                index.search(image=q, mode=mode, k=10, rerank=reranker)
                times.append(time.perf_counter() - t)
            ms = 1000 * float(np.median(times))
            base = ms if reranker is None else base
            emit(
                {
                    "case": "latency",
                    "what": "image search per query, k = 10",
                    "images": len(index),
                    "mode": mode,
                    "rerank": reranker,
                    "median_ms": round(ms, 2),
                    "ratio_to_plain": round(ms / base, 1),
                    "target_ms": 50,
                }
            )


def _median_ms(fn, items) -> float:
    fn(items[0])  # first call: imports, caches, kernel spectra
    times = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def _gist_direct(gray: np.ndarray) -> np.ndarray:
    """GIST of a 128 px grey image with SciPy: Gaussian prefilter, direct spatial convolution of each kernel."""
    import scipy.ndimage as ndi
    import scipy.signal

    from cnnwidgets.engine.features import GIST_PREFILTER_SIGMA, gabor_bank

    x = np.log1p(gray.astype(np.float64))
    sigma = GIST_PREFILTER_SIGMA * gray.shape[0]
    white = x - ndi.gaussian_filter(x, sigma, mode="mirror", truncate=4.0)
    x = white / (0.2 + np.sqrt(ndi.gaussian_filter(white**2, sigma, mode="mirror", truncate=4.0)))
    cells = []
    for kernels in gabor_bank():
        r = kernels.shape[-1] // 2
        padded = np.pad(x, r, mode="reflect")
        for k in kernels:
            e = np.abs(scipy.signal.convolve2d(padded, k, mode="valid"))
            cells.append(e.reshape(4, e.shape[0] // 4, 4, e.shape[1] // 4).mean(axis=(1, 3)).ravel())
    vec = np.concatenate(cells)
    return vec / np.linalg.norm(vec)


def descriptors(work: Path, n: int):
    import cv2
    import skimage.feature

    from cnnwidgets.engine import features
    from cnnwidgets.engine.models import shared_model
    from cnnwidgets.index import ImageIndex, distortion_set, evaluate
    from cnnwidgets.io import load_image

    make_folder(work / "desc_photos", n, seed=1)
    images = [load_image(p, mode="rgb") for p in sorted((work / "desc_photos").rglob("*.jpg"))]
    model = shared_model("efficientnet_lite0")
    funcs = {
        "color": features.color_histogram,
        "moments": features.color_moments,
        "color_set": features.color_set,
        "correlogram": features.color_correlogram,
        "hog": features.hog,
        "gist": features.gist,
        "glcm": features.glcm,
        "cnn": lambda x: features.cnn(x, model=model, progress=False),
    }
    timing = {}
    for name, fn in funcs.items():
        one = _median_ms(fn, images)
        fn(images[:2])
        t = time.perf_counter()
        dim = fn(images).shape[1]
        batched = 1000 * (time.perf_counter() - t) / len(images)
        timing[name] = (one, batched, dim)
    gray128 = [cv2.resize(load_image(im, mode="gray"), (128, 128), interpolation=cv2.INTER_AREA) for im in images]
    gray256 = [load_image(im, mode="gray") for im in images]
    angles = [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4]

    def skimage_glcm(g):
        m = skimage.feature.graycomatrix(g // 8, [1, 3, 5], angles, levels=32, symmetric=True, normed=True)
        return [skimage.feature.graycoprops(m, p) for p in features.GLCM_PROPERTIES]

    refs = {
        "hog": ("skimage.feature.hog on the 128 px grey image", _median_ms(
            lambda g: skimage.feature.hog(g, orientations=9, pixels_per_cell=(16, 16), cells_per_block=(2, 2)),
            gray128)),
        "glcm": ("skimage graycomatrix + graycoprops on the grey image", _median_ms(skimage_glcm, gray256)),
        "gist": ("direct spatial convolution of the bank (scipy.signal.convolve2d)", _median_ms(
            _gist_direct, gray128[:2])),
    }  # fmt: skip
    base = timing["color"][0]
    for name, (one, batched, dim) in timing.items():
        line = {
            "case": "descriptors",
            "descriptor": name,
            "dim": dim,
            "images": len(images),
            "ms_per_image": round(one, 2),
            "ms_per_image_in_a_list": round(batched, 2),
            "ratio_to_color_histogram": round(one / base, 1),
        }
        if name in refs:
            what, ref_ms = refs[name]
            line.update(reference=what, reference_ms=round(ref_ms, 2), ratio_to_reference=round(one / ref_ms, 3))
        emit(line)
    labels = distortion_set(work / "desc_quality", samples=NOTEBOOK_SAMPLES, size=192)
    names = ("color", "moments", "color_set", "correlogram", "hog", "gist", "glcm")
    index = ImageIndex.build(work / "desc_quality", descriptors=names, progress=False)
    res = evaluate(index, labels, modes=list(names), k=10, details=True)
    for name in names:
        per = res[name]["per_query"]
        by_copy = {
            kind: round(float(np.mean([ap for p, ap in per.items() if p.endswith(f"_{kind}.png")])), 3)
            for kind in ("original", "rot90", "rot25", "crop", "scale", "stretch", "noise", "hue")
        }
        emit(
            {
                "case": "descriptors",
                "quality": name,
                "images": len(index),
                "precision@10": round(res[name]["precision@10"], 4),
                "mAP": round(res[name]["mAP"], 4),
                "AP_by_query_copy": by_copy,
            }
        )


def int8(work: Path, n: int):
    import tempfile

    from cnnwidgets.engine.models import embed_and_classify, model_config, quantize, shared_model
    from cnnwidgets.engine.models import runtime as rt
    from cnnwidgets.engine.models.onnx_files import OnnxModel
    from cnnwidgets.index import ImageIndex
    from cnnwidgets.index.evaluation import class_word_set
    from cnnwidgets.io import load_image

    flags = set(Path("/proc/cpuinfo").read_text().split())
    emit({"case": "int8", "cpu_flags": sorted(flags & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"})})
    model = shared_model("efficientnet_lite0")
    cfg = model_config(model)
    fp32 = rt.resolve_backend("onnx", model)
    with tempfile.TemporaryDirectory() as folder:  # first use: quantize and check
        t = time.perf_counter()
        fresh = quantize.int8_of(fp32, cfg, Path(folder))
        first_use_s = time.perf_counter() - t
    int8_model = rt.int8_model(fp32, cfg)
    emit({"case": "int8", "what": "first use", "seconds": round(first_use_s, 1), "check": fresh.figures})

    labels = class_word_set(work / "words")
    paths = sorted(labels)
    x = quantize._batch([load_image(p, mode="rgb") for p in paths[:32]], cfg)
    for batch in (8, 32):
        times = {"fp32": [], "int8": []}
        for _ in range(8):
            for name, m in (("fp32", fp32), ("int8", int8_model)):
                t = time.perf_counter()
                OnnxModel.run(m, x[:batch])
                times[name].append(time.perf_counter() - t)
        ms = {k: float(np.median(v[1:])) * 1e3 for k, v in times.items()}
        emit(
            {
                "case": "int8",
                "what": f"forward, batch {batch}",
                "fp32_ms": round(ms["fp32"], 1),
                "int8_ms": round(ms["int8"], 1),
                "speedup": round(ms["fp32"] / ms["int8"], 2),
            }
        )

    f32, t32 = embed_and_classify(model, paths, topk=1)
    f8, t8 = embed_and_classify(model, paths, topk=1, precision="int8")
    words = np.array([labels[p] for p in paths])

    def nearest(f):
        s = f @ f.T
        np.fill_diagonal(s, -np.inf)
        return np.argsort(-s, axis=1)[:, :10]

    n32, n8 = nearest(f32), nearest(f8)
    emit(
        {
            "case": "int8",
            "what": "class-word set",
            "images": len(paths),
            "top1_agreement": round(float(np.mean([a[0][0] == b[0][0] for a, b in zip(t32, t8)])), 3),
            "top10_overlap": round(float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(n32, n8)])), 3),
            "precision@10_fp32": round(float(np.mean(words[n32] == words[:, None])), 3),
            "precision@10_int8": round(float(np.mean(words[n8] == words[:, None])), 3),
            "mean_cosine": round(float((f32 * f8).sum(axis=1).mean()), 4),
        }
    )

    try:
        from cnnwidgets.index.evaluation import everyday_word_set

        held = everyday_word_set(work / "held_out")
    except FileNotFoundError as e:
        emit({"case": "int8", "what": "held-out photos", "skipped": str(e)})
    else:
        held_paths = sorted(held)
        _, h32 = embed_and_classify(model, held_paths, topk=1)
        _, h8 = embed_and_classify(model, held_paths, topk=1, precision="int8")
        same = np.array([a[0][0] == b[0][0] for a, b in zip(h32, h8)])
        photo = np.array([p.endswith("img_000.png") for p in held_paths])
        emit(
            {
                "case": "int8",
                "what": "held-out photos (36 photos of foolbox and opencv-doc, 16 views each)",
                "top1_agreement_all_views": round(float(same.mean()), 3),
                "views": len(same),
                "top1_agreement_photos": round(float(same[photo].mean()), 3),
                "photos": int(photo.sum()),
            }
        )

    make_folder(work / "photos", n)
    best = {}
    for _ in range(2):
        for precision in ("fp32", "int8"):
            t = time.perf_counter()
            index = ImageIndex.build(work / "photos", progress=False, precision=precision)
            best[precision] = min(best.get(precision, np.inf), time.perf_counter() - t)
    emit(
        {
            "case": "int8",
            "what": f"ImageIndex.build of {len(index)} photos (cnn + color + tags)",
            **{f"{k}_images_per_s": round(len(index) / v, 1) for k, v in best.items()},
            "speedup": round(best["fp32"] / best["int8"], 2),
        }
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="quality,throughput,memory")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--memory-n", type=int, default=100_000)
    ap.add_argument("--descriptor-images", type=int, default=32)
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
            elif case == "hierarchy":
                hierarchy(work)
            elif case == "rerank":
                rerank(work)
            elif case == "latency":
                latency(work)
            elif case == "descriptors":
                descriptors(work, args.descriptor_images)
            elif case == "int8":
                int8(work, args.images)
            elif case == "everyday":
                everyday(work)
            else:
                raise SystemExit(f"unknown case {case!r}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
