"""LayerVisualizer: traits drive the panels; one forward pass per (model, image)."""

import functools

import numpy as np
import pytest

from cnnwidgets.datasets import sample
from cnnwidgets.engine import layers as L
from cnnwidgets.engine import models as M


@pytest.fixture(scope="module")
def widget():
    from cnnwidgets import LayerVisualizer

    return LayerVisualizer()


@pytest.fixture
def counted(monkeypatch):
    calls = []
    real = L.capture

    @functools.wraps(real)  # the same name in the widget's code, so its recipe cache still knows the call
    def capture(*args, **kwargs):
        calls.append(args[2] if len(args) > 2 else kwargs.get("layers"))
        return real(*args, **kwargs)

    monkeypatch.setattr(L, "capture", capture)
    return calls


def test_default_view_matches_engine(widget):
    w = widget.wait()
    assert w.status.startswith("efficientnet_lite0") and w.layer == "conv_stem"
    from cnnwidgets.engine.models import shared_model

    net = shared_model("efficientnet_lite0")  # the process-wide instance the widget uses
    ref = L.capture(net, sample("chelsea", mode="rgb"), ["conv_stem"])["conv_stem"]
    np.testing.assert_allclose(w.result["activation"], ref, atol=1e-4)
    np.testing.assert_allclose(w.result["mosaic"], L.tile(ref, max_maps=64, columns=6), atol=1e-4)
    assert w.result["kernels"].shape == (32, 3, 3, 3)
    top = M.classify(net, sample("chelsea"), topk=5)
    assert [t[0] for t in w.result["topk"]] == [t[0] for t in top]
    assert w.result["cam"].label == top[0][0]
    assert list(w.controls["layer"].options) == L.layer_names(net)


def test_switching_layers_reuses_the_forward_pass(widget, counted):
    w = widget
    before = w.mosaic.value
    for layer in ("blocks.2.0.conv_pw", "bn2.act", "classifier", "global_pool"):
        w.layer = layer
        w.wait()
        assert w.result["layer"] == layer and w.status.startswith("efficientnet_lite0")
    assert counted == []
    assert w.mosaic.value != before
    assert w.result["shape"] == (1280,)
    assert w.kernel_panel.layout.display == "none"
    w.layer = "blocks.2.0.conv_pw"
    assert w.kernel_panel.layout.display is None
    assert w.result["kernels"].shape == (144, 24, 1, 1)


def test_click_enlarges_the_map(widget):
    w = widget
    w.layer = "conv_stem"
    shape, maps = w.result["mosaic"].shape, w.result["maps"]
    map_shape, count = maps.shape[1:], min(len(maps), w.max_maps)
    cols = shape[1] // map_shape[1]  # tiles per row, from the mosaic's width
    assert (count, cols) == (32, 6)
    # the centre of tile 8 (row 1, column 2)
    y = (1 * (map_shape[0] + 1) + map_shape[0] / 2) / shape[0]
    x = (2 * (map_shape[1] + 1) + map_shape[1] / 2) / shape[1]
    w.mosaic.click = [y, x, 1]
    w.wait()
    assert w.channel == 8 and w.result["channel"] == 8
    shown = w.map_panel.array
    expected = L.normalize(w.result["activation"][8])
    f = shown.shape[0] // expected.shape[0]
    np.testing.assert_allclose(shown[::f, ::f], expected, atol=1e-6)
    w.layer = "blocks.1.0.conv_pw"
    assert w.channel == 0


def test_code_reproduces_the_view(widget):
    w = widget
    w.layer = "blocks.3.0.conv_dw"
    w.per_map = False
    w.wait()
    ns = {"image": sample("chelsea", mode="rgb")}
    exec(w.code, ns)
    np.testing.assert_allclose(ns["mosaic"], w.result["mosaic"], atol=1e-4)
    assert [t[0] for t in ns["topk"]] == [t[0] for t in w.result["topk"]]
    w.per_map = True


def test_new_image_and_errors_in_status(widget, counted, drop):
    w = widget
    w.image = "coffee"
    w.wait()
    assert len(counted) == 1 and w.result["topk"][0][0] in {"espresso", "cup"}
    w.model = "no_such_model"
    w.wait()
    assert "unknown model 'no_such_model'" in w.status
    w.model = "efficientnet_lite0"
    w.wait()
    assert w.status.startswith("efficientnet_lite0")
    drop(w, sample("camera"), "camera.png")
    w.wait()
    assert w.result["cam"].image.shape == (224, 224, 3)
    w.image = b"not an image"
    w.wait()
    assert w.status.startswith("ImageLoadError")


def test_tiny_cnn_lists_its_layers():
    from cnnwidgets import LayerVisualizer

    w = LayerVisualizer(sample("camera"), model="tiny_cnn").wait()
    assert list(w.controls["layer"].options) == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "fc"]
    assert w.layer == "conv1" and w.result["shape"] == (16, 32, 32)
    w.layer = "fc"
    assert w.result["mosaic"].shape == (4, 4)  # 10 logits shown as one 4×4 map


def test_layer_picked_while_another_thread_syncs_controls(widget):
    """A layer picked in the dropdown counts even while a render thread is rebuilding the controls."""
    import threading

    w = widget
    w.image = "chelsea"
    w.wait()
    inside, release = threading.Event(), threading.Event()

    def render_thread_syncing():
        with w.quiet():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=render_thread_syncing)
    t.start()
    try:
        assert inside.wait(10)
        target = next(n for n in w.controls["layer"].options if n not in (w.layer, w.controls["layer"].value))
        w.controls["layer"].value = target  # the user's pick, on this (the kernel's) thread
    finally:
        release.set()
        t.join()
    assert w.wait().layer == target
    assert w.result["layer"] == target


def test_model_dropdown_offers_every_lite_and_lite1_sees_a_cat():
    from cnnwidgets import LayerVisualizer

    w = LayerVisualizer(model="efficientnet_lite1")
    options = list(w.controls["model"].options)
    assert {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"} <= set(options)
    w.wait()
    assert w.status.startswith("efficientnet_lite1"), w.status
    assert w.result["topk"][0][0] in {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "lynx"}
