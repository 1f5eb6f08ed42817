"""The one place that decides where computation runs.

Every module asks here for the torch device and for FAISS GPU use; nothing else
reads ``CNNWIDGETS_DEVICE`` or probes CUDA.

Policy
------
1. The environment variable ``CNNWIDGETS_DEVICE`` wins (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
2. Otherwise CUDA when torch sees a GPU.
3. Otherwise the CPU.

FAISS uses a GPU only when the chosen torch device is CUDA *and* the installed
FAISS build reports at least one GPU.
"""

from __future__ import annotations

import functools
import os

ENV_VAR = "CNNWIDGETS_DEVICE"

__all__ = ["ENV_VAR", "get_device", "faiss_gpu_available", "describe"]


def get_device(device=None):
    """Return the torch device to compute on.

    Parameters
    ----------
    device : str or torch.device, optional
        An explicit choice; it wins over the environment and the defaults.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If the requested device string is not a valid torch device, or asks for
        CUDA on a machine without it.
    """
    import torch

    choice = device if device is not None else os.environ.get(ENV_VAR, "").strip() or None
    if choice is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(choice)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"{ENV_VAR}/device={choice!r} is not a torch device: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {choice!r} was requested but CUDA is not available on this machine")
    return dev


@functools.lru_cache(maxsize=1)
def _faiss_num_gpus() -> int:
    try:
        import faiss
    except ImportError:
        return 0
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def faiss_gpu_available() -> bool:
    """Whether FAISS indexes should live on a GPU.

    True only when :func:`get_device` picks CUDA and FAISS was built with GPU
    support and sees at least one GPU.
    """
    try:
        if get_device().type != "cuda":
            return False
    except ValueError:
        return False
    return _faiss_num_gpus() > 0


def describe() -> str:
    """One line saying which device and FAISS mode are in use, for status lines."""
    dev = get_device()
    return f"torch device: {dev}; FAISS GPU: {'yes' if faiss_gpu_available() else 'no'}"
