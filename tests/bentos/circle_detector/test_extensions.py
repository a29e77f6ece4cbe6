"""The statistics, model configuration and model repository extensions, against a real server
(the single-process launcher on 127.0.0.1) serving a model directory with two versions, through
tritonclient over HTTP and gRPC, sync and asyncio."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as aiogrpcclient
import tritonclient.http as httpclient
import tritonclient.http.aio as aiohttpclient
from tritonclient.utils import InferenceServerException

from bentos.circle_detector.model.artifacts import METADATA_FILE, MODEL_DIR
from bentos.circle_detector.server import FULL_WARM_UP_LOG
from tests.bentos.circle_detector.images import circles_image, encode
from tests.servers import BentoServer, start_bento, stop_bento

MODEL = "circle-detector"
IMAGE = encode(circles_image(64, 64, 3))


def two_versions(root: Path) -> Path:
    """A model directory with versions 1 and 2, both the committed model folder."""
    for version in ("1", "2"):
        shutil.copytree(MODEL_DIR, root / version, ignore=shutil.ignore_patterns("*.md"))
    return root


def _serve(home: Path, models: Path, **env: str) -> BentoServer:
    server = start_bento(
        home,
        env={"CIRCLE_DETECTOR_MODEL_DIR": str(models), "CIRCLE_DETECTOR_VERSION_POLICY": "all",
             **env},
        standalone=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while FULL_WARM_UP_LOG not in server.log_tail(1 << 20):  # no warm-up batch shares a run
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.05)
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory, bentoml_home) -> Iterator[BentoServer]:
    models = two_versions(tmp_path_factory.mktemp("models"))
    running = _serve(bentoml_home, models, CIRCLE_DETECTOR_READ_ONLY="false")
    yield running
    stop_bento(running)


def _http_input(n: int = 1) -> httpclient.InferInput:
    tensor = httpclient.InferInput("image", [n], "BYTES")
    tensor.set_data_from_numpy(np.array([IMAGE] * n, dtype=object))
    return tensor


def _grpc_input(n: int = 1) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput("image", [n], "BYTES")
    tensor.set_data_from_numpy(np.array([IMAGE] * n, dtype=object))
    return tensor


def _version_stats(stats: dict, version: str) -> dict:
    (entry,) = [s for s in stats["model_stats"] if s["version"] == version]
    return entry


def _figures(entry: dict) -> dict[str, int]:
    """Counts of a statistics entry (gRPC's JSON writes 64-bit integers as strings)."""
    phases = entry["inference_stats"]
    batches = entry.get("batch_stats", [])
    return {
        "success": int(phases.get("success", {}).get("count", 0)),
        "fail": int(phases.get("fail", {}).get("count", 0)),
        "queue": int(phases.get("queue", {}).get("count", 0)),
        "infer_ns": int(phases.get("compute_infer", {}).get("ns", 0)),
        "inferences": int(entry.get("inference_count", 0)),
        "executions": int(entry.get("execution_count", 0)),
        "batched_images": sum(
            int(b["batch_size"]) * int(b["compute_infer"]["count"]) for b in batches
        ),
        "runs": sum(int(b["compute_infer"]["count"]) for b in batches),
    }


def test_metadata_lists_both_versions_and_each_serves(server):
    with httpclient.InferenceServerClient(server.http_url) as http:
        assert http.get_model_metadata(MODEL)["versions"] == ["1", "2"]
        for version in ("1", "2"):
            result = http.infer(MODEL, [_http_input()], model_version=version)
            assert result.get_response()["model_version"] == version
    with grpcclient.InferenceServerClient(server.grpc_url) as grpc:
        assert list(grpc.get_model_metadata(MODEL).versions) == ["1", "2"]
        result = grpc.infer(MODEL, [_grpc_input()], model_version="1")
        assert result.get_response().model_version == "1"


def test_statistics_add_up_over_every_client(server):
    """Requests of 1 and 3 images to version 1 by four clients: every count is what was sent."""
    http = httpclient.InferenceServerClient(server.http_url)
    grpc = grpcclient.InferenceServerClient(server.grpc_url)
    before = _figures(_version_stats(http.get_inference_statistics(MODEL, "1"), "1"))
    other = _figures(_version_stats(http.get_inference_statistics(MODEL, "2"), "2"))
    sent = images = 0
    for n in (1, 3):
        http.infer(MODEL, [_http_input(n)], model_version="1")
        grpc.infer(MODEL, [_grpc_input(n)], model_version="1")
        sent, images = sent + 2, images + 2 * n

    async def aio() -> None:
        async with aiohttpclient.InferenceServerClient(server.http_url) as ahttp:
            await ahttp.infer(MODEL, [_http_input(2)], model_version="1")
            stats = await ahttp.get_inference_statistics(MODEL, "1")
            assert _version_stats(stats, "1")["name"] == MODEL
        async with aiogrpcclient.InferenceServerClient(server.grpc_url) as agrpc:
            await agrpc.infer(MODEL, [_grpc_input(2)], model_version="1")
            stats = await agrpc.get_inference_statistics(MODEL, "1", as_json=True)
            assert _version_stats(stats, "1")["name"] == MODEL

    asyncio.run(aio())
    sent, images = sent + 2, images + 4
    with pytest.raises(InferenceServerException):  # a bad request counts as a failure
        bad = httpclient.InferInput("image", [1], "BYTES")
        bad.set_data_from_numpy(np.array([b"not an image"], dtype=object))
        http.infer(MODEL, [bad], model_version="1")
    for stats in (
        http.get_inference_statistics(MODEL, "1"),
        grpc.get_inference_statistics(MODEL, "1", as_json=True),
    ):
        after = _figures(_version_stats(stats, "1"))
        delta = {k: after[k] - before[k] for k in after}
        assert delta["success"] == sent and delta["queue"] == sent, delta
        assert delta["fail"] == 1
        assert delta["inferences"] == images == delta["batched_images"], delta
        assert delta["runs"] == delta["executions"] >= 1 and delta["infer_ns"] > 0
    # the other version and the all-models call
    untouched = _figures(_version_stats(http.get_inference_statistics(MODEL, "2"), "2"))
    assert untouched == other
    every = http.get_inference_statistics()
    assert {(s["name"], s["version"]) for s in every["model_stats"]} == {(MODEL, "1"), (MODEL, "2")}
    metrics = httpx.get(server.metrics_url).text
    assert 'circle_detector_inferences_total{model="circle-detector",outcome="success"}' in metrics
    http.close()
    grpc.close()


def test_model_config_over_http_and_grpc(server):
    with httpclient.InferenceServerClient(server.http_url) as http:
        config = http.get_model_config(MODEL, "2")
    with grpcclient.InferenceServerClient(server.grpc_url) as grpc:
        from_grpc = grpc.get_model_config(MODEL, as_json=True)["config"]

    async def aio() -> dict:
        async with aiohttpclient.InferenceServerClient(server.http_url) as ahttp:
            assert (await ahttp.get_model_config(MODEL))["name"] == MODEL
        async with aiogrpcclient.InferenceServerClient(server.grpc_url) as agrpc:
            return (await agrpc.get_model_config(MODEL, as_json=True))["config"]

    from_aio = asyncio.run(aio())
    assert config["name"] == from_grpc["name"] == from_aio["name"] == MODEL
    assert config["max_batch_size"] == int(from_grpc["max_batch_size"]) >= 1
    assert config["platform"] == "onnxruntime_onnx" and config["runtime"] == "onnxruntime"
    assert config["input"] == [
        {"name": "image", "data_type": "TYPE_STRING", "dims": [1], "reshape": {"shape": []}}
    ]
    assert [o["name"] for o in config["output"]] == [
        "num_detections", "boxes", "centers", "radii", "scores"
    ]  # fmt: skip
    assert {"name": "boxes", "data_type": "TYPE_FP32", "dims": [-1, 4]} in config["output"]
    queue = config["dynamic_batching"]["default_queue_policy"]
    assert queue["default_timeout_microseconds"] == 30_000_000 and queue["max_queue_size"] >= 1
    assert int(config["parameters"]["runtime_threads"]["string_value"]) >= 1
    assert config["version_policy"] == {"all": {}}
    levels = config["dynamic_batching"]["priority_levels"]
    assert int(from_grpc["dynamic_batching"]["priority_levels"]) == levels == 9


def _traffic(server: BentoServer, version: str, stop: threading.Event, into: list[int]) -> None:
    """Infer on `version` over REST until `stop`, each answer's status into `into`."""
    body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                        "data": [base64.b64encode(IMAGE).decode()]}]}  # fmt: skip
    url = f"{server.base_url}/v2/models/{MODEL}/versions/{version}/infer"
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            into.append(client.post(url, json=body).status_code)


def test_load_and_unload_under_traffic_drop_no_request(server):
    """Traffic on both versions while version 1 is unloaded and loaded again (REST and gRPC),
    then the whole model: every request is answered 200, or 404 once its version is gone."""
    stop = threading.Event()
    outcomes: dict[str, list[int]] = {"1": [], "2": []}

    threads = [
        threading.Thread(target=_traffic, args=(server, v, stop, outcomes[v]))
        for v in ("1", "2", "1", "2")
    ]
    for t in threads:
        t.start()
    only_2 = json.dumps({"version_policy": {"specific": {"versions": [2]}}})
    every = json.dumps({"version_policy": {"all": {}}})
    try:
        time.sleep(0.3)
        with httpclient.InferenceServerClient(server.http_url) as http:
            for _ in range(2):
                http.load_model(MODEL, config=only_2)
                assert not http.is_model_ready(MODEL, "1") and http.is_model_ready(MODEL, "2")
                states = {m["version"]: m["state"] for m in http.get_model_repository_index()}
                assert states == {"1": "UNAVAILABLE", "2": "READY"}
                time.sleep(0.2)
                http.load_model(MODEL, config=every)
                assert http.is_model_ready(MODEL, "1")
                time.sleep(0.2)
        with grpcclient.InferenceServerClient(server.grpc_url) as grpc:
            grpc.load_model(MODEL, config=only_2)
            index = grpc.get_model_repository_index(as_json=True)["models"]
            assert {m["version"]: m["state"] for m in index} == {"1": "UNAVAILABLE", "2": "READY"}
            grpc.load_model(MODEL, config=every)
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert set(outcomes["2"]) == {200} and len(outcomes["2"]) > 10, outcomes["2"]
    assert set(outcomes["1"]) <= {200, 404} and 404 in outcomes["1"], set(outcomes["1"])

    async def whole_model() -> None:
        async with aiogrpcclient.InferenceServerClient(server.grpc_url) as agrpc:
            pending = asyncio.gather(
                *(agrpc.infer(MODEL, [_grpc_input(2)], model_version="2") for _ in range(6))
            )
            await asyncio.sleep(0.05)
            await agrpc.unload_model(MODEL)
            assert len(await pending) == 6  # every request in flight was answered
            with pytest.raises(InferenceServerException, match="unknown model"):
                await agrpc.is_model_ready(MODEL, "2")
            await agrpc.load_model(MODEL, config=every)
            assert await agrpc.is_model_ready(MODEL, "2")
        async with aiohttpclient.InferenceServerClient(server.http_url) as ahttp:
            await ahttp.unload_model(MODEL)
            index = await ahttp.get_model_repository_index()
            assert {m["state"] for m in index} == {"UNAVAILABLE"}
            await ahttp.load_model(MODEL)
            assert await ahttp.is_model_ready(MODEL)

    asyncio.run(whole_model())
    with httpclient.InferenceServerClient(server.http_url) as http:
        assert http.get_model_metadata(MODEL)["versions"] == ["1", "2"]
        assert http.is_server_live() and http.is_server_ready()


def _load(policy: dict) -> bytes:
    """A load request's body overriding the version policy."""
    return json.dumps({"parameters": {"config": json.dumps({"version_policy": policy})}}).encode()


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("POST", "/v2/repository/index", b"{", 400, "not valid JSON"),
        ("POST", "/v2/repository/index", b"[1]", 400, "JSON object"),
        ("POST", "/v2/repository/index", b'{"ready": "yes"}', 400, "'ready' must be a boolean"),
        ("POST", "/v2/repository/index", b'{"x": 1}', 400, "unknown field"),
        ("POST", f"/v2/repository/models/{MODEL}/load", b'{"parameters": 3}', 400, "object"),
        ("POST", f"/v2/repository/models/{MODEL}/load", b'{"parameters": {"config": 3}}', 400,
         "string of JSON"),
        ("POST", f"/v2/repository/models/{MODEL}/load", b'{"parameters": {"config": "{"}}', 400,
         "not valid JSON"),
        ("POST", f"/v2/repository/models/{MODEL}/load",
         b'{"parameters": {"config": "{\\"max_batch_size\\": 2}"}}', 400, "only set"),
        ("POST", f"/v2/repository/models/{MODEL}/load",
         _load({"latest": {"num_versions": 0}}), 400, "num_versions"),
        ("POST", f"/v2/repository/models/{MODEL}/load",
         _load({"specific": {"versions": [7]}}), 400, "not in the model directory"),
        ("POST", f"/v2/repository/models/{MODEL}/load", b'{"parameters": {"file:1/x": "eA=="}}',
         400, "cannot be uploaded"),
        ("POST", f"/v2/repository/models/{MODEL}/unload",
         b'{"parameters": {"unload_dependents": 1}}', 400, "boolean"),
        ("POST", "/v2/repository/models/nope/load", b"", 404, "unknown model"),
        ("POST", "/v2/repository/models/nope/unload", b"", 404, "unknown model"),
        ("POST", f"/v2/repository/models/{MODEL}/load", b"x" * 70_000, 413, "limit"),
        ("GET", "/v2/models/nope/stats", b"", 404, "unknown model"),
        ("GET", f"/v2/models/{MODEL}/versions/9/stats", b"", 404, "no version '9'"),
        ("GET", "/v2/models/nope/config", b"", 404, "unknown model"),
        ("GET", f"/v2/models/{MODEL}/versions/x/config", b"", 404, "no version 'x'"),
        ("POST", f"/v2/models/{MODEL}/stats", b"", 405, ""),
        ("GET", "/v2/repository/index", b"", 405, ""),
    ],
)  # fmt: skip
def test_bad_control_requests_are_4xx_json(server, method, path, body, status, words):
    response = httpx.request(method, server.base_url + path, content=body, timeout=10)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


def test_grpc_errors_carry_their_codes(server):
    with grpcclient.InferenceServerClient(server.grpc_url) as grpc:
        with pytest.raises(InferenceServerException) as unknown:
            grpc.get_model_config("nope")
        assert unknown.value.status() == "StatusCode.NOT_FOUND"
        with pytest.raises(InferenceServerException) as bad:
            grpc.load_model(MODEL, config="{")
        assert bad.value.status() == "StatusCode.INVALID_ARGUMENT"
        with pytest.raises(InferenceServerException) as version:
            grpc.get_inference_statistics(MODEL, "9")
        assert version.value.status() == "StatusCode.NOT_FOUND"


def test_read_only_server_refuses_load_and_unload(tmp_path, bentoml_home):
    """`auto` in Kubernetes (KUBERNETES_SERVICE_HOST set) is read-only, as `true` is."""
    models = two_versions(tmp_path / "models")
    server = _serve(bentoml_home, models, KUBERNETES_SERVICE_HOST="10.0.0.1")
    try:
        for action in ("load", "unload"):
            url = f"{server.base_url}/v2/repository/models/{MODEL}/{action}"
            response = httpx.post(url, timeout=10)
            assert response.status_code == 403 and "read-only" in response.json()["error"]
        with httpclient.InferenceServerClient(server.http_url) as http:
            with pytest.raises(InferenceServerException, match="read-only"):
                http.unload_model(MODEL)
            assert http.is_model_ready(MODEL, "1") and http.is_model_ready(MODEL, "2")
            assert len(http.get_model_repository_index()) == 2
        with grpcclient.InferenceServerClient(server.grpc_url) as grpc:
            with pytest.raises(InferenceServerException) as refused:
                grpc.load_model(MODEL)
            assert refused.value.status() == "StatusCode.PERMISSION_DENIED"
            assert grpc.is_model_ready(MODEL)
    finally:
        stop_bento(server)


def test_a_load_reloads_a_version_whose_files_changed(tmp_path, bentoml_home):
    """Version 2's score is rewritten on disk (its bias lowered by 20 logits: nothing reaches
    0.5 any more); a load picks that up for version 2 alone, as Triton's load reloads a changed
    model, with traffic on version 2 answered 200 throughout; a load with nothing changed is a
    no-op."""
    models = two_versions(tmp_path / "models")
    server = _serve(bentoml_home, models, CIRCLE_DETECTOR_READ_ONLY="false")
    stop = threading.Event()
    statuses: list[int] = []

    def found(http: httpclient.InferenceServerClient, version: str) -> int:
        result = http.infer(MODEL, [_http_input()], model_version=version)
        return int(result.as_numpy("num_detections")[0])

    thread = threading.Thread(target=_traffic, args=(server, "2", stop, statuses))
    try:
        with httpclient.InferenceServerClient(server.http_url) as http:
            assert found(http, "1") == found(http, "2") > 0
            http.load_model(MODEL)  # nothing changed: nothing reloaded
            assert "reloaded" not in server.log_tail(1 << 20)
            thread.start()
            meta_path = models / "2" / METADATA_FILE
            meta = json.loads(meta_path.read_text())
            meta["scorer"]["bias"] -= 20.0
            meta_path.write_text(json.dumps(meta))
            assert found(http, "2") > 0  # not before a load
            http.load_model(MODEL)
            assert found(http, "2") == 0 and found(http, "1") > 0
            assert f"reloaded {MODEL} version 2" in server.log_tail(1 << 20)
            assert http.get_model_metadata(MODEL)["versions"] == ["1", "2"]
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()
        stop_bento(server)
    assert statuses and set(statuses) == {200}, set(statuses)
