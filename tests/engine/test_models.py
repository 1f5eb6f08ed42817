"""Model registry, offline weights, preprocessing, classification and embeddings."""

import os
import re
import socket

import numpy as np
import pytest
import torch
from PIL import Image

from cnnwidgets.datasets import digits, sample
from cnnwidgets.engine import models as M
from cnnwidgets.engine.models.pretrained import convert_lite0_state_dict, convert_lite_state_dict
from cnnwidgets.engine.models.runtime import fold_bn

CAT_LABELS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# ----------------------------------------------------------------------------- efficientnet_lite0


def test_lite0_classifies_samples(lite0):
    cat = M.classify(lite0, sample("chelsea"))
    assert cat[0][0] in CAT_LABELS, cat
    coffee = M.classify(lite0, sample("coffee"), topk=3)
    assert coffee[0][0] in {"espresso", "cup"}, coffee
    assert len(coffee) == 3
    probs = [p for _, p in cat]
    assert probs == sorted(probs, reverse=True) and 0 < probs[0] <= 1


def test_lite0_key_mapping_covers_package_weights_exactly(lite0):
    import timm

    state = torch.load(M.efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    ref = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    converted = convert_lite0_state_dict(state, ref)
    assert set(converted) == set(ref.state_dict())
    for k, v in converted.items():
        assert v.shape == ref.state_dict()[k].shape, k
    # what create_model loaded is the package's tensors, unchanged
    got = lite0.state_dict()
    assert torch.equal(got["blocks.3.1.conv_dw.weight"], state["_blocks.6._depthwise_conv.weight"])
    assert torch.equal(got["classifier.weight"], state["_fc.weight"])


# ----------------------------------------------------------------------------- efficientnet_lite1, _lite2

LITE_SIZES = [("efficientnet_lite1", 1, 240), ("efficientnet_lite2", 2, 260)]


@pytest.fixture(scope="module", params=LITE_SIZES, ids=[n for n, _, _ in LITE_SIZES])
def larger_lite(request):
    name, variant, side = request.param
    return M.create_model(name, device="cpu"), variant, side


def test_larger_lite_key_mapping_maps_every_tensor_once(larger_lite):
    import timm

    model, variant, _ = larger_lite
    state = torch.load(M.efficientnet_lite_weights_path(variant), map_location="cpu", weights_only=True)
    ref = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
    converted = convert_lite_state_dict(state, ref)
    assert len(converted) == len(state)  # no two package keys land on one name
    assert set(converted) == set(ref.state_dict())  # and every model tensor gets one
    for k, v in converted.items():
        assert v.shape == ref.state_dict()[k].shape, k
    got = model.state_dict()
    assert torch.equal(got["classifier.weight"], state["_fc.weight"])
    last = max(int(k.split(".")[1]) for k in state if k.startswith("_blocks."))
    stage, index = len(model.blocks) - 1, len(model.blocks[-1]) - 1
    assert torch.equal(got[f"blocks.{stage}.{index}.conv_dw.weight"], state[f"_blocks.{last}._depthwise_conv.weight"])


def test_larger_lite_input_size_and_chelsea_is_a_cat(larger_lite):
    model, variant, side = larger_lite
    cfg = model.cnnw_config
    assert cfg["input_size"] == (3, side, side) and cfg["name"] == f"efficientnet_lite{variant}"
    assert len(cfg["labels"]) == 1000 and cfg["pretrained"].endswith(".pth")
    assert M.preprocess(sample("chelsea"), model).shape == (1, 3, side, side)
    cat = M.classify(model, sample("chelsea"), topk=3)
    assert cat[0][0] in CAT_LABELS, cat
    vecs = M.embed(model, [sample("chelsea"), sample("coffee")])
    assert vecs.shape == (2, 1280)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-4)


def test_lite_variant_without_package_is_refused():
    with pytest.raises(ValueError, match="variant"):
        M.efficientnet_lite_weights_path(3)


def test_config_and_labels(lite0):
    from torchvision.models import ResNet18_Weights

    cfg = lite0.cnnw_config
    for key in ("name", "input_size", "mean", "std", "labels", "interpolation", "crop_pct"):
        assert key in cfg
    assert cfg["name"] == "efficientnet_lite0"
    assert cfg["input_size"] == (3, 224, 224)
    assert cfg["labels"] == ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    assert not lite0.training


def test_classify_batch_forms_agree(lite0):
    imgs = [sample("chelsea"), sample("chelsea")[::-1]]
    as_list = M.classify(lite0, imgs, topk=2)
    as_array = M.classify(lite0, np.stack(imgs), topk=2)
    assert len(as_list) == 2 and all(len(r) == 2 for r in as_list)
    assert [r[0][0] for r in as_list] == [r[0][0] for r in as_array]
    single = M.classify(lite0, imgs[1], topk=2)
    for a, b, c in zip(single, as_list[1], as_array[1]):
        assert a[0] == b[0] == c[0]
        assert a[1] == pytest.approx(b[1], abs=1e-4) and a[1] == pytest.approx(c[1], abs=1e-4)


def test_preprocess_matches_timm_transform(lite0):
    import timm.data

    cfg = timm.data.resolve_data_config({}, model=lite0)
    tf = timm.data.create_transform(**cfg)
    img = sample("chelsea")
    ref = tf(Image.fromarray(img)).unsqueeze(0)
    ours = M.preprocess(img, lite0)
    assert ours.shape == ref.shape == (1, 3, 224, 224)
    assert ours.dtype == torch.float32 and ours.device.type == "cpu"
    assert float((ours - ref).abs().mean()) < 0.02


def test_preprocess_gray_and_list(lite0):
    x = M.preprocess([sample("camera"), sample("chelsea")], lite0)
    assert x.shape == (2, 3, 224, 224)
    assert torch.allclose(x[0, 0], x[0, 1]) and torch.allclose(x[0, 1], x[0, 2])


def test_embed_is_pooled_normalised_penultimate(lite0):
    imgs = [sample("chelsea"), sample("coffee"), sample("astronaut")]
    e = M.embed(lite0, imgs, batch_size=2)
    assert e.shape == (3, 1280) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    with torch.no_grad():
        x = M.preprocess(imgs, lite0)
        f = lite0.forward_head(lite0.forward_features(x), pre_logits=True)
        ref = torch.nn.functional.normalize(f, dim=1).numpy()
    np.testing.assert_allclose(e, ref, atol=1e-4)
    e1 = M.embed(lite0, imgs, batch_size=1)
    np.testing.assert_allclose(e, e1, atol=1e-4)


def test_embed_paths_with_reduced_jpeg_decoding(lite0, tmp_path):
    big = np.asarray(Image.fromarray(sample("astronaut")).resize((1400, 1400), Image.BICUBIC))
    paths = []
    for name, arr in (("big.jpg", big), ("cat.png", sample("chelsea"))):
        p = tmp_path / name
        Image.fromarray(arr).save(p, quality=95)
        paths.append(str(p))
    from_paths = M.embed(lite0, paths)
    from_arrays = M.embed(lite0, [np.asarray(Image.open(p).convert("RGB")) for p in paths])
    cos = (from_paths * from_arrays).sum(1)
    assert cos.min() > 0.99, cos


def test_embed_bf16_within_tolerance_and_same_neighbours(lite0):
    names = ["chelsea", "coffee", "astronaut", "camera", "coins", "rocket", "cat", "page"]
    imgs = [sample(n) for n in names if n in set(__import__("cnnwidgets").datasets.list_samples())]
    fp32 = M.embed(lite0, imgs, precision="fp32")
    bf16 = M.embed(lite0, imgs, precision="bf16")
    cos = (fp32 * bf16).sum(1)
    assert cos.min() >= 0.99, cos  # the stated tolerance
    sim32, sim16 = fp32 @ fp32.T, bf16 @ bf16.T
    np.fill_diagonal(sim32, -2)
    np.fill_diagonal(sim16, -2)
    # nearest neighbours unchanged, up to ties: where bf16 picks another image, fp32 rated both within 0.005
    rows = np.arange(len(imgs))
    gap = sim32[rows, sim32.argmax(1)] - sim32[rows, sim16.argmax(1)]
    assert (gap <= 0.005).all(), gap
    assert (sim32.argmax(1) == sim16.argmax(1)).mean() >= 0.75
    assert M.embed(lite0, imgs[:1], precision="auto").shape == (1, 1280)
    with pytest.raises(ValueError, match="precision"):
        M.embed(lite0, imgs[:1], precision="fp8")


def test_num_classes_and_in_chans_keep_backbone(lite0):
    five = M.create_model("efficientnet_lite0", num_classes=5, device="cpu")
    assert five(torch.zeros(1, 3, 224, 224)).shape == (1, 5)
    assert five.cnnw_config["labels"] is None
    assert torch.equal(five.conv_head.weight, lite0.conv_head.weight)

    gray = M.create_model("efficientnet_lite0", in_chans=1, device="cpu")
    assert gray.cnnw_config["input_size"] == (1, 224, 224)
    img = sample("camera")
    with torch.no_grad():
        a = gray(M.preprocess(img, gray))
        b = lite0(M.preprocess(np.repeat(img[:, :, None], 3, axis=2), lite0))
    torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)


# ----------------------------------------------------------------------------- teaching models


def test_tiny_cnn_on_digits_and_shapes():
    m = M.create_model("tiny_cnn", device="cpu")
    names = [n for n, _ in m.named_children()]
    assert names[:6] == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2"] and names[-1] == "fc"
    d = digits()
    x = M.preprocess(list(d.images[:4]), m)
    assert x.shape == (4, 1, 32, 32)
    assert m(x).shape == (4, 10)
    rgb = M.create_model("tiny_cnn", in_chans=3, num_classes=4, device="cpu")
    assert rgb(torch.zeros(2, 3, 32, 32)).shape == (2, 4)
    assert M.embed(rgb, [sample("chelsea")]).shape == (1, 32 * 8 * 8)


def test_lenet5_shapes_and_saved_weights(tmp_path):
    m = M.create_model("lenet5", device="cpu")
    assert m(torch.zeros(3, 1, 32, 32)).shape == (3, 10)
    path = tmp_path / "lenet.pth"
    torch.save(m.state_dict(), path)
    again = M.create_model("lenet5", pretrained=path, device="cpu")
    for (k, a), b in zip(m.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k
    assert M.embed(m, digits().images[:2]).shape == (2, 84)


# ----------------------------------------------------------------------------- torchvision / timm by name


def test_external_random_weights_without_network(no_network):
    r = M.create_model("resnet18", pretrained=False, device="cpu")
    assert r.cnnw_config["source"] == "torchvision" and r.cnnw_config["labels"] is None
    assert r(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)
    t = M.create_model("timm/resnet10t", pretrained=False, num_classes=3, device="cpu")
    assert t.cnnw_config["source"] == "timm"
    assert t(torch.zeros(1, 3, 64, 64)).shape == (1, 3)
    assert M.embed(t, [sample("coffee")]).shape == (1, t.num_features)


def test_pretrained_download_refused_with_clear_error(no_network):
    for name in ("resnet18", "timm/resnet10t"):
        with pytest.raises(M.PretrainedWeightsUnavailable, match=r"download.*pretrained=False.*pretrained='/path"):
            M.create_model(name, pretrained=True, device="cpu")


def test_weights_from_disk_and_hub_cache(tmp_path, monkeypatch, no_network):
    src = M.create_model("resnet18", pretrained=False, device="cpu")
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": src.state_dict()}, path)
    loaded = M.create_model("resnet18", pretrained=str(path), device="cpu")
    assert torch.equal(loaded.fc.weight, src.fc.weight)
    assert len(loaded.cnnw_config["labels"]) == 1000

    from torchvision.models import ResNet18_Weights

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    cached = tmp_path / "hub" / "checkpoints" / os.path.basename(ResNet18_Weights.DEFAULT.url)
    cached.parent.mkdir(parents=True)
    torch.save(src.state_dict(), cached)
    from_cache = M.create_model("resnet18", device="cpu")
    assert torch.equal(from_cache.conv1.weight, src.conv1.weight)


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown model 'no_such_net'"):
        M.create_model("no_such_net")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        M.create_model("tiny_cnn", pretrained=tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"w": [1, 2, 3]}, bad)
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        M.create_model("tiny_cnn", pretrained=bad)
    with pytest.raises(ValueError, match="num_classes"):
        M.create_model("tiny_cnn", num_classes=0)
    with pytest.raises(ValueError, match="cnnw_config"):
        M.preprocess(sample("camera"), torch.nn.Conv2d(1, 1, 3))


def test_list_models():
    assert M.list_models()[:5] == [
        "efficientnet_lite0",
        "efficientnet_lite1",
        "efficientnet_lite2",
        "tiny_cnn",
        "lenet5",
    ]
    assert M.list_models("*lite*") == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    ext = M.list_models("resnet18", external=True)
    assert "torchvision/resnet18" in ext and "timm/resnet18" in ext


def test_bn_folding_matches_and_leaves_model_alone(lite0):
    from cnnwidgets.engine.models.efficientnet_lite import BatchNormAct2d

    imgs = [sample("chelsea"), sample("coffee"), sample("astronaut")]
    before = {k: v.clone() for k, v in lite0.state_dict().items()}
    n_bn = sum(isinstance(m, BatchNormAct2d) for m in lite0.modules())
    folded = fold_bn(lite0)
    assert folded is not lite0 and fold_bn(lite0) is folded  # cached per model
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    # the user's model is untouched
    assert sum(isinstance(m, BatchNormAct2d) for m in lite0.modules()) == n_bn == 49
    assert all(torch.equal(v, lite0.state_dict()[k]) for k, v in before.items())
    fused = M.embed(lite0, imgs)
    plain = M.embed(lite0, imgs, fuse_bn=False)
    np.testing.assert_allclose(fused, plain, atol=1e-4)
    with torch.inference_mode():
        x = M.preprocess(imgs, lite0)
        np.testing.assert_allclose(folded(x).numpy(), lite0(x).numpy(), atol=1e-4, rtol=0)
    # bf16 runs unfolded (folded weights round worse under autocast)
    np.testing.assert_array_equal(
        M.embed(lite0, imgs, precision="bf16"), M.embed(lite0, imgs, precision="bf16", fuse_bn=False)
    )
    a, b = M.classify(lite0, imgs, topk=3), M.classify(lite0, imgs, topk=3, fuse_bn=False)
    for ra, rb in zip(a, b):
        assert [l for l, _ in ra] == [l for l, _ in rb]
        np.testing.assert_allclose([p for _, p in ra], [p for _, p in rb], atol=1e-4)


def test_bn_folding_follows_weights_mode_and_hooks():
    model = M.create_model("timm/mobilenetv3_small_050", pretrained=False)
    with torch.no_grad():
        for bn in model.modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                bn.running_mean.uniform_(-1, 1)
                bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 224, 224)
    first = fold_bn(model)
    assert first is not model
    with torch.no_grad():
        np.testing.assert_allclose(first(x).numpy(), model(x).numpy(), atol=1e-4, rtol=0)
        model.conv_stem.weight.mul_(2)  # weights changed: the folded copy is rebuilt
    second = fold_bn(model)
    assert second is not first
    with torch.no_grad():
        np.testing.assert_allclose(second(x).numpy(), model(x).numpy(), atol=1e-4, rtol=0)
    handle = model.conv_stem.register_forward_hook(lambda *a: None)  # hooks must see the real layers
    assert fold_bn(model) is model
    handle.remove()
    model.train()
    assert fold_bn(model) is model
    tiny = M.create_model("tiny_cnn")  # nothing to fold
    assert fold_bn(tiny) is tiny


def test_shared_model_is_built_once_per_name_weights_and_device():
    a = M.shared_model("tiny_cnn", pretrained=False, device="cpu")
    assert M.shared_model("tiny_cnn", pretrained=False, device="cpu") is a
    assert M.shared_model("lenet5", pretrained=False, device="cpu") is not a
    assert a.cnnw_config["name"] == "tiny_cnn" and not a.training


def test_model_cache_rebuilds_on_a_new_version_evicts_and_forgets_dead_owners():
    import gc

    cache = M.ModelCache(maxsize=2)
    built = []

    def build(tag):
        built.append(tag)
        return tag

    assert cache.get("a", lambda: build("a1"), version=1) == "a1"
    assert cache.get("a", lambda: build("a2"), version=1) == "a1"
    assert cache.get("a", lambda: build("a3"), version=2) == "a3"
    cache.get("b", lambda: build("b"))
    cache.get("c", lambda: build("c"))  # "a" is the least recently used
    assert len(cache) == 2 and cache.get("a", lambda: build("a4"), version=2) == "a4"
    owner = torch.nn.Linear(2, 2)
    cache.get("owned", lambda: build("o"), owner=owner)
    assert cache.get("owned", lambda: build("o2")) == "o"
    del owner
    gc.collect()
    assert cache.get("owned", lambda: build("o3")) == "o3"
