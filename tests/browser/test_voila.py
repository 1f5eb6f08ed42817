"""Voilà app mode: each app in notebooks/apps renders with its code hidden and live widgets; a control moves the picture."""

import contextlib
import json
import time

import pytest

from .harness import ARTIFACTS, REPO, Voila, pixels, wait_pixels_change

APPS = sorted(p.stem for p in (REPO / "notebooks" / "apps").glob("*.ipynb"))
FIRST_PICTURE = ".jp-OutputArea-output img:visible"  # a hidden one (an empty query preview) may come first
# the app whose control the test moves, and the picture that must follow it
MOVED = {
    "filter_designer": (".cnnw-fd-cutoff .noUi-handle", ".cnnw-filter-designer .cnnw-fd-result img"),
    "pipeline": (".cnnw-fd-cutoff .noUi-handle", ".cnnw-pipeline .cnnw-pl-mask img"),
}


@pytest.fixture
def app_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    page = context.new_page()
    page.set_default_timeout(180_000)
    yield page
    context.close()


@pytest.mark.parametrize("name", APPS)
def test_app_serves_live_widgets_with_code_hidden(name, app_page, tmp_path):
    assert {"filter_designer", "threshold_segmenter", "layer_visualizer", "search_box"} <= set(APPS)
    server = Voila(REPO / "notebooks" / "apps" / f"{name}.ipynb", tmp_path)
    try:
        page = app_page
        page.goto(server.url)
        before = pixels(page, FIRST_PICTURE)  # the widget's ES modules and its first picture arrived
        first_picture_s = time.monotonic() - server.started
        body = page.inner_text("body")
        assert "import" not in body and "cnnwidgets" not in body, "code is showing"
        assert before[0] > 0
        if name in MOVED:
            control, picture = MOVED[name]
            before = pixels(page, picture)
            handle = page.locator(control).first
            handle.focus()
            for _ in range(3):
                page.keyboard.press("ArrowLeft")
            wait_pixels_change(page, picture, before)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"voila_{name}.png"))
        with open(ARTIFACTS / "voila_timings.jsonl", "a") as f:
            f.write(json.dumps({"app": name, "start_to_first_picture_s": round(first_picture_s, 1)}) + "\n")
    except Exception:
        print(server.log())
        with contextlib.suppress(Exception):  # the widgets' status lines say what a kernel was doing
            print(app_page.inner_text("body")[-3000:])
        raise
    finally:
        server.close()
