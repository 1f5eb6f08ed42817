"""The one adapter between the kinds of image the engine takes (NumPy, PIL, torch) and NumPy.

Engine functions compute on NumPy (or on torch tensors they make themselves) and give back the kind they were
given: ``like(out, image)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["is_torch", "to_numpy", "like", "to_float"]


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


def to_float(image):
    """:func:`cnnwidgets.io.to_float` for every integer dtype, of NumPy arrays and torch tensors alike.

    float32 of the same shape and kind: bool → {0, 1}; integers divided by their dtype's maximum (uint8 by 255,
    int8 by 127, int64 by 2**63 − 1); floats converted, not clipped. (``io.to_float`` refuses the integer tensors
    other than uint8, int16, int32 and uint16.)
    """
    if is_torch(image):
        import torch

        if image.dtype == torch.bool or image.is_floating_point():
            return image.float()
        if image.is_complex():
            raise ValueError(f"image: complex tensors are not images (dtype {image.dtype})")
        return image.float() / float(torch.iinfo(image.dtype).max)
    from ..io import to_float as io_to_float

    return io_to_float(image)
