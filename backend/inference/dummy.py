"""MODE=dummy: seeded, deterministic fake detections, so the backend runs without a model server.

The same bytes and seed always give the same circles, which keeps tests and demos repeatable.
"""

from __future__ import annotations

import hashlib
import random
import time

from backend.inference.base import Circle, InferenceResult

DUMMY_VERSION = "dummy"


class DummyClient:
    """Fake circles drawn from a random generator seeded by the image's hash and a seed."""

    def __init__(self, model_name: str, seed: int = 0) -> None:
        self.model_name = model_name
        self.seed = seed

    async def infer(
        self, data: bytes, *, width: int, height: int, score_threshold: float, max_detections: int
    ) -> InferenceResult:
        start = time.perf_counter()
        rng = random.Random(f"{self.seed}:{hashlib.sha256(data).hexdigest()}")
        side = min(width, height)
        circles = []
        for _ in range(rng.randint(1, 5)):
            radius = rng.uniform(0.05, 0.25) * side
            cx = rng.uniform(radius, width - radius)
            cy = rng.uniform(radius, height - radius)
            score = round(rng.uniform(0.3, 1.0), 4)
            circles.append(
                Circle(cx - radius, cy - radius, cx + radius, cy + radius, cx, cy, radius, score)
            )
        kept = sorted((c for c in circles if c.score >= score_threshold), key=lambda c: -c.score)
        return InferenceResult(
            model_name=self.model_name,
            model_version=DUMMY_VERSION,
            circles=kept[:max_detections],
            inference_ms=(time.perf_counter() - start) * 1000.0,
        )

    async def ready(self) -> None:
        return None

    async def close(self) -> None:
        return None
