"""Inference: top-k classification (:func:`classify`) and L2-normalised embeddings (:func:`embed`)."""

from __future__ import annotations

import concurrent.futures

import numpy as np
import torch

from cnnwidgets.device import apply_thread_policy, cpu_cores

from .outputs import features_and_logits
from .precision import autocast, resolve_precision
from .preprocessing import (
    decode_batch,
    default_workers,
    model_device,
    normalised_batch,
    preprocess,
    split_batch,
)
from .registry import model_config
from .runtime import inference_model, prefers_int8, resolve_backend

__all__ = ["classify", "embed", "embed_and_classify", "CPU_FORWARD_CHUNK"]


# On CPU the forward pass runs in chunks of at most this many images: efficientnet_lite0's early
# activations for 8 images (≈ 13 MB in fp32) stay in the last-level cache, for 32 they do not
# (docs/benchmarks.md).
CPU_FORWARD_CHUNK = 8


def _chunked(fn, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``fn(x)``, run in cache-sized chunks along the batch axis on CPU, whole elsewhere."""
    if device.type != "cpu" or x.shape[0] <= CPU_FORWARD_CHUNK:
        return fn(x)
    return torch.cat([fn(c) for c in x.split(CPU_FORWARD_CHUNK)])


def _top_labels(probs: np.ndarray, labels, topk: int) -> list:
    """Per row of N×K probabilities, ``[(label, probability), ...]`` of the ``topk`` largest, best first."""
    k = min(int(topk), probs.shape[1])
    idx = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    out = []
    for row, ii in zip(probs, idx):
        out.append([(labels[j] if labels and j < len(labels) else f"class {j}", float(row[j])) for j in ii])
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def classify(model, images, *, topk: int = 5, fuse_bn: bool = True, backend: str = "auto", precision: str = "fp32"):
    """Top-k class predictions.

    Parameters
    ----------
    model : torch.nn.Module
        From :func:`create_model`; class names come from ``cnnw_config["labels"]``
        (``"class <i>"`` when it has none).
    images : image, list/tuple of images, N×H×W(×C) array or N×C×H×W tensor
        One image or a batch (anything :func:`cnnwidgets.io.load_image` accepts).
    topk : int
        How many classes to return per image (capped at the number of classes).
    fuse_bn : bool
        Run a cached copy of the model with each BatchNorm folded into the convolution before it
        (eval-mode models only; ``model`` is not changed). Same probabilities within 1e-5, fewer operations.
    backend : {"auto", "onnx", "torch"}
        Where the forward pass runs (see :mod:`cnnwidgets.engine.models.runtime`): ``"auto"`` uses ONNX Runtime
        for an eval-mode CPU model without hooks, torch otherwise.
    precision : {"fp32", "bf16", "int8", "auto"}
        As for :func:`embed`.

    Returns
    -------
    list of (str, float) or list of list of (str, float)
        For one image, ``[(label, probability), ...]`` best first (softmax probabilities in
        [0, 1]); for a batch, one such list per image.
    """
    if not isinstance(topk, (int, np.integer)) or topk < 1:
        raise ValueError(f"topk must be a positive integer, got {topk!r}")
    cfg = model_config(model)
    items, is_batch = split_batch(images)
    prec = _precision(precision, model, backend)
    apply_thread_policy()
    ort_model = resolve_backend(backend, model, precision=prec)
    x = preprocess(items, model)
    if ort_model is not None:
        logits = np.concatenate([ort_model.run(c)[1] for c in x.split(CPU_FORWARD_CHUNK)])
        probs = _softmax(logits)
    else:
        run = inference_model(model, fuse_bn and prec == "fp32")
        with torch.inference_mode(), autocast(x.device, prec):
            logits = _chunked(run, x, x.device)
            probs = torch.softmax(logits.float(), dim=1).cpu().numpy()
    out = _top_labels(probs, cfg.get("labels"), topk)
    return out if is_batch else out[0]


def embed(
    model,
    images,
    *,
    batch_size: int = 32,
    progress=None,
    precision: str = "fp32",
    channels_last: bool = True,
    workers: int | None = None,
    fuse_bn: bool = True,
    backend: str = "auto",
) -> np.ndarray:
    """L2-normalised pooled features (the penultimate layer) for many images.

    Each batch is decoded on a thread pool. Where decoding has cores of its own (a GPU model, or
    ``torch.get_num_threads()`` below the number of cores) it overlaps the forward pass of the
    previous batch; otherwise decoding and the forward pass alternate, each using all cores, because
    decode threads beside torch's intra-op threads on the same cores slow the forward pass far more
    than they gain.

    Parameters
    ----------
    model : torch.nn.Module
        From :func:`create_model` (timm models use ``forward_head(pre_logits=True)``, others the
        input of their last ``nn.Linear``).
    images : sequence of images, N×H×W(×C) array or N×C×H×W tensor, or one image
        Paths are decoded in parallel.
    batch_size : int
        Images decoded together and fed to the model together. On CPU the forward pass runs them
        in chunks of at most 8 (their activations stay in cache); results are the same up to float rounding.
    progress : bool or None
        tqdm.auto progress bar; None shows it when there are more than 4 batches.
    precision : {"fp32", "bf16", "int8", "auto"}
        ``"bf16"``: bfloat16 autocast; ``"int8"``: the model's int8 ONNX Runtime export (static QDQ
        quantization, checked against fp32 on first use and refused with the reason below the bar:
        :mod:`cnnwidgets.engine.models.quantize`); ``"auto"``: int8 where the CPU has VNNI/AMX and a one-off
        timing shows it faster (:func:`~cnnwidgets.engine.models.runtime.prefers_int8`), else bf16 where
        :func:`bf16_supported` says the device is fast at it, fp32 elsewhere. For efficientnet_lite0 on photographs, bf16
        embeddings stay within cosine similarity 0.99 of fp32 for more than 99 % of images (worst
        seen 0.984 over 1,000 camera-size files) and nearest neighbours keep their order up to
        near-ties (tested); flat synthetic patterns can fall to ≈ 0.97, so fp32 is the default.
    channels_last : bool
        Feed the batch in channels-last memory format (faster convolutions on CPUs with oneDNN;
        the model itself is not changed).
    workers : int, optional
        Decoding threads; default ``min(8, cores)`` when decoding alternates with the forward pass,
        ``min(8, spare cores)`` when it overlaps.
    fuse_bn : bool
        Run a cached copy of the model with each BatchNorm folded into the convolution before it
        (eval-mode models without forward hooks; ``model`` itself is not changed, and the copy is
        rebuilt when its weights change). Embeddings match the unfolded model within 1e-5, with fewer
        operations. Applies to fp32 only:
        with bf16 autocast folded weights lose too much precision, so bf16 runs the model unfolded.
    backend : {"auto", "onnx", "torch"}
        Where the forward pass runs (see :mod:`cnnwidgets.engine.models.runtime`). ``"auto"``: ONNX Runtime
        for an fp32, eval-mode CPU model without hooks that exports and agrees with torch (cosine ≥ 0.9999),
        torch otherwise; ``"onnx"``: ONNX Runtime or an error saying why not; ``"torch"``: torch only.
        (Speeds of each: docs/benchmarks.md.)

    Returns
    -------
    numpy.ndarray
        float32, N×D, each row of unit L2 norm (all-zero features stay zero).
    """
    args = (batch_size, progress, precision, channels_last, workers, fuse_bn, backend)
    return _forward_all(model, images, *args, with_logits=False, desc="embed")[0]


def embed_and_classify(
    model,
    images,
    *,
    topk: int = 5,
    batch_size: int = 32,
    progress=None,
    workers: int | None = None,
    fuse_bn: bool = True,
    backend: str = "auto",
    precision: str = "fp32",
) -> tuple[np.ndarray, list]:
    """:func:`embed` and :func:`classify` of many images from one forward pass each.

    Parameters
    ----------
    model : torch.nn.Module
    images : sequence of images, N×H×W(×C) array or N×C×H×W tensor
    topk : int
    batch_size, progress, workers, fuse_bn, backend, precision
        As for :func:`embed`.

    Returns
    -------
    (numpy.ndarray, list)
        float32 N×D unit-norm embeddings, and per image ``[(label, probability), ...]`` best first.
    """
    if not isinstance(topk, (int, np.integer)) or topk < 1:
        raise ValueError(f"topk must be a positive integer, got {topk!r}")
    args = (batch_size, progress, precision, True, workers, fuse_bn, backend)  # channels-last
    feats, logits = _forward_all(model, images, *args, with_logits=True, desc="embed+tags")
    return feats, _top_labels(_softmax(logits), model_config(model).get("labels"), topk)


def _precision(precision: str, model, backend: str) -> str:
    """``precision`` resolved for ``model``: "fp32", "bf16" or "int8" ("auto": int8 where :func:`prefers_int8`)."""
    device = model_device(model)
    prec = resolve_precision(precision, device)
    if precision == "auto" and device.type == "cpu" and prefers_int8(model, backend):
        return "int8"
    return prec


def _forward_all(
    model, images, batch_size, progress, precision, channels_last, workers, fuse_bn, backend, *, with_logits, desc
):
    """Unit-norm features (N×D float32) and, when ``with_logits``, logits (N×K float32) of every image; the
    arguments between ``images`` and ``with_logits`` are :func:`embed`'s, in its order."""
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    cfg = model_config(model)
    items, _ = split_batch(images)
    if not items:
        raise ValueError("embed: no images given")
    device = model_device(model)
    prec = _precision(precision, model, backend)
    apply_thread_policy()
    ort_model = resolve_backend(backend, model, precision=prec)
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    show = len(batches) > 4 if progress is None else bool(progress)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(items), desc=f"{desc} {cfg.get('name', '')}", unit="img", disable=not show)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    # Decoding overlaps the forward pass only where it has cores of its own (a GPU model, or a CPU
    # model whose torch thread count leaves cores free). Otherwise the two alternate, each with all
    # cores: decode threads running beside torch's OpenMP threads on the same cores stall them.
    if device.type == "cpu":
        spare = cpu_cores() - (ort_model.threads if ort_model is not None else torch.get_num_threads())
    else:
        spare = cpu_cores()
    overlap = spare >= 1
    n_workers = workers or (max(1, min(8, spare)) if overlap else default_workers())

    # folding only for fp32: under bf16 autocast the folded convolutions round worse (min cosine to fp32
    # fell from 0.997 to 0.986 on camera photos, below the stated 0.99), so bf16 runs the model as it is.
    # ONNX Runtime runs its own graph (BatchNorm folded at export): no torch copy is folded for it.
    run = model if ort_model is not None else inference_model(model, fuse_bn and prec == "fp32")

    def forward_torch(x):
        with torch.inference_mode(), autocast(device, prec):
            if with_logits:
                f, lg = features_and_logits(run, x)
                return f.float(), lg.float()
            return features_and_logits(run, x)[0].float(), None

    def forward(x):
        """Features and logits (None unless ``with_logits``) of a batch, as CPU tensors, in cache-sized chunks."""
        chunks = x.split(CPU_FORWARD_CHUNK) if device.type == "cpu" else (x,)
        if ort_model is not None:
            parts = [tuple(map(torch.from_numpy, ort_model.run(c))) for c in chunks]
        else:
            parts = [forward_torch(c) for c in chunks]
        f = torch.cat([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        lg = (torch.cat([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]) if with_logits else None
        return f, lg

    feats, logits = [], []
    try:
        with (
            concurrent.futures.ThreadPoolExecutor(n_workers) as pool,
            concurrent.futures.ThreadPoolExecutor(1) as loader,
        ):
            decode = lambda b: np.stack(decode_batch(b, cfg, pool=pool))  # noqa: E731
            pending = loader.submit(decode, batches[0]) if overlap else None
            for bi in range(len(batches)):
                if overlap:
                    arr = pending.result()
                    if bi + 1 < len(batches):
                        pending = loader.submit(decode, batches[bi + 1])
                else:
                    arr = decode(batches[bi])
                x = normalised_batch(arr, cfg, device, torch.contiguous_format if ort_model else fmt)
                del arr
                f, lg = forward(x)
                feats.append(torch.nn.functional.normalize(f, dim=1).cpu().numpy())
                if with_logits:
                    logits.append(lg.cpu().numpy())
                bar.update(len(x))
    finally:
        bar.close()
    out = np.concatenate(feats).astype(np.float32, copy=False)
    return out, (np.concatenate(logits).astype(np.float32, copy=False) if with_logits else None)
