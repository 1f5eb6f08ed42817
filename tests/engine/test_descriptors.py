"""Classical descriptors (HOG, GIST, colour sets, correlogram, GLCM) against scikit-image, SciPy and brute force."""

import math
from fractions import Fraction

import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal
import skimage.feature

from cnnwidgets.datasets import sample
from cnnwidgets.engine import features
from cnnwidgets.io import load_image, resize_to_fit

NEW = ("hog", "gist", "color_set", "color_correlogram", "glcm")


@pytest.fixture(scope="module")
def small():
    return {n: resize_to_fit(sample(n), 200) for n in ("chelsea", "coffee", "astronaut", "camera")}


def _square_gray(img, side):
    g = load_image(img, mode="gray")
    return cv2.resize(g, (side, side), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("name", NEW)
def test_public_names_shapes_and_lists(small, name):
    fn = getattr(features, name)
    assert fn.__module__ == "cnnwidgets.engine.features"
    one = fn(small["chelsea"])
    assert one.dtype == np.float32 and one.ndim == 1 and np.isfinite(one).all()
    many = fn([small["chelsea"], small["coffee"], small["camera"]])
    assert many.shape == (3, len(one)) and many.dtype == np.float32
    np.testing.assert_allclose(many[0], one, atol=1e-6)
    assert fn([]).shape == (0, len(one))
    assert not np.allclose(many[0], many[1])


def test_hog_equals_scikit_image_on_the_resized_grey_image(small):
    img = small["astronaut"]
    ref = skimage.feature.hog(
        _square_gray(img, 128), orientations=9, pixels_per_cell=(16, 16), cells_per_block=(2, 2), block_norm="L2-Hys"
    )
    got = features.hog(img)
    assert got.shape == (1764,) == ref.shape
    np.testing.assert_allclose(got, ref / np.linalg.norm(ref), atol=1e-6)
    assert np.linalg.norm(got) == pytest.approx(1.0, abs=1e-6) and got.min() >= 0
    other = features.hog(img, side=64, orientations=6, cell=8, block=3)
    ref = skimage.feature.hog(
        _square_gray(img, 64), orientations=6, pixels_per_cell=(8, 8), cells_per_block=(3, 3), block_norm="L2-Hys"
    )
    np.testing.assert_allclose(other, ref / np.linalg.norm(ref), atol=1e-6)
    assert not features.hog(np.full((50, 70), 128, np.uint8)).any()  # a flat image has no gradients
    with pytest.raises(ValueError, match="cells"):
        features.hog(img, side=16, cell=16, block=2)


def test_gabor_bank_zero_mean_unit_norm_and_tuned_frequency():
    bank = features.gabor_bank()
    assert [b.shape for b in bank] == [(8, 15, 15), (8, 29, 29), (8, 55, 55), (8, 109, 109)]
    for s, kernels in enumerate(bank):
        f = 0.25 / 2**s
        for o, k in enumerate(kernels):
            assert abs(k.sum()) < 1e-9 and (np.abs(k) ** 2).sum() == pytest.approx(1.0)
            n = 512  # the peak of the kernel's spectrum lies at its carrier frequency and orientation
            spec = np.abs(np.fft.fft2(k, s=(n, n)))
            fy, fx = np.unravel_index(spec.argmax(), spec.shape)
            fy, fx = (fy if fy < n // 2 else fy - n) / n, (fx if fx < n // 2 else fx - n) / n
            theta = math.pi * o / 8
            assert math.hypot(fx - f * math.cos(theta), fy - f * math.sin(theta)) < 0.1 * f + 2 / n


def _gist_direct(img, side, bank, grid=4):
    """GIST with SciPy: Gaussian prefilter (ndimage, mirror) and a direct spatial convolution of each kernel."""
    x = np.log1p(_square_gray(img, side).astype(np.float64))
    sigma = side / 20
    white = x - ndi.gaussian_filter(x, sigma, mode="mirror", truncate=4.0)
    x = white / (0.2 + np.sqrt(ndi.gaussian_filter(white**2, sigma, mode="mirror", truncate=4.0)))
    cells = []
    for kernels in bank:
        r = kernels.shape[-1] // 2
        padded = np.pad(x, r, mode="reflect")  # NumPy's "reflect" is SciPy's "mirror": the edge is not repeated
        for k in kernels:
            energy = np.abs(scipy.signal.convolve2d(padded, k, mode="valid"))
            c = side // grid
            cells.append(energy.reshape(grid, c, grid, c).mean(axis=(1, 3)).ravel())
    vec = np.concatenate(cells)
    return vec / np.linalg.norm(vec)


def test_gist_equals_a_direct_spatial_convolution_of_the_bank(small):
    img = small["chelsea"]
    ref = _gist_direct(img, 64, features.gabor_bank())
    got = features.gist(img, side=64)
    assert got.shape == (512,)
    np.testing.assert_allclose(got, ref, atol=2e-6)
    assert np.linalg.norm(got) == pytest.approx(1.0, abs=1e-6)


def test_gist_defaults_batches_and_options(small):
    imgs = [small[n] for n in ("chelsea", "coffee", "astronaut", "camera")] * 3  # 12: more than one batch of 8
    x = features.gist(imgs)
    assert x.shape == (12, 512)
    np.testing.assert_allclose(x[8:], x[:4], atol=1e-6)
    np.testing.assert_allclose(x[1], features.gist(imgs[1]), atol=1e-6)
    ref = _gist_direct(imgs[2], 32, features.gabor_bank(scales=2, orientations=4), grid=2)
    np.testing.assert_allclose(features.gist(imgs[2], side=32, scales=2, orientations=4, grid=2), ref, atol=2e-6)
    with pytest.raises(ValueError, match="multiple of grid"):
        features.gist(imgs[0], side=30)
    with pytest.raises(ValueError, match="radius"):
        features.gist(imgs[0], side=48)


def _hsv166_exact(r, g, b):
    """Smith & Chang's 166 colours of one pixel, as documented, in exact rational arithmetic."""
    mx, mn = max(r, g, b), min(r, g, b)
    v = Fraction(mx, 255)
    s = Fraction(mx - mn, mx) if mx else Fraction(0)
    if s < Fraction(1, 5) or v < Fraction(1, 5):
        return 162 + min(math.floor(4 * v), 3)
    d = mx - mn
    if mx == r:
        hue = 60 * Fraction(g - b, d) % 360
    elif mx == g:
        hue = 120 + 60 * Fraction(b - r, d)
    else:
        hue = 240 + 60 * Fraction(r - g, d)
    h = math.floor(hue / 20) % 18
    sb = min(math.floor((s - Fraction(1, 5)) * Fraction(15, 4)), 2)
    vb = min(math.floor((v - Fraction(1, 5)) * Fraction(15, 4)), 2)
    return 9 * h + 3 * sb + vb


def _tricky_image():
    """A small image of random colours and of colours on the bin edges (pure hues, S or V exactly 0.2, greys)."""
    rng = np.random.default_rng(0)
    edges = [
        (255, 0, 0), (255, 255, 0), (0, 255, 0), (0, 255, 255), (0, 0, 255), (255, 0, 255), (255, 85, 0),
        (255, 170, 0), (255, 0, 85), (51, 41, 41), (50, 40, 40), (255, 204, 204), (255, 205, 205), (0, 0, 0),
        (255, 255, 255), (63, 63, 63), (64, 64, 64), (128, 128, 128), (191, 191, 191), (192, 192, 192),
        (119, 119, 120), (120, 0, 60), (85, 255, 0), (0, 85, 255), (0, 170, 255), (238, 238, 51),
    ]  # fmt: skip
    img = rng.integers(0, 256, (18, 24, 3)).astype(np.uint8)
    img.reshape(-1, 3)[: len(edges)] = edges
    img[12:, 16:] = (200, 30, 90)  # one colour on 6 x 8 = 48 of 432 pixels
    return img


def test_hsv166_equals_exact_per_pixel_quantisation():
    img = _tricky_image()
    got = features.hsv166(img)
    ref = np.array([[_hsv166_exact(*map(int, px)) for px in row] for row in img])
    np.testing.assert_array_equal(got, ref)
    assert got.min() >= 0 and got.max() < 166
    pure = features.hsv166(np.array([[[255, 0, 0], [255, 255, 0], [0, 255, 0], [0, 0, 255]]], np.uint8))
    assert pure.tolist() == [[0 + 8, 27 + 8, 54 + 8, 108 + 8]]  # hues 0°, 60°, 120°, 240°, full S and V


def test_color_set_equals_a_brute_force_count(small):
    img = _tricky_image()
    counts = {}
    for row in img:
        for px in row:
            c = _hsv166_exact(*map(int, px))
            counts[c] = counts.get(c, 0) + 1
    for frac in (0.01, 0.05, 0.1):
        ref = np.zeros(166, np.float32)
        ref[[c for c, n in counts.items() if n >= frac * img.shape[0] * img.shape[1]]] = 1
        got = features.color_set(img, min_fraction=frac)
        np.testing.assert_array_equal(got, ref)
    assert features.color_set(img, min_fraction=0.1).sum() == 1  # only the 48-pixel block covers 10 %
    a, b = features.color_set([small["chelsea"], small["coffee"]])
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert float(((a - b) ** 2).sum()) == float(np.sum(a != b))  # squared L2 of 0/1 vectors is the Hamming distance
    assert features.color_set(small["camera"]).astype(bool)[:162].sum() == 0  # a grey photo has only greys
    with pytest.raises(ValueError, match="min_fraction"):
        features.color_set(img, min_fraction=0)


def _correlogram_brute(q, distances, colors=64):
    h, w = q.shape
    out = []
    for d in distances:
        same = np.zeros(colors)
        total = np.zeros(colors)
        for y1 in range(h):
            for x1 in range(w):
                c = q[y1, x1]
                for y2 in range(h):
                    for x2 in range(w):
                        if max(abs(y1 - y2), abs(x1 - x2)) == d:
                            total[c] += 1
                            same[c] += q[y2, x2] == c
        out.append(np.divide(same, total, out=np.zeros(colors), where=total > 0))
    return np.concatenate(out)


def test_color_correlogram_equals_a_brute_force_loop_over_pixel_pairs():
    rng = np.random.default_rng(1)
    palette = np.array([[250, 10, 10], [10, 250, 10], [10, 10, 250], [200, 200, 200]], np.uint8)
    blocks = rng.integers(0, 4, (5, 6))
    img = palette[np.kron(blocks, np.ones((3, 2), int))[:13, :11]]  # 13 x 11, blocky, so alpha is not near 0
    img[0, 0] = (130, 70, 20)  # a colour of one pixel: alpha 0 at every distance
    q = features.rgb64(img)
    ref_q = np.array([[16 * (r // 64) + 4 * (g // 64) + b // 64 for r, g, b in row.astype(int)] for row in img])
    np.testing.assert_array_equal(q, ref_q)
    got = features.color_correlogram(img)
    assert got.shape == (256,)
    np.testing.assert_allclose(got, _correlogram_brute(ref_q, (1, 3, 5, 7)), atol=1e-6)
    np.testing.assert_allclose(
        features.color_correlogram(img, distances=(2, 12)), _correlogram_brute(ref_q, (2, 12)), atol=1e-6
    )
    assert got.reshape(4, 64)[:, ref_q[0, 0]].tolist() == [0.0] * 4
    flat = features.color_correlogram(np.full((20, 30, 3), 90, np.uint8))
    assert flat.reshape(4, 64)[:, features.rgb64(np.full((1, 1, 3), 90, np.uint8))[0, 0]].tolist() == [1.0] * 4


def test_glcm_equals_scikit_image(small):
    img = small["astronaut"]
    q = (load_image(img, mode="gray").astype(int) * 32 // 256).astype(np.uint8)
    angles = [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4]
    m = skimage.feature.graycomatrix(q, [1, 3, 5], angles, levels=32, symmetric=True, normed=True)
    props = {p: skimage.feature.graycoprops(m, p) for p in ("contrast", "homogeneity", "energy", "correlation")}
    ref = np.concatenate(
        [
            (np.sqrt(props["contrast"]) / 31).ravel(),
            props["homogeneity"].ravel(),
            props["energy"].ravel(),
            ((1 + props["correlation"]) / 2).ravel(),
        ]
    )
    got = features.glcm(img)
    assert got.shape == (48,)
    np.testing.assert_allclose(got, ref, atol=1e-6)
    assert got.min() >= 0 and got.max() <= 1
    # order: property, distance, angle: contrast grows with the distance on a natural image
    contrast = got[:12].reshape(3, 4)
    assert (contrast[2] > contrast[0]).all()
    m8 = skimage.feature.graycomatrix((q // 4).astype(np.uint8), [2], angles, levels=8, symmetric=True, normed=True)
    np.testing.assert_allclose(
        features.glcm(img, levels=8, distances=(2,))[4:8],
        skimage.feature.graycoprops(m8, "homogeneity").ravel(),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="levels"):
        features.glcm(img, levels=1)


def test_metrics_of_the_new_descriptors():
    assert {n: features.METRICS[n] for n in ("hog", "gist", "color_set", "correlogram", "glcm")} == {
        "hog": "ip",
        "gist": "ip",
        "color_set": "l2",
        "correlogram": "l2",
        "glcm": "l2",
    }
