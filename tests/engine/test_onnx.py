"""The inference backend switch: ONNX Runtime exports (cached, keyed by weights, checked against torch) and torch."""

import logging
import os

import numpy as np
import pytest
import torch

from cnnwidgets.datasets import sample
from cnnwidgets.engine import features
from cnnwidgets.engine import models as M
from cnnwidgets.engine.models import onnx_export, onnx_files
from cnnwidgets.engine.models import runtime as B
from cnnwidgets.engine.models.surgery import replace_head

pytest.importorskip("onnxruntime")

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "horse", "camera")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty export folder and no sessions in memory."""
    monkeypatch.setenv(B.CACHE_ENV_VAR, str(tmp_path))
    B.clear_sessions()
    yield tmp_path / "onnx"
    B.clear_sessions()


def tiny(seed=0):
    torch.manual_seed(seed)
    return M.create_model("tiny_cnn", device="cpu")


def digits_like(n=6):
    return list(np.random.default_rng(1).integers(0, 256, (n, 32, 32), dtype=np.uint8))


def test_lite0_onnx_matches_torch_fp32(lite0):
    images = [sample(n, mode="rgb") for n in PHOTOS]
    onnx_vecs = M.embed(lite0, images, backend="onnx")
    torch_vecs = M.embed(lite0, images, backend="torch", fuse_bn=False)
    assert onnx_vecs.shape == torch_vecs.shape and onnx_vecs.dtype == np.float32
    assert (onnx_vecs * torch_vecs).sum(axis=1).min() >= 0.9999
    onnx_top = [t[0][0] for t in M.classify(lite0, images, topk=1, backend="onnx")]
    torch_top = [t[0][0] for t in M.classify(lite0, images, topk=1, backend="torch", fuse_bn=False)]
    assert onnx_top == torch_top
    vecs, tags = features.cnn_with_tags(images, model=lite0, topk=3)
    assert (vecs * torch_vecs).sum(axis=1).min() >= 0.9999
    assert [t[0][0] for t in tags] == torch_top
    assert "cat" in tags[0][0][0]


def test_cnn_with_tags_equals_cnn_and_classify_in_torch(lite0):
    images = [sample(n, mode="rgb") for n in PHOTOS[:3]]
    vecs, tags = features.cnn_with_tags(images, model=lite0, topk=2, backend="torch")
    want = features.cnn(images, model=lite0, backend="torch")
    assert np.abs(vecs - want).max() < 1e-5
    for got, ref in zip(tags, M.classify(lite0, images, topk=2, backend="torch")):
        assert [g[0] for g in got] == [r[0] for r in ref]
        assert np.allclose([g[1] for g in got], [r[1] for r in ref], atol=1e-5)


def test_export_is_reused_from_file(cache):
    model = tiny()
    before = dict(B.stats)
    first = M.embed(model, digits_like(), backend="onnx")
    assert B.stats["exports"] == before["exports"] + 1
    assert len(list(cache.glob("*.onnx"))) == 1
    B.clear_sessions()
    again = tiny()  # same weights, another object: the file is loaded, not exported again
    second = M.embed(again, digits_like(), backend="onnx")
    assert B.stats["exports"] == before["exports"] + 1
    assert B.stats["loads"] == before["loads"] + 2
    assert np.abs(first - second).max() < 1e-6
    M.embed(again, digits_like(), backend="onnx")  # in memory now: neither exported nor loaded
    assert B.stats["loads"] == before["loads"] + 2


def test_changed_weights_make_a_new_export(cache):
    model = tiny()
    old = M.embed(model, digits_like(), backend="onnx")
    exports = B.stats["exports"]
    with torch.no_grad():
        model.conv2.weight.add_(0.05 * torch.randn_like(model.conv2.weight))  # fine-tuned in place
    new = M.embed(model, digits_like(), backend="onnx")
    assert B.stats["exports"] == exports + 1
    assert len(list(cache.glob("*.onnx"))) == 2
    assert np.abs(new - M.embed(model, digits_like(), backend="torch")).max() < 1e-5
    assert np.abs(new - old).max() > 1e-3
    replace_head(model, 4)  # a new head: another key again
    model.eval()
    M.classify(model, digits_like(2), backend="onnx")
    assert len(list(cache.glob("*.onnx"))) == 3


class Unexportable(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(4, 3)
        self.cnnw_config = dict(tiny().cnnw_config, name="unexportable")

    def forward(self, x):
        if torch.jit.is_tracing():
            raise RuntimeError("this model does not trace")
        return self.fc(self.conv(x).mean(dim=(2, 3)))


def test_model_that_cannot_export_runs_in_torch_with_a_reason(cache, caplog):
    model = Unexportable().eval()
    with caplog.at_level(logging.WARNING, logger=B.__name__):
        vecs = M.embed(model, digits_like(), backend="auto")
    assert vecs.shape == (6, 4)
    assert any("unexportable" in r.message and "does not trace" in r.message for r in caplog.records)
    assert not list(cache.glob("*.onnx")) and not list(cache.glob("*.tmp"))
    with pytest.raises(M.OnnxUnavailable, match="does not trace"):
        M.embed(model, digits_like(), backend="onnx")


def test_disagreeing_export_is_not_kept(cache, monkeypatch, caplog):
    monkeypatch.setattr(onnx_export, "MIN_COSINE", 1.5)  # no export can pass
    with caplog.at_level(logging.WARNING, logger=B.__name__):
        M.embed(tiny(), digits_like(), backend="auto")
    assert any("disagrees with torch" in r.message for r in caplog.records)
    assert not cache.exists() or not os.listdir(cache)  # neither the file nor its temporary


def test_export_written_atomically(cache, monkeypatch):
    renames = []
    real = os.replace

    def watch(src, dst):
        assert not os.path.exists(dst) and os.path.getsize(src) > 0  # complete before it takes the name
        renames.append((src, dst))
        real(src, dst)

    monkeypatch.setattr(B.os, "replace", watch)
    M.embed(tiny(), digits_like(), backend="onnx")
    assert [os.path.splitext(dst)[1] for _, dst in renames] == [".onnx", ".blake2b"]  # the export, then its digest
    assert all(os.path.dirname(src) == str(cache) for src, _ in renames)
    assert sorted(p.suffix for p in cache.iterdir()) == [".blake2b", ".onnx"]


def test_torch_backend_never_touches_onnxruntime(cache, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("onnxruntime used")

    monkeypatch.setattr(B, "onnx_model", refuse)
    monkeypatch.setattr(B.OnnxModel, "__init__", refuse)
    model = tiny()
    M.embed(model, digits_like(), backend="torch")
    M.classify(model, digits_like(2), backend="torch")
    features.cnn_with_tags(digits_like(2), model=model, backend="torch")
    assert not cache.exists()


def test_auto_runs_torch_where_it_must(cache, monkeypatch):
    monkeypatch.setattr(B, "onnx_model", lambda m: pytest.fail("ONNX asked for"))
    model = tiny()
    model.train()
    assert B.resolve_backend("auto", model) is None  # training mode
    model.eval()
    handle = model.fc.register_forward_hook(lambda *a: None)
    assert B.resolve_backend("auto", model) is None  # layer capture and Grad-CAM need torch
    handle.remove()
    assert B.resolve_backend("auto", model, precision="bf16") is None
    with pytest.raises(M.OnnxUnavailable, match="training mode"):
        B.resolve_backend("onnx", model.train())
    with pytest.raises(ValueError, match="backend"):
        M.embed(model, digits_like(), backend="tensorrt")


def test_cache_folder_keeps_the_most_recent_exports(cache, monkeypatch):
    monkeypatch.setattr(onnx_files, "KEEP_FILES", 2)
    for seed in range(3):
        M.embed(tiny(seed), digits_like(2), backend="onnx")
    assert len(list(cache.glob("*.onnx"))) == 2


def test_onnx_runs_without_a_folded_torch_copy(cache, monkeypatch):
    from cnnwidgets.engine.models import inference

    model = tiny()
    want = M.embed(model, digits_like(), backend="torch", fuse_bn=False)
    monkeypatch.setattr(inference, "inference_model", lambda *a, **k: pytest.fail("a torch copy was folded"))
    got = M.embed(model, digits_like(), backend="onnx")
    vecs, tags = features.cnn_with_tags(digits_like(), model=model, backend="onnx", topk=1)
    assert np.abs(got - want).max() < 1e-5 and np.abs(vecs - want).max() < 1e-5 and len(tags) == 6


def test_pretrained_model_runs_from_its_recorded_export_without_torch(cache, monkeypatch):
    import json
    import subprocess
    import sys

    images = [sample(n, mode="rgb") for n in PHOTOS[:4]]
    assert B.pretrained_onnx("efficientnet_lite0") is None  # nothing recorded yet
    changed = M.create_model("efficientnet_lite0", device="cpu")
    with torch.no_grad():
        changed.classifier.bias.add_(1.0)  # fine-tuned in place: its export is never recorded under the name
    M.classify(changed, images, backend="onnx")
    assert B.pretrained_onnx("efficientnet_lite0") is None
    assert not list(cache.glob("*.json"))

    model = M.create_model("efficientnet_lite0", device="cpu")
    want = M.embed(model, images, backend="torch", fuse_bn=False)
    want_top = [t[0][0] for t in M.classify(model, images, topk=1, backend="torch")]
    M.embed(model, images, backend="onnx")  # exported (or loaded) and recorded
    records = list(cache.glob("*.json"))
    assert len(records) == 1 and records[0].name.startswith("efficientnet_lite0-pretrained-")
    exports = B.stats["exports"]
    B.clear_sessions()
    runner = B.pretrained_onnx("efficientnet_lite0")
    assert isinstance(runner, B.OnnxModel) and B.stats["exports"] == exports
    assert runner.cnnw_config["input_size"] == (3, 224, 224) and len(runner.cnnw_config["labels"]) == 1000
    got = M.embed(runner, images)
    assert (got * want).sum(axis=1).min() >= 0.9999
    assert [t[0][0] for t in M.classify(runner, images, topk=1)] == want_top
    vecs, tags = features.cnn_with_tags(images, model=runner, topk=1)
    assert (vecs * want).sum(axis=1).min() >= 0.9999 and [t[0][0] for t in tags] == want_top
    with pytest.raises(ValueError, match="torch model"):
        M.embed(runner, images, backend="torch")

    with torch.no_grad():
        model.conv_head.weight.mul_(1.01)  # changed after it was recorded: it runs from a new export of its own
    new = M.embed(model, images, backend="onnx")
    assert B.stats["exports"] == exports + 1
    assert np.abs(new - M.embed(model, images, backend="torch", fuse_bn=False)).max() < 1e-4
    assert [t[0][0] for t in M.classify(B.pretrained_onnx("efficientnet_lite0"), images, topk=1)] == want_top

    # a fresh process runs the recorded export without importing timm or building the torch model
    code = (
        "import sys, numpy as np\n"
        "from cnnwidgets.datasets import sample\n"
        "from cnnwidgets.engine import models as M\n"
        "from cnnwidgets.engine.models import runtime as B\n"
        "runner = B.pretrained_onnx('efficientnet_lite0')\n"
        f"v = M.embed(runner, [sample(n, mode='rgb') for n in {PHOTOS[:4]!r}])\n"
        "np.save(sys.argv[1], v)\n"
        "print('timm' in sys.modules, 'torchvision' in sys.modules)\n"
    )
    out = cache.parent / "fresh.npy"
    env = {**os.environ, B.CACHE_ENV_VAR: str(cache.parent)}
    r = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, env=env, check=True)
    assert r.stdout.split() == ["False", "False"]
    assert (np.load(out) * want).sum(axis=1).min() >= 0.9999

    manifest = records[0]
    with monkeypatch.context() as patch:
        patch.setattr(
            onnx_export, "EXPORTER", onnx_export.EXPORTER + "-other"
        )  # another exporter: the record is out of date
        B.clear_sessions()
        assert B.pretrained_onnx("efficientnet_lite0") is None
    record = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**record, "key": "0" * 32}))  # a record of other weights
    B.clear_sessions()
    assert B.pretrained_onnx("efficientnet_lite0") is None


def test_same_padding_is_exported_as_constants(lite0):
    import collections

    import onnx

    cfg = lite0.cnnw_config
    fixed = onnx_export.constant_padding(lite0, cfg)
    assert any(type(m).__name__ == "Conv2dSame" for m in lite0.modules())  # the model itself is not changed
    assert not any(type(m).__name__ == "Conv2dSame" for m in fixed.modules())
    x = torch.randn(2, *cfg["input_size"])
    with torch.inference_mode():
        assert torch.allclose(fixed(x), lite0(x), atol=1e-5)
    found = B.onnx_model(lite0)
    ops = collections.Counter(n.op_type for n in onnx.load(str(found.path)).graph.node)
    assert ops["Shape"] == 0 and ops["Pad"] == 0 and ops["Conv"] == 49, ops  # the padding is part of each Conv
    pads = [list(a.ints) for n in onnx.load(str(found.path)).graph.node for a in n.attribute if a.name == "pads"]
    same = [m.pad for m in fixed.modules() if isinstance(m, onnx_export._ConstantPadConv)]
    assert len(same) == 5 and [p for p in pads if p[:2] != p[2:]] == [[t, left, b, r] for left, r, t, b in same]
    small = tiny()
    assert onnx_export.constant_padding(small, small.cnnw_config) is small  # no Conv2dSame: the model as it is


def test_image_query_after_a_fresh_build_runs_on_the_builds_onnx_session(cache, monkeypatch, tmp_path):
    """A query describes its image as the index build did: from the recorded ONNX Runtime export, with no torch
    model built and no torch forward pass."""
    from cnnwidgets.index import ImageIndex
    from cnnwidgets.io import to_png_bytes

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTOS[:3]:
        (folder / f"{name}.png").write_bytes(to_png_bytes(sample(name, mode="rgb")))
    model = M.create_model("efficientnet_lite0", device="cpu")
    M.embed(model, [sample("chelsea", mode="rgb")], backend="onnx")  # exported and recorded
    del model
    B.clear()  # as in a fresh process: no model and no session in memory
    monkeypatch.setattr(B, "create_model", lambda *a, **k: pytest.fail("a torch model was built"))
    index = ImageIndex.build(folder, descriptors=("cnn",), progress=False)
    loads = B.stats["loads"]

    def no_torch(module, args):
        raise AssertionError(f"torch ran {type(module).__name__}")

    handle = torch.nn.modules.module.register_module_forward_pre_hook(no_torch)
    try:
        hits = index.search(image=sample("coffee", mode="rgb"), mode="semantic", k=3)
    finally:
        handle.remove()
    assert index.model is B.pretrained_onnx("efficientnet_lite0") and isinstance(index.model, B.OnnxModel)
    assert B.stats["loads"] == loads  # the build's session, not loaded again
    assert hits[0].path.endswith("coffee.png")
