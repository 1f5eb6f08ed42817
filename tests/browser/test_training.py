"""TrainingDashboard in JupyterLab: Start grows the curves epoch by epoch while the kernel stays live,
Stop ends the run, a full run ends with the confusion matrix.

Screenshots go to tests/browser/artifacts/; with CNNWIDGETS_DOCS_IMAGES=1 they are also
copied to docs/images/ (the picture in docs/training.md).
"""

import os
import shutil

import pytest

from .harness import ARTIFACTS, REPO

pytestmark = pytest.mark.browser

# A checksum of a rendered <img>'s pixels, read back through a canvas.
PIXELS_JS = """el => {
    const c = document.createElement('canvas');
    c.width = el.naturalWidth; c.height = el.naturalHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(el, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let s = 0;
    for (let i = 0; i < d.length; i += 4) s = (s * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) % 1000000007;
    return [c.width, c.height, s];
}"""

CURVES = ".cnnw-train-curves img"
CONFUSION = ".cnnw-train-confusion img"


def _pixels(page, selector):
    el = page.wait_for_selector(selector, state="visible")
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=el)
    return el.evaluate(PIXELS_JS)


def _wait_change(page, selector, before, timeout=120_000):
    page.wait_for_function(
        f"([sel, before]) => {{ const el = document.querySelector(sel); if (!el || !el.complete || !el.naturalWidth) return false;"
        f" const now = ({PIXELS_JS})(el); return now.join() !== before.join(); }}",
        arg=[selector, before],
        timeout=timeout,
    )
    return _pixels(page, selector)


def _shot(page, selector, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.set_viewport_size({"width": 1400, "height": 1400})
    page.add_style_tag(content=".Toastify { display: none !important; }")  # JupyterLab's news prompt
    el = page.locator(selector).first
    el.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    el.screenshot(path=str(path))
    if os.environ.get("CNNWIDGETS_DOCS_IMAGES") == "1":
        shutil.copyfile(path, REPO / "docs" / "images" / name)


def test_start_grows_the_curves_stop_ends_and_confusion_appears(lab, page):
    lab.write_notebook(
        "training.ipynb",
        ["from cnnwidgets import TrainingDashboard\nw = TrainingDashboard('tiny_cnn', 'digits', epochs=200)\nw"],
    )
    lab.run_notebook(page, "training.ipynb")
    page.wait_for_selector(".cnnw-training :text('press Start')", timeout=180_000)
    lab.wait_idle(page)
    blank = _pixels(page, CURVES)

    # a long run: the curves change after the first epochs, and Stop is heard while training runs
    page.click(".cnnw-train-start")
    first = _wait_change(page, CURVES, blank)
    second = _wait_change(page, CURVES, first)
    assert blank != first != second
    page.click(".cnnw-train-stop")
    page.wait_for_selector(".cnnw-training :text('stopped:')", timeout=60_000)
    assert page.is_enabled(".cnnw-train-start") and not page.is_enabled(".cnnw-train-stop")

    # a full short run ends with the confusion matrix of the validation set
    page.fill(".cnnw-training .widget-inline-hbox:has(label:text('epochs')) input", "5")
    page.keyboard.press("Enter")
    stopped_curves = _pixels(page, CURVES)
    page.click(".cnnw-train-start")
    page.wait_for_selector(".cnnw-training :text('done: 5 epoch(s)')", timeout=180_000)
    assert _pixels(page, CURVES) != stopped_curves
    conf = _pixels(page, CONFUSION)
    assert conf[0] > 100 and conf[1] > 100
    assert page.is_visible(".cnnw-training :text('confusion matrix — validation set')")
    lab.wait_idle(page)
    assert lab.errors(page) == []
    _shot(page, ".cnnw-training", "training_dashboard.png")
