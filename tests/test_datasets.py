import numpy as np
import pytest
import skimage.data
from PIL import Image

from cnnwidgets import datasets


@pytest.mark.parametrize("name", ["chelsea", "coffee", "camera", "coins", "astronaut", "page", "text"])
def test_required_samples_present(name):
    assert name in datasets.list_samples()
    img = datasets.sample(name)
    assert np.array_equal(img, getattr(skimage.data, name)())


def test_every_listed_sample_loads_offline():
    for name in datasets.list_samples():
        img = datasets.sample(name)
        assert img.dtype == np.uint8 and img.ndim in (2, 3), name
        assert datasets.sample(name, mode="rgb").shape == img.shape[:2] + (3,)


def test_unknown_sample():
    with pytest.raises(ValueError, match="unknown sample 'nope'.*chelsea"):
        datasets.sample("nope")


def test_digits_matches_sklearn():
    from sklearn.datasets import load_digits

    d = datasets.digits()
    ref = load_digits()
    assert d.images.shape == (1797, 8, 8) and d.images.dtype == np.uint8
    assert np.array_equal(d.labels, ref.target)
    assert np.array_equal(d.images == 0, ref.images == 0) and d.images.max() == 255
    assert d.classes == tuple("0123456789")


def test_shapes_are_balanced_seeded_and_separable():
    a = datasets.shapes(200, seed=3)
    b = datasets.shapes(200, seed=3)
    c = datasets.shapes(200, seed=4)
    assert a.images.shape == (200, 32, 32, 3) and a.images.dtype == np.uint8
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)
    assert np.bincount(a.labels).tolist() == [50, 50, 50, 50]
    # The shape, not the colour, decides the class: the filled area differs by class.
    fg_fraction = []
    for img in a.images:
        gray = img.astype(float).mean(axis=2)
        corner = np.median(np.concatenate([gray[:2].ravel(), gray[-2:].ravel()]))
        fg_fraction.append((np.abs(gray - corner) > 30).mean())
    fg_fraction = np.array(fg_fraction)
    means = [fg_fraction[a.labels == k].mean() for k in range(4)]
    assert means[0] != pytest.approx(means[2], abs=0.02)  # circles fill more than triangles


def test_shapes_validation():
    with pytest.raises(ValueError, match="unknown classes"):
        datasets.shapes(4, classes=("hexagon",))


def test_image_folder_with_classes_and_bad_files(tmp_path):
    chelsea = datasets.sample("chelsea")
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(chelsea[:, :, ::-1] if cls == "dog" else chelsea).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "cat" / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "dog" / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("ignored: not an image extension")
    folder = datasets.ImageFolder(tmp_path)
    assert folder.classes == ["cat", "dog"]
    assert len(folder) == 6 and sorted(set(folder.labels)) == [0, 1]
    skipped = {p.name: why for p, why in folder.skipped}
    assert set(skipped) == {"broken.jpg", "empty.png"}
    assert "not an image" in skipped["broken.jpg"] and "zero bytes" in skipped["empty.png"]
    img, label = folder[0]
    assert img.shape == chelsea.shape and label == 0
    assert "broken.jpg" in folder.report()


def test_image_folder_flat_and_missing(tmp_path):
    Image.fromarray(datasets.sample("camera")).save(tmp_path / "a.png")
    folder = datasets.ImageFolder(tmp_path, mode="gray")
    assert folder.classes == [] and folder.labels == [-1]
    assert folder[0][0].ndim == 2
    with pytest.raises(ValueError, match="folder not found"):
        datasets.ImageFolder(tmp_path / "missing")
