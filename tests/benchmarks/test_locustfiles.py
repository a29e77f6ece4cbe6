"""The Locust files run headless for a few seconds against real local servers.

Each run is a real `locust --headless` process (`benchmarks.locust_run`), so the files cannot
rot: zero failures, requests recorded in Locust's own CSV statistics, per image and aggregated.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.locust_run import read_stats, run_locust
from tests.benchmarks.conftest import SERVICE_HOST

SECONDS = 4
ENV = {"BENCH_SIZES": "256", "BENCH_HOST_HEADER": ""}


def per_image(prefix: Path) -> dict[str, int]:
    """Requests per name in Locust's final JSON statistics."""
    return {e["name"]: e["num_requests"] for e in json.loads(Path(f"{prefix}.json").read_text())}


@pytest.mark.parametrize("target", ["v2_http", "v2_grpc", "backend"])
def test_locustfile_runs_without_failures(target, bento_server, dummy_backend, tmp_path):
    host = {
        "v2_http": f"http://{bento_server.http_url}",
        "v2_grpc": f"http://{bento_server.grpc_url}",
        "backend": dummy_backend.url,
    }[target]
    result = run_locust(target, host, 2, SECONDS, tmp_path / target, ENV)
    assert result.failures == 0, Path(f"{tmp_path / target}_failures.csv").read_text()
    assert result.requests >= 4
    assert result.rps > 0 and result.p50_ms > 0
    counts = per_image(tmp_path / target)
    names = set(counts)
    # the corpus mixes real photographs and synthetic scenes; both were sent
    assert any("real-" in n for n in names) and any("synthetic-" in n for n in names)
    assert sum(counts.values()) == result.requests
    assert Path(f"{tmp_path / target}_stats.csv").read_text().startswith("Type,Name")


@pytest.mark.parametrize("target", ["v2_http", "backend"])
def test_host_header_routes_through_a_gateway(target, bento_server, dummy_backend, start_gateway,
                                              tmp_path):  # fmt: skip
    """BENCH_HOST_HEADER reaches a gateway that routes by Host; without it every call fails."""
    upstream = bento_server.http_url if target == "v2_http" else dummy_backend.url[7:]
    address, seen = start_gateway(upstream)
    ok = run_locust(target, f"http://{address}", 1, 3, tmp_path / "ok",
                    {**ENV, "BENCH_HOST_HEADER": SERVICE_HOST})  # fmt: skip
    assert ok.failures == 0 and ok.requests > 0
    assert set(seen) == {SERVICE_HOST}
    refused = run_locust(target, f"http://{address}", 1, 2, tmp_path / "refused", ENV)
    assert refused.requests > 0 and refused.failures == refused.requests
    assert f"127.0.0.1:{address.rsplit(':', 1)[1]}" in seen


def test_read_stats_says_when_locust_wrote_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="did not finish"):
        read_stats(tmp_path / "x", "backend", 1)
