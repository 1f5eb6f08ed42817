"""Slider to picture in a real browser, for one student: JupyterLab, a FilterDesigner on a 512² image, Chromium.

The page itself times each move: a key press on the cutoff slider's handle starts the clock (``keydown``, in the
capture phase) and the result ``<img>``'s ``load`` event (the new picture decoded and laid out) stops it. So the
figure is what the student waits for: the front end's update message, the kernel's filter and PNG, the bytes back
over the WebSocket, and the browser's decode, without the test driver's own round trips.

    python bench/bench_browser_latency.py --moves 40

It prints the median and p95 and a JSON line. Needs Chromium (``make chromium``) and the test extras (Playwright).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))

from harness import CHROMIUM, CHROMIUM_ARGS, Lab  # noqa: E402

RESULT = ".cnnw-filter-designer .cnnw-fd-result img"
HANDLE = ".cnnw-filter-designer .cnnw-fd-cutoff .noUi-handle"

TIMER_JS = """sel => {
    window.__cnnwLatency = []; let t0 = null;
    document.addEventListener('keydown', () => { t0 = performance.now(); }, true);
    document.querySelector(sel).addEventListener('load', () => {
        if (t0 !== null) { window.__cnnwLatency.push(performance.now() - t0); t0 = null; }
    });
}"""


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = next(line for line in text.splitlines() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    return " ".join(f for f in wanted if f in flags) or "none of avx2/avx512/vnni/amx"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--moves", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as root, sync_playwright() as pw:
        os.environ.setdefault("CNNWIDGETS_CACHE_DIR", str(Path(root) / "cache"))
        lab = Lab(Path(root))
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
            page.set_default_timeout(180_000)
            lab.write_notebook(
                "latency.ipynb",
                [
                    "from cnnwidgets import FilterDesigner, sample\nimage = sample('camera')\nassert image.shape == (512, 512)",
                    "w = FilterDesigner(image)\nw",
                ],
            )
            lab.run_notebook(page, "latency.ipynb")
            lab.wait_idle(page)
            page.wait_for_function(
                "sel => { const el = document.querySelector(sel); return el && el.complete && el.naturalWidth > 0; }",
                arg=RESULT,
            )
            page.evaluate(TIMER_JS, RESULT)
            handle = page.locator(HANDLE).first
            handle.focus()
            times = []
            for i in range(args.moves):
                key = "ArrowRight" if (i // 10) % 2 == 0 else "ArrowLeft"  # stays inside the slider's range
                page.keyboard.press(key)
                page.wait_for_function("n => window.__cnnwLatency.length >= n", arg=i + 1, timeout=30_000)
                time.sleep(rng.uniform(0.3, 0.8))
            times = page.evaluate("() => window.__cnnwLatency")
        finally:
            browser.close()
            lab.close()
    row = {
        "bench": "browser_latency",
        "image": "512x512",
        "moves": len(times),
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(sorted(times)[max(0, int(round(0.95 * len(times))) - 1)], 1),
        "max_ms": round(max(times), 1),
        "cpu_flags": cpu_flags(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(
        f"slider → picture in Chromium, FilterDesigner 512²: median {row['median_ms']} ms, p95 {row['p95_ms']} ms "
        f"over {row['moves']} moves (load {row['load_average'][0]})"
    )
    print(json.dumps(row))
    return row


if __name__ == "__main__":
    main()
