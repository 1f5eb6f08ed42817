"""TrainingDashboard: traits drive engine.train.fit; curves, confusion matrix, code, stop and errors."""

import io
import time

import ipywidgets as W
import numpy as np
import pytest
import torch
from PIL import Image

from cnnwidgets import datasets
from cnnwidgets.engine import models, train
from cnnwidgets.engine.train.data import split_indices
from cnnwidgets.widgets.training import TrainingDashboard


@pytest.fixture(scope="module")
def small_digits():
    return train.split(datasets.digits(), test=0.15, seed=0)[1]  # 270 images


def _png_size(data: bytes):
    return Image.open(io.BytesIO(data)).size


def test_start_trains_draws_curves_and_confusion_and_code_reproduces_it(small_digits, control):
    w = TrainingDashboard("tiny_cnn", small_digits, epochs=2, lr=4e-3)
    blank = w.curves.image.value
    assert _png_size(blank)[0] > 100 and not w.running and w.result is None
    w.start().wait()
    h = w.result
    assert isinstance(h, train.History) and len(h.epochs) == 2 and not h.stopped
    assert w.curves.image.value != blank and _png_size(w.confusion.image.value)[0] > 100
    assert h.confusion.sum() == len(split_indices(small_digits.labels, 0.2, 0)[1])  # the validation part
    assert w.status.startswith("done: 2 epoch(s)") and f"{h.final['val_accuracy']:.3f}" in w.status
    start, stop = control(w, W.Button, description="Start"), control(w, W.Button, description="Stop")
    assert start.disabled is False and stop.disabled is True
    # `code` is the engine call that reproduces the run: same weights, same metrics
    ns = {"dataset": small_digits}
    exec(w.code, ns)
    for (k, a), b in zip(w.model.state_dict().items(), ns["model"].state_dict().values()):
        assert torch.equal(a, b), k
    assert ns["history"].epochs[-1]["val_accuracy"] == h.final["val_accuracy"]
    assert np.array_equal(ns["history"].confusion, h.confusion)


def test_traits_and_controls_are_linked_and_update_code():
    w = TrainingDashboard("tiny_cnn", "digits", epochs=3)
    assert w.controls["epochs"].value == 3
    w.controls["epochs"].value = 7
    assert w.epochs == 7 and "epochs=7" in w.code
    w.lr = 0.02
    assert w.controls["lr"].value == pytest.approx(0.02) and "lr=0.02" in w.code
    w.val = 0.0
    assert "val=None" in w.code and "datasets.digits()" in w.code


def test_stop_button_ends_background_training(small_digits, control):
    w = TrainingDashboard("tiny_cnn", small_digits, epochs=200, lr=1e-3)
    w.background = True  # as inside a kernel: training runs on the worker thread
    bar = control(w, W.IntProgress)
    w.start()
    deadline = time.monotonic() + 60
    while bar.value < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert w.running and bar.value >= 1
    control(w, W.Button, description="Stop").click()
    w.wait(60)
    assert w.result.stopped and 1 <= len(w.result.epochs) < 200
    assert w.status.startswith("stopped:") and not w.running


def test_module_model_is_reset_at_each_start_and_errors_show_in_status(small_digits):
    torch.manual_seed(0)
    net = models.create_model("tiny_cnn", pretrained=False)
    before = net.fc.weight.detach().clone()
    w = TrainingDashboard(net, small_digits, epochs=1, val=0.0)
    w.start().wait()
    first = net.fc.weight.detach().clone()
    assert not torch.equal(first, before)
    assert "training set" in w.confusion.title.value  # no validation split
    w.start().wait()
    assert torch.equal(net.fc.weight, first)  # the second run started from the same weights
    three = (small_digits.images[:60], small_digits.labels[:60] % 3)
    bad = TrainingDashboard(models.create_model("tiny_cnn", pretrained=False, num_classes=2), three, epochs=1)
    bad.start().wait()
    assert "num_classes=3" in bad.status and not bad.running
    bad.start().wait()  # the widget still runs, and says the same
    assert "num_classes=3" in bad.status and not bad.running
    fixed = models.create_model("tiny_cnn", pretrained=False, num_classes=2)
    fixed.fc = torch.nn.Linear(2048, 3)
    good = TrainingDashboard(fixed, three, epochs=1)
    good.start().wait()
    assert good.status.startswith("done:")


def test_bad_dataset_name_is_refused():
    with pytest.raises(ValueError, match="dataset must be one of"):
        TrainingDashboard("tiny_cnn", "mnist")
