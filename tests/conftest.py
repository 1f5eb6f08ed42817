import atexit
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Tests compute on the CPU unless CNNWIDGETS_DEVICE says otherwise, with few threads on small machines.
os.environ.setdefault("CNNWIDGETS_DEVICE", "cpu")
# ONNX exports go to a folder of this test session, never to the user's cache; the session removes it at exit
# (pytest-xdist's workers inherit it from the process that made it).
if "CNNWIDGETS_CACHE_DIR" not in os.environ:
    os.environ["CNNWIDGETS_CACHE_DIR"] = tempfile.mkdtemp(prefix="cnnwidgets-test-cache-")
    atexit.register(shutil.rmtree, os.environ["CNNWIDGETS_CACHE_DIR"], ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def lite0():
    """EfficientNet-Lite0 (the registry's, ImageNet weights) on the CPU in eval mode, built once for the session.

    Shared by every test that asks for it: a test may run it, hook it and read its weights, never change them.
    """
    from cnnwidgets.engine import models

    return models.create_model("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """``image_folder(samples=..., distortions=..., size=..., extra_files=...)``: a folder of sample images and
    distorted copies of each, written once per session for each set of arguments.

    The images come from :func:`cnnwidgets.index.distortion_set` (``<sample>/<sample>_<distortion>.png``);
    ``extra_files`` is a tuple of ``(relative path, bytes)`` written beside them (broken files, captions).
    Returns ``(root, labels)``: the folder and ``{absolute path: sample name}`` of the images. Tests read the
    folder and never change it; one that must, copies it (``shutil.copytree``) to its own ``tmp_path``.
    """
    from cnnwidgets.index import distortion_set

    made = {}

    def make(*, samples, distortions, size=256, extra_files=()):
        key = (tuple(samples), tuple(distortions), int(size), tuple(extra_files))
        if key not in made:
            root = tmp_path_factory.mktemp("images")
            labels = distortion_set(root, samples=key[0], distortions=key[1], size=key[2])
            for name, content in extra_files:
                (root / name).write_bytes(content)
            made[key] = (root, labels)
        return made[key]

    return make


@pytest.fixture(scope="session")
def folder_index(image_folder):
    """``folder_index(folder_args, **build_args)``: :meth:`cnnwidgets.index.ImageIndex.build` on the folder
    ``image_folder(**folder_args)``, built once per session for each set of arguments (``progress=False``).

    Returns ``(index, root, labels)``. Tests search and read the index and never change it (add, remove, save
    over it): one that must, builds its own.
    """
    from cnnwidgets.index import ImageIndex

    made = {}

    def build(folder_args: dict, **build_args):
        key = repr((sorted(folder_args.items()), sorted(build_args.items())))
        if key not in made:
            root, labels = image_folder(**folder_args)
            made[key] = (ImageIndex.build(root, progress=False, **build_args), root, labels)
        return made[key]

    return build


class RayHead:
    """A Ray cluster started by ``ray start --head`` on 127.0.0.1 with token authentication, in its own temp folder."""

    def __init__(self, temp: Path):
        self.temp = temp
        self.token_file = temp / "auth_token"
        self.token_file.write_text(secrets.token_hex(32), encoding="utf-8")
        self.token_file.chmod(0o600)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.env = dict(
            os.environ,
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN_PATH=str(self.token_file),
            RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # the node takes 127.0.0.1, not the machine's address
            # a loaded machine starts Ray's agents and workers slowly: give them minutes, not seconds
            RAY_agent_register_timeout_ms="180000",
            RAY_worker_register_timeout_seconds="180",
        )

    def start(self) -> None:
        ray_cli = Path(sys.executable).with_name("ray")
        cmd = [str(ray_cli), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={self.port}", "--num-cpus=2"]
        cmd += ["--include-dashboard=false", "--object-store-memory=268435456", f"--temp-dir={self.temp}"]
        cmd += ["--disable-usage-stats"]
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed ({done.returncode}): {done.stderr[-2000:]}")

    def processes(self) -> list:
        """The cluster's processes: those started with its temp folder, and their children."""
        import psutil

        roots = []
        for p in psutil.process_iter(["cmdline"]):
            if str(self.temp) in " ".join(p.info["cmdline"] or []):
                roots.append(p)
        found = {p.pid: p for p in roots}
        for p in roots:
            with contextlib.suppress(psutil.Error):
                found.update({c.pid: c for c in p.children(recursive=True)})
        return list(found.values())

    def stop(self) -> None:
        import psutil

        procs = self.processes()
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.terminate()
        _, alive = psutil.wait_procs(procs, timeout=10)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_head():
    """A real cluster, as a user starts one: ``ray start --head`` on 127.0.0.1, token authentication on, 2 CPUs,
    no dashboard; stopped at the end of the session."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'cnnwidgets[ray]')")
    pytest.importorskip("psutil")
    head = RayHead(Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp")))  # Ray's socket paths must stay short
    head.start()
    try:
        yield head
    finally:
        head.stop()


@pytest.fixture(scope="session")
def ray_cluster(ray_head):
    """This test process connected to :func:`ray_head` the way a user's is: its address, and its token found in
    the file ``RAY_AUTH_TOKEN_PATH`` names (``RAY_AUTH_MODE`` left unset)."""
    import ray

    from cnnwidgets.index import raycluster

    os.environ["RAY_AUTH_TOKEN_PATH"] = str(ray_head.token_file)
    os.environ["RAY_ADDRESS"] = ray_head.address
    raycluster.connect(ray)
    yield ray
    ray.shutdown()
    for name in ("RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS"):
        os.environ.pop(name, None)
