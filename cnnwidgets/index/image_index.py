"""A persistent, searchable collection of images: one FAISS index per descriptor plus a metadata table."""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..datasets import IMAGE_EXTENSIONS
from ..io import ImageLoadError, load_image
from . import storage, vectors

__all__ = ["ImageIndex", "Hit", "DESCRIPTORS", "MODES"]

DESCRIPTORS = ("cnn", "color", "moments", "sift", "orb")
MODES = ("auto", "text", "color", "moments", "sift", "orb", "cnn", "fusion", "semantic")
TOPK_TAGS = 5
DEFAULT_WEIGHTS = {"text": 1.0, "cnn": 1.0, "color": 0.5, "moments": 0.25, "sift": 0.5, "orb": 0.25}
TEXT_WEIGHTS = {"keyword": 0.5, "semantic": 0.5}


@dataclass
class Hit:
    """One search result.

    Attributes
    ----------
    path : str
        Absolute path of the image.
    score : float
        The ranking score (higher is better); for fusion the weighted mean of normalised component scores in [0, 1].
    scores : dict
        Raw score per component: inner product for "cnn" (cosine) and "color"/"sift"/"orb" (Bhattacharyya
        coefficient), ``1 / (1 + L2)`` for "moments", the text score for "text"; "class_match" (1 or 0) in
        semantic mode.
    tags : list of (str, float)
        The image's predicted top-5 ImageNet labels with probabilities.
    caption : str
    """

    path: str
    score: float
    scores: dict = field(default_factory=dict)
    tags: list = field(default_factory=list)
    caption: str = ""

    def to_dict(self) -> dict:
        """A JSON-ready dict: path, score, scores, tags (as [label, probability] pairs), caption."""
        return {
            "path": self.path,
            "score": float(self.score),
            "scores": {k: float(v) for k, v in self.scores.items()},
            "tags": [[t, float(p)] for t, p in self.tags],
            "caption": self.caption,
        }


def _file_list(source) -> tuple[list[Path], Path | None]:
    if isinstance(source, (str, os.PathLike)):
        root = Path(source).expanduser()
        if not root.exists():
            raise ValueError(f"{root}: folder not found")
        if root.is_file():
            return [root.resolve()], None
        files = sorted(
            p.resolve()
            for p in root.rglob("*")
            if p.is_file()
            and p.suffix.lower() in IMAGE_EXTENSIONS
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
        return files, root.resolve()
    try:
        items = list(source)
    except TypeError:
        raise TypeError(f"source must be a folder or a list of image paths, not {type(source).__name__}") from None
    return [Path(p).expanduser().resolve() for p in items], None


def read_captions(csv_path) -> dict[str, str]:
    """Read a captions CSV with columns ``path, caption`` (header optional); relative paths are taken from the CSV's folder.

    Raises
    ------
    ValueError
        If the file cannot be read or a row does not have two columns.
    """
    csv_path = Path(csv_path)
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{csv_path}: cannot read captions ({exc})") from None
    out = {}
    for n, row in enumerate(rows, 1):
        if not row or (n == 1 and [c.strip().lower() for c in row[:2]] == ["path", "caption"]):
            continue
        if len(row) < 2:
            raise ValueError(f"{csv_path}, line {n}: expected 'path,caption', got {row!r}")
        p = Path(row[0].strip())
        out[str((csv_path.parent / p).resolve() if not p.is_absolute() else p.resolve())] = row[1].strip()
    return out


def _normalise_captions(captions, root: Path | None) -> dict[str, str]:
    if captions is None:
        if root is not None and (root / "captions.csv").exists():
            return read_captions(root / "captions.csv")
        return {}
    if isinstance(captions, (str, os.PathLike)):
        return read_captions(captions)
    if isinstance(captions, dict):
        base = root or Path.cwd()
        return {
            str((base / Path(k)).resolve() if not Path(k).is_absolute() else Path(k).resolve()): str(v)
            for k, v in captions.items()
        }
    raise TypeError(f"captions must be a dict, a CSV path or None, not {type(captions).__name__}")


def _doc_words(path: str, caption: str, tags) -> str:
    return " ".join([caption or "", Path(path).stem, *[t for t, _ in tags]])


class ImageIndex:
    """Images searchable by text, colour, local features, CNN features, their fusion, or class-narrowed CNN search.

    Create one with :meth:`build` (or :meth:`load` from disk); grow it with :meth:`add`, shrink it with
    :meth:`remove`, persist it with :meth:`save`, query it with :meth:`search`.

    Attributes
    ----------
    descriptors : tuple of str
        The content descriptors indexed (subset of "cnn", "color", "moments", "sift", "orb").
    model_name : str
        CNN used for the "cnn" descriptor and for the predicted tags.
    paths : list of str
        Indexed images (absolute paths), in row order.
    skipped : list of (str, str)
        Files that could not be indexed, with the reason.
    index_types : dict
        The FAISS structure per descriptor ("flat", "ivf" or "hnsw").
    """

    def __init__(
        self,
        *,
        descriptors=("cnn", "color"),
        model: str = "efficientnet_lite0",
        index_type: str = "auto",
        color_bins=(8, 4, 4),
        vocabulary_size: int = 256,
        progress: bool = True,
    ):
        bad = [d for d in descriptors if d not in DESCRIPTORS]
        if bad or not descriptors:
            raise ValueError(f"descriptors={tuple(descriptors)!r}: choose from {DESCRIPTORS}")
        if index_type not in vectors.INDEX_TYPES:
            raise ValueError(f"index_type={index_type!r}: expected one of {vectors.INDEX_TYPES}")
        from ..device import faiss_gpu_available

        self.descriptors = tuple(dict.fromkeys(descriptors))
        self.model_name = str(model)
        self.index_type = index_type
        self.options = {
            "color_bins": [int(b) for b in (color_bins if not isinstance(color_bins, int) else (color_bins,) * 3)],
            "vocabulary_size": int(vocabulary_size),
        }
        self.progress = progress
        self.gpu = faiss_gpu_available()
        self.vocabularies = {}
        self.faiss = {}
        self.dims = {}
        self.ids = np.zeros(0, np.int64)
        self.paths: list[str] = []
        self.captions: list[str] = []
        self.tags: list[list] = []
        self.fingerprints: list[tuple] = []
        self.skipped: list[tuple[str, str]] = []
        self.next_id = 0
        self.root = None
        self._model = None
        self._row = {}
        self._path_row = {}
        self._text_cache = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        source,
        *,
        path=None,
        descriptors=("cnn", "color"),
        model: str = "efficientnet_lite0",
        captions=None,
        index_type: str = "auto",
        color_bins=(8, 4, 4),
        vocabulary_size: int = 256,
        progress: bool = True,
    ) -> ImageIndex:
        """Index the images in a folder (recursively) or a list of paths.

        Parameters
        ----------
        source : str, pathlib.Path or list of paths
        path : str or pathlib.Path, optional
            Save the index there when done (see :meth:`save`).
        descriptors : tuple of str
            Any of "cnn", "color" (HSV histogram), "moments", "sift", "orb".
        model : str
            Registry name of the CNN (:func:`cnnwidgets.engine.models.create_model`); it computes the "cnn"
            descriptor and every image's top-5 ImageNet labels, stored as tags.
        captions : dict, str or pathlib.Path, optional
            ``{path: caption}`` (relative paths are taken from the folder) or a CSV file ``path,caption``.
            By default ``captions.csv`` in the folder is read when present.
        index_type : {"auto", "flat", "ivf", "hnsw"}
            FAISS structure; "auto" is exact below :data:`cnnwidgets.index.vectors.AUTO_THRESHOLD` images.
        color_bins : int or tuple of 3 ints
            HSV histogram bins.
        vocabulary_size : int
            Visual words for "sift" / "orb"; the vocabulary is learnt from (a sample of) these images.
        progress : bool
            Show a tqdm progress bar.

        Returns
        -------
        ImageIndex
            Unreadable files are not indexed; they are listed in :attr:`skipped` with the reason.
        """
        index = cls(
            descriptors=descriptors,
            model=model,
            index_type=index_type,
            color_bins=color_bins,
            vocabulary_size=vocabulary_size,
            progress=progress,
        )
        files, root = _file_list(source)
        caps = _normalise_captions(captions, root)
        index._learn_vocabularies(files)
        index._ingest(files, caps)
        if path is not None:
            index.save(path)
        return index

    @classmethod
    def from_vectors(
        cls,
        paths,
        vectors_by_descriptor: dict,
        *,
        tags=None,
        captions=None,
        model: str = "efficientnet_lite0",
        index_type: str = "auto",
    ) -> ImageIndex:
        """An index from precomputed descriptor vectors (float32 N×D per descriptor, normalised as in
        :mod:`cnnwidgets.engine.features`). ``tags``: per image a list of (label, probability)."""
        index = cls(descriptors=tuple(vectors_by_descriptor), model=model, index_type=index_type, progress=False)
        n = len(paths)
        for name, x in vectors_by_descriptor.items():
            if len(x) != n:
                raise ValueError(f"vectors for {name!r} have {len(x)} rows but there are {n} paths")
        index._append(
            [str(p) for p in paths],
            [c or "" for c in (captions or [""] * n)],
            [list(t) for t in (tags or [[] for _ in range(n)])],
            [(None, None, None)] * n,
            {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in vectors_by_descriptor.items()},
        )
        return index

    # ------------------------------------------------------------------ model and descriptors
    @property
    def model(self):
        """The CNN (created on first use and shared by the indexes of this process that name it)."""
        if self._model is None:
            self._model = _shared_model(self.model_name)
        return self._model

    def _learn_vocabularies(self, files, *, sample: int = 200, seed: int = 0):
        from ..engine import features

        kinds = [d for d in self.descriptors if d in ("sift", "orb") and d not in self.vocabularies]
        if not kinds:
            return
        rng = np.random.default_rng(seed)
        chosen = (
            [files[i] for i in sorted(rng.choice(len(files), min(sample, len(files)), replace=False))] if files else []
        )
        images = []
        for p in chosen:
            try:
                images.append(load_image(p))
            except (ImageLoadError, OSError):
                continue
        for kind in kinds:
            descs = [features.local_features(im, kind=kind, max_features=300) for im in images]
            self.vocabularies[kind] = features.learn_vocabulary(
                descs, kind=kind, size=self.options["vocabulary_size"], seed=seed
            )

    def describe_images(self, images: list, *, descriptors=None, with_tags: bool = True) -> tuple[dict, list]:
        """Descriptor vectors (dict name → float32 N×D) and top-5 tags for a list of loaded images.

        ``descriptors`` defaults to the index's own; tags are ``[]`` per image when ``with_tags`` is False.
        """
        from ..engine import features, models

        out = {}
        names = self.descriptors if descriptors is None else tuple(descriptors)
        tags = None
        if with_tags and images and "cnn" in names:
            out["cnn"], tags = features.cnn_with_tags(images, model=self.model, topk=TOPK_TAGS)
        for name in names:
            if name in out:
                continue
            if name == "cnn":
                out[name] = features.cnn(images, model=self.model)
            elif name == "color":
                out[name] = features.color_histogram(images, bins=self.options["color_bins"])
            elif name == "moments":
                out[name] = features.color_moments(images)
            else:
                out[name] = (
                    features.sift_bovw(images, vocabulary=self.vocabularies[name])
                    if name == "sift"
                    else features.orb_bovw(images, vocabulary=self.vocabularies[name])
                )
        if tags is None:
            tags = models.classify(self.model, images, topk=TOPK_TAGS) if with_tags and images else [[] for _ in images]
        return out, [[(str(t), float(p)) for t, p in row] for row in tags]

    def _ingest(self, files, caps: dict, *, chunk: int = 32):
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), desc="indexing", unit="img", disable=not self.progress)
        try:
            for start in range(0, len(files), chunk):
                batch_paths, images, prints = [], [], []
                for p in files[start : start + chunk]:
                    bar.update(1)
                    key = str(p)
                    try:
                        st = p.stat()
                        data = p.read_bytes()
                        digest = hashlib.sha1(data).hexdigest()
                        if key in self._path_row and self.fingerprints[self._path_row[key]][2] == digest:
                            continue  # already indexed and unchanged
                        images.append(load_image(data, mode="rgb"))
                    except ImageLoadError as exc:
                        self.skipped.append((key, exc.reason))
                        continue
                    except OSError as exc:
                        self.skipped.append((key, f"cannot read file: {exc.strerror or exc}"))
                        continue
                    batch_paths.append(key)
                    prints.append((st.st_size, st.st_mtime_ns, digest))
                if not images:
                    continue
                changed = [p for p in batch_paths if p in self._path_row]
                if changed:
                    self.remove(changed)
                vecs, tags = self.describe_images(images)
                self._append(batch_paths, [caps.get(p, "") for p in batch_paths], tags, prints, vecs)
        finally:
            bar.close()

    # ------------------------------------------------------------------ rows and FAISS
    def _reindex_rows(self):
        self._row = {int(i): r for r, i in enumerate(self.ids)}
        self._path_row = {p: r for r, p in enumerate(self.paths)}
        self._text_cache = None

    def _append(self, paths, captions, tags, prints, vecs: dict):
        n = len(paths)
        new_ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        for name in self.descriptors:
            x = np.ascontiguousarray(vecs[name], dtype=np.float32)
            if name not in self.faiss:
                self.dims[name] = int(x.shape[1])
                kind = vectors.choose_type(self.index_type, n, gpu=self.gpu)
                self.faiss[name] = vectors.to_device(
                    vectors.new_index(kind, x.shape[1], _metric(name), train=x), gpu=self.gpu
                )
            elif x.shape[1] != self.dims[name]:
                raise ValueError(f"{name} vectors have {x.shape[1]} dimensions, the index has {self.dims[name]}")
            self.faiss[name].add_with_ids(x, new_ids)
        self.ids = np.concatenate([self.ids, new_ids])
        self.paths += list(paths)
        self.captions += list(captions)
        self.tags += [list(t) for t in tags]
        self.fingerprints += list(prints)
        self.next_id += n
        self._reindex_rows()
        self._maybe_restructure()

    def _maybe_restructure(self):
        for name in list(self.faiss):
            want = vectors.choose_type(self.index_type, len(self.ids), gpu=self.gpu)
            if vectors.kind_of(self.faiss[name]) != want:
                self._rebuild(name, want)

    def _rebuild(self, name, kind, keep_ids=None):
        x, ids = vectors.vectors_and_ids(self.faiss[name])
        if keep_ids is not None:
            mask = np.isin(ids, keep_ids)
            x, ids = x[mask], ids[mask]
        if kind == "ivf" and vectors.kind_of(self.faiss[name]) == "ivf":  # keep the trained cells
            import faiss

            cpu = faiss.clone_index(vectors.to_cpu(self.faiss[name]))
            cpu.reset()
        else:
            cpu = vectors.new_index(kind, self.dims[name], _metric(name), train=x if kind == "ivf" else None)
        if len(ids):
            cpu.add_with_ids(x, ids)
        self.faiss[name] = vectors.to_device(cpu, gpu=self.gpu)

    @property
    def index_types(self) -> dict:
        return {name: vectors.kind_of(ix) for name, ix in self.faiss.items()}

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return (
            f"ImageIndex({len(self)} images, descriptors={self.descriptors}, model={self.model_name!r}, "
            f"index_types={self.index_types}, skipped={len(self.skipped)})"
        )

    def add(self, source, *, captions=None) -> int:
        """Index more images (a folder or a list of paths); changed files are re-indexed, unchanged ones skipped.

        Returns
        -------
        int
            How many images were added or re-indexed.
        """
        files, root = _file_list(source)
        caps = _normalise_captions(captions, root)
        before = set(zip(self.paths, (f[2] for f in self.fingerprints)))
        self._learn_vocabularies(files)
        self._ingest(files, caps)
        return len(set(zip(self.paths, (f[2] for f in self.fingerprints))) - before)

    def remove(self, paths) -> int:
        """Remove images by path; paths not in the index are ignored. Returns how many were removed."""
        rows = sorted(
            {
                self._path_row[str(Path(p).expanduser().resolve())]
                for p in paths
                if str(Path(p).expanduser().resolve()) in self._path_row
            }
        )
        if not rows:
            return 0
        gone = self.ids[rows]
        keep = np.setdiff1d(self.ids, gone)
        for name, ix in list(self.faiss.items()):
            if vectors.kind_of(ix) == "flat" and not self.gpu:
                ix.remove_ids(np.ascontiguousarray(gone, dtype=np.int64))
            else:  # HNSW cannot delete, IVF and GPU indexes do not compact IDs: rebuild from the kept vectors
                self._rebuild(name, vectors.kind_of(ix), keep_ids=keep)
        mask = np.ones(len(self.ids), bool)
        mask[rows] = False
        self.ids = self.ids[mask]
        for attr in ("paths", "captions", "tags", "fingerprints"):
            setattr(self, attr, [v for v, m in zip(getattr(self, attr), mask) if m])
        self._reindex_rows()
        self._maybe_restructure()
        return len(rows)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        """Write the index to folder ``path`` atomically (see :mod:`cnnwidgets.index.storage`); returns the folder."""
        import faiss

        root = Path(path).expanduser()
        gen = storage.new_generation(root)
        for name, ix in self.faiss.items():
            faiss.write_index(vectors.to_cpu(ix), str(gen / f"{name}.faiss"))
        for kind, vocab in self.vocabularies.items():
            vocab.save(gen / f"vocab_{kind}.npy")
        rows = [
            (int(i), p, c, json.dumps([[t, round(float(pr), 6)] for t, pr in tg]), *fp)
            for i, p, c, tg, fp in zip(self.ids, self.paths, self.captions, self.tags, self.fingerprints)
        ]
        storage.write_table(gen / storage.TABLE, rows)
        manifest = {
            "model": self.model_name,
            "descriptors": list(self.descriptors),
            "count": len(self),
            "counts": {n: int(ix.ntotal) for n, ix in self.faiss.items()},
            "dims": self.dims,
            "metrics": {n: _metric(n) for n in self.descriptors},
            "index_type": self.index_type,
            "index_types": self.index_types,
            "options": self.options,
            "next_id": int(self.next_id),
            "skipped": [list(s) for s in self.skipped],
        }
        storage.finish_save(root, gen, manifest)
        self.root = root
        return root

    @classmethod
    def load(cls, path, *, progress: bool = True) -> ImageIndex:
        """Load an index folder written by :meth:`save`, checking that manifest, FAISS files and table agree.

        Raises
        ------
        cnnwidgets.index.IndexLoadError
            Naming the folder, the file and the disagreement (missing file, checksum, counts, dimensions, IDs).
        """
        import faiss

        from ..engine.features import Vocabulary

        root = Path(path).expanduser()
        man = storage.read_manifest(root)
        gen = storage.check_files(root, man)
        try:
            index = cls(
                descriptors=tuple(man["descriptors"]),
                model=man.get("model", "efficientnet_lite0"),
                index_type=man.get("index_type", "auto"),
                progress=progress,
                color_bins=tuple(man.get("options", {}).get("color_bins", (8, 4, 4))),
                vocabulary_size=man.get("options", {}).get("vocabulary_size", 256),
            )
        except (ValueError, TypeError) as exc:
            raise storage.IndexLoadError(root, f"manifest.json: {exc}") from None
        rows = storage.read_table(root, gen / storage.TABLE)
        if len(rows) != man["count"]:
            raise storage.IndexLoadError(
                root, f"{storage.TABLE} has {len(rows)} images but the manifest says {man['count']}"
            )
        ids = np.array([r[0] for r in rows], np.int64)
        for name in index.descriptors:
            f = gen / f"{name}.faiss"
            if not rows and name not in man["counts"]:
                continue  # an empty index has no FAISS files yet
            if not f.exists():
                raise storage.IndexLoadError(
                    root, f"{gen.name}/{name}.faiss is missing (descriptor {name!r} is in the manifest)"
                )
            try:
                ix = faiss.read_index(str(f))
            except RuntimeError as exc:
                raise storage.IndexLoadError(
                    root, f"{gen.name}/{name}.faiss cannot be read by FAISS ({str(exc).splitlines()[0]})"
                ) from None
            if ix.ntotal != man["counts"].get(name) or ix.ntotal != len(rows):
                raise storage.IndexLoadError(
                    root,
                    f"{name}.faiss holds {ix.ntotal} vectors, the manifest says {man['counts'].get(name)} and {storage.TABLE} has {len(rows)} rows",
                )
            if ix.d != man["dims"].get(name):
                raise storage.IndexLoadError(
                    root, f"{name}.faiss has dimension {ix.d}, the manifest says {man['dims'].get(name)}"
                )
            if not hasattr(ix, "id_map"):
                ix = faiss.downcast_index(ix)
            if not hasattr(ix, "id_map"):
                raise storage.IndexLoadError(root, f"{name}.faiss is not an ID-mapped index")
            fids = np.sort(faiss.vector_to_array(ix.id_map).astype(np.int64))
            if not np.array_equal(fids, ids):
                raise storage.IndexLoadError(root, f"{name}.faiss and {storage.TABLE} list different image IDs")
            index.faiss[name] = vectors.to_device(ix, gpu=index.gpu)
            index.dims[name] = int(ix.d)
            if name in ("sift", "orb"):
                vf = gen / f"vocab_{name}.npy"
                if not vf.exists():
                    raise storage.IndexLoadError(root, f"{gen.name}/vocab_{name}.npy is missing")
                try:
                    index.vocabularies[name] = Vocabulary.load(vf, kind=name)
                except ValueError as exc:
                    raise storage.IndexLoadError(root, f"vocab_{name}.npy: {exc}") from None
        intern = {}
        try:
            index.tags = [[(intern.setdefault(t, t), float(p)) for t, p in json.loads(r[3])] for r in rows]
        except (ValueError, TypeError) as exc:
            raise storage.IndexLoadError(
                root, f"{storage.TABLE}: a tags entry is not a JSON list of [label, probability] ({exc})"
            ) from None
        index.ids = ids
        index.paths = [r[1] for r in rows]
        index.captions = [r[2] or "" for r in rows]
        index.fingerprints = [tuple(r[4:7]) for r in rows]
        index.next_id = int(man.get("next_id", int(ids.max()) + 1 if len(ids) else 0))
        index.skipped = [tuple(s) for s in man.get("skipped", [])]
        index.root = root
        index._reindex_rows()
        return index

    # ------------------------------------------------------------------ queries
    def _query(self, image, names) -> tuple[dict, list | None]:
        """Query vectors per descriptor and the query's tags; an indexed path reuses its stored data."""
        key = None
        if isinstance(image, (str, os.PathLike)):
            key = str(Path(image).expanduser().resolve())
        if key is not None and key in self._path_row:
            r = self._path_row[key]
            iid = int(self.ids[r])
            return {n: self.faiss[n].reconstruct(iid) for n in names}, self.tags[r]
        vecs, _ = self.describe_images([load_image(image, mode="rgb")], descriptors=names, with_tags=False)
        return {n: v[0] for n, v in vecs.items()}, None

    def _query_tags(self, image) -> list:
        key = str(Path(image).expanduser().resolve()) if isinstance(image, (str, os.PathLike)) else None
        if key is not None and key in self._path_row:
            return self.tags[self._path_row[key]]
        from ..engine.models import classify

        return [(str(t), float(p)) for t, p in classify(self.model, load_image(image, mode="rgb"), topk=TOPK_TAGS)]

    def _content(self, name, q, k, allowed=None) -> tuple[np.ndarray, np.ndarray]:
        d, i = vectors.search(self.faiss[name], q, k, allowed=allowed)
        d, i = d[0], i[0]
        keep = i >= 0
        return _score(name, d[keep]), i[keep]

    def _exact(self, name, q, ids) -> np.ndarray:
        if len(ids) == 0:
            return np.zeros(0, np.float32)
        x = np.vstack([self.faiss[name].reconstruct(int(i)) for i in ids])
        raw = x @ q if _metric(name) == "ip" else ((x - q) ** 2).sum(axis=1)
        return _score(name, raw)

    def text_scores(self, text: str, *, weights: dict | None = None) -> np.ndarray:
        """Text score of every image (row order): BM25 over captions, file names and tags, fused with MiniLM similarity.

        ``keyword`` part: BM25 divided by its maximum over the index (0 when no word matches). ``semantic`` part:
        the highest cosine similarity between the query's MiniLM embedding and the image's caption or any of its
        top-5 predicted labels. Result: ``w_keyword * keyword + w_semantic * semantic`` (default weights 0.5 / 0.5).

        Returns
        -------
        numpy.ndarray
            float32, shape (N,).
        """
        from ..engine.text import BM25, embed_text

        w = dict(TEXT_WEIGHTS, **(weights or {}))
        if self._text_cache is None:
            docs = [_doc_words(p, c, t) for p, c, t in zip(self.paths, self.captions, self.tags)]
            labels = sorted({t for tg in self.tags for t, _ in tg})
            cap_rows = [r for r, c in enumerate(self.captions) if c]
            self._text_cache = {
                "bm25": BM25(docs),
                "labels": {l: i for i, l in enumerate(labels)},
                "label_vecs": embed_text(labels),
                "cap_rows": np.array(cap_rows, np.int64),
                "cap_vecs": embed_text([self.captions[r] for r in cap_rows]),
            }
        tc = self._text_cache
        kw = tc["bm25"].scores(text)
        kw = kw / kw.max() if len(kw) and kw.max() > 0 else np.zeros(len(self), np.float64)
        q = embed_text(text)
        sem = np.full(len(self), -1.0)
        if len(tc["labels"]):
            lsim = tc["label_vecs"] @ q
            for r, tg in enumerate(self.tags):
                if tg:
                    sem[r] = max(lsim[tc["labels"][t]] for t, _ in tg)
        if len(tc["cap_rows"]):
            sem[tc["cap_rows"]] = np.maximum(sem[tc["cap_rows"]], tc["cap_vecs"] @ q)
        sem = np.clip(sem, 0.0, 1.0)
        return (w["keyword"] * kw + w["semantic"] * sem).astype(np.float32)

    def search(
        self, *, text: str | None = None, image=None, mode: str = "auto", k: int = 10, weights: dict | None = None
    ) -> list[Hit]:
        """Find images by text, by an example image, or both.

        Parameters
        ----------
        text : str, optional
            Words to look for (captions, file names, predicted labels, and their meaning via MiniLM).
        image : path, array, PIL image, bytes, optional
            The example image. An indexed path reuses its stored descriptors and tags (no recomputation).
        mode : {"auto", "text", "color", "moments", "sift", "orb", "cnn", "fusion", "semantic"}
            "auto": text only → "text", image only → "semantic" (the first descriptor when the index has no
            "cnn"), both → "fusion".
            "semantic": classify the query, keep images sharing at least one top-5 label with it, rank those by
            CNN similarity; the remaining places are filled by plain CNN search (all of them when no image
            shares a label).
            "fusion": min–max normalise each component's scores over the candidates and average them with
            ``weights`` (default :data:`DEFAULT_WEIGHTS`); components are "text" (when text is given) and
            every content descriptor (when an image is given).
        k : int
            Number of hits.
        weights : dict, optional
            Fusion weights by component name, and text weights "keyword" / "semantic".

        Returns
        -------
        list of Hit
            Best first, at most ``k``.

        Raises
        ------
        ValueError
            On an unknown mode, a mode that needs a descriptor the index lacks, or a missing query.
        """
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}: expected one of {MODES}")
        k = int(k)
        if k < 1:
            raise ValueError(f"k={k}: expected a positive number of results")
        has_text = text is not None and str(text).strip() != ""
        has_image = image is not None
        if not has_text and not has_image:
            raise ValueError("search needs text=..., image=... or both")
        if mode == "auto":
            mode = (
                "fusion"
                if has_text and has_image
                else "text"
                if has_text
                else "semantic"
                if "cnn" in self.faiss
                else self.descriptors[0]
            )
        if len(self) == 0:
            return []
        if mode == "text":
            if not has_text:
                raise ValueError("mode='text' needs text=...")
            s = self.text_scores(str(text), weights=weights)
            order = np.argsort(-s, kind="stable")[:k]
            return [self._hit(r, float(s[r]), {"text": float(s[r])}) for r in order]
        if mode in DESCRIPTORS:
            self._need(mode)
            if not has_image:
                raise ValueError(f"mode={mode!r} needs image=...")
            q, _ = self._query(image, [mode])
            sc, ids = self._content(mode, q[mode], k)
            return [self._hit(self._row[int(i)], float(s), {mode: float(s)}) for s, i in zip(sc, ids)]
        if mode == "semantic":
            self._need("cnn")
            if not has_image:
                raise ValueError("mode='semantic' needs image=...")
            return self._semantic(image, k)
        return self._fusion(text if has_text else None, image if has_image else None, k, weights)

    def _need(self, name):
        if name not in self.faiss:
            raise ValueError(
                f"this index has no {name!r} descriptor (it has {self.descriptors}); build it with descriptors=(..., {name!r})"
            )

    def _hit(self, row, score, scores) -> Hit:
        return Hit(self.paths[row], float(score), scores, list(self.tags[row]), self.captions[row])

    def _semantic(self, image, k) -> list[Hit]:
        q, _ = self._query(image, ["cnn"])
        qtags = {t for t, _ in self._query_tags(image)}
        allowed = np.array([int(i) for i, tg in zip(self.ids, self.tags) if qtags & {t for t, _ in tg}], np.int64)
        hits = []
        if len(allowed):
            sc, ids = self._content("cnn", q["cnn"], k, allowed=allowed)
            hits = [
                self._hit(self._row[int(i)], float(s), {"cnn": float(s), "class_match": 1.0}) for s, i in zip(sc, ids)
            ]
        if len(hits) < k:  # too few images share a class: fill with plain CNN search
            seen = {h.path for h in hits}
            sc, ids = self._content("cnn", q["cnn"], k + len(hits))
            for s, i in zip(sc, ids):
                r = self._row[int(i)]
                if self.paths[r] not in seen and len(hits) < k:
                    hits.append(self._hit(r, float(s), {"cnn": float(s), "class_match": 0.0}))
        return hits

    def _fusion(self, text, image, k, weights) -> list[Hit]:
        w = dict(DEFAULT_WEIGHTS, **{n: v for n, v in (weights or {}).items() if n in DEFAULT_WEIGHTS})
        comps, cand = {}, set()
        pool = max(5 * k, 50)
        tscores = None
        if text is not None:
            tscores = self.text_scores(
                str(text), weights={n: v for n, v in (weights or {}).items() if n in TEXT_WEIGHTS}
            )
            cand.update(int(self.ids[r]) for r in np.argsort(-tscores, kind="stable")[:pool])
        qv = {}
        if image is not None:
            qv, _ = self._query(image, list(self.descriptors))
            for name in self.descriptors:
                _, ids = self._content(name, qv[name], pool)
                cand.update(int(i) for i in ids)
        cand = np.array(sorted(cand), np.int64)
        if tscores is not None:
            comps["text"] = tscores[[self._row[int(i)] for i in cand]]
        for name in qv:
            comps[name] = self._exact(name, qv[name], cand)
        total = np.zeros(len(cand))
        wsum = 0.0
        for name, s in comps.items():
            wt = float(w.get(name, 0.0))
            if wt <= 0:
                continue
            lo, hi = float(np.min(s)), float(np.max(s))
            total += wt * ((s - lo) / (hi - lo) if hi > lo else np.ones_like(s, dtype=np.float64))
            wsum += wt
        total /= max(wsum, 1e-12)
        order = np.argsort(-total, kind="stable")[:k]
        return [
            self._hit(self._row[int(cand[j])], float(total[j]), {n: float(s[j]) for n, s in comps.items()})
            for j in order
        ]


@functools.lru_cache(maxsize=2)
def _shared_model(name: str):
    from ..engine.models import create_model

    return create_model(name, pretrained=True)


def _metric(name: str) -> str:
    from ..engine.features import METRICS

    return METRICS[name]


def _score(name: str, raw: np.ndarray) -> np.ndarray:
    """Similarity from FAISS's raw value: inner products as they are, squared L2 → 1 / (1 + L2)."""
    raw = np.asarray(raw, np.float64)
    if _metric(name) == "ip":
        return raw.astype(np.float32)
    return (1.0 / (1.0 + np.sqrt(np.maximum(raw, 0.0)))).astype(np.float32)
