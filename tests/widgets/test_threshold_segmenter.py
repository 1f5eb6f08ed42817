"""ThresholdSegmenter: set traits, check result, code, status and panels against scikit-image."""

import numpy as np
import pytest
import skimage.filters as skf
from skimage import data, feature, segmentation

from cnnwidgets import ThresholdSegmenter
from cnnwidgets.engine import segment


def _run_code(w, image):
    scope = {"image": image}
    exec(w.code, scope)
    return scope["result"]


@pytest.fixture
def coins():
    return data.coins()


def test_default_is_otsu_on_coins_with_histogram_and_reproducible_code(coins):
    w = ThresholdSegmenter()
    np.testing.assert_array_equal(w.source, coins)
    t = skf.threshold_otsu(coins)
    assert w.threshold == t
    np.testing.assert_array_equal(w.result, coins > t)
    assert w.hist.lines == [t]
    assert sum(w.hist.counts) == coins.size
    np.testing.assert_array_equal(_run_code(w, coins), w.result)
    assert w.stats["area_fraction"] == pytest.approx((coins > t).mean())
    assert "otsu" in w.status and "foreground" in w.status
    assert w.mask_panel.image.value[:4] == b"\x89PNG" and w.overlay_panel.image.value[:2] == b"\xff\xd8"


@pytest.mark.parametrize("method", segment.GLOBAL_METHODS)
def test_every_global_method_matches_skimage(method):
    img = data.camera()
    w = ThresholdSegmenter(img, method=method)
    ref = float(getattr(skf, f"threshold_{method}")(img))
    assert abs(w.threshold - ref) <= 1
    np.testing.assert_array_equal(w.result, img > w.threshold)
    np.testing.assert_array_equal(_run_code(w, img), w.result)


def test_fixed_threshold_invert_and_histogram_pick(coins):
    w = ThresholdSegmenter(coins, method="fixed", value=100)
    np.testing.assert_array_equal(w.result, coins > 100)
    w.invert = True
    np.testing.assert_array_equal(w.result, coins <= 100)
    w.invert = False
    w.method = "li"
    before = w.result.copy()
    w.hist.picked = 150.4  # what a click on the histogram sends
    assert w.method == "fixed" and w.value == 150.0
    np.testing.assert_array_equal(w.result, coins > 150)
    assert not np.array_equal(before, w.result)
    np.testing.assert_array_equal(_run_code(w, coins), w.result)


def test_float_image_uses_its_own_units():
    img = data.camera() / 255.0
    w = ThresholdSegmenter(img, method="yen")
    assert abs(w.threshold - skf.threshold_yen(img)) <= 1 / 255
    w.hist.picked = 0.3
    np.testing.assert_array_equal(w.result, img > 0.3)
    assert w.controls["value"].max == pytest.approx(img.max())


def test_multiotsu_labels(coins):
    w = ThresholdSegmenter(coins, method="multiotsu", classes=4)
    ts = skf.threshold_multiotsu(coins, classes=4)
    np.testing.assert_array_equal(w.result, np.digitize(coins, ts, right=True))
    assert w.hist.lines == [float(t) for t in ts]
    np.testing.assert_array_equal(_run_code(w, coins), w.result)


def test_local_tab_matches_skimage_and_errors_go_to_status():
    page = data.page()
    w = ThresholdSegmenter(page, mode="local", local_method="sauvola", window=25, k=0.2)
    np.testing.assert_array_equal(w.result, page > skf.threshold_sauvola(page, 25, 0.2))
    np.testing.assert_array_equal(_run_code(w, page), w.result)
    w.local_method = "gaussian"
    w.offset = 5
    np.testing.assert_array_equal(w.result, page > skf.threshold_local(page, 25, "gaussian", offset=5))
    w.window = 24
    assert "window must be an odd" in w.status
    w.window = 31
    assert "error" not in w.status_kind and "window 31" in w.status
    np.testing.assert_array_equal(w.result, page > skf.threshold_local(page, 31, "gaussian", offset=5))


def test_edges_tab(coins):
    w = ThresholdSegmenter(coins, mode="edges", edge_method="sobel", sigma=0.0, edge_threshold=0.1)
    ref = skf.sobel(coins)
    clear = np.abs(ref - 0.1) > 1e-6
    np.testing.assert_array_equal(w.result[clear], (ref > 0.1)[clear])
    w.edge_method = "canny"
    w.sigma = 2.0
    np.testing.assert_array_equal(w.result, feature.canny(coins / 255.0, sigma=2.0))
    np.testing.assert_array_equal(_run_code(w, coins), w.result)
    w.low, w.high = 0.05, 0.2
    assert (w.controls["low"].value, w.controls["high"].value) == (0.05, 0.2)
    np.testing.assert_array_equal(
        w.result, feature.canny(coins / 255.0, sigma=2.0, low_threshold=0.05, high_threshold=0.2)
    )
    w.controls["high"].value = 0.3  # typing in the box sets the trait
    assert w.high == 0.3
    np.testing.assert_array_equal(_run_code(w, coins), w.result)
    w.edge_method = "log"
    np.testing.assert_array_equal(w.result, segment.edges(coins, "log", sigma=2.0, output="edges", threshold=0.1))


def test_region_tab_clicks_place_seeds(coins):
    w = ThresholdSegmenter(coins, mode="regions", region_method="grow", tolerance=15)
    assert "click" in w.status and not w.result.any()
    h, wd = coins.shape
    w.click_image.click = [100.5 / h, 50.5 / wd, 1]  # what a click in the browser sends
    assert w.seeds == [[100, 50]]
    ref = segmentation.flood(coins, (100, 50), tolerance=15)
    np.testing.assert_array_equal(w.result == 1, ref)
    assert w.click_image.value[:2] == b"\xff\xd8"
    np.testing.assert_array_equal(_run_code(w, coins), w.result)
    w.click_image.click = [0.9, 0.9, 2]
    assert len(w.seeds) == 2
    w.region_method = "watershed"
    assert set(np.unique(w.result)) == {1, 2}
    np.testing.assert_array_equal(_run_code(w, coins), w.result)
    w.region_method = "kmeans"
    w.clusters = 3
    assert set(np.unique(w.result)) == {1, 2, 3}
    np.testing.assert_array_equal(_run_code(w, coins), w.result)


def test_compare_view_shows_every_method(coins):
    w = ThresholdSegmenter(coins, mode="compare")
    assert set(w.thresholds) == set(segment.GLOBAL_METHODS)
    for m, t in w.thresholds.items():
        assert abs(t - float(getattr(skf, f"threshold_{m}")(coins))) <= 1
        np.testing.assert_array_equal(w.result[m], coins > t)
        assert w.compare_panels[m].image.value[:4] == b"\x89PNG"
    w.invert = True
    np.testing.assert_array_equal(w.result["otsu"], coins <= w.thresholds["otsu"])
    reproduced = _run_code(w, coins)
    assert set(reproduced) == set(segment.GLOBAL_METHODS)
    for m in reproduced:
        np.testing.assert_array_equal(reproduced[m], w.result[m])
    # a method that fails on an image is reported in its panel, and left out of the code
    flat = np.tile(np.arange(256, dtype=np.uint8), (20, 1))  # a ramp: flat histogram, no two peaks
    w.image = flat
    failed = [m for m, t in w.thresholds.items() if t is None]
    assert failed == ["minimum"] and "fails" in w.compare_panels["minimum"].title.value
    assert set(_run_code(w, flat)) == set(segment.GLOBAL_METHODS) - {"minimum"}


def test_large_image_previews_and_computes_full_resolution_on_request():
    big = np.tile(data.camera(), (3, 4))  # 1536×2048
    w = ThresholdSegmenter(big, preview_side=512, method="fixed", value=90)
    assert w.result.shape == (384, 512)
    assert "preview 512×384" in w.status
    full = w.compute_full()
    assert full.shape == big.shape
    np.testing.assert_array_equal(full, big > 90)
    np.testing.assert_array_equal(_run_code(w, big), full)
    w.mode = "local"
    assert w.result.shape == (384, 512)
    np.testing.assert_array_equal(w.compute_full(), _run_code(w, big))


def test_bad_upload_and_colour_input():
    w = ThresholdSegmenter()
    w.image = b"definitely not an image"
    assert w.status_kind == "error" and "not an image" in w.status
    rgb = data.chelsea()
    w.image = rgb
    assert w.status_kind != "error"
    gray = segment.as_gray(rgb)
    np.testing.assert_array_equal(w.result, gray > skf.threshold_otsu(gray))
    w.mode = "regions"
    w.seeds = [[150, 200]]
    np.testing.assert_array_equal(w.result, segment.region_grow(rgb, [(150, 200)], tolerance=20.0))


def test_background_updates_latest_value_wins(coins):
    w = ThresholdSegmenter(coins, method="fixed", value=10)
    w.background = True
    for v in range(20, 200, 10):
        w.value = v
    w.wait()
    np.testing.assert_array_equal(w.result, coins > 190)
