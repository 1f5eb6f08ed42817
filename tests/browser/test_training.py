"""TrainingDashboard in JupyterLab: Start grows the curves epoch by epoch while the kernel stays live,
Stop ends the run, a full run ends with the confusion matrix.

Screenshots go to tests/browser/artifacts/; with CNNWIDGETS_DOCS_IMAGES=1 they are also
copied to docs/images/ (the picture in docs/training.md).
"""

from .harness import pixels, wait_pixels_change, widget_screenshot

CURVES = ".cnnw-train-curves img"
CONFUSION = ".cnnw-train-confusion img"


def test_start_grows_the_curves_stop_ends_and_confusion_appears(lab, page):
    source = "from cnnwidgets import TrainingDashboard\nw = TrainingDashboard('tiny_cnn', 'digits', epochs=200)\nw"
    lab.show(page, "training.ipynb", source, ready=".cnnw-training :text('press Start')")
    blank = pixels(page, CURVES)

    # a long run: the curves change after the first epochs, and Stop is heard while training runs
    page.click(".cnnw-train-start")
    first = wait_pixels_change(page, CURVES, blank)
    second = wait_pixels_change(page, CURVES, first)
    assert blank != first != second
    page.click(".cnnw-train-stop")
    page.wait_for_selector(".cnnw-training :text('stopped:')", timeout=60_000)
    assert page.is_enabled(".cnnw-train-start") and not page.is_enabled(".cnnw-train-stop")

    # a full short run ends with the confusion matrix of the validation set
    page.fill(".cnnw-training .widget-inline-hbox:has(label:text('epochs')) input", "5")
    page.keyboard.press("Enter")
    stopped_curves = pixels(page, CURVES)
    page.click(".cnnw-train-start")
    page.wait_for_selector(".cnnw-training :text('done: 5 epoch(s)')", timeout=180_000)
    assert pixels(page, CURVES) != stopped_curves
    conf = pixels(page, CONFUSION)
    assert conf[0] > 100 and conf[1] > 100
    assert page.is_visible(".cnnw-training :text('confusion matrix — validation set')")
    lab.wait_idle(page)
    assert lab.errors(page) == []
    widget_screenshot(page, ".cnnw-training", "training_dashboard.png")
