"""Import hygiene: the engine never pulls in the widget stack, and the package imports fast."""

import subprocess
import sys

import pytest

ENGINE_MODULES = ["cnnwidgets", "cnnwidgets.engine", "cnnwidgets.io", "cnnwidgets.datasets", "cnnwidgets.device"]


def _left_imported(code: str, watched: tuple[str, ...], env: dict | None = None) -> str:
    """Run ``code`` in a fresh interpreter; the modules it has imported, comma-separated, whose top-level package is
    in ``watched`` or whose name starts with an entry of ``watched`` that ends in a dot ("" when none)."""
    probe = (
        f"{code}\nimport sys\nwatched = {watched!r}\nprefixes = tuple(w for w in watched if w.endswith('.'))\n"
        "print(','.join(m for m in sys.modules if m.split('.')[0] in watched or m.startswith(prefixes)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    return out.stdout.strip().rpartition("\n")[2]


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_engine_does_not_import_widgets(module):
    code = (
        f"import importlib; importlib.import_module({module!r})\n"
        "import cnnwidgets.engine as e\n"
        "for name in e.__all__:\n"
        "    try: importlib.import_module('cnnwidgets.engine.' + name)\n"
        "    except ModuleNotFoundError as exc:\n"
        "        if exc.name != 'cnnwidgets.engine.' + name: raise"
    )
    imported = _left_imported(code, ("ipywidgets", "traitlets", "IPython", "anywidget"))
    assert imported == "", f"{module} imported {imported}"


def test_every_public_name_resolves():
    """Every name in ``cnnwidgets.__all__``, widgets included, and every engine module's ``__all__``."""
    import importlib

    import cnnwidgets
    import cnnwidgets.engine as engine

    for name in cnnwidgets.__all__:
        value = getattr(cnnwidgets, name)
        assert value is not None, name
        if name != "__version__":
            assert callable(value), name
    for module in engine.__all__:
        mod = importlib.import_module(f"cnnwidgets.engine.{module}")
        for name in getattr(mod, "__all__", []):
            assert hasattr(mod, name), f"cnnwidgets.engine.{module}.{name}"
    with pytest.raises(AttributeError):
        _ = cnnwidgets.no_such_name


def test_the_package_and_its_widget_registry_import_nothing_heavy():
    """``import cnnwidgets``, the widget names of ``__all__`` and the widget registry import no widget, numpy or torch."""
    code = (
        "import cnnwidgets, cnnwidgets.widgets\n"
        "from cnnwidgets import registry\n"
        "assert set(registry.CLASSES) <= set(cnnwidgets.__all__) and set(cnnwidgets.widgets.__all__) == set(registry.CLASSES)"
    )
    imported = _left_imported(code, ("numpy", "torch", "ipywidgets", "cnnwidgets.widgets."))
    assert imported == "", f"imported {imported}"


# ----------------------------------------------------------------------------- lean kernels (issue 21)

HEAVY = ("torch", "timm", "sentence_transformers", "onnxruntime", "faiss")

_LEAN_CHILD = """
import sys
import numpy as np
from cnnwidgets import FilterDesigner, ThresholdSegmenter, sample
from cnnwidgets.engine import enhance as E, features as Fe, segment as S

w = FilterDesigner(sample("camera"))
w.cutoff, w.order, w.shape, w.highpass, w.band = 0.25, 3.0, "ideal", True, True
for method in ("median", "weighted_median", "adaptive_median", "notch", "homomorphic", "frequency"):
    w.method = method
for noise in ("gaussian", "salt_and_pepper", "speckle", "periodic"):
    w.noise = noise
assert w.status == "", w.status
t = ThresholdSegmenter(sample("coins"))
for method in ("li", "yen", "triangle", "isodata", "mean", "minimum", "multiotsu", "fixed", "otsu"):
    t.method = method
t.mode, t.local_method = "local", "niblack"
t.local_method = "gaussian"
t.mode = "edges"
for method in ("log", "canny", "laplace", "scharr"):
    t.edge_method = method
t.mode, t.region_method, t.seeds = "regions", "grow", [[40, 40]]
t.region_method = "watershed"
t.region_method = "kmeans"
t.mode = "compare"
assert "error" not in t.status.lower(), t.status

rng = np.random.default_rng(0)
gray = (rng.random((40, 48)) * 255).astype(np.uint8)
rgb = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
f = gray.astype(np.float32) / 255
for img in (gray, f, rgb):
    E.frequency_filter(img, cutoff=0.2)
    E.frequency_filter(E.fourier(img), cutoff=0.3, highpass=True)
    E.spectrum(img, mean_over_channels=True)
    E.notch_filter(img, centers=[(0.1, 0.2)])
    E.homomorphic_filter(img)
    E.median(img, size=7)
    E.weighted_median(img, E.center_weighted_kernel(3, 3))
    E.adaptive_median(img, max_size=7)
    E.median_combination(img, sizes=(3, 5))
    for kind in E.NOISE_KINDS:
        E.add_noise(img, kind=kind, amount=0.1, seed=0)
    E.psnr(img, E.median(img, size=3))
    E.ssim(img, E.median(img, size=3))
E.frequency_mask((40, 48), shape="gaussian")
E.radial_profile(np.linspace(0, 0.5, 5))
E.clear_cache()
S.histogram(gray)
S.threshold_value(gray, "li")
S.threshold_values(gray, classes=3)
mask = S.threshold(gray, "otsu")
S.threshold_classes(gray, [80, 160])
S.threshold_each(gray, S.auto_thresholds(gray))
for method in S.LOCAL_METHODS:
    S.threshold(gray, S.local_threshold(gray, method, window=15))
for method in S.EDGE_METHODS:
    S.edges(rgb, method)
S.edge_mask(S.edges(f, "log", output="response"), "log")
S.zero_crossings(S.edges(f, "laplace", output="response"))
S.region_grow(rgb, [(5, 5)], tolerance=30)
S.watershed(gray, [(5, 5), (30, 40)])
S.kmeans_regions(rgb, 3)
S.kmeans_colors(f, 2)
S.overlay(rgb, mask)
S.mask_stats(mask)
S.mark_points(rgb, [(3, 4)])
S.as_gray(rgb)
for fn in (Fe.color_histogram, Fe.color_moments, Fe.color_set, Fe.color_correlogram, Fe.glcm, Fe.hog):
    fn(rgb)
Fe.gist(rgb, side=64, scales=2)
Fe.gist([rgb, gray], side=64, scales=2)
Fe.hsv166(rgb), Fe.rgb64(rgb), Fe.gabor_bank(scales=2)
Fe.local_features(rgb, kind="orb", side=64)

with open("/proc/self/status") as fh:
    hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) // 1024
print("heavy:" + ",".join(m for m in %r if m in sys.modules))
print("vmhwm_mib:", hwm)
"""


def test_classical_widgets_and_engine_import_no_torch():
    """A CPU session of FilterDesigner, ThresholdSegmenter and every classical engine function imports no torch
    (nor timm, sentence-transformers, ONNX Runtime or FAISS), and stays light."""
    import os

    env = {**os.environ, "CNNWIDGETS_DEVICE": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", _LEAN_CHILD % (HEAVY,)], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    heavy, hwm = out.stdout.strip().splitlines()[-2:]
    assert heavy == "heavy:", f"imported {heavy[6:]}"
    assert int(hwm.split()[-1]) < 300, hwm


def test_device_policy_imports_no_torch_for_numpy():
    code = (
        "from cnnwidgets import device\n"
        "assert device.compute_device() is None and device.compute_device(__import__('numpy').zeros(3)) is None\n"
        "device.apply_thread_policy()"
    )
    for value in ("", "cpu"):
        import os

        env = {**os.environ, "CNNWIDGETS_DEVICE": value}
        imported = _left_imported(code, ("torch",), env)
        assert imported == "", (value, imported)


def test_torch_in_torch_out_on_its_device(monkeypatch):
    """The GPU path stays: a tensor in gives a tensor of the same shape on the same device."""
    torch = pytest.importorskip("torch")
    import numpy as np

    from cnnwidgets.engine import enhance, segment

    monkeypatch.delenv("CNNWIDGETS_DEVICE", raising=False)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rng = np.random.default_rng(1)
    img = rng.random((3, 40, 48)).astype(np.float32)
    for dev in devices:
        t = torch.from_numpy(img).to(dev)
        for fn in (
            lambda x: enhance.frequency_filter(x, cutoff=0.2),
            lambda x: enhance.median(x, size=5),
            lambda x: enhance.add_noise(x, amount=0.1, seed=0),
        ):
            out = fn(t)
            assert isinstance(out, torch.Tensor) and out.device == t.device and out.shape == t.shape
        ref = enhance.frequency_filter(img.transpose(1, 2, 0), cutoff=0.2)
        np.testing.assert_allclose(
            enhance.frequency_filter(t, cutoff=0.2).cpu().numpy().transpose(1, 2, 0), ref, atol=1e-5
        )
        g = t[0]
        mask = segment.threshold(g, "otsu")
        assert isinstance(mask, torch.Tensor) and mask.device == g.device and mask.shape == g.shape
        assert mask.dtype == torch.bool
        np.testing.assert_array_equal(mask.cpu().numpy(), segment.threshold(img[0], "otsu"))
        surface = segment.local_threshold(g, "sauvola", window=15)
        assert isinstance(surface, torch.Tensor) and surface.device == g.device and surface.shape == g.shape


def test_model_modules_import_each_other_in_one_order():
    """Inside cnnwidgets.engine.models every import of a sibling module is at module level, and the modules form no
    circle: each imports only modules that do not import it back."""
    import ast
    from pathlib import Path

    import cnnwidgets.engine.models as models

    folder = Path(models.__file__).parent
    siblings = {p.stem for p in folder.glob("*.py")} - {"__init__"}
    graph = {}
    for name in siblings:
        tree = ast.parse((folder / f"{name}.py").read_text(encoding="utf-8"))
        top = {id(node) for node in tree.body}
        graph[name] = set()
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level != 1:
                continue
            found = {node.module} if node.module else {a.name for a in node.names}
            assert id(node) in top, f"{name}.py imports {found} inside a function"
            graph[name] |= found & siblings
    done: set = set()
    while len(done) < len(graph):
        ready = {n for n in graph if n not in done and graph[n] <= done}
        assert ready, f"import circle among {sorted(set(graph) - done)}"
        done |= ready
