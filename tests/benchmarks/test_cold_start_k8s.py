"""`benchmarks/cold_start_k8s.py` against a stand-in cluster.

A Kubernetes cluster cannot run here, so `kubectl` is mocked: a small script that answers the
two reads the benchmark makes (the InferenceService's URL, the predictor's pods, which go from
two to none) and logs its arguments. Everything else is real: a Host-routing gateway (the real
reverse proxy of the backend's tests) in front of the real Bento answers the timed inference.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

import pytest

from benchmarks import cold_start_k8s
from tests.benchmarks.conftest import SERVICE_HOST

FAKE_KUBECTL = """#!{python}
import json, sys
from pathlib import Path
state = Path({state!r})
calls = json.loads(state.read_text()) if state.exists() else []
calls.append(sys.argv[1:])
state.write_text(json.dumps(calls))
args = sys.argv[1:]
if "inferenceservice" in args:
    print(json.dumps({{"status": {{"url": "http://{host}"}}}}))
elif "pods" in args:
    polls = sum("pods" in c for c in calls)
    running = {{"metadata": {{"name": "p1"}}, "status": {{"phase": "Running"}}}}
    leaving = {{"metadata": {{"name": "p2", "deletionTimestamp": "2026-01-01T00:00:00Z"}},
               "status": {{"phase": "Running"}}}}
    items = [running, leaving] if polls == 1 else [running] if polls == 2 else [leaving]
    print(json.dumps({{"items": items}}))
else:
    sys.exit("unexpected kubectl call: " + " ".join(args))
"""


@pytest.fixture
def kubectl(tmp_path: Path) -> tuple[Path, Path]:
    state = tmp_path / "calls.json"
    script = tmp_path / "kubectl"
    script.write_text(
        FAKE_KUBECTL.format(python=sys.executable, state=str(state), host=SERVICE_HOST)
    )
    script.chmod(0o755)
    return script, state


@pytest.fixture
def gateway(bento_server, start_gateway) -> tuple[str, list[str]]:
    return start_gateway(bento_server.http_url)


def test_waits_for_zero_pods_then_times_the_first_answer(kubectl, gateway, tmp_path, capsys,
                                                          monkeypatch):  # fmt: skip
    monkeypatch.delenv("BENCH_HOST_HEADER", raising=False)
    script, state = kubectl
    address, seen = gateway
    out = tmp_path / "cold.json"
    args = ["--gateway", f"http://{address}", "--kubectl", str(script), "--poll", "0.01"]
    code = cold_start_k8s.main([*args, "--runs", "2", "--json-out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["host"] == SERVICE_HOST  # read from the InferenceService's status.url
    assert len(report["runs_s"]) == 2 and all(0 < s < 60 for s in report["runs_s"])
    assert report["median_s"] == statistics.median(report["runs_s"])
    assert report["min_s"] <= report["median_s"] <= report["max_s"]
    assert seen == [SERVICE_HOST, SERVICE_HOST]  # one request per run, by the model's Host
    calls = json.loads(state.read_text())
    pod_reads = [c for c in calls if "pods" in c]
    assert len(pod_reads) == 4  # two polls with pods left, then zero before each of the 2 runs
    selector = "serving.kserve.io/inferenceservice=circle-detector,component=predictor"
    assert pod_reads[0][:5] == ["-n", "circle-detector", "get", "pods", "-l"]
    assert pod_reads[0][5] == selector
    printed = capsys.readouterr().out
    assert printed.index("waiting for scale to zero: 1 pod(s)") < printed.index("run 1:")


def test_a_request_the_gateway_refuses_is_a_clear_timeout(kubectl, gateway, monkeypatch):
    monkeypatch.setenv("BENCH_HOST_HEADER", "someone-else.example.com")
    script, _ = kubectl
    address, seen = gateway
    with pytest.raises(TimeoutError, match="HTTP 404"):
        cold_start_k8s.main(["--gateway", f"http://{address}", "--kubectl", str(script),
                             "--poll", "0.01", "--runs", "1",
                             "--request-timeout", "1"])  # fmt: skip
    assert set(seen) == {"someone-else.example.com"}


def test_kubectl_errors_are_reported(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_HOST_HEADER", raising=False)
    failing = tmp_path / "kubectl"
    failing.write_text("#!/bin/sh\necho 'no context' >&2\nexit 1\n")
    failing.chmod(0o755)
    with pytest.raises(RuntimeError, match="no context"):
        cold_start_k8s.main(["--gateway", "http://127.0.0.1:9", "--kubectl", str(failing)])


@pytest.mark.parametrize(
    "module", ["cold_start_k8s", "backend_ready", "run_local", "report", "serving_overhead"]
)
def test_every_command_has_help(module, capsys):
    import importlib

    command = importlib.import_module(f"benchmarks.{module}")
    with pytest.raises(SystemExit) as exit_info:
        command.main(["--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out
    assert os.path.exists(command.__file__)
