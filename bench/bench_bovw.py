"""Bag-of-visual-words variants: classifier accuracy and retrieval mAP, measured in one run.

Two variants of the same pipeline (local descriptors → k-means vocabulary → word histograms):

* ``rootsift``: RootSIFT (L1-normalised, square-rooted SIFT), ORB with OpenCV's default border
  (edgeThreshold = patchSize = 31), FAISS k-means (20 iterations), histograms L1-normalised and square-rooted
  (Hellinger). This is what :mod:`cnnwidgets.engine.features` computes.
* ``rawsift``: raw SIFT, ORB with edgeThreshold = patchSize = 15, scikit-learn MiniBatchKMeans (3 inits, batch
  2048), plain L1 histograms (ranked by cosine for retrieval).
* ``ours``: the one pipeline both now use, :mod:`cnnwidgets.engine.features` (``local_features``,
  ``learn_vocabulary``, ``bovw``): ``rootsift`` with ORB's border of 15.

Cases (one JSON line each):

* classify: BoVW + standardisation + LinearSVC test accuracy, mean over k-means seeds 0, 1, 2, on the sets the
  tests and notebook 04 use: ``shapes(120, seed=1)`` halved (SIFT, 50 words, as in the notebook),
  ``shapes(160, seed=0)`` circles vs crosses (SIFT, 30 words, as in tests), the notebook set with ORB
  (50 words), and ``digits()`` with a quarter held out (SIFT on a dense grid of step 8, 100 words).
  Images are resized to 128 pixels on the long side, as :func:`cnnwidgets.engine.train.bovw_classifier` does.
* retrieval: the distortion set of notebook 05 / ``bench_retrieval.py`` (6 samples × 8 versions, 192 px);
  leave-one-out mAP and precision@10 with 128 words and 300 keypoints per image, SIFT and ORB.

Usage: ``python bench/bench_bovw.py``
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("CNNWIDGETS_DEVICE", "cpu")
NOTEBOOK_SAMPLES = ("chelsea", "coffee", "astronaut", "rocket", "immunohistochemistry", "coins")
VARIANTS = ("rootsift", "rawsift", "ours")


def emit(case):
    print(json.dumps(case), flush=True)


def gray_at(image, side, upscale):
    import cv2

    from cnnwidgets.io import load_image

    gray = load_image(image, mode="gray")
    h, w = gray.shape
    scale = side / max(h, w)
    if scale < 1 or (upscale and scale != 1):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)
    return gray


def descriptors(image, variant, kind, *, side, upscale, max_features, grid=None):
    import cv2

    if variant == "ours":
        from cnnwidgets.engine.features import local_features

        return local_features(image, kind=kind, max_features=max_features, side=side, enlarge=upscale, grid=grid)

    gray = gray_at(image, side, upscale)
    if kind == "sift":
        det = cv2.SIFT_create(nfeatures=max_features)
    elif variant == "rootsift":
        det = cv2.ORB_create(nfeatures=max_features)
    else:
        det = cv2.ORB_create(nfeatures=max_features, edgeThreshold=15, patchSize=15)
    if grid:
        h, w = gray.shape
        margin = 8 if kind == "sift" else 16
        kps = [
            cv2.KeyPoint(float(x), float(y), float(2 * grid))
            for y in range(margin, h - margin + 1, grid)
            for x in range(margin, w - margin + 1, grid)
        ]
        _, des = det.compute(gray, kps)
    else:
        _, des = det.detectAndCompute(gray, None)
    dim = 128 if kind == "sift" else 256
    if des is None or len(des) == 0:
        return np.zeros((0, dim), np.float32)
    if kind == "orb":
        return np.unpackbits(des, axis=1).astype(np.float32)
    des = des.astype(np.float32)
    if variant == "rootsift":
        des /= np.maximum(des.sum(axis=1, keepdims=True), 1e-12)
        des = np.sqrt(des)
    return des


def vocabulary(descs, variant, k, seed, max_descriptors=50_000):
    pool = np.concatenate([d for d in descs if len(d)])
    rng = np.random.default_rng(seed)
    if len(pool) > max_descriptors:
        pool = pool[rng.choice(len(pool), max_descriptors, replace=False)]
    k = min(k, len(pool))
    if variant == "ours":
        from cnnwidgets.engine.features import learn_vocabulary

        return learn_vocabulary([pool], kind="sift" if pool.shape[1] == 128 else "orb", size=k, seed=seed).centers
    if variant == "rootsift":
        import faiss

        km = faiss.Kmeans(
            pool.shape[1],
            k,
            niter=20,
            seed=seed,
            verbose=False,
            min_points_per_centroid=1,
            max_points_per_centroid=10_000,
        )
        km.train(np.ascontiguousarray(pool, dtype=np.float32))
        return km.centroids.astype(np.float32)
    from sklearn.cluster import MiniBatchKMeans

    return MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=2048).fit(pool).cluster_centers_


def histogram(des, vocab, variant):
    vocab = np.asarray(vocab, np.float32)
    if variant == "ours":
        from cnnwidgets.engine.features import Vocabulary, bovw

        return bovw(des, vocabulary=Vocabulary("sift" if vocab.shape[1] == 128 else "orb", vocab))
    h = np.zeros(len(vocab), np.float64)
    if len(des):
        d2 = (des * des).sum(1, keepdims=True) - 2.0 * des @ vocab.T + (vocab * vocab).sum(1)[None]
        h = np.bincount(d2.argmin(1), minlength=len(vocab)).astype(np.float64)
        h /= h.sum()
    return (np.sqrt(h) if variant == "rootsift" else h).astype(np.float32)


def classify_case(name, tr, te, kind, words, grid=None):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    for variant in VARIANTS:
        t = time.perf_counter()
        opts = {"side": 128, "upscale": True, "max_features": 500, "grid": grid}
        dtr = [descriptors(im, variant, kind, **opts) for im in tr.images]
        dte = [descriptors(im, variant, kind, **opts) for im in te.images]
        accs = []
        for seed in (0, 1, 2):
            vocab = vocabulary(dtr, variant, words, seed)
            htr = np.stack([histogram(d, vocab, variant) for d in dtr])
            hte = np.stack([histogram(d, vocab, variant) for d in dte])
            svm = make_pipeline(StandardScaler(), LinearSVC(C=1.0, random_state=seed, max_iter=20_000))
            svm.fit(htr, tr.labels)
            accs.append(float((svm.predict(hte) == te.labels).mean()))
        emit(
            {
                "case": "classify",
                "set": name,
                "detector": kind,
                "words": words,
                "variant": variant,
                "accuracy": float(np.mean(accs)),
                "per_seed": accs,
                "seconds": round(time.perf_counter() - t, 2),
            }
        )


def average_precision(scores, relevant):
    order = np.argsort(-scores, kind="stable")
    rel = relevant[order]
    hits = np.cumsum(rel)
    return float((hits[rel] / (np.flatnonzero(rel) + 1)).mean()) if rel.any() else 0.0


def retrieval_case(work):
    from cnnwidgets.index import distortion_set

    labels = distortion_set(work / "quality", samples=NOTEBOOK_SAMPLES, size=192)
    paths = sorted(labels)
    lab = np.array([labels[p] for p in paths], dtype=object)
    for kind in ("sift", "orb"):
        for variant in VARIANTS:
            descs = [descriptors(p, variant, kind, side=512, upscale=False, max_features=300) for p in paths]
            maps, p10 = [], []
            for seed in (0, 1, 2):
                vocab = vocabulary(descs, variant, 128, seed, max_descriptors=100_000)
                x = np.stack([histogram(d, vocab, variant) for d in descs]).astype(np.float64)
                x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # rootsift: already unit norm
                sim = x @ x.T
                aps, precs = [], []
                for i in range(len(paths)):
                    keep = np.arange(len(paths)) != i
                    s, rel = sim[i, keep], lab[keep] == lab[i]
                    aps.append(average_precision(s, rel))
                    precs.append(float(rel[np.argsort(-s, kind="stable")[:10]].mean()))
                maps.append(float(np.mean(aps)))
                p10.append(float(np.mean(precs)))
            emit(
                {
                    "case": "retrieval",
                    "detector": kind,
                    "variant": variant,
                    "mAP": float(np.mean(maps)),
                    "precision@10": float(np.mean(p10)),
                    "per_seed_mAP": maps,
                }
            )


def main():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cnnwidgets import datasets
    from cnnwidgets.engine.train import split

    tr, te = split(datasets.shapes(120, seed=1), test=0.5, seed=0)
    classify_case("shapes(120, seed=1), notebook 04", tr, te, "sift", 50)
    classify_case("shapes(120, seed=1), notebook 04", tr, te, "orb", 50)
    tr, te = split(datasets.shapes(160, seed=0, classes=("circle", "cross")), test=0.5, seed=0)
    classify_case("shapes(160, circle/cross), tests", tr, te, "sift", 30)
    tr, te = split(datasets.digits(), test=0.25, seed=0)
    classify_case("digits, dense grid 8", tr, te, "sift", 100, grid=8)
    with tempfile.TemporaryDirectory() as tmp:
        retrieval_case(Path(tmp))


if __name__ == "__main__":
    main()
