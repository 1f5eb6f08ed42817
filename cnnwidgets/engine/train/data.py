"""Labelled data for learning: read any accepted dataset into an ImageSet, split it, and turn images into the
float tensor a model takes.

Every function of :mod:`cnnwidgets.engine.train` accepts the same kinds of labelled data:

- :class:`cnnwidgets.datasets.ImageSet` (from ``digits()``, ``shapes()`` or :func:`split`),
- :class:`cnnwidgets.datasets.ImageFolder` (class subfolders give the labels),
- a ``(images, labels)`` pair (N×H×W[×C] array or a list of images; N integer labels),
- a ``torch.utils.data.Dataset`` whose items are ``(image, label)``; an image that is already a
  float C×H×W tensor is used as it is, anything else goes through :func:`input_batch`.

The sets this is meant for (teaching sets, a user's labelled folder) are read into memory once.
"""

from __future__ import annotations

import numpy as np

from ...datasets import ImageSet

__all__ = ["as_imageset", "split", "split_indices", "input_batch", "labelled_tensors"]


def is_tensor(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "dtype") and hasattr(x, "shape")


def _class_names(labels: np.ndarray) -> tuple:
    n = int(labels.max()) + 1 if len(labels) else 0
    return tuple(str(i) for i in range(n))


def _is_torch_dataset(obj) -> bool:
    import sys

    data = sys.modules.get("torch.utils.data")  # a torch Dataset exists only once this module is imported
    return data is not None and isinstance(obj, data.Dataset) and hasattr(obj, "__len__")


def as_imageset(dataset, *, name: str = "dataset") -> ImageSet:
    """Read any accepted labelled dataset into an :class:`~cnnwidgets.datasets.ImageSet`.

    Parameters
    ----------
    dataset : ImageSet, ImageFolder, (images, labels) or torch.utils.data.Dataset
        See the module docstring.
    name : str
        How error messages refer to the argument.

    Returns
    -------
    ImageSet
        ``images`` is the original array for array input, else a list (images may differ in size);
        ``labels`` is an int64 array with values in ``0 … len(classes) - 1``. The input is not modified.

    Raises
    ------
    ValueError
        Empty dataset, labels and images of different length, negative labels (e.g. images lying
        directly in an ImageFolder's root instead of a class subfolder), or an unsupported type.
    """
    from ...datasets import ImageFolder

    if isinstance(dataset, ImageSet):
        images, labels, classes = dataset.images, np.asarray(dataset.labels), tuple(dataset.classes)
    elif isinstance(dataset, ImageFolder):
        if not dataset.classes:
            raise ValueError(f"{name}: {dataset.root} has no class subfolders, so its images have no labels")
        unlabelled = [p for p, lab in zip(dataset.paths, dataset.labels) if lab < 0]
        if unlabelled:
            raise ValueError(
                f"{name}: {len(unlabelled)} image(s) lie directly in {dataset.root} instead of a class subfolder, "
                f"e.g. {unlabelled[0].name}"
            )
        images = [dataset[i][0] for i in range(len(dataset))]
        labels, classes = np.asarray(dataset.labels), tuple(dataset.classes)
    elif isinstance(dataset, tuple) and len(dataset) == 2:
        images, labels = dataset
        labels = np.asarray(labels.cpu() if is_tensor(labels) else labels)
        classes = None
    elif _is_torch_dataset(dataset):
        items = [dataset[i] for i in range(len(dataset))]
        if items and not (isinstance(items[0], (tuple, list)) and len(items[0]) == 2):
            raise ValueError(f"{name}: items of a torch Dataset must be (image, label) pairs")
        images = [x for x, _ in items]
        labels = np.asarray([int(y) for _, y in items])
        classes = tuple(getattr(dataset, "classes", ()) or ()) or None
    else:
        raise ValueError(
            f"{name}: expected an ImageSet, ImageFolder, (images, labels) pair or torch Dataset, got {type(dataset).__name__}"
        )
    if len(images) == 0:
        raise ValueError(f"{name}: the dataset is empty")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{name}: {len(images)} images but labels of shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name}: labels must be integers, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.min() < 0:
        raise ValueError(f"{name}: labels must be ≥ 0, found {labels.min()}")
    classes = tuple(classes) if classes else _class_names(labels)
    if labels.max() >= len(classes):
        raise ValueError(f"{name}: label {labels.max()} but only {len(classes)} classes")
    return ImageSet(images, labels, classes)


def _take(images, idx):
    if isinstance(images, np.ndarray) or is_tensor(images):
        return images[idx]
    return [images[i] for i in idx]


def split_indices(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (kept, held-out) index arrays, int64 and sorted: ``fraction`` of each class held out."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"test/val fraction must lie strictly between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    first, second = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        k = int(round(len(idx) * fraction))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        second.extend(idx[:k])
        first.extend(idx[k:])
    return np.sort(np.asarray(first, np.int64)), np.sort(np.asarray(second, np.int64))


def split(dataset, *, test: float = 0.25, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Split a labelled dataset into train and test parts, stratified by class.

    Parameters
    ----------
    dataset : ImageSet, ImageFolder, (images, labels) or torch Dataset
    test : float
        Fraction of each class that goes to the test part (every class with ≥ 2 images gets
        at least one image on each side).
    seed : int
        The same seed gives the same split.

    Returns
    -------
    (ImageSet, ImageSet)
        Train and test sets with the original class names; images keep their order.
    """
    data = as_imageset(dataset)
    tr, te = split_indices(data.labels, test, seed)
    return (
        ImageSet(_take(data.images, tr), data.labels[tr], data.classes),
        ImageSet(_take(data.images, te), data.labels[te], data.classes),
    )


def _model_config(model):
    cfg = getattr(model, "cnnw_config", None)
    return cfg if isinstance(cfg, dict) else None


def input_batch(images, model=None):
    """Turn images into the float N×C×H×W tensor a model takes.

    Parameters
    ----------
    images : numpy.ndarray, list of images, or torch.Tensor
        N×H×W or N×H×W×C arrays (uint8 or float in [0, 1]), a list of images of any size and kind
        :func:`cnnwidgets.io.load_image` reads, or a float tensor (N×C×H×W images, or N×D features),
        or a list of float tensors, which are taken as model-ready and only stacked / cast to float32.
    model : torch.nn.Module, optional
        A model from :func:`cnnwidgets.engine.models.create_model` (it carries ``cnnw_config``): its own
        input size, channels and normalisation are applied through :func:`cnnwidgets.engine.models.preprocess`.
        Without one, images are only scaled to [0, 1] and stacked (they must share one size).

    Returns
    -------
    torch.Tensor
        float32 N×C×H×W on the CPU.
    """
    import torch

    if is_tensor(images) and images.is_floating_point():
        return images.detach().to("cpu", torch.float32)
    if isinstance(images, list) and images and is_tensor(images[0]) and images[0].is_floating_point():
        return torch.stack([x.detach().to("cpu", torch.float32) for x in images])
    if model is not None and _model_config(model) is not None:
        from .. import models

        batch = list(images) if isinstance(images, np.ndarray) else images
        return models.preprocess(batch, model).detach().to("cpu", torch.float32)
    from ...io import to_float

    arrs = [np.asarray(to_float(np.asarray(x.cpu() if is_tensor(x) else x))) for x in images]
    shapes = {a.shape for a in arrs}
    if len(shapes) != 1:
        raise ValueError(
            f"images differ in shape {sorted(shapes)[:3]}; give a model with cnnw_config so they are resized"
        )
    x = np.stack(arrs)
    x = x[:, None] if x.ndim == 3 else np.moveaxis(x, -1, 1)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def labelled_tensors(dataset, model, name):
    """(X float32 N×… tensor from :func:`input_batch`, y int64 N tensor, class names) for a labelled dataset."""
    import torch

    data = as_imageset(dataset, name=name)
    x = input_batch(data.images, model)
    return x, torch.from_numpy(data.labels), data.classes
