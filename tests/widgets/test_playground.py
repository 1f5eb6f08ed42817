"""ConvolutionPlayground: every view agrees with torch and with the engine, step by step."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnwidgets.engine import layers as L


@pytest.fixture
def pg():
    from cnnwidgets import ConvolutionPlayground

    return ConvolutionPlayground()


def test_default_convolution_matches_torch(pg):
    res = pg.result["conv"]
    ref = F.conv2d(
        torch.tensor(pg.image, dtype=torch.float64)[None, None],
        torch.tensor(pg.kernel, dtype=torch.float64)[None, None],
    )[0, 0].numpy()
    np.testing.assert_allclose(res.output, ref)
    assert len(res.steps) == 4 and pg.controls["step"].max == 3
    assert "output[0, 0] = " in pg.status


def test_steps_and_text_editing(pg):
    pg.step = 2
    s = pg.result["step"]
    assert (s.row, s.col) == (1, 0) and f"= <b>{int(s.value)}</b>" in pg.conv_view.value
    pg.controls["kernel"].value = "0 1; 1 0"
    assert pg.kernel == [[0.0, 1.0], [1.0, 0.0]]
    assert pg.result["conv"].output.shape == (3, 3) and pg.controls["step"].max == 8
    pg.padding = 1
    ref = F.conv2d(
        torch.tensor(pg.image, dtype=torch.float64)[None, None],
        torch.tensor(pg.kernel, dtype=torch.float64)[None, None],
        padding=1,
    )[0, 0].numpy()
    np.testing.assert_allclose(pg.result["conv"].output, ref)
    pg.step = 99
    assert pg.step == 24 and pg.controls["step"].value == 24
    pg.controls["image"].value = "1 2; 3 x"
    assert pg.status.startswith("image:") and "x" in pg.status
    assert pg.result["conv"].output.shape == (5, 5)  # the last good result stays


@pytest.mark.parametrize("kind", sorted(L.ACTIVATIONS))
def test_activation_view(pg, kind):
    pg.activation = kind
    pg.alpha = 0.5
    pg.x = -1.5
    x = torch.tensor([-1.5], dtype=torch.float64, requires_grad=True)
    f = {
        "relu": F.relu,
        "prelu": lambda t: F.prelu(t, torch.tensor([0.5], dtype=t.dtype)),
        "elu": lambda t: F.elu(t, alpha=0.5),
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
    }[kind]
    y = f(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    assert pg.result["fx"] == pytest.approx(float(y.detach()))
    assert pg.result["dfx"] == pytest.approx(float(dy))
    out = pg.result["conv"].output
    np.testing.assert_allclose(pg.result["activated"], f(torch.tensor(out)).detach().numpy(), atol=1e-12)
    assert pg.act_plot.value[:4] == b"\x89PNG"


def test_pooling_view_and_code(pg):
    pg.pool_mode = "max"
    ref = F.max_pool2d(torch.tensor(pg.pool_input)[None, None], 2)[0, 0].numpy()
    np.testing.assert_allclose(pg.result["pool"].output, ref)
    pg.pool_mode = "mean"
    ref = F.avg_pool2d(torch.tensor(pg.pool_input)[None, None], 2)[0, 0].numpy()
    np.testing.assert_allclose(pg.result["pool"].output, ref, atol=1e-6)
    pg.pool_mode = "stochastic"
    pg.seed = 3
    pg.pool_step = 1
    assert "p = a / Σa" in pg.pool_view.value
    expected = L.pool2d_steps(np.array(pg.pool_input), mode="stochastic", seed=3)
    np.testing.assert_array_equal(pg.result["pool"].output, expected.output)
    ns = {}
    exec(pg.code, ns)
    np.testing.assert_array_equal(ns["pool"].output, pg.result["pool"].output)
    np.testing.assert_array_equal(ns["conv"].output, pg.result["conv"].output)
    pg.pool_input = [[-1.0, 2.0], [3.0, 4.0]]
    assert "non-negative" in pg.status
    pg.pool_mode = "max"
    assert pg.result["pool"].output.tolist() == [[4.0]]
