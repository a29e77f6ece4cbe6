"""`circle-detector infer`: send image files to any V2 server and print detections and latency.

Works against this Bento (`--url 127.0.0.1:3000`, or `--grpc --url 127.0.0.1:8081`) and against
the KServe InferenceService behind the Istio gateway (`--host-header` carries the service's
host name, which the gateway routes on).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

HELP = "Send images to a V2 inference server (REST or gRPC) and print detections and latency."
OUTPUTS = ("num_detections", "boxes", "centers", "radii", "scores")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files")
    parser.add_argument(
        "--url",
        default="127.0.0.1:3000",
        help="server as HOST:PORT, no scheme (default %(default)s)",
    )
    parser.add_argument("--grpc", action="store_true", help="use the V2 gRPC protocol")
    parser.add_argument(
        "--host-header", default=None, help="Host header / gRPC authority (Istio ingress routing)"
    )
    parser.add_argument(
        "--model", default="circle-detector", help="model name (default %(default)s)"
    )
    parser.add_argument("--score-threshold", type=float, default=None, help="server default: 0.5")
    parser.add_argument("--max-detections", type=int, default=None, help="server default: 100")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tritonclient.utils import InferenceServerException

    files = []
    for path in args.images:
        try:
            files.append(path.read_bytes())
        except OSError as exc:
            print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
            return 2
    parameters: dict[str, Any] = {}
    if args.score_threshold is not None:
        parameters["score_threshold"] = args.score_threshold
    if args.max_detections is not None:
        parameters["max_detections"] = args.max_detections
    batch = np.array(files, dtype=object)
    try:
        started = time.perf_counter()
        outputs = (
            _infer_grpc(args, batch, parameters)
            if args.grpc
            else _infer_http(args, batch, parameters)
        )
        latency_ms = (time.perf_counter() - started) * 1000
    except InferenceServerException as exc:
        print(f"error: the server refused the request: {exc.message()}", file=sys.stderr)
        return 1
    except Exception as exc:  # connection refused, DNS, timeouts: say what and where
        print(f"error: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    report = _report(args.images, outputs, latency_ms)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report, "gRPC" if args.grpc else "REST", args.url)
    return 0


def _infer_http(args: argparse.Namespace, batch, parameters: dict[str, Any]):
    import tritonclient.http as client_lib

    headers = {"Host": args.host_header} if args.host_header else None
    with client_lib.InferenceServerClient(
        args.url, connection_timeout=args.timeout, network_timeout=args.timeout
    ) as client:
        tensor = client_lib.InferInput("image", [len(batch)], "BYTES")
        tensor.set_data_from_numpy(batch, binary_data=True)
        requested = [client_lib.InferRequestedOutput(n, binary_data=True) for n in OUTPUTS]
        result = client.infer(
            args.model, [tensor], outputs=requested, parameters=parameters or None, headers=headers
        )
        return {n: result.as_numpy(n) for n in OUTPUTS}


def _infer_grpc(args: argparse.Namespace, batch, parameters: dict[str, Any]):
    import tritonclient.grpc as client_lib

    channel_args = [("grpc.max_receive_message_length", 1 << 28)]
    if args.host_header:
        channel_args.append(("grpc.default_authority", args.host_header))
    with client_lib.InferenceServerClient(args.url, channel_args=channel_args) as client:
        tensor = client_lib.InferInput("image", [len(batch)], "BYTES")
        tensor.set_data_from_numpy(batch)
        result = client.infer(
            args.model, [tensor], parameters=parameters or None, client_timeout=args.timeout
        )
        return {n: result.as_numpy(n) for n in OUTPUTS}


def _report(paths: list[Path], outputs: dict[str, Any], latency_ms: float) -> dict[str, Any]:
    images = []
    for i, path in enumerate(paths):
        n = int(outputs["num_detections"][i])
        circles = [
            {
                "center": [round(float(v), 2) for v in outputs["centers"][i, k]],
                "radius": round(float(outputs["radii"][i, k]), 2),
                "score": round(float(outputs["scores"][i, k]), 4),
                "bbox": [round(float(v), 2) for v in outputs["boxes"][i, k]],
            }
            for k in range(n)
        ]
        images.append({"image": str(path), "num_detections": n, "circles": circles})
    return {"latency_ms": round(latency_ms, 1), "images": images}


def _print(report: dict[str, Any], transport: str, url: str) -> None:
    for image in report["images"]:
        print(f"{image['image']}: {image['num_detections']} circle(s)")
        for c in image["circles"]:
            cx, cy = c["center"]
            print(
                f"  centre ({cx:.1f}, {cy:.1f})  radius {c['radius']:.1f}  score {c['score']:.3f}"
            )
    print(f"latency: {report['latency_ms']:.1f} ms ({transport} {url})")
