"""Exporting a model to ONNX, and checking the export against torch.

The TorchScript exporter (``torch.onnx.export(..., dynamo=False)``, opset 17) writes the model as a graph of one
input and two outputs, features and logits (:func:`~cnnwidgets.engine.models.outputs.features_and_logits`), with
TensorFlow-style "same" paddings written as constants of each convolution. An export is kept only if its outputs
agree with torch (cosine ≥ :data:`MIN_COSINE` per image on bundled photographs and noise). File names hash what the
export is made from (:func:`weights_key`, :func:`pretrained_key`), so a fine-tuned model, a new head or another
version of torch, timm, ONNX Runtime or of this exporter never runs from a stale file.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnwidgets import datasets
from cnnwidgets.files import atomic_write

from . import efficientnet_lite as lite
from .onnx_files import OnnxModel, count, file_digest, first_line, write_digest
from .outputs import features_and_logits
from .preprocessing import load_at_input_size, normalised_batch
from .registry import model_config
from .surgery import set_submodule

__all__ = ["EXPORTER", "MIN_COSINE", "export", "weights_key", "pretrained_key", "constant_padding"]

MIN_COSINE = 0.9999
EXPORTER = "torchscript-opset17-padconv"  # part of the file key: another exporter or opset makes another file
_OPSET = 17


class _Outputs(nn.Module):
    """``model`` as a graph of one input and two outputs (:func:`features_and_logits`)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return features_and_logits(self.model, x)


class _PaddedConv(torch.autograd.Function):
    """A zero-padded convolution that the exporter writes as one ONNX ``Conv`` with (asymmetric) ``pads``.

    Written as ``Pad`` then ``Conv``, ONNX Runtime cannot keep the ``Pad`` in its blocked (NCHWc) layout and
    converts the activation out of it and back around each one; as one ``Conv`` it stays in that layout.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, dilation, groups, pad):
        return nn.functional.conv2d(nn.functional.pad(x, pad), weight, bias, stride, 0, dilation, groups)

    @staticmethod
    def symbolic(g, x, weight, bias, stride, dilation, groups, pad):
        left, right, top, bottom = pad
        no_bias = bias is None or bias.node().mustBeNone()
        return g.op(
            "Conv",
            *((x, weight) if no_bias else (x, weight, bias)),
            kernel_shape_i=list(weight.type().sizes()[2:]),
            strides_i=list(stride),
            dilations_i=list(dilation),
            group_i=groups,
            pads_i=[top, left, bottom, right],
        )


class _ConstantPadConv(nn.Module):
    """A TensorFlow-style "same" convolution (a ``Conv2dSame``) with its padding fixed for one input size.

    ``Conv2dSame`` computes its padding from the input's size at run time, which the exporter writes as some
    thirty shape operations per layer around a ``Pad``; with the size known, the padding is a constant of the
    convolution (:class:`_PaddedConv`).
    """

    def __init__(self, conv: nn.Conv2d, pad: tuple[int, int, int, int]):
        super().__init__()
        self.conv = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=0,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=conv.bias is not None,
            device="meta",
        )
        self.conv.weight, self.conv.bias = conv.weight, conv.bias  # the same parameters
        self.pad = tuple(int(v) for v in pad)  # (left, right, top, bottom), as torch.nn.functional.pad takes it

    def forward(self, x):
        c = self.conv
        return _PaddedConv.apply(x, c.weight, c.bias, tuple(c.stride), tuple(c.dilation), c.groups, self.pad)


def _same_pad(size: int, kernel: int, stride: int, dilation: int) -> int:
    """Total "same" padding of one axis (as TensorFlow and timm's ``get_same_padding`` compute it)."""
    return max((-(-size // stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)


def constant_padding(model: nn.Module, cfg) -> nn.Module:
    """A copy of ``model`` whose run-time "same" paddings are constants for the input size ``cfg["input_size"]``
    (``model`` itself when it has no ``Conv2dSame``, timm's or :mod:`.efficientnet_lite`'s). It computes the same
    function at that size."""
    same = [
        (name, m)
        for name, m in model.named_modules()
        if type(m) is lite.Conv2dSame or (type(m).__name__ == "Conv2dSame" and type(m).__module__.startswith("timm."))
    ]
    if not same:
        return model
    sizes = {}
    hooks = [
        m.register_forward_pre_hook(lambda _mod, args, name=name: sizes.__setitem__(name, tuple(args[0].shape[-2:])))
        for name, m in same
    ]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *cfg["input_size"]))
    finally:
        for h in hooks:
            h.remove()
    fixed = copy.deepcopy(model)
    for name, (h, w) in sizes.items():
        conv = fixed.get_submodule(name)
        ph = _same_pad(h, conv.kernel_size[0], conv.stride[0], conv.dilation[0])
        pw = _same_pad(w, conv.kernel_size[1], conv.stride[1], conv.dilation[1])
        set_submodule(fixed, name, _ConstantPadConv(conv, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)))
    return fixed.eval()


def weights_key(model: nn.Module) -> str:
    """Hex digest of the weights, the input size and the exporter, torch and ONNX Runtime versions."""
    import onnxruntime

    cfg = model_config(model)
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((type(model).__qualname__, tuple(cfg["input_size"]), EXPORTER)).encode())
    h.update(repr((torch.__version__, onnxruntime.__version__)).encode())
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(repr((name, str(t.dtype), tuple(t.shape))).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def check_inputs(cfg) -> np.ndarray:
    """A few N×C×H×W float32 inputs for the check against torch: bundled photographs at the model's size, and noise."""
    c, h, w = cfg["input_size"]
    photos = [datasets.sample(n, mode="gray" if c == 1 else "rgb") for n in ("chelsea", "coffee", "astronaut")]
    x = normalised_batch(np.stack([load_at_input_size(p, cfg) for p in photos]), cfg, torch.device("cpu"))
    noise = torch.from_numpy(np.random.default_rng(0).standard_normal((2, c, h, w)).astype(np.float32))
    return torch.cat([x, noise]).numpy()


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.where(den > 0, num / np.maximum(den, 1e-300), np.where(np.abs(a - b).max(axis=1) < 1e-6, 1.0, 0.0))
    return float(cos.min())


class _Unusable(Exception):
    """An export that cannot stand in for the torch model; its message is the reason."""


def export(model: nn.Module, path: Path) -> str | None:
    """Export ``model`` to ``path`` atomically and check it against torch.

    Parameters
    ----------
    model : torch.nn.Module
        An eval-mode CPU model with ``cnnw_config``.
    path : pathlib.Path
        Where the export goes (its folder exists); its digest is recorded beside it.

    Returns
    -------
    str or None
        None when the export is written and agrees with torch; else the reason it is not usable (nothing is kept).
    """
    cfg = model_config(model)
    x = check_inputs(cfg)
    with torch.inference_mode():
        want_f, want_l = (t.float().numpy() for t in _Outputs(model).eval()(torch.from_numpy(x)))

    def write(tmp: Path) -> None:  # checked before atomic_write renames it into place
        try:
            wrapped = _Outputs(constant_padding(model, cfg)).eval()
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    wrapped,
                    (torch.from_numpy(x[:2]),),
                    str(tmp),
                    dynamo=False,
                    opset_version=_OPSET,
                    input_names=["input"],
                    output_names=["features", "logits"],
                    dynamic_axes={"input": {0: "n"}, "features": {0: "n"}, "logits": {0: "n"}},
                )
            count("exports")
            got_f, got_l = OnnxModel(tmp).run(x)
        except Exception as exc:  # any exporter or runtime failure means: run in torch
            raise _Unusable(f"export failed ({type(exc).__name__}: {first_line(exc)})") from None
        if got_f.shape != want_f.shape or got_l.shape != want_l.shape:
            raise _Unusable(f"export gives shapes {got_f.shape}, {got_l.shape}; torch {want_f.shape}, {want_l.shape}")
        cos = min(min_cosine(got_f, want_f), min_cosine(got_l, want_l))
        if not cos >= MIN_COSINE:
            raise _Unusable(f"export disagrees with torch (cosine {cos:.6f} < {MIN_COSINE})")

    try:
        atomic_write(path, write)
        write_digest(path)
    except _Unusable as exc:
        return str(exc)
    except OSError as exc:  # a read-only or full cache folder
        return f"export not saved ({first_line(exc)})"
    return None


def pretrained_key(name: str, weights: Path) -> str:
    """Hex digest of what ``create_model(name, pretrained=True)`` and its export are made from: the weights file's
    bytes, the source of this package's model code, and the torch, timm, ONNX Runtime and exporter versions."""
    import onnxruntime

    def version(dist):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    h = hashlib.blake2b(digest_size=16)
    h.update(repr((name, str(weights), EXPORTER, torch.__version__, onnxruntime.__version__)).encode())
    h.update(repr((version("timm"), version("cnnwidgets"))).encode())
    h.update(file_digest(weights).encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):  # the code that turns the file into the model
        h.update(source.name.encode() + source.read_bytes())
    return h.hexdigest()
