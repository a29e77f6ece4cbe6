"""The detector network: a small fully convolutional encoder-decoder with CenterNet-style heads.

The encoder goes down to stride 32 so that the receptive field (about 400 px) covers the largest
circles (radius 120 px); a light feature pyramid brings context back to stride 4, where three heads
predict a centre heatmap, the sub-cell offset of the centre and the log radius. With
`fine_channels`, the stem keeps a full convolution at stride 2 before it halves again, so that the
stride-4 features still see the one-pixel detail that tells a disc of radius 4 from a square.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .spec import PAD_MULTIPLE, STRIDE

__all__ = ["PAD_MULTIPLE", "STRIDE", "CircleNet"]


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class CircleNet(nn.Module):
    """Grey image (N, 1, H, W), H and W multiples of 32 -> heatmap logits, offset, log radius."""

    def __init__(self, width: int = 16, head_channels: int = 32, fine_channels: int = 0) -> None:
        super().__init__()
        w = width
        if fine_channels:  # version 6 on
            f = fine_channels
            self.stem = nn.Sequential(
                conv_bn_relu(1, f, 2), conv_bn_relu(f, f), conv_bn_relu(f, w, 2)
            )  # /4
        else:
            self.stem = nn.Sequential(conv_bn_relu(1, w // 2, 2), conv_bn_relu(w // 2, w, 2))
        self.stage4 = conv_bn_relu(w, w)
        self.stage8 = nn.Sequential(conv_bn_relu(w, 2 * w, 2), conv_bn_relu(2 * w, 2 * w))
        self.stage16 = nn.Sequential(conv_bn_relu(2 * w, 4 * w, 2), conv_bn_relu(4 * w, 4 * w))
        self.stage32 = nn.Sequential(
            conv_bn_relu(4 * w, 8 * w, 2),
            conv_bn_relu(8 * w, 8 * w),
            conv_bn_relu(8 * w, 8 * w, dilation=2),
        )
        h = head_channels
        self.lateral32 = nn.Conv2d(8 * w, h, 1)
        self.lateral16 = nn.Conv2d(4 * w, h, 1)
        self.lateral8 = nn.Conv2d(2 * w, h, 1)
        self.lateral4 = nn.Conv2d(w, h, 1)
        self.smooth16 = conv_bn_relu(h, h)
        self.smooth8 = conv_bn_relu(h, h)
        self.smooth4 = conv_bn_relu(h, h)
        self.heatmap = nn.Conv2d(h, 1, 1)
        self.offset = nn.Conv2d(h, 2, 1)
        self.log_radius = nn.Conv2d(h, 1, 1)
        nn.init.constant_(self.heatmap.bias, -4.6)  # prior of 1% centres, as in CenterNet

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f4 = self.stage4(self.stem(x))
        f8 = self.stage8(f4)
        f16 = self.stage16(f8)
        f32 = self.stage32(f16)
        p = self.lateral32(f32)
        p = self.smooth16(self.lateral16(f16) + F.interpolate(p, scale_factor=2.0))
        p = self.smooth8(self.lateral8(f8) + F.interpolate(p, scale_factor=2.0))
        p = self.smooth4(self.lateral4(f4) + F.interpolate(p, scale_factor=2.0))
        return self.heatmap(p), self.offset(p), self.log_radius(p)
