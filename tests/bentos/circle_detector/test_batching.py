"""Concurrency: 64 simultaneous infer calls (REST and gRPC mixed) for 5 rounds, zero failures,
and BentoML's adaptive batcher merges them (batch sizes > 1 in the /metrics histogram)."""

from __future__ import annotations

import asyncio
import re

import httpx
import numpy as np
import tritonclient.grpc.aio as grpc_aio
import tritonclient.http.aio as http_aio

from tests.bentos.circle_detector.images import circles_image, encode, reference

MODEL = "circle-detector"
CONCURRENCY = 64
ROUNDS = 5
_BUCKET = re.compile(
    r"^bentoml_service_adaptive_batch_size_bucket\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.M
)


def batch_size_buckets(metrics_text: str) -> dict[float, float]:
    """Cumulative counts of the `detect` batch-size histogram, by upper bound."""
    buckets: dict[float, float] = {}
    for match in _BUCKET.finditer(metrics_text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("method_name") == "detect":
            bound = float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + float(match["value"])
    return buckets


async def _rest_call(client, tensor_bytes: bytes) -> int:
    tensor = http_aio.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([tensor_bytes], dtype=object))
    result = await client.infer(MODEL, [tensor], parameters={"score_threshold": 0.0})
    return int(result.as_numpy("num_detections")[0])


async def _grpc_call(client, tensor_bytes: bytes) -> int:
    tensor = grpc_aio.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([tensor_bytes], dtype=object))
    result = await client.infer(MODEL, [tensor], parameters={"score_threshold": 0.0})
    return int(result.as_numpy("num_detections")[0])


async def test_concurrent_calls_all_succeed_and_are_batched(bento_server):
    image = circles_image(64, 64, 41)
    png = encode(image)
    expected = len(reference([image], 0.0, 100)[0])
    async with httpx.AsyncClient(timeout=10) as http:
        before = batch_size_buckets((await http.get(bento_server.metrics_url)).text)
    failures: list[BaseException] = []
    async with (
        http_aio.InferenceServerClient(bento_server.http_url, conn_limit=CONCURRENCY) as rest,
        grpc_aio.InferenceServerClient(bento_server.grpc_url) as grpc,
    ):
        for _ in range(ROUNDS):
            calls = [
                _rest_call(rest, png) if i % 2 else _grpc_call(grpc, png)
                for i in range(CONCURRENCY)
            ]
            results = await asyncio.gather(*calls, return_exceptions=True)
            failures += [r for r in results if isinstance(r, BaseException)]
            assert [r for r in results if not isinstance(r, BaseException)] == [expected] * (
                CONCURRENCY - sum(isinstance(r, BaseException) for r in results)
            )
    assert not failures, f"{len(failures)} of {CONCURRENCY * ROUNDS} calls failed: {failures[:3]}"
    async with httpx.AsyncClient(timeout=10) as http:
        after = batch_size_buckets((await http.get(bento_server.metrics_url)).text)
    batches = after[float("inf")] - before.get(float("inf"), 0.0)
    singles = after[1.0] - before.get(1.0, 0.0)
    assert 0 < batches < CONCURRENCY * ROUNDS, "requests were not merged into batches"
    assert singles < batches, "every batch held a single image"
