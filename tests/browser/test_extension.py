"""The JupyterLab extension: file-browser menus, Open With, launcher cards and bench tabs on one shared kernel.

Every test counts the server's kernels before opening tabs and after closing them: the same.
The time from the menu click to the first picture with no kernel running (median of 5) is written to
``tests/browser/artifacts/extension_timings.json``; with the shared kernel running (warm), and the kernel's
memory with three tabs, to ``extension_shared_kernel.json``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import statistics
import time
import urllib.parse
import urllib.request

import pytest

from .harness import ARTIFACTS, DOCS_IMAGES, REPO, pixels, wait_pixels_change, widget_screenshot

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
    page.wait_for_function(
        "f => { const b = document.querySelector('.jp-BreadCrumbs'); return b && b.textContent.replace(/\\s*\\/\\s*/g, '/').replace(/^\\/|\\/$/g, '') === f; }",
        arg=urllib.parse.unquote(folder),
    )
    page.wait_for_selector(".jp-DirListing-content", state="attached")
    page.add_style_tag(content=".Toastify { display: none !important; }")


def item(page, name: str):
    return page.locator(".jp-DirListing-item").filter(has=page.locator(".jp-DirListing-itemText", has_text=name)).first


def context_menu(page, name: str, *entries: str, screenshot: str | None = None):
    """Right-click ``name`` in the file browser and click through the menu ``entries``; returns the click time."""
    item(page, name).click(button="right")
    for entry in entries[:-1]:
        page.locator(".lm-Menu:visible .lm-Menu-item").filter(has_text=entry).first.hover()
    last = page.locator(".lm-Menu:visible .lm-Menu-item").filter(has_text=entries[-1]).last
    last.wait_for(state="visible")
    if screenshot:
        last.hover()
        page_screenshot(page, screenshot)
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


def current_title(page) -> str:
    """The label of the main area's current tab."""
    return page.evaluate("() => window.jupyterapp.shell.currentWidget.title.label")


def status_text(page) -> str:
    return page.locator(f"{TAB} .cnnw-lab-status").inner_text()


# ---------------------------------------------------------------------------------------------- tests
def test_filter_designer_from_context_menu(lab, page, files):
    open_lab(lab, page)
    before = kernels(lab)
    times = []
    for i in range(5):
        shot = "extension_context_menu.png" if i == 0 else None
        t0 = context_menu(page, "photo.png", "cnnwidgets", "Filter designer", screenshot=shot)
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
    assert current_title(page) == "Filter designer — photo.png"

    # move the cutoff: the result changes
    before_px = pixels(page, FD_RESULT)
    readout = page.locator(f"{TAB} .cnnw-fd-cutoff .widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("0.030")
    page.keyboard.press("Enter")
    wait_pixels_change(page, FD_RESULT, before_px)
    assert "error" not in status_text(page).lower()
    page_screenshot(page, "extension_filter_designer.png")

    # Open as notebook: a notebook next to the image; running it reproduces the tab's result (its assert cell)
    page.locator(f"{TAB} .cnnw-open-as-notebook").first.click()
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
    nb = files["ext"] / "photo-filter_designer.ipynb"
    assert nb.exists()
    assert "0.03" in nb.read_text()
    run_current_notebook(lab, page)
    close_notebook(page)

    close_tabs(page)
    wait_kernels(lab, before)


def page_screenshot(page, name: str):
    """The whole JupyterLab window (file browser and tab) into the artifacts (and docs/images on request)."""
    page.set_viewport_size({"width": 1400, "height": 900})
    page.wait_for_timeout(500)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))
    if os.environ.get("CNNWIDGETS_DOCS_IMAGES") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACTS / name, DOCS_IMAGES / name)


def run_current_notebook(lab, page):
    """Run all cells of the notebook in front and check that none failed."""
    page.wait_for_function(
        """() => { const w = window.jupyterapp.shell.currentWidget;
                 const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
                 return k && k.status === 'idle'; }"""
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_timeout(1000)
    lab.wait_idle(page)
    errors = page.eval_on_selector_all(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'],"
        " .jp-NotebookPanel:not(.lm-mod-hidden) .jp-RenderedText[data-mime-type='application/vnd.jupyter.error']",
        "els => els.map(e => e.textContent)",
    )
    assert not [e for e in errors if "Error" in e or "Traceback" in e], errors
    prompts = page.eval_on_selector_all(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt", "els => els.map(e => e.textContent)"
    )
    assert prompts and all(p.strip() not in ("[ ]:", "[*]:", "") for p in prompts), prompts


def close_notebook(page):
    """Shut the front notebook's kernel down and close it."""
    page.evaluate(
        """async () => { const w = window.jupyterapp.shell.currentWidget;
                       await w.sessionContext.shutdown(); w.dispose(); }"""
    )


def test_segmenter_and_layer_visualizer(lab, page, files):
    open_lab(lab, page)
    before = kernels(lab)
    context_menu(page, "photo.png", "cnnwidgets", "Threshold segmenter")
    wait_first_picture(page, f"{TAB} .cnnw-threshold-segmenter img")
    assert "Threshold segmenter — photo.png" in current_title(page)
    widget_screenshot(page, TAB, "extension_threshold_segmenter.png", height=1100)

    context_menu(page, "photo.png", "cnnwidgets", "Layer visualizer")
    page.wait_for_function(
        f"() => {{ const el = document.querySelector('{TAB} .cnnw-layer-visualizer');"
        " return el && /top-1 \\S/.test(el.innerText); }",
        timeout=240_000,
    )
    text = page.locator(f"{TAB} .cnnw-layer-visualizer").inner_text()
    top1 = text.split("top-1 ", 1)[1].split("(")[0].strip()
    print("layer visualizer top-1:", top1)
    assert any(w in top1.lower() for w in ("cat", "tabby", "lynx")), top1
    wait_first_picture(page, f"{TAB} .cnnw-layer-visualizer img")
    widget_screenshot(page, TAB, "extension_layer_visualizer.png", height=1300)

    # Open With lists the same entries; the image viewer stays the default for a double click
    item(page, "photo.png").click(button="right")
    page.locator(".lm-Menu:visible .lm-Menu-item").filter(has_text="Open With").first.hover()
    page.locator(".lm-Menu:visible .lm-Menu-item").filter(has_text="Filter designer (cnnwidgets)").wait_for()
    entries = page.locator(".lm-Menu:visible .lm-Menu-itemLabel").all_inner_texts()
    for label in ("Filter designer", "Threshold segmenter", "Layer visualizer (classify)", "Find similar images"):
        assert f"{label} (cnnwidgets)" in entries, entries
    page.locator(".lm-Menu:visible .lm-Menu-item").filter(has_text="Threshold segmenter (cnnwidgets)").click()
    wait_first_picture(page, f"{TAB} .cnnw-threshold-segmenter img")
    default = page.evaluate("() => window.jupyterapp.docRegistry.defaultWidgetFactory('ext/photo.png').name")
    assert default == "Image"

    assert current_title(page) == "Threshold segmenter — photo.png"
    assert (files["ext"] / "photo.png").exists()
    close_tabs(page)
    wait_kernels(lab, before)


PROGRESS = ".cnnw-lab-panel .progress-bar, .cnnw-lab-panel .widget-progress"
GALLERY = f"() => [...document.querySelectorAll('{TAB} .cnnw-searchbox .cnnw-gallery-item')].map(e => e.dataset.path)"


def watch_progress(page):
    page.evaluate(
        f"""() => {{ window.__cnnwProgress = false;
            if (window.__cnnwObserver) window.__cnnwObserver.disconnect();
            window.__cnnwObserver = new MutationObserver(() => {{
                if (document.querySelector({PROGRESS!r})) window.__cnnwProgress = true; }});
            window.__cnnwObserver.observe(document.body, {{subtree: true, childList: true}}); }}"""
    )


def test_search_folder_builds_then_reuses_index(lab, page, files):
    folder = files["folder"]
    listing = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
    assert files["count"] >= 30
    open_lab(lab, page)
    before = kernels(lab)
    watch_progress(page)
    context_menu(page, "folder", "Search images in this folder")
    page.wait_for_selector(PROGRESS, state="attached", timeout=180_000)
    assert page.locator(f"{TAB} .cnnw-searchbox").count() == 0  # the bar shows while the index builds
    page.wait_for_selector(f"{TAB} .cnnw-searchbox", timeout=300_000)
    assert "images indexed" in page.locator(f"{TAB} .cnnw-lab-note").inner_text()
    assert current_title(page).startswith("Search images — folder")

    text = page.locator(f"{TAB} .cnnw-search-text input")
    text.fill("kitten")
    text.press("Enter")
    page.wait_for_function(f"() => ({GALLERY})().length === 12", timeout=120_000)
    first = page.evaluate(GALLERY)
    assert "/chelsea/" in first[0], first
    page.wait_for_function(
        f"() => [...document.querySelectorAll('{TAB} .cnnw-gallery-item img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    widget_screenshot(page, TAB, "extension_search_folder.png", height=1200)
    target = page.locator(f"{TAB} .cnnw-gallery-item").nth(5)
    clicked = target.get_attribute("data-path")
    target.click()
    page.wait_for_function(f"() => ({GALLERY})()[0] === {json.dumps(clicked)}", timeout=120_000)
    assert page.evaluate(GALLERY) != first

    close_tabs(page)
    wait_kernels(lab, before)

    # second time: the cached index is up to date, nothing is built
    watch_progress(page)
    context_menu(page, "folder", "Search images in this folder")
    page.wait_for_selector(f"{TAB} .cnnw-searchbox", timeout=180_000)
    note = page.locator(f"{TAB} .cnnw-lab-note").inner_text()
    assert "loaded from the cache" in note, note
    assert page.evaluate("() => window.__cnnwProgress") is False
    close_tabs(page)
    wait_kernels(lab, before)

    # the index lives in the per-user cache, never in the folder
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == listing
    from cnnwidgets.lab import index_folder_for

    cached = index_folder_for(folder)  # the server and its kernels share the tests' CNNWIDGETS_CACHE_DIR
    assert cached.is_dir() and folder not in cached.parents, cached


def test_find_similar_images(lab, page, files):
    open_lab(lab, page, "ext/folder/chelsea")
    before = kernels(lab)
    context_menu(page, "chelsea_rot90.png", "cnnwidgets", "Find similar images")
    page.wait_for_function(f"() => ({GALLERY})().length >= 3", timeout=300_000)
    got = page.evaluate(GALLERY)
    assert got[0].endswith("/chelsea/chelsea_rot90.png"), got
    assert page.locator(f"{TAB} .cnnw-search-text input").input_value() == ""
    close_tabs(page)
    wait_kernels(lab, before)


def tree(root) -> list[str]:
    """Every path under the server's root but the server's runtime files (kernel connection files)."""
    return sorted(str(p) for p in root.rglob("*") if ".jupyter-runtime" not in p.parts)


def test_hostile_file_name_opens_and_runs_nothing(lab, page, files):
    hostile = files["hostile"]
    before_files = tree(lab.root)
    open_lab(lab, page, "ext/" + urllib.parse.quote(HOSTILE_DIR))
    before = kernels(lab)
    context_menu(page, HOSTILE, "cnnwidgets", "Filter designer")
    wait_first_picture(page, FD_RESULT)
    assert current_title(page) == f"Filter designer — {HOSTILE}"
    assert "error" not in status_text(page).lower()
    close_tabs(page)
    wait_kernels(lab, before)
    after_files = tree(lab.root)
    assert after_files == before_files  # no "x" created, "y.png" still there
    assert (hostile / "y.png").exists() and not list(lab.root.rglob("x"))


def test_paths_outside_the_root_are_refused(lab, page, files):
    open_lab(lab, page)
    before = kernels(lab)
    # a link that leads out of the root: the kernel refuses it, the tab's status line says why
    context_menu(page, "link-out.png", "cnnwidgets", "Filter designer")
    page.wait_for_function(
        "() => { const s = document.querySelector('.cnnw-lab-panel:not(.lm-mod-hidden) .cnnw-lab-status');"
        " return s && s.classList.contains('cnnw-mod-error'); }",
        timeout=180_000,
    )
    status = status_text(page)
    assert "RefusedPath" in status and "outside the server's root" in status, status
    assert page.locator(f"{TAB} .cnnw-filter-designer").count() == 0
    close_tabs(page)
    wait_kernels(lab, before)
    # a ".." path (from a command or a hand-made link): refused before any kernel starts
    page.evaluate(
        "() => { window.jupyterapp.commands.execute('cnnwidgets:open', {widget: 'filter_designer', path: '../secret.png'}); }"
    )
    page.wait_for_selector(f"{TAB} .cnnw-lab-status.cnnw-mod-error")
    assert "outside the server's root" in status_text(page)
    assert kernels(lab) == before
    close_tabs(page)


def new_launcher(page):
    """Close every main-area tab, then open one launcher (on the file browser's folder)."""
    page.evaluate(
        """async () => { for (const w of [...window.jupyterapp.shell.widgets('main')]) w.close();
                       await window.jupyterapp.commands.execute('launcher:create'); }"""
    )


def test_launcher_cards(lab, page, files):
    open_lab(lab, page, "ext/tutorials")
    before = kernels(lab)
    new_launcher(page)
    section = page.locator(".jp-Launcher-section").filter(
        has=page.locator(".jp-Launcher-sectionTitle", has_text="cnnwidgets")
    )
    section.wait_for()
    cards = section.locator(".jp-LauncherCard-label").all_inner_texts()
    for label in (
        "Filter designer",
        "Threshold segmenter",
        "Layer visualizer",
        "Convolution playground",
        "Training dashboard",
        "Search box",
    ):
        assert label in cards, cards
    assert "Getting started with cnnwidgets" in cards, cards
    section.scroll_into_view_if_needed()
    page_screenshot(page, "extension_launcher.png")
    section.locator(".jp-LauncherCard").filter(has_text="Filter designer").first.click()
    wait_first_picture(page, FD_RESULT)
    assert current_title(page) == "Filter designer — astronaut"
    close_tabs(page)
    wait_kernels(lab, before)

    # a tutorial card copies the notebook into the current folder (once) and opens it
    new_launcher(page)
    section.wait_for()
    section.locator(".jp-LauncherCard").filter(has_text="Getting started with cnnwidgets").first.click()
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " return w && w.context && w.context.path === 'ext/tutorials/00_getting_started.ipynb'; }"
    )
    copy = files["ext"] / "tutorials" / "00_getting_started.ipynb"
    assert copy.exists()
    mtime = copy.stat().st_mtime_ns
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")
    close_notebook(page)
    page.evaluate(
        "() => window.jupyterapp.commands.execute('cnnwidgets:open-tutorial', {name: '00_getting_started.ipynb'})"
    )
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " return w && w.context && w.context.path === 'ext/tutorials/00_getting_started.ipynb'; }"
    )
    assert copy.stat().st_mtime_ns == mtime  # the copy already there is opened, not overwritten
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")
    close_notebook(page)
    wait_kernels(lab, before)


def test_open_in_pipeline(lab, page, files):
    open_lab(lab, page)
    before = kernels(lab)
    context_menu(page, "photo.png", "cnnwidgets", "Open in pipeline")
    wait_first_picture(page, f"{TAB} .cnnw-pipeline .cnnw-pl-mask img")
    page.wait_for_function(
        f"() => /\\d+ regions?/.test(document.querySelector('{TAB} .cnnw-pipeline')?.innerText || '')",
        timeout=240_000,
    )
    assert "Pipeline — photo.png" in current_title(page)
    close_tabs(page)
    wait_kernels(lab, before)


# ---------------------------------------------------------------------------------------------- one kernel (issue 21)
TABS_JS = """() => [...window.jupyterapp.shell.widgets('main')].filter(w => w.hasClass('cnnw-lab-panel')).map(w => ({
    id: w.id, label: w.title.label, status: w.content.statusText, kind: w.content.statusKind,
    kernel: w.content.kernelId, visible: w.isVisible,
    pictures: [...w.content.node.querySelectorAll('.cnnw-lab-output img')]
        .filter(i => i.complete && i.naturalWidth > 0).length }))"""


def bench_tabs(page) -> list[dict]:
    """Every cnnwidgets tab: label, status line, kernel id and how many pictures have loaded."""
    return page.evaluate(TABS_JS)


def wait_tabs(page, n: int, *, timeout: float = 300_000):
    """Wait until ``n`` tabs are open and each one shows a picture or an error; returns :func:`bench_tabs`."""
    page.wait_for_function(
        f"n => {{ const t = ({TABS_JS})(); return t.length === n && t.every(x => x.kind === 'error' || (x.kind === 'info' && x.pictures > 0)); }}",
        arg=n,
        timeout=timeout,
    )
    return bench_tabs(page)


def open_command(page, widget: str, **args):
    """Run the cnnwidgets:open command (what the launcher and the palette do); returns the time of the call."""
    t0 = time.monotonic()
    page.evaluate("a => { window.jupyterapp.commands.execute('cnnwidgets:open', a); }", {"widget": widget, **args})
    return t0


def from_palette(page, label: str):
    """Open the command palette, pick the cnnwidgets entry ``label``; returns the time of the Enter."""
    page.keyboard.press("Control+Shift+C")
    box = page.locator(".lm-CommandPalette-input")
    box.wait_for(state="visible")
    box.fill(label)
    page.locator(".lm-CommandPalette-item").filter(has_text=label).filter(
        has=page.locator(".lm-CommandPalette-itemLabel", has_text=label)
    ).first.wait_for()
    t0 = time.monotonic()
    box.press("Enter")
    return t0


def kernel_facts(page) -> dict:
    """cnnwidgets.labtabs.kernel_facts() of the first tab's kernel, asked after what is queued there."""
    return page.evaluate(
        """async () => { const w = [...window.jupyterapp.shell.widgets('main')].find(w => w.hasClass('cnnw-lab-panel'));
                       return await w.content.kernel.refreshFacts(); }"""
    )


def kernel_pid(lab, kernel_id: str) -> int:
    """The process id of the server's kernel ``kernel_id`` (the process given its connection file)."""
    import psutil

    for proc in psutil.Process(lab.proc.pid).children(recursive=True):
        try:
            if any(f"kernel-{kernel_id}.json" in part for part in proc.cmdline()):
                return proc.pid
        except psutil.Error:
            continue
    raise AssertionError(f"no process for kernel {kernel_id}")


def kernel_rss_mib(lab, kernel_id: str) -> float:
    import psutil

    proc = psutil.Process(kernel_pid(lab, kernel_id))
    return (proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))) / 2**20


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def close_tab(page, label: str):
    page.evaluate(
        """l => { const w = [...window.jupyterapp.shell.widgets('main')].find(w => w.title.label === l);
                 if (w) w.close(); }""",
        label,
    )


def activate_tab(page, label: str):
    page.evaluate(
        """l => { const w = [...window.jupyterapp.shell.widgets('main')].find(w => w.title.label === l);
                 window.jupyterapp.shell.activateById(w.id); }""",
        label,
    )


def filter_designer_works(page, label: str, value: str):
    """Bring the tab ``label`` (a Filter designer) to the front, type a cutoff: its result picture changes."""
    activate_tab(page, label)
    before_px = pixels(page, FD_RESULT)
    readout = page.locator(f"{TAB} .cnnw-fd-cutoff .widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")
    wait_pixels_change(page, FD_RESULT, before_px)


def test_tabs_share_one_kernel(lab, page, files):
    """Filter designer and threshold segmenter from the file browser, the layer visualizer from the palette: one
    kernel; a tab closed early closes its widgets there; closing all three leaves no kernel. Prints the times
    from the click to the first picture (cold: the first tab; warm: later tabs) and the kernel's memory."""
    open_lab(lab, page)
    before = kernels(lab)
    figures = {"load_before": load()}
    t0 = context_menu(page, "photo.png", "cnnwidgets", "Filter designer")
    wait_first_picture(page, FD_RESULT)
    figures["cold_first_picture_s"] = time.monotonic() - t0
    t0 = context_menu(page, "photo.png", "cnnwidgets", "Threshold segmenter")
    wait_first_picture(page, f"{TAB} .cnnw-threshold-segmenter img")
    figures["second_tab_first_picture_s"] = time.monotonic() - t0
    from_palette(page, "Layer visualizer")
    page.wait_for_function(
        f"() => {{ const el = document.querySelector('{TAB} .cnnw-layer-visualizer');"
        " return el && /top-1 \\S/.test(el.innerText); }",
        timeout=240_000,
    )
    tabs = wait_tabs(page, 3)
    running = kernels(lab)
    new = sorted(set(running) - set(before))
    assert len(new) == 1 and len(running) == len(before) + 1, (before, running)
    assert {t["kernel"] for t in tabs} == set(new), tabs
    for t in tabs:
        assert t["kind"] == "info" and f"shared kernel python3 ({new[0][:8]})" in t["status"], t
    assert sorted(t["label"] for t in tabs) == [
        "Filter designer — photo.png",
        "Layer visualizer — chelsea",
        "Threshold segmenter — photo.png",
    ]
    page.wait_for_timeout(2000)  # renders settle
    figures["kernel_rss_mib_3_tabs"] = kernel_rss_mib(lab, new[0])

    # warm: a further tab on the running kernel, five times (each closed again: its widgets close in the kernel)
    facts = kernel_facts(page)
    assert facts["tabs"] == 3 and facts["widgets"] > 100, facts
    warm = []
    for _ in range(5):
        previous = page.evaluate("() => window.jupyterapp.shell.currentWidget.id")
        t0 = context_menu(page, "photo.png", "cnnwidgets", "Filter designer")
        page.wait_for_function(
            """prev => { const w = window.jupyterapp.shell.currentWidget;
                       const i = w && w.id !== prev && w.node.querySelector('.cnnw-fd-result img');
                       return !!i && i.complete && i.naturalWidth > 0; }""",
            arg=previous,
        )
        warm.append(time.monotonic() - t0)
        page.evaluate("() => { window.jupyterapp.shell.currentWidget.close(); }")
    after = kernel_facts(page)
    assert (after["tabs"], after["widgets"]) == (3, facts["widgets"]), (facts, after)  # nothing left behind
    assert kernels(lab) == running
    filter_designer_works(page, "Filter designer — photo.png", "0.040")  # the first tab still works
    figures["warm_first_picture_s"] = warm
    figures["warm_median_s"] = statistics.median(warm)
    figures["kernel_rss_mib_after_5_more_tabs_closed"] = kernel_rss_mib(lab, new[0])
    figures["load_after"] = load()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "extension_shared_kernel.json").write_text(json.dumps(figures, indent=1))
    print("shared kernel figures:", json.dumps(figures))

    close_tabs(page)
    wait_kernels(lab, before)


def test_ten_tabs_at_once_open_on_one_kernel(lab, page, files):
    open_lab(lab, page)
    before = kernels(lab)
    kinds = ["filter_designer", "threshold_segmenter"] * 5
    samples = ["astronaut", "camera", "coins", "moon", "coffee"]
    t0 = time.monotonic()
    page.evaluate(
        """reqs => { for (const r of reqs) window.jupyterapp.commands.execute('cnnwidgets:open', r); }""",
        [{"widget": k, "sample": samples[i // 2]} for i, k in enumerate(kinds)],
    )
    tabs = wait_tabs(page, 10, timeout=600_000)
    seconds = time.monotonic() - t0
    running = kernels(lab)
    assert len(running) == len(before) + 1, (before, running)
    assert len({t["kernel"] for t in tabs}) == 1 and all(t["kind"] == "info" for t in tabs), tabs
    assert len({t["label"] for t in tabs}) == 10
    new = sorted(set(running) - set(before))[0]
    print(
        f"ten tabs at once: all pictures in {seconds:.1f} s, kernel {kernel_rss_mib(lab, new):.0f} MiB, load {load()}"
    )
    close_tabs(page)
    wait_kernels(lab, before)


def put_setting(lab, raw: dict):
    req = urllib.request.Request(
        f"{lab.url}/lab/api/settings/cnnwidgets:plugin",
        data=json.dumps({"raw": json.dumps(raw)}).encode(),
        method="PUT",
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status in (200, 204)


def test_kernel_per_tab_setting(lab, page, files):
    req = urllib.request.Request(
        f"{lab.url}/lab/api/settings/cnnwidgets:plugin", headers={"Authorization": f"token {lab.token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        schema = json.load(r)["schema"]
    assert schema["properties"]["kernelPerTab"]["default"] is False  # in the settings editor, off by default
    put_setting(lab, {"kernelPerTab": True})
    try:
        open_lab(lab, page)
        before = kernels(lab)
        context_menu(page, "photo.png", "cnnwidgets", "Filter designer")
        context_menu(page, "photo.png", "cnnwidgets", "Threshold segmenter")
        tabs = wait_tabs(page, 2)
        running = kernels(lab)
        assert len(running) == len(before) + 2, (before, running)
        assert len({t["kernel"] for t in tabs}) == 2 and all("own kernel python3" in t["status"] for t in tabs), tabs
        close_tab(page, "Filter designer — photo.png")
        wait_kernels(lab, sorted(set(before) | {t["kernel"] for t in tabs if t["label"].startswith("Threshold")}))
        close_tabs(page)
        wait_kernels(lab, before)
    finally:
        put_setting(lab, {})


def statuses(page) -> list[str]:
    return [t["status"] for t in bench_tabs(page)]


def wait_all_dead(page, timeout: float = 60_000) -> float:
    """Wait until every tab says its kernel died; returns the seconds it took."""
    t0 = time.monotonic()
    page.wait_for_function(
        f"() => ({TABS_JS})().every(t => t.kind === 'error' && /^Kernel error: the kernel (died|ran out of memory)/.test(t.status))",
        timeout=timeout,
    )
    return time.monotonic() - t0


def test_dead_kernel_is_reported_in_every_tab(lab, page, files):
    import signal

    open_lab(lab, page)
    before = kernels(lab)
    context_menu(page, "photo.png", "cnnwidgets", "Filter designer")
    context_menu(page, "photo.png", "cnnwidgets", "Threshold segmenter")
    tabs = wait_tabs(page, 2)
    first = tabs[0]["kernel"]
    assert {t["kernel"] for t in tabs} == {first}

    # shut down through the REST API (as from JupyterLab's running-kernels panel)
    req = urllib.request.Request(
        f"{lab.url}/api/kernels/{first}", method="DELETE", headers={"Authorization": f"token {lab.token}"}
    )
    urllib.request.urlopen(req, timeout=10).close()
    seconds = wait_all_dead(page)
    print(f"DELETE /api/kernels: reported in both tabs after {seconds:.1f} s: {statuses(page)[0]}")
    wait_kernels(lab, before)

    # a new tab starts a fresh kernel and works
    context_menu(page, "photo.png", "cnnwidgets", "Open in pipeline")
    page.wait_for_function(f"() => ({TABS_JS})().some(t => t.label.startsWith('Pipeline') && t.pictures > 0)")
    second = [t for t in bench_tabs(page) if t["label"].startswith("Pipeline")][0]["kernel"]
    assert second != first and kernels(lab) == sorted(set(before) | {second})
    close_tabs(page)
    wait_kernels(lab, before)

    # the kernel's process killed (as by a memory limit): the server restarts it, every tab says it died,
    # the restarted kernel is shut down, and a new tab starts a fresh one
    context_menu(page, "photo.png", "cnnwidgets", "Filter designer")
    open_command(page, "threshold_segmenter", sample="coins")
    tabs = wait_tabs(page, 2)
    third = tabs[0]["kernel"]
    # where the kernel's memory cgroup is readable, pretend it had one OOM kill less when the tabs opened: the
    # count read after the kill is then higher, which is how a kill by a memory limit shows
    oom_known = page.evaluate(
        """() => { const k = [...window.jupyterapp.shell.widgets('main')].find(w => w.hasClass('cnnw-lab-panel')).content.kernel;
                 if (k.facts === null || k.facts.oom_kills === null) return false;
                 k.noteFacts({...k.facts, oom_kills: k.facts.oom_kills - 1, rss_mib: 987.6}); return true; }"""
    )
    os.kill(kernel_pid(lab, third), signal.SIGKILL)
    seconds = wait_all_dead(page)
    print(f"kernel process killed: reported in both tabs after {seconds:.1f} s: {statuses(page)[0]}")
    if oom_known:
        page.wait_for_function(
            f"() => ({TABS_JS})().every(t => t.status.startsWith("
            "'Kernel error: the kernel ran out of memory (a memory limit ended it, last seen using 988 MiB)'))",
            timeout=60_000,
        )
        print("with an OOM kill counted:", statuses(page)[0])
    wait_kernels(lab, before)
    context_menu(page, "photo.png", "cnnwidgets", "Filter designer")
    page.wait_for_function(f"() => ({TABS_JS})().filter(t => t.kind === 'info' && t.pictures > 0).length === 1")
    fourth = [t for t in bench_tabs(page) if t["kind"] == "info"][0]["kernel"]
    assert fourth not in (first, second, third)
    assert all(s.startswith("Kernel error: the kernel ") for s in statuses(page) if "shared kernel" not in s)
    close_tabs(page)
    wait_kernels(lab, before)


HOSTILE_NAMES = ["x'); import os; os.system('touch PWNED'); ('.png", "q\"uote' $(touch PWNED)\n`touch PWNED`.png"]


def test_hostile_names_on_the_shared_kernel_run_nothing(lab, page, files):
    """Hostile file names opened while another tab uses the shared kernel run nothing there (no PWNED file), a
    tab whose request fails shows its error alone, and the other tab keeps working."""
    from cnnwidgets.datasets import sample
    from cnnwidgets.io import resize_to_fit, to_png_bytes

    folder = lab.root / "hostile2"
    folder.mkdir(exist_ok=True)
    png = to_png_bytes(resize_to_fit(sample("camera", mode="keep"), 200))
    for name in HOSTILE_NAMES:
        (folder / name).write_bytes(png)
    open_lab(lab, page)
    before = kernels(lab)
    context_menu(page, "photo.png", "cnnwidgets", "Filter designer")
    wait_first_picture(page, FD_RESULT)
    page.evaluate(
        "() => window.jupyterapp.commands.execute('filebrowser:go-to-path', {path: 'hostile2'}).then(() => null)"
    )
    context_menu(page, "x');", "cnnwidgets", "Threshold segmenter")  # from the file browser
    open_command(page, "filter_designer", path=f"hostile2/{HOSTILE_NAMES[1]}")  # a newline: by command
    open_command(page, "filter_designer", path="ext/link-out.png")  # refused in the kernel
    tabs = wait_tabs(page, 4)
    by_label = {t["label"]: t for t in tabs}
    assert by_label[f"Threshold segmenter — {HOSTILE_NAMES[0]}"]["kind"] == "info", tabs
    assert by_label[f"Filter designer — {HOSTILE_NAMES[1]}"]["kind"] == "info", tabs
    refused = by_label["Filter designer — link-out.png"]
    assert refused["kind"] == "error" and "RefusedPath" in refused["status"], refused
    assert len({t["kernel"] for t in tabs}) == 1 and len(kernels(lab)) == len(before) + 1
    assert not list(lab.root.rglob("PWNED")) and not (REPO / "PWNED").exists()
    filter_designer_works(page, "Filter designer — photo.png", "0.045")
    assert not list(lab.root.rglob("PWNED"))
    close_tabs(page)
    wait_kernels(lab, before)


def lab_url_opening(lab, request) -> str:
    """A JupyterLab address that opens a bench (what the entries do where the page cannot host one: Notebook 7)."""
    b64 = base64.b64encode(json.dumps(request).encode("utf-8")).decode("ascii")
    return f"{lab.url}/lab?token={lab.token}&reset&cnnwidgets-open={urllib.parse.quote(b64)}"


def test_a_lab_address_opens_a_bench(lab, page, files):
    """``/lab?cnnwidgets-open=<base64 JSON>`` opens the bench once (the parameter leaves the address); a path
    out of the root is refused before any kernel starts, and anything else opens nothing."""
    before = kernels(lab)
    page.goto(lab_url_opening(lab, {"widget": "threshold_segmenter", "path": "ext/photo.png"}))
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell")
    tabs = wait_tabs(page, 1)
    assert tabs[0]["label"] == "Threshold segmenter — photo.png" and tabs[0]["kind"] == "info", tabs
    assert "cnnwidgets-open" not in page.url
    close_tabs(page)
    wait_kernels(lab, before)

    page.goto(lab_url_opening(lab, {"widget": "filter_designer", "path": "../secret.png"}))
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell")
    tabs = wait_tabs(page, 1)
    assert tabs[0]["kind"] == "error" and "outside the server's root" in tabs[0]["status"], tabs
    assert kernels(lab) == before
    close_tabs(page)

    for junk in ("not base64 !", base64.b64encode(b"[1, 2]").decode(), base64.b64encode(b'{"widget": "rm"}').decode()):
        page.goto(f"{lab.url}/lab?token={lab.token}&reset&cnnwidgets-open={urllib.parse.quote(junk)}")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell")
        page.wait_for_timeout(3000)
        assert bench_tabs(page) == [] and kernels(lab) == before
