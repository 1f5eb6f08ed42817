"""int8 exports: ONNX Runtime static quantization of a checked fp32 export, checked against it before first use.

The recipe (:data:`RECIPE`): QDQ format, int8 weights per output channel, uint8 activations with ranges calibrated
(min/max) on the images that ship with the package (every :func:`cnnwidgets.datasets.sample` and its mirror). The
check runs the fp32 and int8 models on held-out photos (:data:`CHECK_PHOTOS`: photos of scikit-learn, Matplotlib
and scikit-image that are not among the samples, each in 8 crops, mirrors and rotations) and refuses the int8
model, with the reason, when the two disagree beyond :data:`MIN_TOP1_AGREEMENT` or :data:`MIN_MEAN_COSINE`.

The int8 file is keyed by its fp32 export (whose name holds the weights key) and :data:`RECIPE`; beside it, its
digest and a record of the check (``<file>.json``: the figures, or the refusal, so a refused model is not quantized
again). Where the files live and when they are made is :mod:`.runtime`'s job.
"""

from __future__ import annotations

import functools
import importlib
import json
from pathlib import Path

import numpy as np
import torch

from cnnwidgets import datasets
from cnnwidgets.files import atomic_paths, atomic_write
from cnnwidgets.io import load_image

from .onnx_files import OnnxModel, checked_onnx, count, file_digest, first_line, write_digest
from .preprocessing import load_at_input_size, normalised_batch

__all__ = [
    "RECIPE",
    "MIN_TOP1_AGREEMENT",
    "MIN_MEAN_COSINE",
    "CHECK_PHOTOS",
    "Int8Refused",
    "int8_path",
    "int8_of",
    "agreement",
    "int8_capable",
]

RECIPE = "qdq-perchannel-u8s8-minmax-1"
"""The quantization recipe, part of every int8 file's name: a change makes new files."""

MIN_TOP1_AGREEMENT = 0.9
"""Least share of the check photos whose top-1 class the int8 model gives as the fp32 one does."""

MIN_MEAN_COSINE = 0.99
"""Least mean cosine between the int8 and fp32 features of the check photos."""

CHECK_PHOTOS = (
    ("sklearn", "datasets/images/china.jpg"),
    ("sklearn", "datasets/images/flower.jpg"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    ("skimage", "data/motorcycle_left.png"),
    ("skimage", "data/motorcycle_right.png"),
)
"""Photos that ship with scikit-learn, Matplotlib and scikit-image and are not calibration samples: (package, file)."""


class Int8Refused(ValueError):
    """The int8 model disagrees with the fp32 one beyond the bars, or cannot be made; the message is the reason."""


@functools.lru_cache(maxsize=1)
def int8_capable() -> bool:
    """Whether the CPU has the int8 dot-product instructions ONNX Runtime's int8 kernels are made for: AVX-512 VNNI,
    AVX-VNNI or AMX-INT8 (``/proc/cpuinfo`` flags)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        return False
    return bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})


def int8_path(fp32_path: Path, folder: Path) -> Path:
    """The int8 file of the fp32 export ``fp32_path``, in ``folder``."""
    return folder / f"{fp32_path.stem}-int8-{RECIPE}.onnx"


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _batch(images, cfg) -> np.ndarray:
    arrays = [load_at_input_size(img, cfg) for img in images]
    return normalised_batch(np.stack(arrays), cfg, torch.device("cpu")).numpy()


def _calibration_inputs(cfg) -> np.ndarray:
    """N×C×H×W float32: every bundled sample and its mirror, at the model's input size."""
    images = [datasets.sample(name, mode="rgb") for name in datasets.list_samples()]
    return _batch(images + [np.ascontiguousarray(img[:, ::-1]) for img in images], cfg)


def _views(img: np.ndarray) -> list[np.ndarray]:
    h, w = img.shape[:2]
    views = [img, img[:, ::-1], img[h // 6 :, w // 6 :], img[: h * 5 // 6, : w * 5 // 6]]
    views += [img[h // 8 : h * 7 // 8, w // 8 : w * 7 // 8], np.rot90(img), np.rot90(img, 3), img[::2, ::2]]
    return [np.ascontiguousarray(v) for v in views]


def _check_inputs(cfg) -> np.ndarray:
    """N×C×H×W float32: the :data:`CHECK_PHOTOS` in 8 views each, at the model's input size."""
    photos = []
    for package, name in CHECK_PHOTOS:
        path = Path(importlib.import_module(package).__file__).parent / name
        photos += _views(load_image(path, mode="rgb"))
    return _batch(photos, cfg)


def agreement(fp32: OnnxModel, int8: OnnxModel, x: np.ndarray) -> dict:
    """How far ``int8`` agrees with ``fp32`` on the inputs ``x`` (N×C×H×W).

    Returns
    -------
    dict
        ``top1_agreement`` (share of inputs with the same top-1 class), ``mean_cosine`` and ``min_cosine`` (of the
        features), ``images`` (N).
    """
    f32, l32 = fp32.run(x)
    f8, l8 = int8.run(x)
    a, b = f32.astype(np.float64), f8.astype(np.float64)
    cos = (a * b).sum(axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-300)
    return {
        "top1_agreement": round(float(np.mean(l32.argmax(axis=1) == l8.argmax(axis=1))), 4),
        "mean_cosine": round(float(cos.mean()), 5),
        "min_cosine": round(float(cos.min()), 5),
        "images": len(x),
    }


def _refusal(figures: dict) -> str | None:
    if figures["top1_agreement"] < MIN_TOP1_AGREEMENT:
        return f"int8 top-1 agrees with fp32 on {figures['top1_agreement']:.0%} of the check photos (< {MIN_TOP1_AGREEMENT:.0%})"
    if figures["mean_cosine"] < MIN_MEAN_COSINE:
        return f"int8 features have mean cosine {figures['mean_cosine']:.4f} to fp32 (< {MIN_MEAN_COSINE})"
    return None


def _quantize(fp32_path: Path, out: Path, calibration: np.ndarray) -> None:
    """Write the int8 model of ``fp32_path`` to ``out`` (a temporary path)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration[i : i + 1] for i in range(len(calibration)))

        def get_next(self):
            x = next(self.batches, None)
            return None if x is None else {"input": x}

    prepared = out.with_name(out.name + ".pre.onnx")
    try:
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    finally:
        prepared.unlink(missing_ok=True)


def _read(path: Path, fp32_digest: str, config) -> OnnxModel:
    """The checked int8 model recorded at ``path``, with its check's ``figures``; raises :class:`Int8Refused` with a
    recorded refusal, ValueError, KeyError or OSError when there is no usable record."""
    record = json.loads(_record_path(path).read_text(encoding="utf-8"))
    if record.get("recipe") != RECIPE or record.get("fp32_digest") != fp32_digest:
        raise ValueError("the record is of another fp32 export or recipe")
    if record.get("refused"):
        raise Int8Refused(record["refused"])
    found = checked_onnx(path, config=config)
    found.figures = record["figures"]
    return found


def int8_of(fp32: OnnxModel, cfg: dict, folder: Path) -> OnnxModel:
    """The int8 model of the checked fp32 export ``fp32``: read from ``folder`` when it was made and checked before,
    else quantized, checked and recorded there.

    Parameters
    ----------
    fp32 : OnnxModel
        A checked fp32 export.
    cfg : dict
        The model's ``cnnw_config`` (input size, mean, std).
    folder : pathlib.Path
        The export folder (it exists).

    Returns
    -------
    OnnxModel
        With ``figures``: the check's :func:`agreement` figures.

    Raises
    ------
    Int8Refused
        When the int8 model disagrees with fp32 beyond the bars (recorded: later calls raise it at once), or the
        quantizer fails.
    """
    path = int8_path(fp32.path, folder)
    fp32_digest = file_digest(fp32.path)
    config = getattr(fp32, "cnnw_config", None)
    try:
        found = _read(path, fp32_digest, config)
        count("loads")
        return found
    except Int8Refused:
        raise
    except (OSError, ValueError, KeyError):
        pass  # not made yet, or out of date or damaged: made again

    record = {"recipe": RECIPE, "fp32": fp32.path.name, "fp32_digest": fp32_digest, "refused": None}
    try:
        with atomic_paths(path) as (tmp,):
            _quantize(fp32.path, tmp, _calibration_inputs(cfg))
            int8 = OnnxModel(tmp, config=config)
            figures = agreement(fp32, int8, _check_inputs(cfg))
            record["figures"] = figures
            record["refused"] = _refusal(figures)
            if record["refused"]:
                raise Int8Refused(record["refused"])
    except Int8Refused:
        atomic_write(_record_path(path), json.dumps(record))
        raise
    except Exception as exc:  # the quantizer's own failures: fp32 stays the answer, with the reason
        raise Int8Refused(f"int8 quantization failed ({type(exc).__name__}: {first_line(exc)})") from None
    write_digest(path)
    atomic_write(_record_path(path), json.dumps(record))
    count("quantized")
    int8.path, int8.figures = path, figures  # the session read the file now renamed into place
    return int8
