"""engine.train: fit, transfer learning, prototypes and BoVW against brute-force, OpenCV and scikit-learn references."""

import threading

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from cnnwidgets import datasets
from cnnwidgets.engine import features, models, train
from cnnwidgets.io import load_image


@pytest.fixture(scope="module")
def digits_small():
    d = datasets.digits()
    rest, small = train.split(d, test=0.15, seed=1)  # 270 images, stratified
    return small


def _tiny(seed=0, **kw):
    torch.manual_seed(seed)
    return models.create_model("tiny_cnn", pretrained=False, **kw)


# ----------------------------------------------------------------------------- data helpers


def test_split_is_stratified_disjoint_and_seeded():
    d = datasets.digits()
    tr, te = train.split(d, test=0.25, seed=3)
    assert len(tr.labels) + len(te.labels) == len(d.labels)
    # every image lands on exactly one side: compare as byte strings
    seen = sorted(im.tobytes() for im in np.concatenate([tr.images, te.images]))
    assert seen == sorted(im.tobytes() for im in d.images)
    for c in range(10):
        n = (d.labels == c).sum()
        assert abs((te.labels == c).sum() - n * 0.25) <= 1
    tr2, te2 = train.split(d, test=0.25, seed=3)
    assert np.array_equal(te.images, te2.images)
    assert not np.array_equal(te.images, train.split(d, test=0.25, seed=4)[1].images)
    assert tr.classes == d.classes


def test_confusion_matrix_matches_sklearn():
    from sklearn.metrics import confusion_matrix as sk

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    assert np.array_equal(train.confusion_matrix(y, p, n_classes=5), sk(y, p, labels=range(5)))


def test_as_imageset_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="3 images but labels"):
        train.as_imageset((np.zeros((3, 8, 8), np.uint8), [0, 1]))
    with pytest.raises(ValueError, match="≥ 0"):
        train.as_imageset((np.zeros((2, 8, 8), np.uint8), [0, -1]))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "loose.png")
    (tmp_path / "a").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a" / "x.png")
    with pytest.raises(ValueError, match="loose.png"):
        train.as_imageset(datasets.ImageFolder(tmp_path))


# ----------------------------------------------------------------------------- fit


def test_fit_is_deterministic_with_a_seed_and_streams_metrics(digits_small):
    seen = []
    m1, m2, m3 = _tiny(0), _tiny(0), _tiny(0)
    state = torch.random.get_rng_state()
    h1 = train.fit(
        m1,
        digits_small,
        epochs=2,
        lr=3e-3,
        batch_size=32,
        seed=7,
        val=0.2,
        device="cpu",
        callback=seen.append,
        progress=False,
    )
    train.fit(m2, digits_small, epochs=2, lr=3e-3, batch_size=32, seed=7, val=0.2, device="cpu", progress=False)
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(a, b), k
    train.fit(m3, digits_small, epochs=2, lr=3e-3, batch_size=32, seed=8, val=0.2, device="cpu", progress=False)
    assert not torch.equal(m1.fc.weight, m3.fc.weight)
    # the callback got one dict per epoch, the same ones History keeps
    assert [e["epoch"] for e in seen] == [1, 2] and seen == h1.epochs
    assert h1.loss[1] < h1.loss[0] and not m1.training
    # validation metrics are those of the final model on the held-out part, recomputed independently
    _, held_out = train.split(digits_small, test=0.2, seed=7)  # what fit(val=0.2, seed=7) holds out
    ev = train.evaluate_classifier(m1, held_out)
    assert ev["accuracy"] == pytest.approx(h1.final["val_accuracy"], abs=1e-6)
    assert ev["loss"] == pytest.approx(h1.final["val_loss"], rel=1e-5)
    assert np.array_equal(ev["confusion"], h1.confusion) and h1.confusion.sum() == len(held_out.labels)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone


def test_fit_learns_digits(digits_small):
    d = datasets.digits()
    tr, te = train.split(d, test=0.25, seed=0)
    m = _tiny(0)
    train.fit(m, tr, epochs=2, lr=5e-3, batch_size=32, seed=0, schedule="cosine", device="cpu", progress=False)
    ev = train.evaluate_classifier(m, te)
    labels, probs = train.predict(m, te.images)
    assert ev["accuracy"] == pytest.approx(float((labels == te.labels).mean()))
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    assert ev["accuracy"] > 0.85  # chance is 0.1


def test_stop_event_ends_training_early(digits_small):
    stop = threading.Event()
    threads = torch.get_num_threads()
    h = train.fit(
        _tiny(),
        digits_small,
        epochs=5,
        lr=1e-3,
        callback=lambda m: stop.set(),
        stop=stop,
        progress=False,
        threads=threads + 1,
    )
    assert len(h.epochs) == 1 and h.stopped
    assert torch.get_num_threads() == threads  # restored
    h = train.fit(_tiny(), digits_small, epochs=3, lr=1e-3, stop=lambda: True, progress=False)
    assert h.epochs == [] and h.stopped


def test_fit_accepts_folder_torch_dataset_and_pairs(tmp_path):
    s = datasets.shapes(24, seed=0, classes=("circle", "cross"))
    for i, (im, lab) in enumerate(zip(s.images, s.labels)):
        (tmp_path / s.classes[lab]).mkdir(exist_ok=True)
        Image.fromarray(im).save(tmp_path / s.classes[lab] / f"{i}.png")
    folder = datasets.ImageFolder(tmp_path)
    tensor_set = torch.utils.data.TensorDataset(
        train.input_batch(s.images, _tiny(in_chans=3, num_classes=2)), torch.from_numpy(s.labels)
    )
    weights = []
    for data in (folder, tensor_set, (s.images, s.labels), s):
        m = _tiny(0, in_chans=3, num_classes=2)
        h = train.fit(m, data, epochs=1, lr=1e-3, seed=0, progress=False)
        assert len(h.epochs) == 1 and h.classes in (("circle", "cross"), ("0", "1"))
        weights.append(m.fc.weight.detach().clone())
    # the folder was sorted by class then file name, so only the pair/ImageSet/tensor runs share an order
    assert torch.equal(weights[1], weights[2]) and torch.equal(weights[2], weights[3])


def test_fit_errors_are_clear(digits_small):
    with pytest.raises(ValueError, match="num_classes=10"):
        train.fit(_tiny(num_classes=3), digits_small, epochs=1, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        train.fit(_tiny(), digits_small, epochs=0, progress=False)
    with pytest.raises(ValueError, match="lr"):
        train.fit(_tiny(), digits_small, epochs=1, lr=-1, progress=False)


# ----------------------------------------------------------------------------- transfer learning


def _variants(img, n, seed):
    """Crops, flips and brightness changes of one sample image."""
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    out = []
    for _ in range(n):
        ch, cw = int(h * rng.uniform(0.6, 0.9)), int(w * rng.uniform(0.6, 0.9))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        v = img[y : y + ch, x : x + cw].astype(np.float32) * rng.uniform(0.7, 1.2)
        v = np.clip(v, 0, 255).astype(np.uint8)
        out.append(v[:, ::-1] if rng.random() < 0.5 else v)
    return out


def test_transfer_learn_on_a_folder(tmp_path, lite0):
    for cls, name in (("cat", "chelsea"), ("cup", "coffee"), ("rocket", "rocket")):
        (tmp_path / cls).mkdir()
        for i, v in enumerate(_variants(datasets.sample(name), 6, seed=len(cls))):
            Image.fromarray(np.ascontiguousarray(v)).save(tmp_path / cls / f"{i}.jpg")
    folder = datasets.ImageFolder(tmp_path)
    backbone_before = {k: v.clone() for k, v in lite0.state_dict().items()}
    clf = train.transfer_learn(lite0, folder, epochs=60, lr=0.05, seed=0, progress=False)
    for k, v in lite0.state_dict().items():
        assert torch.equal(v, backbone_before[k]), k  # the backbone stayed frozen
    assert clf.classes == ("cat", "cup", "rocket") and isinstance(clf.head, torch.nn.Linear)
    # new variants of the same objects are recognised
    test_imgs = [v for n in ("chelsea", "coffee", "rocket") for v in _variants(datasets.sample(n), 2, seed=99)]
    test_labels = np.repeat([0, 1, 2], 2)
    feats = models.embed(lite0, test_imgs, progress=False)
    probs = clf.predict_proba(test_imgs)
    # the classifier is exactly backbone embedding → linear layer → softmax
    w, b = clf.head.weight.detach().numpy(), clf.head.bias.detach().numpy()
    z = feats @ w.T + b
    ref = np.exp(z - z.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    assert np.allclose(probs, ref, atol=1e-5)
    assert np.array_equal(probs.argmax(1), test_labels)
    assert clf.classify(test_imgs[:1], topk=2)[0][0][0] == "cat"


# ----------------------------------------------------------------------------- few-shot


def _brute_force_prototypes(feats, labels, k, metric):
    protos = []
    for c in range(k):
        rows = [feats[i] for i in range(len(labels)) if labels[i] == c]
        m = np.sum(rows, axis=0) / len(rows)
        if metric == "cosine":
            m = m / np.sqrt(np.sum(m * m))
        protos.append(m)
    return np.array(protos)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_prototype_classifier_matches_brute_force(metric):
    s = datasets.shapes(60, seed=2)
    support = np.concatenate([np.flatnonzero(s.labels == c)[:5] for c in range(4)])
    query = np.setdiff1d(np.arange(60), support)
    net = _tiny(0, in_chans=3, num_classes=4)
    pc = train.PrototypeClassifier(net, metric=metric).fit(s.images[support], s.labels[support], classes=s.classes)
    feats = models.embed(net, list(s.images), progress=False).astype(np.float64)
    protos = _brute_force_prototypes(feats[support], s.labels[support], 4, metric)
    assert np.allclose(pc.prototypes_, protos, atol=1e-5)
    expected = []
    for i in query:
        f = feats[i]
        if metric == "cosine":
            f = f / np.sqrt(np.sum(f * f))
            expected.append(int(np.argmax([np.dot(f, p) for p in protos])))
        else:
            expected.append(int(np.argmin([np.sum((f - p) ** 2) for p in protos])))
    assert np.array_equal(pc.predict(list(s.images[query])), expected)
    assert pc.classes_ == s.classes and list(pc.counts_) == [5, 5, 5, 5]


def test_prototype_classifier_with_a_feature_function_and_too_few_shots():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    x = np.concatenate([c + 0.1 * rng.normal(size=(6, 16)) for c in centres])
    y = np.repeat(np.arange(3), 6)
    pc = train.PrototypeClassifier(lambda imgs: np.asarray(imgs), metric="euclidean").fit(x, y)
    assert np.allclose(pc.prototypes_, [x[y == c].mean(0) for c in range(3)], atol=1e-6)
    assert np.array_equal(pc.predict(centres), [0, 1, 2])
    with pytest.raises(ValueError, match="at least 5 images per class; too few for '2' \\(4\\)"):
        train.PrototypeClassifier(lambda imgs: np.asarray(imgs)).fit(x[:16], y[:16], min_shots=5)


# ----------------------------------------------------------------------------- bag of visual words


def test_bovw_descriptors_words_and_histograms_match_references():
    s = datasets.shapes(40, seed=1)
    clf = train.bovw_classifier(s, detector="sift", vocabulary=20, image_size=128)
    img = s.images[3]
    gray = cv2.resize(load_image(img, mode="gray"), (128, 128), interpolation=cv2.INTER_LINEAR)
    _, raw = cv2.SIFT_create(nfeatures=500).detectAndCompute(gray, None)
    ref = np.sqrt(raw / raw.sum(axis=1, keepdims=True))  # RootSIFT
    des = clf.descriptors(img)
    assert len(ref) > 0 and np.allclose(des, ref, atol=1e-6)
    # the classifier runs the retrieval pipeline itself
    np.testing.assert_array_equal(des, features.local_features(img, side=128, enlarge=True))
    # nearest visual word, brute force
    words = clf.words(des)
    brute = [int(np.argmin([np.linalg.norm(d - v) for v in clf.vocabulary])) for d in des.astype(np.float64)]
    assert np.array_equal(words, brute)
    hist = clf.histograms([img])[0]
    assert hist.shape == (20,) and np.linalg.norm(hist) == pytest.approx(1.0)
    assert np.allclose(hist, np.sqrt(np.bincount(words, minlength=20) / len(des)))
    assert np.array_equal(clf.predict([img]), clf.svm.predict(hist[None]))


def test_bovw_learns_shapes_and_uses_a_given_vocabulary():
    s = datasets.shapes(160, seed=0, classes=("circle", "cross"))
    tr, te = train.split(s, test=0.5, seed=0)
    clf = train.bovw_classifier(tr, detector="sift", vocabulary=30, seed=0)
    assert clf.score(te) > 0.75  # chance is 0.5
    vocab = clf.vocabulary * 1.0
    again = train.bovw_classifier(tr.images, tr.labels, detector="sift", vocabulary=vocab)
    assert np.array_equal(again.vocabulary, vocab) and again.vocabulary is not vocab
    with pytest.raises(ValueError, match="K×256"):
        train.bovw_classifier(tr, detector="orb", vocabulary=vocab)
    with pytest.raises(ValueError, match="detector"):
        train.bovw_classifier(tr, detector="surf")


def test_bovw_orb_bits_make_euclidean_the_hamming_distance():
    img = datasets.sample("astronaut")
    clf = train.bovw_classifier([img, img[:, ::-1]], [0, 1], detector="orb", vocabulary=8, image_size=256)
    gray = cv2.resize(load_image(img, mode="gray"), (256, 256), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(clf.descriptors(img), features.local_features(img, kind="orb", side=256))
    _, raw = cv2.ORB_create(nfeatures=500, edgeThreshold=15, patchSize=15).detectAndCompute(gray, None)
    bits = np.unpackbits(raw, axis=1).astype(np.float32)
    assert np.array_equal(clf.descriptors(img), bits)
    for i, j in [(0, 1), (2, 5), (10, 40)]:
        assert np.sum((bits[i] - bits[j]) ** 2) == cv2.norm(raw[i], raw[j], cv2.NORM_HAMMING)


def test_compare_bovw_cnn_reports_both_on_the_same_split():
    s = datasets.shapes(80, seed=0)
    tr, te = train.split(s, test=0.5, seed=0)
    net = _tiny(0, in_chans=3, num_classes=4)
    rows = train.compare_bovw_cnn(tr, te, model=net, detector="sift", vocabulary=20, epochs=30, seed=0)
    assert [r["method"].split(" ")[0] for r in rows] == ["BoVW", "tiny_cnn"]
    assert all(r["n_train"] == 40 and r["n_test"] == 40 for r in rows)
    bovw = train.bovw_classifier(tr, detector="sift", vocabulary=20, seed=0)
    assert rows[0]["accuracy"] == pytest.approx(bovw.score(te))
    head = train.transfer_learn(net, tr, epochs=30, seed=0, progress=False)
    assert rows[1]["accuracy"] == pytest.approx(head.score(te))
    table = train.format_table(rows)
    assert table.count("\n") == 3 and f"{rows[0]['accuracy']:.3f}" in table


# ----------------------------------------------------------------------------- descriptors + SVM


def _sklearn_svm(kernel, C=1.0, seed=0):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    svm = LinearSVC(C=C, random_state=seed, max_iter=20_000) if kernel == "linear" else SVC(C=C, gamma="scale")
    return make_pipeline(StandardScaler(), svm)


@pytest.fixture(scope="module")
def shapes_split():
    return train.split(datasets.shapes(80, seed=2), test=0.5, seed=0)


@pytest.mark.parametrize(
    ("descriptor", "kernel", "C"), [("hog", "linear", 1.0), ("hog", "rbf", 3.0), ("glcm", "linear", 0.5)]
)
def test_descriptor_classifier_is_the_descriptor_and_a_scikit_learn_svm(shapes_split, descriptor, kernel, C):
    tr, te = shapes_split
    clf = train.descriptor_classifier(tr, descriptor=descriptor, kernel=kernel, C=C, seed=3)
    fn = {"hog": features.hog, "glcm": features.glcm}[descriptor]
    f_tr, f_te = fn(list(tr.images)), fn(list(te.images))
    np.testing.assert_array_equal(clf.features(te.images), f_te)
    ref = _sklearn_svm(kernel, C, seed=3).fit(f_tr, tr.labels)
    expected = ref.predict(f_te)
    assert np.array_equal(clf.predict(te.images), expected)
    assert np.array_equal(clf.predict(None, features=f_te), expected)
    assert clf.score(te) == pytest.approx(float((expected == te.labels).mean()))
    # the standardisation is fitted on the training descriptors: zero mean, unit variance there
    z = clf.svm[0].transform(f_tr)
    keep = f_tr.std(0) > 1e-6
    np.testing.assert_allclose(z[:, keep].mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(z[:, keep].std(0), 1, atol=1e-3)
    label = {"hog": "HOG", "glcm": "GLCM"}[descriptor]
    assert clf.name == f"{label} + {'linear' if kernel == 'linear' else 'RBF'} SVM"


def test_descriptor_classifier_with_a_function_options_and_errors(shapes_split):
    tr, te = shapes_split

    def mean_colour(images, *, scale=1.0):
        return np.stack([np.asarray(im, np.float64).reshape(-1, 3).mean(0) * scale for im in images])

    clf = train.descriptor_classifier(tr.images, tr.labels, descriptor=mean_colour, options={"scale": 2.0})
    f_tr, f_te = mean_colour(tr.images, scale=2.0), mean_colour(te.images, scale=2.0)
    np.testing.assert_allclose(clf.features(te.images), f_te, rtol=1e-6)
    ref = _sklearn_svm("linear").fit(f_tr.astype(np.float32), tr.labels)
    assert np.array_equal(clf.predict(te.images), ref.predict(f_te.astype(np.float32)))
    assert clf.name == "mean_colour + linear SVM"
    # HOG at 64 px through options: 3×3 blocks of 2×2 cells of 9 bins
    small = train.descriptor_classifier(tr, descriptor="hog", options={"side": 64})
    assert small.features(te.images[:2]).shape == (2, 324)
    with pytest.raises(ValueError, match="descriptor='surf'"):
        train.descriptor_classifier(tr, descriptor="surf")
    with pytest.raises(ValueError, match="kernel='poly'"):
        train.descriptor_classifier(tr, kernel="poly")
    with pytest.raises(ValueError, match="returned shape \\(3,\\)"):
        train.descriptor_classifier(tr, descriptor=lambda images: np.zeros(3))
    with pytest.raises(ValueError, match="two classes"):
        train.descriptor_classifier(tr.images[:4], np.zeros(4, int))


def test_bag_of_words_is_one_descriptor_classifier(shapes_split):
    tr, te = shapes_split
    clf = train.descriptor_classifier(tr, descriptor="sift", options={"vocabulary": 20}, seed=0)
    assert isinstance(clf, train.BoVWClassifier) and isinstance(clf, train.DescriptorClassifier)
    ref = train.bovw_classifier(tr, detector="sift", vocabulary=20, seed=0)
    np.testing.assert_array_equal(clf.vocabulary, ref.vocabulary)
    hist = clf.features(te.images)
    np.testing.assert_array_equal(hist, ref.histograms(list(te.images)))
    expected = _sklearn_svm("linear").fit(ref.histograms(list(tr.images)), tr.labels).predict(hist)
    assert np.array_equal(clf.predict(te.images), expected)
    assert clf.name == "BoVW (SIFT, 20 words) + linear SVM"
    rbf = train.bovw_classifier(tr, detector="sift", vocabulary=ref.vocabulary, kernel="rbf")
    expected = _sklearn_svm("rbf").fit(ref.histograms(list(tr.images)), tr.labels).predict(hist)
    assert np.array_equal(rbf.predict(te.images), expected) and rbf.name.endswith("RBF SVM")


def test_compare_features_rows_match_each_classifier_on_the_same_split(shapes_split):
    tr, te = shapes_split
    net = _tiny(0, in_chans=3, num_classes=4)
    rows = train.compare_features(
        tr, te, features=("hog", "sift"), options={"sift": {"vocabulary": 20}}, model=net, epochs=20, seed=0
    )
    assert [r["feature"] for r in rows] == ["hog", "sift", "cnn"]
    assert [r["method"] for r in rows] == [
        "HOG + linear SVM",
        "BoVW (SIFT, 20 words) + linear SVM",
        "tiny_cnn features + linear head",
    ]
    assert rows[0]["accuracy"] == pytest.approx(train.descriptor_classifier(tr, descriptor="hog").score(te))
    bovw = train.bovw_classifier(tr, detector="sift", vocabulary=20, seed=0)
    assert rows[1]["accuracy"] == pytest.approx(bovw.score(te))
    head = train.transfer_learn(net, tr, epochs=20, seed=0, progress=False)
    assert rows[2]["accuracy"] == pytest.approx(head.score(te))
    for r in rows:
        assert r["n_train"] == r["n_test"] == 40
        assert r["ms_per_image"] == pytest.approx(1000 * r["predict_seconds"] / 40) and r["ms_per_image"] > 0
    table = train.format_table(rows)
    assert table.count("\n") == 4 and f"| {rows[0]['ms_per_image']:.1f} |" in table
    only = train.compare_features(tr, te, features=("glcm",), model=None)
    assert [r["feature"] for r in only] == ["glcm"]
