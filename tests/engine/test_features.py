"""Descriptors against NumPy, SciPy and OpenCV references, and their invariances."""

import cv2
import numpy as np
import pytest
from scipy import stats

from cnnwidgets.datasets import sample
from cnnwidgets.engine import features
from cnnwidgets.io import resize_to_fit


@pytest.fixture(scope="module")
def small():
    return {n: resize_to_fit(sample(n), 200) for n in ("chelsea", "coffee", "astronaut")}


def test_color_histogram_matches_numpy_histogramdd(small):
    img = small["chelsea"]
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).reshape(-1, 3)
    ref, _ = np.histogramdd(hsv, bins=(8, 4, 4), range=[(0, 180), (0, 256), (0, 256)])
    ref = np.sqrt(ref.ravel() / ref.sum())
    got = features.color_histogram(img)
    assert got.dtype == np.float32 and got.shape == (128,)
    np.testing.assert_allclose(got, ref, atol=1e-6)
    rgb = features.color_histogram(img, space="rgb", bins=4)
    ref_rgb, _ = np.histogramdd(img.reshape(-1, 3), bins=(4, 4, 4), range=[(0, 256)] * 3)
    np.testing.assert_allclose(rgb, np.sqrt(ref_rgb.ravel() / ref_rgb.sum()), atol=1e-6)


def test_color_histogram_inner_product_is_opencv_bhattacharyya(small):
    a, b = small["chelsea"], small["coffee"]
    ha, hb = (
        cv2.calcHist([cv2.cvtColor(x, cv2.COLOR_RGB2HSV)], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256])
        for x in (a, b)
    )
    d = cv2.compareHist(ha, hb, cv2.HISTCMP_BHATTACHARYYA)  # sqrt(1 - BC)
    ip = float(features.color_histogram(a) @ features.color_histogram(b))
    assert ip == pytest.approx(1 - d**2, abs=1e-5)
    assert np.linalg.norm(features.color_histogram(a)) == pytest.approx(1.0, abs=1e-6)


def test_color_histogram_list_input_and_rotation_invariance(small):
    imgs = [small["chelsea"], np.rot90(small["chelsea"]), small["coffee"]]
    x = features.color_histogram(imgs)
    assert x.shape == (3, 128) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], x[1], atol=1e-6)  # a histogram ignores where colours are
    assert x[0] @ x[2] < 0.9
    gray = features.color_histogram(sample("camera"))
    assert np.count_nonzero(gray) <= 4  # grey pixels have zero saturation: one S bin per hue-0 column
    with pytest.raises(ValueError, match="bins"):
        features.color_histogram(small["chelsea"], bins=(8, 0, 4))
    with pytest.raises(ValueError, match="space"):
        features.color_histogram(small["chelsea"], space="lab")


def test_color_moments_match_scipy(small):
    img = small["astronaut"]
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.float64) / np.array([180, 255, 255])
    got = features.color_moments(img)
    assert got.shape == (9,) and got.dtype == np.float32
    np.testing.assert_allclose(got[:3], hsv.mean(0), atol=1e-6)
    np.testing.assert_allclose(got[3:6], hsv.std(0), atol=1e-6)
    np.testing.assert_allclose(got[6:], np.cbrt(stats.skew(hsv, axis=0) * hsv.std(0) ** 3), atol=1e-5)
    assert features.color_moments([img, img]).shape == (2, 9)


def test_local_features_rootsift_and_orb_bits(small):
    s = features.local_features(small["astronaut"], kind="sift", max_features=100)
    assert s.shape[1] == 128 and 50 <= len(s) <= 110 and s.dtype == np.float32
    np.testing.assert_allclose((s**2).sum(1), 1.0, atol=1e-5)  # RootSIFT rows have unit L2 norm
    o = features.local_features(small["astronaut"], kind="orb", max_features=100)
    assert o.shape[1] == 256 and set(np.unique(o)) <= {0.0, 1.0}
    assert len(features.local_features(np.full((64, 64, 3), 128, np.uint8))) == 0
    with pytest.raises(ValueError, match="kind"):
        features.local_features(small["astronaut"], kind="surf")


def test_bovw_assigns_to_nearest_centre_like_brute_force(small):
    descs = [features.local_features(im, kind="sift", max_features=200) for im in small.values()]
    vocab = features.learn_vocabulary(descs, kind="sift", size=32, seed=0)
    assert vocab.centers.shape == (32, 128) and vocab.centers.dtype == np.float32
    d = descs[0]
    nearest = ((d[:, None, :] - vocab.centers[None]) ** 2).sum(-1).argmin(1)
    ref = np.bincount(nearest, minlength=32).astype(np.float64)
    np.testing.assert_allclose(features.bovw(d, vocabulary=vocab), np.sqrt(ref / ref.sum()), atol=1e-6)
    assert not features.bovw(np.zeros((0, 128), np.float32), vocabulary=vocab).any()


def test_sift_bovw_is_robust_to_rotation_and_scale(small, tmp_path):
    imgs = list(small.values())
    vocab = features.learn_vocabulary(imgs, kind="sift", size=64, seed=0)
    vocab.save(tmp_path / "v.npy")
    again = features.Vocabulary.load(tmp_path / "v.npy", kind="sift")
    np.testing.assert_array_equal(again.centers, vocab.centers)
    a = small["chelsea"]
    rotated = cv2.warpAffine(
        a,
        cv2.getRotationMatrix2D((a.shape[1] / 2, a.shape[0] / 2), 30, 0.7),
        a.shape[1::-1],
        borderMode=cv2.BORDER_REFLECT,
    )
    x = features.sift_bovw([a, rotated, small["coffee"], small["astronaut"]], vocabulary=vocab)
    assert x.shape == (4, 64)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert x[0] @ x[1] > max(x[0] @ x[2], x[0] @ x[3])
    with pytest.raises(ValueError, match="vocabulary"):
        features.orb_bovw(a, vocabulary=vocab)


def test_cnn_descriptor_is_models_embed():
    from cnnwidgets.engine import models
    from cnnwidgets.engine.models import shared_model

    model = shared_model("efficientnet_lite0")
    imgs = [sample("chelsea"), sample("coffee")]
    x = features.cnn(imgs, model=model)
    np.testing.assert_allclose(x, models.embed(model, imgs), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(features.cnn(imgs[0], model=model), x[0], atol=1e-5)


def test_cnn_with_tags_equals_embed_and_classify():
    from cnnwidgets.engine import models
    from cnnwidgets.engine.models import shared_model

    model = shared_model("efficientnet_lite0")
    imgs = [sample("chelsea"), sample("coffee"), sample("rocket")]
    vecs, tags = features.cnn_with_tags(imgs, model=model, topk=5, batch_size=2)
    np.testing.assert_allclose(vecs, models.embed(model, imgs), atol=1e-4)
    ref = models.classify(model, imgs, topk=5)
    for got, want in zip(tags, ref):
        assert [t for t, _ in got] == [t for t, _ in want]
        np.testing.assert_allclose([p for _, p in got], [p for _, p in want], atol=1e-5)
    tiny = models.create_model("tiny_cnn", pretrained=False, num_classes=3)  # no timm head: falls back
    v2, t2 = features.cnn_with_tags(imgs[:2], model=tiny, topk=2)
    np.testing.assert_allclose(v2, models.embed(tiny, imgs[:2]), atol=1e-5)
    assert [[t for t, _ in row] for row in t2] == [
        [t for t, _ in row] for row in models.classify(tiny, imgs[:2], topk=2)
    ]
