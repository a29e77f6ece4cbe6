"""The checks are only worth something if they fail: each test breaks one thing in a freshly
rendered overlay (a typo'd field, a wrong port, a probe path the Bento does not serve, an image
the build script does not make, ...) and expects the check to name it."""

from __future__ import annotations

import copy

import pytest

from tests.k8s import checks, contracts
from tests.k8s.manifests import RenderError, render, render_dir

ISVC = "InferenceService"


#: The fault tests of the predictor's container run on the custom-container form (the
#: container is in the InferenceService); test_runtime_form_faults.py breaks the runtime form.
CUSTOM = ("custom-container",)


@pytest.fixture(scope="module")
def local():
    return render("local", CUSTOM)


@pytest.fixture(scope="module")
def prod():
    return render("prod")


def _predictor(doc):
    return doc["spec"]["predictor"]


def _model_container(doc):
    return doc["spec"]["predictor"]["containers"][0]


def _backend_container(doc):
    return doc["spec"]["template"]["spec"]["containers"][0]


def _has(problems: list[str], *fragments: str) -> bool:
    return any(all(f in p for f in fragments) for p in problems)


@pytest.mark.parametrize(
    ("kind", "change", "fragment"),
    [
        (ISVC, lambda d: _predictor(d).update(minReplica=0), "'minReplica' was unexpected"),
        (ISVC, lambda d: _model_container(d).update(imagePullPolicyy="Never"), "imagePullPolicyy"),
        (ISVC, lambda d: _predictor(d).update(maxReplicas="3"), "is not of type 'integer'"),
        (ISVC, lambda d: d.update(apiVersion="serving.kserve.io/v1alpha9"), "serves no version"),
        (
            "Deployment",
            lambda d: _backend_container(d).update(imagePullPolcy="Always"),
            "imagePullPolcy",
        ),
        ("Deployment", lambda d: d["spec"].update(replica=2), "'replica' was unexpected"),
        ("Service", lambda d: d["spec"]["ports"][0].update(target=8000), "'target' was unexpected"),
        ("VirtualService", lambda d: d["spec"].update(gateway=["x"]), "'gateway' was unexpected"),
        ("PersistentVolumeClaim", lambda d: d["spec"].update(accessMode="RWO"), "accessMode"),
    ],
    ids=[
        "isvc-typo",
        "isvc-container-typo",
        "isvc-wrong-type",
        "isvc-unserved-version",
        "deployment-container-typo",
        "deployment-typo",
        "service-typo",
        "virtualservice-typo",
        "pvc-typo",
    ],
)
def test_schemas_reject_unknown_fields_and_bad_values(local, kind, change, fragment):
    assert checks.check_schemas(local, contracts.kubernetes_version()) == []
    broken = checks.mutated(local, kind, change)
    problems = checks.check_schemas(broken, contracts.kubernetes_version())
    assert _has(problems, fragment), problems


def test_gateway_schema_rejects_a_bad_enum(prod):
    broken = checks.mutated(
        prod, "Gateway", lambda d: d["spec"]["servers"][0]["port"].update(protocol="HTTP3")
    )
    assert _has(checks.check_schemas(broken, contracts.kubernetes_version()), "HTTP3")


def test_crd_preserved_fields_stay_open(local):
    """metadata and resource quantities are not closed by the CRD: the API server accepts them."""
    broken = checks.mutated(local, ISVC, lambda d: d["metadata"].update(finalizers=["x/y"]))
    assert checks.check_schemas(broken, contracts.kubernetes_version()) == []


def _set_env(container, name, value):
    """Set (or add) one env entry of a container."""
    for entry in container.setdefault("env", []):
        if entry["name"] == name:
            entry["value"] = value
            return
    container["env"].append({"name": name, "value": value})


def _set_probe_path(path):
    return lambda d: _model_container(d)["readinessProbe"]["httpGet"].update(path=path)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (_set_probe_path("/v2/health/readyz"), "not a GET route"),
        (_set_probe_path("/health/ready"), "not a GET route"),
        (lambda d: _model_container(d)["livenessProbe"]["httpGet"].update(port=3000), "port 3000"),
        (lambda d: _model_container(d)["ports"][0].update(containerPort=3000), "http1/8080"),
        (lambda d: _model_container(d)["ports"][0].update(name="http"), "http1/8080"),
        (lambda d: _model_container(d)["ports"][0].update(containerPort=8012), "queue-proxy"),
        (lambda d: _model_container(d)["ports"].append({"containerPort": 8081}), "one container"),
        (lambda d: _model_container(d)["env"].append({"name": "PORT", "value": "1"}), "reserved"),
        (
            lambda d: _model_container(d)["env"].append(
                {"name": "CIRCLE_DETECTOR_GRPC_PROT", "value": "1"}
            ),
            "CIRCLE_DETECTOR_GRPC_PROT is no setting",
        ),
        (lambda d: _set_env(_model_container(d), "PROTOCOL", "v1"), "PROTOCOL is not v2"),
        (lambda d: _predictor(d).update(minReplicas=1), "scale to zero"),
        (lambda d: _model_container(d).update(imagePullPolicy="Always"), "IfNotPresent"),
        (lambda d: _model_container(d)["resources"].pop("limits"), "limits.cpu"),
        (lambda d: d["metadata"]["annotations"].clear(), "scale-down-delay"),
        (lambda d: d["metadata"]["labels"].pop(checks.VISIBILITY_LABEL), "cluster-local missing"),
        (lambda d: _model_container(d)["readinessProbe"].update(periodSeconds=5), "aggressive"),
        (lambda d: _model_container(d)["livenessProbe"].update(timeoutSeconds=5), "throttled"),
        (
            lambda d: _model_container(d)["livenessProbe"].update(
                periodSeconds=15, failureThreshold=4
            ),
            "load spike",
        ),
        (
            lambda d: _set_env(_model_container(d), "CIRCLE_DETECTOR_READY_DEADLINE_S", "60"),
            "warm-up",
        ),
        (
            lambda d: _set_env(_model_container(d), "CIRCLE_DETECTOR_READY_DEADLINE_S", "900"),
            "progress deadline",
        ),
        (lambda d: _predictor(d).update(timeout=30), "timeout 30 is shorter than a cold start"),
    ],
    ids=[
        "probe-path-not-served",
        "probe-path-of-backend",
        "probe-wrong-port",
        "container-port-3000",
        "port-not-http1",
        "queue-proxy-port",
        "two-ports",
        "reserved-PORT",
        "env-typo",
        "no-v2",
        "no-scale-to-zero",
        "pull-always",
        "no-limits",
        "no-scale-down-delay",
        "public-model",
        "readiness-period",
        "liveness-timeout-5s",
        "liveness-window-60s",
        "ready-deadline-below-cold-start",
        "ready-deadline-past-progress-deadline",
        "isvc-timeout-30s",
    ],
)
def test_model_check_catches(local, bento, change, fragment):
    assert checks.check_model(local, bento) == []
    problems = checks.check_model(checks.mutated(local, ISVC, change), bento)
    assert _has(problems, fragment), problems


def test_grpc_variant_must_match_the_bentos_grpc_port(bento):
    docs = render("local", ("grpc", *CUSTOM))
    assert checks.check_model(docs, bento) == []
    broken = checks.mutated(
        docs, ISVC, lambda d: _model_container(d)["ports"][0].update(containerPort=9000)
    )
    assert _has(checks.check_model(broken, bento), "gRPC port")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            lambda d: _backend_container(d)["readinessProbe"]["httpGet"].update(path="/ready"),
            "/ready",
        ),
        (lambda d: _backend_container(d)["ports"][0].update(containerPort=8080), "is not PORT"),
        (lambda d: _backend_container(d)["env"].append({"name": "MODEL_SERVER_ULR"}), "ULR"),
        (
            lambda d: _backend_container(d)["securityContext"].update(readOnlyRootFilesystem=False),
            "read-only",
        ),
        (lambda d: _backend_container(d)["volumeMounts"].pop(0), "DATA_DIR"),
        (
            lambda d: next(
                e for e in _backend_container(d)["env"] if e["name"] == "MODEL_SERVER_URL"
            ).update(value="circle-detector.default.svc.cluster.local:8080"),
            "MODEL_SERVER_URL",
        ),
        (lambda d: d["spec"]["template"]["spec"].pop("enableServiceLinks"), "enableServiceLinks"),
    ],
    ids=["probe-path", "port", "env-typo", "writable-root", "no-data-volume", "model-url", "links"],
)
def test_backend_check_catches(local, backend, bento, change, fragment):
    assert checks.check_backend(local, backend, bento.model_name) == []
    problems = checks.check_backend(
        checks.mutated(local, "Deployment", change), backend, bento.model_name
    )
    assert _has(problems, fragment), problems


def _rules(vs):
    return vs["spec"]["http"]


def test_routing_check_catches_unrouted_paths_and_a_public_metrics(local, backend):
    assert checks.check_routing(local, backend, False) == []

    def api_only(vs):
        _rules(vs)[1]["match"] = [{"uri": {"prefix": "/api/v1/"}}]

    problems = checks.check_routing(
        checks.mutated(local, "VirtualService", api_only), backend, False
    )
    assert _has(problems, "/docs is not routed") and _has(problems, "/ is not routed")
    no_guard = checks.mutated(local, "VirtualService", lambda vs: _rules(vs).pop(0))
    assert _has(checks.check_routing(no_guard, backend, False), "/metrics must not")
    swapped = checks.mutated(local, "VirtualService", lambda vs: _rules(vs).reverse())
    assert _has(checks.check_routing(swapped, backend, False), "/metrics must not")
    wrong_port = checks.mutated(
        local,
        "VirtualService",
        lambda vs: _rules(vs)[1]["route"][0]["destination"]["port"].update(number=8000),
    )
    assert _has(checks.check_routing(wrong_port, backend, False), "no Service port")


def test_tls_and_ha_checks_catch_a_downgraded_prod(prod, backend):
    assert checks.check_routing(prod, backend, tls=True) == []
    plain = checks.mutated(prod, "Gateway", lambda g: g["spec"]["servers"].pop())
    assert _has(checks.check_routing(plain, backend, tls=True), "HTTPS")
    assert checks.check_high_availability(prod) == []
    fixed = checks.mutated(prod, "Deployment", lambda d: d["spec"].update(replicas=3))
    assert _has(checks.check_high_availability(fixed), "owns replicas")
    single = checks.mutated(
        prod, "HorizontalPodAutoscaler", lambda h: h["spec"].update(minReplicas=1)
    )
    assert _has(checks.check_high_availability(single), "more than one replica")
    assert checks.check_high_availability(render("dev")) != []


def test_image_check_catches_names_the_build_script_does_not_make(local, built_images):
    version = contracts.project_version()
    assert checks.check_images(local, built_images, True, version) == []
    renamed = checks.mutated(
        local,
        ISVC,
        lambda d: _model_container(d).update(image="dev.local/circle-detector/bentoml:0.1.0"),
    )
    assert _has(checks.check_images(renamed, built_images, True, version), "not what build-images")
    latest = checks.mutated(
        local, ISVC, lambda d: _model_container(d).update(image="dev.local/circle-detector/bento")
    )
    assert _has(checks.check_images(latest, built_images, True, version), "project version")
    other = contracts.Images(bento="docker.io/me/bento:0.1.0", backend="docker.io/me/backend:0.1.0")
    assert _has(checks.check_images(local, other, True, version), "not what build-images")


def test_labels_and_namespace_check_catch_strays(local):
    stray = checks.mutated(local, "Service", lambda s: s["metadata"].update(namespace="default"))
    assert _has(checks.check_namespaces_and_labels(stray), "namespace 'default'")
    unlabeled = checks.mutated(local, "Service", lambda s: s["metadata"]["labels"].clear())
    assert _has(checks.check_namespaces_and_labels(unlabeled), "part-of")
    blind = checks.mutated(
        local, "Service", lambda s: s["spec"]["selector"].update({"app.kubernetes.io/name": "x"})
    )
    assert _has(checks.check_references(blind), "matches no pods")


def test_kustomize_itself_rejects_a_broken_kustomization(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    with pytest.raises(RenderError, match=r"missing\.yaml"):
        render_dir(tmp_path)


def test_backend_check_catches_a_readiness_tied_to_a_sleeping_model(local, backend, bento):
    def require_model(cm):
        cm["data"]["READY_REQUIRES_MODEL"] = "true"

    broken = checks.mutated(local, "ConfigMap", require_model)
    assert _has(checks.check_backend(broken, backend, bento.model_name), "READY_REQUIRES_MODEL")


def test_grpc_variant_must_keep_http_off_the_grpc_port(bento):
    docs = render("local", ("grpc", *CUSTOM))

    def same_port(d):
        _model_container(d)["command"][-1] = str(bento.grpc_port)

    assert _has(checks.check_model(checks.mutated(docs, ISVC, same_port), bento), "pin the HTTP")


def _api_key_as_literal(deployment: dict) -> None:
    for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]:
        if e["name"] == "API_KEY":
            e.pop("valueFrom")
            e["value"] = "hunter2"


def test_api_key_check_catches_open_writes_and_literal_keys(prod, local):
    assert checks.check_api_key(prod, public=True) == []
    assert checks.check_api_key(local, public=False) == []
    assert _has(checks.check_api_key(local, public=True), "must come from a Secret")
    literal = checks.mutated(prod, "Deployment", _api_key_as_literal)
    assert _has(checks.check_api_key(literal, public=True), "literal")
    in_config = checks.mutated(local, "ConfigMap", lambda cm: cm["data"].update(API_KEY="x"))
    assert _has(checks.check_api_key(in_config, public=False), "ConfigMap")


def test_grpc_variant_readiness_keeps_knatives_aggressive_probing(bento):
    docs = render("local", ("grpc", *CUSTOM))
    broken = checks.mutated(
        docs, ISVC, lambda d: _model_container(d)["readinessProbe"].update(periodSeconds=5)
    )
    assert _has(checks.check_model(broken, bento), "aggressive")


@pytest.mark.parametrize(
    ("kind", "change", "fragment"),
    [
        ("ConfigMap", lambda cm: cm["data"].update(MODEL_TIMEOUT_S="30"), "MODEL_TIMEOUT_S 30"),
        (
            "ConfigMap",
            lambda cm: cm["data"].pop("MODEL_RETRY_DEADLINE_S"),
            "MODEL_RETRY_DEADLINE_S 30 s does not cover",
        ),
        (ISVC, lambda d: _predictor(d).update(timeout=300), "gives up on a request"),
        (
            "VirtualService",
            lambda vs: vs["spec"]["http"][1]["retries"].update(perTryTimeout="60s"),
            "cuts an upload",
        ),
        (
            "VirtualService",
            lambda vs: vs["spec"]["http"][1].update(timeout="120s"),
            "cuts an upload",
        ),
    ],
    ids=[
        "model-timeout-30s",
        "retry-deadline-default-30s",
        "isvc-longer",
        "per-try-60s",
        "vs-120s",
    ],
)
def test_timeout_check_catches_waits_shorter_than_a_cold_start(
    local, backend, kind, change, fragment
):
    assert checks.check_timeouts(local, backend) == []
    problems = checks.check_timeouts(checks.mutated(local, kind, change), backend)
    assert _has(problems, fragment), problems


def _model_security(d):
    return _model_container(d)["securityContext"]


@pytest.mark.parametrize(
    ("kind", "change", "fragment"),
    [
        (ISVC, lambda d: _model_security(d).pop("seccompProfile"), "seccompProfile"),
        (
            "Deployment",
            lambda d: d["spec"]["template"]["spec"]["securityContext"].pop("seccompProfile"),
            "seccompProfile",
        ),
        (ISVC, lambda d: _model_security(d).pop("allowPrivilegeEscalation"), "Escalation"),
        (
            ISVC,
            lambda d: _model_security(d).update(capabilities={"add": ["NET_ADMIN"]}),
            "drop ALL",
        ),
        (ISVC, lambda d: _model_security(d).pop("runAsNonRoot"), "runAsNonRoot"),
        (ISVC, lambda d: _predictor(d).pop("serviceAccountName"), "serviceAccountName None"),
        ("Namespace", lambda d: d["metadata"]["labels"].clear(), "pod-security"),
    ],
    ids=["model-seccomp", "backend-seccomp", "escalation", "caps", "root", "no-sa", "ns-label"],
)
def test_pod_security_check_catches(local, kind, change, fragment):
    assert checks.check_pod_security(local) == []
    problems = checks.check_pod_security(checks.mutated(local, kind, change))
    assert _has(problems, fragment), problems


OLD_GATEWAY = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "Gateway",
    "metadata": {"name": "circle-detector-gateway", "namespace": "circle-detector"},
    "spec": {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}],
    },
}


def test_gateway_check_catches_a_duplicate_of_knatives_gateway(local, prod):
    """IST0145: the project's old Gateway (port 80, "*") beside net-istio's, and even a port-80
    server for one host (it overlaps "*"); HTTPS on 443 for one host does not conflict."""
    assert checks.check_gateway_conflicts(prod) == []
    problems = checks.check_gateway_conflicts([*local, OLD_GATEWAY])
    assert _has(problems, "IST0145", "knative-serving/knative-ingress-gateway"), problems

    def add_http(g):
        g["spec"]["servers"].append(
            {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["a.example.com"]}
        )

    assert _has(
        checks.check_gateway_conflicts(checks.mutated(prod, "Gateway", add_http)), "IST0145"
    )


def test_routing_check_catches_a_missing_gateway_and_an_unredirected_http(local, prod, backend):
    bound = checks.mutated(
        local, "VirtualService", lambda vs: vs["spec"].update(gateways=["circle-detector-gateway"])
    )
    problems = checks.check_routing(bound, backend, False)
    assert _has(problems, "gateway circle-detector-gateway does not exist"), problems
    assert _has(problems, "not routed to the backend on knative-serving/knative-ingress-gateway")
    no_redirect = [d for d in prod if d["metadata"]["name"] != "circle-detector-https-redirect"]
    assert _has(checks.check_routing(no_redirect, backend, True), "nothing does")

    broken = copy.deepcopy(prod)
    redirect = next(d for d in broken if d["metadata"]["name"] == "circle-detector-https-redirect")
    redirect["spec"]["http"][0]["redirect"]["scheme"] = "http"
    assert _has(checks.check_routing(broken, backend, True), "must redirect to HTTPS")


def _config(docs) -> dict:
    return next(d for d in docs if d["kind"] == "ConfigMap")["data"]


def _drop_env(name):
    def change(dep):
        c = _backend_container(dep)
        c["env"] = [e for e in c["env"] if e["name"] != name]

    return change


def _rwx_data_volume(docs):
    """prod as it was before object storage: the uploads on a ReadWriteMany claim."""
    out = checks.mutated(docs, "ConfigMap", lambda cm: cm["data"].pop("STORAGE_URL"))
    dep = next(d for d in out if d["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    pod["volumes"].append({"name": "data", "persistentVolumeClaim": {"claimName": "data"}})
    _backend_container(dep)["volumeMounts"].append({"name": "data", "mountPath": "/data"})
    _backend_container(dep)["env"].append({"name": "DATA_DIR", "value": "/data"})
    pvc = {"kind": "PersistentVolumeClaim", "metadata": {"name": "data"}}
    pvc["spec"] = {"accessModes": ["ReadWriteMany"], "storageClassName": "efs-sc"}
    return [*out, pvc]


def test_ha_check_catches_uploads_outside_object_storage(prod):
    """Several replicas: STORAGE_URL s3://, no ReadWriteMany claim, no claim mounted at all."""
    assert checks.check_high_availability(prod) == []
    local_files = checks.mutated(prod, "ConfigMap", lambda cm: cm["data"].pop("STORAGE_URL"))
    assert _has(checks.check_high_availability(local_files), "need STORAGE_URL s3://")
    rwx = checks.check_high_availability(_rwx_data_volume(prod))
    assert _has(rwx, "PersistentVolumeClaim/data: ReadWriteMany"), rwx
    assert _has(rwx, "mount no PersistentVolumeClaim", "['data']"), rwx
    assert _has(rwx, "need STORAGE_URL s3://"), rwx


def test_backend_check_needs_the_data_claim_only_without_s3_and_postgres(prod, backend, bento):
    """prod (S3 + PostgreSQL) has no data volume and passes; without STORAGE_URL the uploads,
    without DATABASE_URL the SQLite file need DATA_DIR on a claim; a bad STORAGE_URL is named
    with the backend's own parser's words."""
    assert checks.check_backend(prod, backend, bento.model_name) == []
    local_files = checks.mutated(prod, "ConfigMap", lambda cm: cm["data"].pop("STORAGE_URL"))
    problems = checks.check_backend(local_files, backend, bento.model_name)
    assert _has(problems, "DATA_DIR must be a mounted PersistentVolumeClaim", "uploads"), problems
    sqlite = checks.mutated(prod, "Deployment", _drop_env("DATABASE_URL"))
    problems = checks.check_backend(sqlite, backend, bento.model_name)
    assert _has(problems, "DATA_DIR must be a mounted PersistentVolumeClaim", "SQLite"), problems
    no_bucket = checks.mutated(prod, "ConfigMap", lambda cm: cm["data"].update(STORAGE_URL="s3://"))
    assert _has(checks.check_backend(no_bucket, backend, bento.model_name), "needs a bucket name")
    other = checks.mutated(prod, "ConfigMap", lambda cm: cm["data"].update(STORAGE_URL="gs://b"))
    assert _has(checks.check_backend(other, backend, bento.model_name), "STORAGE_URL 'gs://b'")


@pytest.mark.parametrize(
    ("name", "flagged"),
    [
        ("AWS_DEFAULT_REGION", False),
        ("AWS_ENDPOINT_URL_S3", False),
        ("AWS_REGOIN", True),
        ("S3_ENDPOINT", True),
        ("S3_TIMEOUT_S", False),
    ],
)
def test_backend_check_allows_the_standard_aws_variables_only(prod, backend, bento, name, flagged):
    """Backend settings and botocore's standard AWS_* variables pass; a typo of either is named."""
    assert checks.check_backend(prod, backend, bento.model_name) == []
    changed = checks.mutated(prod, "ConfigMap", lambda cm: cm["data"].update({name: "x"}))
    problems = checks.check_backend(changed, backend, bento.model_name)
    assert _has(problems, f"env {name} is no setting") == flagged, problems


def _aws_secret_as_literal(dep):
    for e in _backend_container(dep)["env"]:
        if e["name"] == "AWS_SECRET_ACCESS_KEY":
            e.pop("valueFrom")
            e["value"] = "wJalrXUtnFEMI"


def test_storage_credentials_check_catches_literals_and_missing_keys(prod, local):
    assert checks.check_storage_credentials(prod) == []
    assert checks.check_storage_credentials(local) == []  # no S3, no credentials needed
    literal = checks.mutated(prod, "Deployment", _aws_secret_as_literal)
    problems = checks.check_storage_credentials(literal)
    assert _has(problems, "AWS_SECRET_ACCESS_KEY is a literal"), problems
    assert _has(problems, "do not come from a Secret"), problems
    in_config = checks.mutated(
        prod, "ConfigMap", lambda cm: cm["data"].update(AWS_ACCESS_KEY_ID="AKIA")
    )
    assert _has(checks.check_storage_credentials(in_config), "AWS_ACCESS_KEY_ID in a ConfigMap")
    no_keys = checks.mutated(prod, "Deployment", _drop_env("AWS_ACCESS_KEY_ID"))
    assert _has(checks.check_storage_credentials(no_keys), "do not come from a Secret")
    from_field = checks.mutated(
        prod,
        "Deployment",
        lambda d: next(
            e for e in _backend_container(d)["env"] if e["name"] == "AWS_ACCESS_KEY_ID"
        ).update(valueFrom={"fieldRef": {"fieldPath": "metadata.name"}}),
    )
    assert _has(checks.check_storage_credentials(from_field), "must come from a Secret")
    # A web identity (EKS's IAM role for the ServiceAccount) stands in for the key pair.
    irsa = copy.deepcopy(no_keys)
    account = next(
        d
        for d in irsa
        if d["metadata"]["name"] == "circle-detector-backend" and d["kind"] == "ServiceAccount"
    )
    account["metadata"]["annotations"] = {checks.IRSA_ANNOTATION: "arn:aws:iam::1:role/r"}
    assert checks.check_storage_credentials(irsa) == []
