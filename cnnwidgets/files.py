"""Writing files that must survive a crash: the one helper, :func:`atomic_write` (DESIGN rule 11).

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

__all__ = ["atomic_write", "fsync_dir", "TEMP_SUFFIX"]

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
    tmp, fd = _new_temp(path)
    try:
        if callable(data_or_writer):
            os.close(fd)
            fd = -1
            data_or_writer(tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        else:
            data = data_or_writer.encode(encoding) if isinstance(data_or_writer, str) else memoryview(data_or_writer)
            with os.fdopen(fd, "wb") as f:
                fd = -1
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path
