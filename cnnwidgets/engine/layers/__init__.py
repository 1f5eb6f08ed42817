"""Inside the network: layer names, captured activations, kernels, mosaics, Grad-CAM,
and the small step-by-step operations used to teach convolution, activation and pooling.

Activations are captured with forward hooks that are always removed, also when the
forward pass raises (:func:`hooks` is a context manager; :func:`capture` uses it).

The playground functions (:func:`conv2d_steps`, :func:`activate`, :func:`activation_grad`,
:func:`pool2d_steps`) follow the textbook definitions and agree with
``torch.nn.functional``: CNN "convolution" is cross-correlation (the kernel is not flipped)
unless ``flip=True``.

Invalid input: arguments are checked on entry (:mod:`cnnwidgets.engine.checks`). A wrong type, shape or dtype, or a
parameter beyond its documented bounds, raises a ValueError that names it (and shows arrays by shape and dtype,
never their values); an image, a matrix, logits or maps holding NaN or infinity is refused the same way, so no
function returns NaN or infinity for finite input.
"""

from __future__ import annotations

from .._packages import adopt_public_names
from .explain import GradCAM, grad_cam, heatmap_overlay, model_view, top_classes
from .inspection import (
    KINDS,
    Capture,
    Histogram,
    capture,
    histogram,
    hooks,
    kernels,
    layer_kind,
    layer_names,
    layer_output,
)
from .mosaics import as_maps, enlarge, kernel_mosaic, normalize, tile, tile_index
from .steps import (
    ACTIVATIONS,
    ConvStep,
    ConvSteps,
    PoolStep,
    PoolSteps,
    activate,
    activation_grad,
    conv2d_steps,
    pool2d_steps,
)

__all__ = [
    "KINDS",
    "layer_kind",
    "layer_names",
    "hooks",
    "capture",
    "Capture",
    "layer_output",
    "histogram",
    "Histogram",
    "kernels",
    "normalize",
    "tile",
    "tile_index",
    "kernel_mosaic",
    "as_maps",
    "enlarge",
    "GradCAM",
    "grad_cam",
    "heatmap_overlay",
    "top_classes",
    "model_view",
    "ConvStep",
    "ConvSteps",
    "conv2d_steps",
    "ACTIVATIONS",
    "activate",
    "activation_grad",
    "PoolStep",
    "PoolSteps",
    "pool2d_steps",
]

adopt_public_names(globals())
