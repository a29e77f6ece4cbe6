"""`benchmarks/report.py`: histograms, ratios, CSVs, plots and the summary of one suite run.

The input is a results dictionary in the shape `run_local.py` writes (figures chosen here so
that every ratio is easy to check by hand); the suite's real runs are in `benchmarks/results/`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from benchmarks import report


def row(target: str, users: int, rps: float, mean: float, p95: float) -> dict:
    return {"target": target, "users": users, "requests": int(rps * 10), "failures": 0,
            "rps": rps, "mean_ms": mean, "p50_ms": mean, "p95_ms": p95, "p99_ms": p95 * 1.2,
            "max_ms": p95 * 1.5, "csv_prefix": "x"}  # fmt: skip


def hist(cumulative: dict[float, float], total: float) -> dict:
    return {"buckets": cumulative, "sum": total, "count": max(cumulative.values())}


@pytest.fixture
def results() -> dict:
    on = {
        **row("v2_http", 8, 40.0, 150, 300),
        "mean_batch": 4.0,
        "batch_histogram": hist({1.0: 2, 2.0: 2, 4.0: 10, 8.0: 12, float("inf"): 12}, 48),
    }
    off = {**row("v2_http", 8, 20.0, 300, 900), "mean_batch": 1.0,
           "batch_histogram": hist({1.0: 200, 2.0: 200, float("inf"): 200}, 200)}  # fmt: skip
    return {
        "meta": {"command": "python benchmarks/run_local.py", "started_utc": "t0",
                 "finished_utc": "t1", "wall_s": 1.0,
                 "machine": {"cpu": "cpu", "cores": 2, "memory_gib": 24, "python": "3.11",
                             "onnxruntime": "1.32", "bentoml": "1.4", "git_commit": "abc",
                             "load_average_at_start": [1, 1, 1]}},
        "batching_off_max_batch_size": 1,
        "curves": [row("v2_http", 1, 10.0, 100, 120), row("backend", 1, 8.0, 125, 150),
                   row("v2_http", 8, 40.0, 150, 300), row("backend", 8, 30.0, 250, 400)],
        "rounds": [{"on": on, "off": off, "raw_batch": 4, "raw_images_per_s": 50.0,
                    "raw_images_per_s_batch1": 20.0, "raw_threads": 1}],
        "grpc": row("v2_grpc", 8, 44.0, 140, 280),
        "cold_start": {"bento_first_answer_s": [5.0, 4.0, 6.0],
                       "backend": {"live_s": [1.0, 1.1, 1.2], "ready_s": [1.5, 1.4, 1.6]}},
    }  # fmt: skip


def test_per_bucket_turns_cumulative_counts_into_ranges():
    h = hist({1.0: 2, 2.0: 5, 4.0: 5, 8.0: 9, float("inf"): 9}, 0)
    assert report.per_bucket(h) == [("1", 2), ("2", 3), ("3-4", 0), ("5-8", 4), (">8", 0)]
    # as read back from results.json, where keys are strings
    assert report.per_bucket(json.loads(json.dumps(h))) == report.per_bucket(h)


def test_aligned_gives_every_histogram_the_same_buckets():
    small = hist({1.0: 5, float("inf"): 6}, 7)
    big = hist({1.0: 1, 2.0: 3, 4.0: 4, float("inf"): 4}, 10)
    both = report.aligned({"off": small, "on": big})
    assert report.per_bucket(both["off"]) == [("1", 5), ("2", 0), ("3-4", 0), (">4", 1)]
    assert report.per_bucket(both["on"]) == report.per_bucket(big)


def test_headline_ratios(results):
    rows = {name: value for name, value, _ in report.headline(results)}
    assert rows["serving overhead: V2 HTTP / raw model, throughput at 8 users"] == "0.80"
    assert rows["adaptive batching on / off: throughput at 8 users"] == "2.00"
    assert rows["adaptive batching off / on: p95 latency at 8 users"] == "3.00"
    assert rows["serving latency: V2 HTTP / raw model, mean at 1 user"] == "2.00"
    assert rows["backend upload / direct V2: mean latency at 1 user"] == "1.25"
    assert rows["backend upload / direct V2: throughput at 8 users"] == "0.75"
    assert rows["V2 gRPC / V2 HTTP: throughput at 8 users"] == "1.10"
    assert rows["Bento cold start (`bentoml serve` -> first answer)"].startswith("5.00 s (min 4.00")
    assert rows["failed requests"] == "0 of 1920"


def test_write_produces_csvs_plots_and_summary(results, tmp_path: Path):
    report.write(tmp_path, results)
    with open(tmp_path / "curves.csv", newline="") as f:
        curves = list(csv.DictReader(f))
    assert [(r["target"], r["users"]) for r in curves] == [
        ("v2_http", "1"), ("backend", "1"), ("v2_http", "8"), ("backend", "8"), ("v2_grpc", "8")
    ]  # fmt: skip
    with open(tmp_path / "batch_histogram.csv", newline="") as f:
        hist_rows = [r for r in csv.DictReader(f) if r["phase"] == "batching on"]
    assert {r["batch_size"]: int(r["batches"]) for r in hist_rows}["3-4"] == 8
    assert (tmp_path / "cold_start.csv").read_text().count("backend_ready") == 3
    summary = (tmp_path / "summary.md").read_text()
    for name in report.PLOTS:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in summary
    assert "| adaptive batching on / off: throughput at 8 users | **2.00** |" in summary
