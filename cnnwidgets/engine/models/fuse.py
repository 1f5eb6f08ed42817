"""BatchNorm folding for inference: a copy of a model with each BatchNorm that directly follows a convolution
folded into that convolution's weights (found by tracing the model with torch.fx). The copies are cached per model
by :func:`~cnnwidgets.engine.models.runtime.fold_bn`."""

from __future__ import annotations

import copy
import sys

import torch
import torch.fx
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from . import efficientnet_lite as lite
from .surgery import set_submodule

__all__ = ["folded_copy"]


def _timm_layer(name: str):
    """timm's ``timm.layers.<name>`` class when timm is already imported, else None: a model built by timm
    imported it, so a model holding timm modules finds them, and looking never imports timm."""
    layers = sys.modules.get("timm.layers")
    return getattr(layers, name, None) if layers is not None else None


def _bn_replacement(bn: nn.Module) -> nn.Module | None:
    """What stays of a BatchNorm once it is folded into its convolution: nothing for a plain
    ``nn.BatchNorm2d``; the dropout and activation of a ``BatchNormAct2d`` (this package's EfficientNet-Lite
    one or timm's). None: not foldable."""
    if type(bn) is nn.BatchNorm2d:
        return nn.Identity()
    if type(bn) in (lite.BatchNormAct2d, _timm_layer("BatchNormAct2d")):
        return nn.Sequential(bn.drop, bn.act)
    return None


def _foldable_conv(conv: nn.Module) -> bool:
    return type(conv) in (nn.Conv2d, lite.Conv2dSame, _timm_layer("Conv2dSame"))


class _LeafTracer(torch.fx.Tracer):
    """Traces module calls, keeping every convolution and BatchNorm a leaf (the "same"-padding Conv2dSame and
    BatchNormAct2d of timm and of :mod:`.efficientnet_lite` included: their insides need not be traced)."""

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


def folded_copy(model: nn.Module) -> nn.Module | None:
    """A deep copy of ``model`` with its conv–BN pairs folded, in eval mode without gradients; None when
    nothing can be folded."""
    try:
        pairs = _conv_bn_pairs(model)
    except Exception:  # not traceable (data-dependent control flow): run it as it is
        pairs = []
    if not pairs:
        return None
    fused = copy.deepcopy(model)
    with torch.no_grad():
        for c, b in pairs:
            conv, bn = fused.get_submodule(c), fused.get_submodule(b)
            set_submodule(fused, c, fuse_conv_bn_eval(conv, bn))
            set_submodule(fused, b, _bn_replacement(bn))
    fused.eval()
    fused.requires_grad_(False)
    return fused
