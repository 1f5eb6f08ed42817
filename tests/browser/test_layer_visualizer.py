"""LayerVisualizer and ConvolutionPlayground in JupyterLab: switching the layer changes the mosaic,
clicking a map enlarges it, moving the step slider moves the convolution window.

Screenshots go to tests/browser/artifacts/; with CNNWIDGETS_DOCS_IMAGES=1 they are also
copied to docs/images/ (the pictures in docs/cnn.md).
"""

from .harness import pixels, wait_pixels_change, widget_screenshot

MOSAIC = ".cnnw-mosaic img"


def test_switching_layer_changes_the_mosaic(lab, page):
    source = "from cnnwidgets import LayerVisualizer\nw = LayerVisualizer()\nw"
    lab.show(page, "layer_visualizer.ipynb", source, ready=".cnnw-layer-visualizer :text('top-1 tiger cat')")
    before = pixels(page, MOSAIC)
    assert before[0] > 0 and before[1] > 0
    assert page.is_visible(".cnnw-layer-visualizer :text('conv_stem — output 32 × 112 × 112')")

    page.select_option(".cnnw-layer-select select", label="blocks.2.0.conv_pw")
    page.wait_for_selector(".cnnw-layer-visualizer :text('blocks.2.0.conv_pw — output 144 × 56 × 56')")
    after = wait_pixels_change(page, MOSAIC, before, timeout=60_000)
    assert after != before

    # 64 of 144 maps in 8 columns of 56 px tiles (+1 px gaps): click the centre of tile 10 (row 1, column 2)
    # (the element's own click scrolls it into view first: the notebook may have scrolled past it)
    mosaic = page.wait_for_selector(MOSAIC)
    mosaic.scroll_into_view_if_needed()
    box = mosaic.bounding_box()
    mosaic.click(position={"x": (2 * 57 + 28) / after[0] * box["width"], "y": (57 + 28) / after[1] * box["height"]})
    page.wait_for_selector(".cnnw-layer-visualizer .cnnw-panel :text('map 10')", timeout=60_000)
    lab.wait_idle(page)
    assert lab.errors(page) == []
    widget_screenshot(page, ".cnnw-layer-visualizer", "layer_visualizer.png", height=2000)


def test_playground_step_slider_moves_the_window(lab, page):
    source = "from cnnwidgets import ConvolutionPlayground\npg = ConvolutionPlayground()\npg"
    lab.show(page, "playground.ipynb", source, ready=".cnnw-playground :text('output[0, 0] = 3·1')")
    slider = page.wait_for_selector(".cnnw-conv-step .ui-slider-handle, .cnnw-conv-step .noUi-handle", state="visible")
    slider.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.wait_for_selector(".cnnw-playground :text('output[1, 1] = 5·1')", timeout=60_000)
    lab.wait_idle(page)
    assert lab.errors(page) == []
    widget_screenshot(page, ".cnnw-playground", "convolution_playground.png", height=2000)
