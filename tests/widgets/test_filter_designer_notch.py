"""FilterDesigner's notch and homomorphic modes: clicks on the spectrum place notch pairs; result and code agree."""

import io as _io

import numpy as np
import pytest
from PIL import Image
from skimage import data

from cnnwidgets import FilterDesigner
from cnnwidgets.engine import enhance

NOISE_FREQUENCY = (0.1, 0.15)  # add_noise's default periodic frequency, cycles per pixel


def run_code(w):
    ns = {"image": w.source}
    exec(w.code, ns)
    return ns["result"]


def click_at(w, fy, fx):
    """Click the spectrum where frequency (fy, fx) is shown (0 at row h // 2, column w // 2)."""
    h, wd = w.result.shape[:2]  # the spectrum shown is the preview's, the size of the result
    n = (w.spectrum_click.click or [0, 0, 0])[2] + 1
    w.spectrum_click.click = [(h // 2 + fy * h + 0.5) / h, (wd // 2 + fx * wd + 0.5) / wd, n]


@pytest.fixture
def w():
    return FilterDesigner(data.camera()[:256, :256], noise="periodic", noise_amount=0.2)


def test_click_places_a_notch_that_removes_periodic_noise(w):
    before_png = w.p_result.image.value
    click_at(w, *NOISE_FREQUENCY)
    assert w.method == "notch" and w.status == ""
    assert len(w.notches) == 1
    fy, fx = w.notches[0]
    assert abs(fy - 0.1) < 1 / 256 and abs(fx - 0.15) < 1 / 256
    assert w.p_result.image.value != before_png
    noisy = enhance.add_noise(w.source, kind="periodic", amount=0.2, seed=0)
    ref = enhance.notch_filter(noisy, centers=w.notches, radius=0.02, order=2.0)
    np.testing.assert_allclose(w.result, ref, atol=1e-6)
    np.testing.assert_array_equal(run_code(w), w.result)
    assert "enhance.notch_filter(noisy, centers=[[" in w.code
    assert w.metrics["psnr_result"] > w.metrics["psnr_input"] + 5
    assert "before" in w.notch_info.value and "after" in w.notch_info.value


def test_click_near_a_notch_or_its_mirror_removes_it(w):
    click_at(w, *NOISE_FREQUENCY)
    click_at(w, 0.3, -0.2)
    assert len(w.notches) == 2
    click_at(w, -0.1, -0.15)  # the mirror of the first
    assert len(w.notches) == 1 and abs(w.notches[0][0] - 0.3) < 1 / 256
    click_at(w, 0.3 + 0.005, -0.2)  # within the radius
    assert w.notches == []
    noisy = enhance.add_noise(w.source, kind="periodic", amount=0.2, seed=0)
    np.testing.assert_allclose(w.result, noisy, atol=1e-5)  # no notch: nothing removed
    np.testing.assert_array_equal(run_code(w), w.result)


def test_spectrum_shows_notch_rings(w):
    plain = np.asarray(Image.open(_io.BytesIO(w.spectrum_click.value)))
    click_at(w, *NOISE_FREQUENCY)
    marked = np.asarray(Image.open(_io.BytesIO(w.spectrum_click.value)))
    assert plain.ndim == 2 and marked.ndim == 3
    red = (marked[..., 0] == 255) & (marked[..., 1] == 40)
    h, wd = red.shape
    rows, cols = np.nonzero(red)
    # rings around the notch and around its mirror, one on each side of the centre
    assert (rows > h // 2).any() and (rows < h // 2).any() and (cols > wd // 2).any() and (cols < wd // 2).any()


def test_notch_radius_and_order_controls(w):
    click_at(w, *NOISE_FREQUENCY)
    w.controls["notch_radius"].value = 0.04
    w.controls["notch_order"].value = 4.0
    assert (w.notch_radius, w.notch_order) == (0.04, 4.0)
    assert "radius=0.04" in w.code and "order=4.0" in w.code
    np.testing.assert_array_equal(run_code(w), w.result)
    w.notches = []
    assert "centers=[]" in w.code


def test_homomorphic_mode_matches_engine_and_code():
    w = FilterDesigner(data.camera()[:200, :256])
    w.tabs.selected_index = 3
    assert w.method in ("notch", "homomorphic")
    w.controls["spectral_method"].value = "homomorphic"
    assert w.method == "homomorphic" and w.tabs.selected_index == 3
    w.controls["gamma_low"].value = 0.3
    w.controls["gamma_high"].value = 2.0
    w.controls["homomorphic_cutoff"].value = 0.08
    w.controls["sharpness"].value = 1.5
    assert w.status == ""
    ref = enhance.homomorphic_filter(w.source, cutoff=0.08, gamma_low=0.3, gamma_high=2.0, sharpness=1.5)
    np.testing.assert_allclose(w.result, ref, atol=1e-6)
    np.testing.assert_array_equal(run_code(w), w.result)
    assert "enhance.homomorphic_filter(image, cutoff=0.08, gamma_low=0.3, gamma_high=2.0, sharpness=1.5)" in w.code
    full = w.compute_full()
    np.testing.assert_allclose(full, ref, atol=1e-6)
    w.method = "frequency"
    assert w.tabs.selected_index == 0
