"""scripts/container-test.sh runs the images with the arguments pod_spec derives from the rendered
manifests; these must say what Knative and KServe would do with them."""

from __future__ import annotations

from tests.k8s.pod_spec import podman_args

CUSTOM = ("custom-container",)


def test_http_variant_runs_the_image_as_the_inference_service():
    args = podman_args("local", CUSTOM)
    assert args[:2] == ["-e", "PORT=8080"]  # Knative's PORT is the container port
    assert "PROTOCOL=v2" in args
    assert args[args.index("--user") + 1] == "1034:1034"
    assert "--entrypoint" not in args and args[-1] == "IMAGE"
    assert "-v" not in args  # the model is in the image


def test_grpc_variant_gets_the_h2c_port_and_keeps_http_apart():
    args = podman_args("local", ("grpc", *CUSTOM))
    assert args[:2] == ["-e", "PORT=8081"]
    assert "CIRCLE_DETECTOR_GRPC_PORT=8081" in args
    assert args[args.index("--entrypoint") + 1] == "python"
    tail = args[args.index("IMAGE") + 1 :]
    assert tail[:2] == ["-m", "bentos.circle_detector.standalone"]
    assert tail[tail.index("--port") + 1] == "8080"


def test_runtime_form_starts_the_image_with_kserves_arguments_and_a_read_only_model():
    args = podman_args("local", ())
    assert args[:2] == ["-e", "PORT=8080"]
    assert args[args.index("-v") + 1] == "MODELDIR:/mnt/models:ro"
    assert args[args.index("--user") + 1] == "1034:1034"
    tail = args[args.index("IMAGE") + 1 :]
    assert tail == ["--model_name=circle-detector", "--model_dir=/mnt/models", "--http_port=8080"]


def test_runtime_form_grpc_variant():
    args = podman_args("local", ("grpc",))
    assert args[:2] == ["-e", "PORT=8081"]
    tail = args[args.index("IMAGE") + 1 :]
    assert "--http_port=8080" in tail and "--model_dir=/mnt/models" in tail
