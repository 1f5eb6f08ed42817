"""IVF-PQ indexes (index_type="ivfpq", cnnwidgets.index.ondisk) against exact brute-force search."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from cnnwidgets.index import ImageIndex, IndexLoadError, ondisk, vectors

D = 64
N = 4000


def clustered(n, d=D, *, seed=0, centres=40, noise=0.6):
    """Unit vectors around seeded Gaussian centres (the same centres for every seed)."""
    c = np.random.default_rng(1234).normal(size=(centres, d))
    rng = np.random.default_rng(seed)
    x = c[rng.integers(0, centres, n)] + noise * rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, dtype=np.float32)


def brute_force(x, ids, q, k, metric="ip"):
    """Exact top-k IDs and scores, best first (ties broken by position)."""
    s = q @ x.T if metric == "ip" else ((q[:, None, :] - x[None]) ** 2).sum(-1)
    order = np.argsort(-s if metric == "ip" else s, axis=1, kind="stable")[:, :k]
    return ids[order], np.take_along_axis(s, order, 1)


def recall(found, truth):
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / len(b) for a, b in zip(found, truth)]))


@pytest.fixture(scope="module")
def data():
    x = clustered(N)
    ids = np.arange(N, dtype=np.int64) * 3 + 5  # sparse, as after removals
    q = clustered(200, seed=1)
    return x, ids, q


@pytest.fixture(scope="module")
def index(data):
    x, ids, _ = data
    ix = vectors.new_index("ivfpq", D, "ip", train=x)
    ix.add_with_ids(x, ids)
    return ix


def test_factory_follows_the_documented_rule():
    assert ondisk.ivfpq_factory(1_000_000, 1280) == f"PCAR256,IVF{vectors.ivf_nlist(1_000_000)},PQ64"
    assert ondisk.ivfpq_factory(20_000, 128) == f"IVF{vectors.ivf_nlist(20_000)},PQ32"
    assert ondisk.ivfpq_factory(N, D) == f"IVF{vectors.ivf_nlist(N)},PQ16x6"  # 4000 / 39 → 6-bit codes
    assert ondisk.ivfpq_factory(3000, 1280).startswith("PCAR256,")
    for n, d in [(10, 9), (100, 3), (5000, 1000)]:
        f = ondisk.ivfpq_factory(n, d)
        m = int(re.search(r"PQ(\d+)", f).group(1))
        reduced = re.match(r"PCAR(\d+),", f)
        d_out = int(reduced.group(1)) if reduced else d
        assert d_out % m == 0 and d_out <= 256


def test_refined_search_matches_brute_force(data, index):
    x, ids, q = data
    truth, exact_scores = brute_force(x, ids, q, 10)
    d, i = vectors.search(index, q, 10)
    assert i.shape == (len(q), 10) and d.dtype == np.float32 and i.dtype == np.int64
    same = np.mean([set(a.tolist()) == set(b.tolist()) for a, b in zip(i, truth)])
    assert same >= 0.9  # most queries get exactly the brute-force top 10
    assert recall(i, truth) >= 0.97
    # re-ranked scores are the exact inner products of the returned vectors, best first
    pos = np.searchsorted(ids, i)
    np.testing.assert_allclose(d, np.einsum("qkd,qd->qk", x[pos], q), rtol=1e-5, atol=1e-5)
    assert np.all(np.diff(d, axis=1) <= 1e-6)
    # without re-ranking (codes only) recall is clearly lower
    _, i_pq = index.search(q, 10, refine=False)
    assert recall(i_pq, truth) < recall(i, truth) - 0.1


def test_l2_metric_with_pca_reduction():
    d = 300  # above 256: PCA to 256 dimensions
    x = clustered(3000, d, noise=0.5) * 3.0
    q = clustered(100, d, seed=1, noise=0.5) * 3.0
    ids = np.arange(len(x), dtype=np.int64)
    ix = vectors.new_index("ivfpq", d, "l2", train=x)
    assert ix.factory.startswith("PCAR256,")
    ix.add_with_ids(x, ids)
    truth, truth_d = brute_force(x, ids, q, 5, metric="l2")
    dist, i = ix.search(q, 5)
    assert recall(i, truth) >= 0.95
    assert np.all(np.diff(dist, axis=1) >= -1e-4)  # nearest first
    ok = (i == truth).all(axis=1)
    np.testing.assert_allclose(dist[ok], truth_d[ok], rtol=1e-4)


def test_allowed_ids_filter(data, index):
    x, ids, q = data
    allowed = ids[::7]
    truth, _ = brute_force(x[::7], allowed, q, 10)
    _, i = vectors.search(index, q, 10, allowed=allowed)
    assert np.isin(i[i >= 0], allowed).all()
    assert recall(i, truth) >= 0.9
    _, few = vectors.search(index, q[:3], 10, allowed=allowed[:4])  # -1 where the visited cells hold fewer
    assert few.shape == (3, 4) and np.isin(few[few >= 0], allowed[:4]).all()


def test_reconstruct_and_remove_add(data):
    x, ids, q = data
    ix = vectors.new_index("ivfpq", D, "ip", train=x)
    ix.add_with_ids(x, ids)
    np.testing.assert_array_equal(ix.reconstruct(int(ids[17])), x[17])
    gone = ids[:500]
    assert ix.remove_ids(gone) == 500 and ix.ntotal == N - 500
    _, i = ix.search(x[:500], 5)
    assert not np.isin(i, gone).any()
    new_ids = np.arange(10**6, 10**6 + 50, dtype=np.int64)
    ix.add_with_ids(x[:50], new_ids)
    _, i = ix.search(x[:50], 1)
    np.testing.assert_array_equal(i[:, 0], new_ids)  # each re-added vector finds itself
    x2, ids2 = vectors.vectors_and_ids(ix)
    assert np.array_equal(ids2, np.sort(np.concatenate([ids[500:], new_ids])))
    np.testing.assert_array_equal(x2[np.searchsorted(ids2, ids[600])], x[600])


def _gen(root):
    return root / json.loads((root / "manifest.json").read_text())["generation"]


def _paths(n):
    return [f"/imgs/img{j:05d}.jpg" for j in range(n)]


@pytest.fixture()
def saved(tmp_path, data):
    x, _, _ = data
    index = ImageIndex.from_vectors(_paths(N), {"cnn": x}, index_type="ivfpq")
    index.save(tmp_path / "ix")
    return tmp_path / "ix", index


def test_image_index_ivfpq_save_load_memory_maps(saved, data):
    x, _, q = data
    root, index = saved
    assert index.index_types == {"cnn": "ivfpq"}
    man = json.loads((root / "manifest.json").read_text())
    assert man["format_version"] == 3 and man["index_types"] == {"cnn": "ivfpq"}
    gen = _gen(root)
    for f in ("cnn.faiss", "cnn.ivfdata", "cnn.exact", "cnn.ids", "cnn.ivfpq.json"):
        assert man["files"][f]["sha256"] == hashlib.sha256((gen / f).read_bytes()).hexdigest()
        assert man["files"][f]["bytes"] == (gen / f).stat().st_size
    assert (gen / "cnn.exact").stat().st_size == N * D * 4  # float32 exact vectors
    truth, _ = brute_force(x, np.arange(N), q, 10)
    before = vectors.search(index.faiss["cnn"], q, 10)
    loaded = ImageIndex.load(root)
    ix = loaded.faiss["cnn"]
    assert isinstance(ix, ondisk.IVFPQIndex) and ix.on_disk and ix.exact.on_disk
    after = vectors.search(ix, q, 10)
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_allclose(after[0], before[0], rtol=1e-6)
    assert recall(after[1], truth) >= 0.97
    # "more like this" reconstructs the stored vector: the image is its own best hit
    hits = loaded.search(image=_paths(N)[11], mode="cnn", k=3)
    assert hits[0].path == _paths(N)[11] and hits[0].score == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name", ["cnn.ivfdata", "cnn.exact", "cnn.ids", "cnn.ivfpq.json"])
def test_tampered_or_truncated_files_are_named(saved, name):
    root, _ = saved
    f = _gen(root) / name
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(IndexLoadError, match=rf"{name} is corrupted"):
        ImageIndex.load(root)
    f.write_bytes(bytes(data[:-8]))
    with pytest.raises(IndexLoadError, match=rf"{name} has .* bytes but the manifest records"):
        ImageIndex.load(root)


def test_files_disagreeing_with_the_table_are_reported(saved, data):
    from cnnwidgets.index import storage

    root, _ = saved
    gen = _gen(root)
    man = json.loads((root / "manifest.json").read_text())
    ids = np.fromfile(gen / "cnn.ids", dtype="<i8")
    ids[0] = 10**9
    ids.tofile(gen / "cnn.ids")
    man["files"]["cnn.ids"]["sha256"] = storage.sha256(gen / "cnn.ids")
    storage.write_manifest(root, man)
    with pytest.raises(IndexLoadError, match="cnn.ids and metadata.sqlite list different image IDs"):
        ImageIndex.load(root)


def test_remove_and_add_after_load_then_save_again(saved, data, tmp_path):
    x, _, _ = data
    root, _ = saved
    index = ImageIndex.load(root)
    paths = _paths(N)
    assert index.remove(paths[:100]) == 100
    ix = index.faiss["cnn"]
    assert not ix.on_disk  # lists copied into memory to change them
    assert ix.ntotal == N - 100
    _, found = vectors.search(ix, x[:100], 5)
    assert not np.isin(found, np.arange(100)).any()
    extra = clustered(20, seed=7)
    index.add_vectors([f"/new/{j}.jpg" for j in range(20)], {"cnn": extra})
    index.save(root)
    again = ImageIndex.load(root)
    assert len(again) == N - 100 + 20 and again.faiss["cnn"].ntotal == N - 80
    assert [p.name for p in root.iterdir() if p.name.startswith("data-")] == [_gen(root).name]  # old one gone
    for j in (0, 19):
        assert again.search(image=f"/new/{j}.jpg", mode="cnn", k=1)[0].path == f"/new/{j}.jpg"
    assert not np.isin(again.faiss["cnn"].stored_ids(), np.arange(100)).any()


def test_auto_picks_ivfpq_above_the_memory_budget(monkeypatch, data):
    x, _, q = data
    n_budget = vectors.AUTO_MEMORY_BUDGET // (4 * 1280)
    assert vectors.choose_type("auto", n_budget, gpu=False, dim=1280) == "hnsw"
    assert vectors.choose_type("auto", n_budget + 1, gpu=False, dim=1280) == "ivfpq"
    assert vectors.choose_type("auto", n_budget + 1, gpu=True, dim=1280) == "ivfpq"
    assert vectors.choose_type("auto", 10**9, gpu=False) == "hnsw"  # no dimension, no budget
    assert vectors.choose_type("auto", 1000, gpu=False, dim=1280) == "flat"
    # an index that grows past the budget turns into ivfpq, and back when it shrinks
    monkeypatch.setattr(vectors, "AUTO_MEMORY_BUDGET", 3000 * 4 * D)
    paths = _paths(N)
    index = ImageIndex.from_vectors(paths[:2000], {"cnn": x[:2000]})
    assert index.index_types == {"cnn": "flat"}
    index.add_vectors(paths[2000:], {"cnn": x[2000:]})
    assert index.index_types == {"cnn": "ivfpq"}
    truth, _ = brute_force(x, np.arange(N), q, 10)
    assert recall(vectors.search(index.faiss["cnn"], q, 10)[1], truth) >= 0.97
    index.remove(paths[:1500])
    assert index.index_types == {"cnn": "flat"}
    truth, _ = brute_force(x[1500:], np.arange(1500, N), q, 10)
    np.testing.assert_array_equal(vectors.search(index.faiss["cnn"], q, 10)[1], truth)


def test_build_ondisk_from_shards(tmp_path, data):
    x, _, q = data
    ids = np.arange(N, dtype=np.int64) * 2 + 1

    def shards():
        for s in range(0, N, 700):
            yield ids[s : s + 700], x[s : s + 700]

    out = ondisk.build_ondisk(shards(), tmp_path / "od", count=N)
    assert sorted(p.name for p in (tmp_path / "od").iterdir()) == sorted(ondisk.IVFPQIndex.files("cnn"))
    assert out.on_disk and out.exact.on_disk and out.exact.dtype == "float16" and out.ntotal == N
    assert (tmp_path / "od" / "cnn.exact").stat().st_size == N * D * 2
    np.testing.assert_array_equal(out.stored_ids(), ids)
    truth, _ = brute_force(x, ids, q, 10)
    _, i = out.search(q, 10)
    same = np.mean([set(a.tolist()) == set(b.tolist()) for a, b in zip(i, truth)])
    assert same >= 0.85 and recall(i, truth) >= 0.97  # float16 re-ranking
    _, i_pq = out.search(q, 10, refine=False)
    assert recall(i_pq, truth) < recall(i, truth) - 0.1
    reopened = ondisk.IVFPQIndex.open(tmp_path / "od", "cnn")
    np.testing.assert_array_equal(reopened.search(q, 10)[1], i)


def test_build_ondisk_without_exact_vectors_and_shuffled_ids(tmp_path, data):
    x, _, q = data
    perm = np.random.default_rng(3).permutation(N).astype(np.int64)
    out = ondisk.build_ondisk(
        ((perm[s : s + 1000], x[perm[s : s + 1000]]) for s in range(0, N, 1000)),
        tmp_path / "od",
        name="color",
        count=N,
        exact_dtype=None,
        factory="IVF32,Flat",
    )
    assert out.exact is None and not (tmp_path / "od" / "color.exact").exists()
    truth, _ = brute_force(x, np.arange(N), q, 10)
    out.nprobe = 32  # every cell: IVF-flat is then exact
    _, i = out.search(q, 10)
    assert recall(i, truth) == 1.0
    with pytest.raises(ValueError, match="needs the exact vectors"):
        out.search(q, 10, refine=True)


def test_build_ondisk_rejects_bad_input_and_leaves_no_files(tmp_path, data):
    x, _, _ = data
    ids = np.arange(N, dtype=np.int64)
    dup = [(ids[:2000], x[:2000]), (ids[1000:3000], x[1000:3000])]
    with pytest.raises(ValueError, match="occurs twice"):
        ondisk.build_ondisk(iter(dup), tmp_path / "a", count=3000)
    assert list((tmp_path / "a").iterdir()) == []
    with pytest.raises(ValueError, match="give count="):
        ondisk.build_ondisk(
            ((np.arange(s, s + 50_000), np.zeros((50_000, 4), np.float32)) for s in (0, 50_000)), tmp_path / "b"
        )
    with pytest.raises(ValueError, match="no vectors"):
        ondisk.build_ondisk(iter([]), tmp_path / "c")
    with pytest.raises(ValueError, match="dimension"):
        ondisk.build_ondisk(
            iter([(ids[:2000], x[:2000]), (ids[2000:2100], x[2000:2100, :10])]), tmp_path / "d", count=N
        )
    assert list((tmp_path / "d").iterdir()) == []


def test_open_reports_missing_and_truncated_files(tmp_path, index):
    index.write(tmp_path, "cnn")
    (tmp_path / "cnn.ivfdata").write_bytes((tmp_path / "cnn.ivfdata").read_bytes()[:-4])
    with pytest.raises(IndexLoadError, match="cnn.ivfdata has .* bytes, cnn.faiss expects"):
        ondisk.IVFPQIndex.open(tmp_path, "cnn")
    (tmp_path / "cnn.exact").unlink()
    index.write(tmp_path, "cnn")
    (tmp_path / "cnn.exact").write_bytes(b"")
    with pytest.raises(IndexLoadError, match="cnn.exact has 0 bytes"):
        ondisk.IVFPQIndex.open(tmp_path, "cnn")
    (tmp_path / "cnn.ivfpq.json").unlink()
    with pytest.raises(IndexLoadError, match="cnn.ivfpq.json is missing"):
        ondisk.IVFPQIndex.open(tmp_path, "cnn")


def test_empty_ivfpq_index_saves_and_loads(tmp_path, data):
    x, _, q = data
    paths = _paths(300)
    index = ImageIndex.from_vectors(paths, {"cnn": x[:300]}, index_type="ivfpq")
    index.remove(paths)
    assert len(index) == 0 and index.faiss["cnn"].ntotal == 0
    index.save(tmp_path / "e")
    loaded = ImageIndex.load(tmp_path / "e")
    assert len(loaded) == 0 and loaded.faiss["cnn"].ntotal == 0
    assert vectors.search(loaded.faiss["cnn"], x[:1], 3)[1].shape == (1, 0)
    loaded.add_vectors(["/a.jpg"], {"cnn": x[:1]})
    assert loaded.search(image="/a.jpg", mode="cnn", k=3)[0].path == "/a.jpg"


def test_pca_keeps_inner_products_and_opq_factories_work(tmp_path):
    d = 320
    x = clustered(3000, d, noise=0.4) + 0.3  # a large mean: a centred PCA would distort inner products
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[:50]
    ids = np.arange(len(x), dtype=np.int64)
    truth, _ = brute_force(x, ids, q, 10)
    for factory in ("PCAR256,IVF32,PQ64x6", "OPQ16_64,IVF32,PQ16x6"):
        ix = ondisk.IVFPQIndex(ondisk.trained_index(factory, d, "ip", x), metric="ip", exact=ondisk.ExactVectors(d))
        ix.add_with_ids(x, ids)
        _, i = ix.search(q, 10)
        assert i[:, 0].tolist() == ids[:50].tolist() and recall(i, truth) >= 0.9
    import faiss

    trained = ondisk.trained_index("PCAR256,IVF32,PQ64x6", d, "ip", x)
    pca = faiss.downcast_VectorTransform(trained.chain.at(0))
    assert np.abs(faiss.vector_to_array(pca.b)).max() < 1e-5  # no mean subtracted
    with pytest.raises(ValueError, match="not an IVF structure"):
        ondisk.trained_index("PQ8", d, "ip", x)


def test_exact_vectors_by_id_through_adds_removals_and_writes(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(900, 8)).astype(np.float32)
    store = ondisk.ExactVectors(8)
    for s in range(0, 600, 7):  # many small batches of increasing IDs
        store.add(np.arange(s, min(s + 7, 600)), x[s : min(s + 7, 600)])
    store.add(np.array([899, 650, 700]), x[[899, 650, 700]])  # out of order
    with pytest.raises(ValueError, match="already stored"):
        store.add(np.array([5]), x[:1])
    store.remove(np.arange(0, 600, 3))
    live = np.sort(np.concatenate([np.setdiff1d(np.arange(600), np.arange(0, 600, 3)), [650, 700, 899]]))
    np.testing.assert_array_equal(store.ids, live)
    probe = rng.permutation(live)[:100]
    np.testing.assert_array_equal(store.take(probe), x[probe])
    with pytest.raises(KeyError, match="ID 3 has no stored vector"):
        store.take(np.array([1, 3]))
    assert store.write(tmp_path / "v", tmp_path / "i") == len(live)
    mapped = ondisk.ExactVectors.wrap(
        np.memmap(tmp_path / "v", dtype="<f4", mode="r", shape=(len(live), 8)),
        np.fromfile(tmp_path / "i", "<i8"),
        "float32",
    )
    assert mapped.on_disk
    mapped.add(np.array([1000, 1001]), x[:2])
    np.testing.assert_array_equal(mapped.take(np.array([1001, 899, 1])), x[[1, 899, 1]])


def test_file_rows_read_rows_in_any_order(tmp_path):
    x = np.random.default_rng(2).normal(size=(500, 6)).astype("<f2")
    x.tofile(tmp_path / "rows")
    rows = ondisk.FileRows(tmp_path / "rows", "<f2", x.shape)
    pick = np.array([499, 3, 4, 5, 3, 0, 250, 251])
    np.testing.assert_array_equal(rows[pick], x[pick])
    assert rows[np.zeros(0, np.int64)].shape == (0, 6)
    with pytest.raises(IndexError, match="rows outside"):
        rows[np.array([500])]
    (tmp_path / "rows").write_bytes(x[:100].tobytes())  # truncated after opening
    with pytest.raises(OSError, match="truncated"):
        rows[np.array([400])]
