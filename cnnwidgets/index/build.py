"""From files to index rows: which files to read, their captions, decoding with reasons for failures, descriptors.

Nothing here keeps state except the shared CNN cache: :func:`describe_images` computes descriptor vectors and
tags for decoded images, :func:`decode_batches` turns files into decoded images, fingerprints and a list of
skipped files with the reason.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..datasets import IMAGE_EXTENSIONS
from ..io import DEFAULT_MAX_PIXELS, ImageLoadError, load_image
from .rows import Fingerprint

__all__ = [
    "DESCRIPTORS",
    "TOPK_TAGS",
    "metric",
    "FileBatch",
    "DecodedBatch",
    "list_image_files",
    "read_captions",
    "resolve_captions",
    "learn_vocabularies",
    "describe_images",
    "decode_batches",
    "DECODE_SIDE",
]

DESCRIPTORS = ("cnn", "color", "moments", "sift", "orb", "color_set", "correlogram", "hog", "gist", "glcm")
TOPK_TAGS = 5


def metric(name: str) -> str:
    """The FAISS metric of descriptor ``name``: "ip" (inner product) or "l2" (see :mod:`cnnwidgets.engine.features`)."""
    from ..engine.features import METRICS

    return METRICS[name]


def _shared_model(name: str):
    """The pretrained CNN ``name`` from the process-wide model cache (:func:`cnnwidgets.engine.models.shared_model`)."""
    from ..engine.models import shared_model

    return shared_model(name, pretrained=True)


def describing_model(name: str):
    """What computes the CNN descriptor and tags of ``name``: the shared CNN when this process has it, else its
    recorded ONNX Runtime export, which starts without timm or the torch model
    (:func:`cnnwidgets.engine.models.shared_runner`)."""
    from ..engine.models import shared_runner

    return shared_runner(name)


def list_image_files(source) -> tuple[list[Path], Path | None]:
    """The image files of a folder (recursively, hidden entries left out, sorted) or of a list of paths.

    Returns
    -------
    (files, root) : list of pathlib.Path, pathlib.Path or None
        Absolute paths (each once, in the given order for a list); ``root`` is the folder, or None for a list
        or a single file.

    Raises
    ------
    ValueError
        If a folder does not exist.
    TypeError
        If ``source`` is neither a path nor an iterable of paths.
    """
    if isinstance(source, (str, os.PathLike)):
        root = Path(source).expanduser()
        if not root.exists():
            raise ValueError(f"{root}: folder not found")
        if root.is_file():
            return [root.resolve()], None
        # a dangling symbolic link is listed (by its own path), so that decoding reports it as skipped
        files = sorted(
            p.resolve() if p.exists() else p.absolute()
            for p in root.rglob("*")
            if (p.is_file() or (p.is_symlink() and not p.exists()))
            and p.suffix.lower() in IMAGE_EXTENSIONS
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
        return files, root.resolve()
    try:
        items = list(source)
    except TypeError:
        raise TypeError(f"source must be a folder or a list of image paths, not {type(source).__name__}") from None
    return list(dict.fromkeys(Path(p).expanduser().resolve() for p in items)), None


def read_captions(csv_path) -> dict[str, str]:
    """Read a captions CSV with columns ``path, caption`` (header optional); relative paths are taken from the CSV's folder.

    Raises
    ------
    ValueError
        If the file cannot be read or a row does not have two columns.
    """
    csv_path = Path(csv_path)
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{csv_path}: cannot read captions ({exc})") from None
    out = {}
    for n, row in enumerate(rows, 1):
        if not row or (n == 1 and [c.strip().lower() for c in row[:2]] == ["path", "caption"]):
            continue
        if len(row) < 2:
            raise ValueError(f"{csv_path}, line {n}: expected 'path,caption', got {row!r}")
        p = Path(row[0].strip())
        out[str((csv_path.parent / p).resolve() if not p.is_absolute() else p.resolve())] = row[1].strip()
    return out


def resolve_captions(captions, root: Path | None) -> dict[str, str]:
    """``{absolute path: caption}`` from a dict, a CSV path, or (None) the folder's ``captions.csv`` when present.

    Relative keys of a dict are taken from ``root`` (the current folder when ``root`` is None).
    """
    if captions is None:
        if root is not None and (root / "captions.csv").exists():
            return read_captions(root / "captions.csv")
        return {}
    if isinstance(captions, (str, os.PathLike)):
        return read_captions(captions)
    if isinstance(captions, dict):
        base = root or Path.cwd()
        return {
            str((base / Path(k)).resolve() if not Path(k).is_absolute() else Path(k).resolve()): str(v)
            for k, v in captions.items()
        }
    raise TypeError(f"captions must be a dict, a CSV path or None, not {type(captions).__name__}")


def learn_vocabularies(files, kinds, *, size: int, sample: int = 200, seed: int = 0) -> dict:
    """Visual vocabularies (``{kind: Vocabulary}``) for "sift" / "orb", learnt from a random sample of ``files``.

    Files that cannot be decoded are left out of the sample.
    """
    from ..engine import features

    kinds = list(kinds)
    if not kinds:
        return {}
    rng = np.random.default_rng(seed)
    chosen = [files[i] for i in sorted(rng.choice(len(files), min(sample, len(files)), replace=False))] if files else []
    images = []
    for p in chosen:
        try:
            images.append(load_image(p))
        except (ImageLoadError, OSError):
            continue
    out = {}
    for kind in kinds:
        descs = [features.local_features(im, kind=kind, max_features=300) for im in images]
        out[kind] = features.learn_vocabulary(descs, kind=kind, size=size, seed=seed)
    return out


def describe_images(
    images: list, names, *, model, color_bins, vocabularies: dict, with_tags: bool = True, precision: str = "fp32"
) -> tuple[dict, list]:
    """Descriptor vectors and top-5 tags of decoded images.

    Parameters
    ----------
    images : list of numpy.ndarray
        RGB uint8 images, H×W×3.
    names : sequence of str
        Descriptors to compute, from :data:`DESCRIPTORS`.
    model : torch.nn.Module
        The CNN for "cnn" and for the tags.
    color_bins : sequence of 3 ints
        HSV histogram bins for "color".
    vocabularies : dict
        ``{"sift" / "orb": Vocabulary}`` for the bag-of-visual-words descriptors.
    with_tags : bool
        Classify the images; otherwise every image's tags are ``[]``.
    precision : {"fp32", "bf16", "int8", "auto"}
        Of the CNN (:func:`cnnwidgets.engine.models.embed`).

    Returns
    -------
    (vectors, tags) : dict, list
        ``{name: float32 array (N, D)}``, and per image a list of ``(label, probability)``.
    """
    from ..engine import features, models

    out = {}
    tags = None
    if with_tags and images and "cnn" in names:
        out["cnn"], tags = features.cnn_with_tags(images, model=model, topk=TOPK_TAGS, precision=precision)
    for name in names:
        if name in out:
            continue
        if name == "cnn":
            out[name] = features.cnn(images, model=model, precision=precision)
        elif name == "color":
            out[name] = features.color_histogram(images, bins=color_bins)
        elif name == "moments":
            out[name] = features.color_moments(images)
        elif name == "sift":
            out[name] = features.sift_bovw(images, vocabulary=vocabularies[name])
        elif name == "color_set":
            out[name] = features.color_set(images)
        elif name == "correlogram":
            out[name] = features.color_correlogram(images)
        elif name == "hog":
            out[name] = features.hog(images)
        elif name == "gist":
            out[name] = features.gist(images)
        elif name == "glcm":
            out[name] = features.glcm(images)
        else:
            out[name] = features.orb_bovw(images, vocabulary=vocabularies[name])
    if tags is None:
        tags = (
            models.classify(model, images, topk=TOPK_TAGS, precision=precision)
            if with_tags and images
            else [[] for _ in images]
        )
    return out, [[(str(t), float(p)) for t, p in row] for row in tags]


@dataclass
class FileBatch:
    """The files of one batch: those that were handled, with their fingerprints, and those that were not.

    Attributes
    ----------
    paths : list of str
        Absolute paths of the files handled.
    fingerprints : list of Fingerprint
        One per path.
    skipped : list of (str, str)
        Files that could not be read or decoded, with the reason.
    """

    paths: list = field(default_factory=list)
    fingerprints: list = field(default_factory=list)
    skipped: list = field(default_factory=list)


@dataclass
class DecodedBatch(FileBatch):
    """Files of one batch that were read and decoded (:class:`FileBatch`), with their images.

    Attributes
    ----------
    images : list of numpy.ndarray
        RGB uint8 images, H×W×3, one per path.
    """

    images: list = field(default_factory=list)


DECODE_SIDE = 256
"""Files are decoded at no less than twice this on their short side (JPEG draft decoding): enough for the CNN
(efficientnet_lite0 resizes the short side to 256) and for colour statistics (computed at 256 pixels)."""


def _decode_reduced(data: bytes, min_side: int) -> np.ndarray:
    """RGB uint8 H×W×3 of an encoded image; a JPEG decoded at 1/2, 1/4 or 1/8 scale where its short side stays
    at least ``2 * min_side``. Raises :class:`ImageLoadError` with the reason for an unreadable image."""
    import io
    import math

    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data))
        if img.format == "JPEG" and img.mode in ("RGB", "L"):
            w, h = img.size
            scale = min(w, h) / max(2 * min_side, 1)
            if scale >= 2 and w * h <= DEFAULT_MAX_PIXELS:
                img.draft(img.mode, (math.ceil(w / scale), math.ceil(h / scale)))
                img.load()
                return load_image(img, mode="rgb")
    except Exception:  # load_image below names the problem
        pass
    return load_image(data, mode="rgb")


def _read_one(path: Path, stored_sha1, min_side: int):
    """Read, fingerprint and decode one file: ``(key, image, Fingerprint)``, ``(key, None, reason)`` when it cannot
    be read or decoded, or None when it is indexed and unchanged."""
    key = str(path)
    try:
        if path.is_symlink() and not path.exists():
            return key, None, f"dangling symbolic link (to {os.readlink(path)})"
        st = path.stat()
        data = path.read_bytes()
        digest = hashlib.sha1(data).hexdigest()
        if stored_sha1(key) == digest:
            return None
        image = _decode_reduced(data, min_side)
    except ImageLoadError as exc:
        return key, None, exc.reason
    except OSError as exc:
        return key, None, f"cannot read file: {exc.strerror or exc}"
    return key, image, Fingerprint(st.st_size, st.st_mtime_ns, digest)


def decode_batches(
    files,
    *,
    stored_sha1: Callable[[str], str | None],
    chunk: int = 32,
    progress: bool = True,
    min_side: int = DECODE_SIDE,
    workers: int | None = None,
) -> Iterator[DecodedBatch]:
    """Read and decode ``files`` in batches of ``chunk`` on a thread pool, leaving out files that are indexed and
    unchanged; the next batch is read and decoded while the caller describes the current one.

    Each file is read once: its SHA-1 fingerprint comes from the bytes read, the image is decoded from them (JPEG
    at a reduced scale, keeping at least ``2 * min_side`` pixels on the short side). A file that cannot be read
    or decoded, a dangling symbolic link included, is reported in ``skipped`` by name and reason.

    Parameters
    ----------
    files : list of pathlib.Path
    stored_sha1 : callable
        ``f(path) -> sha1 or None``: the digest recorded for an indexed path. A file whose bytes have that digest
        is left out. It is called from the decode threads.
    chunk : int
        Files per batch.
    progress : bool
        Show a tqdm progress bar (images per second) as batches are handed on.
    min_side : int
        Decoded images keep at least twice this on their short side (JPEG draft decoding).
    workers : int, optional
        Decode threads; default :func:`cnnwidgets.device.cpu_threads`.

    Yields
    ------
    DecodedBatch
        ``images`` are RGB uint8 H×W×3 arrays.
    """
    import concurrent.futures

    from tqdm.auto import tqdm

    from ..device import cpu_threads

    bar = tqdm(total=len(files), desc="indexing", unit="img", disable=not progress)
    batches = [files[i : i + chunk] for i in range(0, len(files), chunk)]
    try:
        with concurrent.futures.ThreadPoolExecutor(workers or cpu_threads()) as pool:

            def submit(batch):
                return [pool.submit(_read_one, Path(p), stored_sha1, min_side) for p in batch]

            pending = submit(batches[0]) if batches else []
            for bi in range(len(batches)):
                current, pending = pending, (submit(batches[bi + 1]) if bi + 1 < len(batches) else [])
                batch = DecodedBatch()
                for fut in current:
                    found = fut.result()
                    if found is None:
                        continue
                    key, image, info = found
                    if image is None:
                        batch.skipped.append((key, info))
                        continue
                    batch.paths.append(key)
                    batch.images.append(image)
                    batch.fingerprints.append(info)
                yield batch
                bar.update(len(current))
    finally:
        bar.close()
