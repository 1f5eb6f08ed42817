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
4. learn new classes from **five examples each** (few-shot, nearest class prototype),
5. compare with the classical **bag of visual words** + SVM pipeline that CNNs replaced.
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

viz = LayerVisualizer(model="efficientnet_lite0", image="chelsea")
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
## 5. Bag of visual words vs CNN features
Before CNNs, the standard pipeline was: detect local features (SIFT or ORB), cluster their descriptors with k-means
into a **vocabulary** of visual words, describe each image by its histogram of words, and train a linear SVM.
`compare_bovw_cnn` runs it and the CNN alternative (frozen EfficientNet features + a trained linear layer) on the same
train/test split.
""",
        ),
        (
            "code",
            """
shapes_train, shapes_test = train.split(datasets.shapes(120, seed=1), test=0.5, seed=0)
rows = train.compare_bovw_cnn(shapes_train, shapes_test, model=lite0, detector="sift", vocabulary=50, seed=0)
display(Markdown(train.format_table(rows)))
bovw, cnn = rows
assert cnn["accuracy"] > bovw["accuracy"], rows
assert cnn["accuracy"] > 0.85, rows
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
