"""cnnwidgets.engine.segment against scikit-image, SciPy, OpenCV, scikit-learn and brute force."""

import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.filters as skf
import torch
from skimage import data, feature, measure, segmentation

from cnnwidgets.engine import segment as S
from cnnwidgets.engine.segment import _filters as seg_filters
from cnnwidgets.engine.segment import edge_maps as seg_edges
from cnnwidgets.engine.segment import local as seg_local


def _gray_samples():
    imgs = {name: getattr(data, name)() for name in ("camera", "coins", "page", "text", "moon")}
    for name in list(imgs):
        imgs[name + "_float"] = imgs[name] / 255.0
    rng = np.random.default_rng(0)
    imgs["chelsea_luma_float"] = data.chelsea().astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0
    imgs["bimodal_float32"] = (
        np.concatenate([rng.normal(0.3, 0.05, 5000), rng.normal(0.7, 0.08, 3000)]).astype(np.float32).reshape(80, 100)
    )
    return imgs


SAMPLES = _gray_samples()


def _gray_level(img):
    return 1.0 if img.dtype.kind in "ui" else (float(img.max()) - float(img.min())) / 255


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("method", S.GLOBAL_METHODS)
def test_threshold_value_matches_skimage_within_one_gray_level(name, method):
    img = SAMPLES[name]
    ours = S.threshold_value(img, method)
    ref = float(getattr(skf, f"threshold_{method}")(img))
    assert isinstance(ours, float) and np.isfinite(ours)
    assert abs(ours - ref) <= _gray_level(img), (ours, ref)


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("classes", [2, 3, 4])
def test_multiotsu_matches_skimage(name, classes):
    img = SAMPLES[name]
    ours = S.threshold_values(img, "multiotsu", classes=classes)
    ref = skf.threshold_multiotsu(img, classes=classes)
    assert ours.shape == (classes - 1,)
    assert np.abs(ours - ref).max() <= _gray_level(img)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_constant_image_gives_its_value_and_an_empty_mask(dtype):
    img = np.full((20, 30), 7, dtype)
    for method in S.GLOBAL_METHODS:
        assert S.threshold_value(img, method) == 7.0
        assert not S.threshold(img, method).any()
        assert S.threshold(img, method, invert=True).all()
    with pytest.raises(ValueError, match="distinct gray levels"):
        S.threshold_values(img, classes=3)


def test_threshold_mask_fixed_value_invert_and_surface():
    img = data.camera()
    np.testing.assert_array_equal(S.threshold(img, 100), img > 100)
    np.testing.assert_array_equal(S.threshold(img, 100.5, invert=True), img <= 100.5)
    np.testing.assert_array_equal(S.threshold(img, "otsu"), img > skf.threshold_otsu(img))
    surface = S.local_threshold(img, "sauvola", window=25)
    np.testing.assert_array_equal(S.threshold(img, surface), img > skf.threshold_sauvola(img, 25))
    with pytest.raises(ValueError, match="surface has shape"):
        S.threshold(img, surface[:10])
    with pytest.raises(ValueError, match="method must be one of"):
        S.threshold(img, "nonsense")


def test_threshold_colour_uses_luma_and_torch_round_trips():
    rgb = data.chelsea()
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    assert S.threshold_value(rgb, "otsu") == float(skf.threshold_otsu(gray))
    t = torch.from_numpy(gray)
    mask = S.threshold(t, "otsu")
    assert isinstance(mask, torch.Tensor) and mask.dtype == torch.bool
    np.testing.assert_array_equal(mask.numpy(), gray > skf.threshold_otsu(gray))


def test_bad_input_errors_name_the_problem():
    with pytest.raises(ValueError, match="NaN"):
        S.threshold_value(np.array([[0.1, np.nan], [0.2, 0.3]]), "otsu")
    with pytest.raises(ValueError, match="empty"):
        S.threshold_value(np.zeros((0, 3)), "otsu")
    with pytest.raises(ValueError, match="shape"):
        S.threshold_value(np.zeros((2, 3, 4, 5)), "otsu")
    with pytest.raises(ValueError, match="window must be an odd"):
        S.local_threshold(data.page(), "mean", window=24)
    with pytest.raises(ValueError, match="classes must be"):
        S.threshold_values(data.page(), classes=9)
    ramp = np.tile(np.arange(256, dtype=np.uint8), (20, 1))
    with pytest.raises(RuntimeError):
        skf.threshold_minimum(ramp)
    with pytest.raises(ValueError, match="does not have two peaks"):
        S.threshold_value(ramp, "minimum")


def test_inputs_are_not_modified():
    img = data.coins().copy()
    before = img.copy()
    S.threshold(img, "li")
    S.local_threshold(img, "sauvola", window=15)
    S.edges(img, "canny")
    S.region_grow(img, [(10, 10)], tolerance=5)
    np.testing.assert_array_equal(img, before)


# ----------------------------------------------------------------------------- local


@pytest.mark.parametrize("img", [data.page(), data.camera()[:180, :260] / 255.0], ids=["page_uint8", "camera_float"])
@pytest.mark.parametrize("method", ["mean", "gaussian", "median"])
def test_local_threshold_matches_skimage_threshold_local(img, method):
    ours = S.local_threshold(img, method, window=25, offset=3)
    np.testing.assert_allclose(ours, skf.threshold_local(img, 25, method, offset=3), rtol=0, atol=1e-9)


@pytest.mark.parametrize("img", [data.page(), data.camera()[:180, :260] / 255.0], ids=["page_uint8", "camera_float"])
@pytest.mark.parametrize("window", [15, 25])
def test_niblack_and_sauvola_match_skimage(img, window):
    np.testing.assert_allclose(
        S.local_threshold(img, "niblack", window=window, k=0.3), skf.threshold_niblack(img, window, 0.3), atol=1e-8
    )
    np.testing.assert_allclose(
        S.local_threshold(img, "sauvola", window=window, k=0.25), skf.threshold_sauvola(img, window, 0.25), atol=1e-8
    )


def test_torch_backend_of_window_filters_matches_opencv_backend():
    x = data.page().astype(np.float64)
    m1, s1 = seg_local._local_mean_std(x, 25, backend="opencv")
    m2, s2 = seg_local._local_mean_std(x, 25, backend="torch")
    np.testing.assert_allclose(m1, m2, atol=1e-9)
    np.testing.assert_allclose(s1, s2, atol=1e-6)
    k = seg_filters.gauss_kernel(4.0)
    np.testing.assert_allclose(
        seg_filters.separable(x, k, k, backend="opencv"), seg_filters.separable(x, k, k, backend="torch"), atol=1e-9
    )


# ----------------------------------------------------------------------------- edges


@pytest.mark.parametrize("img", [data.camera(), data.coins()[:150, :200] / 255.0], ids=["camera_uint8", "coins_float"])
@pytest.mark.parametrize("method", ["sobel", "prewitt", "scharr", "roberts"])
def test_gradient_magnitude_matches_skimage(img, method):
    ours = S.edges(img, method)
    assert ours.dtype == np.float32 and ours.shape == img.shape
    np.testing.assert_allclose(ours, getattr(skf, method)(img), atol=1e-6)


def test_sobel_matches_opencv_and_presmoothing_matches_scipy():
    g = data.camera() / 255.0
    gx = cv2.Sobel(g, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(g, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    # OpenCV's Sobel weights are 4× scikit-image's normalised ones.
    np.testing.assert_allclose(S.edges(g, "sobel"), np.sqrt((gx**2 + gy**2) / 2) / 4, atol=1e-6)
    smooth = ndi.gaussian_filter(g, 1.5, mode="reflect")
    np.testing.assert_allclose(S.edges(g, "sobel", sigma=1.5), skf.sobel(smooth), atol=1e-6)


def test_laplace_and_log_match_skimage_and_scipy():
    img = data.camera()
    g = img / 255.0
    np.testing.assert_allclose(S.edges(img, "laplace", output="response"), skf.laplace(img), atol=1e-6)
    np.testing.assert_allclose(
        S.edges(img, "log", sigma=2.0, output="response"), ndi.gaussian_laplace(g, 2.0), atol=1e-6
    )
    np.testing.assert_allclose(
        S.edges(img, "log", sigma=3.5, output="response"), ndi.gaussian_laplace(g, 3.5), atol=1e-6
    )


def test_zero_crossings_match_brute_force():
    rng = np.random.default_rng(1)
    r = rng.normal(size=(23, 31))
    ours = S.zero_crossings(r, threshold=0.5)
    ref = np.zeros_like(ours)
    for y in range(r.shape[0]):
        for x in range(r.shape[1]):
            if r[y, x] <= 0:
                continue
            for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                yy, xx = y + dy, x + dx
                if 0 <= yy < r.shape[0] and 0 <= xx < r.shape[1] and r[yy, xx] < 0 and r[y, x] - r[yy, xx] > 0.5:
                    ref[y, x] = True
    np.testing.assert_array_equal(ours, ref)
    # "auto" output of the Laplacian of Gaussian is its zero crossings
    img = data.coins()
    resp = S.edges(img, "log", sigma=2.0, output="response")
    np.testing.assert_array_equal(S.edges(img, "log", sigma=2.0), S.zero_crossings(resp))


def test_canny_matches_skimage_with_thresholds():
    img = data.coins()
    for sigma, low, high in [(1.0, None, None), (2.0, 0.05, 0.15)]:
        ref = feature.canny(img / 255.0, sigma=sigma, low_threshold=low, high_threshold=high)
        np.testing.assert_array_equal(S.edges(img, "canny", sigma=sigma, low=low, high=high), ref)


def test_edges_torch_in_torch_out_and_thresholded_output():
    img = data.camera()
    out = S.edges(torch.from_numpy(img), "scharr")
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), skf.scharr(img), atol=1e-6)
    ref = skf.sobel(img)
    mask = S.edges(img, "sobel", output="edges", threshold=0.1)
    clear = np.abs(ref - 0.1) > 1e-6  # float32 vs float64 may differ right at the threshold
    np.testing.assert_array_equal(mask[clear], (ref > 0.1)[clear])
    np.testing.assert_array_equal(mask, S.edges(img, "sobel") > 0.1)


# ----------------------------------------------------------------------------- regions


@pytest.mark.parametrize("connectivity", [1, 2])
def test_region_grow_gray_equals_skimage_flood(connectivity):
    img = data.coins()
    seeds = [(50, 40), (150, 200), (250, 10)]
    labels = S.region_grow(img, seeds, tolerance=12, connectivity=connectivity)
    assert labels.dtype == np.int32
    taken = np.zeros(img.shape, bool)
    for i, seed in enumerate(seeds):
        ref = segmentation.flood(img, seed, tolerance=12, connectivity=connectivity) & ~taken
        np.testing.assert_array_equal(labels == i + 1, ref)
        taken |= ref


def test_region_grow_colour_matches_breadth_first_search():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 60, (40, 50, 3)).astype(np.uint8)
    img[10:30, 15:40] += 120
    seed, tol = (20, 20), 45.0
    labels = S.region_grow(img, [seed], tolerance=tol)
    x = img.astype(float)
    ref = np.zeros(img.shape[:2], bool)
    todo = [seed]
    ref[seed] = True
    while todo:
        y, xx = todo.pop()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                a, b = y + dy, xx + dx
                if 0 <= a < 40 and 0 <= b < 50 and not ref[a, b] and np.linalg.norm(x[a, b] - x[seed]) <= tol:
                    ref[a, b] = True
                    todo.append((a, b))
    np.testing.assert_array_equal(labels == 1, ref)
    with pytest.raises(ValueError, match="outside the image"):
        S.region_grow(img, [(100, 3)], tolerance=5)


def test_watershed_equals_skimage_on_the_sobel_gradient_and_splits_two_regions():
    img = np.zeros((60, 80), np.uint8)
    img[:, 40:] = 200
    img = (img + np.random.default_rng(3).integers(0, 10, img.shape)).astype(np.uint8)
    labels = S.watershed(img, [(30, 10), (30, 70)], sigma=1.0)
    markers = np.zeros(img.shape, np.int32)
    markers[30, 10], markers[30, 70] = 1, 2
    grad = skf.sobel(ndi.gaussian_filter(img / 255.0, 1.0, mode="reflect"))
    ref = segmentation.watershed(grad, markers)
    assert (labels != ref).mean() < 0.002  # float32 vs float64 gradients may break a tie on the ridge
    assert (labels[:, :38] == 1).all() and (labels[:, 42:] == 2).all()
    auto = S.watershed(data.coins())
    assert auto.min() >= 1 and auto.max() > 5


def test_kmeans_colors_recovers_clusters_and_is_close_to_sklearn():
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(4)
    colours = np.array([[20, 30, 200], [200, 40, 30], [30, 190, 40], [220, 220, 220]], float)
    truth = rng.integers(0, 4, (40, 50))
    img = np.clip(colours[truth] + rng.normal(0, 8, (40, 50, 3)), 0, 255).astype(np.uint8)
    labels, centers = S.kmeans_colors(img, 4, seed=0)
    assert labels.shape == truth.shape and centers.shape == (4, 3)
    # the same partition up to renaming
    pairs = set(zip(truth.ravel().tolist(), labels.ravel().tolist()))
    assert len(pairs) == 4
    again, _ = S.kmeans_colors(img, 4, seed=0)
    np.testing.assert_array_equal(labels, again)
    # inertia as good as scikit-learn's
    X = img.reshape(-1, 3).astype(float)
    ours = ((X - centers[labels.ravel()]) ** 2).sum()
    ref = KMeans(4, n_init=4, random_state=0).fit(X).inertia_
    assert ours <= ref * 1.01
    g_labels, g_centers = S.kmeans_colors(data.coins(), 2, seed=1)
    assert g_centers.shape == (2, 1) and g_centers[0, 0] < g_centers[1, 0]
    with pytest.raises(ValueError, match="k must be"):
        S.kmeans_colors(img, 0)


# ----------------------------------------------------------------------------- display


def test_overlay_paints_only_the_mask_and_labels():
    img = data.camera()
    mask = img > 128
    out = S.overlay(img, mask, alpha=0.5, color=(255, 0, 0))
    assert out.shape == img.shape + (3,) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~mask], np.repeat(img[~mask][:, None], 3, 1))
    expected_red = np.rint(0.5 * img[mask].astype(float) + 127.5)
    np.testing.assert_array_equal(out[mask][:, 0], expected_red.astype(np.uint8))
    labels = measure.label(mask)
    out2 = S.overlay(img, labels)
    assert (out2[labels == 0] == img[labels == 0][:, None]).all()
    assert not (out2[labels > 0] == img[labels > 0][:, None]).all()


def test_mask_stats_matches_skimage_label():
    mask = data.coins() > skf.threshold_otsu(data.coins())
    stats = S.mask_stats(mask)
    assert stats["area_fraction"] == pytest.approx(mask.mean())
    assert stats["components"] == measure.label(mask, connectivity=2).max()
    assert S.mask_stats(mask, connectivity=1)["components"] == measure.label(mask, connectivity=1).max()
    assert S.mask_stats(np.zeros((5, 5), bool)) == {"area_fraction": 0.0, "components": 0, "pixels": 0}


@pytest.mark.parametrize(
    "method,sigma",
    [("sobel", 0.0), ("prewitt", 1.2), ("scharr", 0.0), ("roberts", 0.0), ("laplace", 1.0), ("log", 2.5)],
)
def test_torch_and_opencv_edge_backends_agree(method, sigma):
    g = data.coins() / 255.0
    a = seg_edges._edge_response(g, method, sigma, backend="torch")
    b = seg_edges._edge_response(g, method, sigma, backend="opencv")
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=2e-6)
    if method in S.GRADIENT_METHODS and sigma == 0:  # the torch convolution against scikit-image directly
        np.testing.assert_allclose(a, getattr(skf, method)(g), atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_histogram_matches_skimage_histogram(dtype):
    from skimage.exposure import histogram as sk_histogram

    rng = np.random.default_rng(5)
    img = rng.normal(0.5, 0.2, (300, 200)).astype(dtype)
    counts, centers = S.histogram(img)
    ref_counts, ref_centers = sk_histogram(img, 256, source_range="image")
    np.testing.assert_allclose(centers, ref_centers, rtol=0, atol=1e-6)  # skimage computes float32 centres
    assert counts.sum() == img.size
    assert np.abs(counts - ref_counts).sum() <= 4  # float32 rounding may move a value sitting on a bin edge
    c8, centers8 = S.histogram(data.camera())
    r8, rc8 = sk_histogram(data.camera(), source_range="image")
    np.testing.assert_array_equal(c8, r8)
    np.testing.assert_array_equal(centers8, rc8)


def test_threshold_classes_equals_digitize_of_multiotsu():
    import skimage.filters as skf
    from skimage import data

    coins = data.coins()
    ts = skf.threshold_multiotsu(coins, classes=4)
    np.testing.assert_array_equal(S.threshold_classes(coins, ts), np.digitize(coins, ts, right=True))


def test_auto_thresholds_and_threshold_each():
    import skimage.filters as skf
    from skimage import data

    cam = data.camera()
    values = S.auto_thresholds(cam)
    assert set(values) == set(S.GLOBAL_METHODS)
    assert abs(values["otsu"] - skf.threshold_otsu(cam)) <= 1
    masks = S.threshold_each(cam, values, invert=True)
    np.testing.assert_array_equal(masks["li"], cam <= values["li"])
    ramp = np.tile(np.arange(256, dtype=np.uint8), (20, 1))
    assert S.auto_thresholds(ramp)["minimum"] is None
    assert "minimum" not in S.threshold_each(ramp, S.auto_thresholds(ramp))


@pytest.mark.parametrize("method", ["sobel", "laplace", "log"])
def test_edge_mask_of_the_response_equals_edges(method):
    from skimage import data

    coins = data.coins()
    resp = S.edges(coins, method, sigma=1.5, output="response")
    np.testing.assert_array_equal(
        S.edge_mask(resp, method, threshold=0.02), S.edges(coins, method, sigma=1.5, output="edges", threshold=0.02)
    )
    with pytest.raises(ValueError, match="method must be"):
        S.edge_mask(resp, "canny")


def test_kmeans_regions_count_from_one():
    from skimage import data

    img = data.astronaut()[::4, ::4]
    labels, _ = S.kmeans_colors(img, 3, 1)
    np.testing.assert_array_equal(S.kmeans_regions(img, clusters=3, seed=1), labels + 1)


def test_mark_points_draws_clipped_squares():
    img = np.zeros((10, 10, 3), np.uint8)
    out = S.mark_points(img, [(0, 0), (5, 5)], radius=1, color=(1, 2, 3))
    ref = np.zeros_like(img)
    ref[0:2, 0:2] = (1, 2, 3)
    ref[4:7, 4:7] = (1, 2, 3)
    np.testing.assert_array_equal(out, ref)
    assert not img.any()
