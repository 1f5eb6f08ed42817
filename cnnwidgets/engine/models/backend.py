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
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnwidgets.device import cpu_threads

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
]

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnx", "torch")
CACHE_ENV_VAR = "CNNWIDGETS_CACHE_DIR"
MIN_COSINE = 0.9999
EXPORTER = "torchscript-opset17"  # part of the file key: another exporter or opset makes another file
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


def cache_dir() -> Path:
    """The per-user cache folder: ``CNNWIDGETS_CACHE_DIR``, else ``$XDG_CACHE_HOME/cnnwidgets``, else
    ``~/.cache/cnnwidgets``."""
    explicit = os.environ.get(CACHE_ENV_VAR, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "cnnwidgets"


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
    """

    def __init__(self, path: Path):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = cpu_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
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


def _export(model: nn.Module, path: Path, cfg) -> str | None:
    """Export ``model`` to ``path`` atomically and check it against torch; the reason when it is not usable."""
    import warnings

    x = _check_inputs(cfg)
    wrapped = _Outputs(model).eval()
    with torch.inference_mode():
        want_f, want_l = (t.float().numpy() for t in wrapped(torch.from_numpy(x)))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    wrapped,
                    (torch.from_numpy(x[:2]),),
                    tmp,
                    dynamo=False,
                    opset_version=_OPSET,
                    input_names=["input"],
                    output_names=["features", "logits"],
                    dynamic_axes={"input": {0: "n"}, "features": {0: "n"}, "logits": {0: "n"}},
                )
            with _stats_lock:
                stats["exports"] += 1
            got_f, got_l = OnnxModel(Path(tmp)).run(x)
        except Exception as exc:  # any exporter or runtime failure means: run in torch
            return f"export failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        if got_f.shape != want_f.shape or got_l.shape != want_l.shape:
            return f"export gives shapes {got_f.shape}, {got_l.shape}; torch {want_f.shape}, {want_l.shape}"
        cos = min(_min_cosine(got_f, want_f), _min_cosine(got_l, want_l))
        if not cos >= MIN_COSINE:
            return f"export disagrees with torch (cosine {cos:.6f} < {MIN_COSINE})"
        os.replace(tmp, path)
        return None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _session(model: nn.Module):
    """OnnxModel for ``model`` (from the cached file, exported first when there is none), or the reason why not."""
    cfg = model_config(model)
    name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(cfg.get("name") or type(model).__name__))
    path = cache_dir() / "onnx" / f"{name}-{_weights_key(model)}.onnx"
    if path.exists():
        try:
            found = OnnxModel(path)
            with contextlib.suppress(OSError):
                os.utime(path)  # recently used: kept when the folder is pruned
            with _stats_lock:
                stats["loads"] += 1
            return found
        except Exception as exc:  # a damaged file: export it again
            log.warning("%s cannot be loaded (%s); exporting again", path, exc)
    reason = _export(model, path, cfg)
    if reason is not None:
        log.warning("running %s in torch: %s", cfg.get("name", type(model).__name__), reason)
        return reason
    found = OnnxModel(path)
    with _stats_lock:
        stats["loads"] += 1
    _prune(path.parent)
    return found


def _prune(folder: Path) -> None:
    """Delete all but the :data:`KEEP_FILES` most recently used exports in ``folder``."""
    try:
        files = sorted(folder.glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in files[KEEP_FILES:]:
        with contextlib.suppress(OSError):
            old.unlink()


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
