"""One artificial neuron and a small multilayer perceptron on 2-D toy data: the chapter before convolution.

A neuron with inputs ``x = (x1, x2)`` computes the weighted sum ``z = w1 x1 + w2 x2 + b`` and the activation
``a = f(z)``; its decision boundary is the line ``z = 0``. A single neuron separates two classes only when a line
does (not XOR); a layered network (input, hidden layers, one output unit) learns curved boundaries.

Points are float32 N×2, labels int64 N of 0 and 1.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..device import threads as computing_with

__all__ = [
    "TOY_DATA",
    "ACTIVATIONS",
    "ToyData",
    "NeuronOutput",
    "MLPHistory",
    "toy_data",
    "activate",
    "neuron",
    "grid_points",
    "train_mlp",
    "mlp_probability",
]

TOY_DATA = ("xor", "moons", "circles")
ACTIVATIONS = ("step", "sigmoid", "tanh", "relu", "linear")


class ToyData(NamedTuple):
    """Labelled 2-D points: ``points`` float32 N×2, ``labels`` int64 N (0 or 1), ``kind`` the set's name."""

    points: np.ndarray
    labels: np.ndarray
    kind: str


class NeuronOutput(NamedTuple):
    """One neuron on N points: ``z`` the weighted sums (float32 N), ``a`` the activations (float32 N),
    ``predicted`` the class (int64 N: 1 where ``z > 0``), ``accuracy`` against the labels (None without labels)."""

    z: np.ndarray
    a: np.ndarray
    predicted: np.ndarray
    accuracy: float | None


@dataclass
class MLPHistory:
    """A training run of :func:`train_mlp`.

    Attributes
    ----------
    model : torch.nn.Module
        The trained network: 2 inputs → hidden layers → 1 logit.
    losses, accuracies : list of float
        Binary cross-entropy and training accuracy after each epoch.
    stopped : bool
        True when ``stop`` ended the run early.
    seconds : float
    """

    model: object
    losses: list = field(default_factory=list)
    accuracies: list = field(default_factory=list)
    stopped: bool = False
    seconds: float = 0.0

    @property
    def accuracy(self) -> float | None:
        """Training accuracy after the last epoch (None before the first)."""
        return self.accuracies[-1] if self.accuracies else None


def toy_data(n: int = 200, *, kind: str = "xor", noise: float = 0.1, seed: int = 0) -> ToyData:
    """Two classes of 2-D points that a line does (or does not) separate.

    Parameters
    ----------
    n : int
        Number of points (≥ 4), split evenly between the classes.
    kind : {"xor", "moons", "circles"}
        xor: four clusters at (±1, ±1), class 1 where the signs differ; moons: two interleaved half circles;
        circles: a small circle (class 1) inside a larger one.
    noise : float
        Standard deviation of Gaussian noise added to each coordinate (≥ 0).
    seed : int

    Returns
    -------
    ToyData
        ``points`` float32 n×2 (roughly in [-2, 2]), ``labels`` int64 n.
    """
    if kind not in TOY_DATA:
        raise ValueError(f"kind must be one of {TOY_DATA}, got {kind!r}")
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 4:
        raise ValueError(f"n must be an integer >= 4, got {n!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    if kind == "xor":
        quadrant = rng.integers(0, 2, size=n)  # which of the two clusters of its class a point belongs to
        sx = np.where(quadrant == 0, 1.0, -1.0)
        sy = np.where(labels == 1, -sx, sx)  # class 1: signs differ
        points = np.stack([sx, sy], axis=1)
    elif kind == "moons":
        t = rng.uniform(0, math.pi, size=n)
        upper = np.stack([np.cos(t), np.sin(t)], axis=1)
        lower = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1)
        points = np.where(labels[:, None] == 0, upper, lower) - np.array([0.5, 0.25])
    else:
        t = rng.uniform(0, 2 * math.pi, size=n)
        radius = np.where(labels == 1, 0.5, 1.0)
        points = radius[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    points = points + noise * rng.standard_normal(points.shape)
    return ToyData(points.astype(np.float32), labels.astype(np.int64), kind)


def activate(z, activation: str = "sigmoid") -> np.ndarray:
    """The activation function ``f(z)``.

    Parameters
    ----------
    z : array_like
        Weighted sums, any shape.
    activation : {"step", "sigmoid", "tanh", "relu", "linear"}
        step: 1 where z > 0 else 0 (the perceptron); sigmoid: 1 / (1 + e^−z); tanh; relu: max(0, z); linear: z.

    Returns
    -------
    numpy.ndarray
        float32, the shape of ``z``.
    """
    z = np.asarray(z, dtype=np.float64)
    if activation == "step":
        a = (z > 0).astype(np.float64)
    elif activation == "sigmoid":
        a = 0.5 * (1.0 + np.tanh(0.5 * z))  # 1 / (1 + exp(-z)) without overflow
    elif activation == "tanh":
        a = np.tanh(z)
    elif activation == "relu":
        a = np.maximum(z, 0.0)
    elif activation == "linear":
        a = z
    else:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return a.astype(np.float32)


def _points_and_labels(data):
    if isinstance(data, ToyData):
        return data.points, data.labels
    points = np.asarray(data, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must be N×2, got shape {points.shape}")
    return points, None


def neuron(data, *, weights=(1.0, 1.0), bias: float = 0.0, activation: str = "sigmoid") -> NeuronOutput:
    """One neuron with two inputs: ``z = w1 x1 + w2 x2 + b``, ``a = f(z)``, class 1 where ``z > 0``.

    Parameters
    ----------
    data : ToyData or array_like, shape (N, 2)
        Points (with labels when a :class:`ToyData`, so that ``accuracy`` is filled in).
    weights : (float, float)
        ``w1, w2``.
    bias : float
        ``b``.
    activation : {"step", "sigmoid", "tanh", "relu", "linear"}
        See :func:`activate`. The decision boundary is the line ``z = 0`` whatever the activation.

    Returns
    -------
    NeuronOutput
    """
    points, labels = _points_and_labels(data)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (2,):
        raise ValueError(f"weights must be two numbers (w1, w2), got {weights!r}")
    z = points.astype(np.float64) @ w + float(bias)
    predicted = (z > 0).astype(np.int64)
    accuracy = None if labels is None else float(np.mean(predicted == labels))
    return NeuronOutput(z.astype(np.float32), activate(z, activation), predicted, accuracy)


def grid_points(data, *, resolution: int = 80, margin: float = 0.3):
    """A regular grid over the data's bounding box, for drawing decision surfaces.

    Parameters
    ----------
    data : ToyData or array_like, shape (N, 2)
    resolution : int
        Grid points per side.
    margin : float
        Added on every side of the bounding box.

    Returns
    -------
    points : numpy.ndarray
        float32 (resolution²)×2, row by row from the top (largest x2) to the bottom.
    extent : (float, float, float, float)
        ``(x1_min, x1_max, x2_min, x2_max)``.
    """
    pts, _ = _points_and_labels(data)
    lo, hi = pts.min(axis=0) - margin, pts.max(axis=0) + margin
    x1 = np.linspace(lo[0], hi[0], resolution)
    x2 = np.linspace(hi[1], lo[1], resolution)
    g1, g2 = np.meshgrid(x1, x2)
    grid = np.stack([g1.ravel(), g2.ravel()], axis=1).astype(np.float32)
    return grid, (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))


def _mlp(hidden, activation):
    import torch
    from torch import nn

    acts = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
    if activation not in acts:
        raise ValueError(f"activation of an MLP must be one of {tuple(acts)}, got {activation!r}")
    layers, width = [], 2
    for units in hidden:
        if not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"hidden: each layer needs a positive number of units, got {tuple(hidden)!r}")
        layers += [nn.Linear(width, int(units)), acts[activation]()]
        width = int(units)
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers).to(torch.float32)


def train_mlp(
    data: ToyData,
    *,
    hidden=(8,),
    activation: str = "tanh",
    epochs: int = 300,
    lr: float = 0.05,
    seed: int = 0,
    callback: Callable[[dict], None] | None = None,
    stop: threading.Event | None = None,
    threads: int | None = 1,
) -> MLPHistory:
    """Train a multilayer perceptron (2 inputs → ``hidden`` layers → 1 sigmoid output) on labelled points.

    Full-batch Adam on the binary cross-entropy, one step per epoch, on the CPU (the network is tiny).

    Parameters
    ----------
    data : ToyData
    hidden : sequence of int
        Units per hidden layer; ``()`` is a single neuron (logistic regression).
    activation : {"sigmoid", "tanh", "relu"}
        Activation of the hidden layers.
    epochs : int
    lr : float
        Adam learning rate.
    seed : int
        Seeds the initial weights.
    callback : callable, optional
        Called after each epoch with ``{"epoch", "epochs", "loss", "accuracy", "model"}``.
    stop : threading.Event, optional
        Set it to end training after the current epoch.
    threads : int or None
        torch's CPU threads during training (restored after); such a small network trains fastest on one.
        None keeps torch's setting.

    Returns
    -------
    MLPHistory
    """
    import torch

    if not isinstance(data, ToyData):
        raise ValueError("data must be a ToyData (from neurons.toy_data) with points and labels")
    if not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = _mlp(tuple(hidden), activation)
    x = torch.from_numpy(data.points)
    y = torch.from_numpy(data.labels.astype(np.float32))
    optimiser = torch.optim.Adam(model.parameters(), lr=float(lr))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    history = MLPHistory(model)
    start = time.perf_counter()
    with computing_with(int(threads)) if threads is not None else contextlib.nullcontext():
        _fit(model, x, y, optimiser, loss_fn, history, int(epochs), callback, stop)
    history.seconds = time.perf_counter() - start
    return history


def _fit(model, x, y, optimiser, loss_fn, history, epochs, callback, stop):
    import torch

    for epoch in range(1, epochs + 1):
        if stop is not None and stop.is_set():
            history.stopped = True
            break
        model.train()
        optimiser.zero_grad()
        logits = model(x).squeeze(1)
        loss = loss_fn(logits, y)
        loss.backward()
        optimiser.step()
        model.eval()
        with torch.no_grad():
            logits = model(x).squeeze(1)
            history.losses.append(float(loss_fn(logits, y)))
            history.accuracies.append(float(((logits > 0).float() == y).float().mean()))
        if callback is not None:
            callback(
                {
                    "epoch": epoch,
                    "epochs": epochs,
                    "loss": history.losses[-1],
                    "accuracy": history.accuracies[-1],
                    "model": model,
                }
            )


def mlp_probability(model, points) -> np.ndarray:
    """The network's probability of class 1 at each point.

    Parameters
    ----------
    model : torch.nn.Module
        From :func:`train_mlp` (``MLPHistory.model``).
    points : ToyData or array_like, shape (N, 2)

    Returns
    -------
    numpy.ndarray
        float32 N, in [0, 1].
    """
    import torch

    pts, _ = _points_and_labels(points)
    with torch.no_grad():
        return torch.sigmoid(model(torch.from_numpy(np.ascontiguousarray(pts))).squeeze(1)).numpy()
