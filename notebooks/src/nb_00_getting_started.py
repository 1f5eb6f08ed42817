import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from make_notebook import exercises, write

EXERCISES = exercises(
    "00",
    [
        ("What is the shape of the `coffee` sample? Answer with a tuple.", 'answer = datasets.sample("coffee").shape'),
        (
            'What shape does `io.load_image(..., mode="gray")` give for the chelsea JPEG saved above?',
            'answer = io.load_image(folder / "chelsea.jpg", mode="gray").shape',
        ),
        (
            "Which exception does `io.load_image` raise for a file that is not an image? Answer with the class.",
            """
try:
    io.load_image(folder / "notes.png")
except Exception as err:
    answer = type(err)
""",
        ),
        ("How many classes does `datasets.shapes` draw?", "answer = len(datasets.shapes(16, seed=0).classes)"),
    ],
)

write(
    "notebooks/00_getting_started.ipynb",
    [
        (
            "md",
            """
# Getting started with cnnwidgets

cnnwidgets turns this notebook into a lab bench for image processing and convolutional networks.
Everything here works offline: sample images ship with scikit-image, digits with scikit-learn.

This notebook shows how to

1. list and load the bundled sample images,
2. load your own images from a path, bytes, a NumPy array, a PIL image or a torch tensor,
3. see what happens with a broken file,
4. get labelled sets (digits, synthetic shapes) for training small CNNs.
""",
        ),
        (
            "code",
            """
import numpy as np
import matplotlib.pyplot as plt
import cnnwidgets
from cnnwidgets import datasets, io, device

print(device.describe())
datasets.list_samples()
""",
        ),
        ("md", "## Sample images\n`sample(name)` returns a NumPy array exactly as scikit-image stores it."),
        (
            "code",
            """
names = ["chelsea", "coffee", "camera", "coins", "astronaut", "page", "text"]
fig, axes = plt.subplots(1, len(names), figsize=(16, 3))
for ax, name in zip(axes, names):
    img = datasets.sample(name)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
    ax.set_title(f"{name}\\n{img.shape} {img.dtype}", fontsize=9)
    ax.axis("off")
plt.show()
""",
        ),
        (
            "code",
            """
# NBVAL_CHECK_OUTPUT
chelsea = datasets.sample("chelsea")
print(chelsea.shape, chelsea.dtype)
""",
            "(300, 451, 3) uint8\n",
        ),
        (
            "md",
            """
## Loading your own images
`load_image` accepts a path, bytes, a file object, a NumPy array, a PIL image or a torch tensor, and returns
a NumPy array: `mode="rgb"` gives H×W×3 uint8, `mode="gray"` H×W uint8, `mode="keep"` the data as stored.
""",
        ),
        (
            "code",
            """
import tempfile, pathlib
from PIL import Image

folder = pathlib.Path(tempfile.mkdtemp())
Image.fromarray(chelsea).save(folder / "chelsea.jpg", quality=92)

from_path = io.load_image(folder / "chelsea.jpg")
from_bytes = io.load_image((folder / "chelsea.jpg").read_bytes(), mode="gray")
print(from_path.shape, from_bytes.shape)
assert from_path.shape == chelsea.shape
assert np.abs(from_path.astype(int) - chelsea).mean() < 3  # JPEG is lossy, but close
""",
        ),
        ("md", "## Bad input gives a clear error\nThe message names the file and the reason; nothing crashes."),
        (
            "code",
            """
(folder / "notes.png").write_text("not really a picture")
try:
    io.load_image(folder / "notes.png")
except io.ImageLoadError as err:
    print(err)
    assert "notes.png" in str(err) and "not an image" in str(err)
""",
        ),
        ("md", "## Showing images in a widget\nImages travel to the browser as PNG bytes."),
        (
            "code",
            """
import ipywidgets as W
W.HBox([W.Image(value=io.to_png_bytes(datasets.sample(n)), format="png", width=200) for n in ("chelsea", "coffee", "coins")])
""",
        ),
        (
            "md",
            "## Labelled sets for training\n`digits()` gives scikit-learn's 8×8 digits; `shapes()` draws coloured circles, squares, triangles and crosses.",
        ),
        (
            "code",
            """
d = datasets.digits()
s = datasets.shapes(16, seed=0)
fig, axes = plt.subplots(2, 8, figsize=(12, 3.5))
for i in range(8):
    axes[0, i].imshow(d.images[i], cmap="gray"); axes[0, i].set_title(d.classes[d.labels[i]]); axes[0, i].axis("off")
    axes[1, i].imshow(s.images[i]); axes[1, i].set_title(s.classes[s.labels[i]], fontsize=9); axes[1, i].axis("off")
plt.show()
assert d.images.shape == (1797, 8, 8) and s.images.shape == (16, 32, 32, 3)
""",
        ),
        (
            "md",
            """
## Your own folder
`ImageFolder(path)` walks a folder; class subfolders become labels; unreadable files are skipped and reported.
""",
        ),
        (
            "code",
            """
for cls, name in [("cats", "chelsea"), ("cups", "coffee")]:
    (folder / "set" / cls).mkdir(parents=True, exist_ok=True)
    Image.fromarray(datasets.sample(name)).save(folder / "set" / cls / f"{name}.png")
(folder / "set" / "cups" / "broken.jpg").write_bytes(b"\\xff\\xd8\\xff broken")
images = datasets.ImageFolder(folder / "set")
print(images.report())
assert images.classes == ["cats", "cups"] and len(images) == 2 and len(images.skipped) == 1
""",
        ),
        (
            "md",
            """
## Next
- `01_image_enhancement.ipynb` — Fourier and median filters with the FilterDesigner
- `02_segmentation.ipynb` — thresholds, edges and regions with the ThresholdSegmenter
- `03_cnn_basics.ipynb`, `04_cnn_classification.ipynb` — inside a CNN with the LayerVisualizer
- `05_image_retrieval.ipynb` — search images by text, colour and CNN features with the SearchBox
""",
        ),
    ]
    + EXERCISES,
)
