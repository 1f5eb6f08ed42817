"""Exact vectors by ID, for re-ranking and reconstruction: rows read from a file when needed, rows added in memory.

An :class:`ExactVectors` keeps the vectors of an IVF-PQ index (:mod:`cnnwidgets.index.ondisk`) by ID: the rows of a
raw little-endian file (:class:`FileRows`, read with positioned reads) and chunks added since, in memory.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

__all__ = ["EXACT_DTYPES", "LITTLE_ENDIAN", "ExactVectors", "FileRows", "map_file"]

EXACT_DTYPES = ("float32", "float16")
LITTLE_ENDIAN = {"float32": "<f4", "float16": "<f2"}
"""The file dtype of each exact dtype."""
_BLOCK = 1 << 16


class _Growing:
    """An int64 array appended to in place: :attr:`view` shows the first ``n`` of an owned buffer that doubles."""

    def __init__(self, values: np.ndarray):
        self._buf = np.array(values, np.int64)
        self.view = self._buf[:]

    def extend(self, new: np.ndarray) -> np.ndarray:
        n = len(self.view)
        if n + len(new) > len(self._buf):
            buf = np.empty(max(2 * (n + len(new)), 1024), np.int64)
            buf[:n] = self.view
            self._buf = buf
        self._buf[n : n + len(new)] = new
        self.view = self._buf[: n + len(new)]
        return self.view


class ExactVectors:
    """Exact vectors by ID, for re-ranking: rows in a file (:class:`FileRows`) plus chunks added in memory.

    Parameters
    ----------
    dim : int
    dtype : {"float32", "float16"}
        Storage type; :meth:`take` always returns float32.
    """

    def __init__(self, dim: int, dtype: str = "float32"):
        if dtype not in EXACT_DTYPES:
            raise ValueError(f"exact dtype {dtype!r}: expected one of {EXACT_DTYPES}")
        self.dim = int(dim)
        self.dtype = dtype
        self._chunks: list[np.ndarray] = []
        self._starts: list[int] = []
        self._rows = 0
        self._ids = np.zeros(0, np.int64)  # live IDs, sorted (a view of a buffer that may be longer)
        self._pos = None  # the row of each ID in the chunks (None while _identity)
        self._identity = True  # row j holds the vector of _ids[j]
        self._grow_ids = self._grow_pos = None  # the buffers _ids and _pos are views of, while appended to
        self._n_on_disk = 0  # the first chunks are rows of files

    @classmethod
    def wrap(cls, x, ids: np.ndarray, dtype: str) -> ExactVectors:
        """A store over existing rows ``x`` (N×D: a :class:`FileRows`, a memory-mapped or an in-memory array) whose
        row ``j`` is the vector of ``ids[j]``.

        Raises
        ------
        ValueError
            If ``ids`` holds an ID twice.
        """
        store = cls(x.shape[1], dtype)
        store._chunks, store._starts, store._rows = [x], [0], len(x)
        store._n_on_disk = int(isinstance(x, (FileRows, np.memmap)))
        if len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1])):
            store._ids, store._pos, store._identity = ids, None, True
        else:
            order = np.argsort(ids, kind="stable")
            sorted_ids = np.asarray(ids)[order]
            if np.any(sorted_ids[1:] == sorted_ids[:-1]):
                raise ValueError("an ID is listed twice")
            store._ids, store._pos, store._identity = sorted_ids, order.astype(np.int64), False
        return store

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> np.ndarray:
        """The stored IDs, sorted (int64, N)."""
        return np.asarray(self._ids)

    @property
    def on_disk(self) -> bool:
        """Whether some stored rows are read from a file when needed rather than held in memory."""
        return self._n_on_disk > 0

    @property
    def nbytes(self) -> int:
        """Bytes of the stored rows (on disk or in memory)."""
        return self._rows * self.dim * np.dtype(self.dtype).itemsize

    def _positions(self) -> np.ndarray:
        return np.arange(len(self._ids), dtype=np.int64) if self._identity else self._pos

    def _consolidate(self) -> None:
        """Join the chunks added in memory into one (file chunks come first and stay), keeping row numbers."""
        files = self._chunks[: self._n_on_disk]
        added = self._chunks[self._n_on_disk :]
        if len(added) > 1:
            self._chunks = files + [np.concatenate(added)]
            self._starts = self._starts[: len(files) + 1]

    def add(self, ids: np.ndarray, x: np.ndarray) -> None:
        """Store ``x`` (N×D) under ``ids`` (int64, N; none of them stored yet).

        IDs above every stored one (the usual case: row IDs only grow) are appended without sorting, to buffers
        that grow by doubling, so that adding batch after batch costs time in proportion to the rows added.
        """
        ids = np.asarray(ids, np.int64).ravel()
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.dim or len(x) != len(ids):
            raise ValueError(f"expected {len(ids)} × {self.dim} vectors, got {x.shape}")
        if len(ids) == 0:
            return
        rows = np.arange(self._rows, self._rows + len(ids), dtype=np.int64)
        self._chunks.append(np.ascontiguousarray(x, dtype=self.dtype))
        self._starts.append(self._rows)
        self._rows += len(ids)
        n = len(self._ids)
        if bool(np.all(ids[1:] > ids[:-1])) and (n == 0 or ids[0] > self._ids[n - 1]):
            identity = self._identity and n == rows[0]  # still row j = j-th ID
            if self._grow_ids is None or self._grow_ids.view is not self._ids:
                self._grow_ids = _Growing(self._ids)
            if not identity and (self._grow_pos is None or self._grow_pos.view is not self._pos):
                self._grow_pos = _Growing(self._positions())
            self._ids = self._grow_ids.extend(ids)
            self._pos = None if identity else self._grow_pos.extend(rows)
            self._identity = identity
            return
        all_ids = np.concatenate([self.ids, ids])
        all_pos = np.concatenate([self._positions(), rows])
        order = np.argsort(all_ids, kind="stable")
        all_ids = all_ids[order]
        if np.any(all_ids[1:] == all_ids[:-1]):
            self._chunks.pop()
            self._starts.pop()
            self._rows -= len(ids)
            raise ValueError("an ID is already stored")
        self._ids, self._pos, self._identity = all_ids, all_pos[order], False

    def remove(self, ids: np.ndarray) -> None:
        """Forget ``ids`` (the rows stay in their chunks until the store is written)."""
        keep = ~np.isin(np.asarray(self._ids), np.asarray(ids, np.int64))
        self._pos = self._positions()[keep]
        self._ids = np.asarray(self._ids)[keep]
        self._identity = False

    def take(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of ``ids`` as float32 (len(ids) × D).

        Raises
        ------
        KeyError
            If an ID is not stored.
        """
        ids = np.asarray(ids, np.int64).ravel()
        stored = np.asarray(self._ids)
        at = np.searchsorted(stored, ids)
        found = at < len(stored)
        found[found] = stored[at[found]] == ids[found]
        if not found.all():
            raise KeyError(f"ID {int(ids[~found][0])} has no stored vector")
        rows = at if self._identity else self._pos[at]
        self._consolidate()
        out = np.empty((len(ids), self.dim), np.float32)
        starts = np.asarray(self._starts, np.int64)
        chunk_of = np.searchsorted(starts, rows, side="right") - 1
        for c in np.unique(chunk_of):
            sel = np.flatnonzero(chunk_of == c)
            local = rows[sel] - starts[c]
            order = np.argsort(local, kind="stable")  # read a file front to back
            out[sel[order]] = self._chunks[c][local[order]]
        return out

    def write(self, exact_path: Path, ids_path: Path) -> int:
        """Write the vectors in ID order (raw little-endian ``dtype``) and their IDs (raw int64); return the count."""
        ids = np.asarray(self._ids)
        with open(exact_path, "wb") as fx, open(ids_path, "wb") as fi:
            for s in range(0, len(ids), _BLOCK):
                block = ids[s : s + _BLOCK]
                fx.write(self.take(block).astype(LITTLE_ENDIAN[self.dtype]).tobytes())
                fi.write(block.astype("<i8").tobytes())
        return len(ids)


def map_file(path: Path, dtype, shape: tuple) -> np.ndarray:
    """A read-only array over the whole of file ``path`` (memory-mapped; nothing is read until it is touched)."""
    import mmap

    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return np.frombuffer(mm, dtype=dtype).reshape(shape)


class FileRows:
    """Rows of a raw C-order array file, read when indexed with positioned reads; nothing is kept in memory.

    Re-ranking reads about 100 scattered rows per query. Memory-mapped instead, each row read would map its page
    and, through the kernel's read-ahead, its neighbours into the process; these reads leave the rows in the page
    cache, which the kernel shares and reclaims, and out of the process.

    Parameters
    ----------
    path : pathlib.Path
    dtype : numpy dtype
        Of the file's values (e.g. ``"<f2"``).
    shape : (int, int)
        Rows and values per row; the file holds exactly ``rows × values × itemsize`` bytes.
    """

    def __init__(self, path, dtype, shape: tuple):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.shape = (int(shape[0]), int(shape[1]))
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))  # closed with the object
        self._lock = None if hasattr(os, "pread") else threading.Lock()

    def __len__(self) -> int:
        return self.shape[0]

    def __del__(self):
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def _read(self, offset: int, size: int) -> bytes:
        if self._lock is None:
            return os.pread(self._fd, size, offset)
        with self._lock:  # no pread (Windows): seek and read under a lock
            os.lseek(self._fd, offset, os.SEEK_SET)
            return os.read(self._fd, size)

    def __getitem__(self, rows) -> np.ndarray:
        """The rows ``rows`` (int array), in that order, as an array of :attr:`dtype` (len × values)."""
        rows = np.asarray(rows, np.int64).ravel()
        out = np.empty((len(rows), self.shape[1]), self.dtype)
        if len(rows) == 0:
            return out
        if rows.min() < 0 or rows.max() >= self.shape[0]:
            raise IndexError(f"{self.path.name}: rows outside 0..{self.shape[0] - 1}")
        order = np.argsort(rows, kind="stable")
        r = rows[order]
        cut = np.flatnonzero(np.diff(r) != 1) + 1  # runs of consecutive rows are read at once
        for a, b in zip(np.concatenate([[0], cut]), np.concatenate([cut, [len(r)]])):
            size = int(b - a) * self._row_bytes
            data = self._read(int(r[a]) * self._row_bytes, size)
            if len(data) != size:
                raise OSError(f"{self.path}: {len(data)} bytes read where {size} were expected (truncated?)")
            out[order[a:b]] = np.frombuffer(data, self.dtype).reshape(int(b - a), self.shape[1])
        return out
