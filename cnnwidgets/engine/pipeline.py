"""The seed's whole flow as one chain: enhance → segment → regions → recognise → retrieve.

A :class:`Pipeline` is a sequence of named stages, each an engine :class:`~cnnwidgets.engine.calls.Call` whose data
is the previous stage's output. Running it keeps every stage's output in a cache keyed by the stage's call and the
stages before it, so changing one stage recomputes that stage and the ones after it, never the ones before.
:meth:`Pipeline.code` writes the chain as one script that reproduces every output.

Stages
------
``enhance``
    any :mod:`cnnwidgets.engine.enhance` call (a filter; optional, can be bypassed);
``segment``
    any :mod:`cnnwidgets.engine.segment` call that gives a mask or labels;
``regions``
    :func:`find_regions`: connected components (of a mask) or labels, with bounding box, area and a crop;
``recognise``
    :func:`recognise`: top-k CNN labels of every crop, in one batched forward pass;
``retrieve``
    :func:`retrieve`: the nearest images in an :class:`~cnnwidgets.index.ImageIndex` for one region.

Examples
--------
>>> from cnnwidgets.datasets import sample
>>> p = Pipeline.default()                                            # doctest: +SKIP
>>> out = p.run(sample("coins"))                                      # doctest: +SKIP
>>> len(out["regions"]), out["recognise"][0][0]                        # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from .calls import IMAGE, Call, Recipe, RecipeCache, Ref, Step, StepError

__all__ = ["Region", "find_regions", "recognise", "retrieve", "Stage", "StageError", "Pipeline", "STAGES"]

_LABELS: OrderedDict = OrderedDict()  # (model, k, crop shape, crop digest) → labels
_LABELS_LOCK = threading.Lock()
_LABELS_KEPT = 512

#: The stage names, in order, and the variable that holds each one's output in :meth:`Pipeline.code`.
STAGES = {
    "enhance": "enhanced",
    "segment": "segmented",
    "regions": "regions",
    "recognise": "recognised",
    "retrieve": "retrieved",
}


class Region(NamedTuple):
    """One region of a segmentation.

    Attributes
    ----------
    label : int
        Its label in the labelled image (1, 2, … for connected components).
    bbox : (int, int, int, int)
        (top, left, bottom, right) of the region, bottom and right exclusive, in image pixels.
    area : int
        Number of pixels.
    crop : numpy.ndarray
        The image inside the bounding box widened by the margin (clipped at the border): h×w×3 uint8
        (gray images are repeated into three channels).
    """

    label: int
    bbox: tuple
    area: int
    crop: np.ndarray


def _rgb_uint8(image) -> np.ndarray:
    from ..io import to_uint8
    from . import kinds

    arr = kinds.to_numpy(image)
    if arr.dtype != np.uint8:
        arr = to_uint8(np.clip(arr, 0, 1) if arr.dtype.kind == "f" else arr)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return arr[..., :3]


def find_regions(
    mask_or_labels, image, *, margin: int = 8, min_area: int = 20, max_regions: int = 64, connectivity: int = 2
) -> list[Region]:
    """The regions of a mask or a label image, largest first, each with its crop of ``image``.

    Parameters
    ----------
    mask_or_labels : numpy.ndarray or torch.Tensor
        H×W bool mask (its connected components are the regions) or H×W integer labels (each label > 0 is a
        region; 0 is background).
    image : numpy.ndarray, PIL image or torch.Tensor
        The image the crops are cut from: H×W or H×W×C, uint8 or float in [0, 1].
    margin : int
        Pixels added around each bounding box.
    min_area : int
        Smaller regions are left out (specks of noise).
    max_regions : int
        At most this many regions, the largest.
    connectivity : {1, 2}
        Neighbourhood of connected components: 4 (1) or 8 (2) neighbours.

    Returns
    -------
    list of Region
        Largest first; ties by label.
    """
    import cv2

    from . import kinds

    m = kinds.to_numpy(mask_or_labels, "mask_or_labels")
    rgb = _rgb_uint8(image)
    if m.ndim != 2 or m.shape != rgb.shape[:2]:
        raise ValueError(f"mask_or_labels must be H×W like the image {rgb.shape[:2]}, got shape {m.shape}")
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 or 2, got {connectivity}")
    if m.dtype == bool:
        _, labels = cv2.connectedComponents(m.view(np.uint8), connectivity=4 if connectivity == 1 else 8)
    elif m.dtype.kind in "iu":
        labels = m.astype(np.int32)
    else:
        raise ValueError(f"mask_or_labels must be bool or integer, got dtype {m.dtype}")
    h, w = labels.shape
    found = []
    for lab in np.unique(labels):
        if lab <= 0:
            continue
        rows, cols = np.nonzero(labels == lab)
        area = rows.size
        if area < min_area:
            continue
        top, left, bottom, right = rows.min(), cols.min(), rows.max() + 1, cols.max() + 1
        t, l_ = max(0, top - margin), max(0, left - margin)
        b, r = min(h, bottom + margin), min(w, right + margin)
        found.append(Region(int(lab), (int(top), int(left), int(bottom), int(right)), int(area), rgb[t:b, l_:r]))
    found.sort(key=lambda reg: (-reg.area, reg.label))
    return found[: int(max_regions)]


def recognise(regions, *, model: str = "efficientnet_lite0", k: int = 3) -> list[list[tuple[str, float]]]:
    """Top-k labels of every region's crop, in one batched forward pass.

    Parameters
    ----------
    regions : list of Region
        From :func:`find_regions`.
    model : str
        A model name of :func:`cnnwidgets.engine.models.list_models`; its process-wide instance is used
        (:func:`cnnwidgets.engine.models.shared_model`).
    k : int
        Labels per region.

    Returns
    -------
    list of list of (str, float)
        One list per region, ``[(label, probability), ...]`` best first.

    Notes
    -----
    Labels are cached per crop (its pixels, the model and ``k``; the 512 most recent): when an upstream change
    moves a few regions, only their crops run through the network.
    """
    if not regions:
        return []
    import hashlib

    from . import models

    keys = [
        (model, int(k), reg.crop.shape, hashlib.blake2b(np.ascontiguousarray(reg.crop), digest_size=16).digest())
        for reg in regions
    ]
    out = [None] * len(keys)
    with _LABELS_LOCK:
        for i, key in enumerate(keys):
            if key in _LABELS:
                _LABELS.move_to_end(key)
                out[i] = _LABELS[key]
    missing = [i for i, labels in enumerate(out) if labels is None]
    if missing:
        found = models.classify(models.shared_model(model), [regions[i].crop for i in missing], topk=k)
        with _LABELS_LOCK:
            for i, labels in zip(missing, found):
                out[i] = labels
                _LABELS[keys[i]] = labels
            while len(_LABELS) > _LABELS_KEPT:
                _LABELS.popitem(last=False)
    return [list(labels) for labels in out]


def retrieve(regions, index, *, region: int = 0, k: int = 5, mode: str = "cnn"):
    """The images of ``index`` nearest to one region's crop.

    Parameters
    ----------
    regions : list of Region
    index : cnnwidgets.index.ImageIndex
    region : int
        Position of the region in ``regions`` (0: the largest).
    k : int
        Number of results.
    mode : str
        A search mode of :meth:`cnnwidgets.index.ImageIndex.search` for an example image.

    Returns
    -------
    list of cnnwidgets.index.Hit
        Empty when there is no such region.
    """
    if not 0 <= region < len(regions):
        return []
    return index.search(image=regions[region].crop, mode=mode, k=k)


class StageError(Exception):
    """A pipeline stage failed: ``stage`` names it, ``outputs`` holds the stages before it, ``error`` the cause."""

    def __init__(self, stage: str, outputs: dict, error: Exception):
        super().__init__(f"stage {stage!r} failed: {type(error).__name__}: {error}")
        self.stage, self.outputs, self.error = stage, outputs, error


@dataclass(frozen=True)
class Stage:
    """One named stage: its engine call (or a short :class:`~cnnwidgets.engine.calls.Recipe` of calls, such as a
    threshold surface and the mask it gives) and whether it runs (a bypassed stage passes its input on).

    ``reads`` names the stage whose output is the call's data (default: the stage before); retrieval reads
    the regions, not the labels recognised in them.
    """

    name: str
    call: Call | Recipe
    enabled: bool = True
    reads: str | None = None


class Pipeline:
    """A chain of stages run on one image, each stage cached, rendered as one script.

    Parameters
    ----------
    stages : sequence of Stage
        In order; stage names must be distinct. Each call's data is rewired to the output of the stage
        before it (the input image for the first); ``regions`` also reads the input image for its crops,
        and ``retrieve`` reads the input named ``index``.
    cache_size : int
        Stage outputs kept (a few per stage).
    """

    def __init__(self, stages, *, cache_size: int = 16):
        self.stages = tuple(stages)
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be distinct, got {names}")
        self.cache = RecipeCache(cache_size)
        self._stage_of = {}  # step of a recipe stage → the stage

    @classmethod
    def default(cls, *, index_given: bool = False) -> Pipeline:
        """Butterworth low-pass → Otsu → regions → EfficientNet-Lite0 labels (→ retrieval with an index)."""
        from . import enhance, segment

        stages = [
            Stage("enhance", Call(enhance.frequency_filter, shape="butterworth", cutoff=0.15, order=2.0)),
            Stage("segment", Call(segment.threshold, "otsu")),
            Stage("regions", Call(find_regions, Ref(IMAGE), margin=8, min_area=20)),
            Stage("recognise", Call(recognise, model="efficientnet_lite0", k=3)),
        ]
        if index_given:
            stages.append(Stage("retrieve", Call(retrieve, Ref("index"), region=0, k=5), reads="regions"))
        return cls(stages)

    # ------------------------------------------------------------------ editing (new pipelines share the cache)
    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage {name!r}; stages: {[s.name for s in self.stages]}")

    def replaced(self, name: str, *, call: Call | None = None, enabled: bool | None = None, **kwargs) -> Pipeline:
        """A pipeline with one stage changed: a new call, new keyword arguments, or switched on/off.

        The new pipeline shares this one's cache, so the stages before ``name`` are not recomputed.
        """
        old = self.stage(name)
        new_call = call if call is not None else old.call
        if kwargs:
            if isinstance(new_call, Recipe):
                raise ValueError(f"stage {name!r} is a recipe of several calls: give a new call instead of keywords")
            new_call = new_call.with_kwargs(**kwargs)
        new = replace(old, call=new_call, enabled=old.enabled if enabled is None else bool(enabled))
        out = Pipeline([new if s.name == name else s for s in self.stages])
        out.cache = self.cache
        return out

    # ------------------------------------------------------------------ running
    @staticmethod
    def variable(name: str) -> str:
        """The variable of a stage's output in the script (``enhance`` → ``enhanced``)."""
        return STAGES.get(name, f"{name}_output")

    def recipe(self) -> Recipe:
        """The enabled stages as a :class:`~cnnwidgets.engine.calls.Recipe`, each reading the previous output."""
        steps, prev = [], IMAGE
        for s in self.stages:
            if not s.enabled:
                continue
            var = self.variable(s.name)
            source = self.variable(s.reads) if s.reads is not None else prev
            if isinstance(s.call, Recipe):
                sub = s.call.reading(source, var).steps
                steps.extend(sub)
                self._stage_of.update({step.name: s.name for step in sub})
            else:
                steps.append(Step(var, s.call.with_data(Ref(source))))
            prev = var
        if not steps:
            raise ValueError("every stage is switched off")
        return Recipe(tuple(steps))

    def run(self, image, *, index=None) -> dict:
        """Every stage's output: ``{"image": image, stage name: output, ...}`` (bypassed stages left out).

        Stage outputs are cached by their call, the stages before them and a digest of the image's pixels.

        Raises
        ------
        StageError
            When a stage fails; it names the stage and holds the outputs of the stages before it.
        """
        import hashlib

        from . import kinds

        arr = np.ascontiguousarray(kinds.to_numpy(image))
        digest = hashlib.blake2b(arr.view(np.uint8).reshape(-1), digest_size=16).hexdigest()
        inputs = {"index": index} if index is not None else None
        key = (digest, arr.shape, str(arr.dtype))
        try:
            env = self.recipe().run(image, inputs=inputs, input_keys={IMAGE: key}, cache=self.cache)
        except StepError as exc:
            stage = self._stage_of.get(exc.step) or next(
                (s.name for s in self.stages if self.variable(s.name) == exc.step), exc.step
            )
            raise StageError(stage, self._by_stage(exc.outputs), exc.error) from exc.error
        return self._by_stage(env)

    def _by_stage(self, env: dict) -> dict:
        out = {IMAGE: env[IMAGE]}
        for s in self.stages:
            if s.enabled and self.variable(s.name) in env:
                out[s.name] = env[self.variable(s.name)]
        return out

    def code(self) -> str:
        """The chain as one script: from a variable ``image`` (and ``index`` for retrieval) to every stage."""
        return self.recipe().code(result=False)
