"""What inference reads from a model: its pooled penultimate features and its logits, from one forward pass."""

from __future__ import annotations

import torch
from torch import nn

from .surgery import last_linear

__all__ = ["features_and_logits"]


def features_and_logits(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled penultimate features (N×D) and logits (N×K) of ``model`` on ``x`` from one forward pass.

    timm models: ``forward_head(pre_logits=True)`` and ``forward_head`` of one ``forward_features``; others: the
    input of their last ``nn.Linear`` and the output (a model without one: its pooled output, twice).
    """
    if hasattr(model, "forward_features") and hasattr(model, "forward_head"):  # timm
        fmap = model.forward_features(x)
        return model.forward_head(fmap, pre_logits=True).flatten(1), model.forward_head(fmap).flatten(1)
    found = last_linear(model)
    if found is None:
        out = model(x)
        pooled = out.mean(dim=(2, 3)) if out.ndim == 4 else out.flatten(1)
        return pooled, pooled
    captured = {}
    handle = found[1].register_forward_pre_hook(lambda _mod, args: captured.__setitem__("x", args[0]))
    try:
        logits = model(x)
    finally:
        handle.remove()
    return captured["x"].flatten(1), logits.flatten(1)
