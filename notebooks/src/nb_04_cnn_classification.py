import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from make_notebook import exercises, write

EXERCISES = exercises(
    "04",
    [
        (
            "What accuracy does guessing reach on the digits (as a fraction)? The CNN must beat it by far.",
            "answer = 1 / len(digits.classes)",
        ),
        (
            "How many labelled images does the few-shot classifier of section 4 learn from?",
            "answer = len(support)",
        ),
        (
            "Which features classify the shapes better: `'cnn'` or `'bovw'`?",
            'answer = "cnn" if cnn["accuracy"] > bovw["accuracy"] else "bovw"',
        ),
        (
            "Name the first layer of `efficientnet_lite0` (the one whose maps respond to edges). The "
            "LayerVisualizer's layer dropdown lists the layers in order.",
            'answer = "conv_stem"',
        ),
        {
            "task": "The TrainingDashboard `dash2` below trains `tiny_cnn` on the digits for 2 epochs with learning "
            "rate 0.5, and learns nothing. Find a learning rate that reaches at least 0.92 validation accuracy in "
            "2 epochs (set it, press Start, read the status line). Then write it into the answer cell, start the "
            "training there (`dash2.lr = ...` then `dash2.start()`), and set `answer = dash2`.",
            "setup": 'dash2 = TrainingDashboard("tiny_cnn", "digits", epochs=2, lr=0.5)\ndash2',
            "student": "# the learning rate you chose, e.g. dash2.lr = ...; then dash2.start()\n"
            "answer = None  # your answer here: answer = dash2",
            "solution": "dash2.lr = 0.005\ndash2.start()\nanswer = dash2",
        },
    ],
)

write(
    "notebooks/04_cnn_classification.ipynb",
    [
        (
            "md",
            """
# Classification with convolutional networks

This notebook goes from a network someone else trained to networks you train yourself, all offline on the CPU:

1. classify photographs with a **pretrained** EfficientNet-Lite0 (ImageNet weights shipped in a package),
2. look **inside** it with the `LayerVisualizer`,
3. **train** a tiny CNN on handwritten digits in well under a minute, watching its loss and accuracy,
   — and LeNet-5 with the **radial basis function** output layer of the original next to a softmax head,
4. learn new classes from **five examples each** (few-shot, nearest class prototype),
5. compare with the classical pipelines CNNs replaced: **HOG, GIST and SIFT bag of words + SVM**.
""",
        ),
        (
            "code",
            """
import time
import numpy as np
import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from cnnwidgets import datasets, device
from cnnwidgets.engine import models, train

print(device.describe())
""",
        ),
        (
            "md",
            """
## 1. A pretrained network
`create_model("efficientnet_lite0")` builds the network and loads its ImageNet weights from disk; nothing downloads.
`classify` resizes and normalises the image the way the network was trained (`preprocess`) and returns the top classes
with their softmax probabilities.
""",
        ),
        (
            "code",
            """
lite0 = models.create_model("efficientnet_lite0")
print(lite0.cnnw_config["name"], lite0.cnnw_config["input_size"], len(lite0.cnnw_config["labels"]), "classes")

names = ["chelsea", "coffee", "rocket", "astronaut"]
images = [datasets.sample(n) for n in names]
top = models.classify(lite0, images, topk=3)
fig, axes = plt.subplots(1, len(names), figsize=(15, 3.6))
for ax, img, preds in zip(axes, images, top):
    ax.imshow(img); ax.axis("off")
    ax.set_title("\\n".join(f"{label}: {p:.2f}" for label, p in preds), fontsize=9)
plt.show()
assert top[0][0][0] in {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}, top[0]
assert top[1][0][0] in {"espresso", "cup"}, top[1]
""",
        ),
        (
            "md",
            """
## 2. Inside the network
Pick a layer by its dotted name: the mosaic shows its feature maps for the image (click one to enlarge it), conv layers
also show their kernels, and Grad-CAM highlights the pixels that drove the top class. Early layers respond to edges and
colours, late layers to parts of objects.
""",
        ),
        (
            "code",
            """
from cnnwidgets import LayerVisualizer

viz = LayerVisualizer("chelsea", model="efficientnet_lite0")
viz.wait()
viz
""",
        ),
        (
            "md",
            """
## 3. Training a small CNN
`tiny_cnn` is conv–ReLU–pool twice and one fully connected layer: about 25,000 weights. `train.fit` runs the classic
loop — shuffle, forward, cross-entropy loss, backward, Adam step — shows a progress bar, and hands the metrics of every
epoch to a callback. With a seed the run is repeatable: same data, same seed, same weights.
Batches of 32 small images are too little work to share between CPU cores, so `threads=1` is the fastest setting here
(and much faster when the machine is busy with something else).

The 1,797 scikit-learn digits are split 75 % / 25 % (stratified); the test images are never trained on.
""",
        ),
        (
            "code",
            """
digits = datasets.digits()
train_set, test_set = train.split(digits, test=0.25, seed=0)
print(len(train_set.labels), "training images,", len(test_set.labels), "test images")

torch.manual_seed(0)
net = models.create_model("tiny_cnn", pretrained=False)       # 1×32×32 input, 10 classes
print(net)
print(sum(p.numel() for p in net.parameters()), "weights")
""",
        ),
        (
            "code",
            """
log = []
start = time.perf_counter()
history = train.fit(net, train_set, epochs=4, lr=5e-3, batch_size=32, seed=0, schedule="cosine",
                    val=test_set, callback=log.append, threads=1)
seconds = time.perf_counter() - start
test = train.evaluate_classifier(net, test_set)
print(f"trained in {seconds:.1f} s; test accuracy {test['accuracy']:.3f}")
assert test["accuracy"] > 0.95, test["accuracy"]
assert seconds < 60, seconds
assert len(log) == 4 and log[-1]["val_accuracy"] == history.final["val_accuracy"]
""",
        ),
        (
            "code",
            """
from cnnwidgets.widgets.training import curves_figure, confusion_figure

display(curves_figure(history.epochs))
display(confusion_figure(test["confusion"], digits.classes, title="test set"))
labels, probs = train.predict(net, test_set.images)
wrong = np.flatnonzero(labels != test_set.labels)[:8]
if len(wrong):
    fig, axes = plt.subplots(1, len(wrong), figsize=(1.6 * len(wrong), 2), squeeze=False)
    for ax, i in zip(axes[0], wrong):
        ax.imshow(test_set.images[i], cmap="gray"); ax.axis("off")
        ax.set_title(f"{test_set.labels[i]} → {labels[i]}", fontsize=9)
    fig.suptitle("some test digits it gets wrong (true → predicted)", fontsize=10)
    plt.show()
""",
        ),
        (
            "md",
            """
### The training dashboard
The same loop behind buttons: press **Start** and the curves grow epoch by epoch while the notebook stays usable;
**Stop** ends the run after the current batch; the confusion matrix of the held-out 20 % appears at the end.
`dash.code` is the `train.fit` call that reproduces the run, `dash.result` its `History`.
""",
        ),
        (
            "code",
            """
from cnnwidgets import TrainingDashboard

dash = TrainingDashboard("tiny_cnn", "digits", epochs=4, lr=5e-3)
print(dash.code)
dash
""",
        ),
        (
            "md",
            """
### LeNet-5: a softmax head or radial basis function units
LeNet-5 (LeCun et al., 1998) ended in **Euclidean RBF units**: output unit *k* holds a centre vector
$c_k$ and scores the 84 features $h$ of the layer below by $y_k = -\\lVert h - c_k \\rVert^2$, so the class is the
nearest centre. Today a linear layer and a softmax take its place. `lenet5` is the registry's network with a
linear head, `lenet5_rbf` the same network with RBF units whose centres are learnt
(`models.builders.lenet5(output="rbf", centres="fixed")` keeps them at fixed ±1 codes, as in the paper). Both
train on the same split with the same loop, seed and epochs; cross-entropy on the RBF scores pulls each digit's
features towards its class's centre.
""",
        ),
        (
            "code",
            """
heads = {}
for name in ("lenet5", "lenet5_rbf"):
    torch.manual_seed(0)
    lenet = models.create_model(name, pretrained=False)
    start = time.perf_counter()
    train.fit(lenet, train_set, epochs=4, lr=3e-3, batch_size=32, seed=0, schedule="cosine", progress=False, threads=1)
    heads[name] = (lenet, train.evaluate_classifier(lenet, test_set)["accuracy"], time.perf_counter() - start)
table = ["| model | output layer | test accuracy | training s |", "|---|---|---:|---:|"]
table += [f"| {name} | {lenet.fc3} | {acc:.3f} | {s:.1f} |" for name, (lenet, acc, s) in heads.items()]
display(Markdown("\\n".join(table)))

rbf_net = heads["lenet5_rbf"][0]
seen = {}
hook = rbf_net.fc3.register_forward_hook(lambda layer, inputs, output: seen.update(h=inputs[0]))
with torch.no_grad():
    scores = rbf_net(models.preprocess(test_set.images[:64], rbf_net))   # and seen["h"]: the 84 features
hook.remove()
distances = ((seen["h"][:, None, :] - rbf_net.fc3.centres[None]) ** 2).sum(-1)  # squared distance to each centre
assert torch.allclose(scores, -distances, rtol=1e-4, atol=1e-3)                  # the RBF scores are −‖h − c_k‖²
assert torch.equal(scores.argmax(1), distances.argmin(1))                        # the class is the nearest centre
assert all(acc > 0.9 for _, acc, _ in heads.values()), heads                     # both far above chance (0.1)
""",
        ),
        (
            "md",
            """
## 4. Few-shot: five examples per class
A pretrained network already knows edges, corners and curves. Its pooled features (`models.embed`, one unit vector
per image) of five labelled examples per class are averaged into a **prototype**; a new image gets the class of the
nearest prototype. No training at all — and the classes (circle, square, triangle, cross) are not ImageNet classes.
""",
        ),
        (
            "code",
            """
shapes = datasets.shapes(80, seed=0)
support = np.concatenate([np.flatnonzero(shapes.labels == c)[:5] for c in range(len(shapes.classes))])
query = np.setdiff1d(np.arange(len(shapes.labels)), support)

few_shot = train.PrototypeClassifier(lite0).fit(shapes.images[support], shapes.labels[support],
                                                classes=shapes.classes, min_shots=5)
pred = few_shot.predict(list(shapes.images[query]))
accuracy = float((pred == shapes.labels[query]).mean())
print(f"{len(support)} support images, {len(query)} queries, accuracy {accuracy:.3f} (chance 0.25)")
assert accuracy > 0.8, accuracy

fig, axes = plt.subplots(2, 10, figsize=(15, 3.4))
for ax, i, p in zip(axes.flat, query[:20], pred[:20]):
    ax.imshow(shapes.images[i]); ax.axis("off")
    ok = p == shapes.labels[i]
    ax.set_title(shapes.classes[p], fontsize=9, color="green" if ok else "red")
plt.show()
""",
        ),
        (
            "md",
            """
## 5. Classical features + SVM vs CNN features
Before CNNs, an image was described by a hand-made feature vector and a support vector machine learnt the classes:

- **HOG** (Dalal & Triggs): histograms of gradient orientations in small cells, normalised over blocks — the
  outline of a shape, at fixed places in the image;
- **GIST** (Oliva & Torralba): the energy of a bank of Gabor filters (4 scales × 8 orientations) averaged on a
  4×4 grid — the image's layout of textures and edges;
- **SIFT bag of visual words**: local SIFT descriptors, clustered by k-means into a **vocabulary** of visual words,
  and the image's histogram of words — where the words lie is forgotten;
- two more of `cnnwidgets.engine.features`: **GLCM** texture (Haralick properties of the grey-level co-occurrence
  matrix) and the **colour set** (which of 166 HSV colours occur).

`compare_features` trains each (the descriptor, standardised, then a linear SVM: `descriptor_classifier`) and the CNN
alternative (frozen EfficientNet features + a trained linear layer: `transfer_learn`) on the same train/test split of
the shapes, and times them. *ms / image* is the cost of classifying one new image: its descriptor and the
classifier.
""",
        ),
        (
            "code",
            """
from scipy.stats import binomtest

shapes_train, shapes_test = train.split(datasets.shapes(120, seed=1), test=0.5, seed=0)
rows = train.compare_features(shapes_train, shapes_test, features=("hog", "gist", "sift", "glcm", "color_set"),
                              options={"sift": {"vocabulary": 50}}, model=lite0, seed=0)
display(Markdown(train.format_table(rows)))
acc = {r["feature"]: r["accuracy"] for r in rows}
chance, n_test = 1 / len(shapes_train.classes), len(shapes_test.labels)
p_hog = binomtest(round(acc["hog"] * n_test), n_test, chance, alternative="greater").pvalue
print(f"HOG + SVM: {acc['hog']:.3f} (chance {chance:.2f}); guessing does as well with probability {p_hog:.1e}")
assert p_hog < 0.01 and acc["hog"] < acc["cnn"], rows          # HOG + SVM above chance, below the CNN
assert acc["cnn"] > max(acc["hog"], acc["gist"], acc["sift"]) and acc["cnn"] > 0.85, rows
bovw, cnn = next(r for r in rows if r["feature"] == "sift"), rows[-1]
""",
        ),
        (
            "md",
            """
The shapes have random colours, so the colour set is no better than guessing; HOG sees the outline but at a fixed
grid, so a rotated or shifted shape moves its gradients to other cells and bins; the bag of words is blind to
position, GIST to fine detail. The CNN's features, learnt on a million photographs, describe the shape wherever it is.

A single classifier on its own, for any descriptor or for any function from images to vectors:

```python
hog_svm = train.descriptor_classifier(shapes_train, descriptor="hog", kernel="rbf")   # or descriptor=my_function
hog_svm.score(shapes_test), hog_svm.features(images), hog_svm.predict(images)
```
""",
        ),
        (
            "md",
            """
## Your own pictures
Put them in one folder per class and fit a linear head on a frozen pretrained backbone (transfer learning):

```python
photos = datasets.ImageFolder("my_photos/")          # my_photos/cat/*.jpg, my_photos/dog/*.jpg, ...
print(photos.report())                                # unreadable files are skipped and listed
classifier = train.transfer_learn("efficientnet_lite0", photos, val=0.2)
classifier.classify("new_photo.jpg", topk=2)
```

With only a handful of images per class, `train.PrototypeClassifier("efficientnet_lite0").fit(photos)` needs no training at all.
""",
        ),
    ]
    + EXERCISES,
)
