"""SearchBox: traits drive index.search; results, code, gallery items, clicks and the status line."""

import base64

import pytest

from cnnwidgets.engine import features
from cnnwidgets.index import ImageIndex
from cnnwidgets.widgets.search_box import SearchBox

TAGS = {
    "chelsea": [("tabby", 0.6), ("tiger cat", 0.3)],
    "coffee": [("espresso", 0.7), ("cup", 0.2)],
    "rocket": [("space shuttle", 0.8), ("missile", 0.1)],
}


@pytest.fixture(scope="module")
def index(image_folder):
    _, labels = image_folder(samples=tuple(TAGS), distortions=("original", "rot90", "hue"), size=96)
    paths = sorted(labels)
    x = features.color_histogram(paths)
    return ImageIndex.from_vectors(
        paths, {"color": x, "moments": features.color_moments(paths)}, tags=[TAGS[labels[p]] for p in paths]
    )


def test_starts_empty_and_waits_for_a_query(index):
    w = SearchBox(index)
    assert w.results == [] and w.gallery.items == [] and w.status == "type words or drop an image"
    assert "cnnw-searchbox" in w._dom_classes and "cnnw-search-gallery" in w.gallery._dom_classes


def test_text_query_fills_results_gallery_and_code(index):
    w = SearchBox(index, k=4)
    w.text = "kitten"
    ref = index.search(text="kitten", k=4)
    assert [r["path"] for r in w.results] == [h.path for h in ref]
    assert all("/chelsea/" in r["path"] for r in w.results[:3])
    assert w.code == "index.search(text='kitten', mode='auto', k=4)"
    assert [h.path for h in eval(w.code, {"index": index})] == [h.path for h in ref]
    items = w.gallery.items
    assert len(items) == 4 and items[0]["path"] == ref[0].path and items[0]["tags"] == ["tabby", "tiger cat"]
    assert items[0]["scores"] == {k: pytest.approx(v) for k, v in ref[0].scores.items()}  # text and its parts
    assert set(items[0]["scores"]) == {"text", "keyword", "semantic", "hierarchy"}
    head, data = items[0]["thumb"].split(",", 1)
    assert head == "data:image/jpeg;base64" and base64.b64decode(data)[:2] == b"\xff\xd8"
    assert w.status.startswith("4 results in")


def test_click_searches_more_like_this(index):
    w = SearchBox(index, k=5)
    w.text = "espresso"
    before = list(w.results)
    target = before[1]["path"]
    w.gallery.clicked = {"path": target, "n": 1}
    assert w.image_path == target and w.text == ""
    ref = index.search(image=target, mode="auto", k=5)  # no cnn descriptor: auto uses the first one (color)
    assert [r["path"] for r in w.results] == [h.path for h in ref] and w.results != before
    assert w.results[0]["path"] == target or w.results[0]["score"] == pytest.approx(1.0)
    assert w.code == f"index.search(image={target!r}, mode='auto', k=5)"
    w.mode = "moments"
    assert [r["path"] for r in w.results] == [h.path for h in index.search(image=target, mode="moments", k=5)]
    w.clear_image()
    assert w.results == [] and w.image_path == ""


def test_errors_show_in_the_status_line_and_the_widget_recovers(index):
    w = SearchBox(index)
    w.mode = "text"
    w.image_path = index.paths[0]
    assert w.status.startswith("ValueError") and "needs text" in w.status
    w.text = "rocket"
    assert not w.status.startswith("ValueError") and w.results[0]["path"].endswith(".png")
    w.mode = "cnn"
    assert "no 'cnn' descriptor" in w.status
    w.k = 1000
    assert w.k == 100


def test_uploaded_image_is_the_query(index, drop, panel):
    from cnnwidgets.io import load_image

    w = SearchBox(index, mode="color", k=3)
    drop(w, load_image(index.paths[0]))
    assert w.code == "index.search(image=query_image, mode='color', k=3)"
    assert [r["path"] for r in w.results] == [
        h.path for h in index.search(image=load_image(index.paths[0]), mode="color", k=3)
    ]
    query_panel = panel(w, "query image")
    assert query_panel.layout.display is None and query_panel.array is not None


def test_from_folder_builds_an_index(image_folder):
    root, _ = image_folder(samples=("coffee",), distortions=("original", "rot90"), size=64)
    w = SearchBox.from_folder(root, descriptors=("color",), k=2)
    assert len(w.index) == 2 and w.index.descriptors == ("color",)
    w.image_path = str(root / "coffee" / "coffee_rot90.png")
    assert len(w.results) == 2 and w.results[0]["score"] == pytest.approx(1.0, abs=1e-5)


@pytest.fixture(scope="module")
def classical(index):
    paths = list(index.paths)
    descriptors = {
        "color_set": features.color_set(paths),
        "correlogram": features.color_correlogram(paths),
        "hog": features.hog(paths),
        "gist": features.gist(paths),
        "glcm": features.glcm(paths),
    }
    return ImageIndex.from_vectors(paths, descriptors, tags=[index.tags[index.paths.index(p)] for p in paths])


@pytest.mark.parametrize("mode", ["color_set", "correlogram", "hog", "gist", "glcm"])
def test_classical_descriptor_modes_search_by_example(classical, mode):
    w = SearchBox(classical, k=4)
    assert mode in w.controls["mode"].options
    query = next(p for p in classical.paths if p.endswith("coffee_original.png"))
    w.image_path = query
    w.mode = mode
    ref = classical.search(image=query, mode=mode, k=4)
    assert [r["path"] for r in w.results] == [h.path for h in ref]
    assert w.results[0]["score"] == pytest.approx(1.0, abs=1e-5) and query in [h.path for h in ref]
    assert all(set(r["scores"]) == {mode} for r in w.results)
    assert w.code == f"index.search(image={query!r}, mode={mode!r}, k=4)"
    assert [h.path for h in eval(w.code, {"index": classical})] == [h.path for h in ref]
    assert w.status.startswith("4 results in")
    w.controls["mode"].value = "cnn"  # the dropdown drives the trait; this index has no CNN vectors
    assert w.mode == "cnn" and "no 'cnn' descriptor" in w.status
