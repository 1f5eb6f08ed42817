"""Benchmark cnnwidgets.engine.segment against scikit-image, and the ThresholdSegmenter's update time.

Cases (one process, ours and the reference alternately, median of repeats):

- Otsu, Sauvola (window 25) and Sobel on a 2048×2048 gray image (uint8, the camera sample tiled), as
  ratio = our time / scikit-image's time (below 1: we are faster).
- Further engine cases on the same image: Otsu on float32, Li, multi-Otsu (3 classes), local Gaussian
  (window 25), Laplacian of Gaussian (sigma 2, against scipy.ndimage.gaussian_laplace).
- The widget's control-to-PNG time at 512×512 (the camera sample): moving the fixed threshold, switching
  the global method, moving the local window, moving the edge smoothing sigma, placing a region-growing seed,
  each until the images are encoded and set (target: under 40 ms).

Prints one line per case and one JSON line per case (prefix ``JSON ``).

    python bench/bench_segment.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

os.environ.setdefault("CNNWIDGETS_DEVICE", "cpu")


def _median_time(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _report(case, **fields):
    line = {"bench": "segment", "case": case, **fields}
    text = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
    print(f"{case}: {text}")
    print("JSON " + json.dumps(line))


def bench_engine(repeat):
    import skimage.filters as skf
    from scipy import ndimage as ndi
    from skimage import data

    from cnnwidgets.engine import segment as S

    img = np.tile(data.camera(), (4, 4))  # 2048×2048 uint8
    imgf = img.astype(np.float32) / 255
    assert img.shape == (2048, 2048)
    cases = {
        "otsu_2048": (lambda: S.threshold_value(img, "otsu"), lambda: skf.threshold_otsu(img)),
        "sauvola_w25_2048": (
            lambda: S.local_threshold(img, "sauvola", window=25),
            lambda: skf.threshold_sauvola(img, window_size=25),
        ),
        "sobel_2048": (lambda: S.edges(img, "sobel"), lambda: skf.sobel(img)),
        # further cases, same image
        "otsu_float_2048": (lambda: S.threshold_value(imgf, "otsu"), lambda: skf.threshold_otsu(imgf)),
        "li_2048": (lambda: S.threshold_value(img, "li"), lambda: skf.threshold_li(img)),
        "multiotsu3_2048": (
            lambda: S.threshold_values(img, classes=3),
            lambda: skf.threshold_multiotsu(img, classes=3),
        ),
        "local_gaussian_w25_2048": (
            lambda: S.local_threshold(img, "gaussian", window=25),
            lambda: skf.threshold_local(img, 25, "gaussian"),
        ),
        "log_sigma2_2048": (
            lambda: S.edges(img, "log", sigma=2.0, output="response"),
            lambda: ndi.gaussian_laplace(img / 255.0, 2.0),
        ),
    }
    for case, (ours, ref) in cases.items():
        # alternate so that load changes on the shared machine hit both alike
        t_ours, t_ref = [], []
        ours(), ref()
        for _ in range(repeat):
            t = time.perf_counter()
            ours()
            t_ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            ref()
            t_ref.append(time.perf_counter() - t)
        mo, mr = statistics.median(t_ours), statistics.median(t_ref)
        _report(case, ours_ms=mo * 1e3, skimage_ms=mr * 1e3, ratio=mo / mr, target="ratio<=1", ok=mo <= mr)


def bench_widget(repeat):
    from skimage import data

    from cnnwidgets import ThresholdSegmenter

    img = data.camera()  # 512×512
    w = ThresholdSegmenter(img)
    w.method = "fixed"
    values = iter(np.linspace(20, 230, 10_000))

    def move_threshold():
        w.value = float(next(values))
        w.wait()

    methods = iter(["otsu", "li", "yen", "triangle", "isodata", "mean"] * 1000)

    def switch_method():
        w.method = next(methods)
        w.wait()

    for case, fn in [("widget_fixed_threshold_512", move_threshold), ("widget_global_method_512", switch_method)]:
        t = _median_time(fn, repeat)
        _report(case, ms=t * 1e3, target="ms<40", ok=t < 0.040)
    w.mode = "local"
    w.local_method = "sauvola"
    windows = iter([15, 17, 19, 21, 23, 25, 27, 29, 31] * 1000)

    def move_window():
        w.window = next(windows)
        w.wait()

    t = _median_time(move_window, repeat)
    _report("widget_local_window_512", ms=t * 1e3, target="ms<40", ok=t < 0.040)
    w.mode = "edges"
    w.edge_method = "sobel"
    sigmas = iter(np.linspace(0.5, 3.0, 10_000))

    def move_sigma():
        w.sigma = float(next(sigmas))
        w.wait()

    t = _median_time(move_sigma, repeat)
    _report("widget_edges_sigma_512", ms=t * 1e3, target="ms<40", ok=t < 0.040)
    w.mode = "regions"
    w.region_method = "grow"
    rng = np.random.default_rng(0)

    def click_seed():
        w.seeds = [[int(rng.integers(0, 512)), int(rng.integers(0, 512))]]
        w.wait()

    t = _median_time(click_seed, repeat)
    _report("widget_region_seed_512", ms=t * 1e3, target="ms<40", ok=t < 0.040)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    bench_engine(args.repeat)
    bench_widget(args.repeat)


if __name__ == "__main__":
    main()
