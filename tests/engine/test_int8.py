"""int8 inference: the static QDQ export of a model, checked against fp32 on first use, recorded, refused below the
bar, and chosen by precision="auto" only where the CPU has VNNI/AMX and it times faster."""

import json

import numpy as np
import pytest

from cnnwidgets.engine import models as M
from cnnwidgets.engine.models import onnx_files, quantize
from cnnwidgets.engine.models import runtime as B
from cnnwidgets.index.evaluation import class_word_set

pytest.importorskip("onnxruntime.quantization")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One export folder for the module (the fp32 export is made once); no sessions in memory before or after."""
    folder = tmp_path_factory.mktemp("int8-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(B.CACHE_ENV_VAR, str(folder))
        B.clear_sessions()
        yield folder / "onnx"
        B.clear_sessions()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """The class-word set: 96 crops, mirrors, rotations and colour changes of 10 bundled photos, by class word (none
    of them a calibration image as it is)."""
    return class_word_set(tmp_path_factory.mktemp("photos"))


def _fresh_int8(cache):
    """Forget the int8 files and sessions (the fp32 export stays)."""
    for path in cache.glob("*-int8-*"):
        path.unlink()
    B._INT8.clear()


def test_int8_agrees_with_fp32_and_is_recorded_and_reused(cache, lite0, photos):
    _fresh_int8(cache)
    paths = sorted(photos)
    before = dict(onnx_files.stats)
    f8, tags8 = M.embed_and_classify(lite0, paths, topk=1, precision="int8")
    f32, tags32 = M.embed_and_classify(lite0, paths, topk=1)
    assert onnx_files.stats["quantized"] == before["quantized"] + 1

    cos = (f8 * f32).sum(axis=1)  # unit-norm rows
    assert cos.mean() >= 0.96 and cos.min() >= 0.9
    agree = np.mean([a[0][0] == b[0][0] for a, b in zip(tags8, tags32)])
    assert agree >= 0.8, agree  # low-confidence photos (ImageNet has no class for them) flip first
    assert M.classify(lite0, paths[:4], topk=1, precision="int8") == list(tags8[:4])

    # retrieval: each photo's 10 nearest neighbours, and their precision by class word
    def nearest(f):
        s = f @ f.T
        np.fill_diagonal(s, -np.inf)
        return np.argsort(-s, axis=1)[:, :10]

    n32, n8 = nearest(f32), nearest(f8)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(n32, n8)]) >= 0.9
    words = np.array([photos[p] for p in paths])
    p_at_10 = [np.mean(words[n] == words[:, None]) for n in (n32, n8)]
    assert abs(p_at_10[0] - p_at_10[1]) <= 0.01, p_at_10

    (path,) = cache.glob("*-int8-*.onnx")
    fp32_name = path.name.split("-int8-")[0] + ".onnx"
    assert (cache / fp32_name).exists() and quantize.RECIPE in path.name  # keyed by the fp32 export and the recipe
    record = json.loads(path.with_name(path.name + ".json").read_text())
    assert record["refused"] is None and record["fp32"] == fp32_name
    assert record["figures"]["top1_agreement"] >= quantize.MIN_TOP1_AGREEMENT
    assert record["figures"]["mean_cosine"] >= quantize.MIN_MEAN_COSINE

    B._INT8.clear()  # a new process: the recorded file is read, not quantized again
    again = M.embed(lite0, paths[:3], precision="int8")
    assert onnx_files.stats["quantized"] == before["quantized"] + 1
    np.testing.assert_allclose(again, f8[:3], atol=1e-5)


def test_a_changed_int8_file_is_never_used(cache, lite0, photos):
    M.embed(lite0, sorted(photos)[:1], precision="int8")
    (path,) = cache.glob("*-int8-*.onnx")
    path.write_bytes(path.read_bytes()[:-16] + bytes(16))
    B._INT8.clear()
    before = onnx_files.stats["quantized"]
    M.embed(lite0, sorted(photos)[:1], precision="int8")
    assert onnx_files.stats["quantized"] == before + 1  # made again from the fp32 export


def test_int8_below_the_bar_is_refused_with_the_reason_and_not_tried_again(cache, lite0, photos, monkeypatch):
    _fresh_int8(cache)
    monkeypatch.setattr(quantize, "MIN_TOP1_AGREEMENT", 1.01)
    with pytest.raises(quantize.Int8Refused, match=r"int8 top-1 agrees with fp32 on \d+% of the check photos"):
        M.embed(lite0, sorted(photos)[:2], precision="int8")
    assert not list(cache.glob("*-int8-*.onnx"))  # nothing kept but the record of the refusal
    (record,) = cache.glob("*-int8-*.json")
    assert "top-1 agrees" in json.loads(record.read_text())["refused"]

    B._INT8.clear()
    before = onnx_files.stats["quantized"]
    with pytest.raises(quantize.Int8Refused, match="top-1 agrees"):
        M.classify(lite0, sorted(photos)[:2], precision="int8")
    assert onnx_files.stats["quantized"] == before
    _fresh_int8(cache)


def test_int8_needs_onnx_runtime_and_a_known_precision(cache, lite0, photos):
    with pytest.raises(ValueError, match="backend='torch' cannot run it"):
        M.embed(lite0, sorted(photos)[:1], precision="int8", backend="torch")
    with pytest.raises(ValueError, match="precision must be one of 'auto', 'fp32', 'bf16', 'int8', got 'int4'"):
        M.embed(lite0, sorted(photos)[:1], precision="int4")


def test_auto_picks_int8_only_on_a_vnni_cpu_where_it_times_faster(cache, lite0, photos, monkeypatch):
    _fresh_int8(cache)
    monkeypatch.setattr(quantize, "int8_capable", lambda: False)
    before = onnx_files.stats["quantized"]
    assert B.prefers_int8(lite0) is False
    assert onnx_files.stats["quantized"] == before  # nothing quantized, nothing timed

    monkeypatch.setattr(quantize, "int8_capable", lambda: True)
    assert B.prefers_int8(lite0, backend="torch") is False
    choice = B.prefers_int8(lite0)
    fp32 = B.resolve_backend("onnx", lite0)
    int8 = B.int8_model(fp32, M.model_config(lite0))
    assert choice is int8.faster and isinstance(choice, bool)  # timed once, kept with the session
    f = M.embed(lite0, sorted(photos)[:2], precision="auto")
    want = M.embed(lite0, sorted(photos)[:2], precision="int8" if choice else "fp32")
    if choice or not M.bf16_supported():
        np.testing.assert_allclose(f, want, atol=1e-5)


def test_an_int8_index_records_its_precision_and_queries_with_it(cache, image_folder, tmp_path, capsys):
    from cnnwidgets.cli import main
    from cnnwidgets.index import ImageIndex

    root, labels = image_folder(samples=("chelsea", "coffee", "rocket"), distortions=("original", "rot90", "crop"))
    assert main(["index", str(root), "--index", str(tmp_path / "idx"), "--precision", "int8", "--quiet"]) == 0
    assert "indexed 9 images" in capsys.readouterr().out
    index = ImageIndex.load(tmp_path / "idx")
    assert index.options["precision"] == "int8"
    fp32 = ImageIndex.build(root, descriptors=("cnn",), progress=False)
    for path in sorted(labels)[:3]:
        hit = index.search(image=path, mode="cnn", k=1)[0]
        assert hit.path == path and hit.score == pytest.approx(1.0, abs=1e-4)  # the query ran int8 too
        ours, theirs = (ix.faiss["cnn"].reconstruct(int(ix.rows.get(path).id)) for ix in (index, fp32))
        assert 0.9 < float(ours @ theirs) < 0.99999  # int8, near fp32
    with pytest.raises(ValueError, match="precision='int4'"):
        ImageIndex(precision="int4")


@pytest.mark.parametrize("faster", [True, False])
def test_auto_is_decided_once_for_the_whole_index(cache, image_folder, tmp_path, monkeypatch, faster):
    """Workers never decide "auto" themselves: the index records int8 or fp32 before it describes any image."""
    from cnnwidgets.index import ImageIndex, executors

    root, _ = image_folder(samples=("chelsea", "coffee"), distortions=("original", "rot90"))
    asked = []
    monkeypatch.setattr(B, "prefers_int8", lambda model, backend="auto": asked.append(model) or faster)
    sent = []
    real = executors.IndexBatch.__init__
    monkeypatch.setattr(
        executors.IndexBatch, "__init__", lambda self, **kw: sent.append(kw["precision"]) or real(self, **kw)
    )
    index = ImageIndex.build(root, descriptors=("cnn",), progress=False, precision="auto", path=tmp_path / "idx")
    want = "int8" if faster else "fp32"
    assert index.options["precision"] == want and len(asked) == 1 and set(sent) == {want}
    assert ImageIndex.load(tmp_path / "idx").options["precision"] == want
