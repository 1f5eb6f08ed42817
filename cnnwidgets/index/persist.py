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
        ``{descriptor: vector store}`` (:mod:`.vectors`), on the CPU, IDs those of ``rows``.
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

    Each descriptor's vector store writes its files (``write``), then the vocabularies and the SQLite table go to
    the new data folder, then the manifest naming it replaces the old one (:func:`.storage.finish_save`), all under
    the folder's lock (:func:`.storage.saving`). Each store is then replaced by the one to search from now on
    (``reopened``): an "ivfpq" store searches the saved files (lists memory-mapped, exact vectors read when
    needed) instead of its copies in memory.

    A save that fails leaves the last one as it was and no half-written data folder; on a full disk it raises an
    :class:`OSError` (``errno.ENOSPC``): "no space left on device while saving the index to <folder>"."""
    root = Path(path).expanduser()
    with storage.saving(root) as gen:  # locked; a failure removes gen, a full disk says so
        for name, store in index.faiss.items():
            store.write(gen, name)
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
            # fp32, the default, is not written: an index saved before precision was recorded saves back the same
            "options": {k: v for k, v in index.options.items() if (k, v) != ("precision", "fp32")},
            "next_id": int(index.next_id),
            "skipped": [list(s) for s in index.skipped],
            **extra,
        }
        storage.finish_save(root, gen, manifest)
        index.faiss = {name: store.reopened(gen, name, root=root) for name, store in index.faiss.items()}
    return root


TEXT_VECTORS = "text_vectors.npy"
TEXT_KEYS = "text_vectors.json"
HIERARCHY = "hierarchy.json.gz"


def _save_text_data(index, gen: Path) -> dict:
    """Write the class hierarchy and the MiniLM embeddings of every tag label, its gloss and every caption; their
    manifest entries.

    The embeddings are left out when the MiniLM package is not installed (they are then computed at the first
    text query, as for an index of format 1).
    """
    import json

    (gen / HIERARCHY).write_bytes(index.hierarchy.to_bytes())
    extra = {"hierarchy": {"file": HIERARCHY, "classes": len(index.hierarchy)}}
    from .search import gloss_texts

    labels = sorted({t for r in index.rows for t, _ in r.tags})
    glosses = gloss_texts(labels, index.hierarchy)
    texts = sorted({*labels, *glosses} | {r.caption for r in index.rows if r.caption})
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
    """Keyword arguments of :class:`ImageIndex` (descriptors, model, index type, colour bins, vocabulary size, CNN
    precision: fp32 for an index saved before it was recorded)."""
    options = manifest["options"]
    return {
        "descriptors": tuple(manifest["descriptors"]),
        "model": manifest["model"],
        "index_type": manifest["index_type"],
        "color_bins": tuple(options.get("color_bins", (8, 4, 4))),
        "vocabulary_size": options.get("vocabulary_size", 256),
        "precision": options.get("precision", "fp32"),
    }


def check_vector_index(root: Path, name: str, store, manifest: dict, ids: np.ndarray):
    """Check the vector store of descriptor ``name`` against the manifest and the table's IDs; return it.

    Every file of the store that lists IDs (``store.id_sets``: the ``.faiss`` file, or the ``.ivfdata`` and ``.ids``
    files of an "ivfpq" store) must list exactly ``ids``.

    Raises
    ------
    IndexLoadError
        If its size or dimension differs from the manifest's, or its IDs are not ``ids``.
    """
    if store.ntotal != manifest["counts"].get(name) or store.ntotal != len(ids):
        raise IndexLoadError(
            root,
            f"{name}.faiss holds {store.ntotal} vectors, the manifest says {manifest['counts'].get(name)} and {TABLE} has {len(ids)} rows",
        )
    if store.d != manifest["dims"].get(name):
        raise IndexLoadError(
            root, f"{name}.faiss has dimension {store.d}, the manifest says {manifest['dims'].get(name)}"
        )
    for file, stored in store.id_sets(name).items():
        if not np.array_equal(stored, ids):
            raise IndexLoadError(root, f"{file} and {TABLE} list different image IDs")
    return store


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
        store = vectors.open_store(manifest["index_types"].get(name), gen, name, root=root)
        faiss_indexes[name] = check_vector_index(root, name, store, manifest, ids)
        if name in ("sift", "orb"):
            vocabularies[name] = _read_vocabulary(root, gen, name)
    rows = _rows_from_records(root, records)
    next_id = int(manifest.get("next_id", int(ids.max()) + 1 if len(ids) else 0))
    skipped = [tuple(s) for s in manifest["skipped"]]
    return StoredIndex(rows, faiss_indexes, vocabularies, next_id, skipped)
