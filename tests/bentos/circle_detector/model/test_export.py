"""Batch-norm folding: the same function as the network it came from, with no batch norm left."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from bentos.circle_detector.model.export import fold_batch_norms  # noqa: E402
from bentos.circle_detector.model.network import CircleNet  # noqa: E402


def _net_with_running_statistics() -> torch.nn.Module:
    torch.manual_seed(0)
    net = CircleNet(width=8, head_channels=8)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.2, 3.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
    return net.eval()


def test_folding_keeps_the_outputs_and_removes_every_batch_norm() -> None:
    net = _net_with_running_statistics()
    folded = fold_batch_norms(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # a copy, not in place
    x = torch.rand(2, 1, 64, 96)
    with torch.no_grad():
        for before, after in zip(net(x), folded(x), strict=True):
            torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_folding_is_reproducible() -> None:
    net = _net_with_running_statistics()
    first, second = fold_batch_norms(net).state_dict(), fold_batch_norms(net).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
