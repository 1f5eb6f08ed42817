"""The files of ONNX exports: the ONNX Runtime session of one file (:class:`OnnxModel`), the digest that proves a
file is the one checked at export, the records of pretrained models' exports, and pruning the folder.

Where the files live and when they are made is :mod:`.runtime`'s job; how they are made, :mod:`.onnx_export`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from pathlib import Path

import numpy as np
import torch

from cnnwidgets.device import cpu_threads
from cnnwidgets.files import atomic_write

__all__ = [
    "KEEP_FILES",
    "OnnxModel",
    "stats",
    "count",
    "file_name",
    "file_digest",
    "write_digest",
    "checked_onnx",
    "record_name",
    "write_record",
    "read_record",
    "prune",
    "first_line",
]

log = logging.getLogger(__name__)

KEEP_FILES = 16  # exports kept in the cache folder, the least recently used deleted beyond it

_stats_lock = threading.Lock()
stats = {"exports": 0, "loads": 0, "quantized": 0}
"""How many ONNX files were exported, int8 files quantized, and sessions loaded from files (tests read it)."""


def count(event: str) -> None:
    """Add one to ``stats[event]`` (``"exports"``, ``"quantized"`` or ``"loads"``)."""
    with _stats_lock:
        stats[event] += 1


class OnnxModel:
    """An ONNX Runtime session of one model: ``run(x)`` gives its features and logits.

    Parameters
    ----------
    path : pathlib.Path
        The ONNX file (one input ``"input"``, outputs ``"features"`` and ``"logits"``).
    config : dict, optional
        The model's ``cnnw_config``; with it the session can stand in for the torch model in
        :func:`~cnnwidgets.engine.models.embed`, :func:`~cnnwidgets.engine.models.classify` and
        :func:`~cnnwidgets.engine.models.embed_and_classify` (see
        :func:`~cnnwidgets.engine.models.runtime.pretrained_onnx`).
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


def first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else ""


def file_name(name: str) -> str:
    """``name`` with every character but letters, digits, ``-`` and ``_`` replaced by ``_``."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def file_digest(path: Path) -> str:
    """Hex BLAKE2b (16 bytes) of the file's bytes."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _digest_path(path: Path) -> Path:
    """The file that records the digest of the export ``path`` when it was written and checked."""
    return path.with_name(path.name + ".blake2b")


def write_digest(path: Path) -> None:
    """Record the digest of the checked export ``path`` beside it (atomically)."""
    atomic_write(_digest_path(path), file_digest(path).encode())


def checked_onnx(path: Path, **kwargs) -> OnnxModel:
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
    if file_digest(path) != recorded:
        raise ValueError("its bytes differ from those checked at export: the file was changed or damaged")
    return OnnxModel(path, **kwargs)


def record_name(name: str, key: str) -> str:
    """The file name of the record of ``create_model(name, pretrained=True)``'s export under ``key``."""
    return f"{file_name(name)}-pretrained-{key}.json"


def write_record(manifest: Path, *, name: str, weights: Path, key: str, onnx: Path, config_json: str) -> None:
    """Record ``onnx`` as the export of ``create_model(name, pretrained=True)`` in ``manifest`` (unless it already
    says so); a folder that cannot be written is logged and left as it is."""
    record = {"name": name, "weights": str(weights), "key": key, "onnx": onnx.name, "config": json.loads(config_json)}
    try:
        if manifest.exists() and json.loads(manifest.read_text(encoding="utf-8")) == record:
            return
    except (OSError, ValueError):
        pass
    try:
        atomic_write(manifest, json.dumps(record))
    except OSError as exc:
        log.info("%s not written (%s)", manifest, exc)


def read_record(manifest: Path, *, name: str, weights: Path, key: str) -> OnnxModel:
    """The checked :class:`OnnxModel` that ``manifest`` records for ``name``, with the recorded configuration.

    Raises
    ------
    ValueError, OSError, KeyError
        When the record is unreadable, names another model or a file outside its folder, or the export is damaged.
    """
    record = json.loads(manifest.read_text(encoding="utf-8"))
    onnx_name = str(record["onnx"])
    if record.get("name") != name or record.get("weights") != str(weights) or record.get("key") != key:
        raise ValueError(f"{manifest} records another model")
    if Path(onnx_name).name != onnx_name:
        raise ValueError(f"{manifest} names a file outside its folder")
    cfg = dict(record["config"])
    for k in ("input_size", "mean", "std"):
        cfg[k] = tuple(cfg[k])
    return checked_onnx(manifest.parent / onnx_name, config=cfg)


def prune(folder: Path) -> None:
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
