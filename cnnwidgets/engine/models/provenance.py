"""What a model's weights are and where they came from: a cheap fingerprint of its tensors, and the note
:func:`~cnnwidgets.engine.models.create_model` leaves on a packaged pretrained model so that the runtime can tell
whether it is still that model, unchanged."""

from __future__ import annotations

import contextlib
import json

from torch import nn
from torch.nn.modules import module as torch_module

__all__ = ["weights_fingerprint", "has_hooks", "config_json", "mark_built", "built_name"]


def weights_fingerprint(model: nn.Module) -> tuple:
    """Changes when any parameter or buffer is modified in place, replaced or moved.

    Raises
    ------
    RuntimeError
        For tensors without a version counter (made under ``torch.inference_mode``).
    """
    return tuple((t.data_ptr(), t._version, t.dtype) for t in (*model.parameters(), *model.buffers()))


def has_hooks(model: nn.Module) -> bool:
    """Whether a forward hook (global, or on any submodule of ``model``) would see the model run."""
    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def config_json(cfg: dict) -> str:
    """``cnnw_config`` as canonical JSON (tuples as lists, sorted keys)."""
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}, sort_keys=True)


def mark_built(model: nn.Module, name: str) -> None:
    """Note that ``model`` is ``create_model(name, pretrained=True)`` as built: its weights and configuration now."""
    with contextlib.suppress(RuntimeError, TypeError):  # weights without version counters: never noted
        model._cnnw_built = (name, weights_fingerprint(model), config_json(model.cnnw_config))


def built_name(model: nn.Module) -> str | None:
    """The registry name of ``model`` if it is still exactly as :func:`mark_built` saw it, else None."""
    mark = getattr(model, "_cnnw_built", None)
    if not mark:
        return None
    name, stamp, cfg = mark
    try:
        same = weights_fingerprint(model) == stamp and config_json(model.cnnw_config) == cfg
    except (RuntimeError, TypeError, AttributeError):
        return None
    return name if same else None
