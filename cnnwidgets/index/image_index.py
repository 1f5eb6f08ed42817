"""A persistent, searchable collection of images: one FAISS index per descriptor plus a table of rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import build as building
from . import executors, persist, storage, vectors
from . import search as searching
from .build import DESCRIPTORS, describing_model, read_captions
from .rows import NO_FINGERPRINT, Fingerprint, ImageRow, RowTable
from .search import DEFAULT_WEIGHTS, MODES, TEXT_WEIGHTS, Hit
from .storage import IndexLoadError

__all__ = ["ImageIndex", "Hit", "DESCRIPTORS", "MODES", "DEFAULT_WEIGHTS", "TEXT_WEIGHTS", "read_captions"]


def _checked_precision(precision) -> str:
    if precision == "fp32":  # the default needs no torch import
        return precision
    from ..engine.models.precision import PRECISIONS

    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: expected one of {PRECISIONS}")
    return str(precision)


class ImageIndex:
    """Images searchable by text, colour, local features, CNN features, their fusion, or class-narrowed CNN search.

    Create one with :meth:`build` (or :meth:`load` from disk); grow it with :meth:`add`, shrink it with
    :meth:`remove`, persist it with :meth:`save`, query it with :meth:`search`.

    Attributes
    ----------
    descriptors : tuple of str
        The content descriptors indexed (a subset of :data:`~cnnwidgets.index.build.DESCRIPTORS`).
    model_name : str
        CNN used for the "cnn" descriptor and for the predicted tags.
    rows : RowTable
        One :class:`~cnnwidgets.index.rows.ImageRow` per indexed image (ID, path, caption, tags, fingerprint),
        in ID order; :attr:`paths`, :attr:`ids`, :attr:`captions`, :attr:`tags` and :attr:`fingerprints` are
        its columns.
    faiss : dict
        ``{descriptor: vector store}`` (:mod:`cnnwidgets.index.store`: a
        :class:`~cnnwidgets.index.faiss_store.FaissStore`, or an :class:`~cnnwidgets.index.ondisk.IVFPQIndex` for
        "ivfpq"); the IDs are the rows' IDs.
    dims : dict
        Vector dimension per descriptor.
    vocabularies : dict
        Visual vocabulary per bag-of-visual-words descriptor ("sift", "orb").
    skipped : list of (str, str)
        Files that could not be indexed, with the reason.
    next_id : int
        The ID the next added image gets (IDs are never reused).
    root : pathlib.Path or None
        The folder the index was last saved to or loaded from.
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
        precision: str = "fp32",
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
            "precision": _checked_precision(precision),
        }
        self.progress = progress
        self.gpu = faiss_gpu_available()
        self.vocabularies = {}
        self.faiss = {}
        self.dims = {}
        self.rows = RowTable()
        self.skipped: list[tuple[str, str]] = []
        self.next_id = 0
        self.root = None
        self._model = None
        self._text_scorer = None
        self._hierarchy = None
        self.text_vectors = searching.TextVectors()

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
        executor="local",
        precision: str = "fp32",
    ) -> ImageIndex:
        """Index the images in a folder (recursively) or a list of paths.

        Parameters
        ----------
        source : str, pathlib.Path or list of paths
        path : str or pathlib.Path, optional
            Save the index there when done (see :meth:`save`).
        descriptors : tuple of str
            Any of "cnn", "color" (HSV histogram), "moments", "sift", "orb" (bags of visual words), "color_set",
            "correlogram", "hog", "gist", "glcm" (see :mod:`cnnwidgets.engine.features` and ``docs/retrieval.md``).
        model : str
            Registry name of the CNN (:func:`cnnwidgets.engine.models.create_model`); it computes the "cnn"
            descriptor and every image's top-5 ImageNet labels, stored as tags.
        captions : dict, str or pathlib.Path, optional
            ``{path: caption}`` (relative paths are taken from the folder) or a CSV file ``path,caption``.
            By default ``captions.csv`` in the folder is read when present.
        index_type : {"auto", "flat", "ivf", "hnsw", "ivfpq"}
            FAISS structure; "auto" is exact below :data:`cnnwidgets.index.vectors.AUTO_THRESHOLD` images and
            "ivfpq" above :data:`cnnwidgets.index.vectors.AUTO_MEMORY_BUDGET` bytes of float32 vectors.
            "ivfpq" (IVF with product quantisation, :mod:`cnnwidgets.index.ondisk`) re-ranks its candidates with
            the exact vectors; after :meth:`save` / :meth:`load` its lists are memory-mapped and its exact vectors
            read from disk when needed.
        color_bins : int or tuple of 3 ints
            HSV histogram bins.
        vocabulary_size : int
            Visual words for "sift" / "orb"; the vocabulary is learnt from (a sample of) these images.
        progress : bool
            Show a tqdm progress bar.
        executor : {"local", "ray"} or executor object
            Where the images are described (see :meth:`add` and :mod:`cnnwidgets.index.executors`).
        precision : {"fp32", "int8", "bf16", "auto"}
            Of the CNN (:func:`cnnwidgets.engine.models.embed`): "int8" runs its checked int8 ONNX Runtime export
            (:mod:`cnnwidgets.engine.models.quantize`); "auto" is decided once, on this machine (:attr:`precision`).
            Recorded with the index: image queries and later additions use the same.

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
            precision=precision,
        )
        index.add(source, captions=captions, executor=executor)
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
        index.add_vectors(paths, vectors_by_descriptor, tags=tags, captions=captions)
        return index

    # ------------------------------------------------------------------ columns of the row table
    @property
    def ids(self) -> np.ndarray:
        """Row IDs (the FAISS IDs) in row order: int64, shape (N,), increasing; read-only."""
        return self.rows.ids

    @property
    def paths(self) -> list[str]:
        """Indexed images (absolute paths), in row order (a new list)."""
        return self.rows.column("path")

    @property
    def captions(self) -> list[str]:
        """Caption per image, in row order ("" for none)."""
        return self.rows.column("caption")

    @property
    def tags(self) -> list[list]:
        """Predicted top-5 ImageNet labels per image, in row order: lists of (label, probability)."""
        return [list(t) for t in self.rows.column("tags")]

    @property
    def fingerprints(self) -> list[Fingerprint]:
        """(size, mtime_ns, sha1) of each image file when it was indexed, in row order."""
        return self.rows.column("fingerprint")

    @fingerprints.setter
    def fingerprints(self, values) -> None:
        self.rows.replace_fingerprints(values)

    @property
    def index_types(self) -> dict:
        """The FAISS structure per descriptor ("flat", "ivf", "hnsw" or "ivfpq")."""
        return {name: vectors.kind_of(ix) for name, ix in self.faiss.items()}

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return (
            f"ImageIndex({len(self)} images, descriptors={self.descriptors}, model={self.model_name!r}, "
            f"index_types={self.index_types}, skipped={len(self.skipped)})"
        )

    # ------------------------------------------------------------------ model and descriptors
    @property
    def model(self):
        """What describes images with the CNN, for queries as for builds: the shared CNN when this process has it,
        else its recorded ONNX Runtime export (:func:`cnnwidgets.engine.models.shared_runner`)."""
        if self._model is None:
            self._model = describing_model(self.model_name)
        return self._model

    @property
    def precision(self) -> str:
        """The CNN's precision for every image this index describes: ``"auto"`` is decided here, once (int8 where
        :func:`~cnnwidgets.engine.models.runtime.prefers_int8`), and recorded, so that one index never mixes
        fp32 and int8 vectors, whatever the CPUs of the processes (or Ray workers) that describe its images."""
        if self.options["precision"] == "auto":
            from ..engine.models.runtime import prefers_int8

            self.options["precision"] = "int8" if prefers_int8(self.model) else "fp32"
        return self.options["precision"]

    def describe_images(self, images: list, *, descriptors=None, with_tags: bool = True) -> tuple[dict, list]:
        """Descriptor vectors (dict name → float32 N×D) and top-5 tags for a list of loaded images.

        ``descriptors`` defaults to the index's own; tags are ``[]`` per image when ``with_tags`` is False.
        """
        names = self.descriptors if descriptors is None else tuple(descriptors)
        return building.describe_images(
            images,
            names,
            model=self.model,
            color_bins=self.options["color_bins"],
            vocabularies=self.vocabularies,
            with_tags=with_tags,
            precision=self.precision,
        )

    # ------------------------------------------------------------------ growing and shrinking
    def add(self, source, *, captions=None, executor="local") -> int:
        """Index more images (a folder or a list of paths); changed files are re-indexed, unchanged ones skipped.

        Files that cannot be read or decoded are appended to :attr:`skipped` with the reason.

        Parameters
        ----------
        source : str, pathlib.Path or list of paths
        captions : dict, str or pathlib.Path, optional
            As in :meth:`build`.
        executor : {"local", "ray"} or executor object
            Where the images are described: in this process (:class:`~cnnwidgets.index.executors.LocalExecutor`),
            or on a Ray cluster (:class:`~cnnwidgets.index.executors.RayExecutor`; pass one to set its address,
            workers and GPUs). Both give the same rows.

        Returns
        -------
        int
            How many images were added or re-indexed.
        """
        run = executors.executor_for(executor)
        files, root = building.list_image_files(source)
        caps = building.resolve_captions(captions, root)
        before = {(r.path, r.fingerprint.sha1) for r in self.rows}
        kinds = [d for d in self.descriptors if d in ("sift", "orb") and d not in self.vocabularies]
        self.vocabularies.update(building.learn_vocabularies(files, kinds, size=self.options["vocabulary_size"]))
        task = self.batch_task()
        for batch in run.run(files, task, stored_sha1=self._stored_sha1, progress=self.progress):
            self.skipped += batch.skipped
            if not batch.paths:
                continue
            changed = [p for p in batch.paths if p in self.rows]
            if changed:
                self.remove(changed)
            self._append(
                batch.paths, [caps.get(p, "") for p in batch.paths], batch.tags, batch.fingerprints, batch.vectors
            )
        return len({(r.path, r.fingerprint.sha1) for r in self.rows} - before)

    def batch_task(self) -> executors.IndexBatch:
        """The batch function that describes files for this index (its descriptors, model, bins, vocabularies)."""
        return executors.IndexBatch(
            descriptors=self.descriptors,
            model=self.model_name,
            color_bins=self.options["color_bins"],
            vocabularies=self.vocabularies,
            precision=self.precision,
        )

    def _stored_sha1(self, path: str) -> str | None:
        row = self.rows.get(path)
        return None if row is None else row.fingerprint.sha1

    def add_vectors(self, paths, vectors_by_descriptor: dict, *, tags=None, captions=None) -> None:
        """Add images by their precomputed descriptor vectors (float32 N×D for every descriptor of the index).

        Raises
        ------
        ValueError
            If a descriptor's vectors do not have one row per path, or their dimension differs from the index's.
        """
        n = len(paths)
        for name, x in vectors_by_descriptor.items():
            if len(x) != n:
                raise ValueError(f"vectors for {name!r} have {len(x)} rows but there are {n} paths")
        self._append(
            [str(p) for p in paths],
            [c or "" for c in (captions or [""] * n)],
            [list(t) for t in (tags or [[] for _ in range(n)])],
            [NO_FINGERPRINT] * n,
            {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in vectors_by_descriptor.items()},
        )

    def remove(self, paths) -> int:
        """Remove images by path; paths not in the index are ignored. Returns how many were removed."""
        found = {self.rows.position(str(Path(p).expanduser().resolve())) for p in paths} - {None}
        if not found:
            return 0
        gone = self.rows.ids[sorted(found)]
        for store in self.faiss.values():
            store.remove_ids(np.ascontiguousarray(gone, dtype=np.int64))
        self.rows.remove(gone)
        self._text_scorer = None
        self._maybe_restructure()
        return len(gone)

    def _append(self, paths, captions, tags, fingerprints, vecs: dict):
        """Add rows and their vectors (``vecs``: float32 N×D per descriptor), with new IDs."""
        n = len(paths)
        new_ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        x_by_name = {name: np.ascontiguousarray(vecs[name], dtype=np.float32) for name in self.descriptors}
        for name, x in x_by_name.items():
            if name in self.dims and x.shape[1] != self.dims[name]:
                raise ValueError(f"{name} vectors have {x.shape[1]} dimensions, the index has {self.dims[name]}")
        self.rows.append(
            ImageRow(int(i), p, c, tuple(t), Fingerprint(*f))
            for i, p, c, t, f in zip(new_ids, paths, captions, tags, fingerprints)
        )
        for name, x in x_by_name.items():
            if name not in self.faiss:
                self.dims[name] = int(x.shape[1])
                kind = vectors.choose_type(self.index_type, n, gpu=self.gpu, dim=x.shape[1])
                self.faiss[name] = vectors.to_device(
                    vectors.new_index(kind, x.shape[1], building.metric(name), train=x), gpu=self.gpu
                )
            self.faiss[name].add_with_ids(x, new_ids)
        self.next_id += n
        self._text_scorer = None
        self._maybe_restructure()

    def _maybe_restructure(self):
        for name in list(self.faiss):
            want = vectors.choose_type(self.index_type, len(self.rows), gpu=self.gpu, dim=self.dims[name])
            if vectors.kind_of(self.faiss[name]) != want:
                self._rebuild(name, want)

    def _rebuild(self, name, kind):
        x, ids = self.faiss[name].vectors_and_ids()
        train = x if kind in ("ivf", "ivfpq") else None
        store = vectors.new_index(kind, self.dims[name], building.metric(name), train=train)
        if len(ids):
            store.add_with_ids(x, ids)
        self.faiss[name] = vectors.to_device(store, gpu=self.gpu)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        """Write the index to folder ``path`` atomically (see :mod:`cnnwidgets.index.storage`); returns the folder.

        Besides vectors and rows it stores the class hierarchy and the MiniLM embeddings of every tag label and
        caption, so that text search after :meth:`load` need not embed them again; labels not embedded yet are
        embedded here (MiniLM is loaded if it is not).
        """
        self.root = persist.save(self, path)
        return self.root

    @classmethod
    def load(cls, path, *, progress: bool = True) -> ImageIndex:
        """Load an index folder written by :meth:`save`, checking that manifest, FAISS files and table agree.

        Raises
        ------
        cnnwidgets.index.IndexLoadError
            Naming the folder, the file and the disagreement (missing file, checksum, counts, dimensions, IDs).

        Notes
        -----
        The folder's lock is held shared while it is read, so a save by another process waits
        (:func:`cnnwidgets.index.storage.locked`). Where it cannot be (a read-only shared index), a load that fails
        while a save replaced the manifest is tried once more.
        """
        root = Path(path).expanduser()
        for attempt in (1, 2):
            with storage.locked(root, shared=True) as held:
                before = storage.generation_of(root)
                try:
                    return cls._read(root, progress=progress)
                except IndexLoadError:
                    if held or attempt == 2 or storage.generation_of(root) in (None, before):
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def _read(cls, root: Path, *, progress: bool) -> ImageIndex:
        manifest, gen = persist.open_folder(root)
        try:
            index = cls(**persist.options_from_manifest(manifest), progress=progress)
        except (ValueError, TypeError) as exc:
            raise IndexLoadError(root, f"manifest.json: {exc}") from None
        stored = persist.read_contents(root, gen, manifest, index.descriptors)
        index.faiss = {name: vectors.to_device(ix, gpu=index.gpu) for name, ix in stored.faiss.items()}
        index.dims = {name: int(ix.d) for name, ix in stored.faiss.items()}
        index.vocabularies = stored.vocabularies
        index.rows = stored.rows
        index.next_id = stored.next_id
        index.skipped = stored.skipped
        hierarchy, text_vectors = persist.read_text_data(root, gen, manifest)
        if hierarchy is not None:
            index._hierarchy = hierarchy
        if text_vectors is not None:
            index.text_vectors = text_vectors
        index.root = root
        return index

    # ------------------------------------------------------------------ queries
    @property
    def hierarchy(self):
        """The WordNet hierarchy of the tags' ImageNet labels (:class:`~cnnwidgets.index.hierarchy.ClassHierarchy`).

        The copy saved with the index after :meth:`load`, the package's (:func:`~.hierarchy.default_hierarchy`)
        otherwise.
        """
        if self._hierarchy is None:
            from .hierarchy import default_hierarchy

            self._hierarchy = default_hierarchy()
        return self._hierarchy

    @property
    def text_scorer(self) -> searching.TextScorer:
        """The text scorer of the rows as they are (built on first use, after every change)."""
        if self._text_scorer is None:
            self._text_scorer = searching.TextScorer(
                self.rows, text_vectors=self.text_vectors, hierarchy=self.hierarchy
            )
        return self._text_scorer

    def text_scores(self, text: str, *, weights: dict | None = None) -> np.ndarray:
        """Text score of every image (row order): BM25 over captions, file names and tags, MiniLM similarity, class words.

        ``keyword`` part: BM25 divided by its maximum over the index (0 when no word matches). ``semantic`` part:
        the highest cosine similarity between the query's MiniLM embedding and the image's caption or any of its
        top-5 predicted labels (for a label, the mean of its cosine and its WordNet gloss's). ``hierarchy`` part:
        for the query's words that name WordNet synsets ("dog", "bird", "vehicle"), the summed probability of the image's tags whose classes lie below them (0 for every
        image when no word names one). Result: ``w_keyword * keyword + w_semantic * semantic + w_hierarchy *
        hierarchy`` (default weights 0.5 each, :data:`TEXT_WEIGHTS`).

        Returns
        -------
        numpy.ndarray
            float32, shape (N,).
        """
        return self.text_scorer.scores(text, weights=weights)

    def search(
        self,
        *,
        text: str | None = None,
        image=None,
        mode: str = "auto",
        k: int = 10,
        weights: dict | None = None,
        rerank: str | None = None,
    ) -> list[Hit]:
        """Find images by text, by an example image, or both.

        Parameters
        ----------
        text : str, optional
            Words to look for (captions, file names, predicted labels, and their meaning via MiniLM).
        image : path, array, PIL image, bytes, optional
            The example image. An indexed path reuses its stored descriptors and tags (no recomputation).
        mode : str
            One of :data:`~cnnwidgets.index.search.MODES`: "auto", "text", a descriptor's name, "fusion" or
            "semantic".
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
            Fusion weights by component name, and text weights "keyword" / "semantic" / "hierarchy".
        rerank : {None, "qe", "diffusion", "kreciprocal"}
            Re-rank an image query's results with the stored vectors (:mod:`cnnwidgets.index.rerank`):
            "qe" searches again with the query expanded by its 5 nearest neighbours (α-QE, α = 3; one more
            FAISS query); "diffusion" and "kreciprocal" re-order the first 100 results (or ``k`` when larger)
            by diffusion on their kNN graph or by k-reciprocal Jaccard distance, on the "cnn" vectors (the
            mode's own descriptor in a single-descriptor mode). Semantic mode keeps its class matches first.
            Ignored for text-only queries. Off by default (see ``docs/retrieval.md`` for what it gains).

        Returns
        -------
        list of Hit
            Best first, at most ``k``.

        Raises
        ------
        ValueError
            On an unknown mode, a mode that needs a descriptor the index lacks, or a missing query.
        """
        return searching.search(self, text=text, image=image, mode=mode, k=k, weights=weights, rerank=rerank)
