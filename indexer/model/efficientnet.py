"""EfficientNet-Lite0 in plain PyTorch, laid out like lukemelas' EfficientNet-PyTorch state dicts.

Lite variants drop squeeze-and-excitation, use ReLU6, and keep the stem and head widths fixed.
TF-style "same" padding and BN eps 1e-3 match how the weights were trained (checked against known
photos in tests/unit/test_labeller.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3
# (kernel, stride, expand ratio, in channels, out channels, repeats)
STAGES = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)
EMBEDDING_DIM = 1280
# the parts of the picture also read (Prediction.parts): 2x2 overlapping windows of the last feature
# map, each 5/7 of its side (5x5 of the 7x7 cells at 224 px). Chosen on the validation set
# (tests/bench/bench_labels.py) over 2x2 of 4/7 and 3x3 of 3/7 or 4/7: the most found at 85% precision
PART_FRACTION = 5 / 7


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow's "same" padding (asymmetric when the stride is 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1], strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConvBlock(nn.Module):
    def __init__(self, kernel: int, stride: int, expand: int, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = Conv2dSame(c_in, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = Conv2dSame(mid, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    """Returns (logits, pooled features, part logits): the features are the image embedding before
    L2 norm; the part logits (N, 4, classes) are the same head over four overlapping windows of the
    last feature map, which cost the network nothing but a pooling and a small matrix product."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = Conv2dSame(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for kernel, stride, expand, c_in, c_out, repeats in STAGES:
            for r in range(repeats):
                blocks.append(MBConvBlock(kernel, stride if r == 0 else 1, expand, c_in if r == 0 else c_out, c_out))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(320, EMBEDDING_DIM, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(EMBEDDING_DIM, eps=BN_EPS)
        self._fc = nn.Linear(EMBEDDING_DIM, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        features = x.mean(dim=(2, 3))
        return self._fc(features), features, self._fc(part_features(x))


def part_features(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) feature map -> (N, 4, C): the mean over each of 2x2 overlapping windows."""
    h, w = x.shape[-2:]
    kh, kw = max(1, round(h * PART_FRACTION)), max(1, round(w * PART_FRACTION))
    pooled = F.avg_pool2d(x, (kh, kw), stride=(max(1, h - kh), max(1, w - kw)))
    return pooled.flatten(2).transpose(1, 2)


class FromPixels(nn.Module):
    """The network fed [0, 255] pixels: the scaling its weights expect, inside the graph (so a
    compiled package does it too)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.net((x - 127.0) / 128.0)
