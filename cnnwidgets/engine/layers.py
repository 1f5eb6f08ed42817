"""Inside the network: layer names, captured activations, kernels, mosaics, Grad-CAM,
and the small step-by-step operations used to teach convolution, activation and pooling.

Activations are captured with forward hooks that are always removed, also when the
forward pass raises (:func:`hooks` is a context manager; :func:`capture` uses it).

The playground functions (:func:`conv2d_steps`, :func:`activate`, :func:`activation_grad`,
:func:`pool2d_steps`) follow the textbook definitions and agree with
``torch.nn.functional``: CNN "convolution" is cross-correlation (the kernel is not flipped)
unless ``flip=True``.
"""

from __future__ import annotations

import contextlib
import math
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from cnnwidgets.engine import kinds
from cnnwidgets.engine.models import model_config, preprocess
from cnnwidgets.engine.models.preprocessing import load_at_input_size

__all__ = [
    "KINDS",
    "layer_kind",
    "layer_names",
    "hooks",
    "capture",
    "kernels",
    "normalize",
    "tile",
    "tile_index",
    "kernel_mosaic",
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

KINDS = ("conv", "act", "pool", "linear", "norm")

_ACT_TYPES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Softplus,
)
_POOL_TYPES = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.LPPool2d)
_NORM_TYPES = (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)


def layer_kind(module: nn.Module) -> str | None:
    """``"conv"``, ``"act"``, ``"pool"``, ``"linear"``, ``"norm"`` or None for a module.

    Recognises torch's layer classes and their subclasses (timm's ``Conv2dSame`` is a conv,
    its ``BatchNormAct2d`` a norm whose ``.act`` child is the activation), and timm's
    activation and pooling modules by class name.
    """
    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, _ACT_TYPES):
        return "act"
    if isinstance(module, _POOL_TYPES):
        return "pool"
    if isinstance(module, _NORM_TYPES):
        return "norm"
    name = type(module).__name__
    if name in ("SelectAdaptivePool2d", "BlurPool2d"):
        return "pool"
    if name in ("Swish", "SiLU", "HardSwish", "HardSigmoid", "GELUTanh", "QuickGELU", "Sigmoid", "Tanh", "Mish"):
        return "act"
    return None


def layer_names(model: nn.Module, kinds=("conv", "act", "pool", "linear")) -> list[str]:
    """Dotted names of the layers of the given kinds, in the order they are registered.

    Parameters
    ----------
    model : torch.nn.Module
    kinds : str or iterable of str
        Any of :data:`KINDS`.

    Returns
    -------
    list of str
        Names usable with ``model.get_submodule`` and :func:`capture` (a pool that wraps
        another pool, like timm's ``SelectAdaptivePool2d``, is listed once, as the outer one).
    """
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ValueError(f"unknown layer kinds {bad}; choose from {KINDS}")
    names, pools = [], []
    for name, mod in model.named_modules():
        kind = layer_kind(mod)
        if kind is None or kind not in kinds or not name:
            continue
        if kind == "pool" and any(name.startswith(p + ".") for p in pools):
            continue
        if kind == "pool":
            pools.append(name)
        names.append(name)
    return names


def _modules(model: nn.Module, layers) -> dict[str, nn.Module]:
    if isinstance(layers, str):
        layers = [layers]
    out = {}
    for name in layers:
        try:
            out[name] = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"model {type(model).__name__} has no layer {name!r}; see layer_names(model)") from None
    return out


@contextlib.contextmanager
def hooks(model: nn.Module, layers, *, keep_graph: bool = False):
    """Record the outputs of ``layers`` during forward passes inside the ``with`` block.

    Parameters
    ----------
    model : torch.nn.Module
    layers : str or iterable of str
        Dotted layer names.
    keep_graph : bool
        Keep the recorded tensors attached to the autograd graph (for gradients); otherwise
        they are detached copies, safe from later in-place operations.

    Yields
    ------
    dict
        Layer name → output tensor of its latest call, filled as the model runs.
        All hooks are removed when the block exits, normally or by an exception.
    """
    mods = _modules(model, layers)
    record: dict[str, torch.Tensor] = {}
    handles = []

    def make(name):
        def hook(_mod, _inp, out):
            if isinstance(out, (tuple, list)):
                out = out[0]
            record[name] = out if keep_graph else out.detach().clone()

        return hook

    try:
        for name, mod in mods.items():
            handles.append(mod.register_forward_hook(make(name)))
        yield record
    finally:
        for h in handles:
            h.remove()


def capture(model: nn.Module, image, layers=None, *, output: bool = False):
    """Run one forward pass and return the activations of ``layers``.

    Parameters
    ----------
    model : torch.nn.Module
        From :func:`cnnwidgets.engine.models.create_model` (its ``cnnw_config`` drives preprocessing).
    image : image or batch
        Anything :func:`cnnwidgets.engine.models.preprocess` accepts, or an already preprocessed
        N×C×H×W float tensor matching ``cnnw_config["input_size"]``.
    layers : str or iterable of str, optional
        Dotted names; default all of :func:`layer_names`.
    output : bool
        Also return the model output (logits).

    Returns
    -------
    dict of str → numpy.ndarray, or (dict, numpy.ndarray)
        float32 activations, C×H×W for conv/act/pool layers and D for linear layers when one
        image was given (N×… for a batch); with ``output=True`` also the N×K (or K) logits.
    """
    if layers is None:
        layers = layer_names(model)
    x, single = _input_tensor(model, image)
    with hooks(model, layers) as rec, torch.inference_mode():
        out = model(x)
    acts = {name: _np(t, single) for name, t in rec.items()}
    missing = [n for n in _modules(model, layers) if n not in acts]
    if missing:
        raise ValueError(f"layers {missing} did not run in the forward pass")
    return (acts, _np(out, single)) if output else acts


def _input_tensor(model, image):
    cfg = model_config(model)
    if (
        isinstance(image, torch.Tensor)
        and image.ndim == 4
        and image.is_floating_point()
        and tuple(image.shape[1:]) == tuple(cfg["input_size"])
    ):
        dev = next(model.parameters()).device
        return image.to(dev), False
    single = not (isinstance(image, (list, tuple)) or (getattr(image, "ndim", 0) == 4))
    return preprocess(image, model), single


def _np(t: torch.Tensor, single: bool) -> np.ndarray:
    a = t.detach().float().cpu().numpy()
    return a[0] if single else a


def kernels(model: nn.Module, layer: str) -> np.ndarray:
    """Weights of a convolution layer.

    Returns
    -------
    numpy.ndarray
        float32 copy, out_channels × (in_channels / groups) × kH × kW.
    """
    mod = _modules(model, [layer])[layer]
    if not isinstance(mod, nn.Conv2d):
        raise ValueError(f"layer {layer!r} is a {type(mod).__name__}, not a convolution; kernels need a conv layer")
    return mod.weight.detach().float().cpu().numpy().copy()


# ----------------------------------------------------------------------------- mosaics


def normalize(x, *, axis=None, eps: float = 1e-8) -> np.ndarray:
    """Rescale to [0, 1] by min and max (over ``axis``; all of ``x`` by default).

    A constant input gives zeros. Returns float32; the input is not changed.
    """
    a = np.asarray(x, dtype=np.float32)
    lo = a.min(axis=axis, keepdims=True)
    hi = a.max(axis=axis, keepdims=True)
    return ((a - lo) / np.maximum(hi - lo, eps)).astype(np.float32)


def tile(
    maps,
    *,
    columns: int | None = None,
    pad: int = 1,
    per_map: bool = True,
    max_maps: int | None = None,
    pad_value: float = 1.0,
) -> np.ndarray:
    """Arrange C maps (C×H×W, or C×H×W×3 colour) into one mosaic image.

    Parameters
    ----------
    maps : array-like
        C×H×W activations or kernels (C×H×W×3 for colour tiles), any real dtype.
    columns : int, optional
        Tiles per row; default ``ceil(sqrt(C))``.
    pad : int
        Pixels of ``pad_value`` between tiles.
    per_map : bool
        Normalise each map to [0, 1] on its own (shows the pattern of weak maps);
        False normalises all maps together (shows which maps are strong).
    max_maps : int, optional
        Show only the first ``max_maps`` maps.

    Returns
    -------
    numpy.ndarray
        float32 in [0, 1]: rows·(H+pad)−pad × columns·(W+pad)−pad (×3 for colour tiles).
        Tile ``i`` sits at row ``i // columns``, column ``i % columns``.
    """
    a = np.asarray(maps, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.ndim not in (3, 4) or (a.ndim == 4 and a.shape[3] != 3):
        raise ValueError(f"tile: maps must be C×H×W or C×H×W×3, got shape {a.shape}")
    if max_maps is not None:
        a = a[:max_maps]
    c, h, w = a.shape[:3]
    if c == 0:
        raise ValueError("tile: no maps to tile")
    a = normalize(a, axis=tuple(range(1, a.ndim))) if per_map else normalize(a)
    cols = int(columns) if columns else int(math.ceil(math.sqrt(c)))
    rows = int(math.ceil(c / cols))
    shape = (rows * (h + pad) - pad, cols * (w + pad) - pad) + a.shape[3:]
    out = np.full(shape, pad_value, dtype=np.float32)
    for i in range(c):
        r, q = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = a[i]
    return out


def tile_index(
    mosaic_shape, map_shape, y: int, x: int, *, columns: int | None = None, count: int | None = None, pad: int = 1
) -> int | None:
    """Which tile of a :func:`tile` mosaic the pixel (y, x) falls in, or None (padding or outside).

    ``map_shape`` is (H, W) of one map; ``count`` the number of maps tiled.
    """
    if not (0 <= y < mosaic_shape[0] and 0 <= x < mosaic_shape[1]):
        return None
    h, w = map_shape[:2]
    cols = int(columns) if columns else int(math.ceil(math.sqrt(count or 1)))
    r, ry = divmod(int(y), h + pad)
    q, rx = divmod(int(x), w + pad)
    if ry >= h or rx >= w or q >= cols:
        return None
    i = r * cols + q
    return i if count is None or i < count else None


def kernel_mosaic(weights, *, max_maps: int | None = 64, pad: int = 1) -> np.ndarray:
    """A picture of convolution kernels.

    Parameters
    ----------
    weights : array-like
        out × in × kH × kW (from :func:`kernels`).

    Returns
    -------
    numpy.ndarray
        float32 in [0, 1]. Kernels over 3 inputs (an RGB first layer) are colour tiles
        kH×kW×3; other kernels are averaged over their inputs; 1×1 kernels are shown as the
        out × in weight matrix instead (one pixel per weight).
    """
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 4:
        raise ValueError(f"kernel_mosaic: weights must be out×in×kH×kW, got shape {w.shape}")
    if w.shape[2] == 1 and w.shape[3] == 1:
        return normalize(w[:, :, 0, 0])
    if w.shape[1] == 3:
        rgb = np.transpose(w, (0, 2, 3, 1))
        return tile(rgb, per_map=False, max_maps=max_maps, pad=pad)
    return tile(w.mean(axis=1), per_map=True, max_maps=max_maps, pad=pad)


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
        The model's output for one image (:func:`capture` with ``output=True``).
    k : int
        Number of classes.

    Returns
    -------
    list of (str, float)
        (label, softmax probability), most probable first.
    """
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    p = np.exp(z - z.max())
    p /= p.sum()
    labels = getattr(model, "cnnw_config", {}).get("labels")
    order = np.argsort(-p, kind="stable")[: int(k)]
    return [(labels[i] if labels else f"class {i}", float(p[i])) for i in order]


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

    from cnnwidgets.io import to_float

    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    img = to_float(np.asarray(image))
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = img[:, :, :3]
    heat = np.clip(np.asarray(heatmap, dtype=np.float32), 0, 1)
    if heat.shape != img.shape[:2]:
        t = torch.from_numpy(np.ascontiguousarray(heat))[None, None]
        heat = torch.nn.functional.interpolate(t, size=img.shape[:2], mode="bilinear", align_corners=False)[
            0, 0
        ].numpy()
    colour = matplotlib.colormaps[colormap](heat)[:, :, :3].astype(np.float32)
    out = (1 - alpha) * img + alpha * colour
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- playground: convolution


def _as_2d(x, name: str) -> np.ndarray:
    a = kinds.to_numpy(x, name) if kinds.is_torch(x) else np.asarray(x)
    if a.ndim != 2 or a.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a 2-D array of numbers, got shape {a.shape} dtype {a.dtype}")
    return a.astype(np.float64)


class ConvStep(NamedTuple):
    """One sliding-window position of :func:`conv2d_steps`."""

    row: int  #: output row
    col: int  #: output column
    top: int  #: row of the window's top-left corner in the padded input
    left: int  #: column of the window's top-left corner in the padded input
    window: np.ndarray  #: kH×kW input values under the kernel
    products: np.ndarray  #: kH×kW element-wise products window · kernel
    value: float  #: sum of the products plus the bias


class ConvSteps(NamedTuple):
    """Result of :func:`conv2d_steps`."""

    output: np.ndarray  #: oH×oW float64
    steps: list  #: list of ConvStep, row by row
    padded: np.ndarray  #: the zero-padded input
    kernel: np.ndarray  #: the kernel as applied (flipped when ``flip=True``)


def conv2d_steps(
    image, kernel, *, stride: int = 1, padding: int = 0, bias: float = 0.0, flip: bool = False
) -> ConvSteps:
    """A small 2-D convolution computed one window at a time, keeping every step.

    ``output[i, j] = sum(padded[i·s : i·s+kH, j·s : j·s+kW] * kernel) + bias`` — the
    cross-correlation CNNs call convolution (``torch.nn.functional.conv2d``). With
    ``flip=True`` the kernel is rotated by 180° first (the convolution of signal processing).
    The textbook example: a 4×4 image and a 3×3 kernel give a 2×2 output in 4 steps.

    Parameters
    ----------
    image : array-like
        H×W numbers (numpy or torch).
    kernel : array-like
        kH×kW numbers.
    stride, padding : int
        Window step and zero padding on every side.
    bias : float
        Added to every output value.
    flip : bool
        Rotate the kernel by 180° (true convolution).

    Returns
    -------
    ConvSteps
        ``output`` has shape ((H + 2p − kH) // s + 1, (W + 2p − kW) // s + 1), float64.
    """
    img = _as_2d(image, "image")
    k = _as_2d(kernel, "kernel")
    if stride < 1 or padding < 0:
        raise ValueError(f"stride must be ≥ 1 and padding ≥ 0, got stride={stride}, padding={padding}")
    if flip:
        k = k[::-1, ::-1].copy()
    padded = np.pad(img, padding)
    kh, kw = k.shape
    oh = (padded.shape[0] - kh) // stride + 1
    ow = (padded.shape[1] - kw) // stride + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {k.shape} is larger than the padded image {padded.shape}")
    out = np.empty((oh, ow))
    steps = []
    for i in range(oh):
        for j in range(ow):
            top, left = i * stride, j * stride
            window = padded[top : top + kh, left : left + kw].copy()
            prod = window * k
            value = float(prod.sum() + bias)
            out[i, j] = value
            steps.append(ConvStep(i, j, top, left, window, prod, value))
    return ConvSteps(out, steps, padded, k)


# ----------------------------------------------------------------------------- playground: activations


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # stable for large |x|


ACTIVATIONS = {
    "relu": (lambda x, a: np.maximum(x, 0.0), lambda x, a: (x > 0).astype(np.float64)),
    "prelu": (lambda x, a: np.where(x > 0, x, a * x), lambda x, a: np.where(x > 0, 1.0, a)),
    "elu": (
        lambda x, a: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))),
        lambda x, a: np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0))),
    ),
    "sigmoid": (lambda x, a: _sigmoid(x), lambda x, a: _sigmoid(x) * (1 - _sigmoid(x))),
    "tanh": (lambda x, a: np.tanh(x), lambda x, a: 1 - np.tanh(x) ** 2),
}
"""name → (f(x, alpha), f'(x, alpha)). ``alpha`` is PReLU's negative slope and ELU's saturation;
ReLU's derivative at 0 is taken as 0 (as torch does)."""

_DEFAULT_ALPHA = {"prelu": 0.25, "elu": 1.0}


def _act_args(x, kind, alpha):
    if kind not in ACTIVATIONS:
        raise ValueError(f"unknown activation {kind!r}; choose from {sorted(ACTIVATIONS)}")
    a = _DEFAULT_ALPHA.get(kind, 0.0) if alpha is None else float(alpha)
    is_t = isinstance(x, torch.Tensor)
    arr = x.detach().cpu().numpy() if is_t else np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"x must be numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64), a, is_t, x


def _back(y, is_t, x):
    if is_t:
        return kinds.like(np.asarray(y), x, torch_dtype=x.dtype if x.is_floating_point() else torch.float64)
    return y


def activate(x, kind: str, *, alpha: float | None = None):
    """Apply an activation function element-wise.

    Parameters
    ----------
    x : array-like or torch.Tensor
        Any shape.
    kind : {"relu", "prelu", "elu", "sigmoid", "tanh"}
    alpha : float, optional
        PReLU's slope for x < 0 (default 0.25) or ELU's α (default 1.0).

    Returns
    -------
    numpy.ndarray (float64) or torch.Tensor (the input's float dtype), same shape as ``x``.
    """
    arr, a, is_t, orig = _act_args(x, kind, alpha)
    return _back(ACTIVATIONS[kind][0](arr, a), is_t, orig)


def activation_grad(x, kind: str, *, alpha: float | None = None):
    """Derivative of :func:`activate` with respect to x, element-wise (same parameters and return)."""
    arr, a, is_t, orig = _act_args(x, kind, alpha)
    return _back(ACTIVATIONS[kind][1](arr, a), is_t, orig)


# ----------------------------------------------------------------------------- playground: pooling


class PoolStep(NamedTuple):
    """One window of :func:`pool2d_steps`."""

    row: int
    col: int
    top: int
    left: int
    window: np.ndarray  #: size×size input values
    value: float  #: the pooled value
    chosen: tuple | None  #: (dy, dx) of the value picked in the window (max, stochastic); None for mean
    probabilities: np.ndarray | None  #: stochastic pooling's p = a / sum(a) over the window; None otherwise


class PoolSteps(NamedTuple):
    """Result of :func:`pool2d_steps`."""

    output: np.ndarray  #: oH×oW float64
    steps: list  #: list of PoolStep, row by row


def pool2d_steps(x, *, size: int = 2, stride: int | None = None, mode: str = "max", seed: int | None = 0) -> PoolSteps:
    """2-D pooling computed one window at a time, keeping every step.

    Parameters
    ----------
    x : array-like
        H×W numbers. Stochastic pooling needs non-negative values (activations after a ReLU).
    size : int
        Window side.
    stride : int, optional
        Window step; default ``size`` (non-overlapping windows).
    mode : {"max", "mean", "stochastic"}
        ``"stochastic"`` (Zeiler & Fergus, 2013): within each window, pick one value at random
        with probability proportional to it (p = a / Σa); an all-zero window gives 0.
    seed : int or None
        Seed of the random generator for stochastic pooling (same seed → same picks).

    Returns
    -------
    PoolSteps
        ``output`` has shape ((H − size) // stride + 1, (W − size) // stride + 1), float64.
    """
    a = _as_2d(x, "x")
    stride = size if stride is None else int(stride)
    if size < 1 or stride < 1:
        raise ValueError(f"size and stride must be ≥ 1, got size={size}, stride={stride}")
    if mode not in ("max", "mean", "stochastic"):
        raise ValueError(f"mode must be 'max', 'mean' or 'stochastic', got {mode!r}")
    if mode == "stochastic" and (a < 0).any():
        raise ValueError("stochastic pooling needs non-negative values (apply a ReLU first)")
    oh = (a.shape[0] - size) // stride + 1
    ow = (a.shape[1] - size) // stride + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"pool size {size} is larger than the input {a.shape}")
    rng = np.random.default_rng(seed)
    out = np.empty((oh, ow))
    steps = []
    for i in range(oh):
        for j in range(ow):
            top, left = i * stride, j * stride
            win = a[top : top + size, left : left + size].copy()
            chosen, probs = None, None
            if mode == "max":
                chosen = np.unravel_index(int(win.argmax()), win.shape)
                value = float(win[chosen])
            elif mode == "mean":
                value = float(win.mean())
            else:
                total = win.sum()
                probs = win / total if total > 0 else np.zeros_like(win)
                if total > 0:
                    chosen = np.unravel_index(int(rng.choice(win.size, p=probs.ravel())), win.shape)
                    value = float(win[chosen])
                else:
                    value = 0.0
            if chosen is not None:
                chosen = (int(chosen[0]), int(chosen[1]))
            out[i, j] = value
            steps.append(PoolStep(i, j, top, left, win, value, chosen, probs))
    return PoolSteps(out, steps)
