"""HOG, GIST, colour sets, correlogram and GLCM in an ImageIndex: FAISS against brute force, evaluate, save/load."""

import numpy as np
import pytest

from cnnwidgets.engine import features
from cnnwidgets.index import ImageIndex, distortion_set, evaluate
from cnnwidgets.index.evaluation import average_precision
from cnnwidgets.index.search import MODES
from cnnwidgets.io import load_image

NEW = ("color_set", "correlogram", "hog", "gist", "glcm")
FUNCTIONS = {
    "color_set": features.color_set,
    "correlogram": features.color_correlogram,
    "hog": features.hog,
    "gist": features.gist,
    "glcm": features.glcm,
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("classical")
    labels = distortion_set(
        root, samples=("chelsea", "coffee", "rocket"), distortions=("original", "rot90", "scale", "hue"), size=128
    )
    return root, labels


@pytest.fixture(scope="module")
def index(folder):
    root, _ = folder
    return ImageIndex.build(root, descriptors=NEW, progress=False)


@pytest.fixture(scope="module")
def vectors(index):
    images = [load_image(p) for p in index.paths]
    return {name: fn(images) for name, fn in FUNCTIONS.items()}


def _brute_scores(name, x, q):
    """Search scores from the documented distance of each descriptor, computed without FAISS."""
    if name == "color_set":
        return 1 / (1 + np.sqrt(np.sum(x != q, axis=1)))  # Hamming distance between the sets
    if features.METRICS[name] == "ip":
        return x.astype(np.float64) @ q  # cosine of unit vectors
    return 1 / (1 + np.linalg.norm(x.astype(np.float64) - q, axis=1))


def test_new_descriptors_are_modes_and_build_an_index(index, vectors):
    assert set(NEW) <= set(MODES)
    assert index.descriptors == NEW and len(index) == 12
    for name in NEW:
        stored = np.vstack([index.faiss[name].reconstruct(int(i)) for i in index.ids])
        np.testing.assert_allclose(stored, vectors[name], atol=1e-6)


@pytest.mark.parametrize("mode", NEW)
def test_an_indexed_image_finds_itself_first(index, mode):
    for p in index.paths:
        hits = index.search(image=p, mode=mode, k=3)
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        # a 90° rotation has the same colour set and (chessboard rings) the same correlogram: a tie at the top
        tied = [h.path for h in hits if h.score >= hits[0].score - 1e-6]
        assert p in tied
        if mode in ("hog", "gist", "glcm"):
            assert hits[0].path == p


@pytest.mark.parametrize("mode", NEW)
def test_faiss_ranking_equals_brute_force_with_the_documented_distance(index, vectors, folder, mode):
    root, _ = folder
    x = vectors[mode]
    query = str(root / "coffee" / "coffee_scale.png")
    ref = _brute_scores(mode, x, x[index.paths.index(query)])
    hits = index.search(image=query, mode=mode, k=len(index))
    np.testing.assert_allclose([h.score for h in hits], np.sort(ref)[::-1], atol=1e-5)
    for h in hits:
        assert h.score == pytest.approx(ref[index.paths.index(h.path)], abs=1e-5)
        assert set(h.scores) == {mode}
    # pixels given as the query are described the same way as the indexed copy
    outside = index.search(image=load_image(query), mode=mode, k=4)
    np.testing.assert_allclose([h.score for h in outside], [h.score for h in hits[:4]], atol=1e-5)


def test_evaluate_accepts_the_new_modes(index, folder, vectors):
    _, labels = folder
    res = evaluate(index, labels, modes=list(NEW), k=3)
    assert set(res) == set(NEW)
    for name in NEW:
        assert res[name]["queries"] == 12 and 0 <= res[name]["precision@3"] <= 1 and 0 < res[name]["mAP"] <= 1
    for name in ("hog", "gist", "glcm"):  # continuous distances, no ties: the mAP of a brute-force ranking
        lab = np.array([labels[p] for p in index.paths])
        aps = []
        for r in range(len(lab)):
            s = _brute_scores(name, vectors[name], vectors[name][r])
            order = [j for j in np.argsort(-s, kind="stable") if j != r]
            aps.append(average_precision(lab[order] == lab[r]))
        assert res[name]["mAP"] == pytest.approx(float(np.mean(aps)), abs=1e-9)
    default = evaluate(index, labels)
    assert set(default) == {*NEW, "fusion"}


def test_fusion_combines_the_new_descriptors(index, folder):
    root, _ = folder
    hits = index.search(image=str(root / "rocket" / "rocket_original.png"), mode="fusion", k=3)
    assert set(hits[0].scores) == set(NEW)
    assert "/rocket/" in hits[0].path


def test_save_and_load_keep_the_new_descriptors(index, tmp_path, folder):
    root, _ = folder
    again = ImageIndex.load(index.save(tmp_path / "classical.index"), progress=False)
    assert again.descriptors == NEW
    q = str(root / "chelsea" / "chelsea_hue.png")
    for mode in NEW:
        a, b = again.search(image=q, mode=mode, k=5), index.search(image=q, mode=mode, k=5)
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-6)
