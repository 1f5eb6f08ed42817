"""On-disk layout of an :class:`~cnnwidgets.index.ImageIndex`: atomic saves and checked loads.

Layout of an index folder::

    manifest.json            format, version, model, descriptors, counts, file sizes and SHA-256 sums
    data-<random>/           one generation of data, never modified after it is written
        <descriptor>.faiss   one FAISS index per descriptor (faiss.write_index format)
        vocab_<kind>.npy     visual vocabulary for "sift" / "orb" (NumPy format, no pickling)
        metadata.sqlite      table ``images``: id, path, caption, tags (JSON), size, mtime_ns, sha1
        hierarchy.json.gz    the WordNet hierarchy of the tags' classes (format 2)
        text_vectors.npy     MiniLM embeddings of every tag label and caption, float32 M×384 (format 2)
        text_vectors.json    the M texts those rows embed, in row order (format 2)
        <descriptor>.ivfdata, .exact, .ids, .ivfpq.json
                             an "ivfpq" descriptor's inverted lists, exact vectors, their IDs and its structure
                             (format 3, :mod:`cnnwidgets.index.ondisk`); not read into memory when loaded

A save writes a new ``data-*`` folder next to the old one, then replaces ``manifest.json`` with
:func:`os.replace` (atomic on POSIX and Windows), then deletes the old folder. A crash at any moment leaves
either the old index or the new one, never a mixture. Nothing is pickled: FAISS's own format, NumPy arrays
without objects, SQLite and JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import uuid
from pathlib import Path

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "IndexLoadError",
    "write_manifest",
    "read_manifest",
    "new_generation",
    "finish_save",
    "check_files",
    "write_table",
    "read_table",
    "sha256",
]

FORMAT = "cnnwidgets-image-index"
FORMAT_VERSION = 3
"""The newest format this version reads and writes.

2: adds the class hierarchy and the text embeddings (``hierarchy.json.gz``, ``text_vectors.npy`` / ``.json``).
3: adds "ivfpq" descriptors (the files of :mod:`cnnwidgets.index.ondisk`); written only for an index that has one,
every other index is still written as format 2.
"""
BASE_FORMAT_VERSION = 2
"""The format of a save whose manifest names none (one without "ivfpq" descriptors)."""
MANIFEST = "manifest.json"
TABLE = "metadata.sqlite"
COLUMNS = ("id", "path", "caption", "tags", "size", "mtime_ns", "sha1")


class IndexLoadError(ValueError):
    """An index folder cannot be loaded; the message names the folder, the file and what is wrong."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def new_generation(root: Path) -> Path:
    """Create ``root`` (if needed) and a fresh, empty ``data-*`` folder inside it.

    Raises
    ------
    ValueError
        If ``root`` is a file, or a non-empty folder that is not an index folder (so a save never mixes
        index files into a user's folder).
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root}: exists and is not a folder")
    foreign = [p for p in root.iterdir() if not p.name.startswith(("data-", ".manifest"))] if root.is_dir() else []
    if foreign and not (root / MANIFEST).exists():
        raise ValueError(f"{root}: folder is not empty and is not an image index; choose an empty or new folder")
    root.mkdir(parents=True, exist_ok=True)
    gen = root / f"data-{uuid.uuid4().hex[:12]}"
    gen.mkdir()
    return gen


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def finish_save(root: Path, gen: Path, manifest: dict) -> None:
    """Record file sums in ``manifest``, write it atomically, then delete older generations.

    The manifest's ``format_version`` is kept when it names one, else :data:`BASE_FORMAT_VERSION`.
    """
    root, gen = Path(root), Path(gen)
    files = {}
    for p in sorted(gen.iterdir()):
        with open(p, "rb+") as f:
            os.fsync(f.fileno())
        files[p.name] = {"bytes": p.stat().st_size, "sha256": sha256(p)}
    _fsync_dir(gen)
    version = int(manifest.get("format_version", BASE_FORMAT_VERSION))
    manifest = dict(manifest, format=FORMAT, format_version=version, generation=gen.name, files=files)
    write_manifest(root, manifest)
    for old in root.iterdir():
        if old.is_dir() and old.name.startswith("data-") and old.name != gen.name:
            shutil.rmtree(old, ignore_errors=True)


def write_manifest(root: Path, manifest: dict) -> None:
    """Write ``manifest.json`` via a temporary file and :func:`os.replace`."""
    root = Path(root)
    tmp = root / f".manifest-{uuid.uuid4().hex[:8]}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, root / MANIFEST)
    _fsync_dir(root)


def read_manifest(root: Path) -> dict:
    """Read and validate ``manifest.json``.

    Raises
    ------
    IndexLoadError
        If the folder or manifest is missing, unreadable, not JSON, of another format or a newer version.
    """
    root = Path(root)
    if not root.exists():
        raise IndexLoadError(root, "index folder not found")
    if not root.is_dir():
        raise IndexLoadError(root, "not a folder (an index is a folder with manifest.json)")
    path = root / MANIFEST
    if not path.exists():
        raise IndexLoadError(root, f"{MANIFEST} is missing: not an image index folder, or the save never finished")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexLoadError(root, f"{MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexLoadError(root, f"{MANIFEST} does not describe a {FORMAT}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise IndexLoadError(
            root, f"format version {version!r} is not supported (this cnnwidgets reads up to {FORMAT_VERSION})"
        )
    for key in ("generation", "descriptors", "count", "counts", "dims", "files"):
        if key not in manifest:
            raise IndexLoadError(root, f"{MANIFEST} lacks the {key!r} entry")
    return manifest


def check_files(root: Path, manifest: dict) -> Path:
    """Check that every file the manifest lists exists with the recorded size and SHA-256; return the data folder."""
    root = Path(root)
    gen = root / str(manifest["generation"])
    if not gen.is_dir():
        raise IndexLoadError(root, f"data folder {gen.name} named in {MANIFEST} is missing")
    for name, info in manifest["files"].items():
        p = gen / name
        if not p.exists():
            raise IndexLoadError(root, f"{gen.name}/{name} is missing")
        size = p.stat().st_size
        if size != info.get("bytes"):
            raise IndexLoadError(
                root,
                f"{gen.name}/{name} has {size} bytes but the manifest records {info.get('bytes')}: the file is truncated or was replaced",
            )
        if sha256(p) != info.get("sha256"):
            raise IndexLoadError(root, f"{gen.name}/{name} is corrupted: its SHA-256 does not match the manifest")
    return gen


def write_table(path: Path, rows) -> None:
    """Write the ``images`` table to a new SQLite file. ``rows``: tuples in :data:`COLUMNS` order (tags as JSON text)."""
    con = sqlite3.connect(path)
    try:
        con.execute(
            "CREATE TABLE images (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, caption TEXT, "
            "tags TEXT NOT NULL, size INTEGER, mtime_ns INTEGER, sha1 TEXT)"
        )
        con.executemany("INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        con.commit()
    finally:
        con.close()


def read_table(root: Path, path: Path) -> list[tuple]:
    """All rows of the ``images`` table ordered by id; :class:`IndexLoadError` if it is unreadable or malformed."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            cols = tuple(r[1] for r in con.execute("PRAGMA table_info(images)"))
            if cols != COLUMNS:
                raise IndexLoadError(root, f"{path.name}: table 'images' has columns {cols}, expected {COLUMNS}")
            return list(con.execute("SELECT id, path, caption, tags, size, mtime_ns, sha1 FROM images ORDER BY id"))
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise IndexLoadError(root, f"{path.name} is not a readable SQLite database ({exc})") from None
