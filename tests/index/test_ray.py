"""The Ray executor: the same rows as the local build, bad files reported, a killed worker never loses a row."""

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnwidgets.datasets import sample
from cnnwidgets.index import ImageIndex, executors
from cnnwidgets.index.vectors import vectors_and_ids


def photo_folder(folder: Path, n: int) -> Path:
    base = Image.fromarray(sample("chelsea", mode="rgb")).resize((320, 240))
    folder.mkdir()
    for i in range(n):
        (folder / f"{i // 4:02d}").mkdir(exist_ok=True)
        base.rotate(i * 11, expand=False).save(folder / f"{i // 4:02d}" / f"img{i:02d}.jpg", quality=90)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "gone.jpg").symlink_to(folder / "missing.jpg")
    return folder


def by_path(index, name):
    x, ids = vectors_and_ids(index.faiss[name])
    row = {int(r.id): r.path for r in index.rows}
    return {row[int(i)]: v for i, v in zip(ids, x)}


def test_ray_build_gives_the_local_rows(ray_cluster, tmp_path):
    folder = photo_folder(tmp_path / "photos", 9)
    local = ImageIndex.build(folder, progress=False)
    remote = ImageIndex.build(
        folder, progress=False, executor=executors.RayExecutor(workers=2, batch_size=3), path=tmp_path / "ray.index"
    )
    assert remote.paths == local.paths and len(remote) == 9
    assert remote.skipped == local.skipped
    assert {Path(p).name for p, _ in remote.skipped} == {"broken.jpg", "gone.jpg"}
    assert "dangling symbolic link" in dict(remote.skipped)[str(folder / "gone.jpg")]
    for name in ("cnn", "color"):
        a, b = by_path(local, name), by_path(remote, name)
        assert np.abs(np.stack([a[p] for p in a]) - np.stack([b[p] for p in a])).max() <= 1e-5
    assert [[t for t, _ in tags] for tags in remote.tags] == [[t for t, _ in tags] for tags in local.tags]
    assert remote.fingerprints == local.fingerprints
    loaded = ImageIndex.load(tmp_path / "ray.index", progress=False)  # the standard folder, loaded unchanged
    assert loaded.paths == local.paths
    hit = loaded.search(image=folder / "00" / "img00.jpg", mode="cnn", k=1)[0]
    assert Path(hit.path).name == "img00.jpg"


def test_ray_add_leaves_unchanged_files_out(ray_cluster, tmp_path):
    folder = photo_folder(tmp_path / "photos", 4)
    index = ImageIndex.build(folder, progress=False, executor=executors.RayExecutor(workers=1, batch_size=2))
    Image.fromarray(sample("astronaut", mode="rgb")).resize((200, 200)).save(folder / "00" / "img01.jpg")
    added = index.add(folder, executor=executors.RayExecutor(workers=1, batch_size=2))
    assert added == 1 and len(index) == 4  # img01 re-indexed, the others unchanged


def worker_pids(psutil):
    return [p.pid for p in psutil.process_iter(["cmdline"]) if "MapWorker" in " ".join(p.info["cmdline"] or [])]


def test_killed_worker_never_loses_a_row(ray_cluster, tmp_path):
    psutil = pytest.importorskip("psutil")
    folder = photo_folder(tmp_path / "photos", 12)
    index = ImageIndex(progress=False)
    files, _ = executors.building.list_image_files(folder)
    run = executors.RayExecutor(workers=2, batch_size=2).run(
        files, index.batch_task(), stored_sha1=lambda p: None, progress=False
    )
    batches = [next(run)]
    pids = worker_pids(psutil)
    assert pids, "no Ray map worker found"
    psutil.Process(pids[0]).kill()
    batches += list(run)
    described = [p for b in batches for p in b.paths]
    skipped = [p for b in batches for p, _ in b.skipped]
    assert len(described) == len(set(described))
    assert sorted(described + skipped) == sorted(str(f) for f in files)  # every file comes back or is reported
    lost = [p for b in batches for p, why in b.skipped if why == executors.LOST_REASON]
    assert len(described) + len(lost) == 12


def test_without_ray_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'cnnwidgets\[ray\]'"):
        ImageIndex.build(tmp_path, executor="ray", progress=False)
    with pytest.raises(ValueError, match="executor='spark'"):
        ImageIndex.build(tmp_path, executor="spark", progress=False)


def test_cli_index_on_ray(ray_cluster, tmp_path, capsys):
    from cnnwidgets.cli import main

    folder = photo_folder(tmp_path / "photos", 3)
    status = main(["index", str(folder), "--index", str(tmp_path / "ix"), "--executor", "ray", "--workers", "1"])
    out = capsys.readouterr().out
    assert status == 0 and "indexed 3 images" in out and "skipped 2" in out
    assert ImageIndex.load(tmp_path / "ix", progress=False).paths == ImageIndex.build(folder, progress=False).paths


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--workers", "2"], "--workers need --executor ray"),
        (["--executor", "ray", "--workers", "0"], "--workers 0: expected a positive number"),
        (["--gpus-per-worker", "1"], "--gpus-per-worker need --executor ray"),
    ],
)
def test_cli_executor_flags_are_checked(tmp_path, capsys, flags, message):
    from cnnwidgets.cli import main

    (tmp_path / "photos").mkdir()
    assert main(["index", str(tmp_path / "photos"), "--index", str(tmp_path / "ix"), *flags]) == 2
    assert message in capsys.readouterr().err
