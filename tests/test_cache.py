"""The one cache rule (cnnwidgets.cache): the per-user folder, private when created, and read-only shared caches
of model exports and folder indexes that a teacher prepares for a class."""

import os
import stat

import numpy as np
import pytest

from cnnwidgets import cache, lab
from cnnwidgets.datasets import sample
from cnnwidgets.index.vectors import vectors_and_ids
from cnnwidgets.io import resize_to_fit, to_png_bytes


def test_one_rule_for_every_cache(monkeypatch, tmp_path):
    from cnnwidgets.engine.models import runtime as backend

    monkeypatch.setenv("CNNWIDGETS_CACHE_DIR", str(tmp_path / "c"))
    assert cache.cache_dir() == lab.cache_dir() == backend.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("CNNWIDGETS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "cnnwidgets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "cnnwidgets"


def test_a_new_cache_folder_is_private(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNWIDGETS_CACHE_DIR", str(tmp_path / "deep" / "c"))
    folder = cache.private_dir("indexes", "x")
    assert folder == tmp_path / "deep" / "c" / "indexes" / "x" and folder.is_dir()
    assert stat.S_IMODE((tmp_path / "deep" / "c").stat().st_mode) == 0o700
    assert cache.private_dir("indexes", "x") == folder  # a second call finds it


def test_shared_dirs_and_find(monkeypatch, tmp_path):
    (tmp_path / "s1" / "onnx").mkdir(parents=True)
    (tmp_path / "s2" / "onnx").mkdir(parents=True)
    (tmp_path / "s2" / "onnx" / "m.json").write_text("{}")
    monkeypatch.setenv("CNNWIDGETS_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv(
        "CNNWIDGETS_SHARED_CACHE",
        os.pathsep.join([str(tmp_path / "s1"), "", str(tmp_path / "missing"), str(tmp_path / "s2")]),
    )
    assert cache.shared_dirs("onnx") == [tmp_path / "s1" / "onnx", tmp_path / "s2" / "onnx"]
    assert cache.find("onnx", "m.json") == tmp_path / "s2" / "onnx" / "m.json"
    (tmp_path / "mine" / "onnx").mkdir(parents=True)
    (tmp_path / "mine" / "onnx" / "m.json").write_text("{}")
    assert cache.find("onnx", "m.json") == tmp_path / "mine" / "onnx" / "m.json"  # the user's own comes first
    assert cache.find("onnx", "none.json") is None
    monkeypatch.delenv("CNNWIDGETS_SHARED_CACHE")
    assert cache.shared_dirs("onnx") == []


@pytest.fixture
def class_folder(tmp_path):
    folder = tmp_path / "class" / "photos"
    folder.mkdir(parents=True)
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        (folder / f"{name}.png").write_bytes(to_png_bytes(resize_to_fit(sample(name, mode="rgb"), 64)))
    return folder


def _read_only(path):
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)


def _writable(path):
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)


def test_folder_index_from_a_read_only_shared_cache(monkeypatch, tmp_path, class_folder):
    teacher = tmp_path / "teacher-cache"
    monkeypatch.setenv("CNNWIDGETS_CACHE_DIR", str(teacher))
    built = lab.folder_index(class_folder, progress=False, descriptors=("color",))
    assert built.how == "built"
    _read_only(teacher)
    _read_only(class_folder)
    try:
        monkeypatch.setenv("CNNWIDGETS_CACHE_DIR", str(tmp_path / "student-cache"))
        monkeypatch.setenv("CNNWIDGETS_SHARED_CACHE", str(teacher))
        before = sorted(p.relative_to(teacher) for p in teacher.rglob("*"))
        got = lab.folder_index(class_folder, progress=False, descriptors=("color",))
        assert got.how == "shared" and "shared cache" in got.describe()
        assert got.cache.parent == teacher / "indexes"
        assert got.index.paths == built.index.paths
        np.testing.assert_array_equal(
            vectors_and_ids(got.index.faiss["color"])[0], vectors_and_ids(built.index.faiss["color"])[0]
        )
        assert sorted(p.relative_to(teacher) for p in teacher.rglob("*")) == before
        assert not (tmp_path / "student-cache" / "indexes").exists() or not any(
            (tmp_path / "student-cache" / "indexes").iterdir()
        )
    finally:
        _writable(class_folder)
        _writable(teacher)
    # a shared index that is out of date is not used: the student's own cache gets a fresh one
    (class_folder / "moon.png").write_bytes(to_png_bytes(resize_to_fit(sample("moon", mode="rgb"), 64)))
    got = lab.folder_index(class_folder, progress=False, descriptors=("color",))
    assert got.how == "built" and len(got.index) == 5
    assert got.cache.parent == tmp_path / "student-cache" / "indexes"


def test_onnx_export_from_a_read_only_shared_cache(monkeypatch, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from cnnwidgets.engine import models as M
    from cnnwidgets.engine.models import runtime as B

    torch.manual_seed(0)
    model = M.create_model("tiny_cnn", device="cpu")
    x = list(np.random.default_rng(1).integers(0, 256, (4, 32, 32), dtype=np.uint8))
    teacher = tmp_path / "teacher-cache"
    monkeypatch.setenv("CNNWIDGETS_CACHE_DIR", str(teacher))
    B.clear_sessions()
    want = M.embed(model, x, backend="onnx")
    assert len(list((teacher / "onnx").glob("*.onnx"))) == 1
    _read_only(teacher)
    try:
        monkeypatch.setenv("CNNWIDGETS_CACHE_DIR", str(tmp_path / "student-cache"))
        monkeypatch.setenv("CNNWIDGETS_SHARED_CACHE", str(teacher))
        B.clear_sessions()
        exports = B.stats["exports"]
        got = M.embed(model, x, backend="onnx")
        assert B.stats["exports"] == exports  # loaded from the shared cache, not exported again
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert not (tmp_path / "student-cache" / "onnx").exists()
    finally:
        _writable(teacher)
        B.clear_sessions()
