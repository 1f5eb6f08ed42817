"""The files of an on-disk IVF-PQ index: their names, their atomic writing, and their checked opening.

Files of one index named ``name`` in a folder (a generation folder of an index folder, see
:mod:`cnnwidgets.index.storage`), in the order a write renames them into place::

    <name>.ivfdata      the inverted lists: per list its codes and IDs (faiss.OnDiskInvertedLists)
    <name>.exact        exact vectors, raw little-endian float16 or float32, C order, one row per ID (optional)
    <name>.ids          the ID of each row of <name>.exact, raw little-endian int64 (with <name>.exact)
    <name>.faiss        the FAISS index (PCA or OPQ matrix, coarse quantiser, PQ codebooks, list offsets)
    <name>.ivfpq.json   structure, metric, count, dimension, exact dtype, search parameters; renamed last

:func:`read_files` memory-maps ``.ivfdata`` and opens ``.exact`` for positioned reads
(:class:`~cnnwidgets.index.exact_vectors.FileRows`): nothing of either is read until a search needs it.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np

from ..files import atomic_paths
from .exact_vectors import EXACT_DTYPES, LITTLE_ENDIAN, ExactVectors, FileRows, map_file

__all__ = ["FORMAT", "FORMAT_VERSION", "file_names", "writing", "write_lists", "write_info", "read_files"]

FORMAT = "cnnwidgets-ivfpq"
FORMAT_VERSION = 1


def file_names(name: str, *, exact: bool = True) -> list[str]:
    """The file names of index ``name`` in its folder, in the order :func:`writing` renames them into place."""
    kept = [f"{name}.exact", f"{name}.ids"] if exact else []
    return [f"{name}.ivfdata", *kept, f"{name}.faiss", f"{name}.ivfpq.json"]


@contextlib.contextmanager
def writing(folder, name: str, *, exact: bool):
    """Write the files of index ``name`` into ``folder`` atomically (:func:`cnnwidgets.files.atomic_paths`).

    Yields
    ------
    dict
        ``{suffix: temporary path}`` for the suffixes ``.ivfdata``, ``.exact`` and ``.ids`` (when ``exact``),
        ``.faiss`` and ``.ivfpq.json``; when the block succeeds they are renamed into place, ``.ivfpq.json`` last,
        and when it fails none of them is left.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = file_names(name, exact=exact)
    with atomic_paths(*(folder / n for n in names)) as temps:
        yield {n[len(name) :]: t for n, t in zip(names, temps)}


def write_lists(faiss_index, lists, path: Path) -> None:
    """Point the IVF of ``faiss_index`` (trained, empty) at a copy of inverted lists ``lists`` written to ``path``.

    ``faiss_index`` then holds as many vectors as ``lists``, in an on-disk file that ``faiss.write_index`` records.
    """
    import faiss

    ivf = faiss.extract_index_ivf(faiss_index)
    ondisk = faiss.OnDiskInvertedLists(ivf.nlist, ivf.code_size, str(path))
    count = sum(lists.list_size(j) for j in range(ivf.nlist))
    if count:
        sources = faiss.InvertedListsPtrVector()
        sources.push_back(lists)
        ondisk.merge_from_multiple(sources.data(), 1, False, False)
    ivf.replace_invlists(ondisk, True)
    ondisk.this.disown()
    faiss_index.ntotal = ivf.ntotal = count


def write_info(path: Path, info: dict) -> None:
    """Write the ``.ivfpq.json`` description ``info`` (see :meth:`~cnnwidgets.index.ondisk.IVFPQIndex.info`)."""
    Path(path).write_text(
        json.dumps(dict(info, format=FORMAT, format_version=FORMAT_VERSION), indent=1, sort_keys=True)
    )


def read_files(folder, name: str, *, root=None):
    """Open the files of index ``name`` in ``folder``, checked: lists memory-mapped, exact vectors read when needed.

    Parameters
    ----------
    folder : str or pathlib.Path
    name : str
    root : str or pathlib.Path, optional
        The index folder that ``folder`` belongs to; errors then name it and the file as ``<folder>/<file>``.

    Returns
    -------
    (faiss.Index, dict, ExactVectors or None)
        The FAISS index with its lists mapped read-only, the ``.ivfpq.json`` description, the exact vectors.

    Raises
    ------
    cnnwidgets.index.IndexLoadError
        If a file is missing, unreadable or disagrees with ``<name>.ivfpq.json`` (count, dimension, sizes, IDs).
    """
    from .storage import IndexLoadError

    folder = Path(folder)
    prefix = f"{folder.name}/" if root is not None else ""

    def fail(problem: str):
        return IndexLoadError(root if root is not None else folder, prefix + problem)

    info = _read_info(folder / f"{name}.ivfpq.json", fail)
    ix = _read_faiss(folder, name, fail)
    if ix.ntotal != info.get("count") or ix.d != info.get("dim"):
        raise fail(
            f"{name}.faiss holds {ix.ntotal} × {ix.d}, {name}.ivfpq.json says {info.get('count')} × {info.get('dim')}"
        )
    exact = None
    dtype = info.get("exact_dtype")
    if dtype is not None:
        if dtype not in EXACT_DTYPES:
            raise fail(f"{name}.ivfpq.json: exact dtype {dtype!r} is not one of {EXACT_DTYPES}")
        exact = _read_exact(folder, name, dtype, int(ix.ntotal), int(ix.d), fail)
    return ix, info, exact


def _read_info(path: Path, fail) -> dict:
    if not path.exists():
        raise fail(f"{path.name} is missing")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise fail(f"{path.name} is not valid JSON ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise fail(f"{path.name} does not describe a {FORMAT}")
    if not isinstance(info.get("format_version"), int) or info["format_version"] > FORMAT_VERSION:
        raise fail(f"{path.name}: format version {info.get('format_version')!r} is not supported")
    return info


def _read_faiss(folder: Path, name: str, fail):
    """The FAISS index of ``name`` with its lists mapped from ``<name>.ivfdata`` of ``folder``, read-only."""
    import faiss

    for f in (f"{name}.faiss", f"{name}.ivfdata"):
        if not (folder / f).exists():
            raise fail(f"{f} is missing")
    try:  # the lists are mapped below, from this folder (the path stored in the file may be elsewhere)
        ix = faiss.read_index(str(folder / f"{name}.faiss"), faiss.IO_FLAG_SKIP_IVF_DATA)
    except RuntimeError as exc:
        raise fail(f"{name}.faiss cannot be read by FAISS ({str(exc).splitlines()[0]})") from None
    try:
        ivf = faiss.extract_index_ivf(ix)
    except RuntimeError:
        raise fail(f"{name}.faiss is not an IVF index") from None
    lists = faiss.downcast_InvertedLists(ivf.invlists)
    if not isinstance(lists, faiss.OnDiskInvertedLists):
        raise fail(f"{name}.faiss does not keep its lists on disk")
    lists_path = folder / f"{name}.ivfdata"
    if lists_path.stat().st_size != lists.totsize:
        raise fail(f"{lists_path.name} has {lists_path.stat().st_size} bytes, {name}.faiss expects {lists.totsize}")
    lists.filename = str(lists_path)
    lists.read_only = True
    if lists.totsize:
        lists.do_mmap()
    return ix


def _read_exact(folder: Path, name: str, dtype: str, count: int, dim: int, fail) -> ExactVectors:
    xf, idf = folder / f"{name}.exact", folder / f"{name}.ids"
    for f in (xf, idf):
        if not f.exists():
            raise fail(f"{f.name} is missing")
    want_x = count * dim * np.dtype(dtype).itemsize
    if xf.stat().st_size != want_x:
        raise fail(f"{xf.name} has {xf.stat().st_size} bytes, {count} × {dim} {dtype} needs {want_x}")
    if idf.stat().st_size != 8 * count:
        raise fail(f"{idf.name} has {idf.stat().st_size} bytes, {count} int64 IDs need {8 * count}")
    if count == 0:
        return ExactVectors(dim, dtype)
    x = FileRows(xf, LITTLE_ENDIAN[dtype], (count, dim))
    try:
        return ExactVectors.wrap(x, map_file(idf, "<i8", (count,)), dtype)
    except ValueError as exc:
        raise fail(f"{idf.name}: {exc}") from None
