"""The plain-torch EfficientNet-Lite0/1/2 against timm's tf_efficientnet_lite<k> (timm imported here only, as the
reference): same state dict, same module names, same features and logits; building and classifying imports no timm."""

import json
import os
import subprocess
import sys

import pytest
import torch

from cnnwidgets.datasets import sample
from cnnwidgets.engine import models as M
from cnnwidgets.engine.layers import layer_names
from cnnwidgets.engine.models import efficientnet_lite as lite
from cnnwidgets.engine.models.onnx_export import constant_padding
from cnnwidgets.engine.models.outputs import features_and_logits
from cnnwidgets.engine.models.pretrained import convert_lite_state_dict, read_state_dict
from cnnwidgets.engine.models.runtime import fold_bn

CAT_LABELS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}
IMAGES = ("chelsea", "coffee", "astronaut", "rocket")


@pytest.fixture(scope="module", params=[0, 1, 2], ids=lambda v: f"lite{v}")
def pair(request):
    """(ours from create_model, timm's reference with the same packaged weights, variant)."""
    timm = pytest.importorskip("timm")
    variant = request.param
    ours = M.create_model(f"efficientnet_lite{variant}", pretrained=True, device="cpu")
    ref = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
    weights = M.efficientnet_lite_weights_path(variant)
    ref.load_state_dict(convert_lite_state_dict(read_state_dict(weights), ref), strict=True)
    return ours, ref.eval(), variant


def test_state_dict_keys_shapes_and_module_names_are_timms(pair):
    ours, ref, _ = pair
    assert isinstance(ours, lite.EfficientNetLite)
    a, b = ours.state_dict(), ref.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape and a[k].dtype == b[k].dtype for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in ref.named_modules()]
    assert layer_names(ours) == layer_names(ref)
    assert layer_names(ours, kinds="norm") == layer_names(ref, kinds="norm")
    assert ours.num_features == ref.num_features == 1280


def test_config_is_timms(pair):
    ours, ref, variant = pair
    cfg, pc = ours.cnnw_config, ref.pretrained_cfg
    assert cfg["input_size"] == tuple(pc["input_size"]) == (3,) + (lite.LITE_CONFIGS[variant][2],) * 2
    assert cfg["mean"] == tuple(pc["mean"]) and cfg["std"] == tuple(pc["std"])
    assert cfg["crop_pct"] == pc["crop_pct"] and cfg["interpolation"] == pc["interpolation"]
    for key in ("input_size", "mean", "std", "crop_pct", "interpolation", "pool_size", "first_conv", "classifier"):
        got, want = ours.pretrained_cfg[key], pc[key]
        assert (tuple(got) if isinstance(got, list) else got) == (tuple(want) if isinstance(want, list) else want)


def test_features_and_logits_match_timm_on_samples(pair):
    ours, ref, _ = pair
    x = M.preprocess([sample(n) for n in IMAGES], ours)
    with torch.no_grad():
        f_ours, l_ours = features_and_logits(ours, x)
        f_ref, l_ref = features_and_logits(ref, x)
        fmap_diff = (ours.forward_features(x) - ref.forward_features(x)).abs().max().item()
    assert f_ours.shape == f_ref.shape == (len(IMAGES), 1280) and l_ours.shape == l_ref.shape == (len(IMAGES), 1000)
    assert fmap_diff <= 1e-5
    assert (f_ours - f_ref).abs().max().item() <= 1e-5
    assert (l_ours - l_ref).abs().max().item() <= 1e-5
    assert torch.equal(l_ours.argmax(1), l_ref.argmax(1))
    labels = ours.cnnw_config["labels"]
    assert labels[int(l_ours[0].argmax())] in CAT_LABELS
    assert M.classify(ours, sample("chelsea"), topk=1, backend="torch")[0][0] in CAT_LABELS


def test_bn_folding_and_constant_padding_recognise_our_layers(pair):
    ours, _, _ = pair
    x = M.preprocess([sample("chelsea"), sample("coffee")], ours)
    with torch.no_grad():
        want = ours(x)
        folded = fold_bn(ours)
        assert folded is not ours
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        assert any(type(m) is lite.Conv2dSame for m in folded.modules())
        assert (folded(x) - want).abs().max().item() <= 1e-3
        fixed = constant_padding(folded, ours.cnnw_config)
        assert not any(type(m) is lite.Conv2dSame for m in fixed.modules())
        assert (fixed(x) - folded(x)).abs().max().item() <= 1e-5
    assert any(type(m) is lite.Conv2dSame for m in ours.modules())  # the model itself is not changed


def test_new_head_and_gray_input():
    five = M.create_model("efficientnet_lite0", num_classes=5, in_chans=1, device="cpu")
    assert five.classifier.out_features == 5 and five.num_classes == 5 and five.cnnw_config["labels"] is None
    assert type(five.conv_stem) is lite.Conv2dSame and five.conv_stem.in_channels == 1
    assert five(torch.zeros(2, 1, 224, 224)).shape == (2, 5)


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="variant"):
        lite.EfficientNetLite(3)


def test_building_and_classifying_imports_no_timm(tmp_path):
    code = (
        "import json, sys\n"
        "from cnnwidgets.datasets import sample\n"
        "from cnnwidgets.engine.models import classify, create_model\n"
        "m = create_model('efficientnet_lite0', pretrained=True)\n"
        "top = classify(m, sample('chelsea'), topk=1)\n"
        "print(json.dumps({'top': top[0][0], 'mods': sorted(k for k in sys.modules "
        "if k.split('.')[0] in ('timm', 'torchvision'))}))\n"
    )
    env = dict(os.environ, CNNWIDGETS_CACHE_DIR=str(tmp_path), CNNWIDGETS_DEVICE="cpu")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["top"] in CAT_LABELS
    assert out["mods"] == [], out["mods"]
