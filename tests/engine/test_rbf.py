"""LeNet-5's Euclidean RBF output layer: scores are −‖x − c‖², centres learned or fixed, and it trains on digits."""

import numpy as np
import pytest
import torch

from cnnwidgets import datasets
from cnnwidgets.engine import models as M
from cnnwidgets.engine import train


def test_rbf_scores_are_negative_squared_distances():
    layer = M.RBFOutput(84, 10, centres="learned")
    x = torch.randn(5, 84)
    ref = -((x[:, None, :] - layer.centres[None]) ** 2).sum(-1)
    torch.testing.assert_close(layer(x), ref, rtol=1e-4, atol=1e-3)
    assert isinstance(layer.centres, torch.nn.Parameter)
    fixed = M.RBFOutput(84, 10, centres="fixed")
    assert "centres" in dict(fixed.named_buffers()) and not list(fixed.parameters())
    assert set(fixed.centres.unique().tolist()) == {-1.0, 1.0}
    with pytest.raises(ValueError, match="centres"):
        M.RBFOutput(84, 10, centres="random")


def test_lenet5_rbf_in_the_registry_and_shapes():
    assert "lenet5_rbf" in M.list_models()
    net = M.create_model("lenet5_rbf", device="cpu")
    assert isinstance(net.fc3, M.RBFOutput) and net.cnnw_config["name"] == "lenet5_rbf"
    out = net(torch.zeros(2, 1, 32, 32))
    assert out.shape == (2, 10) and (out <= 0).all()
    from cnnwidgets.engine.models import builders

    fixed = builders.lenet5(output="rbf", centres="fixed")
    assert fixed.fc3.centres_kind == "fixed"
    with pytest.raises(ValueError, match="output"):
        builders.lenet5(output="svm")


@pytest.mark.parametrize("centres", ["learned", "fixed"])
def test_lenet5_rbf_learns_digits(centres):
    from cnnwidgets.engine.models import builders

    torch.manual_seed(0)
    net = builders.lenet5(output="rbf", centres=centres)
    history = train.fit(net, datasets.digits(), epochs=4, lr=3e-3, seed=0, val=0.2, progress=False, threads=1)
    assert history.final["val_accuracy"] > 0.8, history.final
    assert np.isfinite(history.final["loss"])
