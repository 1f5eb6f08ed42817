"""Looking inside a model: the kind of each layer, dotted layer names, forward hooks, captured activations, kernels."""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from cnnwidgets.engine import checks
from cnnwidgets.engine.models import model_config, preprocess

KINDS = ("conv", "act", "pool", "linear", "norm")

_ACT_TYPES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Softplus,
)
_POOL_TYPES = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LPPool2d)
_NORM_TYPES = (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)


def layer_kind(module: nn.Module) -> str | None:
    """``"conv"``, ``"act"``, ``"pool"``, ``"linear"``, ``"norm"`` or None for a module.

    Recognises torch's layer classes and their subclasses (timm's ``Conv2dSame`` is a conv,
    its ``BatchNormAct2d`` a norm whose ``.act`` child is the activation), and timm's
    activation and pooling modules by class name.
    """
    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, _ACT_TYPES):
        return "act"
    if isinstance(module, _POOL_TYPES):
        return "pool"
    if isinstance(module, _NORM_TYPES):
        return "norm"
    name = type(module).__name__
    if name in ("SelectAdaptivePool2d", "BlurPool2d"):
        return "pool"
    if name in ("Swish", "SiLU", "HardSwish", "HardSigmoid", "GELUTanh", "QuickGELU", "Sigmoid", "Tanh", "Mish"):
        return "act"
    return None


def layer_names(model: nn.Module, kinds=("conv", "act", "pool", "linear")) -> list[str]:
    """Dotted names of the layers of the given kinds, in the order they are registered.

    Parameters
    ----------
    model : torch.nn.Module
    kinds : str or iterable of str
        Any of :data:`KINDS`.

    Returns
    -------
    list of str
        Names usable with ``model.get_submodule`` and :func:`capture` (a pool that wraps
        another pool, like timm's ``SelectAdaptivePool2d``, is listed once, as the outer one).
    """
    if not isinstance(kinds, (str, list, tuple, set, frozenset)):
        raise ValueError(f"kinds must be a kind or a sequence of kinds from {KINDS}, got {checks.short(kinds)}")
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    bad = [k for k in kinds if not isinstance(k, str) or k not in KINDS]
    if bad:
        raise ValueError(f"unknown layer kinds {bad}; choose from {KINDS}")
    names, pools = [], []
    for name, mod in model.named_modules():
        kind = layer_kind(mod)
        if kind is None or kind not in kinds or not name:
            continue
        if kind == "pool" and any(name.startswith(p + ".") for p in pools):
            continue
        if kind == "pool":
            pools.append(name)
        names.append(name)
    return names


def _modules(model: nn.Module, layers, what: str = "layers") -> dict[str, nn.Module]:
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(layers, (list, tuple)) or not all(isinstance(n, str) for n in layers):
        raise ValueError(f"{what} must be a dotted layer name or a list of them, got {checks.short(layers)}")
    out = {}
    for name in layers:
        try:
            out[name] = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"model {type(model).__name__} has no layer {name!r}; see layer_names(model)") from None
    return out


@contextlib.contextmanager
def hooks(model: nn.Module, layers, *, keep_graph: bool = False):
    """Record the outputs of ``layers`` during forward passes inside the ``with`` block.

    Parameters
    ----------
    model : torch.nn.Module
    layers : str or iterable of str
        Dotted layer names.
    keep_graph : bool
        Keep the recorded tensors attached to the autograd graph (for gradients); otherwise
        they are detached copies, safe from later in-place operations.

    Yields
    ------
    dict
        Layer name → output tensor of its latest call, filled as the model runs.
        All hooks are removed when the block exits, normally or by an exception.
    """
    mods = _modules(model, layers)
    record: dict[str, torch.Tensor] = {}
    handles = []

    def make(name):
        def hook(_mod, _inp, out):
            if isinstance(out, (tuple, list)):
                out = out[0]
            record[name] = out if keep_graph else out.detach().clone()

        return hook

    try:
        for name, mod in mods.items():
            handles.append(mod.register_forward_hook(make(name)))
        yield record
    finally:
        for h in handles:
            h.remove()


class Capture(NamedTuple):
    """One forward pass: the captured activations and the model's output (:func:`capture` with ``output=True``)."""

    activations: dict
    logits: np.ndarray


class Histogram(NamedTuple):
    """``counts`` (int64, shape (bins,)) of values between consecutive ``edges`` (float64, shape (bins + 1,))."""

    counts: np.ndarray
    edges: np.ndarray


def capture(model: nn.Module, image, layers=None, *, output: bool = False):
    """Run one forward pass and return the activations of ``layers``.

    Parameters
    ----------
    model : torch.nn.Module
        From :func:`cnnwidgets.engine.models.create_model` (its ``cnnw_config`` drives preprocessing).
    image : image or batch
        Anything :func:`cnnwidgets.engine.models.preprocess` accepts, or an already preprocessed
        N×C×H×W float tensor matching ``cnnw_config["input_size"]``.
    layers : str or iterable of str, optional
        Dotted names; default all of :func:`layer_names`.
    output : bool
        Also return the model output (logits).

    Returns
    -------
    dict of str → numpy.ndarray, or Capture
        float32 activations, C×H×W for conv/act/pool layers and D for linear layers when one
        image was given (N×… for a batch); with ``output=True`` a :class:`Capture` of them and the N×K (or K)
        logits (it unpacks as ``activations, logits = ...``).
    """
    if layers is None:
        layers = layer_names(model)
    _modules(model, layers)  # the names checked before the forward pass
    x, single = _input_tensor(model, image)
    with hooks(model, layers) as rec, torch.inference_mode():
        out = model(x)
    acts = {name: _np(t, single) for name, t in rec.items()}
    missing = [n for n in _modules(model, layers) if n not in acts]
    if missing:
        raise ValueError(f"layers {missing} did not run in the forward pass")
    return Capture(acts, _np(out, single)) if output else acts


def layer_output(captured, layer: str) -> np.ndarray:
    """The activation of one layer in what :func:`capture` returned.

    Parameters
    ----------
    captured : Capture or dict of str → numpy.ndarray
    layer : str
        A dotted layer name that was captured.

    Returns
    -------
    numpy.ndarray
        The layer's activation, as :func:`capture` gave it (C×H×W or D for one image).
    """
    acts = captured.activations if isinstance(captured, Capture) else captured
    if not isinstance(acts, dict):
        raise ValueError(f"captured must be what layers.capture returned, got {checks.short(captured)}")
    if layer not in acts:
        raise ValueError(f"layer {layer!r} was not captured; captured: {', '.join(list(acts)[:8])}")
    return acts[layer]


def histogram(values, *, bins: int = 60) -> Histogram:
    """The histogram of an activation (or any array of finite numbers), over its range.

    Parameters
    ----------
    values : array_like
        Any shape; flattened.
    bins : int
        Number of equal-width bins (≥ 1).

    Returns
    -------
    Histogram
        ``counts`` (bins,) and ``edges`` (bins + 1,), as :func:`numpy.histogram` gives them.
    """
    bins = checks.integer("bins", bins, lo=1)
    arr = checks.numbers_array("values", values, allow_empty=False)
    counts, edges = np.histogram(arr.ravel(), bins=bins)
    return Histogram(counts, edges)


def _input_tensor(model, image):
    cfg = model_config(model)
    if (
        isinstance(image, torch.Tensor)
        and image.ndim == 4
        and image.is_floating_point()
        and tuple(image.shape[1:]) == tuple(cfg["input_size"])
    ):
        dev = next(model.parameters()).device
        return image.to(dev), False
    single = not (isinstance(image, (list, tuple)) or (getattr(image, "ndim", 0) == 4))
    return preprocess(image, model), single


def _np(t: torch.Tensor, single: bool) -> np.ndarray:
    a = t.detach().float().cpu().numpy()
    return a[0] if single else a


def kernels(model: nn.Module, layer: str) -> np.ndarray:
    """Weights of a convolution layer.

    Returns
    -------
    numpy.ndarray
        float32 copy, out_channels × (in_channels / groups) × kH × kW.
    """
    if not isinstance(layer, str):
        raise ValueError(f"layer must be a dotted layer name, got {checks.short(layer)}")
    mod = _modules(model, [layer], "layer")[layer]
    if not isinstance(mod, nn.Conv2d):
        raise ValueError(f"layer {layer!r} is a {type(mod).__name__}, not a convolution; kernels need a conv layer")
    return mod.weight.detach().float().cpu().numpy().copy()
