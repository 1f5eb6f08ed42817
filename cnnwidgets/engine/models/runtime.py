"""The one model runtime: every cache of built models, the cache folder of their exports, and the torch/ONNX choice.

``backend="auto" | "onnx" | "torch"`` is the one switch (:func:`resolve_backend`), taken by
:func:`~cnnwidgets.engine.models.embed`, :func:`~cnnwidgets.engine.models.classify` and
:func:`~cnnwidgets.engine.features.cnn_with_tags`, for a query image as for an index build.

* ``"auto"`` (the default) runs ONNX Runtime when it is installed, the model is on the CPU, in eval mode, without
  forward hooks (layer capture, Grad-CAM) and the precision is fp32, and when the model exports and its export
  agrees with torch; torch otherwise (the reason is logged at INFO level, or WARNING when an export failed).
* ``"onnx"`` insists: a model that cannot run there raises :class:`OnnxUnavailable` with the reason.
* ``"torch"`` never touches ONNX Runtime.

The caches (each a :class:`ModelCache`):

* shared models (:func:`shared_model`): created by name, shared by the widgets, the index and the learning functions;
* BatchNorm-folded copies for torch inference (:func:`fold_bn`), one per model object;
* ONNX Runtime sessions (:func:`onnx_model`), one per model object;
* ONNX Runtime sessions of pretrained models from their recorded exports (:func:`pretrained_onnx`), one per name;
* int8 ONNX Runtime sessions (:func:`int8_model`), one per fp32 export.

``precision="int8"`` runs the int8 model of the fp32 export (:mod:`.quantize`); ``precision="auto"`` picks it only
where :func:`prefers_int8`.

Exports live in ``<cache>/onnx/`` (:func:`cnnwidgets.cache.cache_dir`; read-only shared caches are read first when
they hold the file), exported once per model weights (:mod:`.onnx_export`) and kept, with their digests and the
records of pretrained models' exports, as :mod:`.onnx_files` writes them. The folder keeps the 16 most recently used
exports. A model made by ``create_model(name, pretrained=True)`` and not changed since also records its export under
its name (``<name>-pretrained-<key>.json``); a later process can then run that model from the file without building
it in torch (:func:`pretrained_onnx`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnwidgets.cache import CACHE_ENV_VAR, cache_dir, find, private_dir
from cnnwidgets.device import get_device

from . import onnx_export, quantize
from .builders import pretrained_file
from .fuse import folded_copy
from .model_cache import ModelCache
from .onnx_files import (
    OnnxModel,
    checked_onnx,
    count,
    file_name,
    first_line,
    prune,
    read_record,
    record_name,
    stats,
    write_record,
)
from .provenance import built_name, config_json, has_hooks, weights_fingerprint
from .registry import create_model, model_config

__all__ = [
    "BACKENDS",
    "CACHE_ENV_VAR",
    "ModelCache",
    "OnnxModel",
    "OnnxUnavailable",
    "cache_dir",
    "clear",
    "clear_sessions",
    "fold_bn",
    "inference_model",
    "int8_model",
    "onnx_model",
    "onnxruntime_available",
    "prefers_int8",
    "pretrained_onnx",
    "resolve_backend",
    "shared_model",
    "shared_runner",
    "stats",
]

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnx", "torch")


class OnnxUnavailable(RuntimeError):
    """``backend="onnx"`` was asked for a model that cannot run on ONNX Runtime; the message says why."""


_SHARED = ModelCache(maxsize=2)  # key: (name, weights, device)
_FOLDED = ModelCache(maxsize=8)  # key: id(model); version: weights fingerprint; None: nothing to fold
_SESSIONS = ModelCache(maxsize=4)  # key: id(model); version: weights fingerprint; value: OnnxModel or the reason
_PRETRAINED = ModelCache(maxsize=4)  # key: registry name; version: (record key, record file's inode and size)
_INT8 = ModelCache(maxsize=4)  # key: the fp32 export's path; value: the int8 OnnxModel or the refusal
_KEYS: dict = {}  # (name, weights path, size, mtime, inode) -> pretrained key, computed once per process


def clear_sessions() -> None:
    """Forget every ONNX Runtime session (the files stay)."""
    _SESSIONS.clear()
    _PRETRAINED.clear()
    _INT8.clear()
    _KEYS.clear()


def clear() -> None:
    """Forget every cached model: the shared models, the folded copies and every ONNX Runtime session."""
    _SHARED.clear()
    _FOLDED.clear()
    clear_sessions()


# ---------------------------------------------------------------------------------------------- torch models
def shared_model(name: str, *, pretrained=True, device=None) -> nn.Module:
    """The process-wide model for ``name``, created once by :func:`create_model` and then reused.

    Keyed by name, weights (``pretrained``) and device; the two most recently used models are kept.
    The model is shared: use it for inference, and create a model of your own to train or change.

    Parameters
    ----------
    name : str
        As :func:`create_model` takes it.
    pretrained : bool or str or os.PathLike
    device : str or torch.device, optional

    Returns
    -------
    torch.nn.Module
        In eval mode, with ``cnnw_config``.
    """
    dev = get_device(device)
    weights = pretrained if isinstance(pretrained, bool) else str(pretrained)
    return _SHARED.get((name, weights, str(dev)), lambda: create_model(name, pretrained=pretrained, device=dev))


def shared_runner(name: str, *, device=None):
    """What runs inference of the pretrained model ``name`` in this process, at the least start-up cost.

    The shared model (:func:`shared_model`) when it exists already or the device is not the CPU; otherwise the
    recorded ONNX Runtime export of ``create_model(name, pretrained=True)`` (:func:`pretrained_onnx`), which runs
    without timm and without building the torch model; otherwise the shared model, created now (its first ONNX
    Runtime run records the export for the next process). Index builds and image queries both describe images
    with it.

    Parameters
    ----------
    name : str
        As :func:`create_model` takes it.
    device : str or torch.device, optional

    Returns
    -------
    torch.nn.Module or OnnxModel
        Either can be passed as the model to :func:`~cnnwidgets.engine.models.embed`,
        :func:`~cnnwidgets.engine.models.classify`, :func:`~cnnwidgets.engine.models.embed_and_classify` and the
        CNN descriptors of :mod:`cnnwidgets.engine.features` (fp32). Use :func:`shared_model` where the torch
        module itself is needed (layers, Grad-CAM, training).
    """
    dev = get_device(device)
    made = _SHARED.peek((name, True, str(dev)))
    if made is not None or dev.type != "cpu":
        return made if made is not None else shared_model(name, pretrained=True, device=dev)
    found = pretrained_onnx(name)
    return found if found is not None else shared_model(name, pretrained=True, device=dev)


def fold_bn(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every BatchNorm that directly follows a convolution folded into it.

    Only for inference: the copy computes the same function as ``model`` in eval mode (up to float
    rounding, ≈ 1e-6 relative). ``model`` itself is not changed. The copy is cached per model and
    rebuilt when the model's weights change; ``model`` is returned unchanged when it is in training
    mode, carries forward hooks (they would not see the original layers), cannot be traced by
    torch.fx, or has nothing to fold.
    """
    if any(m.training for m in model.modules()) or has_hooks(model):
        return model
    try:
        stamp = weights_fingerprint(model)
    except RuntimeError:  # e.g. weights created under inference_mode carry no version counter
        return model
    fused = _FOLDED.get(id(model), lambda: folded_copy(model), version=stamp, owner=model)
    return model if fused is None else fused


def inference_model(model: nn.Module, fuse_bn: bool) -> nn.Module:
    """The module to run for inference: :func:`fold_bn` of ``model`` when ``fuse_bn``, else ``model``."""
    return fold_bn(model) if fuse_bn else model


# ---------------------------------------------------------------------------------------------- the switch
def onnxruntime_available() -> bool:
    """Whether ``onnxruntime`` can be imported."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


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
    if has_hooks(model):
        return "the model has forward hooks (layer capture, Grad-CAM)"
    return None


def _label(model) -> str:
    return str(model_config(model).get("name", type(model).__name__))


def resolve_backend(backend: str, model: nn.Module, *, precision: str = "fp32") -> OnnxModel | None:
    """The ONNX Runtime model to run ``model`` with, or None to run it in torch.

    Parameters
    ----------
    backend : {"auto", "onnx", "torch"}
    model : torch.nn.Module or OnnxModel
        From :func:`create_model`, :func:`shared_runner` or :func:`pretrained_onnx`.
    precision : {"fp32", "bf16", "int8"}
        Already resolved; bf16 runs in torch, int8 on the int8 export (:func:`int8_model`).

    Returns
    -------
    OnnxModel or None

    Raises
    ------
    ValueError
        For an unknown ``backend``, or a torch-only request for an ONNX Runtime model.
    OnnxUnavailable
        For ``backend="onnx"``, or int8, when the model cannot run on ONNX Runtime.
    cnnwidgets.engine.models.quantize.Int8Refused
        For int8, when the int8 model disagrees with fp32 beyond the bar.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    if precision == "int8":
        if backend == "torch":
            raise ValueError("precision 'int8' runs on ONNX Runtime; backend='torch' cannot run it")
        fp32 = model if isinstance(model, OnnxModel) else resolve_backend("onnx", model)
        return int8_model(fp32, model_config(model))
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
        raise OnnxUnavailable(f"{_label(model)}: {reason}")
    log.info("running %s in torch: %s", _label(model), reason)
    return None


# ---------------------------------------------------------------------------------------------- int8
def int8_model(fp32: OnnxModel, cfg: dict) -> OnnxModel:
    """The int8 model of the checked fp32 export ``fp32``, made once per export (:func:`quantize.int8_of`) in the
    cache folder.

    Raises
    ------
    cnnwidgets.engine.models.quantize.Int8Refused
        When it disagrees with fp32 beyond the bar, or cannot be made or saved (the reason is the message).
    """
    found = _INT8.get(str(fp32.path), lambda: _int8(fp32, cfg))
    if isinstance(found, Exception):
        raise found
    return found


def _int8(fp32: OnnxModel, cfg: dict):
    try:
        private_dir("onnx")
        found = quantize.int8_of(fp32, cfg, cache_dir() / "onnx")
    except quantize.Int8Refused as exc:
        log.info("%s: int8 refused: %s", fp32.path.name, exc)  # precision="int8" raises it; "auto" takes fp32
        return exc
    except OSError as exc:  # a read-only home or a full disk
        return quantize.Int8Refused(f"int8 export not saved ({first_line(exc)})")
    log.info("%s: int8 agrees with fp32: %s", fp32.path.name, found.figures)
    return found


def prefers_int8(model, backend: str = "auto") -> bool:
    """Whether ``precision="auto"`` runs ``model`` in int8: only where the CPU has VNNI or AMX
    (:func:`quantize.int8_capable`), the int8 model passed its check, and a one-off timing (median of 5 interleaved
    runs of a batch of 8, once per export) shows it faster than the fp32 export. The choice and its reason are logged."""
    if backend == "torch" or not quantize.int8_capable():
        return False
    try:
        fp32 = model if isinstance(model, OnnxModel) else resolve_backend("onnx", model)
        int8 = int8_model(fp32, model_config(model))
    except (OnnxUnavailable, ValueError) as exc:  # Int8Refused is a ValueError
        log.info("precision auto: fp32 (%s)", first_line(exc))
        return False
    if getattr(int8, "faster", None) is None:
        x = np.random.default_rng(0).standard_normal((8, *model_config(model)["input_size"])).astype(np.float32)
        times = {fp32: [], int8: []}
        for _ in range(6):
            for m, t in times.items():
                start = time.perf_counter()
                m.run(x)
                t.append(time.perf_counter() - start)
        fp32_s, int8_s = (float(np.median(t[1:])) for t in times.values())  # the first run warms up
        int8.faster = int8_s < fp32_s
        log.info(
            "precision auto: %s (batch of 8: int8 %.1f ms, fp32 %.1f ms)",
            "int8" if int8.faster else "fp32",
            int8_s * 1e3,
            fp32_s * 1e3,
        )
    return int8.faster


# ---------------------------------------------------------------------------------------------- ONNX sessions
def onnx_model(model: nn.Module):
    """The ONNX Runtime model of ``model``, cached per model object and rebuilt when its weights change.

    Returns
    -------
    OnnxModel or str
        The session, or the reason the model runs in torch (the export failed or disagreed with torch).
    """
    try:
        stamp = weights_fingerprint(model)
    except RuntimeError:  # weights made under inference_mode carry no version counter: key on their bytes
        stamp = onnx_export.weights_key(model)
    return _SESSIONS.get(id(model), lambda: _session(model), version=stamp, owner=model)


def _touch(*paths: Path) -> None:
    """Mark files as recently used, so that pruning keeps them."""
    for path in paths:
        with contextlib.suppress(OSError):
            os.utime(path)


def _session(model: nn.Module):
    """OnnxModel for ``model`` (from the cached file, exported first when there is none), or the reason why not."""
    name = file_name(_label(model))
    path = cache_dir() / "onnx" / f"{name}-{onnx_export.weights_key(model)}.onnx"
    shared = find("onnx", path.name)
    if shared is not None and shared != path:  # a class's read-only cache: used as it is, never written
        try:
            found = checked_onnx(shared)
            count("loads")
            return found
        except Exception as exc:
            log.warning("%s cannot be loaded (%s); exporting it into %s", shared, first_line(exc), path.parent)
    if path.exists():
        try:
            found = checked_onnx(path)
            _touch(path)
            count("loads")
            _record_pristine(model, path)
            return found
        except Exception as exc:  # a damaged file (truncated, not ONNX): never used, exported again
            log.warning("%s cannot be loaded (%s); exporting it again", path, first_line(exc))
    try:
        private_dir("onnx")
        reason = onnx_export.export(model, path)
    except OSError as exc:  # a read-only home or a full disk
        reason = f"export not saved ({first_line(exc)})"
    if reason is not None:
        log.warning("running %s in torch: %s", _label(model), reason)
        return reason
    found = OnnxModel(path)
    count("loads")
    prune(path.parent)
    _record_pristine(model, path)
    return found


# ---------------------------------------------------------------------------------------------- pretrained models
def _pretrained_key_of(name: str, weights: Path) -> str:
    st = weights.stat()
    sig = (name, str(weights), st.st_size, st.st_mtime_ns, st.st_ino)
    if sig not in _KEYS:
        _KEYS[sig] = onnx_export.pretrained_key(name, weights)
    return _KEYS[sig]


def _record_pristine(model: nn.Module, path: Path) -> None:
    """Record ``path`` as the export of ``create_model(name, pretrained=True)`` if ``model`` is that model unchanged."""
    name = built_name(model)
    weights = pretrained_file(name) if name else None
    cfg = model_config(model)
    if weights is None or str(cfg.get("pretrained")) != str(weights):
        return
    key = _pretrained_key_of(name, weights)
    manifest = cache_dir() / "onnx" / record_name(name, key)
    write_record(manifest, name=name, weights=weights, key=key, onnx=path, config_json=config_json(cfg))


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
    weights = pretrained_file(name)
    if weights is None or not onnxruntime_available():
        return None
    try:
        key = _pretrained_key_of(name, weights)
    except OSError:
        return None
    manifest = find("onnx", record_name(name, key))  # the user's own record, else a shared cache's
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
        found = read_record(manifest, name=name, weights=weights, key=key)
    except Exception as exc:  # unreadable, out of date or damaged: the torch model is built instead
        log.info("%s not used: %s", manifest, exc)
        return str(exc)
    _touch(found.path, manifest)
    count("loads")
    return found
