import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from make_notebook import exercises, write

EXERCISES = exercises(
    "02",
    [
        ("How many coins did Exercise 1 above count?", "answer = n_coins"),
        (
            "Which threshold method do you pick for the unevenly lit `page`? Answer with a method name.",
            'answer = "sauvola"',
        ),
        ("What is the Otsu threshold of `coins` (0–255)?", 'answer = segment.threshold_value(coins, "otsu")'),
        (
            "Which edge detector gives one-pixel-thin, linked edges? Answer with a name from `segment.EDGE_METHODS`.",
            'answer = "canny"',
        ),
        {
            "task": "The ThresholdSegmenter `ts` below thresholds `coins` at a fixed value. Drag its threshold until "
            "every coin is white and the background black. Then write the value you chose into the answer cell, so "
            "that it is saved with the notebook, and set `answer = ts`.",
            "setup": 'ts = ThresholdSegmenter(coins, method="fixed")\nts',
            "student": "# the threshold you chose, e.g. ts.value = ...\nanswer = None  # your answer here: answer = ts",
            "solution": "ts.value = 105\nanswer = ts",
        },
    ],
)

write(
    "notebooks/02_segmentation.ipynb",
    [
        (
            "md",
            """
# Image segmentation: thresholds, edges and regions

Segmentation separates the pixels of interest (foreground) from the rest (background), or splits an image
into regions. This notebook covers three families of methods and lets you try each in the `ThresholdSegmenter`:

| family | idea | methods here |
|---|---|---|
| **global threshold** | one gray level *t*; foreground where *I(x, y) > t*. *t* is fixed by hand or chosen from the histogram | fixed, Otsu (maximum between-class variance), Li (minimum cross entropy), Yen, triangle, isodata, mean, minimum, multi-Otsu |
| **local (adaptive) threshold** | *t(x, y)* computed in a window around each pixel, for uneven lighting | mean, Gaussian, median, Niblack *m − k·s*, Sauvola *m·(1 + k·(s/R − 1))* |
| **edges** | boundaries are where the gray level changes fast: large first derivative, or a sign change (zero crossing) of the second derivative | Sobel, Prewitt, Scharr, Roberts, Laplace, Laplacian of Gaussian, Canny |
| **regions** | grow or flood regions from seeds, or cluster colours | seeded region growing, watershed, k-means |

All computations live in `cnnwidgets.engine.segment` and follow scikit-image's definitions; the widget only wires
controls to them and shows, in `w.code`, the one call that reproduces what is on screen.
""",
        ),
        (
            "code",
            """
import numpy as np
import matplotlib.pyplot as plt
from scipy import ndimage as ndi
import skimage.filters
from cnnwidgets import ThresholdSegmenter, datasets
from cnnwidgets.engine import segment

coins = datasets.sample("coins")
page = datasets.sample("page")
camera = datasets.sample("camera")
""",
        ),
        (
            "md",
            """
## The widget

* **Global**: the histogram with the threshold line. Pick a method, or click / drag on the histogram to set a
  fixed threshold. Mask and overlay are side by side.
* **Local**: method, window, *k* and offset; the threshold surface is shown as an image.
* **Edges**: operator, Gaussian pre-smoothing σ, and the threshold of the edge mask (Canny: low / high).
* **Regions**: click on the image to place seeds (region growing, watershed), or cluster colours with k-means.
* **Compare all**: every global method on the same image, live.

Large images are processed at display size while you move controls; **Full resolution** computes the full image.
""",
        ),
        (
            "code",
            """
w = ThresholdSegmenter(coins)
w
""",
        ),
        (
            "md",
            "Every control is a trait, so code can drive the widget. After setting a trait call `w.wait()` (updates run in the background).",
        ),
        (
            "code",
            """
w.method = "li"
w.wait()
print(w.status)
print(w.code)
assert abs(w.threshold - skimage.filters.threshold_li(coins)) <= 1
assert np.array_equal(w.result, coins > w.threshold)
""",
        ),
        (
            "code",
            """
# NBVAL_CHECK_OUTPUT
for method in segment.GLOBAL_METHODS:
    print(f"{method:9s} {segment.threshold_value(coins, method):6.1f}")
""",
            "otsu       107.0\nli          94.6\nyen        110.0\ntriangle    80.0\nisodata    107.0\nmean        96.9\nminimum    143.0\n",
        ),
        (
            "md",
            """
## Exercise 1 — count the coins

A global threshold on `coins` is fooled by the bright background at the top (look at the Otsu mask in the widget).
Watershed from two sure markers works: pixels darker than 30 are background, brighter than 150 are coin.
The flooding runs on the gradient magnitude, so region borders fall on the edges.

*Task*: fill the holes of the coin region, label it, and count the objects larger than 300 pixels.
""",
        ),
        (
            "code",
            """
markers = np.zeros(coins.shape, np.int32)
markers[coins < 30] = 1   # sure background
markers[coins > 150] = 2  # sure coin
regions = segment.watershed(coins, markers, sigma=0)
coin_mask = ndi.binary_fill_holes(regions == 2)
labels, n = ndi.label(coin_mask)
sizes = np.bincount(labels.ravel())[1:]
n_coins = int((sizes > 300).sum())
print("coins found:", n_coins)
assert n_coins == 24

plt.figure(figsize=(6, 4)); plt.imshow(segment.overlay(coins, labels)); plt.axis("off"); plt.show()
""",
        ),
        (
            "md",
            """
## Exercise 2 — binarise a page with uneven lighting

`page` is a scanned text page with a shadow on the lower left. Compare Otsu (global) and Sauvola (local, window 25).
Text is dark, so the foreground is *below* the threshold (`invert=True`).

*Task*: measure how much of the shadowed corner each method calls "ink". A good binarisation keeps it low
(text is a small part of any area), as it is on the clean top right.
""",
        ),
        (
            "code",
            """
ink_otsu = segment.threshold(page, "otsu", invert=True)
ink_sauvola = segment.threshold(page, segment.local_threshold(page, "sauvola", window=25), invert=True)
shadow, clean = np.s_[100:, :150], np.s_[:60, 200:]
for name, ink in [("otsu", ink_otsu), ("sauvola", ink_sauvola)]:
    print(f"{name:8s} ink in shadow {ink[shadow].mean():.2f}, in clean part {ink[clean].mean():.2f}")
assert ink_otsu[shadow].mean() > 0.5          # the global threshold blackens the shadow
assert ink_sauvola[shadow].mean() < 0.25      # the local one keeps only the text
assert abs(ink_sauvola[clean].mean() - ink_otsu[clean].mean()) < 0.05

fig, ax = plt.subplots(1, 3, figsize=(14, 3))
for a, im, t in zip(ax, [page, ink_otsu, ink_sauvola], ["page", "Otsu", "Sauvola"]):
    a.imshow(im, cmap="gray"); a.set_title(t); a.axis("off")
plt.show()
""",
        ),
        ("md", "Try it in the widget: the **Local** tab, Sauvola, then move the window and *k*."),
        (
            "code",
            """
wp = ThresholdSegmenter(page, mode="local", local_method="sauvola", window=25, invert=True)
wp
""",
        ),
        (
            "md",
            """
## Edges: first and second derivative

The gradient operators (Sobel, Prewitt, Scharr, Roberts) give the gradient magnitude; the Laplacian and the
Laplacian of Gaussian give a second derivative whose **zero crossings** mark edges; Canny smooths, takes the
gradient, thins it to one pixel (non-maximum suppression) and links edges by hysteresis between two thresholds.
""",
        ),
        (
            "code",
            """
sob = segment.edges(camera, "sobel")
zc = segment.edges(camera, "log", sigma=2.0, threshold=0.02)
can = segment.edges(camera, "canny", sigma=2.0)
assert np.allclose(sob, skimage.filters.sobel(camera), atol=1e-6)
# Canny keeps one-pixel-wide edges, far fewer pixels than a thresholded gradient magnitude
print(f"edge pixels: Sobel > 0.1 {np.mean(sob > 0.1):.3f}, LoG zero crossings {zc.mean():.3f}, Canny {can.mean():.3f}")
assert can.mean() < (sob > 0.1).mean()

fig, ax = plt.subplots(1, 3, figsize=(14, 4.5))
for a, im, t in zip(ax, [sob, zc, can], ["Sobel magnitude", "LoG zero crossings", "Canny"]):
    a.imshow(im, cmap="gray"); a.set_title(t); a.axis("off")
plt.show()
""",
        ),
        (
            "md",
            """
## Regions: growing from a seed, and colour clustering

Region growing starts at a seed and adds connected pixels whose value is within a tolerance of the seed's.
In the widget, click on the image in the **Regions** tab; here we place a seed in a coin of the second row
and compare the grown region with that coin as found by the watershed of exercise 1.
""",
        ),
        (
            "code",
            """
seed = (119, 271)
grown = segment.region_grow(coins, [seed], tolerance=60) == 1
same_coin = labels == labels[seed]
overlap = (grown & same_coin).sum() / grown.sum()
print(f"grown {grown.sum()} pixels, the coin has {same_coin.sum()}, {overlap:.0%} of the grown region lies in it")
assert overlap > 0.95 and 0.7 < grown.sum() / same_coin.sum() <= 1.05

chelsea = datasets.sample("chelsea")
clusters, centers = segment.kmeans_colors(chelsea, 4, seed=0)
print("cluster colours:", centers.round().astype(int).tolist())
assert clusters.shape == chelsea.shape[:2] and set(np.unique(clusters)) == {0, 1, 2, 3}
# every pixel is closest to its own cluster's centre
d = ((chelsea.reshape(-1, 1, 3).astype(np.float32) - centers[None]) ** 2).sum(-1)
assert (d.argmin(1) == clusters.ravel()).mean() > 0.999
plt.figure(figsize=(6, 4)); plt.imshow(centers[clusters].astype(np.uint8)); plt.axis("off"); plt.show()
""",
        ),
        (
            "md",
            "The **Compare all** tab shows what `skimage.filters.try_all_threshold` draws as a static figure, but live:",
        ),
        (
            "code",
            """
wc = ThresholdSegmenter(camera, mode="compare")
wc.wait()
assert set(wc.thresholds) == set(segment.GLOBAL_METHODS)
wc
""",
        ),
        (
            "md",
            """
## Further exercises

1. In the **Global** tab on `camera`, drag the threshold until the coat is foreground and the sky is not. Which automatic
   method comes closest? (The **Compare all** tab helps.)
2. Multi-Otsu with 3 classes on `coins`: what do the classes correspond to?
3. In the **Edges** tab, raise σ for the Laplacian of Gaussian: what happens to the number of zero crossings, and why?
4. Upload a photo of your own and try k-means with 2–6 clusters.
""",
        ),
    ]
    + EXERCISES,
)
