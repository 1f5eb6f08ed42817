"""A real JupyterHub on 127.0.0.1: students log in, each gets a single-user JupyterLab with the extension enabled,
opens a bench tab that shows a live picture, and keeps an index cache of their own.

The hub uses JupyterHub's dummy authenticator (one shared password) and its local-process spawner without system
users (``SimpleLocalProcessSpawner``): every student's server runs with its own home folder under the test's
temporary folder, as its working directory and ``HOME``. ``configurable-http-proxy`` comes from the npm registry
(``make install-test`` puts it in ``.venv/node/``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import _unavailable
from .harness import ARTIFACTS, REPO, free_port, pixels, wait_serving
from .test_extension import FD_RESULT, TAB, filter_designer_works, open_command

pytestmark = pytest.mark.browser

USERS = ("alice", "bob", "carol")
PASSWORD = "class-password"
GALLERY_IMG = f"{TAB} .cnnw-searchbox .cnnw-gallery-item img"


def _proxy_command() -> str | None:
    local = REPO / ".venv" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
    if local.exists():
        return str(local)
    return shutil.which("configurable-http-proxy")


class Hub:
    """A JupyterHub on 127.0.0.1 (hub API, proxy and its API on free loopback ports), stopped by :meth:`close`."""

    def __init__(self, root: Path, proxy: str, *, startup_timeout: float = 120.0):
        self.root = root
        self.homes = root / "home"
        self.homes.mkdir()
        self.port, hub_port, api_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        singleuser = Path(sys.executable).with_name("jupyterhub-singleuser")
        config = {
            "JupyterHub.ip": "127.0.0.1",
            "JupyterHub.port": self.port,
            "JupyterHub.hub_ip": "127.0.0.1",
            "JupyterHub.hub_port": hub_port,
            "ConfigurableHTTPProxy.api_url": f"http://127.0.0.1:{api_port}",
            "ConfigurableHTTPProxy.command": [proxy],
            "ConfigurableHTTPProxy.pid_file": str(root / "proxy.pid"),
            "JupyterHub.db_url": f"sqlite:///{root / 'hub.sqlite'}",
            "JupyterHub.cookie_secret_file": str(root / "cookie_secret"),
            "JupyterHub.authenticator_class": "dummy",
            "DummyAuthenticator.password": PASSWORD,
            "Authenticator.allow_all": True,
            "JupyterHub.spawner_class": "simple",
            "SimpleLocalProcessSpawner.home_dir_template": str(self.homes / "{username}"),
            "Spawner.cmd": [str(singleuser)],
            "Spawner.args": ["--allow-root", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url="],
            "Spawner.default_url": "/lab",
            "Spawner.environment": {"CNNWIDGETS_DEVICE": "cpu", "CNNWIDGETS_THREADS": "1"},
            "Spawner.start_timeout": 180,
            "Spawner.http_timeout": 180,
        }
        lines = ["c = get_config()  # noqa"]
        for key, value in config.items():
            lines.append(f"c.{key} = {value!r}")
        (root / "jupyterhub_config.py").write_text("\n".join(lines) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CNNWIDGETS_")}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        self.log_path = root / "jupyterhub.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open for the hub's lifetime, closed in close()
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("jupyterhub")), "-f", str(root / "jupyterhub_config.py")],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=root,
            start_new_session=True,
        )
        try:
            wait_serving(self.proc, f"{self.url}/hub/api", "JupyterHub", self.log, startup_timeout)
        except Exception:
            self.close()
            raise

    def home(self, user: str) -> Path:
        return self.homes / user

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-6000:]

    def processes(self):
        """The hub, its proxy, the students' servers and their kernels (psutil processes)."""
        import psutil

        try:
            hub = psutil.Process(self.proc.pid)
            return [hub, *hub.children(recursive=True)]
        except psutil.Error:
            return []

    def close(self):
        import signal

        with_children = self.processes()
        self.proc.send_signal(signal.SIGINT)  # the hub stops the servers it spawned and the proxy
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for p in with_children:
            with contextlib.suppress(Exception):
                p.kill()
        self._log.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    proxy = _proxy_command()
    if proxy is None:
        _unavailable("configurable-http-proxy not found (make install-test installs it into .venv/node)")
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        _unavailable("jupyterhub is not installed (pip install -e '.[test]')")
    from cnnwidgets.datasets import sample
    from cnnwidgets.io import resize_to_fit, to_png_bytes

    server = Hub(tmp_path_factory.mktemp("hub"), proxy)
    photos = {"alice": "chelsea", "bob": "coffee", "carol": "astronaut"}
    for user in USERS:
        home = server.home(user)
        (home / "photos").mkdir(parents=True)
        (home / "photo.png").write_bytes(to_png_bytes(resize_to_fit(sample(photos[user], mode="rgb"), 256)))
        for name in ("chelsea", "coffee", "astronaut", "rocket"):
            (home / "photos" / f"{name}.png").write_bytes(to_png_bytes(resize_to_fit(sample(name, mode="rgb"), 96)))
    yield server
    server.close()


def listening_beyond_loopback(procs) -> set:
    """(process name, address, port) of every listening socket of ``procs`` outside 127.0.0.0/8 and ::1."""
    import ipaddress

    import psutil

    names = {p.pid: p.name() for p in procs}
    found = set()
    for c in psutil.net_connections(kind="inet"):
        if c.pid in names and c.status == psutil.CONN_LISTEN:
            address = ipaddress.ip_address(c.laddr.ip.split("%")[0])
            mapped = getattr(address, "ipv4_mapped", None)
            if not (address.is_loopback or (mapped is not None and mapped.is_loopback)):
                found.add((names[c.pid], c.laddr.ip, c.laddr.port))
    return found


def log_in(browser, hub: Hub, user: str):
    """A browser context logged in as ``user``, on that user's JupyterLab (spawned by the login)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(240_000)
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url(f"**/user/{user}/lab**", timeout=240_000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell && window.jupyterapp.commands")
    page.add_style_tag(content=".Toastify { display: none !important; }")
    return context, page


def test_three_students_on_a_hub_each_with_a_live_bench_and_a_private_cache(browser, hub):
    pages = {}
    try:
        for user in USERS:
            context, page = log_in(browser, hub, user)
            pages[user] = (context, page)
            # the extension is enabled on every student's server: its command is registered once the app is restored
            page.wait_for_function("() => window.jupyterapp.commands.hasCommand('cnnwidgets:open')", timeout=60_000)
            open_command(page, "filter_designer", path="photo.png")
            assert pixels(page, FD_RESULT)[0] > 0
            filter_designer_works(page, "Filter designer — photo.png", "0.05")  # a typed cutoff draws a new result
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"jupyterhub_{user}.png"))

        # each student's server is their own process, working in their own home
        servers = {}
        for p in hub.processes():
            try:
                cmd = " ".join(p.cmdline())
                if "jupyterhub-singleuser" in cmd:
                    servers[p.environ().get("JUPYTERHUB_USER")] = p.cwd()
            except Exception:
                continue
        assert servers == {u: str(hub.home(u)) for u in USERS}, servers

        # the hub, the proxy, every student's server and kernel listen on loopback only
        assert listening_beyond_loopback(hub.processes()) == set()

        # two students index their own "photos" folder: each index lands in that student's private cache
        for user in USERS[:2]:
            _, page = pages[user]
            open_command(page, "search_folder", path="photos")
            page.wait_for_selector(f"{TAB} .cnnw-searchbox", timeout=400_000)
            assert "4 images indexed" in page.locator(f"{TAB} .cnnw-lab-note").inner_text()
            text = page.locator(f"{TAB} .cnnw-search-text input")
            text.fill("kitten")
            text.press("Enter")
            page.wait_for_selector(GALLERY_IMG, state="attached", timeout=120_000)
        for user in USERS:
            cache = hub.home(user) / ".cache" / "cnnwidgets"
            indexes = sorted((cache / "indexes").glob("*/manifest.json")) if cache.exists() else []
            if user in USERS[:2]:
                assert len(indexes) == 1, (user, indexes)
                assert stat.S_IMODE(cache.stat().st_mode) == 0o700, oct(cache.stat().st_mode)
                from cnnwidgets.index import ImageIndex

                paths = ImageIndex.load(indexes[0].parent, progress=False).paths
                assert sorted(Path(p).parent for p in paths) == [hub.home(user) / "photos"] * 4, paths
            else:
                assert indexes == [], (user, indexes)
            assert not any(p.name == "manifest.json" for p in (hub.home(user) / "photos").rglob("*"))

        # a student cannot reach another student's files through the extension: paths stay inside their root
        _, page = pages["alice"]
        open_command(page, "filter_designer", path="../bob/photo.png")
        page.wait_for_selector(f"{TAB} .cnnw-lab-status.cnnw-mod-error", timeout=120_000)
        status = page.locator(f"{TAB} .cnnw-lab-status").inner_text()
        assert "outside the server's root" in status, status
        assert len(status) < 300, status
    except Exception:
        print(hub.log())
        raise
    finally:
        for context, _ in pages.values():
            context.close()
