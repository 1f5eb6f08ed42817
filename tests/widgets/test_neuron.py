"""NeuronPlayground: traits drive the neuron; Start trains the MLP; result and code agree with the engine."""

import numpy as np
import pytest

from cnnwidgets import NeuronPlayground
from cnnwidgets.engine import neurons


@pytest.fixture
def w():
    return NeuronPlayground()


def run_code(w):
    ns = {}
    exec(w.code, ns)
    return ns


def test_sliders_drive_the_neuron_and_formula(w):
    assert w.status == "" and w.neuron_panel.image.value[:4] == b"\x89PNG"
    before = w.neuron_panel.image.value
    w.controls["w1"].value = 2.5
    w.controls["bias"].value = -1.0
    w.controls["activation"].value = "tanh"
    assert (w.w1, w.bias, w.activation) == (2.5, -1.0, "tanh")
    assert w.neuron_panel.image.value != before
    data = neurons.toy_data(200, kind="xor", noise=0.1, seed=0)
    ref = neurons.neuron(data, weights=(2.5, 1.0), bias=-1.0, activation="tanh")
    np.testing.assert_array_equal(w.result["neuron"].a, ref.a)
    assert w.result["neuron"].accuracy == ref.accuracy
    x1, x2 = data.points[0]
    n = lambda v: f"({v:.2f})" if v < 0 else f"{v:.2f}"  # noqa: E731
    assert f"2.50·{n(x1)} + 1.00·{n(x2)} + (-1.00) = {float(ref.z[0]):.3f}" in w.formula.value
    assert "tanh(z)" in w.formula.value
    ns = run_code(w)
    np.testing.assert_array_equal(ns["neuron"].a, w.result["neuron"].a)


def test_start_trains_the_mlp_on_xor(w):
    w.controls["units"].value = 6
    w.epochs = 250
    assert "hidden=[6]" in w.code and "epochs=250" in w.code
    w.start()
    h = w.result["history"]
    assert h is not None and len(h.losses) == 250 and h.accuracy >= 0.97
    assert w.status.startswith("done") and not w.running
    assert w.mlp_panel.image.value[:4] == b"\x89PNG" and "<polyline" in w.loss_curve.value
    ns = run_code(w)
    assert ns["history"].losses == h.losses  # the code retrains the same network
    # the single neuron on the same data stays below 0.8
    assert w.result["neuron"].accuracy < 0.8


def test_mlp_settings_change_the_code_and_not_the_pictures(w):
    redrawn = []
    w.observe(redrawn.append, names="result")
    before = w.neuron_panel.image.value
    w.lr, w.units, w.layers, w.epochs, w.mlp_activation = 0.1, 5, 2, 40, "relu"
    assert redrawn == [] and w.neuron_panel.image.value is before
    assert "hidden=[5, 5]" in w.code and "epochs=40" in w.code and "lr=0.1," in w.code and "'relu'" in w.code
    w.w2 = -2.0
    assert len(redrawn) == 1 and w.neuron_panel.image.value != before and "weights=[1.0, -2.0]" in w.code


def test_changing_data_drops_the_old_history_and_errors_show(w):
    w.epochs = 20
    w.start()
    assert w.result["history"] is not None
    w.dataset = "circles"
    assert w.result["history"] is None and w.result["data"].kind == "circles"
    w.points = 2  # toy_data needs 4
    assert "ValueError" in w.status
    w.points = 100
    assert w.status == "" and len(w.result["data"].labels) == 100


def test_lr_slider_keeps_the_value(w):
    assert w.controls["lr"].value == 0.05 and "lr=0.05," in w.code
    w.controls["lr"].value = 0.05 + 0.005 - 0.005  # slider arithmetic leaves 0.049999999999999996
    assert "lr=0.05," in w.code
