"""The network's two stems: both predict at stride 4, and each checkpoint rebuilds its own."""

from __future__ import annotations

import pytest
import torch

from bentos.circle_detector.model.artifacts import ModelInfo
from bentos.circle_detector.model.checkpoint import from_checkpoint, to_checkpoint
from bentos.circle_detector.model.network import STRIDE, CircleNet
from bentos.circle_detector.model.scoring import Scorer


@pytest.mark.parametrize("fine_channels", [0, 16])
def test_heads_are_at_stride_4_whichever_stem(fine_channels: int) -> None:
    net = CircleNet(fine_channels=fine_channels).eval()
    with torch.no_grad():
        heat, offset, log_radius = net(torch.zeros(2, 1, 64, 96))
    cells = (2, 64 // STRIDE, 96 // STRIDE)
    assert heat.shape == (cells[0], 1, *cells[1:])
    assert offset.shape == (cells[0], 2, *cells[1:])
    assert log_radius.shape == (cells[0], 1, *cells[1:])


def test_the_fine_stem_keeps_a_full_convolution_at_stride_2() -> None:
    coarse, fine = CircleNet(), CircleNet(fine_channels=16)
    assert len(coarse.stem) == 2 and len(fine.stem) == 3
    assert fine.stem[1][0].stride == (1, 1) and fine.stem[1][0].out_channels == 16


@pytest.mark.parametrize(
    "config",
    [{"width": 16, "head_channels": 32}, {"width": 16, "head_channels": 32, "fine_channels": 16}],
    ids=["version 5 config", "version 6 config"],
)
def test_a_checkpoint_rebuilds_the_network_it_was_saved_from(config: dict) -> None:
    torch.manual_seed(0)
    net = CircleNet(**config).eval()
    image = torch.randn(1, 1, 64, 64)
    checkpoint = to_checkpoint(net, ModelInfo(version="x", config=config), Scorer())
    rebuilt, info, _ = from_checkpoint(checkpoint)
    assert info.config == config
    with torch.no_grad():
        for a, b in zip(net(image), rebuilt(image), strict=True):
            torch.testing.assert_close(a, b)
