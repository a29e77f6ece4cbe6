"""scripts/container-test.sh runs the images with the arguments pod_spec derives from the rendered
manifests; these must say what Knative would do with them."""

from __future__ import annotations

from tests.k8s.pod_spec import podman_args


def test_http_variant_runs_the_image_as_the_inference_service():
    args = podman_args("local", ())
    assert args[:2] == ["-e", "PORT=8080"]  # Knative's PORT is the container port
    assert "PROTOCOL=v2" in args
    assert args[args.index("--user") + 1] == "1034:1034"
    assert "--entrypoint" not in args and args[-1] == "IMAGE"


def test_grpc_variant_gets_the_h2c_port_and_keeps_http_apart():
    args = podman_args("local", ("grpc",))
    assert args[:2] == ["-e", "PORT=8081"]
    assert "CIRCLE_DETECTOR_GRPC_PORT=8081" in args
    assert args[args.index("--entrypoint") + 1] == "python"
    tail = args[args.index("IMAGE") + 1 :]
    assert tail[:2] == ["-m", "bentos.circle_detector.standalone"]
    assert tail[tail.index("--port") + 1] == "8080"
