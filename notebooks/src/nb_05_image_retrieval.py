import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from make_notebook import exercises, write

EXERCISES = exercises(
    "05",
    [
        (
            "No caption mentions the coffee photo, and its file names say *coffee*. Write a text query **without the "
            "word coffee** whose 5 best hits are all coffee images (look at their `tags`).",
            'answer = "espresso"',
            "index=index",
        ),
        ("The first 10 hits of a query are R R N R R N N R R R (R relevant). What is precision@10?", "answer = 7 / 10"),
        (
            "A query has 2 relevant items and its ranking starts R N R. What is its average precision?",
            "answer = (1 / 1 + 2 / 3) / 2",
        ),
        (
            "Which descriptor fails on the colour-changed versions: `'cnn'`, `'color'`, `'moments'` or `'sift'`?",
            'answer = "color"',
        ),
        {
            "task": "Type a query into the SearchBox `box` of the last section, **without the word coffee**, whose "
            "first 5 results are all coffee photos. Then write it into the answer cell (`box.text = ...`), so that "
            "it is saved with the notebook, and set `answer = box`.",
            "setup": "box  # the SearchBox of the last section",
            "student": "# the query you typed, e.g. box.text = ...\nanswer = None  # your answer here: answer = box",
            "solution": 'box.text = "espresso"\nanswer = box',
        },
    ],
)

write(
    "notebooks/05_image_retrieval.ipynb",
    [
        (
            "md",
            """
# Image retrieval: text, colour, local features, CNN features and their fusion

This notebook builds a small searchable collection and compares ways of finding images:

| mode | what it compares | robust to |
|---|---|---|
| `text` | words in captions, file names and predicted labels (BM25), plus their meaning (MiniLM sentence embeddings) | — |
| `color` | HSV colour histograms (Bhattacharyya coefficient) | rotation, scaling, cropping |
| `moments` | mean, standard deviation and skewness per colour channel | the same, more coarsely |
| `sift` | bags of RootSIFT visual words | rotation, scaling, stretching, colour changes |
| `cnn` | EfficientNet-Lite0 embeddings (cosine) | most of the above |
| `glcm`, `gist` | texture: grey-level co-occurrence statistics; a Gabor filter bank's energy on a grid (section *Texture*) | brightness and contrast changes (GLCM) |
| `fusion` | normalised scores of several of the above, weighted | |
| `semantic` | classify the query first, keep images with an overlapping predicted class, rank those by CNN similarity | |

To know the right answers, we make them: every sample image gets distorted copies
(rotations, a crop, a half-size copy, a stretch, noise, a hue rotation). A good search finds all copies of an original.
Everything runs offline.
""",
        ),
        (
            "code",
            """
import tempfile, pathlib, collections
import numpy as np
import matplotlib.pyplot as plt
from cnnwidgets.index import ImageIndex, distortion_set, evaluate, DISTORTIONS
from cnnwidgets.io import load_image

work = pathlib.Path(tempfile.mkdtemp())
samples = ("chelsea", "coffee", "astronaut", "rocket", "immunohistochemistry", "coins")
labels = distortion_set(work / "images", samples=samples, size=192)
print(len(labels), "images:", len(samples), "originals ×", len(DISTORTIONS), "versions")
""",
        ),
        (
            "code",
            """
fig, axes = plt.subplots(1, len(DISTORTIONS), figsize=(16, 2.4))
for ax, kind in zip(axes, DISTORTIONS):
    ax.imshow(load_image(work / "images" / "coffee" / f"coffee_{kind}.png"))
    ax.set_title(kind)
    ax.axis("off")
plt.show()
""",
        ),
        (
            "md",
            """
## Build the index
`ImageIndex.build` walks the folder, computes each descriptor, predicts every image's top-5 ImageNet labels
(stored as tags) and keeps one FAISS index per descriptor. Captions can come from a `captions.csv` next to the images
or a dict; here only one image has one. Unreadable files are skipped and listed, never fatal.
""",
        ),
        (
            "code",
            """
(work / "images" / "broken.jpg").write_bytes(b"not a picture")
captions = {"rocket/rocket_original.png": "a spaceship on the launch pad"}
index = ImageIndex.build(work / "images", descriptors=("cnn", "color", "moments", "sift"), captions=captions, vocabulary_size=128)
print(index)
print("skipped:", index.skipped)
assert len(index) == len(labels) and [pathlib.Path(p).name for p, _ in index.skipped] == ["broken.jpg"]
""",
        ),
        (
            "code",
            """
def show(hits, title=""):
    fig, axes = plt.subplots(1, len(hits), figsize=(2.2 * len(hits), 2.6))
    for ax, h in zip(np.atleast_1d(axes), hits):
        ax.imshow(load_image(h.path))
        ax.set_title(f"{pathlib.Path(h.path).stem}\\n{h.score:.3f}", fontsize=8)
        ax.axis("off")
    fig.suptitle(title)
    plt.show()
""",
        ),
        (
            "md",
            """
## Text search
No caption mentions a cat, yet "kitten" finds the cat: the query's MiniLM embedding is close to the predicted labels
*tabby*, *tiger cat*, *Egyptian cat*. Keyword matches (BM25 over captions, file names and labels) add to that.
""",
        ),
        (
            "code",
            """
hits = index.search(text="kitten", k=6)
show(hits, "text: 'kitten'")
assert all("/chelsea/" in h.path for h in hits)
top = index.search(text="spaceship launch", k=1)[0]
print(top.path, "|", top.caption)
assert top.caption == "a spaceship on the launch pad"
""",
        ),
        (
            "md",
            """
## Content search with one descriptor
The query is the hue-rotated coffee cup. Colour histograms look for the wrong colours; SIFT and the CNN do not care.
""",
        ),
        (
            "code",
            """
query = str(work / "images" / "coffee" / "coffee_hue.png")
for mode in ("color", "sift", "cnn"):
    show(index.search(image=query, mode=mode, k=8), f"mode={mode!r}")
""",
        ),
        (
            "md",
            """
## Measuring it: precision@10 and mAP, leave-one-out
`evaluate` uses every image as a query (by its stored descriptors), drops it from its own ranking and counts
the other versions of the same original as relevant.
""",
        ),
        (
            "code",
            """
result = evaluate(index, labels, modes=["color", "moments", "sift", "cnn", "fusion", "semantic"], k=10, details=True)
print(f"{'mode':10s} {'P@10':>6s} {'mAP':>6s}")
for mode, r in result.items():
    print(f"{mode:10s} {r['precision@10']:6.3f} {r['mAP']:6.3f}")
""",
        ),
        (
            "md",
            """
Per kind of copy: the average precision of queries that are that kind of copy. A colour histogram ignores *where*
colours are, so it handles rotations, crops and scaling, but it misses the colour-shifted and noisy copies;
SIFT and the CNN find those too. (Precision@10 is at most 7/10 here: each original has 7 other versions.)
""",
        ),
        (
            "code",
            """
by_kind = {}
for mode in ("color", "moments", "sift", "cnn"):
    groups = collections.defaultdict(list)
    for path, ap in result[mode]["per_query"].items():
        groups[pathlib.Path(path).stem.split("_")[-1]].append(ap)
    by_kind[mode] = {kind: np.mean(v) for kind, v in groups.items()}
print(f"{'copy':10s}" + "".join(f"{m:>9s}" for m in by_kind))
for kind in DISTORTIONS:
    print(f"{kind:10s}" + "".join(f"{by_kind[m][kind]:9.3f}" for m in by_kind))
""",
        ),
        (
            "code",
            """
assert result["cnn"]["mAP"] > result["color"]["mAP"] and result["sift"]["mAP"] > result["color"]["mAP"]
for kind in ("rot90", "rot25", "scale", "stretch"):   # CNN and SIFT find rotated, scaled and stretched copies
    assert by_kind["cnn"][kind] > 0.9 and by_kind["sift"][kind] > 0.75, kind
for kind in ("hue", "noise"):                          # that colour histograms miss once colours change
    assert by_kind["color"][kind] < 0.6 < by_kind["cnn"][kind] and by_kind["sift"][kind] > by_kind["color"][kind], kind
""",
        ),
        (
            "md",
            """
## Semantic search: classify first, then rank by content
The query's top-5 predicted classes select the images that share one of them (a FAISS ID selector), and those are
ranked by CNN similarity. When too few images share a class, the rest of the list is plain CNN search
(`scores["class_match"]` tells which is which).
""",
        ),
        (
            "code",
            """
query = str(work / "images" / "chelsea" / "chelsea_stretch.png")
hits = index.search(image=query, mode="semantic", k=8)
for h in hits:
    print(f"{pathlib.Path(h.path).name:28s} cnn={h.scores['cnn']:.3f} class_match={h.scores['class_match']:.0f}  {[t for t, _ in h.tags[:3]]}")
assert all("/chelsea/" in h.path for h in hits if h.scores["class_match"])
""",
        ),
        (
            "md",
            "## Fusion: text and content together\nScores are min–max normalised per component and averaged with weights you can set.",
        ),
        (
            "code",
            """
hits = index.search(text="cup", image=str(work / "images" / "coins" / "coins_original.png"), mode="fusion", k=5, weights={"text": 2.0})
for h in hits:
    print(pathlib.Path(h.path).name, round(h.score, 3), {k: round(v, 3) for k, v in h.scores.items()})
""",
        ),
        (
            "md",
            """
## Class words: the ImageNet hierarchy from WordNet
The index stores each image's top-5 ImageNet labels with their probabilities. "horse" is no ImageNet label,
"sorrel" is, and WordNet knows that a sorrel is a horse. cnnwidgets ships the hierarchy of the 1,000 classes
(WordNet 3.0: each class's lemmas and all its hypernyms up to *entity*), and text search uses it: a word that
names a synset scores every image by the probability of its tags that lie below that synset
(`scores["hierarchy"]`), added to the BM25 (`keyword`) and MiniLM (`semantic`) parts. Words that name no
synset score as before.

"dog" is above 118 ImageNet classes, the breeds 151–268. An index whose images carry every breed as a tag
(vectors made up, tags given) finds them all, and none of the cats:
""",
        ),
        (
            "code",
            """
from cnnwidgets.engine.models import imagenet_labels

names = imagenet_labels()
breeds = names[151:269] + ["tabby", "Persian cat", "Siamese cat"]
made_up = np.eye(len(breeds), 32, dtype=np.float32)
tagged = ImageIndex.from_vectors([f"/made/up/{n}.jpg" for n in range(len(breeds))], {"cnn": made_up},
                                 tags=[[(label, 0.9)] for label in breeds])
hits = tagged.search(text="dog", k=len(breeds))
found = [h.tags[0][0] for h in hits if h.scores["hierarchy"] > 0]
print(len(found), "breeds found, e.g.", found[:4], "| then:", [h.tags[0][0] for h in hits[len(found):]])
assert sorted(found) == sorted(names[151:269])
print(" → ".join(index.hierarchy.path("golden retriever")))
""",
        ),
        (
            "md",
            """
On photos: `class_word_set` writes a small labelled set from photos that ship with scikit-image, scikit-learn
and Matplotlib (6 class words × 16 images, crops, mirrors, rotations and colour changes of 10 photos; no
captions, and file names without the class word). Precision@10 of each class word as the query, with and
without the hierarchy part:
""",
        ),
        (
            "code",
            """
from cnnwidgets.index.evaluation import class_word_set

word_labels = class_word_set(work / "words")
words = ImageIndex.build(work / "words", descriptors=("cnn", "color"), progress=False)
def p10(word, **kw):
    return np.mean([word_labels[h.path] == word for h in words.search(text=word, k=10, **kw)])
print(f"{'word':10s} {'with':>6s} {'without':>8s}")
for word in sorted(set(word_labels.values())):
    print(f"{word:10s} {p10(word):6.2f} {p10(word, weights={'hierarchy': 0.0}):8.2f}")
assert p10("building") >= 0.9 > p10("building", weights={"hierarchy": 0.0})
""",
        ),
        (
            "md",
            "Which part matched, and the hypernym path from the hit's best tag to the word:",
        ),
        (
            "code",
            """
hit = words.search(text="building", k=1)[0]
print({k: round(v, 3) for k, v in hit.scores.items()}, hit.tags[:2])
print(" → ".join(words.hierarchy.path_to(hit.tags[0][0], "building")))
show(words.search(text="vehicle", k=6), "text: 'vehicle'")
""",
        ),
        (
            "md",
            """**Words with no class.** "kitchen" names no ImageNet class and no hypernym of one. What a class *is*
comes from its WordNet gloss (*toaster*: "a kitchen appliance (usually electric) for toasting bread"): a tag's
`semantic` score is the mean of the query's MiniLM cosines with its label and with its gloss. One made-up image
per ImageNet class, each tagged with its own label:""",
        ),
        (
            "code",
            """
every_class = ImageIndex.from_vectors([f"/made/up/{n}.jpg" for n in range(len(names))],
                                      {"cnn": np.eye(len(names), 32, dtype=np.float32)},
                                      tags=[[(label, 0.9)] for label in names])
for hit in every_class.search(text="kitchen", k=6):
    label = hit.tags[0][0]
    print(f"{label:15s} {hit.scores['semantic']:.2f}  {every_class.hierarchy.gloss(label)}")
top = {h.tags[0][0] for h in every_class.search(text="kitchen", k=10)}
assert top & {"toaster", "microwave", "dishwasher", "stove"}
""",
        ),
        (
            "md",
            """
## Re-ranking: query expansion, diffusion, k-reciprocal
`search(image=..., rerank=...)` re-ranks with the stored vectors: `"qe"` adds the query's 5 nearest neighbours
to it (α-QE) and searches again; `"diffusion"` and `"kreciprocal"` re-order the first 100 results by their
neighbourhood graph. `evaluate(..., rerank=...)` reports each next to the plain ranking:
""",
        ),
        (
            "code",
            """
rr = evaluate(words, word_labels, modes=["cnn", "semantic"], rerank=["qe", "diffusion", "kreciprocal"])
print(f"{'mode':22s} {'P@10':>6s} {'mAP':>6s}")
for key, r in rr.items():
    print(f"{key:22s} {r['precision@10']:6.3f} {r['mAP']:6.3f}")
assert rr["cnn+diffusion"]["mAP"] >= rr["cnn"]["mAP"] and rr["cnn+kreciprocal"]["mAP"] >= rr["cnn"]["mAP"]
""",
        ),
        (
            "md",
            """
## Texture: finding the same texture
A texture has no object to recognise; what tells brick from grass is how grey levels are arranged. Two descriptors
of `cnnwidgets.engine.features` measure that:

- `glcm`: the grey-level co-occurrence matrix counts how often grey level *i* lies next to level *j* at a distance
  (1, 3 and 5 pixels) and a direction (0°, 45°, 90°, 135°); its contrast, homogeneity, energy and correlation
  (Haralick) make 48 numbers;
- `gist`: the energy of 32 Gabor filters (4 scales × 8 orientations) averaged on a 4×4 grid — how much structure of
  each size and direction lies where.

The collection: 8 non-overlapping 128-pixel crops of each of scikit-image's brick, grass and gravel textures, and as
distractors of the lunar surface and the cameraman. Every crop is histogram-equalised, so all of them have the same
flat grey-level histogram: only the arrangement of the grey levels tells them apart, and a histogram sees none of it.
The index is made from the vectors directly (`ImageIndex.from_vectors`), without a CNN.
""",
        ),
        (
            "code",
            """
import cv2
from PIL import Image
from cnnwidgets import datasets
from cnnwidgets.engine import features

tiles = [(r, c) for r in range(0, 512, 128) for c in range(0, 512, 128)][::2]   # 8 of the 16 tiles of 128 px
tex_paths = []
for name in ("brick", "grass", "gravel", "moon", "camera"):
    (work / "textures" / name).mkdir(parents=True)
    image = datasets.sample(name)                                                 # 512×512 grey
    for i, (r, c) in enumerate(tiles):
        crop = cv2.equalizeHist(np.ascontiguousarray(image[r:r + 128, c:c + 128]))
        tex_paths.append(str(work / "textures" / name / f"{name}_{i}.png"))
        Image.fromarray(crop).save(tex_paths[-1])
textures = ImageIndex.from_vectors(tex_paths, {"glcm": features.glcm(tex_paths), "gist": features.gist(tex_paths),
                                               "color": features.color_histogram(tex_paths)})
query = str(work / "textures" / "grass" / "grass_3.png")
for mode in ("glcm", "gist", "color"):
    show(textures.search(image=query, mode=mode, k=8), f"a grass crop, mode={mode!r}")
""",
        ),
        (
            "code",
            """
tex = evaluate(textures, modes=["glcm", "gist", "color"], k=5, details=True)
print(f"{'texture':8s}" + "".join(f"{m:>7s}" for m in tex) + "   (mean average precision of its crops as queries)")
for name in ("brick", "grass", "gravel", "moon", "camera"):
    aps = [[ap for p, ap in tex[m]["per_query"].items() if pathlib.Path(p).parent.name == name] for m in tex]
    print(f"{name:8s}" + "".join(f"{np.mean(a):7.2f}" for a in aps))
print(f"{'all':8s}" + "".join(f"{r['mAP']:7.2f}" for r in tex.values()))

for path in tex_paths:                               # every brick, grass and gravel crop as the query:
    kind = pathlib.Path(path).parent.name
    if kind in ("brick", "grass", "gravel"):         # its first 4 GLCM hits are crops of the same texture
        hits = [h.path for h in textures.search(image=path, mode="glcm", k=6) if h.path != path][:4]
        assert all(pathlib.Path(h).parent.name == kind for h in hits), (path, hits)
assert tex["glcm"]["mAP"] > tex["color"]["mAP"] + 0.3, tex   # equal histograms: colour cannot tell them apart
""",
        ),
        (
            "md",
            """
GLCM finds the same texture; the colour histogram, by construction, cannot. GIST ranks brick well, its regular
rows of mortar are a strong oriented structure, but mixes grass and gravel: it was made to describe the layout of a
scene (where the sky is, where the edges run), and inside a texture the layout is everywhere the same. In the
SearchBox, `glcm` and `gist` are modes like the others:
""",
        ),
        (
            "code",
            """
from cnnwidgets import SearchBox

texture_box = SearchBox(textures, k=6)
texture_box.image_path, texture_box.mode = query, "glcm"
texture_box.wait()
assert [r["path"] for r in texture_box.results] == [h.path for h in textures.search(image=query, mode="glcm", k=6)]
print(texture_box.code)
texture_box
""",
        ),
        (
            "md",
            """
## Saving and loading
`save` writes the FAISS files, a SQLite table (paths, captions, tags, fingerprints) and a JSON manifest;
the manifest is replaced last and atomically, so a crash never leaves a half-written index. `load` checks that
manifest, FAISS files and table agree. The same from a shell:

```
cnnwidgets index photos/ --index photos.index --descriptors cnn,color
cnnwidgets search --index photos.index --text "kitten" -k 5 --json
```
""",
        ),
        (
            "code",
            """
index.save(work / "index")
print(sorted(p.name for p in (work / "index").iterdir() if not p.name.startswith("data-")), sorted(p.name for p in next((work / "index").glob("data-*")).iterdir()))
again = ImageIndex.load(work / "index")
q = str(work / "images" / "astronaut" / "astronaut_rot25.png")
assert [h.path for h in again.search(image=q, mode="cnn", k=5)] == [h.path for h in index.search(image=q, mode="cnn", k=5)]
""",
        ),
        (
            "md",
            """
## The SearchBox
Type words (Enter), drop an image, or click a result for "more like this". Each result shows a score bar per
descriptor and its predicted labels; the line under the gallery is the `index.search(...)` call that reproduces it.
""",
        ),
        (
            "code",
            """
from cnnwidgets import SearchBox

box = SearchBox(index, k=8)
box.text = "coffee"
box
""",
        ),
        (
            "code",
            """
box.wait()
assert box.results and "/coffee/" in box.results[0]["path"]
print(box.code)
""",
        ),
    ]
    + EXERCISES,
)
