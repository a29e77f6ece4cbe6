"""Smoke test of the Bento's benchmark scripts: they run end to end on tiny settings and their
parsers read the real servers' output (figures themselves are not checked: they depend on load)."""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks import serving_overhead
from tests.servers import REPO_ROOT


def test_serving_overhead_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "figures.json"
    argv = ["--seconds", "0.5", "--rounds", "1", "--size", "64", "--saturation", "4"]
    assert serving_overhead.main([*argv, "--standalone", "--json-out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [r["clients"] for r in report["latency"]] == [1, 8, 32]
    assert all(r["failures"] == 0 and r["requests"] > 0 for r in report["latency"])
    assert report["rounds"][0]["raw_images_per_s"] > 0
    assert report["rounds"][0]["batch_histogram"]["count"] > 0
    stages = report["lone_request_ms"]
    assert stages["client-observed"] > stages["server inference"] > stages["  network"] > 0
    assert stages["  prepare"] > 0 and stages["  finish"] > 0
    printed = capsys.readouterr().out
    assert "ratio server / raw" in printed and "thread hops" in printed


def test_overload_runs_both_cases_and_reports(tmp_path):
    """Tiny phases: the verdict may be either (exit 0 or 1); every row is printed, the refusals
    Locust saw are the ones /metrics counted, and nothing failed but 429s. (A subprocess:
    Locust's gevent patching does not import under pytest.)"""
    argv = ["--seconds", "3", "--sustain-users", "4", "--max-users", "40", "--side", "64"]
    argv += ["--compare", "--output-dir", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "benchmarks/overload.py", *argv],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-2000:]
    printed = done.stdout
    assert "== in-flight admission off" in printed and "== in-flight admission on" in printed
    assert printed.count("other failures               0") == 2, printed
    assert "missed: refusals not all counted" not in printed, printed


def test_histogram_parser():
    text = "\n".join(
        [
            "# TYPE circle_detector_batch_size histogram",
            'circle_detector_batch_size_bucket{le="1.0"} 2.0',
            'circle_detector_batch_size_bucket{le="4.0"} 5.0',
            'circle_detector_batch_size_bucket{le="+Inf"} 6.0',
            "circle_detector_batch_size_sum 17.0",
            "circle_detector_batch_size_count 6.0",
            "circle_detector_batch_size_created 1.7e9",
            'circle_detector_queue_seconds_count{le="1.0"} 9.0',
        ]
    )
    h = serving_overhead.histogram(text)
    assert h["buckets"] == {1.0: 2.0, 4.0: 5.0, float("inf"): 6.0}
    assert (h["sum"], h["count"]) == (17.0, 6.0)


def test_server_times_parser():
    text = "\n".join(
        [
            'circle_detector_stage_seconds_sum{stage="network"} 0.5',
            'circle_detector_stage_seconds_count{stage="network"} 10.0',
            'circle_detector_stage_seconds_bucket{le="0.01",stage="network"} 3.0',
            'circle_detector_inference_seconds_sum{model="circle-detector"} 2.0',
            'circle_detector_inference_seconds_count{model="circle-detector"} 8.0',
        ]
    )
    assert serving_overhead.server_times(text) == {"network": [0.5, 10.0], "inference": [2.0, 8.0]}
