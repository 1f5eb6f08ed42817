"""cnnwidgets.engine.enhance against scikit-image, SciPy, OpenCV, NumPy's FFT and brute force."""

import math

import cv2
import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import data, filters, metrics

from cnnwidgets.engine import enhance as E
from cnnwidgets.engine.enhance import _layout as enhance_layout
from cnnwidgets.engine.enhance import median_filters as enhance_median


def _gray(name, h=None, w=None):
    img = getattr(data, name)()
    img = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return img[:h, :w].astype(np.float32) / 255.0


def _rgb(name, h=None, w=None):
    return (
        data.astronaut()[:h, :w].astype(np.float32) / 255.0
        if name == "astronaut"
        else getattr(data, name)()[:h, :w].astype(np.float32) / 255.0
    )


# ----------------------------------------------------------------------------- Butterworth vs scikit-image

BUTTERWORTH_CASES = [
    # image, shape (odd and even sizes), colour?
    ("camera", (128, 96), False),
    ("camera", (127, 101), False),
    ("coins", (None, None), False),  # 303×384: odd height
    ("chelsea", (None, None), True),  # 300×451×3: odd width
    ("astronaut", (65, 64), True),
]


@pytest.mark.parametrize("name,size,colour", BUTTERWORTH_CASES)
@pytest.mark.parametrize("order", [1.0, 2.0, 3.5, 8.0])
@pytest.mark.parametrize("highpass", [False, True])
def test_butterworth_equals_skimage(name, size, colour, order, highpass):
    img = _rgb(name, *size) if colour else _gray(name, *size)
    for cutoff in (0.02, 0.1, 0.35):
        ours = E.frequency_filter(img, shape="butterworth", highpass=highpass, cutoff=cutoff, order=order)
        ref = filters.butterworth(
            img, cutoff_frequency_ratio=cutoff, high_pass=highpass, order=order, channel_axis=-1 if colour else None
        )
        assert ours.shape == img.shape and ours.dtype == np.float32
        np.testing.assert_allclose(ours, ref, atol=1e-3, rtol=0)


def test_butterworth_batch_and_torch_equal_skimage():
    batch = (
        np.stack([data.astronaut()[:64, :80], data.chelsea()[:64, :80]]).transpose(0, 3, 1, 2).astype(np.float64) / 255
    )
    ours = E.frequency_filter(batch, cutoff=0.08, order=3.0)
    for i in range(2):
        ref = filters.butterworth(batch[i], cutoff_frequency_ratio=0.08, high_pass=False, order=3.0, channel_axis=0)
        np.testing.assert_allclose(ours[i], ref, atol=1e-3)
    t = torch.from_numpy(batch[0]).float()  # C×H×W tensor in, tensor out
    out = E.frequency_filter(t, cutoff=0.08, order=3.0, highpass=True)
    assert isinstance(out, torch.Tensor) and out.shape == t.shape
    ref = filters.butterworth(batch[0], cutoff_frequency_ratio=0.08, high_pass=True, order=3.0, channel_axis=0)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-3)


def test_uint8_input_is_scaled_and_not_modified():
    img = data.camera()[:100, :120]
    before = img.copy()
    ours = E.frequency_filter(img, cutoff=0.1)
    assert np.array_equal(img, before)
    ref = filters.butterworth(img.astype(np.float32) / 255, cutoff_frequency_ratio=0.1, high_pass=False, order=2.0)
    np.testing.assert_allclose(ours, ref, atol=1e-3)


def test_large_image_plane_by_plane_equals_batched(monkeypatch):
    img = _rgb("astronaut", 96, 80)
    whole = E.frequency_filter(img, shape="gaussian", cutoff=0.07)
    monkeypatch.setattr(enhance_layout, "_PLANE_BY_PLANE_PIXELS", 1000)
    planes = E.frequency_filter(img, shape="gaussian", cutoff=0.07)
    np.testing.assert_allclose(planes, whole, atol=1e-6)
    t = torch.from_numpy(img).permute(2, 0, 1)
    np.testing.assert_allclose(
        E.frequency_filter(t, shape="gaussian", cutoff=0.07).permute(1, 2, 0).numpy(), whole, atol=1e-6
    )


def test_fourier_image_gives_the_same_result():
    for img in (_gray("camera", 64, 51), _rgb("astronaut", 40, 48), torch.rand(2, 3, 20, 17), data.coins()[:30, :31]):
        prepared = E.fourier(img)
        for kw in (
            dict(cutoff=0.1),
            dict(shape="ideal", highpass=True, cutoff=0.2),
            dict(shape="gaussian", width=0.1, cutoff=0.25),
        ):
            direct = E.frequency_filter(img, **kw)
            again = E.frequency_filter(prepared, **kw)
            assert type(again) is type(direct) and again.shape == direct.shape
            np.testing.assert_allclose(np.asarray(again), np.asarray(direct), atol=1e-6)


# ----------------------------------------------------------------------------- masks and other shapes


def _radius(h, w):
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    return np.sqrt(fy**2 + fx**2)


@pytest.mark.parametrize("shape", E.FILTER_SHAPES)
@pytest.mark.parametrize("highpass", [False, True])
@pytest.mark.parametrize("width", [None, 0.08])
def test_filter_equals_numpy_full_fft_with_its_mask(shape, highpass, width):
    img = _gray("camera", 90, 77)
    kw = dict(shape=shape, highpass=highpass, cutoff=0.15, order=3.0, width=width)
    mask = E.frequency_mask(img.shape, centered=False, **kw)
    ref = np.real(np.fft.ifft2(np.fft.fft2(img.astype(np.float64)) * mask))
    np.testing.assert_allclose(E.frequency_filter(img, **kw), ref, atol=1e-4)
    centred = E.frequency_mask(img.shape, **kw)
    np.testing.assert_array_equal(centred, np.fft.fftshift(mask))


def test_mask_profiles_brute_force():
    h, w, c = 64, 50, 0.2
    r = _radius(h, w)
    m = lambda **kw: E.frequency_mask((h, w), centered=False, cutoff=c, **kw)  # noqa: E731
    np.testing.assert_array_equal(m(shape="ideal"), (r <= c).astype(np.float32))
    np.testing.assert_array_equal(m(shape="ideal", highpass=True), (r > c).astype(np.float32))
    np.testing.assert_allclose(m(shape="butterworth", order=2), 1 / (1 + (r / c) ** 4), atol=1e-6)
    np.testing.assert_allclose(m(shape="exponential", order=3), np.exp(-np.log(2) * (r / c) ** 3), atol=1e-6)
    np.testing.assert_allclose(m(shape="gaussian"), np.exp(-0.5 * (r / c) ** 2), atol=1e-6)
    for shape in E.FILTER_SHAPES:
        np.testing.assert_allclose(m(shape=shape) + m(shape=shape, highpass=True), 1.0, atol=1e-6)
    # gains at the cutoff
    g = lambda shape: float(E.radial_profile(c, shape=shape, cutoff=c, order=2.0))  # noqa: E731
    assert g("butterworth") == pytest.approx(0.5) and g("exponential") == pytest.approx(0.5)
    assert g("gaussian") == pytest.approx(math.exp(-0.5)) and g("ideal") == 1.0
    # ideal band: |f - c| <= w/2
    np.testing.assert_array_equal(m(shape="ideal", width=0.1), (np.abs(r - c) <= 0.05).astype(np.float32))
    bp = m(shape="butterworth", width=0.1, order=2)
    assert bp[0, 0] == 0.0  # DC is outside the band
    on_ring = E.radial_profile([c], shape="butterworth", cutoff=c, width=0.1)
    assert on_ring[0] == pytest.approx(1.0)
    np.testing.assert_allclose(bp + m(shape="butterworth", width=0.1, order=2, highpass=True), 1.0, atol=1e-6)


def test_highpass_butterworth_is_finite_at_high_orders():
    img = _gray("camera", 64, 64)
    out = E.frequency_filter(img, highpass=True, cutoff=0.01, order=40.0)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, img - img.mean(), atol=1e-3)  # only DC is removed


def test_lowpass_reduces_gaussian_noise_and_ideal_rings():
    clean = _gray("camera", 256, 256)
    noisy = E.add_noise(clean, kind="gaussian", amount=0.1, seed=1)
    smooth = E.frequency_filter(noisy, shape="butterworth", cutoff=0.12, order=2)
    assert E.psnr(clean, smooth) > E.psnr(clean, noisy) + 3
    # a step edge: the ideal low-pass overshoots (Gibbs ringing), a Gaussian low-pass does not
    step = np.zeros((64, 64), np.float32)
    step[:, 16:48] = 1.0
    ideal = E.frequency_filter(step, shape="ideal", cutoff=0.1)
    gauss = E.frequency_filter(step, shape="gaussian", cutoff=0.1)
    assert ideal.max() > 1.05 and gauss.max() <= 1.0 + 1e-5


def test_spectrum_equals_numpy():
    img = _rgb("astronaut", 40, 51)
    ours = E.spectrum(img)
    ref = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(img, axes=(0, 1)), axes=(0, 1))))
    assert ours.shape == img.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs,word",
    [
        (dict(cutoff=0.0), "cutoff"),
        (dict(cutoff=0.6), "cutoff"),
        (dict(shape="box"), "shape"),
        (dict(order=-1.0), "order"),
        (dict(width=0.0), "width"),
    ],
)
def test_bad_parameters_name_the_argument(kwargs, word):
    with pytest.raises(ValueError, match=word):
        E.frequency_filter(np.zeros((8, 8), np.float32), **kwargs)


def test_bad_image_shape_is_refused():
    with pytest.raises(ValueError, match="image"):
        E.frequency_filter(np.zeros((2, 2, 2, 2, 2), np.float32))
    with pytest.raises(ValueError, match="no pixels"):
        E.median(np.zeros((0, 5), np.uint8))


# ----------------------------------------------------------------------------- notch and homomorphic


def test_notch_removes_periodic_noise():
    clean = _gray("camera", 200, 240)
    noisy = E.add_noise(clean, kind="periodic", amount=0.2, frequency=(0.1, 0.15))
    wave = 0.2 * np.sin(2 * np.pi * (0.1 * np.arange(200)[:, None] + 0.15 * np.arange(240)[None, :]))
    unclipped = clean + wave.astype(np.float32)
    out = E.notch_filter(unclipped, centers=[(0.1, 0.15)], radius=0.02, order=2)
    assert E.psnr(clean, out, data_range=1.0) > E.psnr(clean, unclipped, data_range=1.0) + 10
    assert E.psnr(clean, np.clip(E.notch_filter(noisy, centers=[(0.1, 0.15)]), 0, 1)) > E.psnr(clean, noisy) + 5
    # a pure sinusoid at the notch becomes flat
    flat = E.notch_filter(0.5 + wave.astype(np.float32), centers=[(-0.1, -0.15)])
    assert np.abs(flat - 0.5).max() < 0.01
    with pytest.raises(ValueError, match="centers"):
        E.notch_filter(clean, centers=[(0.7, 0.0)])


def test_homomorphic_identity_and_illumination_correction():
    img = _gray("camera", 128, 128)
    same = E.homomorphic_filter(img, gamma_low=1.0, gamma_high=1.0, rescale=False)
    np.testing.assert_allclose(same, img, atol=1e-4)
    # texture under a strong left-to-right illumination ramp
    rng = np.random.default_rng(0)
    reflect = 0.5 + 0.4 * (rng.random((128, 128)) > 0.5)
    light = np.linspace(0.1, 1.0, 128)[None, :].repeat(128, axis=0)
    lit = (reflect * light).astype(np.float32)
    out = E.homomorphic_filter(lit, cutoff=0.05, gamma_low=0.3, gamma_high=1.2)
    assert out.min() >= 0 and out.max() <= 1 + 1e-6
    ratio = lambda x: x[:, 96:].mean() / x[:, :32].mean()  # noqa: E731
    assert ratio(lit) > 3.5 and ratio(out) < 0.6 * ratio(lit)


# ----------------------------------------------------------------------------- median filters


@pytest.mark.parametrize("size", [3, 5, 7, 9])
def test_median_uint8_equals_scipy_and_opencv(size):
    rgb = data.astronaut()[:120, :130]
    gray = data.camera()[:101, :99]
    for img in (gray, rgb):
        before = img.copy()
        ours = E.median(img, size=size)
        ref = ndimage.median_filter(img, size=(size, size) + (1,) * (img.ndim - 2), mode="nearest")
        assert ours.dtype == img.dtype and ours.shape == img.shape
        np.testing.assert_array_equal(ours, ref)
        np.testing.assert_array_equal(ours, cv2.medianBlur(np.ascontiguousarray(img), size))
        np.testing.assert_array_equal(img, before)


@pytest.mark.parametrize(
    "dtype,size", [(np.float32, 3), (np.float32, 5), (np.float32, 7), (np.float64, 3), (np.uint16, 5), (np.uint16, 7)]
)
def test_median_other_dtypes_equal_scipy(dtype, size):
    rng = np.random.default_rng(size)
    img = rng.random((45, 38, 3))
    img = (img * 60000).astype(dtype) if dtype == np.uint16 else img.astype(dtype)
    ours = E.median(img, size=size)
    assert ours.dtype == dtype
    np.testing.assert_array_equal(ours, ndimage.median_filter(img, size=(size, size, 1), mode="nearest"))


def test_median_batch_two_channels_and_torch():
    rng = np.random.default_rng(3)
    batch = (rng.random((2, 2, 30, 40)) * 255).astype(np.uint8)  # N×C×H×W, C=2 (no 2-channel medianBlur for 7×7)
    ours = E.median(batch, size=7)
    np.testing.assert_array_equal(ours, ndimage.median_filter(batch, size=(1, 1, 7, 7), mode="nearest"))
    t = torch.from_numpy(batch[0].astype(np.float32))
    out = E.median(t, size=5)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_array_equal(
        out.numpy(), ndimage.median_filter(batch[0].astype(np.float32), size=(1, 5, 5), mode="nearest")
    )


def test_median_torch_path_equals_scipy():
    # the path GPUs use, run here on the CPU
    rng = np.random.default_rng(4)
    img = rng.random((1, 3, 33, 47)).astype(np.float32)
    out = enhance_median._torch_window_reduce(torch.from_numpy(img), 5, 5, lambda w: w.median(dim=-1).values)
    np.testing.assert_array_equal(out.numpy(), ndimage.median_filter(img, size=(1, 1, 5, 5), mode="nearest"))


@pytest.mark.gpu
def test_median_and_butterworth_on_cuda(monkeypatch):
    monkeypatch.setenv("CNNWIDGETS_DEVICE", "cuda")
    img = data.astronaut()[:100, :90]
    np.testing.assert_array_equal(E.median(img, size=7), ndimage.median_filter(img, size=(7, 7, 1), mode="nearest"))
    f = img.astype(np.float32) / 255
    ref = filters.butterworth(f, cutoff_frequency_ratio=0.1, high_pass=False, order=2.0, channel_axis=-1)
    np.testing.assert_allclose(E.frequency_filter(f, cutoff=0.1), ref, atol=1e-3)


def test_median_size_errors():
    for bad in (0, 4, -3, 2.5, True):
        with pytest.raises(ValueError, match="size"):
            E.median(np.zeros((5, 5), np.uint8), size=bad)


def _weighted_median_brute(img, weights):
    kh, kw = weights.shape
    pad = np.pad(img, ((kh // 2, kh // 2), (kw // 2, kw // 2)), mode="edge")
    flat = weights.reshape(-1)
    rank = (flat.sum() - 1) // 2
    out = np.empty_like(img)
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            vals = np.repeat(pad[i : i + kh, j : j + kw].reshape(-1), flat)
            out[i, j] = np.sort(vals)[rank]
    return out


def test_weighted_median_equals_brute_force():
    rng = np.random.default_rng(5)
    img = (rng.random((23, 17)) * 255).astype(np.uint8)
    for weights in (
        E.center_weighted_kernel(3, 3),
        rng.integers(0, 4, (5, 3)),
        np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]),
    ):
        np.testing.assert_array_equal(E.weighted_median(img, weights), _weighted_median_brute(img, weights))
    np.testing.assert_array_equal(E.weighted_median(img, np.ones((5, 5), int)), E.median(img, size=5))
    rgb = (rng.random((15, 12, 3))).astype(np.float32)
    w = E.center_weighted_kernel(5, 5)
    out = E.weighted_median(rgb, w)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], _weighted_median_brute(rgb[..., c], w))
    with pytest.raises(ValueError, match="weights"):
        E.weighted_median(img, [[1, 1], [1, 1]])
    with pytest.raises(ValueError, match="weights"):
        E.weighted_median(img, [[1, -1, 1]])


def _adaptive_median_brute(img, smax):
    h, w = img.shape
    out = img.copy()
    pads = {s: np.pad(img, s // 2, mode="edge") for s in range(3, smax + 1, 2)}
    for i in range(h):
        for j in range(w):
            z = img[i, j]
            for s in range(3, smax + 1, 2):
                win = pads[s][i : i + s, j : j + s]
                zmin, zmed, zmax = win.min(), np.median(win), win.max()
                if zmin < zmed < zmax:
                    out[i, j] = z if zmin < z < zmax else zmed
                    break
            else:
                out[i, j] = zmed
    return out


def test_adaptive_median_equals_brute_force_and_beats_median():
    clean = data.camera()[200:236, 200:240]
    noisy = (E.add_noise(clean, kind="salt_and_pepper", amount=0.3, seed=2) * 255).round().astype(np.uint8)
    ours = E.adaptive_median(noisy, max_size=7)
    np.testing.assert_array_equal(ours, _adaptive_median_brute(noisy, 7))
    assert ours.dtype == np.uint8
    assert E.psnr(clean, ours) > E.psnr(clean, E.median(noisy, size=3)) + 1


def test_median_combination_equals_sum_of_scipy_medians():
    img = data.camera()[:50, :60]
    out = E.median_combination(img, sizes=(3, 7), coefficients=(0.25, 0.75))
    ref = sum(
        c * ndimage.median_filter(img, size=s, mode="nearest").astype(np.float32) / 255
        for s, c in ((3, 0.25), (7, 0.75))
    )
    np.testing.assert_allclose(out, ref, atol=1e-6)
    with pytest.raises(ValueError, match="coefficients"):
        E.median_combination(img, sizes=(3, 5), coefficients=(1.0,))


def test_median_beats_linear_filter_on_impulse_noise():
    clean = data.camera()[100:300, 100:300]
    noisy = E.add_noise(clean, kind="salt_and_pepper", amount=0.1, seed=0)
    assert (
        E.psnr(clean, E.median(noisy, size=3))
        > E.psnr(clean, E.frequency_filter(noisy, shape="gaussian", cutoff=0.15)) + 5
    )


# ----------------------------------------------------------------------------- noise and metrics


def test_add_noise_kinds():
    flat = np.full((200, 200), 0.5, np.float32)
    g = E.add_noise(flat, kind="gaussian", amount=0.05, seed=3)
    assert abs(float(g.std()) - 0.05) < 0.003 and abs(float(g.mean()) - 0.5) < 0.003
    np.testing.assert_array_equal(g, E.add_noise(flat, kind="gaussian", amount=0.05, seed=3))
    assert not np.array_equal(g, E.add_noise(flat, kind="gaussian", amount=0.05, seed=4))
    rgb = np.full((100, 100, 3), 128, np.uint8)
    sp = E.add_noise(rgb, kind="salt_and_pepper", amount=0.2, seed=0)
    hit = np.any(np.abs(sp - 128 / 255) > 0.1, axis=2)
    assert abs(hit.mean() - 0.2) < 0.02
    assert np.all((sp[hit] == 0) | (sp[hit] == 1)) and np.all(sp[hit] == sp[hit][:, :1])  # whole pixels
    s = E.add_noise(flat, kind="speckle", amount=0.2, seed=0)
    assert abs(float(s.std()) - 0.1) < 0.006
    p = E.add_noise(flat, kind="periodic", amount=0.1, frequency=(0.05, 0.1))
    peak = np.unravel_index(np.argmax(np.abs(np.fft.fft2(p - p.mean()))), p.shape)
    assert {(peak[0], peak[1])} <= {(10, 20), (190, 180)}
    for kind in E.NOISE_KINDS:
        out = E.add_noise(rgb, kind=kind, amount=0.3, seed=1)
        assert out.dtype == np.float32 and out.shape == rgb.shape and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="kind"):
        E.add_noise(flat, kind="pink")


def test_psnr_and_ssim_equal_skimage():
    clean = data.astronaut()[:128, :96]
    noisy_f = E.add_noise(clean, kind="gaussian", amount=0.08, seed=0)
    noisy = (noisy_f * 255).round().astype(np.uint8)
    assert E.psnr(clean, noisy) == pytest.approx(metrics.peak_signal_noise_ratio(clean, noisy), abs=1e-6)
    assert E.ssim(clean, noisy) == pytest.approx(metrics.structural_similarity(clean, noisy, channel_axis=-1), abs=1e-6)
    cf = clean.astype(np.float32) / 255
    g, gn = cf[..., 1], noisy_f[..., 1]
    assert E.psnr(g, gn, data_range=1.0) == pytest.approx(
        metrics.peak_signal_noise_ratio(g, gn, data_range=1.0), abs=1e-5
    )
    assert E.ssim(g, gn, data_range=1.0) == pytest.approx(
        metrics.structural_similarity(g, gn, data_range=1.0), abs=1e-5
    )
    assert E.psnr(clean, clean) == math.inf and E.ssim(clean, clean) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same shape"):
        E.psnr(clean, clean[:10])
