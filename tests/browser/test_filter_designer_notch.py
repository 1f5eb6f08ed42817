"""FilterDesigner's notch mode in JupyterLab: clicking the spectrum places a notch pair and changes the result."""

from .harness import pixels, wait_pixels_change, widget_screenshot

RESULT_IMG = ".cnnw-filter-designer .cnnw-fd-result img"
SPECTRUM_IMG = ".cnnw-filter-designer .cnnw-fd-spectrum-click img"
# the camera with periodic noise, as the widget `w`
NOISY = (
    "from cnnwidgets import FilterDesigner, datasets\n"
    "w = FilterDesigner(datasets.sample('camera')[:256, :256], noise='periodic', noise_amount=0.2)\n"
)


def test_clicking_the_spectrum_places_a_notch_and_changes_the_result(lab, page):
    lab.show(page, "filter_designer_notch.ipynb", NOISY + "w", ready=".cnnw-filter-designer")
    result_before = pixels(page, RESULT_IMG)
    spectrum_before = pixels(page, SPECTRUM_IMG)

    # the periodic noise sits at (fy, fx) = (0.1, 0.15) cycles per pixel: 0.5 + f of the way across the spectrum
    spectrum = page.wait_for_selector(SPECTRUM_IMG, state="visible")
    spectrum.scroll_into_view_if_needed()
    box = spectrum.bounding_box()
    spectrum.click(position={"x": (0.5 + 0.15) * box["width"], "y": (0.5 + 0.1) * box["height"]})
    wait_pixels_change(page, RESULT_IMG, result_before)
    wait_pixels_change(page, SPECTRUM_IMG, spectrum_before)  # the rings of the notch pair
    page.wait_for_selector(".cnnw-fd-notch-info :text('1 notch pair')")
    assert "PSNR" in page.inner_text(".cnnw-fd-notch-info")
    lab.wait_idle(page)
    widget_screenshot(page, ".cnnw-filter-designer", "filter_designer_notch.png")
    assert "Error" not in page.locator(".cnnw-filter-designer").inner_text()


def test_homomorphic_mode_and_gamma_high_change_the_result(lab, page):
    source = NOISY + "w.tabs.selected_index = 3\nw"
    lab.show(page, "filter_designer_homomorphic.ipynb", source, ready=".cnnw-filter-designer")
    before = pixels(page, RESULT_IMG)
    page.locator(".cnnw-fd-spectral-method button", has_text="homomorphic").click()
    page.wait_for_selector(".cnnw-fd-gamma-high", state="visible")
    homomorphic = wait_pixels_change(page, RESULT_IMG, before)
    readout = page.locator(".cnnw-fd-gamma-high .widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("2.50")
    page.keyboard.press("Enter")
    wait_pixels_change(page, RESULT_IMG, homomorphic)  # a stronger high-frequency gain
    assert readout.inner_text().strip() == "2.50"
    page.wait_for_selector(".cnnw-filter-designer :text('homomorphic: gain')")
    lab.wait_idle(page)
    assert "Error" not in page.locator(".cnnw-filter-designer").inner_text()
