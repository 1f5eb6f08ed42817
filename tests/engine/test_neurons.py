"""neurons: toy data, one neuron's arithmetic, and an MLP that learns XOR where a single neuron cannot."""

import threading

import numpy as np
import pytest
import torch

from cnnwidgets.engine import neurons as N


@pytest.mark.parametrize("kind", N.TOY_DATA)
def test_toy_data_is_balanced_reproducible_and_bounded(kind):
    d = N.toy_data(200, kind=kind, noise=0.1, seed=3)
    assert d.points.shape == (200, 2) and d.points.dtype == np.float32 and d.labels.dtype == np.int64
    assert d.labels.sum() == 100 and d.kind == kind
    assert np.abs(d.points).max() < 2.5
    np.testing.assert_array_equal(d.points, N.toy_data(200, kind=kind, noise=0.1, seed=3).points)
    with pytest.raises(ValueError, match="kind"):
        N.toy_data(10, kind="spiral")


def test_neuron_is_the_weighted_sum_and_activation():
    pts = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, 0.0]], dtype=np.float32)
    out = N.neuron(pts, weights=(0.5, -1.0), bias=0.25, activation="sigmoid")
    z = pts @ np.array([0.5, -1.0]) + 0.25
    np.testing.assert_allclose(out.z, z, rtol=1e-6)
    np.testing.assert_allclose(out.a, 1 / (1 + np.exp(-z)), rtol=1e-6)
    np.testing.assert_array_equal(out.predicted, (z > 0).astype(int))
    assert out.accuracy is None
    np.testing.assert_allclose(N.activate(z, "tanh"), np.tanh(z), rtol=1e-6)
    np.testing.assert_array_equal(N.activate(z, "relu"), np.maximum(z, 0).astype(np.float32))
    np.testing.assert_array_equal(N.activate(z, "step"), (z > 0).astype(np.float32))
    with pytest.raises(ValueError, match="activation"):
        N.activate(z, "softsign")


def test_no_single_neuron_separates_xor():
    d = N.toy_data(200, kind="xor", noise=0.1, seed=0)
    best = max(
        N.neuron(d, weights=(np.cos(t), np.sin(t)), bias=b).accuracy
        for t in np.linspace(0, 2 * np.pi, 73)
        for b in np.linspace(-2, 2, 41)
    )
    assert best < 0.8  # a line gets at most three of the four clusters
    single = N.train_mlp(d, hidden=(), epochs=300, lr=0.05)  # one trained neuron (logistic regression)
    assert single.accuracy < 0.8


def test_mlp_learns_xor_moons_and_circles():
    for kind in N.TOY_DATA:
        d = N.toy_data(200, kind=kind, noise=0.1, seed=0)
        h = N.train_mlp(d, hidden=(8,), activation="tanh", epochs=300, lr=0.05, seed=0)
        assert h.accuracy >= 0.97, (kind, h.accuracy)
        assert h.losses[-1] < h.losses[0] / 3
        p = N.mlp_probability(h.model, d)
        assert p.shape == (200,) and np.mean((p > 0.5) == d.labels) == pytest.approx(h.accuracy)


def test_train_mlp_callback_stop_seed_and_threads():
    d = N.toy_data(100, kind="moons")
    stop = threading.Event()
    seen = []

    def cb(m):
        seen.append(m["epoch"])
        if m["epoch"] == 5:
            stop.set()

    threads = torch.get_num_threads()
    h = N.train_mlp(d, hidden=(4, 4), epochs=100, callback=cb, stop=stop)
    assert seen == [1, 2, 3, 4, 5] and h.stopped and len(h.losses) == 5
    assert torch.get_num_threads() == threads
    a = N.train_mlp(d, epochs=20, seed=1).losses
    assert a == N.train_mlp(d, epochs=20, seed=1).losses
    with pytest.raises(ValueError, match="hidden"):
        N.train_mlp(d, hidden=(0,))


def test_grid_points_cover_the_data():
    d = N.toy_data(50, kind="circles")
    grid, (x0, x1, y0, y1) = N.grid_points(d, resolution=10, margin=0.2)
    assert grid.shape == (100, 2)
    assert x0 < d.points[:, 0].min() and x1 > d.points[:, 0].max() and y0 < d.points[:, 1].min()
    assert grid[0, 1] == pytest.approx(y1) and grid[-1, 1] == pytest.approx(y0)  # top row first
