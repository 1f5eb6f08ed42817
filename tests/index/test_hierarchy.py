"""The ImageNet hierarchy from WordNet 3.0 and text search through it; its storage in the index."""

import gzip
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from cnnwidgets.index import ImageIndex, storage
from cnnwidgets.index.hierarchy import ClassHierarchy, default_hierarchy

DOG = "n02084071"  # dog, domestic dog, Canis familiaris


@pytest.fixture(scope="module")
def hierarchy():
    return default_hierarchy()


def test_classes_line_up_with_the_models_labels_and_timm_synsets(hierarchy):
    import timm

    from cnnwidgets.engine.models import imagenet_labels

    wnids = (Path(timm.__file__).parent / "data" / "_info" / "imagenet_synsets.txt").read_text().split()
    assert list(hierarchy.wnids) == wnids and list(hierarchy.labels) == imagenet_labels()
    assert hierarchy.wnids[281] == "n02123045" and hierarchy.labels[281] == "tabby"
    assert hierarchy.wnids[339] == "n02389026" and hierarchy.labels[339] == "sorrel"
    assert hierarchy.wnids[0] == "n01440764" and hierarchy.labels[0] == "tench"


def test_dog_is_a_hypernym_of_exactly_the_classes_151_to_268(hierarchy):
    below = {n for n, label in enumerate(hierarchy.labels) if DOG in hierarchy.hypernyms(label)}
    assert below == set(range(151, 269))
    assert all("dog" in hierarchy.hypernym_lemmas(hierarchy.labels[n]) for n in range(151, 269))
    assert "dog" not in hierarchy.hypernym_lemmas("tabby") and "dog" not in hierarchy.hypernym_lemmas("timber wolf")


def test_known_hypernym_paths(hierarchy):
    assert hierarchy.path("tabby")[:4] == ["tabby", "domestic cat", "cat", "feline"]
    assert hierarchy.path("tabby")[-1] == "entity"
    assert hierarchy.path("sorrel")[:3] == ["sorrel", "horse", "equine"]
    assert "bird" in hierarchy.hypernym_lemmas("goldfinch") and "vehicle" in hierarchy.hypernym_lemmas("sports car")
    assert "fruit" in hierarchy.hypernym_lemmas("Granny Smith") and "flower" in hierarchy.hypernym_lemmas("daisy")
    assert hierarchy.lemmas("n02123045") == ["tabby", "tabby cat"]


def test_each_class_lists_every_hypernym_to_the_root(hierarchy):
    """The stored hypernym list of a class is the closure of the synsets' direct hypernyms (nothing missing)."""
    for n in range(0, 1000, 37):
        closure, todo = set(), [hierarchy.wnids[n]]
        while todo:
            for h in hierarchy.synsets[todo.pop()]["hypernyms"]:
                if h not in closure:
                    closure.add(h)
                    todo.append(h)
        assert set(hierarchy.hypernyms(hierarchy.labels[n])) == closure
        assert "n00001740" in closure  # entity


def test_the_package_file_and_its_licence_ship_together():
    data = resources.files("cnnwidgets").joinpath("data")
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in data.joinpath("WORDNET_LICENSE").read_text()
    raw = json.loads(gzip.decompress(data.joinpath("imagenet_hierarchy.json.gz").read_bytes()))
    assert len(raw["classes"]) == 1000 and ClassHierarchy(raw).labels == default_hierarchy().labels


def test_words_senses_and_plurals(hierarchy):
    assert hierarchy.senses("dogs") == [("dogs", [(DOG, 1.0)])]
    assert [p for p, _ in hierarchy.senses("a hunting dog on grass")] == ["hunting dog"]
    ((_, crane),) = hierarchy.senses("crane")
    assert {s for s, _ in crane} == {hierarchy.wnids[134], hierarchy.wnids[517]}  # the bird and the machine
    assert [s for s, _ in hierarchy.senses("geese")[0][1]] == ["n01855672"]  # goose
    assert hierarchy.senses("the") == [] and hierarchy.senses("xyzzy") == []
    w = hierarchy.class_weights(hierarchy.senses("dog")[0][1])
    assert set(np.flatnonzero(w)) == set(range(151, 269)) and w.max() == 1.0


def _tagged_index():
    tags = [
        [("golden retriever", 0.8), ("Labrador retriever", 0.15)],
        [("beagle", 0.6), ("tabby", 0.1)],
        [("tabby", 0.7), ("Egyptian cat", 0.2)],
        [("sorrel", 0.9)],
        [("daisy", 0.8), ("bee", 0.1)],
        [("sports car", 0.7), ("convertible", 0.2)],
    ]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(len(tags), 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    paths = [f"/photos/img{n}.jpg" for n in range(len(tags))]
    index = ImageIndex(descriptors=("cnn",), progress=False)
    index.add_vectors(paths, {"cnn": x}, tags=tags, captions=[""] * len(tags))
    return index, paths


def test_a_hypernym_finds_images_tagged_with_its_hyponyms():
    index, paths = _tagged_index()
    hits = index.search(text="dog", k=2)
    assert {h.path for h in hits} == {paths[0], paths[1]}
    assert all(h.scores["hierarchy"] > 0.5 and h.scores["keyword"] == 0.0 for h in hits)
    assert hits[0].scores["hierarchy"] == pytest.approx(0.95)  # golden + Labrador retriever, both dogs
    top = index.search(text="horse", k=1)[0]
    assert top.path == paths[3] and top.scores["hierarchy"] == pytest.approx(0.9)
    assert index.search(text="vehicles", k=1)[0].path == paths[5]
    assert index.search(text="flower", k=1)[0].path == paths[4]
    cat = index.search(text="cat", k=1)[0]
    assert cat.path == paths[2] and cat.scores["hierarchy"] == pytest.approx(0.9)  # tabby + Egyptian cat


def test_words_that_name_no_synset_score_as_before():
    index, _ = _tagged_index()
    for text in ("xyzzy", "sunny afternoon"):
        assert not index.text_scorer.hierarchy_scores(text)[0].any()
        np.testing.assert_array_equal(index.text_scores(text), index.text_scores(text, weights={"hierarchy": 0.0}))
    hits = index.search(text="dog", k=6, weights={"hierarchy": 0.0})
    assert all(h.scores["text"] == pytest.approx(0.5 * h.scores["keyword"] + 0.5 * h.scores["semantic"]) for h in hits)


def test_hierarchy_and_text_vectors_are_stored_and_not_recomputed_after_load(tmp_path, monkeypatch):
    import cnnwidgets.engine.text as text
    import cnnwidgets.index.hierarchy as hierarchy_module

    index, paths = _tagged_index()
    before = index.search(text="dog", k=6)
    root = index.save(tmp_path / "idx")
    manifest = json.loads((root / "manifest.json").read_text())
    labels = {t for tags in index.tags for t, _ in tags}
    glosses = {index.hierarchy.gloss(t) for t in labels}
    assert len(labels) == 10 and None not in glosses and len(glosses) == 10
    assert manifest["format_version"] == storage.FORMAT_VERSION
    assert manifest["text_vectors"]["count"] == 20  # 10 distinct labels and their glosses
    assert {"hierarchy.json.gz", "text_vectors.npy", "text_vectors.json"} <= set(manifest["files"])

    embedded = []
    real = text.embed_text
    monkeypatch.setattr(text, "embed_text", lambda texts, **kw: embedded.append(texts) or real(texts, **kw))

    def no_package_file():
        raise AssertionError("the loaded index reads its own hierarchy")

    monkeypatch.setattr(hierarchy_module, "default_hierarchy", no_package_file)
    again = ImageIndex.load(root, progress=False)
    after = again.search(text="dog", k=6)
    assert embedded == ["dog"]  # only the query is embedded
    assert [h.path for h in after] == [h.path for h in before]
    assert [h.score for h in after] == pytest.approx([h.score for h in before], abs=1e-6)
    assert again.hierarchy.labels == default_hierarchy.__wrapped__().labels


def test_a_damaged_text_vectors_file_is_named(tmp_path):
    from cnnwidgets.index import IndexLoadError, storage

    index, _ = _tagged_index()
    root = index.save(tmp_path / "idx")
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["text_vectors"]["count"] = 3
    storage.write_manifest(root, manifest)
    with pytest.raises(IndexLoadError, match="text_vectors.npy"):
        ImageIndex.load(root, progress=False)


def test_path_to_a_word_goes_through_its_synset(hierarchy):
    assert hierarchy.path_to("palace", "building") == ["palace", "residence", "house", "building"]
    assert hierarchy.path_to("sorrel", "horses") == ["sorrel", "horse"]
    assert hierarchy.path_to("moped", "vehicle")[-1] == "vehicle" and hierarchy.path_to("tabby", "dog") == []


def test_class_word_set_names_files_without_their_class_word(tmp_path):
    from cnnwidgets.index.evaluation import CLASS_WORD_SOURCES, class_word_set

    labels = class_word_set(tmp_path, per_class=4)
    assert sorted(set(labels.values())) == sorted(CLASS_WORD_SOURCES) and len(labels) == 4 * len(CLASS_WORD_SOURCES)
    assert all(Path(p).exists() and labels[p] not in Path(p).name for p in labels)
    assert all(default_hierarchy().senses(word) for word in CLASS_WORD_SOURCES)  # every word names a synset


def test_compound_names_split_into_modifiers_and_head():
    from cnnwidgets.index.hierarchy import CompoundNames, compound_parts, word_forms

    assert compound_parts("horse cart") == (["horse"], ["cart"])
    assert compound_parts("beach wagon") == (["beach"], ["wagon"])
    assert compound_parts("German short-haired pointer") == (["german", "short", "haired"], ["pointer"])
    assert compound_parts("four-poster") == ([], ["four", "poster"]) and compound_parts("tabby") == ([], ["tabby"])
    assert (
        word_forms("carts") == ["carts", "cart"]
        and "horse" in word_forms("horses")
        and word_forms("geese", {"geese": "goose"})[1] == "goose"
    )
    names = CompoundNames(["horse cart", "beach wagon", "sorrel", "sports car"])
    assert names.modified("beach").tolist() == [False, True, False, False]
    assert names.modified("horses on a beach").tolist() == [True, True, False, False]
    assert names.modified("sport").tolist() == [False, False, False, True]
    assert not names.modified("horse cart").any() and not names.modified("wagon").any()
    assert not names.modified("car").any() and not names.modified("xyzzy").any()


def _compound_index():
    tags = [
        [("beach wagon", 0.9)],
        [("seashore", 0.7), ("sandbar", 0.2)],
        [("horse cart", 0.9)],
        [("sorrel", 0.9)],
        [("horse cart", 0.5), ("sorrel", 0.4)],  # a cart and its horse
        [("sports car", 0.7), ("convertible", 0.2)],
        [("beach wagon", 0.6)],
    ]
    captions = ["", "", "", "", "", "", "parked by the beach"]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(len(tags), 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    paths = [f"/photos/img{n}.jpg" for n in range(len(tags))]
    index = ImageIndex(descriptors=("cnn",), progress=False)
    index.add_vectors(paths, {"cnn": x}, tags=tags, captions=captions)
    return index, paths


def test_a_compound_name_is_found_by_its_head_and_hypernyms_not_by_its_modifier():
    index, paths = _compound_index()
    cars = [h.path for h in index.search(text="car", k=3)]
    assert paths[0] in cars and paths[5] in cars  # a beach wagon is a car (WordNet), a sports car too
    assert index.search(text="car", k=7)[cars.index(paths[0])].scores["hierarchy"] == pytest.approx(0.9)
    beach = {h.path: h for h in index.search(text="beach", k=7)}
    assert beach[paths[0]].score == 0.0  # only a beach wagon: nothing about a beach
    assert beach[paths[6]].scores["keyword"] > 0  # a caption's words match anywhere
    assert [h.path for h in index.search(text="beach", k=2)] == [paths[6], paths[1]]
    carts = [h.path for h in index.search(text="cart", k=2)]
    assert set(carts) == {paths[2], paths[4]} and index.search(text="cart", k=1)[0].scores["keyword"] == 1.0
    horses = {h.path: h for h in index.search(text="horses", k=7)}
    assert horses[paths[2]].score == 0.0  # a horse cart alone is no horse
    assert [h.path for h in index.search(text="horse", k=2)] == [paths[3], paths[4]]  # the cart with its sorrel
    assert {h.path for h in index.search(text="beach wagon", k=2)} == {paths[0], paths[6]}
    assert index.search(text="wagon", k=1)[0].scores["keyword"] == 1.0


def test_every_class_has_its_wordnet_gloss(hierarchy):
    assert hierarchy.gloss("drum").startswith("a musical percussion instrument")
    assert hierarchy.gloss("tabby") and hierarchy.gloss("no such class") is None
    assert all(hierarchy.gloss(label) and '"' not in hierarchy.gloss(label) for label in hierarchy.labels)


def test_a_word_with_no_class_meets_tags_through_their_glosses(hierarchy):
    """'chemistry' and 'music' name no class and no hypernym: the glosses of beaker and drum lead to them."""
    from cnnwidgets.engine.text import embed_text
    from cnnwidgets.index.search import TextScorer

    labels = ["beaker", "drum", "cannon", "strawberry", "Loafer", "spoonbill"]
    x = np.eye(len(labels), 8, dtype=np.float32)
    index = ImageIndex.from_vectors(
        [f"/p/{n}.png" for n in range(len(labels))], {"cnn": x}, tags=[[(t, 0.9)] for t in labels]
    )
    plain = hierarchy.without_glosses()
    assert plain.gloss("beaker") is None and plain.labels == hierarchy.labels and plain.synsets == hierarchy.synsets
    without = TextScorer(index.rows, hierarchy=plain)
    for word, label in (("chemistry", "beaker"), ("music", "drum")):
        assert not hierarchy.senses(word) or not index.text_scorer.hierarchy_scores(word)[0].any()
        hit = index.search(text=word, k=1)[0]
        assert hit.tags[0][0] == label and hit.scores["keyword"] == 0.0
        n = labels.index(label)
        q = embed_text(word)
        label_cos, gloss_cos = embed_text([label, hierarchy.gloss(label)]) @ q
        assert hit.scores["semantic"] == pytest.approx((label_cos + gloss_cos) / 2, abs=1e-5)
        assert without.parts(word)["semantic"][n] == pytest.approx(label_cos, abs=1e-5)  # without glosses: the label


def test_the_evaluation_sets_name_real_labels_and_groups():
    from cnnwidgets.engine.models import imagenet_labels
    from cnnwidgets.index import evaluation

    assert {c for cs in evaluation.CONCEPT_CLASSES.values() for c in cs} <= set(imagenet_labels())
    groups = set(evaluation.EVERYDAY_SOURCES)
    assert all(set(g) <= groups for g in (*evaluation.EVERYDAY_WORDS.values(), *evaluation.CONCEPT_WORDS.values()))


def test_a_missing_photo_package_is_named_with_its_install_command(monkeypatch, tmp_path):
    import importlib.util

    from cnnwidgets.index import evaluation

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps foolbox==3\.3\.4"):
        evaluation.everyday_word_set(tmp_path / "set")
    monkeypatch.setattr(evaluation, "_DEBIAN_FOLDERS", {"opencv-doc": str(tmp_path / "none")})
    with pytest.raises(FileNotFoundError, match="apt-get install opencv-doc"):
        evaluation._source_file("opencv-doc", "messi5.jpg")
