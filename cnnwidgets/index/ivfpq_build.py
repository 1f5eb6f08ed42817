"""Assembling an on-disk IVF index from shards of vectors that never need to be in memory together.

:func:`build_ondisk` trains on a sample, adds each shard to an empty trained copy, writes per-shard indexes and
merges their lists into one ``.ivfdata`` file with :func:`faiss.contrib.ondisk.merge_ondisk`; the result is the
files of :mod:`.ivfpq_files`, opened as an :class:`~cnnwidgets.index.ondisk.IVFPQIndex`.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import ivfpq_files
from .exact_vectors import EXACT_DTYPES, LITTLE_ENDIAN
from .ivfpq_train import faiss_metric, ivf_nlist, ivf_nprobe, ivfpq_factory, trained_index

if TYPE_CHECKING:
    from .ondisk import IVFPQIndex

__all__ = ["build_ondisk"]

_SHARD_BYTES = 256 << 20
"""Codes buffered in memory before a shard index is written by :func:`build_ondisk`."""


def _chunks_of(shards: Iterable):
    for ids, x in shards:
        ids = np.ascontiguousarray(ids, dtype=np.int64).ravel()
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or len(x) != len(ids):
            raise ValueError(f"a shard has {len(ids)} IDs and vectors of shape {x.shape}; expected (n,) and (n, d)")
        yield ids, x


def _training_sample(stream, count: int | None, train_size: int | None, factory: str | None):
    """The first shards of ``stream``, enough to train on, and the factory string (default: from count and d)."""
    buffered, seen = [], 0
    limit = train_size
    if limit is None:
        limit = max(50 * ivf_nlist(count), 1 << 16) if count is not None else 1 << 16
        if count is not None:
            limit = min(limit, int(count))
    exhausted = False
    while seen < limit:
        try:
            ids, x = next(stream)
        except StopIteration:
            exhausted = True
            break
        buffered.append((ids, x))
        seen += len(ids)
    if seen == 0:
        raise ValueError("build_ondisk: the shards hold no vectors")
    d = buffered[0][1].shape[1]
    if any(x.shape[1] != d for _, x in buffered):
        raise ValueError("build_ondisk: shards differ in dimension")
    if factory is None:
        if count is None and not exhausted:
            raise ValueError(
                "build_ondisk: give count= (the number of vectors, an estimate will do) or factory=; "
                f"the stream holds more than the {limit} training vectors"
            )
        factory = ivfpq_factory(seen if count is None else count, d)
    return buffered, np.concatenate([x for _, x in buffered])[:limit], factory


def build_ondisk(
    shards: Iterable,
    folder,
    *,
    name: str = "cnn",
    metric: str = "ip",
    factory: str | None = None,
    count: int | None = None,
    train_size: int | None = None,
    exact_dtype: str | None = "float16",
    nprobe: int | None = None,
) -> IVFPQIndex:
    """Assemble an on-disk IVF index from shards of vectors that need not fit in memory together.

    The first ``train_size`` vectors of the stream train the structure (shuffle the shards upstream if they are
    ordered by content). Each shard is then encoded by an empty trained copy; shard indexes of up to 256 MB of
    codes are written to a temporary folder inside ``folder`` and merged into one ``<name>.ivfdata`` file by
    :func:`faiss.contrib.ondisk.merge_ondisk`; the exact vectors are streamed to ``<name>.exact``. Memory in use:
    the training sample, one shard, 256 MB of codes and the coarse quantiser.

    Parameters
    ----------
    shards : iterable of (numpy.ndarray, numpy.ndarray)
        ``(ids, vectors)`` pairs: int64 (n,) and float32 (n, d), d the same for all. IDs are the row IDs and must
        be unique over all shards.
    folder : str or pathlib.Path
        Where the files listed in :mod:`cnnwidgets.index.ivfpq_files` are written (created if needed); a
        generation folder of an index folder, or any folder of its own.
    name : str
        File stem, the descriptor name in an index folder.
    metric : {"ip", "l2"}
        Inner product (L2-normalised vectors, cosine) or squared L2 distance.
    factory : str, optional
        A FAISS ``index_factory`` string of an IVF structure, e.g. ``"PCAR256,IVF4096,PQ64"``,
        ``"OPQ64_256,IVF4096,PQ64"`` or ``"IVF4096,Flat"``; default :func:`ivfpq_factory` of ``count`` and d.
    count : int, optional
        The total number of vectors, or an estimate; it sizes the default structure. Needed when ``factory`` is
        not given, unless the whole stream fits in the training sample.
    train_size : int, optional
        Training sample size; default ``max(50 × cells, 65,536)``, at most ``count``.
    exact_dtype : {"float16", "float32", None}
        Keep the exact vectors for re-ranking in this type (float16 halves the file, 2 bytes per dimension), or
        not at all.
    nprobe : int, optional
        Cells visited per query (stored with the index); default :func:`~.ivfpq_train.ivf_nprobe`.

    Returns
    -------
    IVFPQIndex
        Opened from ``folder``: lists memory-mapped, exact vectors read from their file when needed.

    Raises
    ------
    ValueError
        If there are no vectors, shards disagree in dimension or an ID occurs twice, ``factory`` is not an IVF
        structure, or the default structure needs ``count``; the files of ``name`` in ``folder`` are then left as
        they were.
    """
    import faiss
    from faiss.contrib.ondisk import merge_ondisk

    from .ondisk import IVFPQIndex

    if exact_dtype is not None and exact_dtype not in EXACT_DTYPES:
        raise ValueError(f"exact_dtype={exact_dtype!r}: expected one of {EXACT_DTYPES} or None")
    faiss_metric(metric)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stream = _chunks_of(shards)
    buffered, sample, factory = _training_sample(stream, count, train_size, factory)
    d = sample.shape[1]
    try:
        trained = trained_index(factory, d, metric, sample)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"build_ondisk: factory {factory!r} cannot be trained ({str(exc).splitlines()[0]})") from None
    del sample
    ivf = faiss.extract_index_ivf(trained)
    ivf.nprobe = int(nprobe) if nprobe is not None else ivf_nprobe(ivf.nlist)
    scratch = folder / f".{name}-shards-{uuid.uuid4().hex[:8]}"
    scratch.mkdir()
    try:
        with ivfpq_files.writing(folder, name, exact=exact_dtype is not None) as tmp:
            ids_path = tmp[".ids"] if exact_dtype is not None else scratch / "ids"
            exact_path = tmp[".exact"] if exact_dtype is not None else None
            shards = _chained(buffered, stream)
            shard_files = _encode_shards(
                faiss.serialize_index(trained), shards, scratch, exact_path, exact_dtype, ids_path
            )
            out = faiss.deserialize_index(faiss.serialize_index(trained))
            merge_ondisk(out, shard_files, str(tmp[".ivfdata"]))
            for f in shard_files:
                Path(f).unlink()
            faiss.write_index(out, str(tmp[".faiss"]))
            info = dict(IVFPQIndex(out, metric=metric, factory=factory).info(name), exact_dtype=exact_dtype)
            del out
            ivfpq_files.write_info(tmp[".ivfpq.json"], info)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return IVFPQIndex.open(folder, name)


def _encode_shards(template, shards, scratch: Path, exact_path, exact_dtype, ids_path: Path):
    """Encode ``shards`` into shard indexes of up to 256 MB of codes in ``scratch``; stream the exact vectors and
    the IDs to their files. Returns the shard files; a repeated ID raises ValueError."""
    import faiss

    shard_files, current, total, last_id, ascending = [], None, 0, None, True

    def flush():
        nonlocal current
        if current is not None and current.ntotal:
            f = scratch / f"shard{len(shard_files):05d}.faiss"
            faiss.write_index(current, str(f))
            shard_files.append(str(f))
        current = None

    first = faiss.deserialize_index(template)
    code_size, d = faiss.extract_index_ivf(first).code_size, first.d
    del first
    with open(exact_path or scratch / "exact", "wb") as fx, open(ids_path, "wb") as fi:
        for ids, x in shards:
            if x.shape[1] != d:
                raise ValueError(f"build_ondisk: a shard has dimension {x.shape[1]}, the first had {d}")
            if len(ids) == 0:
                continue
            if current is None:
                current = faiss.deserialize_index(template)
            current.add_with_ids(x, ids)
            if exact_dtype is not None:
                fx.write(x.astype(LITTLE_ENDIAN[exact_dtype]).tobytes())
            fi.write(ids.astype("<i8").tobytes())
            if ascending:
                ascending = bool(np.all(ids[1:] > ids[:-1])) and (last_id is None or ids[0] > last_id)
            last_id = int(ids[-1])
            total += len(ids)
            if current.ntotal * (code_size + 8) >= _SHARD_BYTES:
                flush()
        flush()
    if not ascending and len(np.unique(np.fromfile(ids_path, dtype="<i8", count=total))) != total:
        raise ValueError("build_ondisk: an ID occurs twice in the shards")
    return shard_files


def _chained(buffered: list, stream):
    """The buffered shards (released as they are handed out), then the rest of the stream."""
    while buffered:
        yield buffered.pop(0)
    yield from stream
