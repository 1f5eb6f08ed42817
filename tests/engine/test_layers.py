"""Layer capture, kernels, mosaics, Grad-CAM and the teaching playground, against torch references."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cnnwidgets.datasets import sample
from cnnwidgets.engine import layers as L
from cnnwidgets.engine import models as M


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return M.create_model("tiny_cnn", device="cpu")


def _hook_count(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


# ----------------------------------------------------------------------------- names, capture, hooks


def test_layer_names_by_kind(tiny, lite0):
    assert L.layer_names(tiny) == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "fc"]
    assert L.layer_names(tiny, "conv") == ["conv1", "conv2"]
    names = L.layer_names(lite0)
    assert names[0] == "conv_stem" and names[-1] == "classifier"
    assert "global_pool" in names and "global_pool.pool" not in names
    for n in names:
        lite0.get_submodule(n)
    with pytest.raises(ValueError, match="unknown layer kinds"):
        L.layer_names(tiny, ("conv", "attention"))


def test_capture_matches_manual_forward(tiny):
    img = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
    acts, out = L.capture(tiny, img, output=True)
    x = M.preprocess(img, tiny)
    with torch.no_grad():
        c1 = tiny.conv1(x)
        r1 = F.relu(c1)
        p1 = F.max_pool2d(r1, 2)
        c2 = tiny.conv2(p1)
        p2 = F.max_pool2d(F.relu(c2), 2)
        logits = tiny.fc(p2.flatten(1))
    np.testing.assert_allclose(acts["conv1"], c1[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(acts["relu1"], r1[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(acts["pool2"], p2[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(acts["fc"], logits[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(out, logits[0].numpy(), atol=1e-5)
    assert acts["conv1"].shape == (16, 32, 32) and acts["pool1"].shape == (16, 16, 16)
    batch = L.capture(tiny, [img, img], ["conv2"])
    assert batch["conv2"].shape == (2, 32, 16, 16)


def test_capture_survives_inplace_activation():
    # torchvision's ResNet applies an in-place ReLU to bn1's output: bn1 must keep its negatives
    torch.manual_seed(0)
    r = M.create_model("resnet18", pretrained=False, device="cpu")
    assert r.relu.inplace
    acts = L.capture(r, sample("chelsea"), ["bn1", "relu"])
    assert acts["bn1"].min() < 0
    np.testing.assert_allclose(np.maximum(acts["bn1"], 0), acts["relu"], atol=1e-6)


def test_no_hook_left_behind(tiny):
    assert _hook_count(tiny) == 0
    L.capture(tiny, np.zeros((32, 32), np.uint8), ["conv1", "fc"])
    assert _hook_count(tiny) == 0
    with pytest.raises(RuntimeError, match="boom"), L.hooks(tiny, ["conv1", "relu2"]):
        assert _hook_count(tiny) == 2
        raise RuntimeError("boom")
    assert _hook_count(tiny) == 0
    broken = M.create_model("tiny_cnn", device="cpu")
    broken.fc = torch.nn.Linear(7, 10)  # wrong input size: the forward pass fails after conv1 ran
    with pytest.raises(RuntimeError):
        L.capture(broken, np.zeros((32, 32), np.uint8), ["conv1", "pool2"])
    assert _hook_count(broken) == 0
    with pytest.raises(ValueError, match="no layer 'nope'"):
        L.capture(tiny, np.zeros((32, 32), np.uint8), ["conv1", "nope"])
    assert _hook_count(tiny) == 0


def test_hooks_removed_after_grad_cam_error(tiny):
    with pytest.raises(ValueError, match="target"):
        L.grad_cam(tiny, np.zeros((32, 32), np.uint8), layer="conv2", target=99)
    assert _hook_count(tiny) == 0


def test_kernels(tiny, lite0):
    k = L.kernels(tiny, "conv1")
    assert k.shape == (16, 1, 3, 3)
    np.testing.assert_array_equal(k, tiny.conv1.weight.detach().numpy())
    k[:] = 0
    assert tiny.conv1.weight.abs().sum() > 0  # a copy
    stem = L.kernel_mosaic(L.kernels(lite0, "conv_stem"))
    assert stem.ndim == 3 and stem.shape[2] == 3 and stem.min() >= 0 and stem.max() <= 1
    pw = L.kernel_mosaic(L.kernels(lite0, "blocks.1.0.conv_pw"))
    assert pw.shape == (96, 16)
    with pytest.raises(ValueError, match="not a convolution"):
        L.kernels(tiny, "fc")


def test_tile_layout_and_index():
    maps = np.stack([np.full((3, 4), i, np.float32) + np.arange(4) for i in range(5)])
    m = L.tile(maps, pad=1)
    assert m.shape == (2 * 4 - 1, 3 * 5 - 1)
    # each tile normalised on its own: every tile spans 0..1 across its columns
    for i in range(5):
        r, c = divmod(i, 3)
        t = m[r * 4 : r * 4 + 3, c * 5 : c * 5 + 4]
        np.testing.assert_allclose(t[0], [0, 1 / 3, 2 / 3, 1], atol=1e-6)
        assert L.tile_index(m.shape, (3, 4), r * 4 + 1, c * 5 + 2, count=5) == i
    assert L.tile_index(m.shape, (3, 4), 3, 0, count=5) is None  # padding row
    assert L.tile_index(m.shape, (3, 4), 5, 11, count=5) is None  # empty sixth slot
    assert L.tile_index(m.shape, (3, 4), m.shape[0] + 1, 0, columns=3) is None  # below the mosaic (a third row)
    assert L.tile_index(m.shape, (3, 4), 0, -1, columns=3) is None  # left of it
    g = L.tile(maps, per_map=False, pad=0, columns=5)
    assert g.shape == (3, 20) and g.min() == 0 and g.max() == 1
    assert g[0, 0] == 0 and g[0, 19] == 1


# ----------------------------------------------------------------------------- Grad-CAM


def test_grad_cam_peaks_on_the_object(lite0):
    cat = np.asarray(Image.fromarray(sample("chelsea")).resize((300, 200)))
    canvas = np.full((448, 448, 3), 200, np.uint8)
    canvas[220:420, 120:420] = cat
    res = L.grad_cam(lite0, canvas)
    assert res.heatmap.shape == (224, 224) and res.image.shape == (224, 224, 3)
    assert res.label in {"tabby", "tiger cat", "Egyptian cat", "lynx"}
    # the cat's box in the model frame: resize 448 → 256, centre crop 224 (offset 16)
    s = 256 / 448
    box = np.zeros((224, 224), bool)
    box[int(220 * s) - 16 : int(420 * s) - 16, int(120 * s) - 16 : int(420 * s) - 16] = True
    peak = np.unravel_index(res.heatmap.argmax(), res.heatmap.shape)
    assert box[peak]
    assert res.heatmap[box].mean() > 3 * res.heatmap[~box].mean()
    assert _hook_count(lite0) == 0
    over = L.heatmap_overlay(res.image, res.heatmap, alpha=0.4)
    assert over.shape == (224, 224, 3) and over.dtype == np.uint8


def test_grad_cam_matches_manual_gradients(tiny):
    img = np.random.default_rng(1).integers(0, 256, (32, 32), dtype=np.uint8)
    res = L.grad_cam(tiny, img, layer="relu2", target=3)
    x = M.preprocess(img, tiny)
    a = F.relu(tiny.conv2(F.max_pool2d(F.relu(tiny.conv1(x)), 2))).detach().requires_grad_(True)
    score = tiny.fc(F.max_pool2d(a, 2).flatten(1))[0, 3]
    (g,) = torch.autograd.grad(score, a)
    cam = F.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=(32, 32), mode="bilinear", align_corners=False)[0, 0].detach().numpy()
    np.testing.assert_allclose(res.heatmap, L.normalize(cam), atol=1e-4)
    assert res.class_index == 3 and res.layer == "relu2"


# ----------------------------------------------------------------------------- playground


def test_conv2d_steps_textbook_example():
    image = np.arange(16, dtype=float).reshape(4, 4)
    kernel = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], float)
    res = L.conv2d_steps(image, kernel)
    ref = F.conv2d(torch.tensor(image)[None, None], torch.tensor(kernel)[None, None])[0, 0].numpy()
    assert res.output.shape == (2, 2) and len(res.steps) == 4
    np.testing.assert_allclose(res.output, ref)
    s = res.steps[1]
    assert (s.row, s.col, s.top, s.left) == (0, 1, 0, 1)
    np.testing.assert_array_equal(s.window, image[0:3, 1:4])
    np.testing.assert_array_equal(s.products, image[0:3, 1:4] * kernel)
    assert s.value == pytest.approx(s.products.sum())


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 0), (2, 1)])
def test_conv2d_steps_against_torch(stride, padding):
    rng = np.random.default_rng(stride * 10 + padding)
    image, kernel = rng.normal(size=(6, 7)), rng.normal(size=(3, 3))
    res = L.conv2d_steps(image, kernel, stride=stride, padding=padding, bias=0.5)
    ref = F.conv2d(
        torch.tensor(image)[None, None],
        torch.tensor(kernel)[None, None],
        torch.tensor([0.5], dtype=torch.float64),
        stride=stride,
        padding=padding,
    )[0, 0].numpy()
    np.testing.assert_allclose(res.output, ref, atol=1e-12)
    flipped = L.conv2d_steps(image, kernel, flip=True, padding=padding, stride=stride)
    ref_flip = F.conv2d(
        torch.tensor(image)[None, None],
        torch.tensor(kernel[::-1, ::-1].copy())[None, None],
        stride=stride,
        padding=padding,
    )[0, 0].numpy()
    np.testing.assert_allclose(flipped.output, ref_flip, atol=1e-12)
    with pytest.raises(ValueError, match="larger"):
        L.conv2d_steps(np.zeros((2, 2)), kernel)


X = torch.linspace(-6, 6, 241, dtype=torch.float64)
TORCH_ACT = {
    "relu": lambda x, a: F.relu(x),
    "prelu": lambda x, a: F.prelu(x, torch.tensor([a], dtype=x.dtype)),
    "elu": lambda x, a: F.elu(x, alpha=a),
    "sigmoid": lambda x, a: torch.sigmoid(x),
    "tanh": lambda x, a: torch.tanh(x),
}


@pytest.mark.parametrize("kind", sorted(TORCH_ACT))
@pytest.mark.parametrize("alpha", [None, 0.1, 2.0])
def test_activations_and_derivatives_against_torch(kind, alpha):
    a = {"prelu": 0.25, "elu": 1.0}.get(kind, 0.0) if alpha is None else alpha
    xs = X.clone().requires_grad_(True)
    y = TORCH_ACT[kind](xs, a)
    (dy,) = torch.autograd.grad(y.sum(), xs)
    np.testing.assert_allclose(L.activate(X.numpy(), kind, alpha=alpha), y.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(L.activation_grad(X.numpy(), kind, alpha=alpha), dy.numpy(), atol=1e-12)
    t = L.activate(X.float(), kind, alpha=alpha)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32


def test_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        L.activate(np.zeros(3), "swish")


@pytest.mark.parametrize("size,stride", [(2, None), (3, 1), (2, 1)])
def test_max_and_mean_pool_against_torch(size, stride):
    x = np.random.default_rng(size).normal(size=(6, 7))
    t = torch.tensor(x)[None, None]
    mx = L.pool2d_steps(x, size=size, stride=stride, mode="max")
    mean = L.pool2d_steps(x, size=size, stride=stride, mode="mean")
    np.testing.assert_allclose(mx.output, F.max_pool2d(t, size, stride)[0, 0].numpy())
    np.testing.assert_allclose(mean.output, F.avg_pool2d(t, size, stride)[0, 0].numpy(), atol=1e-12)
    for s in mx.steps:
        assert s.window[s.chosen] == s.value == s.window.max()


def test_stochastic_pool_is_seeded_and_proportional():
    x = np.array([[1.0, 3.0, 0.0, 0.0], [0.0, 4.0, 0.0, 0.0], [2.0, 2.0, 5.0, 5.0], [2.0, 2.0, 5.0, 5.0]])
    a = L.pool2d_steps(x, mode="stochastic", seed=7)
    b = L.pool2d_steps(x, mode="stochastic", seed=7)
    np.testing.assert_array_equal(a.output, b.output)
    first = a.steps[0]
    np.testing.assert_allclose(first.probabilities, [[1 / 8, 3 / 8], [0, 4 / 8]])
    assert a.output[0, 1] == 0 and a.steps[1].chosen is None  # all-zero window
    assert a.output[1, 0] == 2 and a.output[1, 1] == 5
    picks = np.array([L.pool2d_steps(x, mode="stochastic", seed=s).output[0, 0] for s in range(2000)])
    freq = {v: np.mean(picks == v) for v in (1.0, 3.0, 4.0)}
    assert abs(freq[1.0] - 1 / 8) < 0.04 and abs(freq[3.0] - 3 / 8) < 0.05 and abs(freq[4.0] - 1 / 2) < 0.05
    assert set(np.unique(picks)) <= {1.0, 3.0, 4.0}
    with pytest.raises(ValueError, match="non-negative"):
        L.pool2d_steps(-x, mode="stochastic")


def test_top_classes_equals_classify():
    from cnnwidgets.datasets import sample
    from cnnwidgets.engine import models

    net = models.shared_model("efficientnet_lite0")
    img = sample("chelsea")
    _, logits = L.capture(net, img, output=True)
    top = L.top_classes(net, logits, k=3)
    ref = models.classify(net, img, topk=3)
    assert [t for t, _ in top] == [t for t, _ in ref]
    np.testing.assert_allclose([p for _, p in top], [p for _, p in ref], atol=1e-4)


def test_as_maps_and_enlarge():
    maps = np.random.default_rng(0).random((4, 3, 3)).astype(np.float32)
    assert L.as_maps(maps) is maps
    vec = np.arange(10, dtype=np.float32)
    sq = L.as_maps(vec)
    assert sq.shape == (1, 4, 4) and np.array_equal(sq.reshape(-1)[:10], vec) and (sq.reshape(-1)[10:] == 0).all()
    img = np.arange(6, dtype=np.uint8).reshape(2, 3)
    np.testing.assert_array_equal(L.enlarge(img, 10), np.kron(img, np.ones((3, 3), np.uint8)))
    assert L.enlarge(img, 2) is img
