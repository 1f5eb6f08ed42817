"""The harness itself: JupyterLab renders an ipywidgets.Image of the chelsea sample."""


def test_image_widget_renders_with_natural_size(lab, page):
    lab.write_notebook(
        "harness_image.ipynb",
        [
            "import ipywidgets\n"
            "from cnnwidgets.io import to_png_bytes\n"
            "from cnnwidgets.datasets import sample\n"
            "img = ipywidgets.Image(value=to_png_bytes(sample('chelsea')), format='png')\n"
            "img.add_class('harness-chelsea')\n"
            "img",
        ],
    )
    lab.run_notebook(page, "harness_image.ipynb")
    el = page.wait_for_selector("img.harness-chelsea", state="visible", timeout=120_000)
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=el)
    size = el.evaluate("el => [el.naturalWidth, el.naturalHeight]")
    assert size == [451, 300]
    box = el.bounding_box()
    assert box["width"] > 0 and box["height"] > 0
    lab.wait_idle(page)
    lab.screenshot(page, "harness_image.png")
