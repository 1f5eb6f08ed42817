"""Recipes of engine calls: running, rendering as code, reusing cached steps, rescaling pixel lengths."""

import numpy as np
import pytest
from skimage import data

from cnnwidgets.engine import enhance, segment
from cnnwidgets.engine.calls import Call, Computed, Recipe, RecipeCache, Ref, Step


def _exec(code, image):
    scope = {"image": image}
    exec(code, scope)
    return scope["result"]


def test_chain_runs_and_its_code_reproduces_the_result():
    img = data.camera()
    recipe = Recipe(
        (
            Step("noisy", Call(enhance.add_noise, kind="gaussian", amount=0.1, seed=3)),
            Step("result", Call(enhance.frequency_filter, data="noisy", cutoff=0.15000000000000002, order=2.0)),
        )
    )
    out = recipe(img)
    ref = enhance.frequency_filter(enhance.add_noise(img, kind="gaussian", amount=0.1, seed=3), cutoff=0.15 + 2e-17)
    np.testing.assert_array_equal(out, ref)
    code = recipe.code()
    assert code.splitlines()[0] == "from cnnwidgets.engine import enhance"
    assert "noisy = enhance.add_noise(image, kind='gaussian', amount=0.1, seed=3)" in code
    np.testing.assert_array_equal(_exec(code, img), out)


def test_positional_refs_and_computed_values():
    coins = data.coins()
    t = segment.threshold_value(coins, "otsu")
    recipe = Recipe.of(Call(segment.threshold, Computed(t, Call(segment.threshold_value, "otsu")), invert=True))
    assert recipe.code().endswith(
        "result = segment.threshold(image, segment.threshold_value(image, 'otsu'), invert=True)"
    )
    small = coins[::2, ::2]
    np.testing.assert_array_equal(recipe(small), small <= t)  # the value of the full image, not recomputed
    local = Recipe(
        (
            Step("surface", Call(segment.local_threshold, "sauvola", window=25)),
            Step("result", Call(segment.threshold, Ref("surface"))),
        )
    )
    np.testing.assert_array_equal(_exec(local.code(), coins), local(coins))


def test_cache_reuses_unchanged_steps_and_reuse_forms():
    img = data.camera().astype(np.float32) / 255
    calls = []

    def counting(image):
        calls.append(1)
        return enhance.fourier(image)

    cache = RecipeCache(8)
    for cutoff in (0.1, 0.2, 0.1):
        recipe = Recipe.of(Call(enhance.frequency_filter, cutoff=cutoff))
        out = recipe(img, cache=cache, reuse={enhance.frequency_filter: counting})
        np.testing.assert_allclose(out, enhance.frequency_filter(img, cutoff=cutoff), atol=1e-6)
    assert len(calls) == 1  # one forward FFT for three filters
    small = RecipeCache(2)
    for i in range(5):
        small[i] = i
    assert len(small) == 2 and 4 in small and 0 not in small


def test_rescaled_scales_only_pixel_lengths():
    call = Call(segment.local_threshold, "sauvola", window=25, k=0.2)
    assert call.rescaled(0.5, (100, 100)).keywords() == {"window": 13, "k": 0.2}
    grow = Call(segment.region_grow, seeds=[(99, 10)], tolerance=5.0)
    assert grow.rescaled(0.25, (25, 3)).keywords()["seeds"] == [(24, 2)]
    assert call.rescaled(1, (1, 1)) is call


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_floats_render_as_valid_python(value):
    code = Recipe.of(Call(segment.threshold, value)).code()
    compile(code, "<recipe>", "exec")
