"""Saving an :class:`~cnnwidgets.index.ImageIndex` to an index folder and reading one back, checked.

The folder layout, the atomic replacement of a save and the SQLite schema are in :mod:`.storage`. A load reads
the manifest and checks every file's size and SHA-256 (:func:`open_folder`), then reads the table, the FAISS
files and the vocabularies and checks that they agree with each other and with the manifest
(:func:`read_contents`, :func:`check_vector_index`). Every disagreement raises :class:`.storage.IndexLoadError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import storage, vectors
from .build import metric
from .ondisk import IVFPQIndex
from .rows import ImageRow, RowTable
from .storage import TABLE, IndexLoadError

__all__ = [
    "StoredIndex",
    "save",
    "open_folder",
    "options_from_manifest",
    "read_contents",
    "read_text_data",
    "check_vector_index",
]


@dataclass
class StoredIndex:
    """The contents of an index folder, checked.

    Attributes
    ----------
    rows : RowTable
    faiss : dict
        ``{descriptor: ID-mapped CPU FAISS index}``, IDs those of ``rows``.
    vocabularies : dict
        ``{"sift" / "orb": Vocabulary}``.
    next_id : int
        The ID the next added image gets.
    skipped : list of (str, str)
        Files that could not be indexed, with the reason.
    """

    rows: RowTable
    faiss: dict
    vocabularies: dict
    next_id: int
    skipped: list


def save(index, path) -> Path:
    """Write ``index`` to folder ``path`` atomically; returns the folder.

    FAISS files, vocabularies and the SQLite table go to a new data folder, then the manifest naming it replaces
    the old one (:func:`.storage.finish_save`), all under the folder's lock (:func:`.storage.saving`). An "ivfpq"
    index writes its lists and exact vectors there too (:meth:`.ondisk.IVFPQIndex.write`), so the manifest lists
    them with their sums; ``index`` then searches those files (lists memory-mapped, exact vectors read when
    needed) instead of its copies in memory.

    A save that fails leaves the last one as it was and no half-written data folder; on a full disk it raises an
    :class:`OSError` (``errno.ENOSPC``): "no space left on device while saving the index to <folder>"."""
    import faiss

    root = Path(path).expanduser()
    with storage.saving(root) as gen:  # locked; a failure removes gen, a full disk says so
        for name, ix in index.faiss.items():
            if isinstance(ix, IVFPQIndex):
                ix.write(gen, name)
            else:
                faiss.write_index(vectors.to_cpu(ix), str(gen / f"{name}.faiss"))
        for kind, vocab in index.vocabularies.items():
            vocab.save(gen / f"vocab_{kind}.npy")
        storage.write_table(gen / TABLE, index.rows.records())
        extra = _save_text_data(index, gen)
        manifest = {
            "model": index.model_name,
            "descriptors": list(index.descriptors),
            "count": len(index.rows),
            "counts": {n: int(ix.ntotal) for n, ix in index.faiss.items()},
            "dims": index.dims,
            "metrics": {n: metric(n) for n in index.descriptors},
            "index_type": index.index_type,
            "index_types": index.index_types,
            "options": index.options,
            "next_id": int(index.next_id),
            "skipped": [list(s) for s in index.skipped],
            **extra,
        }
        if any(isinstance(ix, IVFPQIndex) for ix in index.faiss.values()):
            manifest["format_version"] = 3
        storage.finish_save(root, gen, manifest)
        for name, ix in index.faiss.items():  # from now on search the saved files
            if isinstance(ix, IVFPQIndex):
                index.faiss[name] = IVFPQIndex.open(gen, name, root=root)
    return root


TEXT_VECTORS = "text_vectors.npy"
TEXT_KEYS = "text_vectors.json"
HIERARCHY = "hierarchy.json.gz"


def _save_text_data(index, gen: Path) -> dict:
    """Write the class hierarchy and the MiniLM embeddings of every tag label and caption; their manifest entries.

    The embeddings are left out when the MiniLM package is not installed (they are then computed at the first
    text query, as for an index of format 1).
    """
    import json

    (gen / HIERARCHY).write_bytes(index.hierarchy.to_bytes())
    extra = {"hierarchy": {"file": HIERARCHY, "classes": len(index.hierarchy)}}
    texts = sorted({t for r in index.rows for t, _ in r.tags} | {r.caption for r in index.rows if r.caption})
    try:
        stored = index.text_vectors.subset(texts)
    except ImportError:
        return extra
    np.save(gen / TEXT_VECTORS, np.ascontiguousarray(stored.vectors, np.float32), allow_pickle=False)
    (gen / TEXT_KEYS).write_text(json.dumps(stored.texts, ensure_ascii=False), encoding="utf-8")
    extra["text_vectors"] = {
        "file": TEXT_VECTORS,
        "texts": TEXT_KEYS,
        "model": "all-MiniLM-L6-v2",
        "count": len(stored),
        "dim": int(stored.vectors.shape[1]),
    }
    return extra


def read_text_data(root: Path, gen: Path, manifest: dict) -> tuple:
    """The stored class hierarchy and text embeddings of data folder ``gen`` (None for each one not stored).

    Returns
    -------
    (ClassHierarchy or None, TextVectors or None)

    Raises
    ------
    IndexLoadError
        If a file is unreadable or the embeddings disagree with their texts or the manifest.
    """
    import json

    from .hierarchy import ClassHierarchy
    from .search import TextVectors

    hierarchy = vectors_ = None
    if "hierarchy" in manifest:
        name = manifest["hierarchy"]["file"]
        try:
            hierarchy = ClassHierarchy.from_file(gen / name)
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
            raise IndexLoadError(root, f"{gen.name}/{name} is not a class hierarchy ({exc})") from None
    if "text_vectors" in manifest:
        info = manifest["text_vectors"]
        try:
            x = np.load(gen / info["file"], allow_pickle=False)
            texts = json.loads((gen / info["texts"]).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexLoadError(root, f"{gen.name}/{info['file']} or {info['texts']} cannot be read ({exc})") from None
        if x.dtype != np.float32 or x.ndim != 2 or x.shape != (info["count"], info["dim"]) or len(texts) != len(x):
            raise IndexLoadError(
                root,
                f"{gen.name}/{info['file']} holds {x.dtype} {x.shape}, the manifest says {info['count']} × "
                f"{info['dim']} float32 for {len(texts)} texts",
            )
        vectors_ = TextVectors(texts, x)
    return hierarchy, vectors_


def open_folder(root: Path) -> tuple[dict, Path]:
    """The manifest of index folder ``root`` and its data folder, after checking every listed file's size and sum."""
    manifest = storage.read_manifest(root)
    return manifest, storage.check_files(root, manifest)


def options_from_manifest(manifest: dict) -> dict:
    """Keyword arguments of :class:`ImageIndex` (descriptors, model, index type, colour bins, vocabulary size)."""
    options = manifest.get("options", {})
    return {
        "descriptors": tuple(manifest["descriptors"]),
        "model": manifest.get("model", "efficientnet_lite0"),
        "index_type": manifest.get("index_type", "auto"),
        "color_bins": tuple(options.get("color_bins", (8, 4, 4))),
        "vocabulary_size": options.get("vocabulary_size", 256),
    }


def check_vector_index(root: Path, name: str, ix, manifest: dict, ids: np.ndarray):
    """Check FAISS index ``name`` against the manifest and the table's IDs; return it as an ID-mapped index.

    An :class:`~.ondisk.IVFPQIndex` is checked by the IDs in its inverted lists and, when it keeps them, of its
    exact vectors.

    Raises
    ------
    IndexLoadError
        If its size or dimension differs from the manifest's, it is not ID-mapped, or its IDs are not ``ids``.
    """
    import faiss

    if ix.ntotal != manifest["counts"].get(name) or ix.ntotal != len(ids):
        raise IndexLoadError(
            root,
            f"{name}.faiss holds {ix.ntotal} vectors, the manifest says {manifest['counts'].get(name)} and {TABLE} has {len(ids)} rows",
        )
    if ix.d != manifest["dims"].get(name):
        raise IndexLoadError(root, f"{name}.faiss has dimension {ix.d}, the manifest says {manifest['dims'].get(name)}")
    if isinstance(ix, IVFPQIndex):
        if not np.array_equal(ix.stored_ids(), ids):
            raise IndexLoadError(root, f"{name}.ivfdata and {TABLE} list different image IDs")
        if ix.exact is not None and not np.array_equal(ix.exact.ids, ids):
            raise IndexLoadError(root, f"{name}.ids and {TABLE} list different image IDs")
        return ix
    if not hasattr(ix, "id_map"):
        ix = faiss.downcast_index(ix)
    if not hasattr(ix, "id_map"):
        raise IndexLoadError(root, f"{name}.faiss is not an ID-mapped index")
    faiss_ids = np.sort(faiss.vector_to_array(ix.id_map).astype(np.int64))
    if not np.array_equal(faiss_ids, ids):
        raise IndexLoadError(root, f"{name}.faiss and {TABLE} list different image IDs")
    return ix


def _read_vector_index(root: Path, gen: Path, name: str, kind: str | None):
    import faiss

    if kind == "ivfpq":
        return IVFPQIndex.open(gen, name, root=root)
    f = gen / f"{name}.faiss"
    if not f.exists():
        raise IndexLoadError(root, f"{gen.name}/{name}.faiss is missing (descriptor {name!r} is in the manifest)")
    try:
        return faiss.read_index(str(f))
    except RuntimeError as exc:
        raise IndexLoadError(
            root, f"{gen.name}/{name}.faiss cannot be read by FAISS ({str(exc).splitlines()[0]})"
        ) from None


def _read_vocabulary(root: Path, gen: Path, kind: str):
    from ..engine.features import Vocabulary

    f = gen / f"vocab_{kind}.npy"
    if not f.exists():
        raise IndexLoadError(root, f"{gen.name}/vocab_{kind}.npy is missing")
    try:
        return Vocabulary.load(f, kind=kind)
    except ValueError as exc:
        raise IndexLoadError(root, f"vocab_{kind}.npy: {exc}") from None


def _rows_from_records(root: Path, records: list) -> RowTable:
    labels: dict[str, str] = {}
    try:
        rows = [ImageRow.from_record(r, labels=labels) for r in records]
    except (ValueError, TypeError) as exc:
        raise IndexLoadError(
            root, f"{TABLE}: a tags entry is not a JSON list of [label, probability] ({exc})"
        ) from None
    try:
        return RowTable(rows)
    except ValueError as exc:
        raise IndexLoadError(root, f"{TABLE}: {exc}") from None


def read_contents(root: Path, gen: Path, manifest: dict, descriptors) -> StoredIndex:
    """Read the table, the FAISS index of each descriptor and the vocabularies of data folder ``gen``, checked.

    Raises
    ------
    IndexLoadError
        If the table's row count differs from the manifest's, a FAISS or vocabulary file is missing or unreadable,
        a FAISS index disagrees with the manifest or the table (:func:`check_vector_index`), or a tags entry
        is malformed.
    """
    records = storage.read_table(root, gen / TABLE)
    if len(records) != manifest["count"]:
        raise IndexLoadError(root, f"{TABLE} has {len(records)} images but the manifest says {manifest['count']}")
    ids = np.array([r[0] for r in records], np.int64)
    faiss_indexes, vocabularies = {}, {}
    for name in descriptors:
        if not records and name not in manifest["counts"]:
            continue  # an empty index has no FAISS files yet
        ix = _read_vector_index(root, gen, name, manifest.get("index_types", {}).get(name))
        faiss_indexes[name] = check_vector_index(root, name, ix, manifest, ids)
        if name in ("sift", "orb"):
            vocabularies[name] = _read_vocabulary(root, gen, name)
    rows = _rows_from_records(root, records)
    next_id = int(manifest.get("next_id", int(ids.max()) + 1 if len(ids) else 0))
    skipped = [tuple(s) for s in manifest.get("skipped", [])]
    return StoredIndex(rows, faiss_indexes, vocabularies, next_id, skipped)
