"""MODE=dummy: deterministic, seeded, and obeying the detection parameters."""

from __future__ import annotations

from backend.inference.dummy import DummyClient
from tests.backend.helpers import circles_png


async def _infer(client: DummyClient, data: bytes, threshold: float = 0.0, most: int = 100):
    return await client.infer(
        data, width=160, height=120, score_threshold=threshold, max_detections=most
    )


async def test_same_bytes_and_seed_give_the_same_circles():
    data = circles_png(seed=1)
    a = await _infer(DummyClient("m", seed=7), data)
    b = await _infer(DummyClient("m", seed=7), data)
    assert a.circles == b.circles and a.circles
    assert (a.model_name, a.model_version) == ("m", "dummy")


async def test_seed_and_content_change_the_circles():
    data = circles_png(seed=1)
    base = await _infer(DummyClient("m", seed=7), data)
    assert (await _infer(DummyClient("m", seed=8), data)).circles != base.circles
    assert (await _infer(DummyClient("m", seed=7), circles_png(seed=2))).circles != base.circles


async def test_threshold_cap_order_and_geometry():
    client = DummyClient("m")
    for seed in range(20):
        data = circles_png(seed=seed)
        all_circles = (await _infer(client, data)).circles
        kept = (await _infer(client, data, threshold=0.7)).circles
        assert kept == [c for c in all_circles if c.score >= 0.7]
        assert (await _infer(client, data, most=1)).circles == all_circles[:1]
        scores = [c.score for c in all_circles]
        assert scores == sorted(scores, reverse=True)
        for c in all_circles:
            assert 0 <= c.x1 <= c.cx <= c.x2 <= 160 and 0 <= c.y1 <= c.cy <= c.y2 <= 120
            assert c.x2 - c.x1 == 2 * c.radius or abs(c.x2 - c.x1 - 2 * c.radius) < 1e-9
