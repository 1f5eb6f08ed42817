"""Pipeline widget: the stages' controls drive one chain; result, code, region clicks and failures."""

import numpy as np
import pytest
from skimage import data

from cnnwidgets import Pipeline
from cnnwidgets.engine import enhance, segment
from cnnwidgets.engine import pipeline as P


@pytest.fixture(scope="module")
def bench():
    return Pipeline()


def _exec(code, image, index=None):
    scope = {"image": image, "index": index}
    exec(code, scope)
    return scope


def test_default_chain_on_coins_matches_the_engine_and_its_code(bench):
    coins = data.coins()
    out = bench.result
    enhanced = enhance.frequency_filter(coins, shape="butterworth", highpass=False, cutoff=0.1, order=2.0)
    np.testing.assert_array_equal(out["enhance"], enhanced)
    np.testing.assert_array_equal(out["segment"], segment.threshold(enhanced, "otsu"))
    assert len(out["regions"]) == 24 and len(out["recognise"]) == 24
    scope = _exec(bench.code, bench.working_image)
    assert [r.bbox for r in scope["regions"]] == [r.bbox for r in out["regions"]]
    assert scope["recognised"] == out["recognise"]
    assert len(bench.regions_gallery.items) == 24 and bench.regions_gallery.items[0]["thumb"].startswith("data:")
    assert bench.p_mask.image.value[:4] == b"\x89PNG" and "24 regions" in bench.status


def test_stage_controls_change_downstream_stages(bench):
    before = bench.result
    bench.enhancer.cutoff = 0.05
    after = bench.result
    assert not np.array_equal(before["enhance"], after["enhance"])
    assert "cutoff=0.05" in bench.code
    bench.segmenter.mode = "local"
    assert "segment.local_threshold(enhanced, 'sauvola'" in bench.code
    scope = _exec(bench.code, bench.working_image)
    np.testing.assert_array_equal(scope["segmented"], bench.result["segment"])
    bench.enhance_on = False
    assert "enhanced =" not in bench.code and "local_threshold(image," in bench.code
    bench.enhance_on = True
    bench.segmenter.mode = "global"
    bench.enhancer.cutoff = 0.1


def test_a_failing_stage_reports_and_keeps_the_earlier_pictures(bench):
    bench.segmenter.mode = "local"
    shown = bench.p_enhanced.image.value
    bench.segmenter.window = 24  # even: local thresholds refuse it
    assert bench.status_kind == "error" and "window must be an odd" in bench.status
    assert bench.p_enhanced.image.value == shown
    bench.segmenter.window = 25
    assert bench.status_kind != "error"
    bench.segmenter.mode = "global"


def test_clicking_a_region_retrieves_it(tmp_path):
    from cnnwidgets.index import ImageIndex

    coins = data.coins()
    paths = []
    for i in range(4):
        p = tmp_path / f"coin{i}.png"
        from PIL import Image

        Image.fromarray(coins[40 * i : 40 * i + 80, 40 * i : 40 * i + 80]).save(p)
        paths.append(str(p))
    index = ImageIndex.build(paths, descriptors=("cnn",), progress=False)
    w = Pipeline(coins, index=index)
    assert len(w.result["retrieve"]) == 4
    w.regions_gallery.clicked = {"path": "region:3", "n": 1}  # what a click in the browser sends
    assert w.region == 3 and "region=3" in w.code
    ref = P.retrieve(w.result["regions"], index, region=3, k=5)
    assert [h.path for h in w.result["retrieve"]] == [h.path for h in ref]
    assert len(w.retrieval_gallery.items) == 4


def test_clicking_a_region_shows_its_labels(bench):
    bench.regions_gallery.clicked = {"path": "region:2", "n": 7}
    top = bench.result["recognise"][2]
    assert bench.region == 2 and top[0][0] in bench.region_info.value
    assert bench.region_panel.array.shape == bench.result["regions"][2].crop.shape
    bench.region = 0
