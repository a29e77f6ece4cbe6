"""Every overlay and variant renders and passes every check, as a cluster's API server, KServe,
Knative and the code would judge it. (Mocked: the cluster itself, which cannot run here.)"""

from __future__ import annotations

import itertools

import pytest

from tests.k8s import checks, contracts
from tests.k8s.manifests import COMPONENTS, OVERLAYS, one, render

VARIANTS = (
    [(o, ()) for o in OVERLAYS]
    + [(o, (c,)) for o, c in itertools.product(OVERLAYS, COMPONENTS)]
    + [("prod", COMPONENTS)]
)
IDS = [f"{o}{'+' + '+'.join(c) if c else ''}" for o, c in VARIANTS]


@pytest.mark.parametrize(("overlay", "components"), VARIANTS, ids=IDS)
def test_variant_passes_every_check(overlay, components, bento, backend, kubernetes_version):
    docs = render(overlay, components)
    ha = overlay in ("stage", "prod")
    problems = (
        checks.check_schemas(docs, kubernetes_version)
        + checks.check_namespaces_and_labels(docs)
        + checks.check_references(docs)
        + checks.check_model(docs, bento)
        + checks.check_runtime(docs, bento)
        + checks.check_storage(docs, local=overlay == "local")
        + checks.check_backend(docs, backend, bento.model_name)
        + checks.check_routing(docs, backend, tls=ha)
        + checks.check_api_key(docs, public=overlay != "local")
        + checks.check_storage_credentials(docs)
        + checks.check_timeouts(docs, backend)
        + checks.check_pod_security(docs)
        + checks.check_gateway_conflicts(docs)
        + (checks.check_high_availability(docs) if ha else [])
    )
    assert problems == []


@pytest.mark.parametrize(("overlay", "components"), VARIANTS, ids=IDS)
def test_launcher_takes_the_arguments_kserve_passes(overlay, components, bento):
    """KServe's runtime arguments (--model_name, --model_dir, --http_port, --grpc_port) and the
    predictor's command are options of bentos/circle_detector/standalone.py's build_parser()."""
    missing = contracts.missing_kserve_options()
    if missing:
        pytest.skip(f"the launcher has no {', '.join(missing)} yet (KServe's runtime contract)")
    assert checks.check_launcher_args(render(overlay, components), bento.launcher_options) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_the_ones_the_build_script_makes(overlay, built_images):
    docs = render(overlay)
    version = contracts.project_version()
    assert checks.check_images(docs, built_images, overlay == "local", version) == []


def _backend_config(docs) -> dict[str, str]:
    """The backend ConfigMap's data (its name carries kustomize's hash)."""
    return next(d for d in docs if d["kind"] == "ConfigMap")["data"]


def test_overlays_differ_where_environments_differ():
    by = {o: render(o) for o in OVERLAYS}
    namespaces = {o: one(d, "Namespace")["metadata"]["name"] for o, d in by.items()}
    assert len(set(namespaces.values())) >= 3, namespaces
    hosts = {
        o: one(d, "VirtualService", "circle-detector-backend")["spec"]["hosts"]
        for o, d in by.items()
    }
    assert hosts["stage"] != hosts["prod"]
    for overlay in ("local", "dev"):
        dep = one(by[overlay], "Deployment")
        assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
        env = {e["name"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert "DATABASE_URL" not in env  # SQLite in DATA_DIR on the PVC
        assert "STORAGE_URL" not in _backend_config(by[overlay])  # uploads there too
        assert one(by[overlay], "PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteOnce"]
    for overlay in ("stage", "prod"):
        assert not [d for d in by[overlay] if d["kind"] == "PersistentVolumeClaim"]
        url = _backend_config(by[overlay])["STORAGE_URL"]
        assert url == f"s3://circle-detector-uploads/{overlay}"  # one prefix per environment
    assert (
        one(by["prod"], "InferenceService")["spec"]["predictor"]["maxReplicas"]
        > one(by["local"], "InferenceService")["spec"]["predictor"]["maxReplicas"]
    )


def test_variants_change_what_they_say():
    base = one(render("prod"), "InferenceService")["spec"]["predictor"]
    assert "canaryTrafficPercent" not in base
    canary = one(render("prod", ("canary",)), "InferenceService")["spec"]["predictor"]
    assert 0 < canary["canaryTrafficPercent"] < 100
    gpu = one(render("prod", ("gpu",)), "InferenceService")["spec"]["predictor"]
    limits = gpu["model"]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"
    assert any(t["key"] == "nvidia.com/gpu" for t in gpu["tolerations"])
    docs = render("prod", ("grpc",))
    grpc = one(docs, "InferenceService")["spec"]["predictor"]["model"]
    assert grpc["ports"][0]["name"] == "h2c" and grpc["protocolVersion"] == "grpc-v2"
    assert grpc["runtime"] == "circle-detector-bento-grpc"
    backend_cm = next(d for d in docs if d["kind"] == "ConfigMap")
    assert backend_cm["data"]["MODEL_PROTOCOL"] == "grpc"
    accounts = [d for d in render("prod", ("pull-secret",)) if d["kind"] == "ServiceAccount"]
    assert len(accounts) == 2
    assert all(a["imagePullSecrets"] == [{"name": "circle-detector-registry"}] for a in accounts)


def test_runtime_form_and_custom_container_form():
    """By default the predictor names the model format and where the exported model lies (a PVC
    on kind, object storage elsewhere) and KServe's runtime supplies the container; with
    custom-container the image carries the model and the predictor its own container."""
    for overlay in OVERLAYS:
        docs = render(overlay)
        model = one(docs, "InferenceService")["spec"]["predictor"]["model"]
        assert model["modelFormat"] == {"name": "circle-detector"}
        assert model["protocolVersion"] == "v2"
        scheme = model["storageUri"].split("://")[0]
        assert scheme == ("pvc" if overlay == "local" else "s3"), model["storageUri"]
        runtime = one(docs, "ClusterServingRuntime", "circle-detector-bento")
        assert "namespace" not in runtime["metadata"]
        pred = one(render(overlay, ("custom-container",)), "InferenceService")["spec"]["predictor"]
        assert "model" not in pred and len(pred["containers"]) == 1
        assert "storageUri" not in pred["containers"][0]


def test_local_and_dev_have_no_gateway_of_their_own_stage_and_prod_one_for_their_host():
    """net-istio's knative-ingress-gateway serves port 80 for every host: local/dev bind to it,
    stage/prod add HTTPS for their host only (and redirect plain HTTP from Knative's)."""
    for overlay in ("local", "dev"):
        docs = render(overlay)
        assert not [d for d in docs if d["kind"] == "Gateway"]
        vs = one(docs, "VirtualService")
        assert vs["spec"]["gateways"] == ["knative-serving/knative-ingress-gateway"]
    for overlay in ("stage", "prod"):
        docs = render(overlay)
        gateway = one(docs, "Gateway")
        assert [s["port"]["number"] for s in gateway["spec"]["servers"]] == [443]
        host = gateway["spec"]["servers"][0]["hosts"]
        assert host != ["*"]
        redirect = one(docs, "VirtualService", "circle-detector-https-redirect")
        assert redirect["spec"]["hosts"] == host


def test_render_options_override_images_and_canary_share():
    docs = render(
        "dev",
        ("canary",),
        "--bento-image",
        "registry.example.com/circle-detector/bento:0.2.0",
        "--backend-image",
        "registry.example.com/circle-detector/backend:0.2.0",
        "--canary-percent",
        "25",
    )
    pred = one(docs, "InferenceService")["spec"]["predictor"]
    assert pred["canaryTrafficPercent"] == 25
    assert pred["model"]["image"].endswith("bento:0.2.0")
    custom = render("dev", ("custom-container",), "--bento-image", "r.example.com/bento:0.3.0")
    assert one(custom, "InferenceService")["spec"]["predictor"]["containers"][0]["image"] == (
        "r.example.com/bento:0.3.0"
    )
    dep = one(docs, "Deployment")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith("backend:0.2.0")
