"""On-disk layout of an :class:`~cnnwidgets.index.ImageIndex`: atomic saves and checked loads.

Layout of an index folder::

    manifest.json            format, version, model, descriptors, counts, file sizes and SHA-256 sums
    data-<random>/           one generation of data, never modified after it is written
        <descriptor>.faiss   one FAISS index per descriptor (faiss.write_index format)
        vocab_<kind>.npy     visual vocabulary for "sift" / "orb" (NumPy format, no pickling)
        metadata.sqlite      table ``images``: id, path, caption, tags (JSON), size, mtime_ns, sha1
        hierarchy.json.gz    the WordNet hierarchy of the tags' classes
        text_vectors.npy     MiniLM embeddings of every tag label and caption, float32 M×384
        text_vectors.json    the M texts those rows embed, in row order
        <descriptor>.ivfdata, .exact, .ids, .ivfpq.json
                             an "ivfpq" descriptor's inverted lists, exact vectors, their IDs and its structure
                             (:mod:`cnnwidgets.index.ivfpq_files`); not read into memory when loaded

    .lock                    the advisory lock of the folder (empty; created by the first save or load)

Every save writes the newest format, :data:`FORMAT_VERSION`; a folder of an older format is read through
:func:`upgrade_manifest`, and saved again it is written in the newest.

A save writes a new ``data-*`` folder next to the old one, then replaces ``manifest.json`` with
:func:`os.replace` (atomic on POSIX and Windows, through :func:`cnnwidgets.files.atomic_write`), then deletes the
old folder. A crash at any moment leaves either the old index or the new one, never a mixture. A save that fails
(a full disk: an :class:`OSError` with ``errno.ENOSPC`` naming the folder) removes its half-written ``data-*``
folder and leaves the last save as it was (:func:`saving`). Nothing is pickled: FAISS's own format, NumPy arrays
without objects, SQLite and JSON.

Processes sharing a folder (two kernels, two users on one cached index) take turns through an advisory
:func:`fcntl.flock` lock on ``.lock`` (:func:`locked`): a save holds it exclusively from creating its ``data-*``
folder until the older ones are deleted, a load holds it shared while it reads, so a save never deletes a
generation that another process is still writing or reading. A caller may hold it around more (the lab's
:func:`~cnnwidgets.lab.folder_index` holds it around "load, else build or update, and save", so that a second
kernel waits and loads the fresh index instead of building it again); the lock is re-entrant within a process.
Where ``.lock`` cannot be created or opened (a read-only shared index, a file system without locks, Windows)
the save or load goes ahead unlocked, and a load that finds its generation gone because a save replaced it meanwhile is
retried once (:meth:`~cnnwidgets.index.ImageIndex.load`). The lock file is never deleted (deleting a lock file
lets two processes lock two different files).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import threading
import uuid
from pathlib import Path

from ..files import TEMP_SUFFIX, atomic_write, fsync_dir

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, loads retry instead
    fcntl = None

log = logging.getLogger(__name__)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "IndexLoadError",
    "write_manifest",
    "read_manifest",
    "upgrade_manifest",
    "new_generation",
    "finish_save",
    "saving",
    "locked",
    "atomic_write",
    "check_files",
    "generation_of",
    "write_table",
    "read_table",
    "sha256",
]

FORMAT = "cnnwidgets-image-index"
FORMAT_VERSION = 3
"""The format this version writes; older ones are read through :func:`upgrade_manifest`.

1: FAISS files, vocabularies and the table.
2: adds the class hierarchy and the text embeddings (``hierarchy.json.gz``, ``text_vectors.npy`` / ``.json``).
3: adds "ivfpq" descriptors (the files of :mod:`cnnwidgets.index.ivfpq_files`).
"""
MANIFEST = "manifest.json"
LOCK = ".lock"
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


def _check_target(root: Path) -> None:
    """Refuse to save into a file, or into a non-empty folder that is not an index folder."""
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root}: exists and is not a folder")
    own = ("data-", ".manifest", LOCK)
    foreign = [p for p in root.iterdir() if not p.name.startswith(own)] if root.is_dir() else []
    if foreign and not (root / MANIFEST).exists():
        raise ValueError(f"{root}: folder is not empty and is not an image index; choose an empty or new folder")


def new_generation(root: Path) -> Path:
    """Create ``root`` (if needed) and a fresh, empty ``data-*`` folder inside it.

    Raises
    ------
    ValueError
        If ``root`` is a file, or a non-empty folder that is not an index folder (so a save never mixes
        index files into a user's folder).
    """
    root = Path(root)
    _check_target(root)
    root.mkdir(parents=True, exist_ok=True)
    gen = root / f"data-{uuid.uuid4().hex[:12]}"
    gen.mkdir()
    return gen


# ---------------------------------------------------------------------------------------------- the lock
class _Held:
    """This process's hold on one folder's lock: a re-entrant guard for its threads, the descriptor, the depth."""

    __slots__ = ("guard", "fd", "depth", "exclusive")

    def __init__(self):
        self.guard = threading.RLock()
        self.fd = -1
        self.depth = 0
        self.exclusive = False


_HELD: dict[str, _Held] = {}
_HELD_GUARD = threading.Lock()


def _open_lock(root: Path, *, create: bool) -> int:
    """A descriptor of ``root/.lock`` (created when ``create``), or -1 where it cannot be opened."""
    if fcntl is None:  # pragma: no cover - Windows
        return -1
    path = root / LOCK
    cloexec = getattr(os, "O_CLOEXEC", 0)
    # read-write where possible (NFS emulates flock with byte-range locks, whose exclusive kind needs it), else
    # read-only: a lock file made by another user, in a folder this one may not write
    for flags in ((os.O_RDWR | os.O_CREAT) if create else os.O_RDWR, os.O_RDONLY):
        try:
            return os.open(path, flags | cloexec, 0o666)
        except OSError:  # read-only folder or file system, no permission, no folder
            continue
    return -1


def _flock(fd: int, root: Path, *, exclusive: bool) -> bool:
    op = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    try:
        try:
            fcntl.flock(fd, op | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process to finish with %s", root)
            fcntl.flock(fd, op)
        return True
    except OSError as exc:  # a file system without locks (ENOLCK): go ahead unlocked
        log.info("%s not locked (%s)", root / LOCK, exc)
        return False


@contextlib.contextmanager
def locked(root, *, shared: bool = False):
    """Hold the advisory lock of index folder ``root`` for the ``with`` block: exclusive, or ``shared`` for reads.

    Re-entrant in this process: an inner ``locked`` of a thread that already holds the folder's lock adds nothing
    (an exclusive one upgrades a shared hold until the outermost block ends); another thread waits for the first.
    The exclusive lock creates ``root`` and ``.lock`` when they are missing; a shared one creates ``.lock`` only in
    a folder that holds an index (``manifest.json``), so a load never writes into another folder.

    Yields
    ------
    bool
        Whether the lock is held: False where ``.lock`` cannot be created or opened (a read-only shared index,
        no such folder, a file system without locks, Windows); the block then runs unlocked.
    """
    root = Path(root)
    key = os.path.abspath(root)
    with _HELD_GUARD:
        held = _HELD.setdefault(key, _Held())
    with held.guard:
        if held.depth == 0:
            if not shared:
                with contextlib.suppress(OSError):  # a failing mkdir is reported by the save itself
                    root.mkdir(parents=True, exist_ok=True)
            held.fd = _open_lock(root, create=not shared or (root / MANIFEST).exists())
            if held.fd >= 0 and not _flock(held.fd, root, exclusive=not shared):
                os.close(held.fd)
                held.fd = -1
            held.exclusive = held.fd >= 0 and not shared
        elif not shared and not held.exclusive and held.fd >= 0:
            held.exclusive = _flock(held.fd, root, exclusive=True)
        held.depth += 1
        try:
            yield held.fd >= 0
        finally:
            held.depth -= 1
            if held.depth == 0 and held.fd >= 0:
                os.close(held.fd)  # closing the last descriptor releases the lock
                held.fd = -1
                held.exclusive = False


# ---------------------------------------------------------------------------------------------- saving
def _disk_full(exc: BaseException, root: Path) -> int | None:
    """``errno.ENOSPC`` / ``errno.EDQUOT`` if ``exc`` comes from a full disk, else None.

    Writers report it in their own ways: an OSError with the number (Python's files), ``SQLITE_FULL``, FAISS's
    RuntimeError quoting :func:`os.strerror`, NumPy's "N requested and M written" OSError without a number
    (then the free space of the folder's file system decides).
    """
    quota = getattr(errno, "EDQUOT", None)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, quota):
        return exc.errno
    text = str(exc)
    if os.strerror(errno.ENOSPC) in text or "disk is full" in text or getattr(exc, "sqlite_errorcode", None) == 13:
        return errno.ENOSPC
    if quota is not None and os.strerror(quota) in text:
        return quota
    if isinstance(exc, (OSError, RuntimeError)):
        try:
            st = os.statvfs(root)
        except (OSError, AttributeError):  # pragma: no cover - Windows has no statvfs
            return None
        if st.f_bavail * st.f_frsize < 1 << 16:
            return errno.ENOSPC
    return None


@contextlib.contextmanager
def saving(root):
    """A save into index folder ``root``: hold its lock, yield a new ``data-*`` folder to write and commit
    (:func:`finish_save`) in the ``with`` block.

    If the block fails before the manifest names the new folder, the folder is deleted and the last save stays
    as it was; a full disk becomes an :class:`OSError` with ``errno.ENOSPC`` (or ``EDQUOT``) whose message names
    ``root``: "no space left on device while saving the index to …".

    Raises
    ------
    ValueError
        As :func:`new_generation`.
    """
    root = Path(root)
    _check_target(root)  # before the lock creates anything in a user's folder
    with locked(root):
        gen = new_generation(root)
        try:
            yield gen
        except BaseException as exc:
            if generation_of(root) == gen.name:  # committed: a later step failed
                raise
            full = _disk_full(exc, root) if isinstance(exc, Exception) else None  # before space is freed
            shutil.rmtree(gen, ignore_errors=True)
            if full is None:
                raise
            what = "disk quota exceeded" if full != errno.ENOSPC else "no space left on device"
            kept = "; the last save is kept" if (root / MANIFEST).exists() else ""
            raise OSError(full, f"{what} while saving the index to {root}{kept}") from None


def finish_save(root: Path, gen: Path, manifest: dict) -> None:
    """Record file sums in ``manifest``, write it atomically, then delete older generations.

    Holds the folder's lock (:func:`locked`) for the commit and the deletion. The manifest is of format
    :data:`FORMAT_VERSION`.
    """
    root, gen = Path(root), Path(gen)
    with locked(root):
        files = {}
        for p in sorted(gen.iterdir()):
            with open(p, "rb+") as f:
                os.fsync(f.fileno())
            files[p.name] = {"bytes": p.stat().st_size, "sha256": sha256(p)}
        fsync_dir(gen)
        manifest = dict(manifest, format=FORMAT, format_version=FORMAT_VERSION, generation=gen.name, files=files)
        write_manifest(root, manifest)
        for old in root.iterdir():
            if old.is_dir() and old.name.startswith("data-") and old.name != gen.name:
                shutil.rmtree(old, ignore_errors=True)
            elif old.name.startswith(f".{MANIFEST}.") and old.name.endswith(TEMP_SUFFIX):  # left by a crash
                with contextlib.suppress(OSError):
                    old.unlink()


def write_manifest(root: Path, manifest: dict) -> None:
    """Write ``manifest.json`` atomically (:func:`cnnwidgets.files.atomic_write`)."""
    atomic_write(Path(root) / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))


def read_manifest(root: Path) -> dict:
    """Read and validate ``manifest.json``; one of an older format comes back upgraded (:func:`upgrade_manifest`).

    Raises
    ------
    IndexLoadError
        If the folder or manifest is missing, unreadable, not JSON, of another format or a newer version, or lacks
        an entry.
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
    manifest = upgrade_manifest(manifest)
    for key in (*REQUIRED, *_DEFAULTS):
        if key not in manifest:
            raise IndexLoadError(root, f"{MANIFEST} lacks the {key!r} entry")
    return manifest


REQUIRED = ("generation", "descriptors", "count", "counts", "dims", "files")
"""Entries every manifest has; :func:`upgrade_manifest` gives older ones the rest of the newest format's."""

_DEFAULTS = {
    "model": "efficientnet_lite0",
    "index_type": "auto",
    "index_types": {},
    "options": {},
    "skipped": [],
}


def upgrade_manifest(manifest: dict) -> dict:
    """``manifest`` of format 1 or 2 as format :data:`FORMAT_VERSION` would have it (a newer copy; files unchanged).

    Format 1 has no class hierarchy nor text embeddings, and format 2 no "ivfpq" descriptors: their files are
    what format 3 reads, and what they lack is computed when first needed (the hierarchy and the embeddings, at the
    first text query). Entries an older save could leave out get their defaults: the model
    ``"efficientnet_lite0"``, ``index_type`` "auto", no options, no skipped files, and no ``index_types`` (every
    descriptor then is an ID-mapped ``.faiss`` file). The manifest's ``upgraded_from`` records the version read.
    """
    version = manifest.get("format_version")
    if version == FORMAT_VERSION:
        return manifest
    upgraded = {k: v for k, v in _DEFAULTS.items() if k not in manifest}
    return dict(manifest, **upgraded, format_version=FORMAT_VERSION, upgraded_from=version)


def generation_of(root: Path) -> str | None:
    """The data folder ``manifest.json`` names now, or None (no readable manifest)."""
    try:
        gen = json.loads((Path(root) / MANIFEST).read_text(encoding="utf-8")).get("generation")
    except (OSError, ValueError, AttributeError):
        return None
    return gen if isinstance(gen, str) else None


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
