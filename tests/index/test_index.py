"""ImageIndex: FAISS results against NumPy brute force, search modes, add/remove, atomic saves, checked loads."""

import json
import shutil
import sqlite3

import cv2
import faiss
import numpy as np
import pytest

from cnnwidgets.engine import features
from cnnwidgets.engine.models import classify, shared_model
from cnnwidgets.index import ImageIndex, IndexLoadError, distortion_set, evaluate, storage, vectors
from cnnwidgets.index.evaluation import average_precision
from cnnwidgets.io import load_image

SAMPLES = ("chelsea", "coffee", "rocket")
DISTORTIONS = ("original", "rot90", "scale", "hue")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    labels = distortion_set(root, samples=SAMPLES, distortions=DISTORTIONS, size=160)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (root / "empty.png").write_bytes(b"")
    (root / "captions.csv").write_text("path,caption\nrocket/rocket_original.png,a spaceship on the launch pad\n")
    return root, labels


@pytest.fixture(scope="module")
def index(folder):
    root, _ = folder
    return ImageIndex.build(root, descriptors=("cnn", "color", "moments", "sift"), vocabulary_size=48, progress=False)


def _brute(x, q, metric):
    return x @ q if metric == "ip" else 1 / (1 + np.sqrt(((x - q) ** 2).sum(1)))


def test_build_indexes_readable_files_and_lists_the_rest(index, folder):
    root, labels = folder
    assert sorted(index.paths) == sorted(labels)
    skipped = dict(index.skipped)
    assert set(skipped) == {str(root / "broken.jpg"), str(root / "empty.png")}
    assert all(reason for reason in skipped.values())
    assert index.index_types == dict.fromkeys(("cnn", "color", "moments", "sift"), "flat")
    p = str(root / "rocket" / "rocket_original.png")
    assert index.captions[index.paths.index(p)] == "a spaceship on the launch pad"


def test_tags_are_the_top5_imagenet_labels(index, folder):
    root, _ = folder
    p = str(root / "coffee" / "coffee_original.png")
    ref = classify(shared_model("efficientnet_lite0"), load_image(p), topk=5)
    got = index.tags[index.paths.index(p)]
    assert [t for t, _ in got] == [t for t, _ in ref]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in ref], atol=1e-5)


@pytest.mark.parametrize("mode", ["cnn", "color", "moments", "sift"])
def test_content_search_equals_numpy_brute_force(index, folder, mode):
    root, _ = folder
    images = [load_image(p) for p in index.paths]
    if mode == "cnn":
        x = features.cnn(images, model=shared_model("efficientnet_lite0"))
    elif mode == "color":
        x = features.color_histogram(images)
    elif mode == "moments":
        x = features.color_moments(images)
    else:
        x = features.sift_bovw(images, vocabulary=index.vocabularies["sift"])
    query = str(root / "coffee" / "coffee_rot90.png")
    ref = _brute(x, x[index.paths.index(query)], features.METRICS[mode])
    hits = index.search(image=query, mode=mode, k=len(index))
    assert len(hits) == len(index)
    got = np.array([h.score for h in hits])
    np.testing.assert_allclose(got, np.sort(ref)[::-1], atol=1e-4)
    for h in hits:  # each hit's score is the brute-force score of that path (ties may swap places)
        assert h.score == pytest.approx(ref[index.paths.index(h.path)], abs=1e-4)
        assert h.scores == {mode: pytest.approx(h.score)}
    # a query image given as pixels (not an indexed path) gives the same ranking
    outside = index.search(image=load_image(query), mode=mode, k=3)
    np.testing.assert_allclose([h.score for h in outside], [h.score for h in hits[:3]], atol=1e-4)


def test_cnn_finds_all_copies_that_colour_misses(index, folder):
    root, _ = folder
    q = str(root / "chelsea" / "chelsea_original.png")
    cnn = [h.path for h in index.search(image=q, mode="cnn", k=4)]
    assert all("/chelsea/" in p for p in cnn)
    colour = [h.path for h in index.search(image=q, mode="color", k=len(index))]
    hue_rank = colour.index(str(root / "chelsea" / "chelsea_hue.png"))
    assert hue_rank >= 4  # the hue-shifted copy is far away in colour space


def test_text_search_finds_cats_without_captions(index):
    hits = index.search(text="kitten", k=4)
    assert all("/chelsea/" in h.path for h in hits)
    assert all(set(h.scores) == {"text", "keyword", "semantic", "hierarchy"} for h in hits)
    scores = [h.score for h in index.search(text="kitten", k=len(index))]
    assert scores == sorted(scores, reverse=True)


def test_text_search_uses_captions_and_file_names(index, folder):
    root, _ = folder
    top = index.search(text="spaceship launch pad", mode="text", k=1)[0]
    assert top.path == str(root / "rocket" / "rocket_original.png") and top.caption
    kw = index.text_scores("rot90", weights={"keyword": 1.0, "semantic": 0.0})
    assert {index.paths[i] for i in np.flatnonzero(kw > 0)} == {p for p in index.paths if p.endswith("_rot90.png")}


def test_semantic_mode_narrows_by_predicted_class(index, folder):
    root, _ = folder
    q = str(root / "chelsea" / "chelsea_scale.png")
    qtags = {t for t, _ in index.tags[index.paths.index(q)]}
    hits = index.search(image=q, mode="semantic", k=len(index))
    matched = [h for h in hits if h.scores["class_match"] == 1.0]
    assert matched and all(qtags & {t for t, _ in h.tags} for h in matched)
    assert hits[: len(matched)] == matched  # class matches first, ranked by CNN similarity
    assert [h.score for h in matched] == sorted((h.score for h in matched), reverse=True)
    assert all(not qtags & {t for t, _ in h.tags} for h in hits[len(matched) :])
    assert index.search(image=q, k=3) == hits[:3]  # auto → semantic for an image


def test_semantic_falls_back_to_plain_cnn_when_no_class_overlaps():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    paths = [f"/virtual/img{i}.png" for i in range(20)]
    tags = [[(f"class{i % 4}", 0.9)] if i else [("unique", 1.0)] for i in range(20)]
    ix = ImageIndex.from_vectors(paths, {"cnn": x}, tags=tags)
    sem = ix.search(image=paths[5], mode="semantic", k=8)
    assert [h.scores["class_match"] for h in sem[:5]] == [1.0] * 5 and sem[5].scores["class_match"] == 0.0
    lone = ix.search(image=paths[0], mode="semantic", k=8)  # only itself has its class
    plain = ix.search(image=paths[0], mode="cnn", k=8)
    assert [h.path for h in lone] == [h.path for h in plain]


def test_fusion_weights_and_auto(index, folder):
    root, _ = folder
    q = str(root / "coffee" / "coffee_original.png")
    only_colour = index.search(image=q, mode="fusion", k=6, weights={"cnn": 0, "moments": 0, "sift": 0, "color": 1})
    colour = index.search(image=q, mode="color", k=6)
    # same order up to ties (rotated copies have identical colour histograms)
    np.testing.assert_allclose([h.scores["color"] for h in only_colour], [h.score for h in colour], atol=1e-6)
    both = index.search(text="kitten", image=q, k=5)  # auto → fusion
    assert set(both[0].scores) == {"text", "cnn", "color", "moments", "sift"}
    assert all(0.0 <= h.score <= 1.0 for h in both)
    text_heavy = index.search(text="kitten", image=q, mode="fusion", k=3, weights={"text": 100})
    assert all("/chelsea/" in h.path for h in text_heavy)


def test_bad_queries_raise_clear_errors(index):
    with pytest.raises(ValueError, match="mode"):
        index.search(text="x", mode="nearest")
    with pytest.raises(ValueError, match="needs text"):
        index.search()
    with pytest.raises(ValueError, match="'orb' descriptor"):
        index.search(image=index.paths[0], mode="orb")
    with pytest.raises(ValueError, match="k=0"):
        index.search(text="x", k=0)
    with pytest.raises(ValueError, match="descriptors"):
        ImageIndex(descriptors=("cnn", "surf"))


def test_add_remove_and_fingerprints(index, folder, tmp_path):
    root, _ = folder
    ix = ImageIndex.build([p for p in index.paths if "/coffee/" in p], descriptors=("color",), progress=False)
    n = len(ix)
    cats = [p for p in index.paths if "/chelsea/" in p]
    assert ix.add(cats) == len(cats) and len(ix) == n + len(cats)
    assert ix.add(cats) == 0  # unchanged files are not re-indexed
    assert ix.remove(cats[:2] + ["/not/indexed.png"]) == 2
    assert len(ix) == ix.faiss["color"].ntotal == n + len(cats) - 2
    hits = ix.search(image=cats[2], mode="color", k=len(ix))
    assert not {h.path for h in hits} & set(cats[:2])
    changed = tmp_path / "changed.png"
    shutil.copy(cats[2], changed)
    ix.add([changed])
    cv2.imwrite(str(changed), np.zeros((32, 32, 3), np.uint8))
    assert ix.add([changed]) == 1 and ix.paths.count(str(changed)) == 1


def test_save_load_roundtrip_without_pickle(index, tmp_path):
    out = index.save(tmp_path / "idx")
    man = json.loads((out / "manifest.json").read_text())
    assert (
        man["format_version"] == storage.FORMAT_VERSION
        and man["count"] == len(index)
        and man["model"] == "efficientnet_lite0"
    )
    assert set(man["descriptors"]) == {"cnn", "color", "moments", "sift"}
    assert set(man["files"]) == {
        "cnn.faiss",
        "color.faiss",
        "moments.faiss",
        "sift.faiss",
        "vocab_sift.npy",
        "metadata.sqlite",
        "hierarchy.json.gz",
        "text_vectors.npy",
        "text_vectors.json",
    }
    again = ImageIndex.load(out)
    for mode in ("cnn", "color", "sift", "semantic"):
        a = index.search(image=index.paths[3], mode=mode, k=5)
        b = again.search(image=index.paths[3], mode=mode, k=5)
        assert [(h.path, round(h.score, 5)) for h in a] == [(h.path, round(h.score, 5)) for h in b]
    assert again.tags == [[(t, pytest.approx(p, abs=1e-6)) for t, p in tg] for tg in index.tags]
    assert again.skipped == index.skipped
    con = sqlite3.connect(out / man["generation"] / "metadata.sqlite")
    assert con.execute("SELECT COUNT(*) FROM images").fetchone()[0] == len(index)
    con.close()


def test_save_is_atomic(index, tmp_path, monkeypatch):
    from cnnwidgets.index import storage

    out = tmp_path / "idx"
    small = ImageIndex.from_vectors(index.paths[:3], {"color": np.eye(3, 8, dtype=np.float32)}, tags=index.tags[:3])
    small.save(out)
    first = json.loads((out / "manifest.json").read_text())["generation"]

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(storage, "write_manifest", crash)
    bigger = ImageIndex.from_vectors(index.paths[:5], {"color": np.eye(5, 8, dtype=np.float32)}, tags=index.tags[:5])
    with pytest.raises(OSError, match="disk full"):
        bigger.save(out)
    assert len(ImageIndex.load(out)) == 3  # the old index is intact
    monkeypatch.undo()
    bigger.save(out)
    assert len(ImageIndex.load(out)) == 5
    assert not (out / first).exists() and [p.name for p in out.iterdir() if p.name.startswith("data-")] == [
        json.loads((out / "manifest.json").read_text())["generation"]
    ]
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match="not empty"):
        small.save(tmp_path / "user")


@pytest.fixture
def saved(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.random((10, 8), dtype=np.float32)
    ix = ImageIndex.from_vectors(
        [f"/v/{i}.png" for i in range(10)], {"color": x, "moments": x[:, :3]}, tags=[[("cat", 0.5)]] * 10
    )
    return ix.save(tmp_path / "idx")


def _gen(path):
    return path / json.loads((path / "manifest.json").read_text())["generation"]


def _rewrite_manifest(path, **changes):
    from cnnwidgets.index import storage

    man = json.loads((path / "manifest.json").read_text())
    man.update(changes)
    for f in _gen(path).iterdir():
        man["files"][f.name] = {"bytes": f.stat().st_size, "sha256": storage.sha256(f)}
    (path / "manifest.json").write_text(json.dumps(man))


def test_load_reports_missing_and_corrupted_files(saved, tmp_path):
    assert len(ImageIndex.load(saved)) == 10
    with pytest.raises(IndexLoadError, match="index folder not found"):
        ImageIndex.load(tmp_path / "nowhere")
    f = _gen(saved) / "color.faiss"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexLoadError, match="color.faiss has .* bytes but the manifest records"):
        ImageIndex.load(saved)
    f.write_bytes(data[:-8] + b"garbage!")
    with pytest.raises(IndexLoadError, match="color.faiss is corrupted"):
        ImageIndex.load(saved)
    f.write_bytes(data)
    (saved / "manifest.json").write_text("{not json")
    with pytest.raises(IndexLoadError, match="manifest.json is not valid JSON"):
        ImageIndex.load(saved)
    (saved / "manifest.json").unlink()
    with pytest.raises(IndexLoadError, match="manifest.json is missing"):
        ImageIndex.load(saved)


def test_load_checks_that_manifest_faiss_and_table_agree(saved):
    con = sqlite3.connect(_gen(saved) / "metadata.sqlite")
    con.execute("DELETE FROM images WHERE id = 3")
    con.commit()
    con.close()
    _rewrite_manifest(saved)  # checksums fine, contents disagree
    with pytest.raises(IndexLoadError, match="metadata.sqlite has 9 images but the manifest says 10"):
        ImageIndex.load(saved)
    _rewrite_manifest(saved, count=9, counts={"color": 9, "moments": 9})
    with pytest.raises(IndexLoadError, match="color.faiss holds 10 vectors"):
        ImageIndex.load(saved)
    _rewrite_manifest(saved, format_version=99)
    with pytest.raises(IndexLoadError, match="format version 99"):
        ImageIndex.load(saved)


def test_load_checks_ids_and_dimensions(saved):
    original = (_gen(saved) / "color.faiss").read_bytes()
    ix = faiss.read_index(str(_gen(saved) / "color.faiss"))
    x = faiss.downcast_index(ix.index).reconstruct_n(0, ix.ntotal)
    moved = faiss.IndexIDMap2(faiss.IndexFlatIP(8))
    moved.add_with_ids(x, np.arange(100, 110))
    faiss.write_index(moved, str(_gen(saved) / "color.faiss"))
    _rewrite_manifest(saved)
    with pytest.raises(IndexLoadError, match="list different image IDs"):
        ImageIndex.load(saved)
    (_gen(saved) / "color.faiss").write_bytes(original)
    _rewrite_manifest(saved, dims={"color": 8, "moments": 4})
    with pytest.raises(IndexLoadError, match="moments.faiss has dimension 3, the manifest says 4"):
        ImageIndex.load(saved)


def _clustered(n, d, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(32, d))
    x = centres[rng.integers(0, 32, n)] + 0.3 * rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_faiss_structures_against_brute_force(kind):
    x, q = _clustered(4000, 32, 0), _clustered(50, 32, 1)
    ix = vectors.new_index(kind, 32, "ip", train=x)
    ix.add_with_ids(x, np.arange(4000) * 7)
    d, i = vectors.search(ix, q, 10)
    ref = np.argsort(-(q @ x.T), axis=1)[:, :10] * 7
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i, ref)])
    if kind == "flat":
        np.testing.assert_allclose(d, np.sort(q @ x.T, axis=1)[:, ::-1][:, :10], atol=1e-5)
        assert recall == 1.0
    else:
        assert recall >= 0.9
    allowed = np.arange(0, 4000, 3) * 7  # ID selector: only every third vector
    _, i2 = vectors.search(ix, q, 10, allowed=allowed)
    assert np.isin(i2, allowed).all()
    if kind == "flat":
        sub = x[::3]
        np.testing.assert_array_equal(i2, np.argsort(-(q @ sub.T), axis=1)[:, :10] * 21)
    vx, vid = vectors.vectors_and_ids(ix)
    np.testing.assert_allclose(vx[np.argsort(vid)], x, atol=1e-6)


def test_auto_structure_switches_above_threshold(monkeypatch, tmp_path):
    monkeypatch.setattr(vectors, "AUTO_THRESHOLD", 300)
    x = _clustered(400, 16, 2)
    ix = ImageIndex.from_vectors([f"/v/{i}.png" for i in range(250)], {"cnn": x[:250]})
    assert ix.index_types == {"cnn": "flat"}
    ix.add_vectors([f"/v/{i}.png" for i in range(250, 400)], {"cnn": x[250:]})
    assert ix.index_types == {"cnn": "hnsw"}
    hits = ix.search(image="/v/7.png", mode="cnn", k=5)
    assert hits[0].path == "/v/7.png" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert ix.remove(["/v/7.png"]) == 1 and "/v/7.png" not in {
        h.path for h in ix.search(image="/v/8.png", mode="cnn", k=400)
    }
    forced = ImageIndex.from_vectors([f"/v/{i}.png" for i in range(400)], {"cnn": x}, index_type="ivf")
    assert forced.index_types == {"cnn": "ivf"}
    assert forced.remove(["/v/9.png", "/v/10.png"]) == 2 and forced.faiss["cnn"].ntotal == 398
    found = forced.search(image="/v/11.png", mode="cnn", k=398)
    assert found[0].path == "/v/11.png" and not {"/v/9.png", "/v/10.png"} & {h.path for h in found}
    again = ImageIndex.load(forced.save(tmp_path / "ivf"))
    assert again.index_types == {"cnn": "ivf"}
    assert [(h.path, round(h.score, 5)) for h in again.search(image="/v/11.png", mode="cnn", k=5)] == [
        (h.path, round(h.score, 5)) for h in found[:5]
    ]


def test_average_precision_matches_scikit_learn():
    from sklearn.metrics import average_precision_score

    rel = np.array([1, 0, 1, 1, 0, 0, 1, 0], bool)
    scores = np.linspace(1, 0, len(rel))
    assert average_precision(rel) == pytest.approx(average_precision_score(rel, scores))


def test_evaluate_leave_one_out(index, folder):
    _, labels = folder
    res = evaluate(index, labels, modes=["color", "cnn", "sift", "semantic", "text"], k=3)
    assert set(res) == {"color", "cnn", "sift", "semantic", "text"}
    assert res["cnn"]["queries"] == len(index) and res["text"]["queries"] == len(SAMPLES)
    # by hand for cnn: precision@3 over leave-one-out rankings
    manual = []
    for p in index.paths:
        ranked = [h.path for h in index.search(image=p, mode="cnn", k=4) if h.path != p][:3]
        manual.append(np.mean([labels[r] == labels[p] for r in ranked]))
    assert res["cnn"]["precision@3"] == pytest.approx(np.mean(manual))
    assert res["cnn"]["mAP"] >= res["color"]["mAP"]
    assert res["cnn"]["mAP"] > 0.9
    by_folder = evaluate(index, modes=["color"], k=3)  # default labels: parent folder names
    assert by_folder["color"] == res["color"]
    with pytest.raises(ValueError, match="no entry"):
        evaluate(index, {index.paths[0]: "x"})


@pytest.mark.gpu
def test_gpu_index_gives_the_same_results_as_cpu(monkeypatch):
    from cnnwidgets import device

    x, q = _clustered(2000, 64, 3), _clustered(20, 64, 4)
    cpu = vectors.new_index("flat", 64, "ip")
    cpu.add_with_ids(x, np.arange(2000))
    gpu = vectors.to_device(vectors.new_index("flat", 64, "ip"), gpu=True)
    gpu.add_with_ids(x, np.arange(2000))
    dc, ic = vectors.search(cpu, q, 10)
    dg, ig = vectors.search(gpu, q, 10)
    np.testing.assert_allclose(dg, dc, atol=1e-4)
    assert (ig == ic).mean() > 0.99
    monkeypatch.setenv("CNNWIDGETS_DEVICE", "cuda")
    assert device.faiss_gpu_available()
    ix = ImageIndex.from_vectors([f"/v/{i}.png" for i in range(2000)], {"cnn": x})
    assert ix.gpu and "Gpu" in type(faiss.downcast_index(ix.faiss["cnn"].index)).__name__
    hits = ix.search(image="/v/5.png", mode="cnn", k=10)
    ref = np.argsort(-(x @ x[5]))[:10]
    assert [h.path for h in hits][:5] == [f"/v/{i}.png" for i in ref[:5]]


def test_empty_index_saves_loads_and_searches(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    ix = ImageIndex.build(tmp_path, descriptors=("color",), progress=False)
    assert len(ix) == 0 and [r for _, r in ix.skipped] and ix.search(text="cat") == []
    again = ImageIndex.load(ix.save(tmp_path / "idx"))
    assert (
        len(again) == 0 and again.skipped == ix.skipped and again.search(image=tmp_path / "bad.png", mode="color") == []
    )


def test_add_vectors_refuses_bad_rows_and_leaves_the_index_unchanged():
    x = np.eye(4, 8, dtype=np.float32)
    ix = ImageIndex.from_vectors([f"/v/{i}.png" for i in range(4)], {"color": x}, tags=[[("cat", 0.5)]] * 4)
    with pytest.raises(ValueError, match="dimensions"):
        ix.add_vectors(["/v/9.png"], {"color": np.ones((1, 5), np.float32)})
    with pytest.raises(ValueError, match="already in the table"):
        ix.add_vectors(["/v/1.png"], {"color": x[:1]})
    with pytest.raises(ValueError, match="2 rows but there are 1 paths"):
        ix.add_vectors(["/v/9.png"], {"color": x[:2]})
    assert len(ix) == ix.faiss["color"].ntotal == 4 and ix.next_id == 4
    ix.add_vectors(["/v/9.png"], {"color": x[:1]}, captions=["a copy"])
    assert ix.paths[-1] == "/v/9.png" and ix.captions[-1] == "a copy" and ix.ids.tolist() == [0, 1, 2, 3, 4]
    assert ix.fingerprints[-1] == (None, None, None)
    assert {h.path for h in ix.search(image="/v/0.png", mode="color", k=2)} == {"/v/0.png", "/v/9.png"}  # a tie


def test_fingerprints_record_size_mtime_and_sha1(index, folder):
    import hashlib

    root, _ = folder
    p = root / "coffee" / "coffee_hue.png"
    f = index.fingerprints[index.paths.index(str(p))]
    assert f.size == p.stat().st_size and f.mtime_ns == p.stat().st_mtime_ns
    assert f.sha1 == hashlib.sha1(p.read_bytes()).hexdigest() and tuple(f) == (f.size, f.mtime_ns, f.sha1)


def test_tags_given_as_lists_are_kept_and_rows_still_remove():
    x = np.eye(3, 4, dtype=np.float32)
    ix = ImageIndex.from_vectors(["/v/a.png", "/v/b.png", "/v/c.png"], {"color": x}, tags=[[["cat", 0.5]]] * 3)
    assert ix.remove(["/v/b.png"]) == 1 and ix.paths == ["/v/a.png", "/v/c.png"] and ix.ids.tolist() == [0, 2]
    assert ix.search(image="/v/c.png", mode="color", k=1)[0].to_dict()["tags"] == [["cat", 0.5]]
