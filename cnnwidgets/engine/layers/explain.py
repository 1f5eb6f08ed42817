"""Explaining a prediction: Grad-CAM heatmaps, their overlay on the image, and the top classes."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from cnnwidgets.engine import checks
from cnnwidgets.engine.models import model_config, preprocess
from cnnwidgets.engine.models.preprocessing import load_at_input_size

from .inspection import hooks, layer_names
from .mosaics import normalize

# ----------------------------------------------------------------------------- Grad-CAM


class GradCAM(NamedTuple):
    """Result of :func:`grad_cam`."""

    heatmap: np.ndarray  #: H×W float32 in [0, 1], in the model's input frame (after resize and crop)
    image: np.ndarray  #: H×W×C uint8, the image as the model saw it (same frame as ``heatmap``)
    class_index: int
    label: str
    probability: float
    layer: str


def _last_spatial_layer(model, x) -> str:
    names = layer_names(model, ("conv", "act", "norm"))
    with hooks(model, names) as rec, torch.inference_mode():
        model(x)
    spatial = [n for n in names if n in rec and rec[n].ndim == 4 and min(rec[n].shape[2:]) > 1]
    if not spatial:
        raise ValueError(f"{type(model).__name__} has no layer with a spatial output for Grad-CAM")
    return spatial[-1]


def model_view(image, model) -> np.ndarray:
    """The image as the model sees it: resized and cropped to its input size, H×W×C uint8
    (C = 1 kept as H×W×1 for gray models), not normalised."""
    return load_at_input_size(image, model_config(model))


def grad_cam(model: nn.Module, image, *, layer: str | None = None, target: int | None = None) -> GradCAM:
    """Gradient-weighted class activation map (Selvaraju et al., 2017) for one image.

    The gradients of the target class score with respect to ``layer``'s output are averaged
    over space to weigh its channels; the weighted sum, through a ReLU, is bilinearly resized
    to the input size and normalised to [0, 1].

    Parameters
    ----------
    model : torch.nn.Module
        From :func:`cnnwidgets.engine.models.create_model`.
    image : image
        One image, anything :func:`cnnwidgets.io.load_image` accepts.
    layer : str, optional
        Default: the last conv/activation/norm layer whose output still has a spatial extent.
    target : int, optional
        Class index; default the top-1 class.

    Returns
    -------
    GradCAM
    """
    cfg = model_config(model)
    if target is not None:
        checks.integer("target", target)
    if layer is not None and not isinstance(layer, str):
        raise ValueError(f"layer must be a dotted layer name, got {checks.short(layer)}")
    x = preprocess(image, model)
    if x.shape[0] != 1:
        raise ValueError("grad_cam takes one image")
    if layer is None:
        layer = _last_spatial_layer(model, x)
    with torch.enable_grad(), hooks(model, [layer], keep_graph=True) as rec:
        logits = model(x)
        probs = torch.softmax(logits.detach().float(), dim=1)[0]
        cls = int(probs.argmax()) if target is None else int(target)
        if not 0 <= cls < logits.shape[1]:
            raise ValueError(f"target {target} is not a class index of this model (0..{logits.shape[1] - 1})")
        act = rec[layer]
        if act.ndim != 4:
            raise ValueError(f"layer {layer!r} has output shape {tuple(act.shape)}; Grad-CAM needs N×C×H×W")
        (grad,) = torch.autograd.grad(logits[0, cls], act)
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * act.detach()).sum(dim=1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[0, 0]
    heat = normalize(cam.float().cpu().numpy())
    labels = cfg.get("labels")
    label = labels[cls] if labels and cls < len(labels) else f"class {cls}"
    return GradCAM(heat, model_view(image, model), cls, label, float(probs[cls]), layer)


def top_classes(model: nn.Module, logits, *, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable classes of one image from the model's output logits.

    Parameters
    ----------
    model : torch.nn.Module
        A model of :func:`cnnwidgets.engine.models.create_model` (its class names are read from
        ``model.cnnw_config["labels"]``; "class i" without them).
    logits : array_like, shape (num_classes,)
        The model's output for one image (:func:`capture` with ``output=True``): at least one finite number.
    k : int
        Number of classes (≥ 0; more than there are gives them all).

    Returns
    -------
    list of (str, float)
        (label, softmax probability), most probable first.
    """
    k = checks.integer("k", k, lo=0)
    if logits is None or isinstance(logits, str):
        raise ValueError(f"logits must be an array of numbers, got {checks.short(logits)}")
    z = checks.numbers_array("logits", logits, allow_empty=False).astype(np.float64).reshape(-1)
    p = np.exp(z - z.max())
    p /= p.sum()
    labels = getattr(model, "cnnw_config", {}).get("labels")
    order = np.argsort(-p, kind="stable")[:k]
    # labels may be fewer than the logits (a head replaced by hand): name the rest by index
    return [(labels[i] if labels and i < len(labels) else f"class {i}", float(p[i])) for i in order]


def heatmap_overlay(image, heatmap, *, alpha: float = 0.5, colormap: str = "jet") -> np.ndarray:
    """Blend a [0, 1] heatmap (coloured with a Matplotlib colormap) over an image.

    Parameters
    ----------
    image : numpy.ndarray
        H×W, H×W×1 or H×W×3 uint8 (or float in [0, 1]).
    heatmap : numpy.ndarray
        H'×W' float in [0, 1]; resized to H×W if needed.
    alpha : float
        Weight of the heatmap, 0–1.

    Returns
    -------
    numpy.ndarray
        H×W×3 uint8.
    """
    import matplotlib

    from cnnwidgets.engine.kinds import to_float

    alpha = checks.number("alpha", alpha, lo=0, hi=1)
    if not isinstance(colormap, str) or colormap not in matplotlib.colormaps:
        raise ValueError(f"colormap must be the name of a Matplotlib colormap, got {checks.short(colormap)}")
    arr = checks.numbers_array("image", image, ndim=(2, 3), allow_empty=False)
    if arr.ndim == 3 and arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"image must be H×W, H×W×1, H×W×3 or H×W×4, got shape {arr.shape}")
    heat = checks.numbers_array("heatmap", heatmap, ndim=2, allow_empty=False)
    img = to_float(arr)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = img[:, :, :3]
    heat = np.clip(heat.astype(np.float32), 0, 1)
    if heat.shape != img.shape[:2]:
        t = torch.from_numpy(np.ascontiguousarray(heat))[None, None]
        heat = torch.nn.functional.interpolate(t, size=img.shape[:2], mode="bilinear", align_corners=False)[
            0, 0
        ].numpy()
    colour = matplotlib.colormaps[colormap](heat)[:, :, :3].astype(np.float32)
    out = (1 - alpha) * img + alpha * colour
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)
