"""The linked pipeline: stage outputs equal the chained engine calls, caching per stage, code, failures."""

import numpy as np
import pytest
from skimage import data

from cnnwidgets.engine import enhance, models, segment
from cnnwidgets.engine import pipeline as P
from cnnwidgets.engine.calls import Call, Ref


@pytest.fixture(scope="module")
def coins():
    return data.coins()


def test_outputs_equal_the_engine_calls_chained_by_hand(coins):
    p = P.Pipeline.default()
    out = p.run(coins)
    enhanced = enhance.frequency_filter(coins, shape="butterworth", cutoff=0.15, order=2.0)
    np.testing.assert_array_equal(out["enhance"], enhanced)
    mask = segment.threshold(enhanced, "otsu")
    np.testing.assert_array_equal(out["segment"], mask)
    regions = P.find_regions(mask, coins, margin=8, min_area=20)
    assert [(r.label, r.bbox, r.area) for r in out["regions"]] == [(r.label, r.bbox, r.area) for r in regions]
    assert len(regions) == 24  # the 24 coins
    net = models.shared_model("efficientnet_lite0")
    assert out["recognise"] == models.classify(net, [r.crop for r in regions], topk=3)


def test_find_regions_against_skimage_label(coins):
    from skimage import measure

    mask = coins > 120
    regions = P.find_regions(mask, coins, margin=0, min_area=1, max_regions=1000)
    ref = measure.regionprops(measure.label(mask, connectivity=2))
    assert sorted(r.area for r in regions) == sorted(int(r.area) for r in ref)
    big = max(ref, key=lambda r: r.area)
    assert regions[0].bbox == tuple(int(v) for v in big.bbox) and regions[0].area == big.area
    top, left, bottom, right = regions[0].bbox
    np.testing.assert_array_equal(regions[0].crop[..., 0], coins[top:bottom, left:right])
    labels = np.zeros(coins.shape, np.int32)
    labels[10:20, 30:50] = 5
    (only,) = P.find_regions(labels, coins, margin=3)
    assert only.label == 5 and only.bbox == (10, 30, 20, 50) and only.crop.shape == (16, 26, 3)
    with pytest.raises(ValueError, match="bool or integer"):
        P.find_regions(coins.astype(float), coins)


def test_an_upstream_change_recomputes_only_downstream_stages(coins):
    counts = {"a": 0, "b": 0, "c": 0}

    def stage_a(x, *, gain):
        counts["a"] += 1
        return x * gain

    def stage_b(x, *, offset):
        counts["b"] += 1
        return x + offset

    def stage_c(x):
        counts["c"] += 1
        return float(x.mean())

    p = P.Pipeline(
        [
            P.Stage("a", Call(stage_a, gain=2.0)),
            P.Stage("b", Call(stage_b, offset=1.0)),
            P.Stage("c", Call(stage_c)),
        ]
    )
    img = coins.astype(np.float32)
    p.run(img)
    assert counts == {"a": 1, "b": 1, "c": 1}
    p2 = p.replaced("b", offset=3.0)
    out = p2.run(img)
    assert counts == {"a": 1, "b": 2, "c": 2}  # a comes from the cache
    assert out["c"] == pytest.approx(float((img * 2 + 3).mean()))
    p2.run(img)
    assert counts == {"a": 1, "b": 2, "c": 2}
    p2.run(img + 1)  # another image: everything again
    assert counts == {"a": 2, "b": 3, "c": 3}
    bypassed = p2.replaced("a", enabled=False).run(img)
    assert "a" not in bypassed and bypassed["b"][0, 0] == img[0, 0] + 3


def test_code_reproduces_every_output(coins):
    from cnnwidgets.index import ImageIndex

    rng = np.random.default_rng(0)
    paths = [f"/virtual/img{i}.png" for i in range(6)]
    index = ImageIndex.from_vectors(paths, {"cnn": rng.standard_normal((6, 1280)).astype(np.float32)})
    p = P.Pipeline.default(index_given=True)
    p = P.Pipeline(
        [
            p.stage("enhance"),
            P.Stage("segment", Call(segment.threshold, "otsu", invert=False)),
            p.stage("regions"),
            p.stage("recognise"),
            P.Stage("retrieve", Call(P.retrieve, Ref("index"), region=1, k=3, mode="cnn"), reads="regions"),
        ]
    )
    out = p.run(coins, index=index)
    scope = {"image": coins, "index": index}
    exec(p.code(), scope)
    np.testing.assert_array_equal(scope["enhanced"], out["enhance"])
    np.testing.assert_array_equal(scope["segmented"], out["segment"])
    assert [r.bbox for r in scope["regions"]] == [r.bbox for r in out["regions"]]
    assert scope["recognised"] == out["recognise"]
    assert [h.path for h in scope["retrieved"]] == [h.path for h in out["retrieve"]] and len(out["retrieve"]) == 3
    assert "retrieved = pipeline.retrieve(regions, index, region=1, k=3, mode='cnn')" in p.code()


def test_a_failing_stage_names_itself_and_keeps_the_earlier_outputs(coins):
    p = P.Pipeline.default().replaced("segment", call=Call(segment.local_threshold, "sauvola", window=24))
    with pytest.raises(P.StageError, match="stage 'segment' failed: ValueError") as info:
        p.run(coins)
    assert set(info.value.outputs) == {"image", "enhance"}
    empty = P.Pipeline.default().replaced("segment", call=Call(segment.threshold, 1e9)).run(coins)
    assert empty["regions"] == [] and empty["recognise"] == []


def test_a_stage_can_be_a_recipe_of_several_calls(coins):
    from cnnwidgets.engine.calls import Recipe, Step

    local = Recipe(
        (
            Step("surface", Call(segment.local_threshold, "sauvola", window=25)),
            Step("result", Call(segment.threshold, Ref("surface"))),
        )
    )
    p = P.Pipeline.default().replaced("segment", call=local)
    out = p.run(coins)
    enhanced = enhance.frequency_filter(coins, shape="butterworth", cutoff=0.15, order=2.0)
    np.testing.assert_array_equal(out["segment"], enhanced > segment.local_threshold(enhanced, "sauvola", window=25))
    scope = {"image": coins}
    exec(p.code(), scope)
    np.testing.assert_array_equal(scope["segmented"], out["segment"])
    assert "surface = segment.local_threshold(enhanced, 'sauvola', window=25)" in p.code()
