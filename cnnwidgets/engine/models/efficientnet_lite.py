"""EfficientNet-Lite0/1/2 in plain PyTorch: the architecture of timm's ``tf_efficientnet_lite<k>``, without timm.

The modules, their dotted names and the state-dict keys are timm's (``conv_stem``, ``bn1``,
``blocks.<stage>.<block>.conv_dw``/``bn1``/``conv_pw``/``bn2``/``conv_pwl``/``bn3``, ``conv_head``, ``bn2``,
``global_pool``, ``classifier``), and so are the computations: TensorFlow "same" padding on the strided
convolutions (:class:`Conv2dSame`, padding computed from the input size), BatchNorm with TensorFlow's
``eps=1e-3`` fused with ReLU6 (:class:`BatchNormAct2d`), the Lite stages with a fixed 32-channel stem and
1280-channel head. Weights saved from either load into the other with ``strict=True``, and a layer name shown
by the LayerVisualizer names the same layer in both. Importing timm costs some 190 MiB in every kernel that
shows a CNN; this module needs torch only.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "LITE_CONFIGS",
    "Conv2dSame",
    "BatchNormAct2d",
    "SelectAdaptivePool2d",
    "DepthwiseSeparableConv",
    "InvertedResidual",
    "EfficientNetLite",
    "efficientnet_lite",
]

# variant → (channel multiplier, depth multiplier, input side, crop_pct), as timm's tf_efficientnet_lite<k> configs
LITE_CONFIGS = {
    0: (1.0, 1.0, 224, 0.875),
    1: (1.0, 1.1, 240, 0.882),
    2: (1.1, 1.2, 260, 0.890),
}

# Stages of EfficientNet-Lite: (block, repeats, kernel, stride, expansion, output channels) — timm's arch_def
# 'ds_r1_k3_s1_e1_c16', 'ir_r2_k3_s2_e6_c24', ... ; the first and last stages are never deepened (fix_first_last).
_STAGES = (
    ("ds", 1, 3, 1, 1, 16),
    ("ir", 2, 3, 2, 6, 24),
    ("ir", 2, 5, 2, 6, 40),
    ("ir", 3, 3, 2, 6, 80),
    ("ir", 3, 5, 1, 6, 112),
    ("ir", 4, 5, 2, 6, 192),
    ("ir", 1, 3, 1, 6, 320),
)
_BN_EPS = 1e-3  # TensorFlow's BatchNorm epsilon
_MEAN = _STD = (0.5, 0.5, 0.5)  # the tf_ ports' normalisation


def _make_divisible(v: float, divisor: int = 8, round_limit: float = 0.9) -> int:
    """Nearest multiple of ``divisor``, never less than ``divisor`` nor more than 10 % below ``v`` (timm's)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


def _same_pad(size: int, kernel: int, stride: int, dilation: int) -> int:
    """Total TensorFlow "same" padding of one axis."""
    return max((-(-size // stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)


class Conv2dSame(nn.Conv2d):
    """A convolution with TensorFlow's "same" padding, computed from the input's size at each call (asymmetric,
    the extra pixel at the bottom/right), as timm's ``Conv2dSame``. Used where the stride is 2."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, dilation=1, groups=1, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups, bias)

    def forward(self, x):
        ih, iw = x.shape[-2:]
        ph = _same_pad(int(ih), self.kernel_size[0], self.stride[0], self.dilation[0])
        pw = _same_pad(int(iw), self.kernel_size[1], self.stride[1], self.dilation[1])
        if ph or pw:
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _conv(in_chs: int, out_chs: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """timm's ``create_conv2d(..., padding='same')``: static symmetric padding where stride 1 allows it,
    :class:`Conv2dSame` otherwise; no bias (a BatchNorm follows)."""
    if stride == 1:
        return nn.Conv2d(in_chs, out_chs, kernel, 1, (kernel - 1) // 2, groups=groups, bias=False)
    return Conv2dSame(in_chs, out_chs, kernel, stride, groups=groups, bias=False)


class BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm (TensorFlow's eps) followed by ``drop`` and ``act`` children (timm's ``BatchNormAct2d``):
    ``act`` is ReLU6, or Identity after a projection."""

    def __init__(self, num_features: int, act: bool = True):
        super().__init__(num_features, eps=_BN_EPS)
        self.drop = nn.Identity()
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x):
        return self.act(self.drop(super().forward(x)))


class SelectAdaptivePool2d(nn.Module):
    """Global average pooling and flattening (timm's ``SelectAdaptivePool2d`` with ``pool_type='avg'``)."""

    def __init__(self):
        super().__init__()
        self.pool_type = "avg"
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)

    def forward(self, x):
        return self.flatten(self.pool(x))

    def feat_mult(self) -> int:
        return 1


class _Block(nn.Module):
    """A timm block: conv–BN stages run in order, the depthwise one followed by timm's ``aa`` and ``se``
    placeholders, then the residual when the stride is 1 and the channels agree.

    Parameters
    ----------
    stages : sequence of (str, int, int, int, int, bool)
        ``(conv name, in channels, out channels, kernel, stride, ReLU6 after the BN)`` per stage; the BN of stage
        ``i`` (from 1) is ``bn<i>``, and the stage named ``conv_dw`` is depthwise.
    """

    def __init__(self, stages):
        super().__init__()
        first_in, last_out = stages[0][1], stages[-1][2]
        self.has_skip = all(stride == 1 for *_, stride, _ in stages) and first_in == last_out
        for i, (name, in_chs, out_chs, kernel, stride, act) in enumerate(stages, 1):
            groups = in_chs if name == "conv_dw" else 1
            self.add_module(name, _conv(in_chs, out_chs, kernel, stride, groups=groups))
            self.add_module(f"bn{i}", BatchNormAct2d(out_chs, act=act))
            if name == "conv_dw":
                self.aa = nn.Identity()
                self.se = nn.Identity()
        self.drop_path = nn.Identity()

    def forward(self, x):
        out = x
        for name, layer in self.named_children():
            if name != "drop_path":
                out = layer(out)
        return self.drop_path(out) + x if self.has_skip else out


class DepthwiseSeparableConv(_Block):
    """Depthwise conv–BN–ReLU6, pointwise conv–BN (timm's ``DepthwiseSeparableConv``), residual when shapes allow."""

    def __init__(self, in_chs: int, out_chs: int, kernel: int, stride: int):
        super().__init__([("conv_dw", in_chs, in_chs, kernel, stride, True), ("conv_pw", in_chs, out_chs, 1, 1, False)])


class InvertedResidual(_Block):
    """Pointwise expansion conv–BN–ReLU6, depthwise conv–BN–ReLU6, linear projection conv–BN (timm's
    ``InvertedResidual``), residual when stride is 1 and channels agree."""

    def __init__(self, in_chs: int, out_chs: int, kernel: int, stride: int, exp_ratio: float):
        mid = _make_divisible(in_chs * exp_ratio)
        super().__init__(
            [
                ("conv_pw", in_chs, mid, 1, 1, True),
                ("conv_dw", mid, mid, kernel, stride, True),
                ("conv_pwl", mid, out_chs, 1, 1, False),
            ]
        )


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite ``variant`` (0, 1 or 2): timm's ``tf_efficientnet_lite<variant>`` without timm.

    Parameters
    ----------
    variant : int
        0, 1 or 2 (:data:`LITE_CONFIGS`).
    num_classes : int
        Outputs of the classifier.
    in_chans : int
        Input channels.

    Attributes
    ----------
    num_features : int
        Width of the pooled features (1280).
    pretrained_cfg : dict
        timm-style preprocessing configuration (``input_size``, ``mean``, ``std``, ``interpolation``, ``crop_pct``).
    """

    def __init__(self, variant: int = 0, num_classes: int = 1000, in_chans: int = 3):
        super().__init__()
        if variant not in LITE_CONFIGS:
            raise ValueError(f"EfficientNet-Lite variant must be one of {sorted(LITE_CONFIGS)}, got {variant!r}")
        width, depth, side, crop_pct = LITE_CONFIGS[variant]
        self.variant = variant
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = 0.0
        self.num_features = self.head_hidden_size = 1280
        stem = 32
        self.conv_stem = _conv(in_chans, stem, 3, 2)
        self.bn1 = BatchNormAct2d(stem)
        stages, chs, last = [], stem, len(_STAGES) - 1
        for i, (kind, repeats, kernel, stride, exp, out) in enumerate(_STAGES):
            n = repeats if i in (0, last) else int(math.ceil(repeats * depth))
            out = _make_divisible(out * width)
            blocks = []
            for j in range(n):
                s = stride if j == 0 else 1
                if kind == "ds":
                    blocks.append(DepthwiseSeparableConv(chs, out, kernel, s))
                else:
                    blocks.append(InvertedResidual(chs, out, kernel, s, exp))
                chs = out
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.conv_head = _conv(chs, self.num_features, 1)
        self.bn2 = BatchNormAct2d(self.num_features)
        self.global_pool = SelectAdaptivePool2d()
        self.classifier = nn.Linear(self.num_features, num_classes)
        self.pretrained_cfg = {
            "architecture": f"tf_efficientnet_lite{variant}",
            "input_size": (3, side, side),
            "interpolation": "bicubic",
            "crop_pct": crop_pct,
            "crop_mode": "center",
            "mean": _MEAN,
            "std": _STD,
            "num_classes": 1000,
            "pool_size": (-(-side // 32),) * 2,
            "first_conv": "conv_stem",
            "classifier": "classifier",
        }
        self.default_cfg = self.pretrained_cfg
        self._init_weights()

    def _init_weights(self) -> None:
        """TensorFlow's initialisation, as timm's ``_init_weight_goog``."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                r = 1.0 / math.sqrt(m.weight.size(0))
                nn.init.uniform_(m.weight, -r, r)
                nn.init.zeros_(m.bias)

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int, global_pool=None) -> None:
        """A fresh ``num_classes``-way classifier (``global_pool`` other than None or "avg" is not supported)."""
        if global_pool not in (None, "avg"):
            raise ValueError(f"only average pooling is supported, got global_pool={global_pool!r}")
        self.num_classes = num_classes
        ref = self.classifier.weight
        self.classifier = nn.Linear(self.num_features, num_classes).to(device=ref.device, dtype=ref.dtype)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (N×1280×h×w) before pooling."""
        x = self.bn1(self.conv_stem(x))
        x = self.blocks(x)
        return self.bn2(self.conv_head(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool the feature map; ``pre_logits``: the pooled features (N×1280), else the logits."""
        x = self.global_pool(x)
        if self.drop_rate > 0.0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def efficientnet_lite(variant: int = 0, *, num_classes: int = 1000, in_chans: int = 3) -> EfficientNetLite:
    """A randomly initialised :class:`EfficientNetLite` ``variant``."""
    return EfficientNetLite(variant, num_classes=num_classes, in_chans=in_chans)
