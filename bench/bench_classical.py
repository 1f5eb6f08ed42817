"""Classical descriptors + SVM against CNN features + a linear head: accuracy and milliseconds per image, one run.

The split of notebook 04: ``shapes(120, seed=1)`` halved (``train.split(..., test=0.5, seed=0)``). Each repeat calls
:func:`cnnwidgets.engine.train.compare_features` with HOG, GIST, SIFT bag of words (50 words), GLCM and the colour
set, each with a linear SVM, and EfficientNet-Lite0 features + a linear head (100 epochs). The model is created
and warmed up (one embedding call) before the first repeat, so no repeat pays for loading it.

One JSON line per method: test accuracy (the same in every repeat: seeded, CPU), the median over repeats of the
milliseconds per test image (the descriptor and the classifier, or the CNN forward pass and the head) and of the
fit seconds, and the ratio of the median ms per image to the CNN's, measured in the same run. Quote medians and
ratios: absolute times on a shared machine mean little.

Usage: ``python bench/bench_classical.py [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

os.environ.setdefault("CNNWIDGETS_DEVICE", "cpu")
FEATURES = ("hog", "gist", "sift", "glcm", "color_set")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from cnnwidgets import datasets
    from cnnwidgets.engine import models, train

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    lite0 = models.create_model("efficientnet_lite0")
    tr, te = train.split(datasets.shapes(120, seed=1), test=0.5, seed=0)
    models.embed(lite0, list(te.images[:8]))
    runs = [
        train.compare_features(tr, te, features=FEATURES, options={"sift": {"vocabulary": 50}}, model=lite0, seed=0)
        for _ in range(args.repeats)
    ]
    cnn_ms = statistics.median(run[-1]["ms_per_image"] for run in runs)
    for i, row in enumerate(runs[0]):
        ms = statistics.median(run[i]["ms_per_image"] for run in runs)
        accuracies = {run[i]["accuracy"] for run in runs}
        print(
            json.dumps(
                {
                    "case": "shapes120",
                    "method": row["method"],
                    "accuracy": row["accuracy"],
                    "same_accuracy_every_repeat": len(accuracies) == 1,
                    "ms_per_image_median": round(ms, 2),
                    "fit_seconds_median": round(statistics.median(run[i]["fit_seconds"] for run in runs), 2),
                    "ratio_to_cnn": round(ms / cnn_ms, 3),
                    "n_train": row["n_train"],
                    "n_test": row["n_test"],
                    "repeats": args.repeats,
                    "load_average": load,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
