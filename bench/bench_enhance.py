"""Benchmark cnnwidgets.engine.enhance and the FilterDesigner against the reference libraries.

Runs ours and the reference in one process on the same input, alternating, and prints per case the
median times, the ratio and one JSON line. Cases:

* butterworth: 1024×1024 RGB, float32 and uint8 input, ``frequency_filter`` vs ``skimage.filters.butterworth``
  (target: ours ≥ 4× faster).
* median: 5×5 on 1024×1024 RGB uint8 vs ``cv2.medianBlur`` (target: within 1.2×) and
  ``scipy.ndimage.median_filter`` (target: ≥ 10× faster).
* widget: time from setting ``FilterDesigner.cutoff`` to new result PNG bytes on a 512×512 RGB image
  (target: median < 40 ms).
* memory: peak memory of a fresh process that loads a 24-megapixel RGB JPEG into a FilterDesigner, moves the
  cutoff on the preview and computes the full-resolution result (target: < 2 GB): anonymous memory (heap, NumPy,
  torch and OpenCV buffers; ``RssAnon`` sampled every 2 ms), and for reference the peak RSS from ``getrusage``,
  which also counts mapped pages of torch's shared libraries (200+ MB more in a freshly installed venv), and tracemalloc.

Usage: ``python bench/bench_enhance.py [--quick] [--skip-memory]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("CNNWIDGETS_DEVICE", "cpu")


def _times(fn, repeats):
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def compare(case, ours, ref, repeats, ref_name, target=None):
    """Alternate ours and the reference; print medians, the ratio ref/ours (> 1: ours faster)."""
    ours()
    ref()
    t_ours, t_ref = [], []
    for _ in range(repeats):
        t_ours += _times(ours, 1)
        t_ref += _times(ref, 1)
    mo, mr = statistics.median(t_ours), statistics.median(t_ref)
    row = {
        "case": case,
        "reference": ref_name,
        "ours_ms": round(mo * 1e3, 2),
        "reference_ms": round(mr * 1e3, 2),
        "speedup": round(mr / mo, 2),
        "repeats": repeats,
        "target": target,
    }
    print(
        f"{case:<28} ours {mo * 1e3:8.2f} ms   {ref_name:<28} {mr * 1e3:8.2f} ms   speed-up {mr / mo:6.2f}×  (target {target})"
    )
    print(json.dumps(row))
    return row


def bench_butterworth(repeats):
    import cv2
    from skimage import data, filters

    from cnnwidgets.engine import enhance

    u8 = cv2.resize(data.astronaut(), (1024, 1024), interpolation=cv2.INTER_LINEAR)
    rows = []
    # float32 input: both compute in single precision; uint8 input (how images arrive): scikit-image
    # converts to float64, we to float32
    for label, img in (("f32", u8.astype(np.float32) / 255), ("u8", u8)):
        rows.append(
            compare(
                f"butterworth 1024x1024 RGB {label}",
                lambda img=img: enhance.frequency_filter(img, shape="butterworth", cutoff=0.1, order=2.0),
                lambda img=img: filters.butterworth(
                    img, cutoff_frequency_ratio=0.1, high_pass=False, order=2.0, channel_axis=-1
                ),
                repeats,
                "skimage.filters.butterworth",
                ">= 4x",
            )
        )
    return rows


def bench_median(repeats):
    import cv2
    from scipy import ndimage
    from skimage import data

    from cnnwidgets.engine import enhance

    img = cv2.resize(data.astronaut(), (1024, 1024), interpolation=cv2.INTER_LINEAR)
    ours = lambda: enhance.median(img, size=5)  # noqa: E731
    rows = [
        compare(
            "median 5x5 1024x1024 RGB u8",
            ours,
            lambda: cv2.medianBlur(img, 5),
            repeats,
            "cv2.medianBlur",
            ">= 1/1.2 (0.83x)",
        )
    ]
    rows.append(
        compare(
            "median 5x5 1024x1024 RGB u8",
            ours,
            lambda: ndimage.median_filter(img, size=(5, 5, 1), mode="nearest"),
            max(2, repeats // 5),
            "scipy.ndimage.median_filter",
            ">= 10x",
        )
    )
    return rows


def bench_widget(repeats):
    from cnnwidgets import FilterDesigner
    from cnnwidgets.datasets import sample

    w = FilterDesigner(sample("astronaut"))  # 512×512 RGB
    w.background = False  # synchronous render: the setter returns when the PNG is ready
    values = [0.05 + 0.01 * (i % 20) for i in range(repeats + 3)]
    times = []
    for i, v in enumerate(values):
        before = w.p_result.image.value
        t = time.perf_counter()
        w.cutoff = v
        png = w.p_result.image.value
        dt = time.perf_counter() - t
        if png == before or w.status:
            raise RuntimeError(f"widget did not redraw (status {w.status!r})")
        if i >= 3:  # warm-up
            times.append(dt)
    med = statistics.median(times)
    row = {
        "case": "widget cutoff -> PNG 512x512 RGB",
        "median_ms": round(med * 1e3, 2),
        "p90_ms": round(sorted(times)[int(0.9 * len(times))] * 1e3, 2),
        "repeats": len(times),
        "target": "< 40 ms",
    }
    print(f"{row['case']:<34} median {row['median_ms']:.2f} ms, p90 {row['p90_ms']:.2f} ms   (target < 40 ms)")
    print(json.dumps(row))
    return row


_MEMORY_CHILD = r"""
import json, os, resource, sys, threading, time, tracemalloc
os.environ.setdefault("CNNWIDGETS_DEVICE", "cpu")


def anon_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:")) / 1024


peak_anon, done = [0.0], threading.Event()


def sample():
    while not done.is_set():
        peak_anon[0] = max(peak_anon[0], anon_mb())
        time.sleep(0.002)


threading.Thread(target=sample, daemon=True).start()
import numpy as np, torch, cv2
from cnnwidgets import FilterDesigner
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
base_anon = anon_mb()
tracemalloc.start()
t = time.perf_counter()
w = FilterDesigner(sys.argv[1])
w.background = False
for c in (0.05, 0.1, 0.2):
    w.cutoff = c
preview = w.result.shape
full = w.compute_full()
assert not w.status.startswith("ValueError"), w.status
peak_py = tracemalloc.get_traced_memory()[1]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
done.set()
print(json.dumps({"source": list(w.source.shape), "preview": list(preview), "full": list(full.shape),
                  "peak_anon_mb": round(max(peak_anon[0], anon_mb()), 1), "anon_after_imports_mb": round(base_anon, 1),
                  "peak_rss_mb": round(peak / 1024, 1), "rss_after_imports_mb": round(base / 1024, 1),
                  "tracemalloc_peak_mb": round(peak_py / 2**20, 1), "seconds": round(time.perf_counter() - t, 2)}))
"""


def bench_memory():
    import cv2
    from skimage import data

    img = cv2.resize(data.astronaut(), (6000, 4000), interpolation=cv2.INTER_LINEAR)
    rng = np.random.default_rng(0)
    img = np.clip(img.astype(np.int16) + rng.integers(-8, 9, img.shape, dtype=np.int16), 0, 255).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "photo_24mp.jpg")
        cv2.imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        del img
        proc = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, path], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row = {"case": "memory 24MP RGB preview + full result", **row, "target": "peak anonymous memory < 2048 MB"}
    print(
        f"{row['case']:<34} peak anonymous memory {row['peak_anon_mb']:.0f} MB (after imports {row['anon_after_imports_mb']:.0f} MB); "
        f"peak RSS with shared library pages {row['peak_rss_mb']:.0f} MB (after imports {row['rss_after_imports_mb']:.0f} MB); "
        f"tracemalloc peak {row['tracemalloc_peak_mb']:.0f} MB, {row['seconds']:.1f} s   (target < 2048 MB)"
    )
    print(json.dumps(row))
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--skip-memory", action="store_true", help="skip the 24-megapixel memory case")
    args = ap.parse_args(argv)
    repeats = 5 if args.quick else 15
    import torch

    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, device {os.environ['CNNWIDGETS_DEVICE']}")
    bench_butterworth(repeats)
    bench_median(repeats)
    bench_widget(30 if not args.quick else 10)
    if not args.skip_memory:
        bench_memory()


if __name__ == "__main__":
    main()
