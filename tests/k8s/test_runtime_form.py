"""The KServe-native form: the ClusterServingRuntime and the InferenceService that selects it by
model format. Each test breaks one thing in a freshly rendered overlay and expects a check to
name it (the runtime and the predictor as KServe would merge them, the storage per environment,
the vendored ClusterServingRuntime CRD)."""

from __future__ import annotations

import pytest

from tests.k8s import checks, contracts
from tests.k8s.manifests import render
from tests.k8s.predictor import predictor

ISVC = "InferenceService"
RUNTIME = "ClusterServingRuntime"


@pytest.fixture(scope="module")
def local():
    return render("local")


@pytest.fixture(scope="module")
def dev():
    return render("dev")


def _has(problems: list[str], *fragments: str) -> bool:
    return any(all(f in p for f in fragments) for p in problems)


def _runtime(doc):
    return doc["spec"]["containers"][0]


def _model(doc):
    return doc["spec"]["predictor"]["model"]


def test_kserve_merges_the_predictor_over_the_runtime(local):
    isvc = next(d for d in local if d["kind"] == ISVC)
    found = predictor(isvc, local)
    assert found.runtime["metadata"]["name"] == "circle-detector-bento"
    c = found.container
    assert c["args"] == list(checks.KSERVE_ARGS)
    assert c["ports"] == [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert {"CIRCLE_DETECTOR_THREADS", "CIRCLE_DETECTOR_READY_DEADLINE_S"} <= set(env)
    assert c["image"] == contracts.images().bento


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: _runtime(d).update(ports=[{"containerPort": 8080}]), "leave them"),
        (lambda d: _runtime(d)["args"].remove("--model_dir=/mnt/models"), "--model_dir"),
        (lambda d: d["spec"]["supportedModelFormats"][0].update(version="1"), "version 6"),
        (lambda d: d["spec"]["protocolVersions"].remove("grpc-v2"), "v2 and grpc-v2"),
        (lambda d: d["spec"]["supportedModelFormats"][0].update(autoSelect=False), "autoSelect"),
        (lambda d: d["metadata"]["annotations"].pop("prometheus.kserve.io/path"), "/metrics"),
        (lambda d: _runtime(d)["readinessProbe"].update(periodSeconds=5), "aggressive"),
        (lambda d: _runtime(d)["livenessProbe"].update(timeoutSeconds=5), "throttled"),
        (lambda d: _runtime(d)["securityContext"].update(runAsUser=0), "uid 1034"),
        (lambda d: _runtime(d)["securityContext"].pop("seccompProfile"), "seccompProfile"),
        (lambda d: _runtime(d)["resources"].pop("limits"), "resources"),
        (lambda d: _runtime(d).update(name="bento"), "kserve-container"),
    ],
    ids=[
        "ports",
        "no-model-dir",
        "format-version",
        "no-grpc",
        "no-autoselect",
        "no-metrics",
        "readiness-period",
        "liveness-timeout",
        "root",
        "no-seccomp",
        "no-limits",
        "container-name",
    ],
)
def test_runtime_check_catches(local, bento, change, fragment):
    assert checks.check_runtime(local, bento) == []
    broken = checks.mutated(local, RUNTIME, change)
    assert _has(checks.check_runtime(broken, bento), fragment)


def test_runtime_is_validated_against_kserves_crd(local, kubernetes_version):
    assert checks.check_schemas(local, kubernetes_version) == []
    typo = checks.mutated(local, RUNTIME, lambda d: d["spec"].update(protocolVersion=["v2"]))
    assert _has(
        checks.check_schemas(typo, kubernetes_version), "ClusterServingRuntime", "protocolVersion"
    )
    bad = checks.mutated(
        local, RUNTIME, lambda d: d["spec"]["supportedModelFormats"][0].update(autoSelect="yes")
    )
    assert _has(checks.check_schemas(bad, kubernetes_version), "autoSelect", "boolean")
    model = checks.mutated(local, ISVC, lambda d: _model(d).update(storageUrl="pvc://x"))
    assert _has(checks.check_schemas(model, kubernetes_version), "storageUrl")


def test_runtime_is_cluster_scoped(local):
    assert checks.check_namespaces_and_labels(local) == []
    namespaced = checks.mutated(local, RUNTIME, lambda d: d["metadata"].update(namespace="x"))
    assert _has(checks.check_namespaces_and_labels(namespaced), "cluster-scoped")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: _model(d).update(protocolVersion="v1"), "protocolVersion v1"),
        (lambda d: _model(d).update(modelFormat={"name": "onnx"}), "no ClusterServingRuntime"),
        (lambda d: _model(d).update(runtime="kserve-tritonserver"), "no ClusterServingRuntime"),
        (lambda d: _model(d)["ports"][0].update(containerPort=3000), "http1/8080"),
        (lambda d: _model(d)["readinessProbe"].update(periodSeconds=5), "aggressive"),
        (lambda d: d["spec"]["predictor"].update(containers=[{"name": "x"}]), "both"),
    ],
    ids=["protocol", "format", "runtime-name", "port", "readiness-period", "both-forms"],
)
def test_model_check_catches_in_the_runtime_form(local, bento, change, fragment):
    broken = checks.mutated(local, ISVC, change)
    assert _has(checks.check_model(broken, bento), fragment)


def test_grpc_runtime_form_needs_grpc_v2_and_keeps_http_off_the_grpc_port(bento):
    docs = render("local", ("grpc",))
    assert checks.check_model(docs, bento) == []
    v2 = checks.mutated(docs, ISVC, lambda d: _model(d).update(protocolVersion="v2"))
    assert _has(checks.check_model(v2, bento), "want grpc-v2")
    clash = checks.mutated(
        docs, ISVC, lambda d: _model(d).update(command=[], args=["--http_port=8081"])
    )
    assert _has(checks.check_model(clash, bento), "HTTP server off the gRPC port")


def test_pod_security_applies_to_the_merged_container(local):
    assert checks.check_pod_security(local) == []
    broken = checks.mutated(
        local, RUNTIME, lambda d: _runtime(d)["securityContext"].pop("runAsNonRoot")
    )
    assert _has(checks.check_pod_security(broken), "runAsNonRoot")


def test_storage_check_wants_a_pvc_on_kind_and_object_storage_with_credentials_elsewhere(
    local, dev
):
    assert checks.check_storage(local, local=True) == []
    assert checks.check_storage(dev, local=False) == []
    assert _has(checks.check_storage(dev, local=True), "storageUri")
    assert _has(checks.check_storage(local, local=False), "storageUri")
    plain = checks.mutated(dev, "ServiceAccount", lambda d: None)
    account = next(
        d
        for d in plain
        if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "circle-detector-model"
    )
    account["metadata"].pop("annotations")
    account.pop("secrets")
    problems = checks.check_storage(plain, local=False)
    assert _has(problems, "s3-endpoint") and _has(problems, "credentials Secret")


def test_launcher_args_check_names_an_option_the_launcher_lacks(local):
    """Runs without the launcher's KServe options (test_overlays checks the real ones)."""
    options = frozenset({"--model_name", "--model_dir", "--http_port", "--grpc_port", "--port"})
    assert checks.check_launcher_args(local, options) == []
    broken = checks.mutated(local, RUNTIME, lambda d: _runtime(d)["args"].append("--workers=2"))
    assert _has(checks.check_launcher_args(broken, options), "--workers")
