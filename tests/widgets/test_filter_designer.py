"""FilterDesigner: traits drive the engine, code reproduces result, errors reach the status line."""

import io as _io

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data, filters, metrics

from cnnwidgets import FilterDesigner
from cnnwidgets.engine import enhance


def run_code(w):
    ns = {"image": w.source}
    exec(w.code, ns)
    return ns["result"]


@pytest.fixture
def w():
    return FilterDesigner(data.camera()[:200, :256])


def test_default_shows_butterworth_equal_to_skimage():
    w = FilterDesigner()
    assert w.source.shape == (512, 512, 3) and w.status == ""
    ref = filters.butterworth(
        w.source.astype(np.float32) / 255, cutoff_frequency_ratio=0.1, high_pass=False, order=2.0, channel_axis=-1
    )
    np.testing.assert_allclose(w.result, ref, atol=1e-3)
    np.testing.assert_array_equal(run_code(w), w.result)
    for panel in (w.p_input, w.p_spectrum, w.p_mask, w.p_result):
        assert panel.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    # what the browser gets looks like the image, downscaled to the panel
    shown_input = np.asarray(Image.open(_io.BytesIO(w.p_input.image.value)))
    small = cv2.resize(w.source, shown_input.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(shown_input.astype(int) - small).mean() < 1
    shown_result = np.asarray(Image.open(_io.BytesIO(w.p_result.image.value))).astype(np.float32) / 255
    small = cv2.resize(
        np.clip(np.ascontiguousarray(w.result), 0, 1), shown_result.shape[1::-1], interpolation=cv2.INTER_AREA
    )
    assert np.abs(shown_result - small).mean() < 0.01


def test_cutoff_updates_result_png_and_code(w):
    before_png, before = w.p_result.image.value, w.result
    w.cutoff = 0.25
    assert w.p_result.image.value != before_png and not np.array_equal(w.result, before)
    assert "cutoff=0.25" in w.code
    np.testing.assert_array_equal(run_code(w), w.result)
    np.testing.assert_allclose(w.result, enhance.frequency_filter(w.source, cutoff=0.25), atol=1e-6)
    assert w.controls["cutoff"].value == 0.25


@pytest.mark.parametrize(
    "settings",
    [
        dict(shape="ideal", highpass=True),
        dict(shape="exponential", order=4.0, band=True, width=0.1, cutoff=0.2),
        dict(shape="gaussian", band=True, highpass=True, width=0.05, cutoff=0.15),
        dict(method="median", size=5),
        dict(method="weighted_median", weights=[[1, 2, 1], [2, 5, 2], [1, 2, 1]]),
        dict(method="adaptive_median", max_size=9),
    ],
)
def test_code_reproduces_result(w, settings):
    for k, v in settings.items():
        setattr(w, k, v)
    assert w.status == ""
    np.testing.assert_array_equal(run_code(w), w.result)


def test_controls_drive_traits(w):
    w.controls["response"].value = "band-stop"
    assert w.highpass and w.band and "width=" in w.code
    w.controls["shape"].value = "gaussian"
    w.controls["order"].value = 3.5
    assert (w.shape, w.order) == ("gaussian", 3.5)
    w.tabs.selected_index = 1
    assert w.method == "median"
    w.controls["spatial_method"].value = "weighted_median"
    assert w.method == "weighted_median"
    w.weight_grid.children[4].value = 7  # the centre cell
    assert w.weights[1][1] == 7
    np.testing.assert_array_equal(w.result, enhance.weighted_median(w.source, w.weights))
    w.controls["kernel_size"].value = 5
    assert np.asarray(w.weights).shape == (5, 5) and len(w.weight_grid.children) == 25
    w.method = "frequency"
    assert w.tabs.selected_index == 0


def test_noise_metrics_equal_skimage(w):
    w.noise, w.noise_amount, w.seed = "salt_and_pepper", 0.1, 3
    w.method, w.size = "median", 3
    clean = w.source.astype(np.float32) / 255
    noisy = enhance.add_noise(w.source, kind="salt_and_pepper", amount=0.1, seed=3)
    np.testing.assert_array_equal(w.result, enhance.median(noisy, size=3))
    m = w.metrics
    assert m["psnr_input"] == pytest.approx(metrics.peak_signal_noise_ratio(clean, noisy, data_range=1.0), abs=1e-4)
    assert m["ssim_result"] == pytest.approx(metrics.structural_similarity(clean, w.result, data_range=1.0), abs=1e-4)
    assert m["psnr_result"] > m["psnr_input"] + 10
    assert "PSNR" in w.metrics_view.value
    np.testing.assert_array_equal(run_code(w), w.result)


def test_errors_go_to_status_and_widget_recovers(w):
    good = w.result
    w.cutoff = 0.7
    assert "cutoff" in w.status and w.cutoff == 0.7
    np.testing.assert_array_equal(w.result, good)
    w.cutoff = 0.3
    assert w.status == "" and not np.array_equal(w.result, good)
    w.image = b"definitely not an image"
    assert "not an image" in w.status and w.source.shape == (200, 256)
    w.cutoff = 0.2
    assert w.status == ""
    w.method, w.weights = "weighted_median", [[0, 0, 0]]
    assert "weights" in w.status


def test_inputs_path_pil_torch_and_upload(tmp_path, drop):
    img = data.chelsea()
    path = tmp_path / "cat.png"
    Image.fromarray(img).save(path)
    assert FilterDesigner(str(path)).source.shape == img.shape
    assert FilterDesigner(Image.fromarray(img)).source.shape == img.shape
    w = FilterDesigner(torch.from_numpy(img).permute(2, 0, 1))
    np.testing.assert_array_equal(w.source, img)
    drop(w.upload, data.coins(), "coins.png")
    assert w.source.shape == data.coins().shape and w.result.shape == data.coins().shape
    drop(w.upload, b"abc", "broken.png")
    assert "broken.png" in w.status and w.source.shape == data.coins().shape


def test_large_image_uses_preview_and_full_on_request():
    big = np.ascontiguousarray(np.tile(data.astronaut(), (3, 4, 1))[:1500, :2000])
    w = FilterDesigner(big, preview_side=500)
    assert w.result.shape == (375, 500, 3)
    assert "preview 500×375" in w.info.value
    w.cutoff = 0.2
    full = w.compute_full()
    assert full.shape == big.shape and w.result is full
    np.testing.assert_array_equal(full, run_code(w))
    w.method = "median"
    assert w.result.shape == (375, 500, 3)


def test_spatial_panel_shows_result_spectrum(w):
    w.method = "median"
    assert "spectrum" in w.p_mask.title.value
    w.method = "frequency"
    assert "mask" in w.p_mask.title.value and "<svg" in w.profile.value


def test_background_renders_latest_value_wins():
    w = FilterDesigner(data.camera()[:128, :128])
    w.background = True  # as inside a kernel: renders run on a worker thread
    for c in np.linspace(0.05, 0.4, 15):
        w.cutoff = float(c)
    w.image = data.coins()[:100, :120]  # swapped while renders may be running
    w.cutoff = 0.33
    w.wait(60)
    assert w.status == "" and w.result.shape == (100, 120)
    np.testing.assert_allclose(w.result, enhance.frequency_filter(w.source, cutoff=0.33), atol=1e-6)
    assert w.last_render_seconds > 0
