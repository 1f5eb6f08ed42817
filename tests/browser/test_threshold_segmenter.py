"""ThresholdSegmenter in JupyterLab: clicking and dragging on the histogram changes the mask; clicks place seeds."""

from .harness import MEAN_GRAY_JS as MEAN_JS
from .harness import widget_screenshot


def _mask_mean(page, selector):
    el = page.wait_for_selector(selector, state="visible")
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=el)
    return el.evaluate(MEAN_JS)


def _wait_mask(page, selector, lo=-1.0, hi=256.0):
    """Wait until the mean gray level of the image lies in (lo, hi); return it."""
    page.wait_for_function(
        f"([sel, lo, hi]) => {{ const el = document.querySelector(sel); if (!el || !el.complete || !el.naturalWidth) return false;"
        f" const m = ({MEAN_JS})(el); return m > lo && m < hi; }}",
        arg=[selector, lo, hi],
        timeout=60_000,
    )
    return _mask_mean(page, selector)


def _wait_mask_change(page, selector, before):
    page.wait_for_function(
        f"([sel, before]) => {{ const el = document.querySelector(sel); if (!el || !el.complete || !el.naturalWidth) return false;"
        f" return Math.abs(({MEAN_JS})(el) - before) > 1; }}",
        arg=[selector, before],
        timeout=60_000,
    )
    return _mask_mean(page, selector)


def test_histogram_click_and_drag_change_the_mask(lab, page):
    lab.write_notebook(
        "threshold_segmenter.ipynb",
        ["from cnnwidgets import ThresholdSegmenter\nw = ThresholdSegmenter()\nw"],
    )
    lab.run_notebook(page, "threshold_segmenter.ipynb")
    mask_sel = ".cnnw-seg-mask img"
    canvas = page.wait_for_selector(".cnnw-histogram canvas", state="visible")
    page.wait_for_selector(".cnnw-bench :text('otsu: threshold')")
    otsu_mean = _mask_mean(page, mask_sel)
    assert 0 < otsu_mean < 255
    assert page.is_visible(".cnnw-seg-method select") and not page.is_visible(".cnnw-seg-value")
    lab.wait_idle(page)
    widget_screenshot(page, ".cnnw-threshold-segmenter", "threshold_segmenter.png")

    # click at 15 % of the histogram: a low threshold, so more foreground (brighter mask)
    canvas.scroll_into_view_if_needed()  # page coordinates below reach only what is in view
    box = canvas.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.click(box["x"] + 0.15 * box["width"], y)
    _wait_mask(page, mask_sel, lo=otsu_mean + 5)
    page.wait_for_selector(".cnnw-bench :text('fixed: threshold')")
    assert page.eval_on_selector(".cnnw-seg-method select", "el => el.value") == "fixed"

    # drag to 85 %: a high threshold, little foreground
    page.mouse.move(box["x"] + 0.15 * box["width"], y)
    page.mouse.down()
    for f in (0.3, 0.5, 0.7, 0.85):
        page.mouse.move(box["x"] + f * box["width"], y, steps=3)
    page.mouse.up()
    # the drag sends intermediate values; the last one wins
    _wait_mask(page, mask_sel, hi=otsu_mean - 5)
    lab.wait_idle(page)
    page.wait_for_selector(".cnnw-bench :text('fixed: threshold 2')")  # 85 % of 1..252 is above 200
    assert not lab.errors(page)
    assert page.is_visible(".cnnw-seg-value")

    # the threshold slider moves the mask too
    slider_before = _mask_mean(page, mask_sel)
    handle = page.wait_for_selector(".cnnw-seg-value .ui-slider-handle, .cnnw-seg-value .noUi-handle", state="visible")
    handle.focus()
    for _ in range(40):
        page.keyboard.press("ArrowLeft")
    _wait_mask_change(page, mask_sel, slider_before)

    # Regions tab: a click on the image places a seed and grows a region
    page.get_by_role("tab", name="Regions").click()
    img = page.wait_for_selector(".cnnw-clickimage img", state="visible")
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img)
    ib = img.bounding_box()
    page.mouse.click(ib["x"] + 0.5 * ib["width"], ib["y"] + 0.5 * ib["height"])
    page.wait_for_selector(".cnnw-bench :text('grow: 1 region')")
    assert not lab.errors(page)
    widget_screenshot(page, ".cnnw-threshold-segmenter", "threshold_segmenter_regions.png")
