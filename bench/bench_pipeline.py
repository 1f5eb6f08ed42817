"""Benchmark the Pipeline widget: time from an upstream control change to the last stage's picture.

Case: the coins sample enlarged to 512 px on its long side (24 regions), EfficientNet-Lite0 recognition on the CPU.
For each new enhancement cutoff the widget recomputes the filter, the threshold, the regions, the labels of every
crop it has not seen and all pictures (target: < 300 ms); the reference is the same engine calls chained by hand,
with every crop through the network, in the same run.

Usage: ``python bench/bench_pipeline.py [--moves 8]``
"""

import argparse
import json
import statistics
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--moves", type=int, default=8)
    args = ap.parse_args()

    import torch
    from skimage.transform import resize

    from cnnwidgets import Pipeline, datasets
    from cnnwidgets.engine import enhance, models, segment
    from cnnwidgets.engine import pipeline as P

    coins = datasets.sample("coins")
    big = (resize(coins, (405, 512), preserve_range=True, anti_aliasing=True)).astype(np.uint8)
    w = Pipeline(big)
    net = models.shared_model("efficientnet_lite0")
    cutoffs = [round(0.06 + 0.01 * i, 3) for i in range(args.moves)]

    widget_cold, by_hand, warm = [], [], []
    for c in cutoffs:
        t = time.perf_counter()
        w.enhancer.cutoff = c
        widget_cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        enhanced = enhance.frequency_filter(big, shape="butterworth", highpass=False, cutoff=c, order=2.0)
        regions = P.find_regions(segment.threshold(enhanced, "otsu"), big, margin=8, min_area=20)
        models.classify(net, [r.crop for r in regions], topk=3)
        by_hand.append(time.perf_counter() - t)
    for c in cutoffs:  # back to cutoffs already seen: every stage from the cache
        t = time.perf_counter()
        w.enhancer.cutoff = c
        warm.append(time.perf_counter() - t)
    row = {
        "bench": "pipeline",
        "case": "cutoff_move_512_coins",
        "regions": len(w.result["regions"]),
        "widget_new_cutoff_median_ms": round(1e3 * statistics.median(widget_cold), 1),
        "widget_seen_cutoff_median_ms": round(1e3 * statistics.median(warm), 1),
        "engine_by_hand_median_ms": round(1e3 * statistics.median(by_hand), 1),
        "ratio_widget_to_by_hand": round(statistics.median(widget_cold) / statistics.median(by_hand), 2),
        "torch_threads": torch.get_num_threads(),
        "target": "new cutoff < 300 ms",
    }
    print(
        f"pipeline 512 px coins, {row['regions']} regions: new cutoff median {row['widget_new_cutoff_median_ms']} ms "
        f"(by hand {row['engine_by_hand_median_ms']} ms, ratio {row['ratio_widget_to_by_hand']}), "
        f"seen cutoff {row['widget_seen_cutoff_median_ms']} ms  (target < 300 ms)"
    )
    print(json.dumps(row))


if __name__ == "__main__":
    main()
