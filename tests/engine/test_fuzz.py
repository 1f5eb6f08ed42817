"""A fuzzed engine (issue 20): every public engine function driven by hypothesis with hostile inputs.

The property, for every call:

* it returns a result of the documented shape, dtype and kind, and that result is finite (no NaN or
  infinity) wherever the inputs were finite; or
* it raises a :class:`ValueError` or :class:`TypeError` whose message is under 300 characters and names one of
  the arguments it was given (an :class:`~cnnwidgets.io.ImageLoadError` names its source instead: the array's
  shape and dtype, the file).

Anything else fails the test: another exception (``IndexError``, ``ZeroDivisionError``, ``KeyError``,
``MemoryError``, OpenCV's or FAISS's own errors, ``AssertionError``), a ``RuntimeWarning`` (each call runs with
RuntimeWarnings turned into errors, so a NaN made by 0 / 0 or an overflow shows), or a call that runs for more
than :data:`CALL_SECONDS` (a per-call alarm, besides hypothesis' ``deadline``).

NaN and infinity in the input follow one rule in every family (enhance, segment, features, layers, index):
an array argument (an image, a kernel, a response, a list of points or of numbers, query vectors, a dict of
weights) holding NaN or infinity is refused with a ValueError that names it. A non-finite *scalar* parameter is a
parameter out of its bounds like any other: refused, or a finite result where the function gives it a meaning.

Inputs: shapes from 0×0 through 1×N, N×1 and 1×2000 to 40×40, with 1 to 4 channels, NumPy, torch (channels
first), PIL and batches; dtypes bool, int8, uint8, uint16, int32, int64, float16, float32 and float64, with
patterns from constant to the dtype's full range (floats within ±1e4); parameters at, inside and beyond their
documented bounds and of the wrong type.

Profiles (the settings of every test below):

* ``engine-fuzz`` (the default, in ``make test-unit``): 100 examples per function (20 for the tests that run a
  model or build a vocabulary), about 20–45 s in all; ``derandomize=True`` so every run tries the same cases, no
  example database.
* ``fuzz`` (``make fuzz``, ``HYPOTHESIS_PROFILE=fuzz``): many more examples (``FUZZ_EXAMPLES`` per function,
  default 2000), random, with hypothesis' database in ``.hypothesis/`` (git-ignored) so that a failure found once
  is replayed first.

``pytest tests/engine/test_fuzz.py --hypothesis-show-statistics`` counts the cases tried. ``fuzz_log.md``, beside
this file, lists the bugs found and their fixes.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import os
import signal
import warnings
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from cnnwidgets.engine import enhance, features, layers, segment
from cnnwidgets.io import ImageLoadError

# ============================================================================ profiles

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "engine-fuzz",
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=10),
    suppress_health_check=_HEALTH,
    print_blob=False,
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "2000")),
    derandomize=False,
    deadline=timedelta(seconds=10),
    suppress_health_check=_HEALTH,
    print_blob=True,
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "engine-fuzz")
FUZZ = settings.get_profile(PROFILE if PROFILE in ("engine-fuzz", "fuzz") else "engine-fuzz")
#: Settings of the tests that run a model or build a vocabulary: a fifth of the examples.
FEW = settings(FUZZ, max_examples=max(3, FUZZ.max_examples // 5))

CALL_SECONDS = 10
"""The longest one engine call may run."""

# ============================================================================ running one call


class Hang(Exception):
    """A call ran for more than :data:`CALL_SECONDS`."""


@contextlib.contextmanager
def time_limit(seconds: float):
    def alarm(signum, frame):
        raise Hang(f"the call ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    value: object = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _nonfinite(value) -> bool:
    """Whether an array-like argument holds NaN or infinity (scalars do not count; see the module docstring)."""
    if isinstance(value, torch.Tensor):
        return bool(value.is_floating_point() and value.numel() and not torch.isfinite(value).all())
    if isinstance(value, dict):
        return any(_nonfinite(v) or (isinstance(v, float) and not math.isfinite(v)) for v in value.values())
    if isinstance(value, (list, tuple)):
        if any(isinstance(v, (np.ndarray, torch.Tensor, list, tuple)) and _nonfinite(v) for v in value):
            return True
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            return False
        return bool(arr.size and not np.isfinite(arr).all())
    if isinstance(value, np.ndarray):
        return bool(value.dtype.kind in "fc" and value.size and not np.isfinite(value).all())
    return False


def run(fn, *args, **kwargs) -> Outcome:
    """Call ``fn``; an accepted error (see the module docstring) is returned, everything else fails the test."""
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        bound = dict(kwargs)
    names = [n for n in bound if n != "self"]
    for n, v in bound.items():
        if n in ("kwargs", "options") and isinstance(v, dict):
            names += list(v)
    bad_input = [n for n, v in bound.items() if _nonfinite(v)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            with time_limit(CALL_SECONDS):
                value = fn(*args, **kwargs)
        except (ValueError, TypeError) as exc:
            msg = str(exc)
            note(f"{type(exc).__name__}: {msg}")
            assert len(msg) < 300, f"{fn.__name__}: message of {len(msg)} characters: {msg[:400]}"
            if not isinstance(exc, ImageLoadError):
                assert any(n in msg for n in names), f"{fn.__name__}: {msg!r} names none of {names}"
            out = Outcome(error=exc)
        else:
            out = Outcome(value=value)
    if bad_input:
        assert not out.ok and isinstance(out.error, ValueError), (
            f"{fn.__name__}: NaN/inf in {bad_input} was not refused with a ValueError ({out.error!r})"
        )
    return out


# ============================================================================ checking results


def as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def assert_finite(x, what="result"):
    a = as_numpy(x)
    if a.dtype.kind in "fc":
        assert np.isfinite(a).all(), f"{what} holds NaN or infinity ({np.count_nonzero(~np.isfinite(a))} values)"


def assert_like(out, image, *, shape=None, dtype=None, lo=None, hi=None):
    """``out`` is of ``image``'s kind (torch for torch, NumPy otherwise), has ``shape`` (default ``image``'s) and
    ``dtype`` (a NumPy dtype, compared for torch too), is finite and lies in [lo, hi]."""
    if isinstance(image, torch.Tensor):
        assert isinstance(out, torch.Tensor), f"torch in, {type(out).__name__} out"
    else:
        assert isinstance(out, np.ndarray), f"NumPy in, {type(out).__name__} out"
        image = as_numpy(image)  # a PIL image gives NumPy
    a = as_numpy(out)
    want = tuple(image.shape) if shape is None else tuple(shape)
    assert a.shape == want, f"shape {a.shape}, expected {want}"
    if dtype is not None:
        assert a.dtype == np.dtype(dtype), f"dtype {a.dtype}, expected {np.dtype(dtype)}"
    assert_finite(a)
    if a.size and lo is not None:
        assert a.min() >= lo, f"minimum {a.min()} below {lo}"
    if a.size and hi is not None:
        assert a.max() <= hi, f"maximum {a.max()} above {hi}"


def np_dtype(x) -> np.dtype:
    """The NumPy dtype of an array or tensor."""
    return as_numpy(x).dtype


# ============================================================================ inputs

NAN, INF = float("nan"), float("inf")
DTYPES = tuple(
    np.dtype(d) for d in (bool, np.int8, np.uint8, np.uint16, np.int32, np.int64, np.float16, np.float32, np.float64)
)
PATTERNS = ("noise", "wide", "constant", "binary", "ramp", "extremes", "sparse")
FLOAT_SPAN = 1e4
#: Wrong-type and non-finite values mixed into every parameter's strategy.
ODD_SCALARS = (None, "3", True, NAN, INF, -INF, [3], 1e300, -(2**63))


def make_array(shape, dtype, pattern: str, seed: int) -> np.ndarray:
    """An array of ``shape`` and ``dtype`` filled by ``pattern`` (see :data:`PATTERNS`), from ``seed``."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    n = int(np.prod(shape))
    if dt.kind == "b":
        if pattern == "constant":
            return np.full(shape, bool(seed % 2))
        return rng.random(shape) < (0.05 if pattern == "sparse" else 0.5)
    if dt.kind in "ui":
        info = np.iinfo(dt)
        lo, hi = int(info.min), int(info.max)
        small_hi = min(hi, 255)
        small_lo = max(lo, 0)
        if pattern == "noise":
            a = rng.integers(small_lo, small_hi, size=shape, endpoint=True)
        elif pattern == "wide":
            a = rng.integers(lo, hi, size=shape, endpoint=True, dtype=dt)
        elif pattern == "constant":
            a = np.full(shape, rng.integers(lo, hi, endpoint=True, dtype=dt))
        elif pattern == "binary":
            a = rng.choice(np.array([small_lo, small_hi], dtype=dt), size=shape)
        elif pattern == "ramp":  # (64-bit: within ±2**62, which float64 holds exactly)
            top, bottom = (float(hi), float(lo)) if dt.itemsize < 8 else (2.0**62, -(2.0**62) if lo else 0.0)
            a = np.linspace(bottom, top, n).reshape(shape) if n else np.zeros(shape)
        elif pattern == "extremes":
            a = rng.choice(np.array([lo, hi, 0, 1], dtype=dt), size=shape)
        else:
            a = np.zeros(shape, dt)
            if n:
                a.flat[rng.integers(0, n, size=max(1, n // 20))] = rng.integers(lo, hi, endpoint=True, dtype=dt)
        return np.asarray(a).astype(dt)
    span = min(FLOAT_SPAN, float(np.finfo(dt).max) / 4)
    if pattern == "noise":
        a = rng.random(shape)
    elif pattern == "wide":
        a = rng.uniform(-span, span, size=shape)
    elif pattern == "constant":
        a = np.full(shape, rng.uniform(-2, 2))
    elif pattern == "binary":
        a = (rng.random(shape) < 0.5).astype(np.float64)
    elif pattern == "ramp":
        a = np.linspace(0.0, 1.0, n).reshape(shape) if n else np.zeros(shape)
    elif pattern == "extremes":
        a = rng.choice(np.array([-span, span, 0.0, 1.0, 1e-30, -1e-30]), size=shape)
    else:
        a = np.zeros(shape)
        if n:
            a.flat[rng.integers(0, n, size=max(1, n // 20))] = rng.uniform(-span, span)
    return a.astype(dt)


def spoil(arr: np.ndarray, seed: int) -> np.ndarray:
    """A copy of a float array with a few NaN / ±inf values."""
    rng = np.random.default_rng(seed)
    out = arr.copy()
    k = max(1, out.size // 50)
    out.flat[rng.integers(0, out.size, size=k)] = rng.choice(np.array([np.nan, np.inf, -np.inf]), size=k)
    return out


SMALL = st.tuples(st.integers(1, 40), st.integers(1, 40))
THIN = st.one_of(st.tuples(st.just(1), st.integers(1, 300)), st.tuples(st.integers(1, 300), st.just(1)))
EXTREME = st.sampled_from([(1, 2000), (2000, 1), (2, 1000), (3, 700), (1, 1)])
EMPTY = st.sampled_from([(0, 0), (0, 5), (5, 0)])


def plane_shapes(*, empty=True):
    parts = [SMALL, SMALL, SMALL, THIN, EXTREME]
    return st.one_of(*parts, EMPTY) if empty else st.one_of(*parts)


@st.composite
def arrays(draw, *, shape=None, dtypes=DTYPES, nonfinite=True, patterns=PATTERNS):
    """A NumPy array of ``shape`` (drawn from ``shape`` when it is a strategy)."""
    shape = draw(shape) if isinstance(shape, st.SearchStrategy) else shape
    dtype = draw(st.sampled_from(dtypes))
    arr = make_array(shape, dtype, draw(st.sampled_from(patterns)), draw(st.integers(0, 2**32 - 1)))
    if nonfinite and dtype.kind == "f" and arr.size and draw(st.integers(0, 9)) == 0:
        arr = spoil(arr, draw(st.integers(0, 2**32 - 1)))
    return arr


def describe(x) -> str:
    if isinstance(x, (np.ndarray, torch.Tensor)):
        a = as_numpy(x)
        kind = "torch" if isinstance(x, torch.Tensor) else "numpy"
        rng = f", range [{a.min()}, {a.max()}]" if a.size and a.dtype.kind != "b" else ""
        return f"{kind} {tuple(a.shape)} {a.dtype}{rng}"
    return repr(x)


@st.composite
def images(
    draw,
    *,
    channels=(None, 1, 2, 3, 4),
    dtypes=DTYPES,
    layouts=("numpy", "numpy", "numpy", "torch"),
    empty=True,
    nonfinite=True,
    shape=None,
):
    """An image: H×W or H×W×C NumPy, H×W or C×H×W torch, (layout "batch") N×C×H×W NumPy, or (layout "pil",
    for uint8 gray, RGB and RGBA; NumPy otherwise) a PIL image."""
    hw = draw(shape if shape is not None else plane_shapes(empty=empty))
    c = draw(st.sampled_from(channels))
    layout = draw(st.sampled_from(layouts))
    if layout == "batch":
        full = (draw(st.integers(1, 2)), c or 1, *hw)
    else:
        full = hw if c is None else (*hw, c)
    arr = draw(arrays(shape=full, dtypes=dtypes, nonfinite=nonfinite))
    if layout == "torch":
        t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(arr, -1, 0) if arr.ndim == 3 else arr))
        note(f"image: {describe(t)}")
        return t
    if layout == "pil" and arr.dtype == np.uint8 and arr.size and (arr.ndim == 2 or arr.shape[2] in (3, 4)):
        from PIL import Image

        note(f"image: PIL {describe(arr)}")
        return Image.fromarray(arr)
    note(f"image: {describe(arr)}")
    return arr


def param(good, *edges, odd=True):
    """A parameter: ``good`` values, the given edge values, and (``odd``) wrong types and non-finite numbers."""
    parts = [good, good]
    if edges:
        parts.append(st.sampled_from(edges))
    if odd:
        parts.append(st.sampled_from(ODD_SCALARS))
    return st.one_of(*parts)


@pytest.fixture(scope="module", autouse=True)
def _warm():
    """Import the heavy libraries once, so the first example's time is not spent on imports."""
    import cv2  # noqa: F401
    import skimage.feature  # noqa: F401
    import skimage.segmentation  # noqa: F401

    enhance.frequency_filter(np.zeros((4, 4), np.float32))
    segment.edges(np.zeros((4, 4), np.float32))
    yield


# ============================================================================ enhance

CUTOFF = param(st.floats(0.001, 0.5), 0, -0.1, 0.5, 0.5000001, 1, 2, 100)
ORDER = param(st.floats(0.1, 12), 0, -1, 1e-9, 100, 1e6)
WIDTH = param(st.none() | st.floats(0.001, 0.5), 0, -0.1, 1, 10)
#: The filter's keywords, shared by frequency_filter, frequency_mask and radial_profile.
FILTER = dict(highpass=st.booleans(), cutoff=CUTOFF, order=ORDER, width=WIDTH)
ENHANCE_IMAGES = images(layouts=("numpy", "numpy", "torch", "batch", "pil"))


@FUZZ
@given(
    image=ENHANCE_IMAGES,
    shape=st.sampled_from(enhance.FILTER_SHAPES + ("bogus",)),
    **FILTER,
    precomputed=st.booleans(),
)
def test_frequency_filter(image, shape, highpass, cutoff, order, width, precomputed):
    kw = dict(shape=shape, highpass=highpass, cutoff=cutoff, order=order, width=width)
    if precomputed:
        f = run(enhance.fourier, image)
        if not f.ok:
            return
        assert isinstance(f.value, enhance.Fourier)
        r = run(enhance.frequency_filter, f.value, **kw)
    else:
        r = run(enhance.frequency_filter, image, **kw)
    if r.ok:
        assert_like(r.value, image, dtype=np.float32)


@FUZZ
@given(
    shape_hw=param(
        st.tuples(st.integers(1, 64), st.integers(1, 64)), (0, 4), (4, -1), (3,), (2, 3, 4), (2.5, 3), "ab", (True, 2)
    ),
    shape=st.sampled_from(enhance.FILTER_SHAPES + ("bogus",)),
    **FILTER,
    centered=st.booleans(),
)
def test_frequency_mask(shape_hw, shape, highpass, cutoff, order, width, centered):
    kw = dict(shape=shape, highpass=highpass, cutoff=cutoff, order=order, width=width, centered=centered)
    r = run(enhance.frequency_mask, shape_hw, **kw)
    if r.ok:
        assert_like(r.value, np.zeros(0), shape=tuple(int(v) for v in shape_hw), dtype=np.float32, lo=0, hi=1)


@FUZZ
@given(
    freq=st.one_of(
        arrays(shape=st.tuples(st.integers(0, 30)), dtypes=DTYPES[1:]),
        arrays(shape=SMALL, dtypes=(np.dtype(np.float64),)),
        st.sampled_from([0.0, 0.1, 0.7, -0.3, NAN, [0.1, 0.2], "x", None]),
    ),
    shape=st.sampled_from(enhance.FILTER_SHAPES),
    **FILTER,
)
def test_radial_profile(freq, shape, highpass, cutoff, order, width):
    r = run(enhance.radial_profile, freq, shape=shape, highpass=highpass, cutoff=cutoff, order=order, width=width)
    if r.ok:
        value = np.asarray(r.value) if np.ndim(freq) == 0 else r.value  # a number in, a NumPy scalar out
        assert_like(value, np.asarray(freq, dtype=np.float64), dtype=np.float64, lo=0, hi=1)


@FUZZ
@given(image=ENHANCE_IMAGES, mean=st.booleans())
def test_spectrum(image, mean):
    r = run(enhance.spectrum, image, mean_over_channels=mean)
    if r.ok:
        want = tuple(as_numpy(image).shape)
        if mean and len(want) == 3:
            want = want[1:] if isinstance(image, torch.Tensor) else want[:2]
        assert_like(r.value, image, shape=want, dtype=np.float32, lo=0)


CENTERS = st.one_of(
    st.lists(st.tuples(st.floats(-0.5, 0.5), st.floats(-0.5, 0.5)), max_size=4),
    st.sampled_from([[], [(0.6, 0.0)], [(0.1,)], [(0.1, 0.2, 0.3)], [(NAN, 0.1)], [(0.0, 0.0)], 0.1, None, "ab"]),
    st.sampled_from([np.zeros((0, 2)), np.array([0.1, 0.2]), np.array([[0.1, 0.1], [0.2, 0.25]])]),
)


@FUZZ
@given(
    image=ENHANCE_IMAGES,
    centers=CENTERS,
    radius=param(st.floats(0.001, 0.3), 0, -0.1, 10),
    order=ORDER,
)
def test_notch_filter(image, centers, radius, order):
    r = run(enhance.notch_filter, image, centers=centers, radius=radius, order=order)
    if r.ok:
        assert_like(r.value, image, dtype=np.float32)


@FUZZ
@given(
    image=ENHANCE_IMAGES,
    cutoff=CUTOFF,
    gamma_low=param(st.floats(0, 2), -1, 0, 10),
    gamma_high=param(st.floats(0.5, 4), 0, 20, 100),
    sharpness=param(st.floats(0.1, 5), 0, -1, 1e6),
    rescale=st.booleans(),
)
def test_homomorphic_filter(image, cutoff, gamma_low, gamma_high, sharpness, rescale):
    r = run(
        enhance.homomorphic_filter,
        image,
        cutoff=cutoff,
        gamma_low=gamma_low,
        gamma_high=gamma_high,
        sharpness=sharpness,
        rescale=rescale,
    )
    if r.ok:
        assert_like(r.value, image, dtype=np.float32, **({"lo": 0, "hi": 1} if rescale else {}))


SIZE = param(st.integers(1, 9), -3, 0, 2, 4, 31, 2.0, 3.5)


@FUZZ
@given(image=ENHANCE_IMAGES, size=SIZE)
def test_median(image, size):
    r = run(enhance.median, image, size=size)
    if r.ok:
        assert_like(r.value, image, dtype=np_dtype(image))


WEIGHTS = st.one_of(
    arrays(
        shape=st.tuples(st.sampled_from([1, 3, 5]), st.sampled_from([1, 3, 5])),
        dtypes=(np.dtype(np.int64), np.dtype(np.uint8), np.dtype(bool), np.dtype(np.float64)),
        patterns=("noise", "binary", "constant", "sparse"),
    ),
    st.sampled_from(
        [
            np.ones((2, 3)),
            np.ones(3),
            np.zeros((3, 3)),
            -np.ones((3, 3)),
            np.full((3, 3), 0.5),
            np.full((3, 3), np.nan),
            [[1, 2, 1], [2, 4, 2], [1, 2, 1]],
            "x",
            None,
        ]
    ),
)


@FUZZ
@given(image=ENHANCE_IMAGES, weights=WEIGHTS)
def test_weighted_median(image, weights):
    note(f"weights: {describe(weights)}")
    r = run(enhance.weighted_median, image, weights)
    if r.ok:
        assert_like(r.value, image, dtype=np_dtype(image))


@FUZZ
@given(size=SIZE, center=param(st.integers(1, 10), 0, -1, 1.5))
def test_center_weighted_kernel(size, center):
    r = run(enhance.center_weighted_kernel, size, center)
    if r.ok:
        assert_like(r.value, np.zeros((size, size)), dtype=np.int64, lo=0)


@FUZZ
@given(image=ENHANCE_IMAGES, max_size=param(st.sampled_from([3, 5, 7]), 1, 2, -3, 8, 13))
def test_adaptive_median(image, max_size):
    r = run(enhance.adaptive_median, image, max_size=max_size)
    if r.ok:
        assert_like(r.value, image, dtype=np_dtype(image))


@FUZZ
@given(
    image=ENHANCE_IMAGES,
    sizes=st.one_of(st.lists(st.sampled_from([1, 3, 5, 7]), max_size=3), st.sampled_from([[2], [-1], 3, None, [3.0]])),
    coefficients=st.one_of(
        st.none(),
        st.lists(st.floats(-2, 2), max_size=3),
        st.sampled_from([[NAN], [INF, 1.0], ["a"], 0.5]),
    ),
)
def test_median_combination(image, sizes, coefficients):
    r = run(enhance.median_combination, image, sizes=sizes, coefficients=coefficients)
    if r.ok:
        assert_like(r.value, image, dtype=np.float32)


@FUZZ
@given(
    image=ENHANCE_IMAGES,
    kind=st.sampled_from(enhance.NOISE_KINDS + ("bogus",)),
    amount=param(st.floats(0, 1), 0, 1, 1.5, -0.1, 1e6),
    seed=param(st.none() | st.integers(0, 2**31), -1, 2**64, 2**70),
    frequency=param(st.tuples(st.floats(-0.5, 0.5), st.floats(-0.5, 0.5)), (NAN, 0.1), (0.1,), (0.1, 0.2, 0.3)),
)
def test_add_noise(image, kind, amount, seed, frequency):
    r = run(enhance.add_noise, image, kind=kind, amount=amount, seed=seed, frequency=frequency)
    if r.ok:
        assert_like(r.value, image, dtype=np.float32, lo=0, hi=1)


@st.composite
def image_pairs(draw):
    a = draw(images(layouts=("numpy", "numpy", "torch")))
    how = draw(st.sampled_from(["same", "noisy", "other", "shape"]))
    if how == "same":
        b = a.clone() if isinstance(a, torch.Tensor) else a.copy()
    elif how == "shape":
        b = draw(images(layouts=("numpy",)))
    else:
        arr = as_numpy(a)
        other = make_array(arr.shape, arr.dtype if how == "noisy" else draw(st.sampled_from(DTYPES)), "noise", 1)
        b = torch.from_numpy(other) if isinstance(a, torch.Tensor) else other
    note(f"image_test: {describe(b)}")
    return a, b


DATA_RANGE = param(st.none() | st.floats(0.5, 300), 0, -1, 1e-300, 65535)


@FUZZ
@given(pair=image_pairs(), data_range=DATA_RANGE)
def test_psnr(pair, data_range):
    a, b = pair
    r = run(enhance.psnr, a, b, data_range=data_range)
    if r.ok:
        assert isinstance(r.value, float)
        if r.value == math.inf:  # documented for identical images (identical once scaled, without data_range)
            from cnnwidgets.engine.kinds import to_float

            scale = to_float if data_range is None else np.asarray
            assert np.array_equal(
                np.asarray(scale(as_numpy(a)), np.float64), np.asarray(scale(as_numpy(b)), np.float64)
            )
        else:
            assert math.isfinite(r.value), r.value


@FUZZ
@given(pair=image_pairs(), data_range=DATA_RANGE, win_size=param(st.sampled_from([3, 5, 7]), 1, 2, -1, 9, 41))
def test_ssim(pair, data_range, win_size):
    a, b = pair
    r = run(enhance.ssim, a, b, data_range=data_range, win_size=win_size)
    if r.ok:
        assert isinstance(r.value, float) and math.isfinite(r.value), r.value
        assert -1 - 1e-6 <= r.value <= 1 + 1e-6, r.value


# ============================================================================ segment

SEG_IMAGES = images(layouts=("numpy", "numpy", "numpy", "torch", "pil"))
NBINS = param(st.integers(1, 512), 0, -1, 1, 2, 2.5, 100_000)


def gray_shape(image):
    """H×W of an image as :func:`segment.as_gray` reads it."""
    s = tuple(as_numpy(image).shape)
    if isinstance(image, torch.Tensor) and image.ndim == 3 and s[0] in (1, 3, 4) and s[2] not in (1, 3, 4):
        return s[1:]
    return s[:2]


@FUZZ
@given(image=SEG_IMAGES)
def test_as_gray(image):
    r = run(segment.as_gray, image)
    if r.ok:
        assert_like(r.value, np.zeros(0), shape=gray_shape(image))
        assert r.value.dtype.kind in "uif"


@FUZZ
@given(gray=arrays(shape=plane_shapes()), nbins=NBINS)
def test_histogram(gray, nbins):
    note(f"gray: {describe(gray)}")
    r = run(segment.histogram, gray, nbins=nbins)
    if r.ok:
        counts, centers = r.value
        assert counts.ndim == 1 and counts.shape == centers.shape and counts.dtype == np.float64
        assert_finite(centers, "centers")
        assert counts.sum() == gray.size


@FUZZ
@given(image=SEG_IMAGES, method=st.sampled_from(segment.GLOBAL_METHODS + ("bogus",)), nbins=NBINS)
def test_threshold_value(image, method, nbins):
    r = run(segment.threshold_value, image, method, nbins=nbins)
    if r.ok:
        assert isinstance(r.value, float) and math.isfinite(r.value)


@FUZZ
@given(image=SEG_IMAGES, classes=param(st.integers(2, 5), 1, 6, 0, 2.5), nbins=NBINS)
def test_threshold_values(image, classes, nbins):
    r = run(segment.threshold_values, image, classes=classes, nbins=nbins)
    if r.ok:
        t = r.value
        assert isinstance(t, np.ndarray) and t.dtype == np.float64 and t.shape == (int(classes) - 1,)
        assert_finite(t)
        assert np.all(np.diff(t) > 0), t


@FUZZ
@given(
    image=SEG_IMAGES,
    value=st.one_of(
        st.sampled_from(segment.GLOBAL_METHODS + ("bogus",)),
        st.floats(-1e4, 1e4),
        st.sampled_from([NAN, INF, None, True, [1, 2]]),
        arrays(shape=SMALL, dtypes=(np.dtype(np.float64),)),
    ),
    invert=st.booleans(),
)
def test_threshold(image, value, invert):
    r = run(segment.threshold, image, value, invert=invert)
    if r.ok:
        assert_like(r.value, image, shape=gray_shape(image), dtype=bool)


@FUZZ
@given(
    image=SEG_IMAGES,
    thresholds=st.one_of(
        st.lists(st.floats(-1e4, 1e4), max_size=4).map(sorted),
        st.sampled_from([[3, 1], [NAN], [1, INF], 5.0, None, "ab", [[1, 2]]]),
    ),
)
def test_threshold_classes(image, thresholds):
    r = run(segment.threshold_classes, image, thresholds)
    if r.ok:
        assert_like(r.value, image, shape=gray_shape(image), dtype=np.int32, lo=0, hi=len(thresholds))


@FUZZ
@given(
    image=SEG_IMAGES,
    methods=st.one_of(
        st.just(segment.GLOBAL_METHODS), st.lists(st.sampled_from(segment.GLOBAL_METHODS + ("bogus",)), max_size=3)
    ),
    nbins=NBINS,
)
def test_auto_thresholds(image, methods, nbins):
    r = run(segment.auto_thresholds, image, methods, nbins=nbins)
    if r.ok:
        assert set(r.value) == set(methods)
        assert all(v is None or (isinstance(v, float) and math.isfinite(v)) for v in r.value.values()), r.value


@FUZZ
@given(
    image=SEG_IMAGES,
    thresholds=st.one_of(
        st.dictionaries(st.sampled_from(["otsu", "li", "a"]), st.none() | st.floats(-1e3, 1e3), max_size=3),
        st.sampled_from([{"a": NAN}, {"a": "x"}, [1.0], None, 3.0]),
    ),
    invert=st.booleans(),
)
def test_threshold_each(image, thresholds, invert):
    r = run(segment.threshold_each, image, thresholds, invert=invert)
    if r.ok:
        assert set(r.value) == {k for k, v in thresholds.items() if v is not None}
        for m in r.value.values():
            assert_like(m, image, shape=gray_shape(image), dtype=bool)


WINDOW = param(st.sampled_from([3, 5, 7, 11, 25]), 1, 2, 4, -3, 0, 3.0, 201, 100_001)


@FUZZ
@given(
    image=SEG_IMAGES,
    method=st.sampled_from(segment.LOCAL_METHODS + ("bogus",)),
    window=WINDOW,
    k=param(st.floats(-1, 1), 0, 10),
    offset=param(st.floats(-1, 1), 0, 1e4),
    r=param(st.none() | st.floats(0.1, 200), 0, -1),
)
def test_local_threshold(image, method, window, k, offset, r):
    out = run(segment.local_threshold, image, method, window=window, k=k, offset=offset, r=r)
    if out.ok:
        assert_like(out.value, image, shape=gray_shape(image), dtype=np.float64)


SIGMA = param(st.none() | st.floats(0, 5), 0, -1, 1e-9, 50, 1e4)


@FUZZ
@given(
    image=SEG_IMAGES,
    method=st.sampled_from(segment.EDGE_METHODS + ("bogus",)),
    sigma=SIGMA,
    output=st.sampled_from(["auto", "response", "edges", "bogus"]),
    threshold=param(st.floats(-1, 1), 0, INF),
    low=param(st.none() | st.floats(0, 1), -1, 2),
    high=param(st.none() | st.floats(0, 1), -1, 2),
)
def test_edges(image, method, sigma, output, threshold, low, high):
    r = run(segment.edges, image, method, sigma=sigma, output=output, threshold=threshold, low=low, high=high)
    if r.ok:
        want_bool = output == "edges" or (output == "auto" and method in ("laplace", "log", "canny"))
        assert_like(r.value, image, shape=gray_shape(image), dtype=bool if want_bool else np.float32)


RESPONSES = images(channels=(None, None, None, 3), layouts=("numpy", "numpy", "torch"))


@FUZZ
@given(response=RESPONSES, method=st.sampled_from(segment.EDGE_METHODS + ("bogus",)), threshold=param(st.floats(-1, 1)))
def test_edge_mask(response, method, threshold):
    r = run(segment.edge_mask, response, method, threshold=threshold)
    if r.ok:
        assert_like(r.value, response, dtype=bool)


@FUZZ
@given(response=RESPONSES, threshold=param(st.floats(-1, 1)))
def test_zero_crossings(response, threshold):
    r = run(segment.zero_crossings, response, threshold=threshold)
    if r.ok:
        assert_like(r.value, response, dtype=bool)


SEEDS = st.one_of(
    st.lists(st.tuples(st.integers(-2, 45), st.integers(-2, 45)), max_size=4),
    st.sampled_from([[], [(0.4, 0.6)], [(NAN, 0)], [(0, 0, 0)], [5], None, "ab", np.zeros((0, 2)), [(1e300, 0)]]),
)


@FUZZ
@given(
    image=images(channels=(None, 1, 2, 3, 4)),
    seeds=SEEDS,
    tolerance=param(st.floats(0, 300), 0, -1),
    connectivity=param(st.sampled_from([1, 2]), 0, 3),
)
def test_region_grow(image, seeds, tolerance, connectivity):
    r = run(segment.region_grow, image, seeds, tolerance=tolerance, connectivity=connectivity)
    if r.ok:
        assert_like(r.value, image, shape=gray_shape(image), dtype=np.int32, lo=0, hi=len(seeds))


@st.composite
def markers(draw, image):
    how = draw(st.sampled_from(["none", "labels", "seeds", "odd"]))
    if how == "none":
        return None
    if how == "labels":
        shape = gray_shape(image) if draw(st.booleans()) else (3, 3)
        return draw(arrays(shape=shape, dtypes=(np.dtype(np.int32), np.dtype(np.uint8), np.dtype(bool))))
    if how == "seeds":
        return draw(SEEDS)
    return draw(st.sampled_from([np.full((2, 2), 0.5), 3, "ab", [[NAN, 1.0]]]))


@FUZZ
@given(
    data=st.data(),
    image=SEG_IMAGES,
    sigma=param(st.floats(0, 3), 0, -1, 1e4),
    compactness=param(st.floats(0, 10), 0, -1),
    marker_quantile=param(st.floats(0.01, 0.99), 0, 1, -0.5),
)
def test_watershed(data, image, sigma, compactness, marker_quantile):
    m = data.draw(markers(image))
    note(f"markers: {describe(m)}")
    r = run(segment.watershed, image, m, sigma=sigma, compactness=compactness, marker_quantile=marker_quantile)
    if r.ok:
        assert_like(r.value, image, shape=gray_shape(image), dtype=np.int32, lo=0)


@FUZZ
@given(
    image=images(channels=(None, 1, 3, 4)),
    k=param(st.integers(1, 5), 0, -1, 1000),
    seed=param(st.integers(0, 100), -1, 2**70),
    max_iter=param(st.integers(1, 50), 0, -1),
    sample=param(st.integers(1, 10_000), 0, -1),
)
def test_kmeans_colors(image, k, seed, max_iter, sample):
    r = run(segment.kmeans_colors, image, k, seed, max_iter=max_iter, sample=sample)
    if r.ok:
        labels, centers = r.value
        assert_like(labels, image, shape=gray_shape(image), dtype=np.int32, lo=0, hi=int(k) - 1)
        assert isinstance(centers, np.ndarray) and centers.dtype == np.float32 and centers.shape[0] == int(k)
        assert_finite(centers, "centers")


@FUZZ
@given(image=images(channels=(None, 3)), clusters=param(st.integers(1, 4), 0, -1), seed=param(st.integers(0, 9)))
def test_kmeans_regions(image, clusters, seed):
    r = run(segment.kmeans_regions, image, clusters, seed)
    if r.ok:
        assert_like(r.value, image, shape=gray_shape(image), dtype=np.int32, lo=1, hi=int(clusters))


@st.composite
def masks_for(draw, image):
    shape = gray_shape(image) if draw(st.integers(0, 4)) else (2, 7)
    dtypes = (np.dtype(bool), np.dtype(np.int32), np.dtype(np.uint8), np.dtype(np.int64), np.dtype(np.float32))
    m = draw(arrays(shape=shape, dtypes=dtypes))
    note(f"mask: {describe(m)}")
    return m


@FUZZ
@given(
    data=st.data(),
    image=SEG_IMAGES,
    alpha=param(st.floats(0, 1), 0, 1, -0.1, 1.5),
    color=param(st.tuples(*[st.integers(0, 255)] * 3), (300, 0, 0), (-1, 0, 0), (1, 2), (NAN, 0, 0)),
)
def test_overlay(data, image, alpha, color):
    m = data.draw(masks_for(image))
    r = run(segment.overlay, image, m, alpha=alpha, color=color)
    if r.ok:
        assert_like(r.value, np.zeros(0), shape=(*gray_shape(image), 3), dtype=np.uint8)


@FUZZ
@given(mask=images(channels=(None, None, 3), dtypes=DTYPES), connectivity=param(st.sampled_from([1, 2]), 0, 4))
def test_mask_stats(mask, connectivity):
    r = run(segment.mask_stats, mask, connectivity=connectivity)
    if r.ok:
        s = r.value
        assert set(s) == {"area_fraction", "components", "pixels"}
        assert 0 <= s["area_fraction"] <= 1 and s["components"] >= 0 and s["pixels"] >= 0


@FUZZ
@given(
    image=images(channels=(3, 3, None, 4), dtypes=(np.dtype(np.uint8),) * 4 + DTYPES, layouts=("numpy",)),
    points=SEEDS,
    radius=param(st.integers(0, 5), -1, 100),
    color=param(st.tuples(*[st.integers(0, 255)] * 3), (300, 0, 0), (1, 2)),
)
def test_mark_points(image, points, radius, color):
    before = image.copy()
    r = run(segment.mark_points, image, points, radius=radius, color=color)
    assert np.array_equal(before, image, equal_nan=True), "mark_points changed its input"
    if r.ok:
        assert_like(r.value, image, dtype=np.uint8)


# ============================================================================ features

FEATURE_IMAGES = images(layouts=("numpy", "numpy", "numpy", "torch", "pil"), shape=plane_shapes())
SPACE = st.sampled_from(["hsv", "rgb", "lab"])


def one_or_list(strategy):
    return st.one_of(strategy, strategy, st.lists(strategy, max_size=2))


def assert_descriptor(out, image, dim, *, lo=None, hi=None, unit=False):
    n = (len(image),) if isinstance(image, (list, tuple)) else ()
    assert isinstance(out, np.ndarray) and out.dtype == np.float32, (type(out), getattr(out, "dtype", None))
    assert out.shape == (*n, dim), (out.shape, (*n, dim))
    assert_finite(out)
    if out.size and lo is not None:
        assert out.min() >= lo - 1e-6
    if out.size and hi is not None:
        assert out.max() <= hi + 1e-6
    if unit and out.size:
        norms = np.linalg.norm(out.reshape(-1, dim), axis=1)
        assert np.all((np.abs(norms - 1) < 1e-4) | (norms == 0)), norms


BINS = param(
    st.one_of(st.integers(1, 16), st.tuples(*[st.integers(1, 12)] * 3)), 0, -1, (8, 4), (8.5, 4, 4), 256, 10_000
)


@FUZZ
@given(image=one_or_list(FEATURE_IMAGES), space=SPACE, bins=BINS)
def test_color_histogram(image, space, bins):
    r = run(features.color_histogram, image, space=space, bins=bins)
    if r.ok:
        assert_descriptor(r.value, image, int(np.prod((bins,) * 3 if np.isscalar(bins) else bins)), lo=0, hi=1)


@FUZZ
@given(image=one_or_list(FEATURE_IMAGES), space=SPACE)
def test_color_moments(image, space):
    r = run(features.color_moments, image, space=space)
    if r.ok:
        assert_descriptor(r.value, image, 9, lo=-1, hi=1)


@FUZZ
@given(image=one_or_list(FEATURE_IMAGES), min_fraction=param(st.floats(0.001, 1), 0, 1, 1.5, -0.1, "0.1"))
def test_color_set(image, min_fraction):
    r = run(features.color_set, image, min_fraction=min_fraction)
    if r.ok:
        assert_descriptor(r.value, image, features.HSV_COLORS, lo=0, hi=1)


DISTANCES = st.one_of(
    st.lists(st.integers(1, 9), min_size=1, max_size=4),
    st.sampled_from([[], [0], [-1], [1.5], 3, None, [10**9], [2000]]),
)


@FUZZ
@given(image=one_or_list(FEATURE_IMAGES), distances=DISTANCES)
def test_color_correlogram(image, distances):
    r = run(features.color_correlogram, image, distances=distances)
    if r.ok:
        assert_descriptor(r.value, image, features.RGB_COLORS * len(distances), lo=0, hi=1)


@FUZZ
@given(rgb=images(channels=(3, 3, 3, None, 1, 4), layouts=("numpy",)))
def test_hsv166_rgb64(rgb):
    for fn, top in ((features.hsv166, features.HSV_COLORS - 1), (features.rgb64, features.RGB_COLORS - 1)):
        r = run(fn, rgb)
        if r.ok:
            assert_like(r.value, rgb, shape=rgb.shape[:2], dtype=np.int16, lo=0, hi=top)


POSITIVE = (0, -1, 1.5, "8")


@FUZZ
@given(
    image=one_or_list(FEATURE_IMAGES),
    side=param(st.sampled_from([16, 32, 64]), *POSITIVE, 1, 7),
    orientations=param(st.integers(1, 12), *POSITIVE),
    cell=param(st.sampled_from([4, 8, 16]), *POSITIVE, 1, 100),
    block=param(st.integers(1, 3), *POSITIVE, 10),
)
def test_hog(image, side, orientations, cell, block):
    r = run(features.hog, image, side=side, orientations=orientations, cell=cell, block=block)
    if r.ok:
        blocks = side // cell - block + 1
        assert_descriptor(r.value, image, blocks * blocks * block * block * orientations, lo=0, unit=True)


@FUZZ
@given(
    image=one_or_list(FEATURE_IMAGES),
    side=param(st.sampled_from([32, 64, 128]), *POSITIVE, 30),
    scales=param(st.integers(1, 3), *POSITIVE, 8, 20, 40),
    orientations=param(st.integers(1, 8), *POSITIVE),
    grid=param(st.sampled_from([1, 2, 4]), *POSITIVE, 3),
)
def test_gist(image, side, scales, orientations, grid):
    r = run(features.gist, image, side=side, scales=scales, orientations=orientations, grid=grid)
    if r.ok:
        assert_descriptor(r.value, image, scales * orientations * grid * grid, lo=0, unit=True)


@FUZZ
@given(scales=param(st.integers(1, 4), *POSITIVE, 12, 40), orientations=param(st.integers(1, 8), *POSITIVE))
def test_gabor_bank(scales, orientations):
    r = run(features.gabor_bank, scales=scales, orientations=orientations)
    if r.ok:
        assert len(r.value) == scales
        for k in r.value:
            assert k.dtype == np.complex128 and k.shape[0] == orientations and k.shape[1] == k.shape[2]
            assert np.isfinite(k).all()


@FUZZ
@given(
    image=one_or_list(FEATURE_IMAGES),
    levels=param(st.integers(2, 64), 1, 256, 257, *POSITIVE),
    distances=DISTANCES,
)
def test_glcm(image, levels, distances):
    r = run(features.glcm, image, levels=levels, distances=distances)
    if r.ok:
        assert_descriptor(r.value, image, 16 * len(distances), lo=0, hi=1)


@FUZZ
@given(
    image=FEATURE_IMAGES,
    kind=st.sampled_from(["sift", "orb", "bogus"]),
    max_features=param(st.integers(1, 100), *POSITIVE),
    side=param(st.sampled_from([32, 64, 128]), *POSITIVE),
    enlarge=st.booleans(),
    grid=param(st.none() | st.integers(1, 16), 0, -4),
)
def test_local_features(image, kind, max_features, side, enlarge, grid):
    r = run(features.local_features, image, kind=kind, max_features=max_features, side=side, enlarge=enlarge, grid=grid)
    if r.ok:
        d = r.value
        dim = 128 if kind == "sift" else 256
        assert isinstance(d, np.ndarray) and d.dtype == np.float32 and d.ndim == 2 and d.shape[1] == dim
        assert_finite(d)
        if d.size:
            assert d.min() >= 0 and d.max() <= 1


def descriptor_sets(dim):
    return st.lists(
        st.one_of(
            arrays(shape=st.tuples(st.integers(0, 30), st.just(dim)), dtypes=(np.dtype(np.float32),)),
            arrays(shape=st.tuples(st.integers(0, 5), st.sampled_from([dim - 1, dim + 1])), dtypes=DTYPES),
        ),
        max_size=3,
    )


@functools.lru_cache(maxsize=2)
def vocabulary(kind):
    rng = np.random.default_rng(0)
    dim = 128 if kind == "sift" else 256
    return features.learn_vocabulary([rng.random((40, dim), dtype=np.float32)], kind=kind, size=8, max_descriptors=1000)


@FEW
@given(
    descs=descriptor_sets(128),
    size=param(st.integers(1, 20), 0, -1, 10**6),
    max_descriptors=param(st.integers(1, 100), 0, -1),
    seed=param(st.integers(0, 9), -1),
)
def test_learn_vocabulary(descs, size, max_descriptors, seed):
    note(f"descriptors: {[describe(d) for d in descs]}")
    r = run(features.learn_vocabulary, descs, kind="sift", size=size, max_descriptors=max_descriptors, seed=seed)
    if r.ok:
        v = r.value
        assert v.kind == "sift" and v.centers.dtype == np.float32 and v.centers.ndim == 2
        assert v.centers.shape[1] == 128 and 1 <= v.size <= int(size)
        assert_finite(v.centers, "centers")


@FUZZ
@given(
    descriptors=st.one_of(
        arrays(shape=st.tuples(st.integers(0, 30), st.just(128)), dtypes=(np.dtype(np.float32), np.dtype(np.float64))),
        arrays(shape=st.tuples(st.integers(0, 5), st.sampled_from([1, 127, 256]))),
        st.sampled_from([np.zeros(128), np.zeros((2, 2, 128)), [[0.5] * 128], None, "ab"]),
    )
)
def test_visual_words_and_bovw(descriptors):
    note(f"descriptors: {describe(descriptors)}")
    vocab = vocabulary("sift")
    r = run(features.visual_words, descriptors, vocabulary=vocab)
    if r.ok:
        w = r.value
        assert w.dtype == np.int64 and w.shape == (len(descriptors),)
        assert w.size == 0 or (w.min() >= 0 and w.max() < vocab.size)
    r = run(features.bovw, descriptors, vocabulary=vocab)
    if r.ok:
        assert_descriptor(r.value, None, vocab.size, lo=0, hi=1, unit=True)


@FEW
@given(image=one_or_list(FEATURE_IMAGES), kind=st.sampled_from(["sift", "orb"]), max_features=param(st.integers(1, 50)))
def test_sift_orb_bovw(image, kind, max_features):
    fn = features.sift_bovw if kind == "sift" else features.orb_bovw
    vocab = vocabulary(kind)
    r = run(fn, image, vocabulary=vocab, max_features=max_features)
    if r.ok:
        assert_descriptor(r.value, image, vocab.size, lo=0, hi=1, unit=True)


# ============================================================================ layers (and the CNN descriptor)


@functools.lru_cache(maxsize=1)
def tiny():
    from cnnwidgets.engine import models

    assert "tiny_cnn" in models.list_models()
    torch.manual_seed(0)
    return models.create_model("tiny_cnn", device="cpu")


MODEL_IMAGES = images(shape=plane_shapes(), layouts=("numpy", "numpy", "torch", "pil"))


@FEW
@given(image=one_or_list(MODEL_IMAGES), batch_size=param(st.integers(1, 8), 0, -1))
def test_cnn(image, batch_size):
    model = tiny()
    r = run(features.cnn, image, model=model, batch_size=batch_size, backend="torch")
    if r.ok:
        dim = r.value.shape[-1]
        assert_descriptor(r.value, image, dim, unit=True)


@FUZZ
@given(kinds=st.one_of(st.sampled_from(layers.KINDS), st.lists(st.sampled_from(layers.KINDS + ("bogus",))), st.none()))
def test_layer_names(kinds):
    r = run(layers.layer_names, tiny(), kinds)
    if r.ok:
        assert all(isinstance(n, str) and n for n in r.value)


LAYER = st.one_of(st.sampled_from(["conv1", "features.0", "bogus", "", None, 3, ["bogus"]]), st.just("first"))


def layer_name(layer):
    if layer == "first":
        return layers.layer_names(tiny())[0]
    return layer


@FEW
@given(image=one_or_list(MODEL_IMAGES), layer=LAYER, output=st.booleans())
def test_capture(image, layer, output):
    r = run(layers.capture, tiny(), image, None if layer is None else layer_name(layer), output=output)
    if r.ok:
        acts = r.value[0] if output else r.value
        for a in acts.values():
            assert isinstance(a, np.ndarray) and a.dtype == np.float32
            assert_finite(a)


@FUZZ
@given(layer=LAYER)
def test_kernels(layer):
    r = run(layers.kernels, tiny(), layer_name(layer))
    if r.ok:
        assert r.value.ndim == 4 and r.value.dtype == np.float32
        assert_finite(r.value)


ANY_ARRAYS = st.one_of(
    arrays(shape=st.tuples(st.integers(0, 6), st.integers(0, 12), st.integers(0, 12))),
    arrays(shape=plane_shapes()),
    arrays(shape=st.tuples(st.integers(0, 30))),
    st.sampled_from([5.0, [1, 2, 3], [], None, "ab"]),
)


@FUZZ
@given(x=ANY_ARRAYS, axis=st.sampled_from([None, 0, 1, -1, (1, 2), 5]), eps=param(st.floats(1e-12, 1e-3), 0, -1))
def test_normalize(x, axis, eps):
    note(f"x: {describe(x)}")
    r = run(layers.normalize, x, axis=axis, eps=eps)
    if r.ok:
        assert_like(r.value, np.asarray(x), dtype=np.float32, lo=0, hi=1)


MAPS = st.one_of(
    arrays(shape=st.tuples(st.integers(0, 9), st.integers(0, 10), st.integers(0, 10))),
    arrays(shape=st.tuples(st.integers(0, 5), st.integers(1, 6), st.integers(1, 6), st.sampled_from([1, 3]))),
    arrays(shape=SMALL),
    st.sampled_from([np.zeros(5), None, "ab"]),
)


@FUZZ
@given(
    maps=MAPS,
    columns=param(st.none() | st.integers(1, 5), 0, -2, 100, 1.5),
    pad=param(st.integers(0, 3), -1, -5, 2.5),
    per_map=st.booleans(),
    max_maps=param(st.none() | st.integers(1, 10), 0, -1),
    pad_value=param(st.floats(0, 1), -1, 2),
)
def test_tile(maps, columns, pad, per_map, max_maps, pad_value):
    note(f"maps: {describe(maps)}")
    r = run(layers.tile, maps, columns=columns, pad=pad, per_map=per_map, max_maps=max_maps, pad_value=pad_value)
    if r.ok:
        out = r.value
        assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.ndim in (2, 3)
        assert_like(out, out, lo=0, hi=1)


@FUZZ
@given(
    mosaic=st.tuples(st.integers(-1, 40), st.integers(-1, 40)),
    map_shape=param(st.tuples(st.integers(1, 10), st.integers(1, 10)), (0, 0), (0, 3), (-1, 2), (3,)),
    y=param(st.integers(-2, 45)),
    x=param(st.integers(-2, 45)),
    columns=param(st.none() | st.integers(1, 5), 0, -1),
    count=param(st.none() | st.integers(1, 20), 0, -1),
    pad=param(st.integers(0, 2), -1, -20),
)
def test_tile_index(mosaic, map_shape, y, x, columns, count, pad):
    r = run(layers.tile_index, mosaic, map_shape, y, x, columns=columns, count=count, pad=pad)
    if r.ok:
        i = r.value
        assert i is None or (isinstance(i, int) and i >= 0 and (count is None or i < count)), i


@FUZZ
@given(
    weights=st.one_of(
        arrays(shape=st.tuples(st.integers(0, 8), st.sampled_from([1, 2, 3]), st.integers(0, 5), st.integers(0, 5))),
        st.sampled_from([np.zeros((3, 3)), None]),
    ),
    max_maps=param(st.none() | st.integers(1, 64), 0, -1),
    pad=param(st.integers(0, 2), -1),
)
def test_kernel_mosaic(weights, max_maps, pad):
    note(f"weights: {describe(weights)}")
    r = run(layers.kernel_mosaic, weights, max_maps=max_maps, pad=pad)
    if r.ok:
        assert r.value.dtype == np.float32
        assert_like(r.value, np.zeros(0), shape=r.value.shape, lo=0, hi=1)


@FUZZ
@given(activation=ANY_ARRAYS)
def test_as_maps(activation):
    note(f"activation: {describe(activation)}")
    r = run(layers.as_maps, activation)
    if r.ok:
        out = r.value
        assert isinstance(out, np.ndarray) and out.ndim == 3
        assert_finite(out)


@FUZZ
@given(
    image=arrays(shape=st.one_of(plane_shapes(), st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(1, 4)))),
    side=param(st.integers(1, 512), 0, -5),
)
def test_enlarge(image, side):
    note(f"image: {describe(image)}")
    r = run(layers.enlarge, image, side)
    if r.ok:
        out = r.value
        f = out.shape[0] // image.shape[0]
        assert f >= 1 and out.shape == (f * image.shape[0], f * image.shape[1], *image.shape[2:])


@FUZZ
@given(
    data=st.data(),
    image=images(layouts=("numpy",), shape=plane_shapes()),
    alpha=param(st.floats(0, 1), -0.1, 1.5),
    colormap=st.sampled_from(["jet", "viridis", "bogus", None]),
)
def test_heatmap_overlay(data, image, alpha, colormap):
    heat = data.draw(arrays(shape=st.one_of(SMALL, st.just(image.shape[:2]), EMPTY)))
    note(f"heatmap: {describe(heat)}")
    r = run(layers.heatmap_overlay, image, heat, alpha=alpha, colormap=colormap)
    if r.ok:
        assert_like(r.value, image, shape=(*image.shape[:2], 3), dtype=np.uint8)


@FUZZ
@given(
    logits=st.one_of(
        arrays(shape=st.tuples(st.integers(0, 30)), dtypes=DTYPES[1:]), st.sampled_from([[1.0, 2.0], [], None])
    ),
    k=param(st.integers(0, 12), -1, 10**9),
)
def test_top_classes(logits, k):
    note(f"logits: {describe(logits)}")
    r = run(layers.top_classes, tiny(), logits, k=k)
    if r.ok:
        out = r.value
        assert isinstance(out, list) and len(out) <= max(int(k), 0)
        assert all(isinstance(lbl, str) and 0 <= p <= 1 and math.isfinite(p) for lbl, p in out), out


@FEW
@given(image=MODEL_IMAGES, target=param(st.none() | st.integers(0, 9), -1, 10, 1.5), layer=LAYER)
def test_grad_cam(image, target, layer):
    name = None if layer is None else layer_name(layer)
    r = run(layers.grad_cam, tiny(), image, layer=name, target=target)
    if r.ok:
        g = r.value
        assert g.heatmap.dtype == np.float32 and g.heatmap.ndim == 2
        assert_finite(g.heatmap)
        assert g.heatmap.min() >= 0 and g.heatmap.max() <= 1
        assert math.isfinite(g.probability) and 0 <= g.probability <= 1


@FEW
@given(image=MODEL_IMAGES)
def test_model_view(image):
    r = run(layers.model_view, image, tiny())
    if r.ok:
        assert r.value.dtype == np.uint8 and r.value.ndim == 3


STEP_ARRAYS = st.one_of(
    arrays(shape=st.tuples(st.integers(0, 9), st.integers(0, 9))),
    arrays(shape=st.sampled_from([(1, 60), (60, 1), (3,), (2, 2, 2)])),
    st.sampled_from([[[1, 2], [3, 4]], None, "ab", 5.0]),
)


@FUZZ
@given(
    image=STEP_ARRAYS,
    kernel=STEP_ARRAYS,
    stride=param(st.integers(1, 3), 0, -1, 1.5),
    padding=param(st.integers(0, 3), -1, 1.5),
    bias=param(st.floats(-1, 1)),
    flip=st.booleans(),
)
def test_conv2d_steps(image, kernel, stride, padding, bias, flip):
    note(f"image: {describe(image)}, kernel: {describe(kernel)}")
    r = run(layers.conv2d_steps, image, kernel, stride=stride, padding=padding, bias=bias, flip=flip)
    if r.ok:
        out = r.value.output
        assert out.dtype == np.float64 and out.ndim == 2 and len(r.value.steps) == out.size
        assert_finite(out)


@FUZZ
@given(
    x=st.one_of(ANY_ARRAYS, arrays(shape=SMALL).map(torch.from_numpy)),
    kind=st.sampled_from(list(layers.ACTIVATIONS) + ["bogus"]),
    alpha=param(st.none() | st.floats(-2, 2)),
    grad=st.booleans(),
)
def test_activate(x, kind, alpha, grad):
    note(f"x: {describe(x)}")
    fn = layers.activation_grad if grad else layers.activate
    r = run(fn, x, kind, alpha=alpha)
    if r.ok:
        out = r.value
        assert tuple(out.shape) == tuple(np.shape(as_numpy(x)))
        assert isinstance(out, torch.Tensor) == isinstance(x, torch.Tensor)
        assert_finite(out)


@FUZZ
@given(
    x=STEP_ARRAYS,
    size=param(st.integers(1, 4), 0, -1, 1.5, 100),
    stride=param(st.none() | st.integers(1, 3), 0, -1, 1.5),
    mode=st.sampled_from(["max", "mean", "stochastic", "bogus"]),
    seed=param(st.none() | st.integers(0, 9), -1),
)
def test_pool2d_steps(x, size, stride, mode, seed):
    note(f"x: {describe(x)}")
    r = run(layers.pool2d_steps, x, size=size, stride=stride, mode=mode, seed=seed)
    if r.ok:
        out = r.value.output
        assert out.dtype == np.float64 and out.ndim == 2 and len(r.value.steps) == out.size
        assert_finite(out)


# ============================================================================ index: FAISS vector stores and ImageIndex.search

DIM = 8
N_VECTORS = 80  # enough that FAISS trains its IVF and IVF-PQ cells without a warning


@functools.lru_cache(maxsize=4)
def vector_store(kind: str, metric: str):
    from cnnwidgets.index import vectors

    x = np.random.default_rng(1).standard_normal((N_VECTORS, DIM)).astype(np.float32)
    index = vectors.new_index(kind, DIM, metric, train=x)
    index.add_with_ids(x, np.arange(100, 100 + N_VECTORS, dtype=np.int64))
    return index


QUERIES = st.one_of(
    arrays(shape=st.sampled_from([(DIM,), (1, DIM), (3, DIM)]), dtypes=(np.dtype(np.float32),) * 3 + DTYPES),
    arrays(shape=st.sampled_from([(0, DIM), (DIM - 1,), (1, DIM + 1), (2, 2, DIM), ()])),
    st.sampled_from([None, "ab", [[0.0] * DIM], [0.5] * DIM]),
)
K = param(st.integers(1, 30), 0, -1, 10**9, 2.5, 3.0)


@FUZZ
@given(
    kind=st.sampled_from(["flat", "hnsw", "ivf", "ivfpq"]),
    metric=st.sampled_from(["ip", "l2"]),
    queries=QUERIES,
    k=K,
    allowed=st.one_of(
        st.none(),
        st.lists(st.integers(95, 130), max_size=6).map(lambda v: np.array(v, np.int64)),
        st.sampled_from([np.zeros(0, np.int64), np.array([100.5]), [101, 102], "ab"]),
    ),
)
def test_vector_search(kind, metric, queries, k, allowed):
    from cnnwidgets.index import vectors

    note(f"queries: {describe(queries)}, allowed: {describe(allowed)}")
    index = vector_store(kind, metric)
    r = run(vectors.search, index, queries, k, allowed=allowed)
    if r.ok:
        d, i = r.value
        q = np.atleast_2d(np.asarray(queries))
        assert d.dtype == np.float32 and i.dtype == np.int64 and d.shape == i.shape and d.shape[0] == len(q)
        n = N_VECTORS if allowed is None else len(allowed)
        assert d.shape[1] <= min(int(k), n)
        found = i[i >= 0]
        assert np.all((found >= 100) & (found < 100 + N_VECTORS))
        assert_finite(d[i >= 0], "distances")


@functools.lru_cache(maxsize=1)
def image_index():
    from cnnwidgets.index import ImageIndex

    rng = np.random.default_rng(2)
    pictures = [make_array((12, 16, 3), np.uint8, p, s) for s, p in enumerate(PATTERNS * 2)]
    vecs = {"color": features.color_histogram(pictures), "moments": features.color_moments(pictures)}
    paths = [f"/fuzz/{i}.png" for i in range(len(pictures))]
    tags = [[("cat", float(rng.random())), ("dog", 0.1)] for _ in pictures]
    return ImageIndex.from_vectors(paths, vecs, tags=tags)


@FUZZ
@given(
    image=st.one_of(images(shape=plane_shapes(), layouts=("numpy",)), st.sampled_from([None, "/fuzz/3.png", 5])),
    text=st.sampled_from([None, "", "   "]),
    mode=st.sampled_from(["auto", "color", "moments", "fusion", "cnn", "semantic", "text", "bogus"]),
    k=K,
    weights=st.one_of(
        st.none(),
        st.dictionaries(st.sampled_from(["color", "moments", "text", "x"]), st.floats(0, 2), max_size=2),
        st.sampled_from([{"color": NAN}, {"color": -1.0}, {"color": "a"}, {"color": 0.0, "moments": 0.0}, [1]]),
    ),
    rerank=st.sampled_from([None, "qe", "diffusion", "kreciprocal", "bogus"]),
)
def test_image_index_search(image, text, mode, k, weights, rerank):
    index = image_index()
    r = run(index.search, text=text, image=image, mode=mode, k=k, weights=weights, rerank=rerank)
    if r.ok:
        hits = r.value
        assert isinstance(hits, list) and len(hits) <= min(int(k), len(index))
        assert len({h.path for h in hits}) == len(hits)
        for h in hits:
            assert h.path in index.paths and math.isfinite(h.score), h
            assert all(math.isfinite(v) for v in h.scores.values()), h.scores
