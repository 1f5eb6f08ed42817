"""The inference backend switch: ONNX Runtime on the CPU, torch everywhere else.

``backend="auto" | "onnx" | "torch"`` is the one switch (:func:`resolve_backend`), taken by
:func:`~cnnwidgets.engine.models.embed`, :func:`~cnnwidgets.engine.models.classify` and
:func:`~cnnwidgets.engine.features.cnn_with_tags`.

* ``"auto"`` (the default) runs ONNX Runtime when it is installed, the model is on the CPU, in eval mode, without
  forward hooks (layer capture, Grad-CAM) and the precision is fp32, and when the model exports and its export
  agrees with torch; torch otherwise (the reason is logged at INFO level, or WARNING when an export failed).
* ``"onnx"`` insists: a model that cannot run there raises :class:`OnnxUnavailable` with the reason.
* ``"torch"`` never touches ONNX Runtime.

The ONNX file is exported once per model weights with the TorchScript exporter (``torch.onnx.export(...,
dynamo=False)``), and kept in ``<cache>/onnx/`` (:func:`cache_dir`: ``CNNWIDGETS_CACHE_DIR``, else
``$XDG_CACHE_HOME/cnnwidgets``, else ``~/.cache/cnnwidgets``). Its name is a hash of the weights (every
parameter and buffer: names, dtypes, shapes and bytes), the input size, and the torch, exporter and ONNX Runtime
versions, so a fine-tuned model or a new head never runs from a stale file. The file is written to a temporary
name and renamed; a fresh export is used only if its outputs agree with torch (cosine ≥ 0.9999 per image on
bundled photographs and noise). The folder keeps the 16 most recently used exports.

A model made by ``create_model(name, pretrained=True)`` and not changed since also records its export under its name
(``<name>-pretrained-<key>.json``: the export's file and the model's configuration; the key hashes the weights file's
path and bytes, the code of this package's model builders and the torch, timm, ONNX Runtime and exporter versions,
so installations that differ in any of them keep records of their own). A later process can
then run that model from the file without building it in torch (:func:`pretrained_onnx`), which saves importing
the exporter (and with it ``torch._dynamo``), building the model and loading the weights. A model the user changed is never
recorded, and a record whose key no longer matches is not used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnwidgets.cache import CACHE_ENV_VAR, cache_dir, find, private_dir
from cnnwidgets.device import cpu_threads
from cnnwidgets.files import atomic_write

from .cache import ModelCache
from .registry import model_config
from .surgery import last_linear

__all__ = [
    "BACKENDS",
    "CACHE_ENV_VAR",
    "MIN_COSINE",
    "OnnxUnavailable",
    "OnnxModel",
    "cache_dir",
    "resolve_backend",
    "onnx_model",
    "onnxruntime_available",
    "features_and_logits",
    "clear_sessions",
    "pretrained_onnx",
    "mark_pristine",
]

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnx", "torch")
MIN_COSINE = 0.9999
EXPORTER = "torchscript-opset17-padconv"  # part of the file key: another exporter or opset makes another file
_OPSET = 17
KEEP_FILES = 16  # exports kept in the cache folder, the least recently used deleted beyond it

_SESSIONS = ModelCache(maxsize=4)  # key: id(model); version: weights fingerprint; value: OnnxModel or failure
_stats_lock = threading.Lock()
stats = {"exports": 0, "loads": 0}
"""How many ONNX files were exported and how many sessions were loaded from files (tests read it)."""


class OnnxUnavailable(RuntimeError):
    """``backend="onnx"`` was asked for a model that cannot run on ONNX Runtime; the message says why."""


def onnxruntime_available() -> bool:
    """Whether ``onnxruntime`` can be imported."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def features_and_logits(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled penultimate features (N×D) and logits (N×K) of ``model`` on ``x`` from one forward pass.

    timm models: ``forward_head(pre_logits=True)`` and ``forward_head`` of one ``forward_features``; others: the
    input of their last ``nn.Linear`` and the output (a model without one: its pooled output, twice).
    """
    if hasattr(model, "forward_features") and hasattr(model, "forward_head"):  # timm
        fmap = model.forward_features(x)
        return model.forward_head(fmap, pre_logits=True).flatten(1), model.forward_head(fmap).flatten(1)
    found = last_linear(model)
    if found is None:
        out = model(x)
        pooled = out.mean(dim=(2, 3)) if out.ndim == 4 else out.flatten(1)
        return pooled, pooled
    captured = {}
    handle = found[1].register_forward_pre_hook(lambda _mod, args: captured.__setitem__("x", args[0]))
    try:
        logits = model(x)
    finally:
        handle.remove()
    return captured["x"].flatten(1), logits.flatten(1)


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


def _constant_padding(model: nn.Module, cfg) -> nn.Module:
    """A copy of ``model`` whose run-time "same" paddings are constants for the input size ``cfg["input_size"]``
    (``model`` itself when it has no ``Conv2dSame``, timm's or :mod:`.efficientnet_lite`'s). It computes the same
    function at that size."""
    from .efficientnet_lite import Conv2dSame

    same = [
        (name, m)
        for name, m in model.named_modules()
        if type(m) is Conv2dSame or (type(m).__name__ == "Conv2dSame" and type(m).__module__.startswith("timm."))
    ]
    if not same:
        return model
    import copy

    from .surgery import set_submodule

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


def _has_hooks(model: nn.Module) -> bool:
    from .fuse import _has_hooks as hooks

    return hooks(model)


def _torch_reason(model: nn.Module, precision: str) -> str | None:
    """Why ``model`` must run in torch (None: ONNX Runtime may run it)."""
    if not onnxruntime_available():
        return "onnxruntime is not installed"
    if precision != "fp32":
        return f"precision {precision!r} runs in torch"
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    if dev.type != "cpu":
        return f"the model is on {dev}"
    if any(m.training for m in model.modules()):
        return "the model is in training mode"
    if _has_hooks(model):
        return "the model has forward hooks (layer capture, Grad-CAM)"
    return None


def resolve_backend(backend: str, model: nn.Module, *, precision: str = "fp32") -> OnnxModel | None:
    """The ONNX Runtime model to run ``model`` with, or None to run it in torch.

    Parameters
    ----------
    backend : {"auto", "onnx", "torch"}
    model : torch.nn.Module
        From :func:`create_model`.
    precision : {"fp32", "bf16"}
        Already resolved; bf16 runs in torch.

    Returns
    -------
    OnnxModel or None

    Raises
    ------
    ValueError
        For an unknown ``backend``.
    OnnxUnavailable
        For ``backend="onnx"`` when the model cannot run on ONNX Runtime.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    if isinstance(model, OnnxModel):
        if backend == "torch":
            raise ValueError(
                f"{model.path.name} is an ONNX Runtime model; backend='torch' needs the torch model "
                "(cnnwidgets.engine.models.create_model or shared_model)"
            )
        if precision != "fp32":
            raise ValueError(f"precision {precision!r} needs the torch model; an ONNX Runtime model runs fp32")
        return model
    if backend == "torch":
        return None
    reason = _torch_reason(model, precision)
    if reason is None:
        found = onnx_model(model)
        if isinstance(found, OnnxModel):
            return found
        reason = found
    if backend == "onnx":
        raise OnnxUnavailable(f"{model_config(model).get('name', type(model).__name__)}: {reason}")
    log.info("running %s in torch: %s", model_config(model).get("name", type(model).__name__), reason)
    return None


def _weights_key(model: nn.Module) -> str:
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


def _check_inputs(cfg) -> np.ndarray:
    """A few N×C×H×W float32 inputs for the check against torch: bundled photographs at the model's size, and noise."""
    from cnnwidgets import datasets

    from .preprocessing import load_at_input_size, normalised_batch

    c, h, w = cfg["input_size"]
    photos = [datasets.sample(n, mode="gray" if c == 1 else "rgb") for n in ("chelsea", "coffee", "astronaut")]
    x = normalised_batch(np.stack([load_at_input_size(p, cfg) for p in photos]), cfg, torch.device("cpu"))
    noise = torch.from_numpy(np.random.default_rng(0).standard_normal((2, c, h, w)).astype(np.float32))
    return torch.cat([x, noise]).numpy()


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.where(den > 0, num / np.maximum(den, 1e-300), np.where(np.abs(a - b).max(axis=1) < 1e-6, 1.0, 0.0))
    return float(cos.min())


class OnnxModel:
    """An ONNX Runtime session of one model: ``run(x)`` gives its features and logits.

    Parameters
    ----------
    path : pathlib.Path
        The ONNX file (one input ``"input"``, outputs ``"features"`` and ``"logits"``).
    config : dict, optional
        The model's ``cnnw_config``; with it the session can stand in for the torch model in
        :func:`~cnnwidgets.engine.models.embed`, :func:`~cnnwidgets.engine.models.classify` and
        :func:`~cnnwidgets.engine.models.embed_and_classify` (see :func:`pretrained_onnx`).
    """

    device = "cpu"

    def __init__(self, path: Path, config: dict | None = None):
        import onnxruntime as ort

        if config is not None:
            self.cnnw_config = config

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = cpu_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no busy-waiting between operators: spinning threads take the cores the decode threads need (index build
        # of 300 files on 2 cores, interleaved: 12.8 → 16.5 images/s median, 25 % less CPU time)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.threads = opts.intra_op_num_threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Features and logits of a batch.

        Parameters
        ----------
        x : numpy.ndarray or torch.Tensor
            N×C×H×W float32, normalised as the model expects (any memory layout).

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            float32 features N×D (not normalised) and logits N×K.
        """
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().contiguous().numpy()
        feats, logits = self.session.run(None, {"input": np.ascontiguousarray(x, dtype=np.float32)})
        return feats, logits


class _Unusable(Exception):
    """An export that cannot stand in for the torch model; its message is the reason."""


def _export(model: nn.Module, path: Path, cfg) -> str | None:
    """Export ``model`` to ``path`` atomically and check it against torch; the reason when it is not usable."""
    import warnings

    x = _check_inputs(cfg)
    with torch.inference_mode():
        want_f, want_l = (t.float().numpy() for t in _Outputs(model).eval()(torch.from_numpy(x)))

    def write(tmp: Path) -> None:  # checked before atomic_write renames it into place
        try:
            wrapped = _Outputs(_constant_padding(model, cfg)).eval()
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
            with _stats_lock:
                stats["exports"] += 1
            got_f, got_l = OnnxModel(tmp).run(x)
        except Exception as exc:  # any exporter or runtime failure means: run in torch
            raise _Unusable(f"export failed ({type(exc).__name__}: {_first_line(exc)})") from None
        if got_f.shape != want_f.shape or got_l.shape != want_l.shape:
            raise _Unusable(f"export gives shapes {got_f.shape}, {got_l.shape}; torch {want_f.shape}, {want_l.shape}")
        cos = min(_min_cosine(got_f, want_f), _min_cosine(got_l, want_l))
        if not cos >= MIN_COSINE:
            raise _Unusable(f"export disagrees with torch (cosine {cos:.6f} < {MIN_COSINE})")

    try:
        private_dir("onnx")
        atomic_write(path, write)
        atomic_write(_digest_path(path), _file_digest(path).encode())
    except _Unusable as exc:
        return str(exc)
    except OSError as exc:  # a read-only or full cache folder
        return f"export not saved ({_first_line(exc)})"
    return None


def _digest_path(path: Path) -> Path:
    """The file that records the digest of the export ``path`` when it was written and checked."""
    return path.with_name(path.name + ".blake2b")


def _checked_onnx(path: Path, **kwargs) -> OnnxModel:
    """An :class:`OnnxModel` of ``path`` if its bytes are those recorded when it was exported and checked.

    Raises
    ------
    ValueError
        When the digest is missing or differs (the file was changed or damaged since): it is never used.
    """
    try:
        recorded = _digest_path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        raise ValueError("no digest recorded at export") from None
    if _file_digest(path) != recorded:
        raise ValueError("its bytes differ from those checked at export: the file was changed or damaged")
    return OnnxModel(path, **kwargs)


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else ""


def _session(model: nn.Module):
    """OnnxModel for ``model`` (from the cached file, exported first when there is none), or the reason why not."""
    cfg = model_config(model)
    name = _file_name(str(cfg.get("name") or type(model).__name__))
    path = cache_dir() / "onnx" / f"{name}-{_weights_key(model)}.onnx"
    shared = find("onnx", path.name)
    if shared is not None and shared != path:  # a class's read-only cache: used as it is, never written
        try:
            found = _checked_onnx(shared)
            with _stats_lock:
                stats["loads"] += 1
            return found
        except Exception as exc:
            log.warning("%s cannot be loaded (%s); exporting it into %s", shared, _first_line(exc), path.parent)
    if path.exists():
        try:
            found = _checked_onnx(path)
            with contextlib.suppress(OSError):
                os.utime(path)  # recently used: kept when the folder is pruned
            with _stats_lock:
                stats["loads"] += 1
            _record_pristine(model, path)
            return found
        except Exception as exc:  # a damaged file (truncated, not ONNX): never used, exported again
            log.warning("%s cannot be loaded (%s); exporting it again", path, _first_line(exc))
    reason = _export(model, path, cfg)
    if reason is not None:
        log.warning("running %s in torch: %s", cfg.get("name", type(model).__name__), reason)
        return reason
    found = OnnxModel(path)
    with _stats_lock:
        stats["loads"] += 1
    _prune(path.parent)
    _record_pristine(model, path)
    return found


def _file_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


# ---------------------------------------------------------------------- pretrained models without torch
def _config_json(cfg: dict) -> str:
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}, sort_keys=True)


def mark_pristine(model: nn.Module, name: str) -> None:
    """Note that ``model`` is ``create_model(name, pretrained=True)`` as built (its weights and configuration now), so
    that its export can be recorded under ``name`` while it stays unchanged (see :func:`pretrained_onnx`)."""
    from .fuse import _fingerprint

    with contextlib.suppress(RuntimeError, TypeError):  # weights without version counters: never recorded
        model._cnnw_pristine = (name, _fingerprint(model), _config_json(model_config(model)))


def _pristine_name(model: nn.Module) -> str | None:
    """The registry name of ``model`` if it is still exactly as :func:`mark_pristine` saw it, else None."""
    from .fuse import _fingerprint

    mark = getattr(model, "_cnnw_pristine", None)
    if not mark:
        return None
    name, stamp, cfg = mark
    try:
        same = _fingerprint(model) == stamp and _config_json(model_config(model)) == cfg
    except (RuntimeError, TypeError):
        return None
    return name if same else None


def _file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pretrained_key(name: str, weights: Path) -> str:
    """Hex digest of what ``create_model(name, pretrained=True)`` and its export are made from: the weights file's
    bytes, the source of this package's model code, and the torch, timm, ONNX Runtime and exporter versions."""
    import importlib.metadata

    import onnxruntime

    def version(dist):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    h = hashlib.blake2b(digest_size=16)
    h.update(repr((name, str(weights), EXPORTER, torch.__version__, onnxruntime.__version__)).encode())
    h.update(repr((version("timm"), version("cnnwidgets"))).encode())
    h.update(_file_digest(weights).encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):  # the code that turns the file into the model
        h.update(source.name.encode() + source.read_bytes())
    return h.hexdigest()


_KEYS: dict = {}  # (name, weights path, size, mtime, inode) -> _pretrained_key, computed once per process


def _pretrained_key_of(name: str, weights: Path) -> str:
    st = weights.stat()
    sig = (name, str(weights), st.st_size, st.st_mtime_ns, st.st_ino)
    if sig not in _KEYS:
        _KEYS[sig] = _pretrained_key(name, weights)
    return _KEYS[sig]


def _record_path(name: str, key: str) -> Path:
    return cache_dir() / "onnx" / f"{_file_name(name)}-pretrained-{key}.json"


def _record_pristine(model: nn.Module, path: Path) -> None:
    """Record ``path`` as the export of ``create_model(name, pretrained=True)`` if ``model`` is that model unchanged."""
    from .builders import pretrained_file

    name = _pristine_name(model)
    weights = pretrained_file(name) if name else None
    if weights is None or str(model_config(model).get("pretrained")) != str(weights):
        return
    key = _pretrained_key_of(name, weights)
    manifest = _record_path(name, key)
    record = {
        "name": name,
        "weights": str(weights),
        "key": key,
        "onnx": path.name,
        "config": json.loads(_config_json(model_config(model))),
    }
    try:
        if manifest.exists() and json.loads(manifest.read_text(encoding="utf-8")) == record:
            return
    except (OSError, ValueError):
        pass
    try:
        atomic_write(manifest, json.dumps(record))
    except OSError as exc:
        log.info("%s not written (%s)", manifest, exc)


_PRETRAINED = ModelCache(maxsize=4)  # key: registry name; version: (record key, record file's inode and size)


def pretrained_onnx(name: str) -> OnnxModel | None:
    """The ONNX Runtime model of ``create_model(name, pretrained=True)`` from the export cache, without building the
    torch model.

    It exists once a process has run that model, unchanged, on ONNX Runtime (which records its export), and while
    the weights file, this package's model code and the torch, timm, ONNX Runtime and exporter versions are the
    ones it was recorded with.

    Parameters
    ----------
    name : str
        A registered name with packaged weights (``"efficientnet_lite0"``, ``"efficientnet_lite1"``,
        ``"efficientnet_lite2"``).

    Returns
    -------
    OnnxModel or None
        With ``cnnw_config``, so it can be passed as the model to :func:`~cnnwidgets.engine.models.embed`,
        :func:`~cnnwidgets.engine.models.classify` and :func:`~cnnwidgets.engine.models.embed_and_classify`
        (fp32, ``backend="auto"`` or ``"onnx"``). None when there is no usable record: build the model in torch.
    """
    from .builders import pretrained_file

    weights = pretrained_file(name)
    if weights is None or not onnxruntime_available():
        return None
    try:
        key = _pretrained_key_of(name, weights)
    except OSError:
        return None
    manifest = find("onnx", _record_path(name, key).name)  # the user's own record, else a shared cache's
    try:
        st = manifest.stat()
    except (OSError, AttributeError):  # nothing recorded for these weights, code and versions yet
        return None
    found = _PRETRAINED.get(
        name, lambda: _load_pretrained(name, weights, key, manifest), version=(key, st.st_ino, st.st_size)
    )
    return found if isinstance(found, OnnxModel) else None


def _load_pretrained(name: str, weights: Path, key: str, manifest: Path):
    """The recorded OnnxModel of ``name``, or the reason it cannot be used."""
    try:
        record = json.loads(manifest.read_text(encoding="utf-8"))
        onnx_name = str(record["onnx"])
        if record.get("name") != name or record.get("weights") != str(weights) or record.get("key") != key:
            return f"{manifest} records another model"
        if Path(onnx_name).name != onnx_name:
            return f"{manifest} names a file outside its folder"
        cfg = dict(record["config"])
        for k in ("input_size", "mean", "std"):
            cfg[k] = tuple(cfg[k])
        path = manifest.parent / onnx_name
        found = _checked_onnx(path, config=cfg)
    except Exception as exc:  # unreadable, out of date or damaged: the torch model is built instead
        log.info("%s not used: %s", manifest, exc)
        return str(exc)
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: kept when the folder is pruned
        os.utime(manifest)
    with _stats_lock:
        stats["loads"] += 1
    return found


def _prune(folder: Path) -> None:
    """Delete all but the :data:`KEEP_FILES` most recently used exports in ``folder``, and as many records."""
    for pattern in ("*.onnx", "*-pretrained-*.json"):
        try:
            files = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
        except OSError:
            continue
        for old in files[KEEP_FILES:]:
            with contextlib.suppress(OSError):
                old.unlink()
            with contextlib.suppress(OSError):
                _digest_path(old).unlink(missing_ok=True)


def onnx_model(model: nn.Module):
    """The ONNX Runtime model of ``model``, cached per model object and rebuilt when its weights change.

    Returns
    -------
    OnnxModel or str
        The session, or the reason the model runs in torch (the export failed or disagreed with torch).
    """
    from .fuse import _fingerprint

    try:
        stamp = _fingerprint(model)
    except RuntimeError:  # weights made under inference_mode carry no version counter: key on their bytes
        stamp = _weights_key(model)
    return _SESSIONS.get(id(model), lambda: _session(model), version=stamp, owner=model)


def clear_sessions() -> None:
    """Forget every ONNX Runtime session (the files stay)."""
    _SESSIONS.clear()
    _PRETRAINED.clear()
    _KEYS.clear()
