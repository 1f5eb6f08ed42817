"""Cached indexes under stress (issue 20): kernels sharing a cache entry, damaged entries, read-only folders, full disks.

Concurrency runs in processes started with "spawn" (what two kernels are), never threads. The CNN is not what is
tested here: indexes have the "color" descriptor only and no tags (:func:`_no_tags`), so each process takes seconds.
"""

import contextlib
import errno
import json
import logging
import multiprocessing
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from cnnwidgets import lab
from cnnwidgets.index import ImageIndex, IndexLoadError, executors, storage
from cnnwidgets.io import to_png_bytes

COLOR = ("color",)


# ---------------------------------------------------------------------------------------------- helpers
def _batch_task_without_tags(self):
    return executors.IndexBatch(
        descriptors=self.descriptors,
        model=self.model_name,
        color_bins=self.options["color_bins"],
        vocabularies=self.vocabularies,
        with_tags=False,
    )


@pytest.fixture
def no_tags(monkeypatch):
    """Index without classifying (no CNN); what is tested is the cache, not the tags."""
    monkeypatch.setattr(ImageIndex, "batch_task", _batch_task_without_tags)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNWIDGETS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _images(folder, names, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        img[: 16 + 8 * (sum(name.encode()) % 4)] //= 3  # images differ in colour, not only in noise
        (folder / name).write_bytes(to_png_bytes(img))
    return folder


def _listing(folder):
    """Every entry under ``folder`` with its size and modification time (what "nothing written" compares)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in sorted(dirnames + filenames):
            st = os.lstat(os.path.join(dirpath, name))
            out.append((os.path.relpath(os.path.join(dirpath, name), folder), st.st_size, st.st_mtime_ns))
    return sorted(out)


def _assert_one_valid_index(root, n=None):
    """One committed generation, every file as the manifest records it, nothing half-written left."""
    manifest = storage.read_manifest(root)
    gen = storage.check_files(root, manifest)
    gens = sorted(p.name for p in root.iterdir() if p.name.startswith("data-"))
    assert gens == [gen.name], gens
    left = [p.name for p in root.rglob("*") if p.name.endswith(".tmp")]
    assert not left, left
    index = ImageIndex.load(root, progress=False)
    if n is not None:
        assert len(index) == n
    return index


def _warnings(caplog):
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


# ---------------------------------------------------------------------------------------------- two kernels
def _kernel(job, folder, cache_dir, go, results, rounds):
    """One process ("kernel"): wait for ``go``, run ``job`` on the cache entry of ``folder``, report the outcome."""
    os.environ["CNNWIDGETS_CACHE_DIR"] = cache_dir
    ImageIndex.batch_task = _batch_task_without_tags
    from cnnwidgets.device import get_device

    get_device()  # imports torch before the start, so both processes start their work together
    go.wait(120)
    try:
        if job == "folder_index":
            got = lab.folder_index(folder, progress=False, descriptors=COLOR)
            results.put((job, "ok", (got.how, len(got.index))))
        elif job == "load_and_save":  # loads and saves interleaved with the other process's
            entry = lab.index_folder_for(folder)
            sizes = []
            for i in range(rounds):
                index = ImageIndex.load(entry, progress=False)
                sizes.append(len(index))
                if i % 2 == 0:
                    index.save(entry)
            results.put((job, "ok", sizes))
        else:
            raise ValueError(job)
    except BaseException as exc:
        results.put((job, "error", f"{type(exc).__name__}: {exc}"))


def _two_kernels(folder, cache, job, rounds=0, timeout=240):
    ctx = multiprocessing.get_context("spawn")
    go, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_kernel, args=(job, str(folder), str(cache), go, results, rounds)) for _ in range(2)]
    for p in procs:
        p.start()
    go.set()
    try:
        got = [results.get(timeout=timeout) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():  # pragma: no cover - a hung kernel
                p.kill()
    errors = [g for g in got if g[1] != "ok"]
    assert not errors, errors
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return [g[2] for g in got]


@pytest.mark.slow
def test_two_kernels_build_one_index(tmp_path, cache, no_tags):
    folder = _images(tmp_path / "pics", [f"im{i}.png" for i in range(5)])
    hows = sorted(how for how, _ in _two_kernels(folder, cache, "folder_index"))
    assert hows == ["built", "loaded"]  # the second waited and loaded what the first saved
    _assert_one_valid_index(lab.index_folder_for(folder), n=5)
    assert lab.folder_index(folder, progress=False, descriptors=COLOR).how == "loaded"


@pytest.mark.slow
def test_two_kernels_update_one_index(tmp_path, cache, no_tags):
    folder = _images(tmp_path / "pics", [f"im{i}.png" for i in range(4)])
    assert lab.folder_index(folder, progress=False, descriptors=COLOR).how == "built"
    _images(folder, ["new1.png", "new2.png"], seed=1)
    (folder / "im0.png").unlink()
    got = sorted(_two_kernels(folder, cache, "folder_index"))
    assert got == [("loaded", 5), ("updated", 5)]
    index = _assert_one_valid_index(lab.index_folder_for(folder), n=5)
    assert sorted(os.path.basename(p) for p in index.paths) == ["im1.png", "im2.png", "im3.png", "new1.png", "new2.png"]


@pytest.mark.slow
def test_two_kernels_load_and_save_one_index(tmp_path, cache, no_tags):
    """Each save deletes the other generations: never one that the other process is writing or reading."""
    folder = _images(tmp_path / "pics", [f"im{i}.png" for i in range(5)])
    lab.folder_index(folder, progress=False, descriptors=COLOR)
    sizes = _two_kernels(folder, cache, "load_and_save", rounds=30)
    assert sizes == [[5] * 30, [5] * 30]
    _assert_one_valid_index(lab.index_folder_for(folder), n=5)


def test_lock_is_reentrant_and_tolerates_folders_without_one(tmp_path, monkeypatch):
    root = tmp_path / "idx"
    with storage.locked(root) as held:
        assert held and (root / storage.LOCK).exists()
        with storage.locked(root, shared=True) as inner, storage.locked(root) as again:
            assert inner and again  # this process already holds it: no deadlock
    (tmp_path / "user").mkdir()
    with storage.locked(tmp_path / "user", shared=True) as held:
        assert not held  # a load creates no lock file where there is no index
    assert not os.listdir(tmp_path / "user")
    with storage.locked(tmp_path / "nowhere", shared=True) as held:
        assert not held and not (tmp_path / "nowhere").exists()


def test_read_only_shared_index_loads_without_its_lock(tmp_path, monkeypatch):
    x = np.random.default_rng(0).random((6, 8), dtype=np.float32)
    root = ImageIndex.from_vectors([f"/v/{i}.png" for i in range(6)], {"color": x}).save(tmp_path / "shared")
    (root / storage.LOCK).unlink()  # as if saved by a version without locks, then made read-only
    real_open = os.open

    def refuse_lock(path, flags, *args, **kwargs):
        if str(path).endswith(storage.LOCK):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse_lock)  # the lock file cannot be created: as root, chmod would not stop it
    with storage.locked(root, shared=True) as held:
        assert not held
    assert len(ImageIndex.load(root, progress=False)) == 6
    monkeypatch.undo()
    if os.geteuid() != 0:  # the real thing: a folder and files without write permission
        mode = stat.S_IRUSR | stat.S_IXUSR
        root.chmod(mode)
        try:
            assert len(ImageIndex.load(root, progress=False)) == 6
        finally:
            root.chmod(mode | stat.S_IWUSR)


def test_unlocked_load_retries_once_when_a_save_replaced_its_generation(tmp_path, monkeypatch):
    x = np.random.default_rng(0).random((6, 8), dtype=np.float32)
    index = ImageIndex.from_vectors([f"/v/{i}.png" for i in range(6)], {"color": x})
    root = index.save(tmp_path / "idx")
    real = storage.check_files
    calls = []

    def save_meanwhile(root_, manifest):
        calls.append(manifest["generation"])
        if len(calls) == 1:  # another process (with the lock unavailable) saves between manifest and files
            with monkeypatch.context() as m:
                m.setattr(storage, "check_files", real)
                index.save(root)
        return real(root_, manifest)

    monkeypatch.setattr(storage, "check_files", save_meanwhile)
    monkeypatch.setattr(storage, "_open_lock", lambda root, create: -1)
    assert len(ImageIndex.load(root, progress=False)) == 6
    assert len(calls) == 2 and calls[0] != calls[1]


# ---------------------------------------------------------------------------------------------- damaged entries
def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _same_size_garbage(path):
    path.write_bytes(b"\x5a" * path.stat().st_size)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("truncate color.faiss", r"color\.faiss has \d+ bytes but the manifest records \d+: the file is truncated"),
        ("garbage metadata.sqlite", r"metadata\.sqlite is corrupted: its SHA-256 does not match"),
        ("truncate manifest.json", r"manifest\.json is not valid JSON"),
    ],
)
def test_damaged_cache_entry_is_reported_once_and_rebuilt(tmp_path, cache, no_tags, caplog, damage, problem):
    import re

    folder = _images(tmp_path / "pics", [f"im{i}.png" for i in range(4)])
    first = lab.folder_index(folder, progress=False, descriptors=COLOR)
    entry = first.cache
    how, name = damage.split()
    target = entry / name if name == "manifest.json" else entry / storage.generation_of(entry) / name
    (_truncate if how == "truncate" else _same_size_garbage)(target)
    with pytest.raises(IndexLoadError):
        ImageIndex.load(entry, progress=False)  # never used as it is
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = lab.folder_index(folder, progress=False, descriptors=COLOR)
    assert again.how == "built" and again.index.paths == first.index.paths
    (line,) = [r.getMessage() for r in _warnings(caplog)]
    assert "\n" not in line and str(folder) in line and re.search(problem, line), line
    assert name in line
    _assert_one_valid_index(entry, n=4)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert lab.folder_index(folder, progress=False, descriptors=COLOR).how == "loaded"
    assert not _warnings(caplog)


@pytest.fixture
def onnx_cache(tmp_path, monkeypatch):
    from cnnwidgets.engine.models import runtime as B

    pytest.importorskip("onnxruntime")
    monkeypatch.setenv(B.CACHE_ENV_VAR, str(tmp_path / "c"))
    B.clear_sessions()
    yield tmp_path / "c" / "onnx"
    B.clear_sessions()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "one byte"])
def test_damaged_onnx_export_is_reported_once_and_exported_again(onnx_cache, caplog, damage):
    import torch

    from cnnwidgets.engine import models as M
    from cnnwidgets.engine.models import runtime as B

    def tiny():
        torch.manual_seed(0)
        return M.create_model("tiny_cnn", device="cpu")

    images = list(np.random.default_rng(1).integers(0, 256, (4, 32, 32), dtype=np.uint8))
    want = M.embed(tiny(), images, backend="onnx")
    (path,) = onnx_cache.glob("*.onnx")
    data = path.read_bytes()
    k = 3 * len(data) // 4  # inside the weights: the file still parses, its digest does not match
    damaged = {
        "truncated": data[: len(data) // 2],
        "garbage": os.urandom(len(data)),
        "empty": b"",
        "one byte": data[:k] + bytes([data[k] ^ 1]) + data[k + 1 :],
    }
    path.write_bytes(damaged[damage])
    B.clear_sessions()
    exports = B.stats["exports"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        got = M.embed(tiny(), images, backend="onnx")
    assert B.stats["exports"] == exports + 1  # exported again, the damaged file never run
    np.testing.assert_allclose(got, want, atol=1e-6)
    (line,) = [r.getMessage() for r in _warnings(caplog)]
    assert "\n" not in line and str(path) in line and "cannot be loaded" in line and "exporting it again" in line
    assert path.read_bytes() == data
    assert sorted(p.name for p in onnx_cache.iterdir()) == [path.name, path.name + ".blake2b"]
    B.OnnxModel(path)  # the file in the cache is whole again


# ---------------------------------------------------------------------------------------------- read-only folders
@pytest.mark.slow
def test_read_only_folder_is_searched_without_writing_into_it(tmp_path, cache, no_tags):
    from cnnwidgets import SearchBox

    folder = _images(tmp_path / "class" / "cats", [f"cat{i}.png" for i in range(4)])
    _images(tmp_path / "class" / "cats" / "more", ["cat9.png"], seed=2)
    subprocess.run(["chmod", "-R", "a-w", str(tmp_path / "class")], check=True)
    try:
        if os.geteuid() != 0:  # the folder really refuses writes (root writes anyway: the listing decides)
            with pytest.raises(PermissionError):
                (folder / "probe").write_bytes(b"")
        before = _listing(tmp_path / "class")
        got = lab.folder_index(folder, progress=False, descriptors=COLOR)
        assert got.how == "built" and len(got.index) == 5
        assert lab.folder_index(folder, progress=False, descriptors=COLOR).how == "loaded"
        box = SearchBox(got.index, k=3)
        box.more_like_this(str(folder / "cat1.png"))
        box.wait(60)
        assert box.result and box.result[0].path == str(folder / "cat1.png")
        assert _listing(tmp_path / "class") == before  # the index went to the per-user cache
        assert got.cache.is_relative_to(cache)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(tmp_path / "class")], check=True)


# ---------------------------------------------------------------------------------------------- full disk
@contextlib.contextmanager
def _small_disk(path, size="2m"):
    """A tmpfs of ``size`` mounted at ``path`` (root on Linux only), or None where it cannot be mounted."""
    path.mkdir()
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        yield None
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def _vectors_index(n, d=64, seed=0):
    x = np.random.default_rng(seed).random((n, d), dtype=np.float32)
    return ImageIndex.from_vectors([f"/v/{i}.png" for i in range(n)], {"color": x})


@pytest.mark.parametrize("how", ["tmpfs", "injected"])
def test_full_disk_save_fails_clearly_and_keeps_the_last_save(tmp_path, monkeypatch, how):
    with _small_disk(tmp_path / "disk") as disk:
        if how == "tmpfs" and disk is None:
            pytest.skip("cannot mount a small tmpfs here (needs root on Linux)")
        root = tmp_path / "disk" / "idx"
        _vectors_index(10).save(root)
        big = _vectors_index(20_000, seed=1)  # 5 MB of vectors: more than the 2 MB disk holds
        if how == "injected":

            def full(path, rows):
                (path.parent / "partial").write_bytes(b"x" * 100)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

            monkeypatch.setattr(storage, "write_table", full)
        with pytest.raises(OSError, match=r"no space left on device while saving the index to .*idx") as err:
            big.save(root)
        assert err.value.errno == errno.ENOSPC and len(str(err.value)) < 300
        assert str(root) in str(err.value) and "the last save is kept" in str(err.value)
        _assert_one_valid_index(root, n=10)  # the half-written generation is gone
        monkeypatch.undo()
        if disk is not None:  # the space it took is free again: a save that fits succeeds
            _vectors_index(12).save(root)
            _assert_one_valid_index(root, n=12)


def test_full_disk_while_writing_the_manifest(tmp_path, monkeypatch):
    root = _vectors_index(10).save(tmp_path / "idx")
    from cnnwidgets import files

    real = files.os.replace

    def full(src, dst):
        if str(dst).endswith(storage.MANIFEST):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", full)
    with pytest.raises(OSError, match="no space left on device while saving the index to"):
        _vectors_index(11).save(root)
    monkeypatch.undo()
    _assert_one_valid_index(root, n=10)
    assert json.loads((root / storage.MANIFEST).read_text())["count"] == 10
