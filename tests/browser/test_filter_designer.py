"""FilterDesigner in JupyterLab: run notebook 01, move the cutoff control, and see the result image change."""

from .harness import widget_screenshot

RESULT_IMG = ".cnnw-filter-designer .cnnw-fd-result img"


def _loaded_src(page):
    el = page.wait_for_selector(RESULT_IMG, state="visible")
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=el)
    return el.get_attribute("src")


def _wait_new_result(page, before):
    page.wait_for_function(
        "([sel, before]) => { const el = document.querySelector(sel);"
        " return el && el.getAttribute('src') !== before && el.complete && el.naturalWidth > 0; }",
        arg=[RESULT_IMG, before],
        timeout=60_000,
    )
    return _loaded_src(page)


def test_cutoff_control_changes_result(lab, page):
    lab.run_notebook(page, "01_image_enhancement.ipynb")
    lab.wait_idle(page)
    assert lab.errors(page) == []
    bench = page.wait_for_selector(".cnnw-filter-designer", state="visible")
    bench.scroll_into_view_if_needed()

    # the exercises left a median on salt-and-pepper noise: switch the noise off, then go to the frequency tab
    first = page.locator(".cnnw-filter-designer").first  # notebook 01 has a second one, in notch mode
    tabs = first.locator(".cnnw-fd-tabs .lm-TabBar-tab")
    src = _loaded_src(page)
    tabs.filter(has_text="noise").click()
    first.locator(".cnnw-fd-noise select").select_option("none")
    src = _wait_new_result(page, src)
    tabs.filter(has_text="frequency").click()
    src = _wait_new_result(page, src)
    assert page.locator(".cnnw-filter-designer :text('filter mask')").count() >= 1

    # type a new cutoff into the slider's readout, as a user does
    readout = first.locator(".cnnw-fd-cutoff .widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("0.030")
    page.keyboard.press("Enter")
    after = _wait_new_result(page, src)
    assert after != src
    assert readout.inner_text().strip() == "0.030"

    # and drag-free keyboard steps on the slider handle
    handle = first.locator(".cnnw-fd-cutoff .noUi-handle")
    handle.focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    _wait_new_result(page, after)
    lab.wait_idle(page)
    status = first.inner_text()
    assert "Error" not in status

    widget_screenshot(page, ".cnnw-filter-designer", "filter_designer.png")
