"""The JupyterLab extension: file-browser menus, Open With, launcher cards and bench tabs with their own kernels.

Every test counts the server's kernels before opening tabs and after closing them: the same.
The time from the menu click to the first picture (median of 5) is written to
``tests/browser/artifacts/extension_timings.json``.
"""

from __future__ import annotations

import json
import statistics
import time
import urllib.request

import pytest

from .harness import ARTIFACTS, pixels, wait_pixels_change, widget_screenshot

pytestmark = pytest.mark.browser

HOSTILE = 'it\'s "odd" $(touch x); rm -rf y.png'
HOSTILE_DIR = "café été"
TAB = ".cnnw-lab-panel:not(.lm-mod-hidden)"
FD_RESULT = f"{TAB} .cnnw-filter-designer .cnnw-fd-result img"


# ---------------------------------------------------------------------------------------------- set-up
@pytest.fixture(scope="module")
def files(lab, tmp_path_factory):
    """Images under the server's root: ext/photo.png, ext/folder/ (30 images), the hostile name, a link out."""
    from cnnwidgets.datasets import sample
    from cnnwidgets.index import distortion_set
    from cnnwidgets.io import resize_to_fit, to_png_bytes

    ext = lab.root / "ext"
    ext.mkdir(exist_ok=True)
    cat = resize_to_fit(sample("chelsea", mode="rgb"), 320)
    (ext / "photo.png").write_bytes(to_png_bytes(cat))
    folder = ext / "folder"
    samples = (
        "chelsea",
        "coffee",
        "astronaut",
        "rocket",
        "coins",
        "camera",
        "horse",
        "moon",
        "immunohistochemistry",
        "colorwheel",
    )
    distortion_set(folder, samples=samples, distortions=("original", "rot90", "hue"), size=128)
    hostile = ext / HOSTILE_DIR
    hostile.mkdir(exist_ok=True)
    (hostile / HOSTILE).write_bytes(to_png_bytes(cat))
    (hostile / "y.png").write_bytes(to_png_bytes(cat[:64, :64]))
    outside = tmp_path_factory.mktemp("outside") / "secret.png"
    outside.write_bytes(to_png_bytes(cat))
    (ext / "link-out.png").symlink_to(outside)
    (ext / "tutorials").mkdir(exist_ok=True)
    return {"ext": ext, "folder": folder, "hostile": hostile, "count": sum(1 for _ in folder.rglob("*.png"))}


def kernels(lab) -> list[str]:
    with urllib.request.urlopen(f"{lab.url}/api/kernels?token={lab.token}", timeout=10) as r:
        return sorted(k["id"] for k in json.load(r))


def wait_kernels(lab, expected: list[str], timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = kernels(lab)
        if now == expected:
            return now
        time.sleep(0.5)
    raise AssertionError(f"kernels {kernels(lab)} != {expected} after {timeout} s")


def open_lab(lab, page, folder: str = "ext"):
    page.goto(f"{lab.url}/lab/tree/{folder}?token={lab.token}&reset")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell")
    page.wait_for_selector(".jp-DirListing-item")
    page.add_style_tag(content=".Toastify { display: none !important; }")


def item(page, name: str):
    return page.locator(".jp-DirListing-item").filter(has=page.locator(".jp-DirListing-itemText", has_text=name)).first


def context_menu(page, name: str, *entries: str):
    """Right-click ``name`` in the file browser and click through the menu ``entries``; returns the click time."""
    item(page, name).click(button="right")
    for entry in entries[:-1]:
        page.locator(".lm-Menu:visible .lm-Menu-item").filter(has_text=entry).first.hover()
    last = page.locator(".lm-Menu:visible .lm-Menu-item").filter(has_text=entries[-1]).last
    last.wait_for(state="visible")
    t0 = time.monotonic()
    last.click()
    return t0


def wait_first_picture(page, selector: str, timeout: float = 180_000) -> None:
    page.wait_for_function(
        "sel => { const el = document.querySelector(sel); return el && el.complete && el.naturalWidth > 0; }",
        arg=selector,
        timeout=timeout,
    )


def close_tabs(page):
    """Close every cnnwidgets tab (and with it its kernel)."""
    page.evaluate(
        """() => { for (const w of [...window.jupyterapp.shell.widgets('main')])
                 if (w.hasClass('cnnw-lab-panel')) w.close(); }"""
    )


def status_text(page) -> str:
    return page.locator(f"{TAB} .cnnw-lab-status").inner_text()


# ---------------------------------------------------------------------------------------------- tests
def test_filter_designer_from_context_menu(lab, page, files):
    open_lab(lab, page)
    before = kernels(lab)
    times = []
    for i in range(5):
        t0 = context_menu(page, "photo.png", "cnnwidgets", "Filter designer")
        wait_first_picture(page, FD_RESULT)
        times.append(time.monotonic() - t0)
        if i < 4:
            close_tabs(page)
            wait_kernels(lab, before)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "extension_timings.json").write_text(
        json.dumps({"menu_click_to_first_picture_s": times, "median_s": statistics.median(times)}, indent=1)
    )
    print(f"menu click -> first picture: {[round(t, 2) for t in times]}, median {statistics.median(times):.2f} s")
    title = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel").inner_text()
    assert title == "Filter designer — photo.png"

    # move the cutoff: the result changes
    before_px = pixels(page, FD_RESULT)
    readout = page.locator(f"{TAB} .cnnw-fd-cutoff .widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("0.030")
    page.keyboard.press("Enter")
    wait_pixels_change(page, FD_RESULT, before_px)
    assert "error" not in status_text(page).lower()
    widget_screenshot(page, TAB, "extension_filter_designer.png", height=1100)

    close_tabs(page)
    wait_kernels(lab, before)
