"""Writing files that must survive a crash: :func:`atomic_write`, and :func:`atomic_paths` for files written by path.

A file is written under a temporary name in its own folder, flushed to the disk (:func:`os.fsync`), then renamed
over the target with :func:`os.replace`, which is atomic on POSIX and Windows: a reader, or the next session after
a crash or a full disk, sees the old file or the new one, never a part. The folder is synced after the rename so
the new name is on the disk too.

This module uses the standard library only, so every layer (the engine's model cache, the index, the lab) can
use it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

__all__ = ["atomic_write", "atomic_paths", "fsync_dir", "TEMP_SUFFIX"]

TEMP_SUFFIX = ".tmp"
"""Temporary files are named ``.<target name>.<random>.tmp`` beside their target."""


def fsync_dir(path) -> None:
    """Flush folder ``path`` (its entries: a rename or a new file) to the disk; nothing where it cannot be."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse to sync folders
        pass
    finally:
        os.close(fd)


def _new_temp(path: Path) -> tuple[Path, int]:
    while True:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")
        try:  # mode 0o666 less the umask, as open() gives (mkstemp's 0o600 would hide shared indexes)
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue


@contextlib.contextmanager
def atomic_paths(*paths):
    """Write several files atomically, by path: yield a temporary path for each target, rename them when done.

    For big or streamed files and for libraries that write by path (FAISS, SQLite, the ONNX exporter). When the
    ``with`` block ends normally every temporary file is flushed to the disk, renamed over its target with
    :func:`os.replace` in the order of ``paths`` (the last one, e.g. a file that describes the others, appears
    last), and the folders are synced. When it raises, the temporary files are removed and the targets are left
    as they were.

    Parameters
    ----------
    *paths : str or pathlib.Path
        The targets; their folders must exist.

    Yields
    ------
    list of pathlib.Path
        One temporary path per target, in the same folder (the file exists, empty).
    """
    targets = [Path(p) for p in paths]
    temps: list[Path] = []
    try:
        for p in targets:
            tmp, fd = _new_temp(p)
            os.close(fd)
            temps.append(tmp)
        yield temps
        for tmp in temps:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        for tmp, p in zip(temps, targets):
            os.replace(tmp, p)
    except BaseException:
        for tmp in temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    for folder in dict.fromkeys(p.parent for p in targets):
        fsync_dir(folder)


def atomic_write(path, data_or_writer, *, encoding: str = "utf-8") -> Path:
    """Write ``path`` atomically: a temporary file in the same folder, :func:`os.fsync`, :func:`os.replace`.

    Parameters
    ----------
    path : str or pathlib.Path
        The target; its folder must exist.
    data_or_writer : bytes, str or callable
        The contents (``str`` is encoded with ``encoding``), or ``writer(tmp)``, called with the temporary file's
        :class:`~pathlib.Path` (the file exists, empty) for libraries that write by path (FAISS, SQLite, the ONNX
        exporter). An exception from the writer propagates, and the target is left as it was.
    encoding : str
        Encoding of ``str`` contents.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError
        Any failure to write (a full disk: ``errno.ENOSPC``), after the temporary file is removed.
    """
    path = Path(path)
    with atomic_paths(path) as (tmp,):
        if callable(data_or_writer):
            data_or_writer(tmp)
        else:
            data = data_or_writer.encode(encoding) if isinstance(data_or_writer, str) else memoryview(data_or_writer)
            with open(tmp, "wb") as f:
                f.write(data)
    return path
