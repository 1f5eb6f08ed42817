"""Small teaching CNNs: :class:`TinyCNN` and :class:`LeNet5` (registered as ``tiny_cnn`` and ``lenet5``)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TinyCNN", "LeNet5", "RBFOutput"]


class TinyCNN(nn.Module):
    """conv–ReLU–pool ×2 + FC: a network small enough to train on digits or shapes in seconds.

    Input: N×``in_chans``×32×32 (``preprocess`` resizes any image to 32×32, so 8×8 digits are
    upsampled and 32×32 shapes pass unchanged). Layers: ``conv1`` (3×3, 16 channels, padding 1),
    ``relu1``, ``pool1`` (2×2 max), ``conv2`` (3×3, 32 channels), ``relu2``, ``pool2``, then
    ``flatten`` and ``fc`` (32·8·8 = 2048 → ``num_classes``).
    """

    input_size = 32

    def __init__(self, num_classes: int = 10, in_chans: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 16, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(32 * 8 * 8, num_classes)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        return self.fc(self.flatten(x))


class RBFOutput(nn.Module):
    """Euclidean radial basis function units, LeNet-5's output layer: unit ``k`` scores ``−‖x − c_k‖²``.

    The scores are negative squared distances to one centre per class, so the nearest centre gets the largest
    score and they can be used as logits (cross-entropy pulls a sample towards its class's centre).

    Parameters
    ----------
    in_features : int
        Length of the input vectors (84 in LeNet-5).
    num_classes : int
    centres : {"learned", "fixed"}
        learned: the centres are parameters, trained with the network; fixed: a buffer of random ±1 codes (seeded,
        as LeNet-5's fixed ±1 bitmaps of stylised characters), and the layers below learn to map onto them.
    seed : int
        Seeds the fixed codes and the initial learned centres.

    Shapes: input N×``in_features`` → output N×``num_classes`` (float32, ≤ 0).
    """

    def __init__(self, in_features: int, num_classes: int, *, centres: str = "learned", seed: int = 0):
        super().__init__()
        if centres not in ("learned", "fixed"):
            raise ValueError(f"centres must be 'learned' or 'fixed', got {centres!r}")
        gen = torch.Generator().manual_seed(int(seed))
        codes = torch.randint(0, 2, (num_classes, in_features), generator=gen).float() * 2 - 1
        self.centres_kind = centres
        if centres == "learned":
            self.centres = nn.Parameter(codes * 0.5)
        else:
            self.register_buffer("centres", codes)

    def forward(self, x):
        return -torch.cdist(x, self.centres).pow(2)

    def extra_repr(self) -> str:
        return f"{self.centres.shape[1]} → {self.centres.shape[0]}, centres={self.centres_kind}"


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) with ReLU and max pooling.

    Input: N×``in_chans``×32×32. ``conv1`` 5×5→6, pool, ``conv2`` 5×5→16, pool,
    ``fc1`` 400→120, ``fc2`` 120→84, ``fc3`` 84→``num_classes``: a linear layer (``output="softmax"``: its
    outputs are logits for a softmax) or, as in the original, Euclidean RBF units (``output="rbf"``,
    :class:`RBFOutput`, with ``centres`` "learned" or "fixed").
    """

    input_size = 32

    def __init__(self, num_classes: int = 10, in_chans: int = 1, *, output: str = "softmax", centres: str = "learned"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 6, 5)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        if output == "softmax":
            self.fc3 = nn.Linear(84, num_classes)
        elif output == "rbf":
            self.fc3 = RBFOutput(84, num_classes, centres=centres)
        else:
            raise ValueError(f"output must be 'softmax' or 'rbf', got {output!r}")

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        x = self.relu4(self.fc2(x))
        return self.fc3(x)
