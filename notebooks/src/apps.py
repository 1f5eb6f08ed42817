"""The Voilà apps: one notebook per widget family, with the code hidden when served by ``voila``.

Run from the repository root to rewrite ``notebooks/apps/*.ipynb``; serve one with ``make app NAME=filter_designer``.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from make_notebook import write

SAMPLE_INDEX = """
import tempfile
from pathlib import Path
from PIL import Image
from cnnwidgets import datasets
from cnnwidgets.index import ImageIndex

folder = Path(tempfile.mkdtemp()) / "samples"
folder.mkdir()
for name in ("astronaut", "chelsea", "coffee", "rocket", "coins", "camera", "cat"):
    Image.fromarray(datasets.sample(name, mode="rgb")).save(folder / f"{name}.png")
index = ImageIndex.build(folder, descriptors=("cnn", "color"), progress=False)
"""

APPS = {
    "filter_designer": (
        "# Filter designer\nPick a low- or high-pass filter, drag the cutoff and order, add noise and read PSNR/SSIM.",
        'from cnnwidgets import FilterDesigner, datasets\n\nFilterDesigner(datasets.sample("camera"))',
    ),
    "threshold_segmenter": (
        "# Threshold segmenter\nGlobal, local, edge and region methods with a live histogram: drag the threshold line.",
        'from cnnwidgets import ThresholdSegmenter, datasets\n\nThresholdSegmenter(datasets.sample("coins"))',
    ),
    "layer_visualizer": (
        "# Inside a CNN\nChoose a layer and see its kernels, feature maps and the network's top classes.",
        'from cnnwidgets import LayerVisualizer\n\nLayerVisualizer("chelsea", model="efficientnet_lite0")',
    ),
    "search_box": (
        "# Image search\nType words, drop an image, or click a result for more like it.",
        SAMPLE_INDEX + '\nfrom cnnwidgets import SearchBox\n\nSearchBox(index, text="coffee", k=6)',
    ),
    "pipeline": (
        "# Enhance → segment → recognise → retrieve\nMove the cutoff and watch the regions and their labels follow.",
        SAMPLE_INDEX + '\nfrom cnnwidgets import Pipeline\n\nPipeline(datasets.sample("coins"), index=index)',
    ),
}

for name, (title, code) in APPS.items():
    write(f"notebooks/apps/{name}.ipynb", [("md", title), ("code", code)])
