"""The one adapter between the kinds of image the engine takes (NumPy, PIL, torch) and NumPy.

Engine functions compute on NumPy (or on torch tensors they make themselves) and give back the kind they were
given: ``like(out, image)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["is_torch", "to_numpy", "like"]


def is_torch(x) -> bool:
    """True for a torch tensor (without importing torch)."""
    return type(x).__module__.startswith("torch")


def to_numpy(image, name: str = "image") -> np.ndarray:
    """A NumPy view or copy of a NumPy array, PIL image or torch tensor (any device).

    Raises
    ------
    TypeError
        For other objects, naming ``name``.
    ValueError
        For an empty array.
    """
    if is_torch(image):
        image = image.detach().cpu().numpy()
    elif not isinstance(image, np.ndarray) and type(image).__module__.startswith("PIL"):
        image = np.asarray(image)
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, PIL image or torch tensor, got {type(image).__name__}")
    if image.size == 0:
        raise ValueError(f"{name} is empty (shape {image.shape})")
    return image


def like(out, original, *, torch_dtype=None):
    """``out`` (NumPy) as the kind of ``original``: a tensor on its device for torch input, else unchanged.

    Parameters
    ----------
    out : numpy.ndarray
    original : object
        The input the engine function was given.
    torch_dtype : torch.dtype, optional
        dtype of the returned tensor (default: ``out``'s).
    """
    if is_torch(original):
        import torch

        t = torch.from_numpy(np.ascontiguousarray(out))
        return t.to(device=original.device, dtype=torch_dtype) if torch_dtype is not None else t.to(original.device)
    return out
