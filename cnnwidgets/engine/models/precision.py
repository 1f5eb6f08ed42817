"""Numeric precision of inference: the precisions, whether bfloat16 is fast on a device, and the autocast context
for a precision."""

from __future__ import annotations

import functools

import torch

from cnnwidgets.device import get_device

__all__ = ["PRECISIONS", "bf16_supported", "autocast", "resolve_precision"]


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


def autocast(device: torch.device, precision: str):
    """The autocast context for ``precision`` (``"fp32"``: autocast off; ``"bf16"``: bfloat16)."""
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise ValueError(f"precision {precision!r} has no torch autocast (int8 runs on ONNX Runtime)")


PRECISIONS = ("auto", "fp32", "bf16", "int8")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"fp32"``, ``"bf16"`` or ``"int8"`` for ``precision`` on ``device`` (``"auto"``: bf16 where
    :func:`bf16_supported`, else fp32; whether int8 is faster is :func:`~cnnwidgets.engine.models.runtime.prefers_int8`'s
    question, asked where the model is known)."""
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")
    if precision == "int8" and torch.device(device).type != "cpu":
        raise ValueError(f"precision 'int8' runs on the CPU (ONNX Runtime's int8 kernels); the model is on {device}")
    return precision
