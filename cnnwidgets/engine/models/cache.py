"""The one model cache: built models kept for reuse, least recently used dropped first.

Two caches use it: :func:`shared_model` (models created by name, shared by the widgets, the index and the
learning functions) and the BatchNorm-folded inference copies of :mod:`.fuse` (one per model object, rebuilt
when its weights change, dropped when the model is garbage-collected).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict

from torch import nn

from cnnwidgets.device import get_device

from .registry import create_model

__all__ = ["ModelCache", "shared_model", "shared_runner"]


class ModelCache:
    """A thread-safe store of built models with at most ``maxsize`` entries.

    Parameters
    ----------
    maxsize : int
        Entries kept; the least recently used is dropped beyond it.
    """

    def __init__(self, maxsize: int):
        self.maxsize = int(maxsize)
        self._items: OrderedDict = OrderedDict()  # key -> (version, value)
        self._lock = threading.RLock()  # re-entrant: a finalizer may drop an entry while this thread builds

    def get(self, key, build, *, version=None, owner=None):
        """The value stored under ``key``, or ``build()`` stored there when it is missing or has another version.

        Parameters
        ----------
        key : hashable
        build : callable
            Makes the value; called under the cache's lock, so each value is built once.
        version : hashable, optional
            What the stored value was built from (e.g. a fingerprint of weights); a different one rebuilds it.
        owner : object, optional
            The entry is dropped when ``owner`` is garbage-collected (it must support weak references; the
            value must not refer to it, or it would never be collected).
        """
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] == version:
                self._items.move_to_end(key)
                return hit[1]
            value = build()
            if hit is None and owner is not None:
                weakref.finalize(owner, self._drop, key)
            self._items[key] = (version, value)
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
            return value

    def peek(self, key, *, version=None):
        """The value stored under ``key`` with ``version``, or None; never builds one."""
        with self._lock:
            hit = self._items.get(key)
            return hit[1] if hit is not None and hit[0] == version else None

    def _drop(self, key) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


_SHARED = ModelCache(maxsize=2)


def shared_model(name: str, *, pretrained=True, device=None) -> nn.Module:
    """The process-wide model for ``name``, created once by :func:`create_model` and then reused.

    Keyed by name, weights (``pretrained``) and device; the two most recently used models are kept.
    The model is shared: use it for inference, and create a model of your own to train or change.

    Parameters
    ----------
    name : str
        As :func:`create_model` takes it.
    pretrained : bool or str or os.PathLike
    device : str or torch.device, optional

    Returns
    -------
    torch.nn.Module
        In eval mode, with ``cnnw_config``.
    """
    dev = get_device(device)
    weights = pretrained if isinstance(pretrained, bool) else str(pretrained)
    return _SHARED.get((name, weights, str(dev)), lambda: create_model(name, pretrained=pretrained, device=dev))


def shared_runner(name: str, *, device=None):
    """What runs inference of the pretrained model ``name`` in this process, at the least start-up cost.

    The shared model (:func:`shared_model`) when it exists already or the device is not the CPU; otherwise the
    recorded ONNX Runtime export of ``create_model(name, pretrained=True)``
    (:func:`~cnnwidgets.engine.models.backend.pretrained_onnx`), which runs without timm and without building the
    torch model; otherwise the shared model, created now (its first ONNX Runtime run records the export for the
    next process).

    Parameters
    ----------
    name : str
        As :func:`create_model` takes it.
    device : str or torch.device, optional

    Returns
    -------
    torch.nn.Module or OnnxModel
        Either can be passed as the model to :func:`~cnnwidgets.engine.models.embed`,
        :func:`~cnnwidgets.engine.models.classify`, :func:`~cnnwidgets.engine.models.embed_and_classify` and the
        CNN descriptors of :mod:`cnnwidgets.engine.features` (fp32). Use :func:`shared_model` where the torch
        module itself is needed (layers, Grad-CAM, training).
    """
    dev = get_device(device)
    made = _SHARED.peek((name, True, str(dev)))
    if made is not None or dev.type != "cpu":
        return made if made is not None else shared_model(name, pretrained=True, device=dev)
    from .backend import pretrained_onnx

    found = pretrained_onnx(name)
    return found if found is not None else shared_model(name, pretrained=True, device=dev)
