"""Browser-test harness: a JupyterLab server on localhost and Debian's Chromium driven by Playwright.

Usage in a test (fixtures from ``tests/browser/conftest.py``)::

    def test_something(lab, page):
        lab.write_notebook("t.ipynb", ["from cnnwidgets import FilterDesigner", "w = FilterDesigner(); w"])
        lab.run_notebook(page, "t.ipynb")
        page.wait_for_selector(".cnnw-bench img")

The server's root is a temporary folder holding a copy of ``notebooks/``, so a run
in the browser never rewrites the tutorial notebooks.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("CNNWIDGETS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "browser" / "artifacts"
DOCS_IMAGES = REPO / "docs" / "images"

# Read a rendered <img>'s RGBA pixels back through a canvas into `d` (and its size into `c`).
_READ_PIXELS = """
    const c = document.createElement('canvas');
    c.width = el.naturalWidth; c.height = el.naturalHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(el, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;"""

# [width, height, checksum] of a rendered <img>'s pixels.
PIXELS_JS = (
    "el => {"
    + _READ_PIXELS
    + """
    let s = 0;
    for (let i = 0; i < d.length; i += 4) s = (s * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) % 1000000007;
    return [c.width, c.height, s];
}"""
)

# Mean of the red channel of a rendered <img> (its gray level for gray images and masks).
MEAN_GRAY_JS = (
    "el => {"
    + _READ_PIXELS
    + """
    let s = 0;
    for (let i = 0; i < d.length; i += 4) s += d[i];
    return s / (d.length / 4);
}"""
)


def pixels(page, selector: str) -> list:
    """``[width, height, checksum]`` of the first visible ``<img>`` matching ``selector``, once it has loaded."""
    el = page.wait_for_selector(selector, state="visible")
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=el)
    return el.evaluate(PIXELS_JS)


def wait_pixels_change(page, selector: str, before: list, *, timeout: float = 120_000) -> list:
    """Wait until the ``<img>`` at ``selector`` shows other pixels than ``before``; return the new :func:`pixels`."""
    page.wait_for_function(
        f"([sel, before]) => {{ const el = document.querySelector(sel); if (!el || !el.complete || !el.naturalWidth) return false;"
        f" const now = ({PIXELS_JS})(el); return now.join() !== before.join(); }}",
        arg=[selector, before],
        timeout=timeout,
    )
    return pixels(page, selector)


def widget_screenshot(page, selector: str, name: str, *, height: int = 1400) -> Path:
    """Screenshot one widget into the artifacts folder; with CNNWIDGETS_DOCS_IMAGES=1 also into docs/images/.

    The docs pictures are refreshed only on request, so a test run never rewrites tracked files.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.set_viewport_size({"width": 1400, "height": height})  # room for the whole widget
    page.add_style_tag(content=".Toastify { display: none !important; }")  # JupyterLab's news prompt
    el = page.locator(selector).first
    el.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    el.screenshot(path=str(path))
    if os.environ.get("CNNWIDGETS_DOCS_IMAGES") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMAGES / name)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_serving(proc, url: str, name: str, log, timeout: float) -> None:
    """Wait until ``url`` answers 200; a server process ``proc`` that exits, or the timeout, raises with its ``log()``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{name} did not start within {timeout} s:\n{log()}")


def make_notebook(cells: list[str]) -> dict:
    """A minimal nbformat-4 notebook with a python3 kernelspec (so no kernel dialog blocks the run)."""
    return {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [], "source": src}
            for i, src in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


class Server:
    """A server process started by a test, its output in ``root/<log_name>``; :meth:`close` stops it."""

    def _env(self) -> dict:
        """The server's environment: this process's, on the CPU unless CNNWIDGETS_DEVICE says otherwise, with
        Jupyter's config and runtime folders under ``root``."""
        env = dict(os.environ)
        env.setdefault("CNNWIDGETS_DEVICE", "cpu")
        env["JUPYTER_CONFIG_DIR"] = str(self.root / ".jupyter-config")
        env["JUPYTER_RUNTIME_DIR"] = str(self.root / ".jupyter-runtime")
        return env

    def _start(self, cmd: list[str], env: dict, log_name: str) -> None:
        self.log_path = self.root / log_name
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open for the server's lifetime, closed in close()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=self.root)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-5000:]

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


class Lab(Server):
    """A running JupyterLab server on 127.0.0.1 with a random token."""

    def __init__(self, root: Path, *, startup_timeout: float = 120.0):
        self.root = Path(root)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        notebooks = REPO / "notebooks"
        if notebooks.is_dir():
            for src in notebooks.iterdir():
                if src.suffix == ".ipynb" or src.is_dir() and not src.name.startswith("."):
                    dest = self.root / src.name
                    shutil.copytree(src, dest) if src.is_dir() else shutil.copy2(src, dest)
        env = self._env()
        # every cell rendered: with windowing, cells outside the viewport count as hidden and tests wait forever
        tracker = self.root / ".jupyter-config" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
        tracker.mkdir(parents=True, exist_ok=True)
        (tracker / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            f"--port={self.port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.expose_app_in_browser=True",
            "--ServerApp.port_retries=0",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        self._start(cmd, env, "jupyterlab.log")
        self._wait_ready(startup_timeout)

    def _wait_ready(self, timeout: float):
        wait_serving(self.proc, f"{self.url}/api/status?token={self.token}", "JupyterLab", self.log, timeout)

    def write_notebook(self, name: str, cells: list[str]) -> Path:
        path = self.root / name
        path.write_text(json.dumps(make_notebook(cells), indent=1))
        return path

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"

    def run_notebook(self, page, name: str, *, timeout: float = 180.0):
        """Open ``name`` in JupyterLab, wait for its kernel, and run all cells (returns at once)."""
        page.goto(self.notebook_url(name), timeout=timeout * 1000)
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=timeout * 1000)
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=timeout * 1000)
        page.wait_for_function(
            """() => {
                const w = window.jupyterapp.shell.currentWidget;
                const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
                return k && k.status === 'idle';
            }""",
            timeout=timeout * 1000,
        )
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

    def wait_idle(self, page, *, timeout: float = 180.0):
        """Wait until every cell has run (no '[*]' prompt left) and the kernel is idle."""
        page.wait_for_function(
            """() => {
                const w = window.jupyterapp.shell.currentWidget;
                const k = w && w.sessionContext.session && w.sessionContext.session.kernel;
                const busy = [...document.querySelectorAll('.jp-InputPrompt')].some(e => e.textContent.includes('*'));
                return k && k.status === 'idle' && !busy;
            }""",
            timeout=timeout * 1000,
        )

    def errors(self, page) -> list[str]:
        """Texts of error outputs shown in the open notebook."""
        return page.eval_on_selector_all(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'], .jp-RenderedText[data-mime-type='application/vnd.jupyter.error']",
            "els => els.map(e => e.textContent)",
        )

    def show(self, page, name: str, source: str, *, ready: str, timeout: float = 180.0):
        """Run a one-cell notebook ``name`` of ``source`` in ``page``; wait until the element ``ready`` is visible
        and the kernel idle, and check that no cell shows an error. Returns ``ready``'s element, scrolled into view.
        """
        self.write_notebook(name, [source])
        self.run_notebook(page, name, timeout=timeout)
        el = page.wait_for_selector(ready, state="visible", timeout=timeout * 1000)
        self.wait_idle(page, timeout=timeout)
        errors = self.errors(page)
        assert errors == [], errors
        el.scroll_into_view_if_needed()
        return el

    def screenshot(self, page, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        page.screenshot(path=str(path), full_page=True)
        return path


class Voila(Server):
    """A running Voilà server on 127.0.0.1 that serves one notebook as an app (code hidden, widgets live)."""

    def __init__(self, notebook: Path, root: Path, *, startup_timeout: float = 120.0):
        self.root = Path(root)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = self._env()
        cmd = [
            str(Path(sys.executable).with_name("voila")),
            str(notebook),
            "--no-browser",
            f"--port={self.port}",
            "--Voila.ip=127.0.0.1",
            "--Voila.port_retries=0",
            "--show_tracebacks=True",
        ]
        self.started = time.monotonic()
        self._start(cmd, env, "voila.log")
        deadline = self.started + startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Voilà exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"Voilà did not start within {startup_timeout} s:\n{self.log()}")
