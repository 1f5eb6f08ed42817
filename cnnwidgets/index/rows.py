"""The metadata table of an :class:`~cnnwidgets.index.ImageIndex`: one :class:`ImageRow` per indexed image.

A row's ``id`` is the ID of the image's vectors in every FAISS index of the collection. IDs are handed out in
increasing order and never reused, so the table, kept in ID order, maps an ID to its position by bisection.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["Fingerprint", "ImageRow", "RowTable", "NO_FINGERPRINT"]


class Fingerprint(NamedTuple):
    """What identifies the content of an image file at indexing time.

    Attributes
    ----------
    size : int or None
        File size in bytes.
    mtime_ns : int or None
        Modification time in nanoseconds since the epoch.
    sha1 : str or None
        SHA-1 of the file's bytes (hex); a file whose digest is unchanged is not re-indexed.
    """

    size: int | None
    mtime_ns: int | None
    sha1: str | None


NO_FINGERPRINT = Fingerprint(None, None, None)
"""The fingerprint of a row that was not read from a file (:meth:`ImageIndex.from_vectors`)."""


@dataclass(frozen=True, slots=True)
class ImageRow:
    """One indexed image.

    Attributes
    ----------
    id : int
        ID of its vectors in the FAISS indexes.
    path : str
        Absolute path of the image.
    caption : str
        Caption ("" when it has none).
    tags : tuple of (str, float)
        Predicted top-5 ImageNet labels with probabilities, best first.
    fingerprint : Fingerprint
    """

    id: int
    path: str
    caption: str
    tags: tuple
    fingerprint: Fingerprint

    def to_record(self) -> tuple:
        """The row as stored in SQLite (:data:`cnnwidgets.index.storage.COLUMNS`): tags as JSON, probabilities to 6 digits."""
        tags = json.dumps([[t, round(float(p), 6)] for t, p in self.tags])
        return (int(self.id), self.path, self.caption, tags, *self.fingerprint)

    @classmethod
    def from_record(cls, record: Sequence, *, labels: dict | None = None) -> ImageRow:
        """A row from a SQLite record (``id, path, caption, tags, size, mtime_ns, sha1``).

        ``labels`` interns label strings across rows (one string object per distinct label).

        Raises
        ------
        ValueError, TypeError
            If the tags entry is not a JSON list of ``[label, probability]`` pairs.
        """
        labels = {} if labels is None else labels
        tags = tuple([(labels.setdefault(t, t), float(p)) for t, p in json.loads(record[3])])
        return cls(int(record[0]), record[1], record[2] or "", tags, Fingerprint(*record[4:7]))


class RowTable:
    """The rows of an index in ID order, with lookup by path and by ID.

    The table is changed only through :meth:`append` and :meth:`remove`; every other method reads.

    Parameters
    ----------
    rows : iterable of ImageRow
        In increasing ID order, with distinct paths.
    """

    def __init__(self, rows: Iterable[ImageRow] = ()):
        self._rows: list[ImageRow] = []
        self._ids = np.zeros(0, np.int64)
        self._position: dict[str, int] = {}
        self.append(rows)

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[ImageRow]:
        return iter(self._rows)

    def __getitem__(self, position: int) -> ImageRow:
        """The row at ``position`` (0 ≤ position < len)."""
        return self._rows[position]

    @property
    def ids(self) -> np.ndarray:
        """Row IDs in table order: int64, shape (N,), increasing; read-only."""
        return self._ids

    def position(self, path: str) -> int | None:
        """The position of the row for ``path`` (an absolute path string), or None when it is not in the table."""
        return self._position.get(path)

    def get(self, path: str) -> ImageRow | None:
        """The row for ``path``, or None."""
        pos = self._position.get(path)
        return None if pos is None else self._rows[pos]

    def __contains__(self, path: str) -> bool:
        return path in self._position

    def positions_of(self, ids) -> np.ndarray:
        """Positions of the rows with these IDs: int64, the shape of ``ids``.

        Raises
        ------
        KeyError
            If an ID is not in the table.
        """
        ids = np.asarray(ids, np.int64)
        flat = ids.reshape(-1)
        pos = np.searchsorted(self._ids, flat)
        found = pos < len(self._ids)
        found[found] = self._ids[pos[found]] == flat[found]
        if not found.all():
            raise KeyError(f"no row with ID {int(flat[~found][0])}")
        return pos.reshape(ids.shape)

    def by_id(self, row_id: int) -> ImageRow:
        """The row with ID ``row_id``; :class:`KeyError` if there is none."""
        pos = int(np.searchsorted(self._ids, row_id))
        if pos == len(self._ids) or self._ids[pos] != row_id:
            raise KeyError(f"no row with ID {int(row_id)}")
        return self._rows[pos]

    def column(self, name: str) -> list:
        """One field of every row, in table order: ``"path"``, ``"caption"``, ``"tags"`` or ``"fingerprint"``."""
        return [getattr(r, name) for r in self._rows]

    def records(self) -> list[tuple]:
        """Every row as a SQLite record (see :meth:`ImageRow.to_record`)."""
        return [r.to_record() for r in self._rows]

    @classmethod
    def from_records(cls, records: Iterable[Sequence]) -> RowTable:
        """A table from SQLite records in ID order (see :meth:`ImageRow.from_record`)."""
        labels: dict[str, str] = {}
        return cls(ImageRow.from_record(r, labels=labels) for r in records)

    # ------------------------------------------------------------------ changing
    def append(self, rows: Iterable[ImageRow]) -> None:
        """Add rows at the end.

        Raises
        ------
        ValueError
            If an ID is not larger than every ID already in the table, or a path is already in it.
        """
        new = list(rows)
        if not new:
            return
        ids = np.array([r.id for r in new], np.int64)
        last = self._ids[-1] if len(self._ids) else -1
        if np.any(np.diff(ids) <= 0) or ids[0] <= last:
            raise ValueError("row IDs must increase along the table")
        start = len(self._rows)
        position = dict(self._position)
        for n, r in enumerate(new):
            if r.path in position:
                raise ValueError(f"{r.path} is already in the table")
            position[r.path] = start + n
        self._rows += new
        self._ids = np.concatenate([self._ids, ids])
        self._ids.flags.writeable = False
        self._position = position

    def remove(self, ids) -> None:
        """Remove the rows with these IDs (IDs not in the table are ignored)."""
        keep = ~np.isin(self._ids, np.asarray(ids, np.int64))
        if keep.all():
            return
        self._rows = [r for r, k in zip(self._rows, keep) if k]
        self._ids = self._ids[keep]
        self._ids.flags.writeable = False
        self._position = {r.path: n for n, r in enumerate(self._rows)}

    def replace_fingerprints(self, fingerprints: Sequence) -> None:
        """Give every row, in table order, a new fingerprint (one ``(size, mtime_ns, sha1)`` per row).

        Raises
        ------
        ValueError
            If the number of fingerprints differs from the number of rows.
        """
        if len(fingerprints) != len(self._rows):
            raise ValueError(f"{len(fingerprints)} fingerprints for {len(self._rows)} rows")
        self._rows = [
            ImageRow(r.id, r.path, r.caption, r.tags, Fingerprint(*f)) for r, f in zip(self._rows, fingerprints)
        ]
