"""The streaming build: each file read once, decoded at a reduced scale on a thread pool, bad files reported."""

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from cnnwidgets.datasets import sample
from cnnwidgets.index import build


def write_jpegs(folder: Path, n: int, size=(1600, 1200)) -> list[Path]:
    base = Image.fromarray(sample("chelsea", mode="rgb")).resize(size)
    paths = []
    for i in range(n):
        p = folder / f"img{i:02d}.jpg"
        base.rotate(i * 7).save(p, quality=90)
        paths.append(p)
    return paths


def test_files_read_once_decoded_reduced_and_bad_files_reported(tmp_path, monkeypatch):
    write_jpegs(tmp_path, 5)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "missing.jpg")
    reads = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self.name) or real(self))
    files, _ = build.list_image_files(tmp_path)
    assert [p.name for p in files] == ["broken.jpg", "gone.jpg", *(f"img{i:02d}.jpg" for i in range(5))]
    batches = list(build.decode_batches(files, stored_sha1=lambda p: None, chunk=3, progress=False))
    assert sorted(reads) == sorted(p.name for p in files if p.name != "gone.jpg")  # each file read once
    skipped = {Path(k).name: why for b in batches for k, why in b.skipped}
    assert set(skipped) == {"broken.jpg", "gone.jpg"}
    assert "dangling symbolic link" in skipped["gone.jpg"] and "not an image" in skipped["broken.jpg"]
    images = [im for b in batches for im in b.images]
    assert len(images) == 5 and all(im.dtype == np.uint8 and im.shape == (600, 800, 3) for im in images)
    sha = {Path(p).name: f.sha1 for b in batches for p, f in zip(b.paths, b.fingerprints)}

    assert sha["img00.jpg"] == hashlib.sha1((tmp_path / "img00.jpg").read_bytes()).hexdigest()


def test_unchanged_files_are_left_out(tmp_path):
    paths = write_jpegs(tmp_path, 3, size=(320, 240))
    known = {str(paths[1]): hashlib.sha1(paths[1].read_bytes()).hexdigest()}
    batches = list(build.decode_batches(paths, stored_sha1=known.get, chunk=2, progress=False))
    assert [Path(p).name for b in batches for p in b.paths] == ["img00.jpg", "img02.jpg"]
    assert all(im.shape == (240, 320, 3) for b in batches for im in b.images)  # small files: full size


def test_fresh_process_builds_from_the_recorded_export_without_timm(tmp_path, monkeypatch):
    """Once a process has run the packaged CNN on ONNX Runtime, a new process indexes with that export alone."""
    import json
    import os
    import subprocess
    import sys

    from cnnwidgets.engine import models as M
    from cnnwidgets.engine.models import runtime as B

    cache = tmp_path / "cache"
    monkeypatch.setenv(B.CACHE_ENV_VAR, str(cache))
    B.clear_sessions()
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = write_jpegs(folder, 4, size=(400, 300))
    model = M.create_model("efficientnet_lite0", device="cpu")
    want, want_tags = M.embed_and_classify(model, [str(p) for p in paths], topk=5, backend="torch", fuse_bn=False)
    M.embed(model, [str(paths[0])], backend="onnx")  # exported and recorded
    B.clear_sessions()
    code = (
        "import json, sys\n"
        "import numpy as np\n"
        "from cnnwidgets.index import ImageIndex, vectors\n"
        "ix = ImageIndex.build(sys.argv[1], descriptors=('cnn', 'color'), progress=False)\n"
        "x, ids = vectors.vectors_and_ids(ix.faiss['cnn'])\n"
        "x = x[np.argsort(ids)]\n"
        "print(json.dumps({'timm': 'timm' in sys.modules, 'paths': ix.paths, 'cnn': x.tolist(),\n"
        "                  'tags': [[t for t, _ in row] for row in ix.tags]}))\n"
    )
    env = {**os.environ, B.CACHE_ENV_VAR: str(cache), "CNNWIDGETS_DEVICE": "cpu"}
    r = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=env, check=True)
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["timm"] is False
    assert got["paths"] == [str(p.resolve()) for p in paths]
    x = np.asarray(got["cnn"], dtype=np.float32)
    assert (x * want).sum(axis=1).min() >= 0.9999
    assert got["tags"] == [[t for t, _ in row] for row in want_tags]
