"""Registry entry points: one function per model family, all with one signature.

Each entry point is called as ``fn(pretrained=False, *, num_classes=None, in_chans=None)`` and returns the
model with ``model.cnnw_config`` set (see :mod:`cnnwidgets.engine.models`). ``pretrained`` is True (the
weights available offline), False (random weights) or a path to a state dict. torchvision and timm
architectures share one entry point each, bound to the architecture name with :func:`functools.partial`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .efficientnet_lite import EfficientNetLite
from .nets import LeNet5, TinyCNN
from .pretrained import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    convert_lite_state_dict,
    efficientnet_lite_weights_path,
    hub_cached,
    imagenet_labels,
    read_state_dict,
    unavailable,
)
from .surgery import last_linear, reshape_io

__all__ = [
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "tiny_cnn",
    "lenet5",
    "lenet5_rbf",
    "torchvision_model",
    "timm_model",
    "pretrained_file",
]

_LITE_NAMES = {"efficientnet_lite0": 0, "efficientnet_lite1": 1, "efficientnet_lite2": 2}


def pretrained_file(name: str) -> Path | None:
    """The weights file ``create_model(name, pretrained=True)`` loads, for the registered models whose weights come
    in a package (the EfficientNet-Lite family); None for other names or when the package is not installed."""
    variant = _LITE_NAMES.get(name)
    if variant is None:
        return None
    try:
        return efficientnet_lite_weights_path(variant)
    except Exception:  # the weights package is missing or broken: create_model says why
        return None


def efficientnet_lite0(pretrained=False, *, num_classes=None, in_chans=None) -> nn.Module:
    """EfficientNet-Lite0 (timm's ``tf_efficientnet_lite0``, 224×224); ``pretrained=True``: the packaged ImageNet weights."""
    return _efficientnet_lite(0, pretrained, num_classes=num_classes, in_chans=in_chans)


def efficientnet_lite1(pretrained=False, *, num_classes=None, in_chans=None) -> nn.Module:
    """EfficientNet-Lite1 (timm's ``tf_efficientnet_lite1``, 240×240); ``pretrained=True``: the packaged ImageNet weights."""
    return _efficientnet_lite(1, pretrained, num_classes=num_classes, in_chans=in_chans)


def efficientnet_lite2(pretrained=False, *, num_classes=None, in_chans=None) -> nn.Module:
    """EfficientNet-Lite2 (timm's ``tf_efficientnet_lite2``, 260×260); ``pretrained=True``: the packaged ImageNet weights."""
    return _efficientnet_lite(2, pretrained, num_classes=num_classes, in_chans=in_chans)


def _efficientnet_lite(variant, pretrained, *, num_classes, in_chans) -> nn.Module:
    """:class:`~cnnwidgets.engine.models.efficientnet_lite.EfficientNetLite` ``variant`` (timm's
    ``tf_efficientnet_lite<variant>`` in plain torch: same modules, names and state dict, no timm import) with the
    packaged weights; input size and normalisation from its timm-style ``pretrained_cfg``."""
    model = EfficientNetLite(variant)
    cfg = _timm_config(model, f"efficientnet_lite{variant}")
    cfg["source"] = "cnnwidgets"
    if pretrained is True:
        pretrained = efficientnet_lite_weights_path(variant)
    if pretrained:
        state = convert_lite_state_dict(read_state_dict(pretrained), model)
        model.load_state_dict(state, strict=True)
        cfg["labels"] = imagenet_labels()
        cfg["pretrained"] = str(pretrained)
    reshape_io(model, cfg, num_classes=num_classes, in_chans=in_chans)
    model.cnnw_config = cfg
    return model


def tiny_cnn(pretrained=False, *, num_classes=None, in_chans=None) -> nn.Module:
    """:class:`~cnnwidgets.engine.models.TinyCNN`; no published weights (``pretrained=True`` means random ones)."""
    return _small("tiny_cnn", TinyCNN(num_classes or 10, in_chans or 1), in_chans or 1, pretrained)


def lenet5(pretrained=False, *, num_classes=None, in_chans=None, output="softmax", centres="learned") -> nn.Module:
    """:class:`~cnnwidgets.engine.models.LeNet5`; no published weights (``pretrained=True`` means random ones).

    ``output="rbf"``: Euclidean RBF output units with ``centres`` "learned" or "fixed" (registered as ``lenet5_rbf``).
    """
    net = LeNet5(num_classes or 10, in_chans or 1, output=output, centres=centres)
    return _small("lenet5" if output == "softmax" else "lenet5_rbf", net, in_chans or 1, pretrained)


def lenet5_rbf(pretrained=False, *, num_classes=None, in_chans=None) -> nn.Module:
    """:class:`~cnnwidgets.engine.models.LeNet5` with learned Euclidean RBF output units (``lenet5(output="rbf")``)."""
    return lenet5(pretrained, num_classes=num_classes, in_chans=in_chans, output="rbf")


def _small(name, model, in_chans, pretrained):
    """A teaching CNN built with its final sizes, loaded from a state dict when ``pretrained`` is a path."""
    if pretrained and pretrained is not True:
        model.load_state_dict(read_state_dict(pretrained), strict=True)
    model.cnnw_config = {
        "name": name,
        "input_size": (in_chans, 32, 32),
        "mean": (0.5,) * in_chans,
        "std": (0.5,) * in_chans,
        "labels": None,
        "interpolation": "bilinear",
        "crop_pct": 1.0,
        "pretrained": str(pretrained) if pretrained and pretrained is not True else None,
        "source": "cnnwidgets",
    }
    return model


def torchvision_model(arch, pretrained=False, *, num_classes=None, in_chans=None) -> nn.Module:
    """A torchvision classification architecture; preprocessing from its default weights' transforms."""
    import torchvision.models as tvm

    model = tvm.get_model(arch, weights=None)
    cfg = {
        "name": arch,
        "input_size": (3, 224, 224),
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "labels": None,
        "interpolation": "bilinear",
        "crop_pct": 0.875,
        "pretrained": None,
        "source": "torchvision",
    }
    weights = None
    try:
        weights = tvm.get_model_weights(arch).DEFAULT
    except Exception:  # architectures without published weights
        weights = None
    if weights is not None:
        tr = weights.transforms()
        crop = int(getattr(tr, "crop_size", [224])[0])
        resize = int(getattr(tr, "resize_size", [crop])[0])
        cfg["input_size"] = (3, crop, crop)
        cfg["crop_pct"] = crop / resize
        cfg["mean"], cfg["std"] = tuple(tr.mean), tuple(tr.std)
        cfg["interpolation"] = str(getattr(tr, "interpolation", "bilinear").value)
    if pretrained is True:
        cached = hub_cached(weights.url if weights is not None else None)
        if cached is None:
            raise unavailable(arch, "not in the torch hub cache " + str(Path(torch.hub.get_dir()) / "checkpoints"))
        pretrained = cached
    if pretrained:
        model.load_state_dict(read_state_dict(pretrained), strict=True)
        cfg["pretrained"] = str(pretrained)
        categories = weights.meta.get("categories") if weights is not None else None
        out = last_linear(model)
        if categories and out is not None and out[1].out_features == len(categories):
            cfg["labels"] = list(categories)
    reshape_io(model, cfg, num_classes=num_classes, in_chans=in_chans)
    model.cnnw_config = cfg
    return model


def timm_model(arch, pretrained=False, *, num_classes=None, in_chans=None) -> nn.Module:
    """A timm architecture; preprocessing from its ``pretrained_cfg``."""
    import timm

    model = timm.create_model(arch, pretrained=False)
    cfg = _timm_config(model, arch)
    if pretrained is True:
        cached = hub_cached((getattr(model, "pretrained_cfg", {}) or {}).get("url"))
        if cached is None:
            raise unavailable(arch, "timm would fetch them from the Hugging Face Hub")
        pretrained = cached
    if pretrained:
        model.load_state_dict(read_state_dict(pretrained), strict=True)
        cfg["pretrained"] = str(pretrained)
        if getattr(model, "num_classes", 0) == 1000:
            cfg["labels"] = imagenet_labels()
    reshape_io(model, cfg, num_classes=num_classes, in_chans=in_chans)
    model.cnnw_config = cfg
    return model


def _timm_config(model, name):
    pc = dict(getattr(model, "pretrained_cfg", {}) or {})
    return {
        "name": name,
        "input_size": tuple(pc.get("input_size", (3, 224, 224))),
        "mean": tuple(pc.get("mean", IMAGENET_MEAN)),
        "std": tuple(pc.get("std", IMAGENET_STD)),
        "labels": None,
        "interpolation": pc.get("interpolation", "bicubic"),
        "crop_pct": float(pc.get("crop_pct", 0.875)),
        "pretrained": None,
        "source": "timm",
    }
