"""The Ray executor: the same rows as the local build, bad files reported, a killed worker never loses a row."""

import contextlib
import ipaddress
import os
import re
import stat
import subprocess
import sys
import threading
import time
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
    return [p.pid for p in psutil.process_iter(["cmdline"]) if "_RayIndexBatch" in " ".join(p.info["cmdline"] or [])]


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
    assert pids, "no Ray indexing actor found"
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


# ------------------------------------------------------------------ a cluster closed to the network, and quiet
RAY_ENV = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
NOISE = re.compile(r"\b(WARNING|ERROR|CRITICAL|Warning|Error)\b|\[[^\]]* [WE] \d+ \d+\]|warnings\.warn")


def on_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def listening_beyond_loopback(procs) -> set:
    """(process name, address, port) of every listening socket of ``procs`` outside 127.0.0.0/8 and ::1."""
    psutil = pytest.importorskip("psutil")
    names = {}
    for p in procs:
        with contextlib.suppress(psutil.Error):
            names[p.pid] = p.name()
    found = set()
    for c in psutil.net_connections(kind="inet"):
        if c.pid in names and c.status == psutil.CONN_LISTEN and not on_loopback(c.laddr.ip):
            found.add((names[c.pid], c.laddr.ip, c.laddr.port))
    return found


def tree(pid: int) -> list:
    psutil = pytest.importorskip("psutil")
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def cli_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in RAY_ENV}
    env.update(extra)
    return env


def run_cli_watching(args: list, env: dict, watch=None, timeout: float = 600):
    """Run the CLI in a child process; while it runs, collect the listening sockets beyond loopback of the child's
    process tree (and of ``watch()``'s processes). Returns (return code, stdout + stderr, sockets found)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "cnnwidgets", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    found: set = set()
    out = bytearray()
    reader = threading.Thread(target=lambda: out.extend(child.stdout.read()), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while child.poll() is None and time.monotonic() < deadline:
        found |= listening_beyond_loopback(tree(child.pid) + (watch() if watch else []))
        time.sleep(0.3)
    if child.poll() is None:
        child.kill()
    child.wait()
    reader.join(10)
    return child.returncode, out.decode("utf-8", "replace"), found


def test_cli_local_cluster_is_on_loopback_with_a_private_token_and_quiet(tmp_path):
    """No --ray-address: the CLI starts its own cluster, every socket on loopback, token auth with a token file only
    its owner reads, and no warning or error line on a normal build."""
    folder = photo_folder(tmp_path / "photos", 5)
    home = tmp_path / "home"
    home.mkdir()
    status, out, beyond = run_cli_watching(
        ["index", str(folder), "--index", str(tmp_path / "ix"), "--executor", "ray"], cli_env(HOME=str(home))
    )
    assert status == 0, out[-2000:]
    assert "indexed 5 images" in out and "skipped 2" in out
    assert beyond == set()
    noisy = [line for line in out.splitlines() if NOISE.search(line)]
    assert noisy == []
    token = home / ".ray" / "auth_token"
    assert token.read_text().strip() and stat.S_IMODE(token.stat().st_mode) == 0o600


def test_fixture_cluster_listens_on_loopback_only_during_a_build(ray_cluster, ray_head, tmp_path):
    folder = photo_folder(tmp_path / "photos", 6)
    built = []
    worker = threading.Thread(
        target=lambda: built.append(
            ImageIndex.build(folder, progress=False, executor=executors.RayExecutor(workers=2, batch_size=2))
        )
    )
    worker.start()
    beyond, sampled = set(), 0
    while worker.is_alive():
        procs = ray_head.processes() + tree(os.getpid())
        beyond |= listening_beyond_loopback(procs)
        sampled += 1
        time.sleep(0.3)
    worker.join()
    assert built and len(built[0]) == 6 and sampled > 0
    assert len(ray_head.processes()) >= 3  # gcs_server, raylet and workers were looked at
    assert beyond == set()


def test_cli_reaches_a_ray_start_cluster_with_its_token(ray_head, tmp_path):
    """`ray start --head` turns token authentication on; the CLI finds the token as Ray documents it, out of the box."""
    folder = photo_folder(tmp_path / "photos", 3)
    args = ["index", str(folder), "--executor", "ray", "--ray-address", ray_head.address, "--workers", "1"]
    token = ray_head.token_file.read_text().strip()
    for i, env in enumerate([cli_env(RAY_AUTH_TOKEN_PATH=str(ray_head.token_file)), cli_env(RAY_AUTH_TOKEN=token)]):
        status, out, beyond = run_cli_watching([*args, "--index", str(tmp_path / f"ix{i}")], env, ray_head.processes)
        assert status == 0, out[-2000:]
        assert "indexed 3 images" in out
        assert beyond == set()
        assert [line for line in out.splitlines() if NOISE.search(line)] == []


def test_a_wrong_or_missing_token_is_one_line_that_names_the_fix(ray_head, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    folder = photo_folder(tmp_path / "photos", 2)
    args = [sys.executable, "-m", "cnnwidgets", "index", str(folder), "--index", str(tmp_path / "ix")]
    args += ["--executor", "ray", "--ray-address", ray_head.address]
    runs = {
        "refused this process's token": cli_env(RAY_AUTH_TOKEN="0" * 64),
        "needs a token and none was found": cli_env(HOME=str(home)),
    }
    children = {
        want: subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for want, env in runs.items()
    }
    for want, child in children.items():
        out, err = child.communicate(timeout=300)
        assert child.returncode == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert want in lines[0] and "RAY_AUTH_TOKEN" in lines[0] and ray_head.address in lines[0]
    assert not (tmp_path / "ix").exists()
