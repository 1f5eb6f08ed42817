"""NeuronPlayground in JupyterLab: a weight slider redraws the neuron's boundary; Start trains the MLP live."""

from .harness import pixels, wait_pixels_change, widget_screenshot

NEURON_IMG = ".cnnw-neuron-playground .cnnw-neuron-panel img"
MLP_IMG = ".cnnw-neuron-playground .cnnw-neuron-mlp img"


def test_weight_slider_and_start_change_the_pictures(lab, page):
    lab.show(
        page,
        "neuron_playground.ipynb",
        "from cnnwidgets import NeuronPlayground\nw = NeuronPlayground(epochs=400)\nw",
        ready=".cnnw-neuron-playground",
    )
    before = pixels(page, NEURON_IMG)
    formula = page.inner_text(".cnnw-neuron-formula")

    handle = page.locator(".cnnw-neuron-w1 .noUi-handle")
    handle.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    wait_pixels_change(page, NEURON_IMG, before)
    page.wait_for_function(
        "([sel, old]) => document.querySelector(sel).innerText !== old", arg=[".cnnw-neuron-formula", formula]
    )

    page.click(".cnnw-neuron-start")
    page.wait_for_selector(MLP_IMG, state="visible")
    page.wait_for_selector(".cnnw-neuron-playground :text('done: 400 epochs')", timeout=120_000)
    assert "accuracy 1.000" in page.inner_text(".cnnw-neuron-playground")
    assert page.locator(".cnnw-neuron-loss polyline").count() == 1
    lab.wait_idle(page)
    widget_screenshot(page, ".cnnw-neuron-playground", "neuron_playground.png")
