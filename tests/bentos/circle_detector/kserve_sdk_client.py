"""Run by KServe's own SDK (its own virtual environment): the V2 calls a KServe user makes.

Usage: python kserve_sdk_client.py HTTP_URL GRPC_URL MODEL IMAGE_FILE...
Prints one JSON object: health answers, then per encoding the outputs or the error. Only kserve
and numpy are imported, so nothing from the repository leaks into the SDK's environment.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig

OUTPUTS = ["num_detections", "boxes", "centers", "radii", "scores"]
#: LOOSE, as ints: KServe's `to_grpc_parameters` refuses floats (str, bool and int only).
PARAMETERS = {"score_threshold": 0, "max_detections": 20}


def _request(model: str, tensor: InferInput) -> InferRequest:
    return InferRequest(model_name=model, infer_inputs=[tensor], parameters=dict(PARAMETERS))


def _text(files: list[bytes], data_uri: bool = False) -> list[str]:
    prefix = "data:image/png;base64," if data_uri else ""
    return [prefix + base64.b64encode(f).decode() for f in files]


def _json_input(texts: list[str]) -> InferInput:
    """KServe's JSON convention: base64 strings in BYTES `data`."""
    return InferInput("image", [len(texts)], "BYTES", data=texts)


def _binary_input(elements: list[bytes]) -> InferInput:
    """Length-prefixed BYTES after the JSON header (REST) or in raw_input_contents (gRPC)."""
    tensor = InferInput("image", [len(elements)], "BYTES")
    tensor.set_data_from_numpy(np.array(elements, dtype=object), binary_data=True)
    return tensor


def _outputs(response: Any) -> dict[str, Any]:
    by_name = {o.name: o for o in response.outputs}
    return {name: by_name[name].as_numpy().tolist() for name in OUTPUTS}


async def _call(infer, request: InferRequest) -> dict[str, Any]:
    try:
        return {"outputs": _outputs(await infer(request))}
    except httpx.HTTPStatusError as exc:
        return {"status": exc.response.status_code, "error": exc.response.text}
    except grpc.RpcError as exc:
        return {"status": exc.code().name, "error": exc.details()}


async def main(http_url: str, grpc_url: str, model: str, files: list[bytes]) -> dict[str, Any]:
    base = f"http://{http_url}"
    garbage = [base64.b64encode(b"base64 text, but not of an image").decode()]
    rest = InferenceRESTClient(RESTConfig(protocol="v2", retries=0))
    grpc_client = InferenceGRPCClient(grpc_url)
    try:
        report: dict[str, Any] = {
            "rest_live": await rest.is_server_live(base),
            "rest_ready": await rest.is_server_ready(base),
            "rest_model_ready": await rest.is_model_ready(base, model),
            "grpc_live": await grpc_client.is_server_live(),
            "grpc_ready": await grpc_client.is_server_ready(),
            "grpc_model_ready": await grpc_client.is_model_ready(model),
        }

        async def rest_infer(request: InferRequest) -> Any:
            return await rest.infer(base, request, model_name=model)

        cases = {
            "rest_json_base64": (rest_infer, _json_input(_text(files))),
            "rest_json_data_uri": (rest_infer, _json_input(_text(files, data_uri=True))),
            "rest_binary_raw": (rest_infer, _binary_input(files)),
            "rest_binary_base64": (rest_infer, _binary_input([t.encode() for t in _text(files)])),
            "grpc_raw": (grpc_client.infer, _binary_input(files)),
            "grpc_bytes_contents_base64": (grpc_client.infer, _json_input(_text(files))),
            "rest_json_garbage": (rest_infer, _json_input(garbage)),
            "grpc_garbage": (grpc_client.infer, _json_input(garbage)),
        }
        for name, (infer, tensor) in cases.items():
            report[name] = await _call(infer, _request(model, tensor))
        return report
    finally:
        await rest.close()
        await grpc_client.close()


if __name__ == "__main__":
    http_url, grpc_url, model, *paths = sys.argv[1:]
    images = [Path(p).read_bytes() for p in paths]
    print(json.dumps(asyncio.run(main(http_url, grpc_url, model, images))))
