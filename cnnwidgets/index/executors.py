"""Where indexing runs: in this process (the default) or on a Ray cluster. Both run one batch function.

:class:`IndexBatch` is the batch function of indexing: it reads, fingerprints and decodes files and computes
their descriptor vectors and tags. :class:`LocalExecutor` runs it in this process, decoding the next batch on
a thread pool while the current one runs forward. :class:`RayExecutor` runs the same class in a pool of Ray
actors: each actor loads the model once and describes the batches it is sent, and the results
come back to this process in file order, as batches of rows that :meth:`ImageIndex.add` appends.

Both executors yield :class:`DescribedBatch` objects, so the index is assembled the same way whichever ran.
"""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import device
from . import build as building
from . import raycluster
from .rows import Fingerprint

__all__ = [
    "EXECUTORS",
    "DescribedBatch",
    "IndexBatch",
    "LocalExecutor",
    "RayExecutor",
    "executor_for",
    "RAY_MISSING",
]

EXECUTORS = ("local", "ray")
RAY_MISSING = "executor='ray' needs Ray, which is not installed: pip install 'cnnwidgets[ray]'"
LOST_REASON = "not returned by the Ray cluster (its worker was lost); add the file again to index it"


@dataclass
class DescribedBatch(building.FileBatch):
    """Rows ready to append to an index: the files of one batch that were described (:class:`.build.FileBatch`),
    with their vectors and tags.

    Attributes
    ----------
    vectors : dict
        ``{descriptor: float32 array (len(paths), D)}``.
    tags : list of list of (str, float)
        Top-5 ImageNet labels per path (``[]`` without tags).
    """

    vectors: dict = field(default_factory=dict)
    tags: list = field(default_factory=list)


class IndexBatch:
    """Read, fingerprint, decode and describe batches of image files.

    One instance holds one CNN (loaded on first use). :meth:`describe` computes the rows of files already
    decoded; calling the instance with a batch of columns (the form a Ray actor is sent) does everything, decoding on a
    small thread pool.

    Parameters
    ----------
    descriptors : sequence of str
        Descriptors to compute, from :data:`cnnwidgets.index.build.DESCRIPTORS`.
    model : str
        Registry name of the CNN.
    color_bins : sequence of 3 ints
        HSV histogram bins for "color".
    vocabularies : dict, optional
        ``{"sift" / "orb": Vocabulary}`` for the bag-of-visual-words descriptors.
    with_tags : bool
        Classify the images (top-5 ImageNet labels).
    min_side : int
        Decoded images keep at least twice this on their short side (JPEG draft decoding).
    decode_threads : int, optional
        Threads that read and decode files in :meth:`__call__`; default :func:`cnnwidgets.device.cpu_threads`.
    """

    def __init__(
        self,
        *,
        descriptors,
        model: str = "efficientnet_lite0",
        color_bins=(8, 4, 4),
        vocabularies: dict | None = None,
        with_tags: bool = True,
        min_side: int = building.DECODE_SIDE,
        decode_threads: int | None = None,
        precision: str = "fp32",
    ):
        self.descriptors = tuple(descriptors)
        self.model_name = str(model)
        self.precision = str(precision)
        self.color_bins = tuple(int(b) for b in color_bins)
        self.vocabularies = dict(vocabularies or {})
        self.with_tags = bool(with_tags)
        self.min_side = int(min_side)
        self.decode_threads = decode_threads
        self._model = None
        self._dims = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_model"] = None  # a worker loads its own copy from the registry
        return state

    @property
    def model(self):
        """The CNN (from the process-wide model cache, or its recorded ONNX Runtime export: see
        :func:`cnnwidgets.engine.models.shared_runner`)."""
        if self._model is None:
            self._model = building.describing_model(self.model_name)
        return self._model

    def describe(self, decoded: building.DecodedBatch) -> DescribedBatch:
        """The rows of a decoded batch: its vectors and tags, and its skipped files passed on."""
        out = DescribedBatch(paths=list(decoded.paths), fingerprints=list(decoded.fingerprints))
        out.skipped = list(decoded.skipped)
        if decoded.images:
            out.vectors, out.tags = building.describe_images(
                decoded.images,
                self.descriptors,
                model=self.model,
                color_bins=self.color_bins,
                vocabularies=self.vocabularies,
                with_tags=self.with_tags,
                precision=self.precision,
            )
        return out

    def dims(self) -> dict:
        """``{descriptor: vector dimension}``, from describing one small blank image (computed once)."""
        if self._dims is None:
            blank = building.DecodedBatch(paths=["-"], images=[np.zeros((64, 64, 3), np.uint8)], fingerprints=[None])
            vecs = self.describe(blank).vectors
            self._dims = {name: int(v.shape[1]) for name, v in vecs.items()}
        return self._dims

    # ------------------------------------------------------------------ the column form (a Ray actor's)
    def __call__(self, batch: dict) -> dict:
        """Describe a batch of columns ``path`` (str) and ``known`` (the SHA-1 recorded for the path, or "").

        Returns
        -------
        dict of numpy.ndarray
            One row per input path, in order: ``path``, ``status`` ("ok", "skipped" or "unchanged"),
            ``reason`` (why a file was skipped), ``size``, ``mtime_ns`` (int64), ``sha1``, ``tags`` (JSON) and
            ``vec.<descriptor>`` (float32, (n, D); zeros where the status is not "ok").
        """
        paths = [str(p) for p in batch["path"]]
        known = {p: str(k) for p, k in zip(paths, batch["known"]) if str(k)}
        decoded = building.DecodedBatch()
        threads = self.decode_threads or _cpu_threads()
        with concurrent.futures.ThreadPoolExecutor(max(1, min(threads, len(paths)))) as pool:
            found = list(pool.map(lambda p: building._read_one(Path(p), known.get, self.min_side), paths))
        status = {}
        for path, item in zip(paths, found):
            if item is None:
                status[path] = ("unchanged", "")
                continue
            key, image, info = item
            if image is None:
                decoded.skipped.append((key, info))
                status[path] = ("skipped", info)
            else:
                decoded.paths.append(key)
                decoded.images.append(image)
                decoded.fingerprints.append(info)
                status[path] = ("ok", "")
        described = self.describe(decoded)
        return _to_columns(paths, status, described, self.dims())


def _cpu_threads() -> int:
    from ..device import cpu_threads

    return cpu_threads()


def _to_columns(paths: list, status: dict, described: DescribedBatch, dims: dict) -> dict:
    n = len(paths)
    row_of = {p: i for i, p in enumerate(described.paths)}
    cols = {
        "path": np.array(paths, dtype=object),
        "status": np.array([status[p][0] for p in paths], dtype=object),
        "reason": np.array([status[p][1] for p in paths], dtype=object),
        "size": np.zeros(n, np.int64),
        "mtime_ns": np.zeros(n, np.int64),
        "sha1": np.array([""] * n, dtype=object),
        "tags": np.array(["[]"] * n, dtype=object),
    }
    for name, dim in dims.items():
        cols[f"vec.{name}"] = np.zeros((n, dim), np.float32)
    for i, p in enumerate(paths):
        j = row_of.get(p)
        if j is None:
            continue
        fp = described.fingerprints[j]
        cols["size"][i], cols["mtime_ns"][i], cols["sha1"][i] = fp.size, fp.mtime_ns, fp.sha1
        cols["tags"][i] = json.dumps(described.tags[j])
        for name in dims:
            cols[f"vec.{name}"][i] = described.vectors[name][j]
    return cols


def _from_columns(cols: dict, descriptors) -> tuple[DescribedBatch, list]:
    """A :class:`DescribedBatch` from the columns :meth:`IndexBatch.__call__` returns, and the paths it covered."""
    out = DescribedBatch()
    status = [str(s) for s in cols["status"]]
    paths = [str(p) for p in cols["path"]]
    ok = np.array([s == "ok" for s in status], dtype=bool)
    for p, s, why in zip(paths, status, cols["reason"]):
        if s == "skipped":
            out.skipped.append((p, str(why)))
    out.paths = [p for p, keep in zip(paths, ok) if keep]
    out.fingerprints = [
        Fingerprint(int(size), int(mtime), str(sha1))
        for size, mtime, sha1, keep in zip(cols["size"], cols["mtime_ns"], cols["sha1"], ok)
        if keep
    ]
    out.tags = [[(str(t), float(p)) for t, p in json.loads(str(tags))] for tags, keep in zip(cols["tags"], ok) if keep]
    out.vectors = {
        name: np.ascontiguousarray(np.asarray(cols[f"vec.{name}"])[ok], dtype=np.float32) for name in descriptors
    }
    return out, paths


# ---------------------------------------------------------------------- executors
class LocalExecutor:
    """Run :class:`IndexBatch` in this process: files are read and decoded on a thread pool, one batch ahead.

    Parameters
    ----------
    batch_size : int
        Files per batch.
    decode_threads : int, optional
        Read/decode threads; default :func:`cnnwidgets.device.cpu_threads`.
    """

    name = "local"

    def __init__(self, *, batch_size: int = 32, decode_threads: int | None = None):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size={batch_size!r}: expected a positive number")
        self.batch_size = int(batch_size)
        self.decode_threads = decode_threads

    def __repr__(self) -> str:
        return f"LocalExecutor(batch_size={self.batch_size})"

    def run(
        self, files: list, task: IndexBatch, *, stored_sha1: Callable[[str], str | None], progress: bool = True
    ) -> Iterator[DescribedBatch]:
        """Describe ``files`` batch by batch (unchanged files, by ``stored_sha1``, are left out)."""
        for decoded in building.decode_batches(
            files,
            stored_sha1=stored_sha1,
            chunk=self.batch_size,
            progress=progress,
            min_side=task.min_side,
            workers=self.decode_threads,
        ):
            yield task.describe(decoded)


class RayExecutor:
    """Run :class:`IndexBatch` on a Ray cluster: a pool of actors, each with the model loaded once, is sent the
    file list in batches, at most two waiting per actor.

    The files must be readable by the workers at the same paths (one machine, or a shared filesystem).
    Results come back in file order. A worker that dies is restarted and its batch retried by Ray; a file
    whose result still does not come back is reported in ``skipped``, never silently left out.

    Parameters
    ----------
    address : str, optional
        Address of a running cluster (``"auto"``, ``"ray://host:10001"``, …); by default the cluster Ray is
        already connected to, else ``RAY_ADDRESS``, else a new local one.
    workers : int, optional
        Actors in the pool; default: the cluster's CPUs divided by ``cpus_per_worker`` (or its GPUs divided by
        ``gpus_per_worker`` when that is set).
    cpus_per_worker : float
        CPUs each actor asks for; its torch, ONNX Runtime and OpenCV threads follow it.
    gpus_per_worker : float
        GPUs each actor asks for (0: CPU only). With a GPU the actor runs the CNN in torch on CUDA.
    batch_size : int
        Files per batch sent to an actor.
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        workers: int | None = None,
        cpus_per_worker: float = 1.0,
        gpus_per_worker: float = 0.0,
        batch_size: int = 32,
    ):
        if workers is not None and int(workers) < 1:
            raise ValueError(f"workers={workers!r}: expected a positive number")
        if cpus_per_worker <= 0 or gpus_per_worker < 0:
            raise ValueError(
                f"cpus_per_worker={cpus_per_worker!r}, gpus_per_worker={gpus_per_worker!r}: expected > 0 and ≥ 0"
            )
        if int(batch_size) < 1:
            raise ValueError(f"batch_size={batch_size!r}: expected a positive number")
        self.address = address
        self.workers = None if workers is None else int(workers)
        self.cpus_per_worker = float(cpus_per_worker)
        self.gpus_per_worker = float(gpus_per_worker)
        self.batch_size = int(batch_size)

    def __repr__(self) -> str:
        return (
            f"RayExecutor(address={self.address!r}, workers={self.workers}, cpus_per_worker={self.cpus_per_worker}, "
            f"gpus_per_worker={self.gpus_per_worker}, batch_size={self.batch_size})"
        )

    @staticmethod
    def _ray():
        try:
            import ray
        except ImportError:
            raise ImportError(RAY_MISSING) from None
        return ray

    def connect(self):
        """Connect to the cluster (starting a local one when there is none); returns the ``ray`` module."""
        return raycluster.connect(self._ray(), self.address)

    def pool_size(self, ray) -> int:
        """Actors in the pool: :attr:`workers`, or what the cluster's resources allow."""
        if self.workers is not None:
            return self.workers
        res = ray.cluster_resources()
        if self.gpus_per_worker > 0:
            return max(1, int(res.get("GPU", 0) // self.gpus_per_worker))
        return max(1, int(res.get("CPU", 1) // self.cpus_per_worker))

    def run(
        self, files: list, task: IndexBatch, *, stored_sha1: Callable[[str], str | None], progress: bool = True
    ) -> Iterator[DescribedBatch]:
        """Describe ``files`` on the cluster; batches come back in file order."""
        from tqdm.auto import tqdm

        if not files:
            return
        ray = self.connect()
        keys = [str(p) for p in files]
        chunks = [keys[i : i + self.batch_size] for i in range(0, len(keys), self.batch_size)]
        actor = ray.remote(_RayIndexBatch).options(
            num_cpus=self.cpus_per_worker,
            num_gpus=self.gpus_per_worker,
            max_restarts=-1,  # a lost actor is started again from its arguments, which travel inline (small)
            max_task_retries=-1,  # and the batch it was describing is sent again
        )
        pool = [actor.remote(task, self.cpus_per_worker) for _ in range(min(self.pool_size(ray), len(chunks)))]
        window = 2 * len(pool)  # batches in flight: each actor has its next batch queued while it works
        pending: list = []
        seen: set = set()
        bar = tqdm(total=len(keys), desc="indexing (ray)", unit="img", disable=not progress)

        def send(i: int) -> None:
            chunk = chunks[i]
            columns = {
                "path": np.array(chunk, dtype=object),
                "known": np.array([stored_sha1(k) or "" for k in chunk], dtype=object),
            }
            pending.append(pool[i % len(pool)].describe_columns.remote(columns))

        try:
            sent = 0
            for _ in range(len(chunks)):
                while sent < len(chunks) and len(pending) < window:
                    send(sent)
                    sent += 1
                ref = pending.pop(0)
                try:
                    cols = ray.get(ref)
                except ray.exceptions.RayActorError:  # the actor is gone for good: its batch is reported lost
                    continue
                batch, covered = _from_columns(cols, task.descriptors)
                seen.update(covered)
                bar.update(len(covered))
                yield batch
        except Exception as exc:  # KeyboardInterrupt and GeneratorExit are not Exceptions: they pass through
            raise RuntimeError(
                f"the Ray build stopped after {len(seen)} of {len(keys)} files: {raycluster.first_line(exc)}; "
                "the images described so far were added"
            ) from exc
        finally:
            bar.close()
            for a in pool:
                ray.kill(a, no_restart=True)
        lost = [k for k in keys if k not in seen]
        if lost:
            yield DescribedBatch(skipped=[(k, LOST_REASON) for k in lost])


class _RayIndexBatch:
    """The Ray actor around :class:`IndexBatch`: computes with as many threads as it has CPUs
    (:func:`cnnwidgets.device.threads`), loads the model once."""

    def __init__(self, task: IndexBatch, cpus: float):
        self.task = task
        self.threads = max(1, int(cpus))
        with device.threads(self.threads):
            task.dims()  # load the model before the first batch arrives

    def describe_columns(self, batch: dict) -> dict:
        """:meth:`IndexBatch.__call__` on a batch of columns."""
        with device.threads(self.threads):
            return self.task(batch)


def executor_for(executor) -> LocalExecutor | RayExecutor:
    """The executor an ``executor=`` argument names: "local", "ray", or an executor object (returned as is).

    Raises
    ------
    ValueError
        For another name.
    ImportError
        For "ray" when Ray is not installed, saying what to install.
    """
    if isinstance(executor, (LocalExecutor, RayExecutor)):
        if isinstance(executor, RayExecutor):
            executor._ray()
        return executor
    if executor == "local":
        return LocalExecutor()
    if executor == "ray":
        RayExecutor._ray()
        return RayExecutor()
    raise ValueError(f"executor={executor!r}: expected one of {EXECUTORS} or a LocalExecutor/RayExecutor")
