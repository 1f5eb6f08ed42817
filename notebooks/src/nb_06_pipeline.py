import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from make_notebook import exercises, write

EXERCISES = exercises(
    "06",
    [
        ("How many regions does the default pipeline find on `coins`?", 'answer = len(out["regions"])'),
        (
            "Does the low-pass stage give `'fewer'` or `'more'` false regions on the noisy coins?",
            'answer = "fewer" if with_filter < without else "more"',
        ),
        (
            """
What happens with a cutoff that is too low (0.02)? Answer with a letter.
- (a) neighbouring coins blur into one region
- (b) the noise comes back
- (c) the image gets smaller
""",
            'answer = "a"',
        ),
        {
            "task": "The Pipeline `w` of the last section runs with cutoff 0.05, and neighbouring coins merge. Drag "
            "its cutoff up until the status line counts one region per coin, write the cutoff into the answer cell "
            "(`w.enhancer.cutoff = ...`) and set `answer = w`.",
            "setup": "w  # the Pipeline of the last section",
            "student": "# the cutoff you chose, e.g. w.enhancer.cutoff = ...\nanswer = None  # your answer here: answer = w",
            "solution": "w.enhancer.cutoff = 0.2\nanswer = w",
        },
    ],
)

write(
    "notebooks/06_pipeline.ipynb",
    [
        (
            "md",
            """
# One linked bench: enhance → segment → recognise regions → retrieve

The earlier tutorials took one step at a time. A real image-analysis job chains them:

1. **enhance** the image (a low-pass filter removes noise, §3),
2. **segment** it into regions of interest (a threshold, §4),
3. cut out each **region** (connected components, with a margin),
4. **recognise** every region with a CNN (§6–7), in one batched forward pass,
5. **retrieve** images similar to a region from an index (§5, §7.3).

`cnnwidgets.engine.pipeline.Pipeline` is that chain. Each stage is one engine call whose input is the previous
stage's output; outputs are cached per stage, so changing a stage recomputes it and the stages after it, never the
ones before. `pipeline.code()` writes the whole chain as one script.
""",
        ),
        (
            "code",
            """
import numpy as np
from cnnwidgets import Pipeline, datasets
from cnnwidgets.engine import enhance, segment
from cnnwidgets.engine import pipeline as P
from cnnwidgets.engine.calls import Call

coins = datasets.sample("coins")
chain = P.Pipeline.default()
out = chain.run(coins)
print(len(out["regions"]), "regions")
print(chain.code())
""",
        ),
        (
            "code",
            """
# NBVAL_CHECK_OUTPUT
assert len(out["regions"]) == 24  # the 24 coins at these settings
print(sorted(out))
""",
            "['enhance', 'image', 'recognise', 'regions', 'segment']\n",
        ),
        (
            "md",
            """
## Why enhance before segmenting?

Noise makes a threshold fire on single pixels: every speck becomes a "region". Add Gaussian noise to the coins and
count regions of at least 5 pixels, with and without the low-pass stage.
""",
        ),
        (
            "code",
            """
noisy = enhance.add_noise(coins, kind="gaussian", amount=0.15, seed=0)
specks = chain.replaced("regions", min_area=5, max_regions=10_000)
with_filter = len(specks.run(noisy)["regions"])
without = len(specks.replaced("enhance", enabled=False).run(noisy)["regions"])
print(f"regions on the noisy image: {without} without enhancement, {with_filter} after the low-pass filter")
assert with_filter < without
""",
        ),
        (
            "md",
            """
The cutoff trades noise against detail: too low and neighbouring coins blur into one region, too high and the
noise comes back. Only the enhancement and the stages after it are recomputed for each value.
""",
        ),
        (
            "code",
            """
for cutoff in (0.02, 0.05, 0.1, 0.2, 0.4):
    n = len(specks.replaced("enhance", cutoff=cutoff).run(noisy)["regions"])
    print(f"cutoff {cutoff:<5} → {n} regions")
""",
        ),
        (
            "md",
            """
## Recognising regions

Every region's crop goes through EfficientNet-Lite0 (ImageNet classes) in one batch. ImageNet has no "coin"
class, so the coins get whatever round, gray thing the network knows best; a colour photo of real objects does
better. On `coffee`, the largest region of the Otsu mask is the cup:
""",
        ),
        (
            "code",
            """
for region, labels in list(zip(out["regions"], out["recognise"]))[:5]:
    print(f"coin region, {region.area:5d} px at {region.bbox}: {labels[0][0]} ({labels[0][1]:.0%})")

coffee = datasets.sample("coffee")
photo = chain.replaced("regions", min_area=1500).run(coffee)
for region, labels in zip(photo["regions"], photo["recognise"]):
    print(f"coffee region, {region.area:6d} px: " + ", ".join(f"{name} ({p:.0%})" for name, p in labels))
assert photo["recognise"][0][0][0] == "espresso"
""",
        ),
        (
            "md",
            """
## Retrieving a region

With an `ImageIndex`, the last stage finds the indexed images nearest to one region. Here the index holds the
bundled sample photos; the query is the cup cut out of `coffee`.
""",
        ),
        (
            "code",
            """
import tempfile
from pathlib import Path
from PIL import Image
from cnnwidgets.index import ImageIndex

folder = Path(tempfile.mkdtemp()) / "samples"
folder.mkdir()
for name in ("astronaut", "chelsea", "coffee", "rocket", "coins", "camera", "cat"):
    Image.fromarray(datasets.sample(name, mode="rgb")).save(folder / f"{name}.png")
index = ImageIndex.build(folder, descriptors=("cnn",), progress=False)

with_retrieval = P.Pipeline.default(index_given=True).replaced("regions", min_area=1500)
found = with_retrieval.run(coffee, index=index)["retrieve"]
for hit in found[:3]:
    print(f"{Path(hit.path).name:15s} score {hit.score:.3f}")
assert Path(found[0].path).name == "coffee.png"
""",
        ),
        (
            "md",
            """
## The live Pipeline widget

One row per stage. The enhancement row is the `FilterDesigner`'s controls, the segmentation row the
`ThresholdSegmenter`'s, so what you learned in notebooks 01 and 02 works here. Move the cutoff and watch the
mask, the regions and their labels follow; switch the segmentation from *global* to *local*; untick
**enhance first** to bypass the filter. Click a region to search the index with it. `w.code` is the chain's script.
""",
        ),
        (
            "code",
            """
w = Pipeline(coins, index=index, show_code=True)
w
""",
        ),
        (
            "code",
            """
w.enhancer.cutoff = 0.05
w.wait()  # in a notebook the chain runs in the background; wait() blocks until the latest picture
print(w.status)
scope = {"image": w.working_image, "index": index}
exec(w.code, scope)
assert [r.bbox for r in scope["regions"]] == [r.bbox for r in w.result["regions"]]
""",
        ),
    ]
    + EXERCISES,
)
