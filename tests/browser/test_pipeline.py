"""Pipeline in JupyterLab: move the enhancement cutoff, the mask and the region gallery follow; click a region."""

from .harness import pixels, wait_pixels_change, widget_screenshot

CELLS = ["from cnnwidgets import Pipeline\nw = Pipeline()\nw"]
MASK = ".cnnw-pipeline .cnnw-pl-mask img"
NAMES = "() => [...document.querySelectorAll('.cnnw-pl-gallery .cnnw-gallery-name')].map(e => e.textContent).join('|')"


def test_cutoff_moves_mask_and_regions_and_a_click_shows_a_label(lab, page):
    lab.write_notebook("pipeline.ipynb", CELLS)
    lab.run_notebook(page, "pipeline.ipynb")
    page.wait_for_selector(".cnnw-pipeline", state="visible", timeout=150_000)
    page.wait_for_function(f"() => ({NAMES})().length > 0", timeout=150_000)
    before_mask = pixels(page, MASK)
    before_names = page.evaluate(NAMES)
    assert before_names.count("region") == 24

    readout = page.locator(".cnnw-pipeline .cnnw-fd-cutoff .widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("0.020")
    page.keyboard.press("Enter")
    wait_pixels_change(page, MASK, before_mask)
    page.wait_for_function(f"(before) => ({NAMES})() !== before", arg=before_names, timeout=120_000)
    lab.wait_idle(page)

    card = page.locator(".cnnw-pl-gallery .cnnw-gallery-item").nth(1)
    label = card.locator(".cnnw-gallery-tags").inner_text().strip()
    card.click()
    # the chosen region's panel first: neighbouring regions may share their top label
    page.wait_for_function(
        "() => (document.querySelector('.cnnw-pl-region')?.innerText || '').includes('region 2')", timeout=60_000
    )
    page.wait_for_function(
        "(label) => (document.querySelector('.cnnw-pl-region-info')?.textContent || '').includes(label)",
        arg=label,
        timeout=60_000,
    )
    assert "region 2" in page.locator(".cnnw-pl-region").inner_text()
    assert lab.errors(page) == []
    widget_screenshot(page, ".cnnw-pipeline", "pipeline.png", height=1600)
