"""cnnwidgets.lab, the kernel side of the JupyterLab extension: request parsing, path refusal, the index cache."""

import base64
import json
import os
from pathlib import Path

import numpy as np
import pytest

from cnnwidgets import lab
from cnnwidgets.io import to_png_bytes

HOSTILE = 'it\'s "odd" $(touch x); rm -rf y — café.png'


def b64(obj) -> str:
    return base64.b64encode(json.dumps(obj).encode("utf-8")).decode("ascii")


def photos_root(folder: Path, hostile: str) -> Path:
    """``folder`` as a server's root holding photos/cat.png and photos/``hostile``: two 24×32 RGB pictures."""
    img = np.zeros((24, 32, 3), np.uint8)
    img[:, 16:] = 200
    (folder / "photos").mkdir()
    for name in ("cat.png", hostile):
        (folder / "photos" / name).write_bytes(to_png_bytes(img))
    return folder


@pytest.fixture
def root(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    return photos_root(tmp_path, HOSTILE)


def test_payload_base64_json_and_dict_agree(root):
    req = {"widget": "filter_designer", "path": f"photos/{HOSTILE}"}
    assert lab.decode_payload(b64(req)) == req
    assert lab.decode_payload(json.dumps(req)) == req
    assert lab.decode_payload(req) == req
    parsed = lab.parse_request(b64(req), root=root)
    assert parsed.path == (root / "photos" / HOSTILE).resolve()
    assert parsed.rel == f"photos/{HOSTILE}"
    assert parsed.label == f"Filter designer — {HOSTILE}"


@pytest.mark.parametrize(
    "payload",
    ["not base64 !", b64([1, 2]), base64.b64encode(b"{oops").decode(), "x" * 70_000, 42],
)
def test_bad_payloads_are_refused(payload):
    with pytest.raises(ValueError):
        lab.decode_payload(payload)


def test_unknown_widget_and_sample(root):
    with pytest.raises(ValueError, match="unknown widget"):
        lab.parse_request({"widget": "os.system"}, root=root)
    with pytest.raises(ValueError, match="unknown sample"):
        lab.parse_request({"widget": "filter_designer", "sample": "../../etc/passwd"}, root=root)


def test_defaults_without_a_path(root):
    req = lab.parse_request({"widget": "layer_visualizer"}, root=root)
    assert req.path is None and req.sample == "chelsea"
    assert lab.parse_request({"widget": "search_folder", "path": "photos"}, root=root).path == root / "photos"
    with pytest.raises(ValueError, match="needs an image"):
        lab.parse_request({"widget": "find_similar"}, root=root)


@pytest.mark.parametrize("path", ["../secret.png", "photos/../../secret.png", "/etc/passwd", "C:/x.png", "a\x00b.png"])
def test_paths_outside_the_root_are_refused(root, path):
    with pytest.raises(lab.RefusedPath):
        lab.parse_request({"widget": "filter_designer", "path": path}, root=root)


def test_links_leading_out_are_refused(root, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "secret.png"
    outside.write_bytes((root / "photos" / "cat.png").read_bytes())
    (root / "photos" / "link.png").symlink_to(outside)
    with pytest.raises(lab.RefusedPath, match="outside the server's root"):
        lab.parse_request({"widget": "filter_designer", "path": "photos/link.png"}, root=root)
    (root / "up").symlink_to(outside.parent, target_is_directory=True)
    with pytest.raises(lab.RefusedPath, match="outside the server's root"):
        lab.parse_request({"widget": "search_folder", "path": "up"}, root=root)


def test_wrong_kinds_and_missing_files(root):
    with pytest.raises(lab.RefusedPath, match="not an image"):
        lab.parse_request({"widget": "filter_designer", "path": "notes.txt"}, root=root)
    with pytest.raises(lab.RefusedPath, match="not a folder"):
        lab.parse_request({"widget": "search_folder", "path": "notes.txt"}, root=root)
    with pytest.raises(FileNotFoundError):
        lab.parse_request({"widget": "filter_designer", "path": "photos/none.png"}, root=root)


def test_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNWIDGETS_CACHE_DIR", str(tmp_path / "c"))
    assert lab.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("CNNWIDGETS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert lab.cache_dir() == tmp_path / "xdg" / "cnnwidgets"
    a, b = lab.index_folder_for(tmp_path / "a"), lab.index_folder_for(tmp_path / "b")
    assert a != b and a.parent == tmp_path / "xdg" / "cnnwidgets" / "indexes"
    assert lab.index_folder_for(tmp_path / "a" / ".." / "a") == a  # one entry per resolved folder


@pytest.mark.slow
def test_folder_index_is_built_once_then_reused_and_updated(monkeypatch, tmp_path):
    from cnnwidgets.datasets import sample
    from cnnwidgets.io import resize_to_fit

    monkeypatch.setenv("CNNWIDGETS_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "pics"
    folder.mkdir()
    for name in ("chelsea", "coffee", "rocket"):
        (folder / f"{name}.png").write_bytes(to_png_bytes(resize_to_fit(sample(name, mode="rgb"), 64)))
    listing = sorted(os.listdir(folder))
    first = lab.folder_index(folder, progress=False, descriptors=("color",))
    assert first.how == "built" and len(first.index) == 3
    assert lab.index_folder_for(folder).is_dir() and sorted(os.listdir(folder)) == listing  # nothing in the folder
    again = lab.folder_index(folder, progress=False, descriptors=("color",))
    assert again.how == "loaded" and again.index.paths == first.index.paths
    (folder / "astronaut.png").write_bytes(to_png_bytes(resize_to_fit(sample("astronaut", mode="rgb"), 64)))
    (folder / "coffee.png").unlink()
    updated = lab.folder_index(folder, progress=False, descriptors=("color",))
    assert updated.how == "updated" and updated.changed == 1
    assert sorted(os.path.basename(p) for p in updated.index.paths) == ["astronaut.png", "chelsea.png", "rocket.png"]
    assert lab.folder_index(folder, progress=False, descriptors=("color",)).how == "loaded"


def test_notebook_reproduces_the_filter_designer(root):
    from cnnwidgets import FilterDesigner

    req = lab.parse_request({"widget": "filter_designer", "path": f"photos/{HOSTILE}"}, root=root)
    w = FilterDesigner(image=str(req.path), cutoff=0.05)
    w.wait()
    nb = lab.notebook_for(w, req, folder=req.path.parent)
    code = [c["source"] for c in nb["cells"] if c["cell_type"] == "code"]
    assert repr(HOSTILE) in code[0]  # the path as a Python literal, relative to the notebook
    env = {}
    cwd = os.getcwd()
    os.chdir(req.path.parent)
    try:
        for src in code:
            exec(compile(src, "<cell>", "exec"), env)  # the last cell asserts the tab's result
    finally:
        os.chdir(cwd)
    assert np.allclose(env["result"], w.result)
    # and a changed result fails the check
    env["result"] = env["result"] + 1.0
    with pytest.raises(AssertionError):
        exec(compile(code[-1], "<cell>", "exec"), env)


def test_sample_grid():
    a = np.arange(100 * 80 * 3, dtype=np.float32).reshape(100, 80, 3)
    g = lab.sample_grid(a)
    assert g.shape == (12, 12, 3) and g[0, 0, 0] == 0 and g[-1, -1, -1] == a[-1, -1, -1]
    assert lab.sample_grid(np.ones((3, 4))).shape == (3, 4)


def test_notebook_reproduces_the_pipeline(root):
    from PIL import Image

    from cnnwidgets import Pipeline
    from cnnwidgets.datasets import sample

    Image.fromarray(sample("coins")).save(root / "photos" / "coins.png")
    req = lab.parse_request({"widget": "pipeline", "path": "photos/coins.png"}, root=root)
    assert req.label.startswith("Pipeline")
    w = Pipeline(str(req.path))
    w.wait()
    nb = lab.notebook_for(w, req, folder=req.path.parent)
    code = [c["source"] for c in nb["cells"] if c["cell_type"] == "code"]
    env = {}
    cwd = os.getcwd()
    os.chdir(req.path.parent)
    try:
        for src in code:
            exec(compile(src, "<cell>", "exec"), env)  # the last cell asserts the tab's regions and labels
    finally:
        os.chdir(cwd)
    assert len(env["regions"]) == len(w.result["regions"]) == 24


GENERATED_TS = Path(__file__).parents[1] / "labextension" / "src" / "registry.generated.ts"


def test_the_extension_and_the_package_read_the_same_image_extensions():
    import re

    from cnnwidgets.datasets import IMAGE_EXTENSIONS

    source = GENERATED_TS.read_text()
    listed = re.search(r"const IMAGE_EXTENSIONS: readonly string\[\] = \[([^\]]*)\]", source)
    assert listed, f"IMAGE_EXTENSIONS not found in {GENERATED_TS}"
    assert set(re.findall(r'"(\.[a-z0-9]+)"', listed.group(1))) == set(IMAGE_EXTENSIONS)


def test_the_extension_reads_the_widget_registry():
    """The committed TypeScript table is the one the Python registry writes (else: run the command it names)."""
    from cnnwidgets import registry

    assert GENERATED_TS.read_text() == registry.typescript(), (
        "labextension/src/registry.generated.ts is out of date: run `make`, which writes it from cnnwidgets/registry.py"
    )


def test_every_kind_opens_its_class():
    import cnnwidgets
    from cnnwidgets import registry, widgets

    assert set(lab.WIDGETS) < set(registry.KINDS)
    for kind, row in registry.KINDS.items():
        cls = registry.widget_class(kind)
        assert cls is getattr(cnnwidgets, row.class_name) is getattr(widgets, row.class_name)
        assert row.class_name in cnnwidgets.__all__ and row.class_name in widgets.__all__
    for kind, row in lab.WIDGETS.items():
        if row.on == "image" and row.sample is not None:
            assert lab.parse_request({"widget": kind}).sample == row.sample
        if row.on == "none":
            assert row.sample is None and row.menu is None
