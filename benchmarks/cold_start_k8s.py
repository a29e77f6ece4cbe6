"""Cold start on Kubernetes: from a predictor scaled to zero to the first answered V2 inference.

Each run waits (reading pods with `kubectl`) until the KServe InferenceService's predictor has
no pod left, then sends one V2 inference of a PNG through Knative's local gateway with the
model's `Host` header and times it until a 200 comes back (Knative's activator holds the request
while a pod starts). Repeated `--runs` times; prints min/median/max.

The InferenceService is cluster-local (`networking.knative.dev/visibility: cluster-local`), so
only `knative-local-gateway` routes to it, by its `status.url` host
(`circle-detector.<namespace>.svc.cluster.local`), the path the backend takes too:

    kubectl -n istio-system port-forward svc/knative-local-gateway 18081:80 &
    python benchmarks/cold_start_k8s.py --gateway http://127.0.0.1:18081 --runs 3

Waiting for scale to zero takes the autoscaler's scale-down delay plus its window each run
(5 min + 60 s in `k8s/base/inferenceservice.yaml`), so three runs take about 20 minutes.
It cannot run on a machine without a cluster; its test drives it with a stand-in `kubectl`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.cold_start_bento import _png, _v2_request  # noqa: E402


class Kubectl:
    """The few `kubectl` reads this benchmark needs."""

    def __init__(self, binary: str, namespace: str, context: str | None) -> None:
        self.base = [binary, *(["--context", context] if context else []), "-n", namespace]

    def _json(self, *args: str) -> Any:
        done = subprocess.run(
            [*self.base, *args, "-o", "json"], capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return json.loads(done.stdout)

    def model_host(self, isvc: str) -> str:
        """The InferenceService's virtual host (`status.url` without its scheme)."""
        url = self._json("get", "inferenceservice", isvc).get("status", {}).get("url", "")
        if not url:
            raise RuntimeError(f"InferenceService {isvc} has no status.url yet (not ready?)")
        return url.split("://", 1)[-1].rstrip("/")

    def predictor_pods(self, isvc: str) -> int:
        """Predictor pods that exist and are not being deleted."""
        selector = f"serving.kserve.io/inferenceservice={isvc},component=predictor"
        pods = self._json("get", "pods", "-l", selector).get("items", [])
        return sum(
            1
            for p in pods
            if not p["metadata"].get("deletionTimestamp")
            and p.get("status", {}).get("phase") not in {"Succeeded", "Failed"}
        )


def wait_scaled_to_zero(kubectl: Kubectl, isvc: str, timeout_s: float, poll_s: float) -> float:
    """Seconds waited until no predictor pod is left."""
    started = time.monotonic()
    while (pods := kubectl.predictor_pods(isvc)) > 0:
        waited = time.monotonic() - started
        if waited > timeout_s:
            raise TimeoutError(f"{pods} predictor pod(s) still up after {timeout_s:.0f} s")
        print(f"  waiting for scale to zero: {pods} pod(s), {waited:.0f} s", flush=True)
        time.sleep(poll_s)
    return time.monotonic() - started


def first_answer(
    url: str, host: str, body: bytes, headers: dict[str, str], timeout_s: float
) -> float:
    """Seconds until one V2 inference answers 200 (retrying refusals until `timeout_s`)."""
    headers = {**headers, "Host": host}
    started = time.perf_counter()
    last = ""
    with httpx.Client(timeout=timeout_s) as client:
        while time.perf_counter() - started < timeout_s:
            try:
                response = client.post(url, content=body, headers=headers)
                if response.status_code == 200:
                    return time.perf_counter() - started
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
    raise TimeoutError(f"no 200 within {timeout_s:.0f} s; last: {last}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--gateway", required=True, help="knative-local-gateway's URL, http://HOST:PORT"
    )
    parser.add_argument("--namespace", default="circle-detector", help="(circle-detector)")
    parser.add_argument("--isvc", default="circle-detector", help="InferenceService name")
    parser.add_argument("--model", default="circle-detector", help="V2 model name")
    parser.add_argument(
        "--host-header",
        default=os.environ.get("BENCH_HOST_HEADER", ""),
        help="Host of the model (default: $BENCH_HOST_HEADER, else the InferenceService's URL)",
    )
    parser.add_argument("--context", default=None, help="kubectl context (default: current)")
    parser.add_argument("--kubectl", default="kubectl", help="kubectl binary (default: kubectl)")
    parser.add_argument("--runs", type=int, default=3, help="cold starts to time (default 3)")
    parser.add_argument(
        "--scale-timeout", type=float, default=900, help="longest wait for zero pods (900 s)"
    )
    parser.add_argument("--poll", type=float, default=5.0, help="kubectl poll interval (5 s)")
    parser.add_argument(
        "--request-timeout", type=float, default=300, help="longest wait for a 200 (300 s)"
    )
    parser.add_argument("--json-out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)

    kubectl = Kubectl(args.kubectl, args.namespace, args.context)
    host = args.host_header or kubectl.model_host(args.isvc)
    url = f"{args.gateway.rstrip('/')}/v2/models/{args.model}/infer"
    body, headers = _v2_request(_png())
    seconds: list[float] = []
    for run in range(args.runs):
        waited = wait_scaled_to_zero(kubectl, args.isvc, args.scale_timeout, args.poll)
        took = first_answer(url, host, body, headers, args.request_timeout)
        seconds.append(took)
        print(f"run {run + 1}: scaled to zero after {waited:.0f} s; first answer {took:.2f} s")
    report = {
        "host": host,
        "gateway": args.gateway,
        "runs_s": seconds,
        "min_s": min(seconds),
        "median_s": statistics.median(seconds),
        "max_s": max(seconds),
    }
    print(
        f"cold start through the gateway ({args.runs} runs): min {report['min_s']:.2f} s, "
        f"median {report['median_s']:.2f} s, max {report['max_s']:.2f} s"
    )
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
