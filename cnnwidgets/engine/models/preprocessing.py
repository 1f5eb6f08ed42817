"""Preprocessing: images of any kind → the normalised N×C×H×W float32 tensor a model takes.

Decoding uses Pillow's reduced-scale JPEG decoding where the file is much larger than the model input, then
the model's resize and centre crop (its ``cnnw_config``), then normalisation on the model's device.
"""

from __future__ import annotations

import concurrent.futures
import io
import math
import os

import numpy as np
import torch
from PIL import Image
from torch import nn

from cnnwidgets.device import get_device
from cnnwidgets.io import load_image

from .registry import model_config

__all__ = [
    "preprocess",
    "split_batch",
    "load_at_input_size",
    "normalised_batch",
    "decode_batch",
    "model_device",
    "default_workers",
]

_PIL_FILTERS = {
    "bilinear": Image.BILINEAR,
    "bicubic": Image.BICUBIC,
    "nearest": Image.NEAREST,
    "lanczos": Image.LANCZOS,
    "box": Image.BOX,
}


def _is_tensor(x) -> bool:
    return type(x).__module__.startswith("torch")


def split_batch(images):
    """Return (list of single images, whether the input was a batch)."""
    if isinstance(images, (list, tuple)):
        return list(images), True
    if isinstance(images, np.ndarray) and (images.ndim == 4 or (images.ndim == 3 and images.shape[2] not in (1, 3, 4))):
        return list(images), True  # N×H×W×C, or N×H×W gray (a last axis of 1, 3 or 4 means one H×W×C image)
    if _is_tensor(images) and images.ndim == 4:
        return list(images), True
    return [images], False


def _open_reduced(source, min_side: int):
    """Decode a path or bytes with Pillow, letting JPEG decode at a reduced scale (``draft``)
    no smaller than ``2 * min_side`` on its short side. Returns a PIL image or None (use load_image)."""
    try:
        if isinstance(source, (str, os.PathLike)):
            img = Image.open(os.fspath(source))
        elif isinstance(source, (bytes, bytearray, memoryview)):
            img = Image.open(io.BytesIO(bytes(source)))
        else:
            return None
        if img.format == "JPEG" and img.mode in ("RGB", "L"):
            # decode at 1/2, 1/4 or 1/8 scale, keeping at least twice the needed size so the
            # resize that follows still low-pass filters properly
            w, h = img.size
            scale = min(w, h) / max(2 * min_side, 1)
            if scale >= 2:
                img.draft(img.mode, (math.ceil(w / scale), math.ceil(h / scale)))
        return img
    except Exception:
        return None  # load_image gives the proper error


def load_at_input_size(source, cfg) -> np.ndarray:
    """One image → H×W×C uint8 at the model's input size (resize short side, centre crop)."""
    c, h, w = cfg["input_size"]
    mode = "gray" if c == 1 else "rgb"
    crop_pct = float(cfg.get("crop_pct") or 1.0)
    short = int(math.floor(max(h, w) / crop_pct)) if crop_pct < 1 else max(h, w)
    reduced = _open_reduced(source, short)
    arr = load_image(reduced if reduced is not None else source, mode=mode)
    if reduced is not None:
        reduced.close()
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    pil = Image.fromarray(arr)
    filt = _PIL_FILTERS.get(str(cfg.get("interpolation", "bilinear")), Image.BILINEAR)
    if crop_pct >= 1:
        out = pil.resize((w, h), filt)
    else:
        iw, ih = pil.size  # short side to `short`, long side as torchvision's Resize computes it
        nw, nh = (short, max(h, int(short * ih / iw))) if iw <= ih else (max(w, int(short * iw / ih)), short)
        pil = pil.resize((nw, nh), filt)
        left, top = (nw - w) // 2, (nh - h) // 2
        out = pil.crop((left, top, left + w, top + h))
    a = np.asarray(out)
    return a[:, :, None] if a.ndim == 2 else a


def normalised_batch(batch_u8: np.ndarray, cfg, device, memory_format=torch.contiguous_format) -> torch.Tensor:
    """N×H×W×C uint8 → normalised N×C×H×W float32 on ``device``, in ``memory_format``.

    The permuted uint8 batch already has channels-last strides, so ``torch.channels_last``
    costs no extra copy."""
    t = torch.from_numpy(np.ascontiguousarray(batch_u8)).to(device, non_blocking=True)
    t = t.permute(0, 3, 1, 2).float().div_(255.0)  # keeps the channels-last strides
    mean = torch.tensor(cfg["mean"], device=device).view(1, -1, 1, 1)
    std = torch.tensor(cfg["std"], device=device).view(1, -1, 1, 1)
    return t.sub_(mean).div_(std).contiguous(memory_format=memory_format)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the default device for a model without any; the CPU for an
    ONNX Runtime model)."""
    if not isinstance(model, nn.Module):
        return torch.device(getattr(model, "device", "cpu"))
    for p in model.parameters():
        return p.device
    return get_device()


def preprocess(image_or_images, model, *, workers: int | None = None) -> torch.Tensor:
    """Turn images into the model's input tensor.

    Each image is loaded with :func:`cnnwidgets.io.load_image` (gray for 1-channel models, RGB
    otherwise), its short side resized to ``H / crop_pct`` with the model's interpolation, centre
    cropped to H×W (``crop_pct == 1``: resized straight to H×W), scaled to [0, 1] and normalised
    with the model's ``mean`` and ``std``.

    Parameters
    ----------
    image_or_images : image, list/tuple of images, N×H×W(×C) array or N×C×H×W tensor
        Anything :func:`cnnwidgets.io.load_image` accepts, one or many.
    model : torch.nn.Module
        A model with ``cnnw_config`` (from :func:`create_model`).
    workers : int, optional
        Threads decoding in parallel; default ``min(8, os.cpu_count())``.

    Returns
    -------
    torch.Tensor
        N×C×H×W float32 on the model's device (N = 1 for a single image).
    """
    cfg = model_config(model)
    items, _ = split_batch(image_or_images)
    if not items:
        raise ValueError("preprocess: no images given")
    arrays = decode_batch(items, cfg, workers)
    return normalised_batch(np.stack(arrays), cfg, model_device(model))


def default_workers() -> int:
    """Decoding threads: ``min(8, os.cpu_count())``."""
    return max(1, min(8, os.cpu_count() or 1))


def decode_batch(items, cfg, workers=None, pool=None) -> list[np.ndarray]:
    """Each item through :func:`load_at_input_size` (H×W×C uint8), on ``pool`` or a new pool of ``workers``."""
    if len(items) == 1:
        return [load_at_input_size(items[0], cfg)]
    if pool is not None:
        return list(pool.map(lambda s: load_at_input_size(s, cfg), items))
    with concurrent.futures.ThreadPoolExecutor(workers or default_workers()) as ex:
        return list(ex.map(lambda s: load_at_input_size(s, cfg), items))
