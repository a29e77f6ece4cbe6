"""Cold start of the Bento: process start to the first successful V2 inference.

Measured side by side in one run, alternating, so that every variant sees the same machine load:

- `bentoml serve` of this Bento (supervisor process + one worker),
- the single-process launcher `python -m bentos.circle_detector.standalone` (the container's
  entrypoint: the same V2 app, dataplane and batcher on uvicorn, no BentoML, no torch),
- a trivial stock BentoML service (`@bentoml.api def echo`) with `bentoml serve`: the floor that
  BentoML itself sets, to first successful call of its API.

The clock starts just before the process is spawned and stops at the first 200 answer to a V2
inference of a PNG (or to the stock service's API call). Polls every 20 ms; each poll that is
refused costs the server almost nothing.

    python benchmarks/cold_start_bento.py [--runs 3] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.servers import BENTOML, free_port, prepare_bentoml_home, serve_command  # noqa: E402

#: The lean-serving issue's targets, seconds to the first answer.
TARGETS_S = {"bentoml serve": 1.6, "standalone": 1.0}
STOCK_SERVICE = """
import bentoml


@bentoml.service
class Echo:
    @bentoml.api
    def echo(self, text: str) -> str:
        return text
"""


def _png() -> bytes:
    import cv2
    import numpy as np

    img = np.full((128, 128), 230, dtype=np.uint8)
    cv2.circle(img, (64, 60), 30, 40, 2)
    return cv2.imencode(".png", img)[1].tobytes()


def _v2_request(png: bytes) -> tuple[bytes, dict[str, str]]:
    """A binary-extension V2 request carrying one encoded image."""
    raw = len(png).to_bytes(4, "little") + png
    header = {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [1],
                "parameters": {"binary_data_size": len(raw)},
            }
        ]
    }
    head = json.dumps(header).encode()
    return head + raw, {"Inference-Header-Content-Length": str(len(head))}


def time_to_first_answer(
    command: list[str],
    cwd: Path,
    env: dict[str, str],
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_s: float = 60.0,
) -> float:
    """Seconds from spawning `command` to the first 200 answer of POST `url`."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        with httpx.Client(timeout=5.0) as client:
            while time.perf_counter() - started < timeout_s:
                if process.poll() is not None:
                    raise RuntimeError(f"{command[:3]} exited with {process.returncode}")
                try:
                    if client.post(url, content=body, headers=headers).status_code == 200:
                        return time.perf_counter() - started
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)
        raise TimeoutError(f"{command[:3]}: no answer within {timeout_s} s")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per variant (default 3)")
    parser.add_argument("--json-out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)

    body, headers = _v2_request(_png())
    results: dict[str, list[float]] = {"bentoml serve": [], "standalone": [], "stock BentoML": []}
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        home = prepare_bentoml_home(Path(tmp) / "home")
        stock_dir = Path(tmp) / "stock"
        stock_dir.mkdir()
        (stock_dir / "service.py").write_text(STOCK_SERVICE)
        env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
        for run in range(args.runs):
            for name in results:
                port = free_port()
                run_env = {**env, "CIRCLE_DETECTOR_GRPC_PORT": str(free_port())}
                if name == "stock BentoML":
                    command = [str(BENTOML), "serve", "service:Echo", "--port", str(port)]
                    command += ["--host", "127.0.0.1"]
                    url, cwd = f"http://127.0.0.1:{port}/echo", stock_dir
                    call_body, call_headers = (
                        b'{"text": "hi"}',
                        {"Content-Type": "application/json"},
                    )
                else:
                    command = serve_command(port, standalone=name == "standalone")
                    url, cwd = f"http://127.0.0.1:{port}/v2/models/circle-detector/infer", REPO_ROOT
                    call_body, call_headers = body, headers
                seconds = time_to_first_answer(command, cwd, run_env, url, call_body, call_headers)
                results[name].append(seconds)
                print(f"run {run + 1}: {name:<14} {seconds:.2f} s", flush=True)
    report: dict[str, Any] = {"targets_s": TARGETS_S, "runs": results, "median_s": {}}
    stock = statistics.median(results["stock BentoML"])
    print(f"\nprocess start -> first successful answer (median of {args.runs})")
    for name, values in results.items():
        median = statistics.median(values)
        report["median_s"][name] = median
        target = TARGETS_S.get(name)
        verdict = (
            ""
            if target is None
            else f"  {'meets' if median <= target else 'misses'} the {target} s target"
        )
        print(
            f"  {name:<14} median {median:.2f} s  (min {min(values):.2f}, max {max(values):.2f})"
            f"  = {median / stock:.2f} x stock{verdict}"
        )
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
