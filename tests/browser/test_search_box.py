"""SearchBox in JupyterLab: type a query, the gallery fills; click a result, the results change."""

from .harness import widget_screenshot

CELLS = [
    "import tempfile, pathlib\n"
    "from cnnwidgets.index import ImageIndex, distortion_set\n"
    "from cnnwidgets import SearchBox\n"
    "folder = pathlib.Path(tempfile.mkdtemp())\n"
    "distortion_set(folder, samples=('chelsea', 'coffee', 'astronaut', 'rocket'), distortions=('original', 'rot90', 'hue'), size=160)\n"
    "index = ImageIndex.build(folder, descriptors=('cnn', 'color'), progress=False)",
    "box = SearchBox(index, k=6)\nbox",
]

PATHS = "() => [...document.querySelectorAll('.cnnw-searchbox .cnnw-gallery-item')].map(e => e.dataset.path)"


def test_type_query_then_click_result(lab, page):
    lab.write_notebook("search_box.ipynb", CELLS)
    lab.run_notebook(page, "search_box.ipynb")
    page.wait_for_selector(".cnnw-searchbox", state="visible", timeout=150_000)
    page.wait_for_selector(".cnnw-searchbox .cnnw-gallery-empty")
    text = page.wait_for_selector(".cnnw-search-text input")
    text.fill("kitten")
    text.press("Enter")
    page.wait_for_function(f"() => ({PATHS})().length === 6", timeout=120_000)
    first = page.evaluate(PATHS)
    assert all("/chelsea/" in p for p in first[:3]), first
    assert page.locator(".cnnw-searchbox .cnnw-gallery-bar").count() >= 6
    imgs = page.locator(".cnnw-searchbox .cnnw-gallery-item img")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.cnnw-gallery-item img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    assert imgs.count() == 6
    lab.wait_idle(page)
    widget_screenshot(page, ".cnnw-searchbox", "search_box_text.png")

    target = page.locator(".cnnw-searchbox .cnnw-gallery-item").nth(4)
    clicked = target.get_attribute("data-path")
    target.click()
    page.wait_for_function(
        f"() => JSON.stringify(({PATHS})()) !== JSON.stringify({first!r})".replace("'", '"'), timeout=60_000
    )
    page.wait_for_function(f"() => ({PATHS})()[0] === {clicked!r}".replace("'", '"'), timeout=60_000)
    after = page.evaluate(PATHS)
    assert after != first and after[0] == clicked
    assert page.locator(".cnnw-search-text input").input_value() == ""
    page.wait_for_function(
        "() => [...document.querySelectorAll('.cnnw-gallery-item img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    widget_screenshot(page, ".cnnw-searchbox", "search_box_more_like_this.png")
    lab.screenshot(page, "search_box.png")
    assert not lab.errors(page)
