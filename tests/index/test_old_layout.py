"""An index folder written in format version 1 by cnnwidgets 5618273 loads, searches and saves back unchanged.

``data/old_layout`` holds 7 images (chelsea and coffee, four versions each, one removed so the IDs have a gap)
with descriptors cnn, color and orb, a caption and a skipped file; ``data/old_layout_expected.json`` holds
what that index reported: its rows, its skipped files and search results. The image files themselves are not
needed: a query by an indexed path uses the stored vectors and tags.
"""

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from cnnwidgets.index import ImageIndex, storage

DATA = Path(__file__).parent / "data"


@pytest.fixture
def old(tmp_path):
    shutil.copytree(DATA / "old_layout", tmp_path / "old")
    return tmp_path / "old"


@pytest.fixture(scope="module")
def expected():
    return json.loads((DATA / "old_layout_expected.json").read_text())


def _same_hits(got, want, *, same_scores=True):
    assert [h.path for h in got] == [h["path"] for h in want]
    for h, w in zip(got, want):
        if same_scores:
            assert h.score == pytest.approx(w["score"], abs=1e-5)
            assert h.scores == {k: pytest.approx(v, abs=1e-5) for k, v in w["scores"].items()}
        assert [t for t, _ in h.tags] == [t for t, _ in w["tags"]] and h.caption == w["caption"]


def test_rows_of_an_old_index(old, expected):
    index = ImageIndex.load(old, progress=False)
    assert len(index) == 7 and index.descriptors == ("cnn", "color", "orb")
    assert index.paths == expected["paths"] and index.ids.tolist() == expected["ids"]
    assert index.captions == expected["captions"] and index.next_id == expected["next_id"]
    assert index.tags == [[(t, pytest.approx(p, abs=1e-6)) for t, p in tg] for tg in expected["tags"]]
    assert [list(f) for f in index.fingerprints] == expected["fingerprints"]
    assert [f.sha1 for f in index.fingerprints] == [f[2] for f in expected["fingerprints"]]
    assert [list(s) for s in index.skipped] == expected["skipped"]


def test_searches_of_an_old_index(old, expected):
    q = expected["query"]
    if str(Path(q).resolve()) != q:
        pytest.skip("the fixture's paths resolve elsewhere on this system")
    index = ImageIndex.load(old, progress=False)
    for mode, want in expected["hits"].items():
        _same_hits(index.search(image=q, mode=mode, k=5), want)
    # the text score gained the hierarchy part (format 2) and glosses in its semantic part: the old text search
    # ranks the same images; without both, it scores them as before
    old_text = index.search(text="coffee", k=3, weights={"hierarchy": 0.0})
    _same_hits(old_text, expected["text_hits"], same_scores=False)
    from cnnwidgets.index.search import TextScorer

    plain = index.hierarchy.without_glosses()
    scores = TextScorer(index.rows, text_vectors=index.text_vectors, hierarchy=plain).scores(
        "coffee", weights={"hierarchy": 0.0}
    )
    row = {r.path: n for n, r in enumerate(index.rows)}
    want = expected["text_hits"]
    assert [float(scores[row[w["path"]]]) for w in want] == [pytest.approx(w["score"], abs=1e-5) for w in want]


def test_an_old_index_saves_back_the_same_files(old, tmp_path):
    """Saved back, it is of the newest format: the old files unchanged, plus the hierarchy and the text embeddings."""
    index = ImageIndex.load(old, progress=False)
    new = index.save(tmp_path / "new")
    man_old, man_new = (json.loads((p / "manifest.json").read_text()) for p in (old, new))
    added = {"hierarchy.json.gz", "text_vectors.npy", "text_vectors.json"}
    assert set(man_new["files"]) == set(man_old["files"]) | added
    for name in man_old["files"]:
        if name != "metadata.sqlite":
            assert man_new["files"][name] == man_old["files"][name], name
    skip = {"generation", "files", "format_version", "hierarchy", "text_vectors"}
    assert man_old["format_version"] == 1 and man_new["format_version"] == storage.FORMAT_VERSION
    assert {k: v for k, v in man_new.items() if k not in skip} == {k: v for k, v in man_old.items() if k not in skip}
    again = ImageIndex.load(new, progress=False)
    labels = {t for tg in index.tags for t, _ in tg}
    texts = labels | {index.hierarchy.gloss(t) for t in labels} | {c for c in index.captions if c}
    assert set(again.text_vectors.texts) == texts and len(again.text_vectors) == man_new["text_vectors"]["count"]

    def table(folder, man):
        con = sqlite3.connect(folder / man["generation"] / "metadata.sqlite")
        try:
            schema = con.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
            return schema, con.execute("SELECT * FROM images ORDER BY id").fetchall()
        finally:
            con.close()

    assert table(new, man_new) == table(old, man_old)


@pytest.mark.parametrize("version", [1, 2])
def test_older_formats_are_read_through_one_upgrade(old, expected, version):
    """Formats 1 and 2 read as the newest: the manifest upgraded in memory, the folder left as it was."""
    path = old / "manifest.json"
    on_disk = json.loads(path.read_text())
    on_disk["format_version"] = version
    for key in ("index_types", "skipped", "options"):  # entries an older save could leave out
        on_disk.pop(key)
    path.write_text(json.dumps(on_disk))
    manifest = storage.read_manifest(old)
    assert manifest["format_version"] == storage.FORMAT_VERSION and manifest["upgraded_from"] == version
    assert manifest["index_types"] == {} and manifest["skipped"] == [] and manifest["options"] == {}
    assert storage.upgrade_manifest(manifest) is manifest  # the newest is left as it is
    index = ImageIndex.load(old, progress=False)
    assert index.paths == expected["paths"] and index.index_types == {"cnn": "flat", "color": "flat", "orb": "flat"}
    assert json.loads(path.read_text()) == on_disk
