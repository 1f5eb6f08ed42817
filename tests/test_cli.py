"""The cnnwidgets command line: index a folder, search it, JSON output, one-line errors."""

import json
import subprocess
import sys

import pytest

from cnnwidgets.cli import main
from cnnwidgets.index import ImageIndex, distortion_set


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    images = root / "images"
    distortion_set(images, samples=("chelsea", "coffee"), distortions=("original", "rot90", "hue"), size=128)
    (images / "notes.jpg").write_text("not an image")
    (root / "caps.csv").write_text("path,caption\nimages/coffee/coffee_original.png,espresso on a saucer\n")
    return root, images


def test_index_then_search_json(indexed, capsys):
    root, images = indexed
    rc = main(
        [
            "index",
            str(images),
            "--index",
            str(root / "idx"),
            "--descriptors",
            "cnn,color",
            "--captions",
            str(root / "caps.csv"),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "indexed 6 images" in out and "skipped 1" in out and "notes.jpg" in out
    index = ImageIndex.load(root / "idx")
    assert index.descriptors == ("cnn", "color") and len(index) == 6
    assert "espresso on a saucer" in index.captions

    rc = main(
        [
            "search",
            "--index",
            str(root / "idx"),
            "--image",
            str(images / "chelsea" / "chelsea_hue.png"),
            "--mode",
            "cnn",
            "-k",
            "3",
            "--json",
        ]
    )
    hits = json.loads(capsys.readouterr().out)
    assert rc == 0 and len(hits) == 3
    assert all({"path", "score"} <= set(h) for h in hits)
    ref = index.search(image=str(images / "chelsea" / "chelsea_hue.png"), mode="cnn", k=3)
    assert [h["path"] for h in hits] == [h.path for h in ref]
    assert [h["score"] for h in hits] == pytest.approx([h.score for h in ref], abs=1e-6)

    rc = main(["search", "--index", str(root / "idx"), "--text", "saucer", "-k", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0 and len(lines) == 2 and "coffee_original.png" in lines[0]

    query = str(images / "chelsea" / "chelsea_hue.png")
    rc = main(["search", "--index", str(root / "idx"), "--image", query, "--rerank", "diffusion", "-k", "3", "--json"])
    hits = json.loads(capsys.readouterr().out)
    ref = index.search(image=query, mode="auto", k=3, rerank="diffusion")
    assert rc == 0 and [h["path"] for h in hits] == [h.path for h in ref] and "diffusion" in hits[0]["scores"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["search", "--index", "{root}/missing", "--text", "cat"], "index folder not found"),
        (["search", "--index", "{root}/idx", "--image", "{root}/none.png"], "image file not found"),
        (["search", "--index", "{root}/idx", "--text", "cat", "--image", "x.png"], "not allowed with argument"),
        (["search", "--index", "{root}/idx", "--text", "cat", "-k", "0"], "-k 0"),
        (["search", "--index", "{root}/idx", "--text", "cat", "--mode", "fast"], "invalid choice"),
        (["index", "{root}/nothing", "--index", "{root}/idx2"], "folder not found"),
        (["index", "{root}/caps.csv", "--index", "{root}/idx2"], "not a folder"),
        (["index", "{root}/images", "--index", "{root}/idx2", "--descriptors", "cnn,nope"], "descriptors"),
        ([], "required"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(indexed, capsys, argv, message):
    root, _ = indexed
    rc = main([a.format(root=root) for a in argv])
    err = capsys.readouterr().err
    assert rc != 0
    assert err.count("\n") == 1 and err.startswith("cnnwidgets: error:") and message in err


def test_python_dash_m(indexed):
    root, _ = indexed
    r = subprocess.run(
        [sys.executable, "-m", "cnnwidgets", "search", "--index", str(root / "missing"), "--text", "x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and r.stderr.strip().endswith("index folder not found") and r.stderr.count("\n") == 1
    r = subprocess.run(
        [sys.executable, "-m", "cnnwidgets", "search", "--help"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and "--json" in r.stdout
