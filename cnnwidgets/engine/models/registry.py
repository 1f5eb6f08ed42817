"""The model registry: :func:`list_models` names what can be built, :func:`create_model` builds it.

Registered names map to entry points with one signature, ``fn(pretrained=False, *, num_classes=None,
in_chans=None)`` (see :mod:`.builders`); torchvision and timm architecture names resolve to the entry point of
their family, bound to the architecture.
"""

from __future__ import annotations

import fnmatch
import functools
import os

import numpy as np
import torch
from torch import nn

from cnnwidgets.device import get_device

from . import builders
from .provenance import mark_built

__all__ = ["register_model", "list_models", "create_model", "model_config"]

_REGISTRY: dict[str, tuple] = {}


def register_model(name: str, entry_point, description: str = "") -> None:
    """Make ``name`` buildable by :func:`create_model` and listed by :func:`list_models`.

    Parameters
    ----------
    name : str
    entry_point : callable
        ``entry_point(pretrained=False, *, num_classes=None, in_chans=None)`` returning an ``nn.Module`` with
        ``cnnw_config`` set (``input_size``, ``mean``, ``std``, ``labels``, ``interpolation``, ``crop_pct``,
        ``pretrained``, ``name``, ``source``).
    description : str
        One line shown to users.
    """
    _REGISTRY[name] = (entry_point, description)


register_model(
    "efficientnet_lite0",
    builders.efficientnet_lite0,
    "EfficientNet-Lite0, ImageNet-1k weights shipped offline (224×224, 1000 classes)",
)
register_model(
    "efficientnet_lite1",
    builders.efficientnet_lite1,
    "EfficientNet-Lite1, ImageNet-1k weights shipped offline (240×240, 1000 classes)",
)
register_model(
    "efficientnet_lite2",
    builders.efficientnet_lite2,
    "EfficientNet-Lite2, ImageNet-1k weights shipped offline (260×260, 1000 classes)",
)
register_model(
    "tiny_cnn",
    builders.tiny_cnn,
    "conv–ReLU–pool ×2 + FC teaching CNN, 1×32×32 input, 10 classes (no pretrained weights)",
)
register_model("lenet5", builders.lenet5, "LeNet-5 (LeCun 1998), 1×32×32 input, 10 classes (no pretrained weights)")
register_model(
    "lenet5_rbf",
    builders.lenet5_rbf,
    "LeNet-5 with Euclidean RBF output units (learned centres), 1×32×32 input, 10 classes (no pretrained weights)",
)


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


def _entry_point(name: str):
    """The entry point that builds ``name``."""
    source, arch = _resolve(name)
    if source == "cnnwidgets":
        return _REGISTRY[arch][0]
    family = builders.torchvision_model if source == "torchvision" else builders.timm_model
    return functools.partial(family, arch)


def create_model(
    name: str,
    *,
    pretrained=True,
    num_classes: int | None = None,
    in_chans: int | None = None,
    device=None,
    seed: int | None = None,
) -> nn.Module:
    """Build a model by name, in eval mode, on the chosen device.

    Parameters
    ----------
    name : str
        A registered name (:func:`list_models`), a torchvision or a timm architecture
        (optionally prefixed ``"torchvision/"`` or ``"timm/"``; torchvision wins for bare names).
    pretrained : bool or str or os.PathLike
        ``True``: the weights available offline (``efficientnet_lite0``/``1``/``2``: the packaged
        ImageNet weights; torchvision/timm: the file in the torch hub cache, else
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
    seed : int, optional
        Seeds the random initial weights (the same seed gives the same model); torch's global random state is
        left as it was. None draws from it.

    Returns
    -------
    torch.nn.Module
        In eval mode, with ``model.cnnw_config`` (see :mod:`cnnwidgets.engine.models`).

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
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")
    dev = get_device(device)
    build = _entry_point(name)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(int(seed))
        model = build(pretrained=pretrained, num_classes=num_classes, in_chans=in_chans)
    cfg = model.cnnw_config
    cfg["input_size"] = tuple(int(v) for v in cfg["input_size"])
    cfg["mean"] = tuple(float(v) for v in cfg["mean"])
    cfg["std"] = tuple(float(v) for v in cfg["std"])
    if cfg["labels"] is not None:
        cfg["labels"] = list(cfg["labels"])
    model = model.to(dev).eval()
    if pretrained is True and num_classes is None and in_chans is None and builders.pretrained_file(name):
        mark_built(model, name)  # lets the runtime tell whether it is still the packaged model
    return model


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
