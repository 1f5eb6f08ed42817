"""Wrong arguments give short errors: a TypeError or ValueError under 300 characters that names the parameter and
says what it got (type, shape, dtype), never an array's contents (issue 20)."""

import numpy as np
import pytest
import traitlets as T

import cnnwidgets as C

BIG = np.zeros((64, 64, 3), np.uint8)  # its repr would print "[[[0, 0, 0], ..." over many lines
SMALL = np.zeros((48, 48), np.uint8)
SMALL[10:30, 10:30] = 200  # one bright square: one region for the Pipeline


class _StubIndex:
    """Enough of an ImageIndex for a SearchBox that never searches."""

    def search(self, **kwargs):
        return []


def _check(exc, name, *, kind=(TypeError, ValueError)):
    msg = str(exc)
    assert isinstance(exc, kind), f"{type(exc).__name__}: {msg}"
    assert len(msg) < 300, f"{len(msg)} characters: {msg}"
    assert name in msg, msg
    assert "\n" not in msg and "0, 0, 0" not in msg and "[[" not in msg and "array(" not in msg, msg


def _lv(*args, **kwargs):
    return C.LayerVisualizer(*args, **{"model": "tiny_cnn", **kwargs})


def _pipeline(*args, **kwargs):
    return C.Pipeline(*(args or (SMALL,)), **{"model": "tiny_cnn", **kwargs})


# (widget factory, positional args, keyword args, the parameter the message must name, expected type)
CONSTRUCTOR_CASES = [
    (C.FilterDesigner, (), {"cutoff": BIG}, "cutoff", TypeError),
    (C.FilterDesigner, (), {"method": "nope"}, "method", ValueError),
    (C.FilterDesigner, (), {"method": BIG}, "method", TypeError),
    (C.FilterDesigner, (), {"weights": BIG}, "weights", TypeError),
    (C.FilterDesigner, (), {"cutof": 0.2}, "cutof", TypeError),
    (C.FilterDesigner, (np.zeros(5),), {}, "image", ValueError),
    (C.FilterDesigner, (np.zeros((0, 0)),), {}, "image", ValueError),
    (C.FilterDesigner, (np.zeros((4, 4, 2)),), {}, "image", ValueError),
    (C.FilterDesigner, (np.zeros((4, 4), complex),), {}, "image", TypeError),
    (C.FilterDesigner, ("no_such_file.png",), {}, "image", ValueError),
    (C.FilterDesigner, ("x" * 5000,), {}, "image", ValueError),
    (C.FilterDesigner, (object(),), {}, "image", TypeError),
    (C.FilterDesigner, (b"",), {}, "image", ValueError),
    (C.ThresholdSegmenter, (), {"value": "abc"}, "value", TypeError),
    (C.ThresholdSegmenter, (), {"value": BIG}, "value", TypeError),
    (C.ThresholdSegmenter, (), {"mode": "nope"}, "mode", ValueError),
    (C.ThresholdSegmenter, (), {"method": BIG}, "method", TypeError),
    (C.ThresholdSegmenter, (), {"threshold": 3.0}, "threshold", TypeError),
    (C.ThresholdSegmenter, (), {"thresold": 3.0}, "thresold", TypeError),
    (C.ThresholdSegmenter, (np.zeros((2, 3, 4, 4)),), {}, "image", ValueError),
    (C.ThresholdSegmenter, ("no_such_sample",), {}, "image", ValueError),
    (_lv, (), {"model": BIG}, "model", TypeError),
    (_lv, (), {"max_maps": 0}, "max_maps", ValueError),
    (_lv, (), {"topk": "abc"}, "topk", TypeError),
    (_lv, (), {"per_map": BIG}, "per_map", TypeError),
    (_lv, (), {"layers": "conv1"}, "layers", TypeError),
    (_lv, (np.zeros((2, 2, 2, 2)),), {}, "image", ValueError),
    (_lv, ("nope",), {}, "image", ValueError),
    (C.LayerVisualizer, ("tiny_cnn",), {}, "model", TypeError),  # the old order, model first
    (C.ConvolutionPlayground, (), {"image": BIG}, "image", TypeError),
    (C.ConvolutionPlayground, (), {"kernel": [[1, 2], [3]]}, "kernel", ValueError),
    (C.ConvolutionPlayground, (), {"kernel": [[1, "a"]]}, "kernel", TypeError),
    (C.ConvolutionPlayground, (), {"stride": "abc"}, "stride", TypeError),
    (C.ConvolutionPlayground, (), {"activation": "nope"}, "activation", ValueError),
    (C.ConvolutionPlayground, (), {"kernal": [[1]]}, "kernal", TypeError),
    (C.NeuronPlayground, (), {"dataset": "nope"}, "dataset", ValueError),
    (C.NeuronPlayground, (), {"w1": BIG}, "w1", TypeError),
    (C.NeuronPlayground, (), {"activation": BIG}, "activation", TypeError),
    (C.NeuronPlayground, (), {"epochs": "many"}, "epochs", TypeError),
    (C.NeuronPlayground, (), {"weights": [1, 2]}, "weights", TypeError),
    (C.TrainingDashboard, (), {"epochs": BIG}, "epochs", TypeError),
    (C.TrainingDashboard, (), {"schedule": "nope"}, "schedule", ValueError),
    (C.TrainingDashboard, (), {"epoch": 3}, "epoch", TypeError),
    (C.TrainingDashboard, (BIG,), {}, "model", TypeError),
    (C.TrainingDashboard, ("tiny_cnn", BIG), {}, "dataset", ValueError),
    (C.TrainingDashboard, ("tiny_cnn", "mnist"), {}, "dataset", ValueError),
    (C.SearchBox, (BIG,), {}, "index", TypeError),
    (C.SearchBox, (_StubIndex(),), {"k": "abc"}, "k", TypeError),
    (C.SearchBox, (_StubIndex(),), {"mode": "nope"}, "mode", ValueError),
    (C.SearchBox, (_StubIndex(),), {"text": BIG}, "text", TypeError),
    (C.SearchBox, (_StubIndex(),), {"thumb_side": BIG}, "thumb_side", TypeError),
    (C.SearchBox, (_StubIndex(),), {"limit": 3}, "limit", TypeError),
    (_pipeline, (np.zeros(5),), {}, "image", ValueError),
    (_pipeline, (b"not an image",), {}, "image", ValueError),
    (_pipeline, (), {"model": BIG}, "model", TypeError),
    (_pipeline, (), {"min_area": "abc"}, "min_area", TypeError),
    (_pipeline, (), {"work_side": "big"}, "work_side", TypeError),
    (_pipeline, (), {"index": BIG}, "index", TypeError),
    (_pipeline, (), {"min_aera": 5}, "min_aera", TypeError),
]


def _case_id(case):
    factory, args, kwargs, name, _ = case
    cls = {_lv: "LayerVisualizer", _pipeline: "Pipeline"}.get(factory, getattr(factory, "__name__", "?"))
    return f"{cls}-{name}-{'kw' if kwargs else 'arg'}"


@pytest.mark.parametrize("case", CONSTRUCTOR_CASES, ids=[_case_id(c) for c in CONSTRUCTOR_CASES])
def test_a_wrong_constructor_argument_gives_a_short_error(case):
    factory, args, kwargs, name, kind = case
    with pytest.raises((TypeError, ValueError)) as info:
        factory(*args, **kwargs)
    _check(info.value, name, kind=kind)


def test_every_public_widget_is_covered():
    from cnnwidgets import widgets

    covered = {_case_id(c).split("-")[0] for c in CONSTRUCTOR_CASES}
    assert covered == set(widgets.__all__)


# ---------------------------------------------------------------------------------- setting a trait later
@pytest.fixture(scope="module")
def benches():
    return {
        "FilterDesigner": C.FilterDesigner(SMALL),
        "ThresholdSegmenter": C.ThresholdSegmenter(SMALL),
        "LayerVisualizer": _lv(np.zeros((32, 32, 3), np.uint8)),
        "ConvolutionPlayground": C.ConvolutionPlayground(),
        "NeuronPlayground": C.NeuronPlayground(points=40),
        "TrainingDashboard": C.TrainingDashboard(),
        "SearchBox": C.SearchBox(_StubIndex()),
        "Pipeline": _pipeline(),
    }


LATER_CASES = [
    ("FilterDesigner", "cutoff", BIG, TypeError),
    ("FilterDesigner", "cutoff", "abc", TypeError),
    ("FilterDesigner", "image", object(), TypeError),
    ("FilterDesigner", "image", np.zeros((3, 0)), ValueError),
    ("FilterDesigner", "shape", "square", ValueError),
    ("ThresholdSegmenter", "threshold", "abc", TypeError),
    ("ThresholdSegmenter", "value", "abc", TypeError),
    ("ThresholdSegmenter", "image", object(), TypeError),
    ("ThresholdSegmenter", "seeds", BIG, TypeError),
    ("LayerVisualizer", "image", object(), TypeError),
    ("LayerVisualizer", "image", "no/such/file.png", ValueError),
    ("LayerVisualizer", "channel", BIG, TypeError),
    ("LayerVisualizer", "topk", 0, ValueError),
    ("ConvolutionPlayground", "kernel", BIG, TypeError),
    ("ConvolutionPlayground", "pool_mode", "median", ValueError),
    ("NeuronPlayground", "lr", "fast", TypeError),
    ("NeuronPlayground", "mlp_activation", "step", ValueError),
    ("TrainingDashboard", "lr", BIG, TypeError),
    ("TrainingDashboard", "running", BIG, TypeError),
    ("SearchBox", "k", "abc", TypeError),
    ("SearchBox", "image_path", BIG, TypeError),
    ("Pipeline", "topk", BIG, TypeError),
    ("Pipeline", "enhance_on", "yes", TypeError),
]


@pytest.mark.parametrize(("widget", "name", "value", "kind"), LATER_CASES)
def test_setting_a_bad_value_later_gives_a_short_error_and_keeps_the_old_one(benches, widget, name, value, kind):
    w = benches[widget]
    before = getattr(w, name)
    with pytest.raises((TypeError, ValueError)) as info:
        setattr(w, name, value)
    _check(info.value, name, kind=kind)
    assert isinstance(info.value, T.TraitError)  # code that caught traitlets' error still does
    after = getattr(w, name)
    assert after is before or (not isinstance(before, np.ndarray) and after == before)


def test_a_rejected_value_keeps_the_widget_working(benches):
    w = benches["FilterDesigner"]
    with pytest.raises(TypeError):
        w.cutoff = BIG
    w.cutoff = 0.3
    assert w.status_kind != "error" and w.result.shape == SMALL.shape


# ---------------------------------------------------------------------------------- image first
def test_layer_visualizer_takes_the_image_first():
    image = np.zeros((32, 32, 3), np.uint8)
    w = C.LayerVisualizer(image, model="tiny_cnn").wait()
    assert w.status_kind != "error", w.status
    assert w.model == "tiny_cnn" and w.image is image and w.result["shape"] == (16, 32, 32)
    w2 = C.LayerVisualizer("camera", model="tiny_cnn").wait()  # a sample name, positional
    assert w2.status.startswith("tiny_cnn") and w2.result["layer"] == "conv1"


def test_a_sample_name_is_an_image_for_every_image_widget():
    assert C.FilterDesigner("camera").source.shape == (512, 512)
    assert C.ThresholdSegmenter("coins").source.shape == (303, 384)


def test_an_undecodable_image_still_goes_to_the_status_line(benches):
    w = benches["ThresholdSegmenter"]
    w.image = b"\x89PNG not really"
    assert w.status_kind == "error" and "image" in w.status and len(w.status) < 300
    w.image = SMALL
    assert w.status_kind != "error"
