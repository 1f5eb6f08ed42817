"""Model surgery: find the first convolution and the last linear layer, replace a submodule, give a model a new
classifier head or another number of input channels."""

from __future__ import annotations

import copy
import math

import numpy as np
from torch import nn

__all__ = ["last_linear", "first_conv", "set_submodule", "replace_head", "adapt_in_chans", "reshape_io"]


def last_linear(model: nn.Module):
    """(dotted name, module) of the last ``nn.Linear`` in registration order, or None."""
    found = None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            found = (name, mod)
    return found


def first_conv(model: nn.Module):
    """(dotted name, module) of the first ``nn.Conv2d`` in registration order, or None."""
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d):
            return name, mod
    return None


def set_submodule(model: nn.Module, dotted: str, new: nn.Module) -> None:
    """Put ``new`` where the submodule named ``dotted`` (e.g. ``"blocks.0.conv"``) is, in place."""
    parent_name, _, child = dotted.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def replace_head(model: nn.Module, num_classes: int) -> None:
    """Give ``model`` a fresh ``num_classes``-way classifier in place (timm's ``reset_classifier``, else the last
    ``nn.Linear`` is replaced by a new one with the same inputs).

    Raises
    ------
    ValueError
        The model has no ``nn.Linear`` layer.
    """
    if hasattr(model, "reset_classifier") and hasattr(model, "pretrained_cfg"):  # timm
        model.reset_classifier(num_classes)
        return
    found = last_linear(model)
    if found is None:
        raise ValueError(f"cannot set num_classes on {type(model).__name__}: it has no final nn.Linear layer")
    name, old = found
    set_submodule(model, name, nn.Linear(old.in_features, num_classes, bias=old.bias is not None))


def adapt_in_chans(model: nn.Module, in_chans: int) -> None:
    """Give the first convolution ``in_chans`` inputs, keeping what its trained weights respond to.

    1 channel: the RGB kernels are summed (a gray image then gives the response the colour
    version of it would). Other counts: the RGB kernels are repeated and rescaled by 3/in_chans.
    """
    found = first_conv(model)
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
    set_submodule(model, name, new)


def reshape_io(model: nn.Module, cfg: dict, *, num_classes: int | None = None, in_chans: int | None = None) -> None:
    """Give a built model ``num_classes`` outputs and ``in_chans`` inputs, in place, and update its config to match.

    The head is replaced unless the model was loaded with weights whose head already has ``num_classes``
    outputs; ``cfg["labels"]`` then becomes None. A new channel count adapts the first convolution
    (:func:`adapt_in_chans`) and averages ``mean`` and ``std`` over the channels.

    Parameters
    ----------
    model : torch.nn.Module
    cfg : dict
        The model's ``cnnw_config`` (``input_size``, ``mean``, ``std``, ``labels``, ``pretrained``), changed in place.
    num_classes, in_chans : int, optional
        None leaves that side as it is.
    """
    if num_classes is not None:
        current = last_linear(model)
        if current is None or current[1].out_features != num_classes or not cfg["pretrained"]:
            replace_head(model, int(num_classes))
            cfg["labels"] = None
    if in_chans is not None and in_chans != cfg["input_size"][0]:
        adapt_in_chans(model, int(in_chans))
        c = int(in_chans)
        m, s = cfg["mean"], cfg["std"]
        cfg["mean"] = (float(np.mean(m)),) * c if c != len(m) else m
        cfg["std"] = (float(np.mean(s)),) * c if c != len(s) else s
        cfg["input_size"] = (c,) + tuple(cfg["input_size"][1:])
