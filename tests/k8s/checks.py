"""Checks of rendered manifests. Each returns a list of problems (empty: fine), so that the same
check runs on the real overlays (must find nothing) and on broken copies (must find the fault).
"""

from __future__ import annotations

import copy
import functools
import gzip
import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from tests.k8s import contracts
from tests.k8s.manifests import Doc, env_of, find
from tests.k8s.predictor import MODEL_MOUNT, RUNTIME_KIND, option_value, predictor

# KServe's CRD, kept gzipped in schemas/ (KSERVE_CRD points at another copy, gzipped or not).
SCHEMAS = Path(__file__).with_name("schemas")
CRD_PATH = Path(
    os.environ.get("KSERVE_CRD", SCHEMAS / "serving.kserve.io_inferenceservices.yaml.gz")
)
ISTIO_SCHEMA = SCHEMAS / "istio-networking-v1.json"
#: KServe's ClusterServingRuntime CRD (KSERVE_RUNTIME_CRD: another copy).
RUNTIME_CRD_PATH = Path(
    os.environ.get(
        "KSERVE_RUNTIME_CRD", SCHEMAS / "serving.kserve.io_clusterservingruntimes.yaml.gz"
    )
)
#: The runtime's container and the arguments KServe's own runtimes take (kserve/kserve
#: config/runtimes): the model's name, where the storage initializer put it, the HTTP port.
RUNTIME_CONTAINER = "kserve-container"
KSERVE_ARGS = ("--model_name={{.Name}}", f"--model_dir={MODEL_MOUNT}", "--http_port=8080")
BENTO_UID = 1034
#: storageUri schemes per environment: kind mounts a PVC; clusters fetch from object storage.
LOCAL_STORAGE = ("pvc://",)
REMOTE_STORAGE = ("s3://", "https://", "gs://")
S3_ANNOTATIONS = ("serving.kserve.io/s3-endpoint", "serving.kserve.io/s3-usehttps")
ISVC = "InferenceService"
# Ports Knative's queue-proxy sidecar holds in every revision pod (not for the user container).
#: The Bento image's entrypoint: the single-process launcher.
LAUNCHER = ["python", "-m", "bentos.circle_detector.standalone"]
KNATIVE_RESERVED_PORTS = frozenset({8012, 8013, 8022, 9090, 9091})
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterServingRuntime"})
STANDARD_GROUPS = ("v1", "apps/v1", "policy/v1", "autoscaling/v2")
#: The label that keeps an InferenceService off the public ingress (KServe's
#: constants.NetworkVisibility / ClusterLocalVisibility; Knative's own label for a route).
VISIBILITY_LABEL = "networking.knative.dev/visibility"
#: A cold start on a fresh node: image pull, start, model load and warm-up (seconds). Every
#: wait on the way (Knative's revision timeout, the backend's timeout and retry deadline, the
#: Bento's ready deadline) must be at least this.
COLD_START_BUDGET_S = 120
#: Knative's default progress deadline (config-deployment `progress-deadline`, 600s): a revision
#: whose first pod is not ready by then fails.
KNATIVE_PROGRESS_DEADLINE_S = 600
#: A liveness probe that a CPU-throttled pod under load cannot fail by accident.
LIVENESS_MIN_TIMEOUT_S = 10
LIVENESS_MIN_WINDOW_S = 120
#: Gateways net-istio installs (config/202-gateway.yaml, 203-local-gateway.yaml): name,
#: selector, port, hosts. VirtualServices may bind to them by namespace/name.
KNATIVE_GATEWAYS = {
    "knative-serving/knative-ingress-gateway": ({"istio": "ingressgateway"}, 80, ["*"]),
    "knative-serving/knative-local-gateway": ({"istio": "ingressgateway"}, 8081, ["*"]),
}
PUBLIC_GATEWAY = "knative-serving/knative-ingress-gateway"


# --- schemas ------------------------------------------------------------------------------------


def _close(schema: Any) -> Any:
    """Reject unknown fields like the API server does for a structural CRD schema: every object
    schema with `properties` gets additionalProperties: false unless it preserves unknown fields."""
    if isinstance(schema, dict):
        out = {k: _close(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_close(v) for v in schema]
    return schema


@functools.cache
def _crd(path: Path = CRD_PATH) -> Doc:
    """A CRD, parsed once (2 MB: libyaml's loader when available)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raw = path.read_bytes()
    text = gzip.decompress(raw) if path.suffix == ".gz" else raw
    return yaml.load(text, Loader=loader)


@functools.cache
def crd_validator(version: str, path: Path = CRD_PATH) -> jsonschema.Validator:
    """A validator for the CRD's served `version`, closed against unknown fields."""
    crd = _crd(path)
    for v in crd["spec"]["versions"]:
        if v["name"] == version and v.get("served"):
            schema = _close(v["schema"]["openAPIV3Schema"])
            return jsonschema.Draft7Validator(schema)
    raise LookupError(f"KServe's {crd['spec']['names']['kind']} CRD serves no version {version!r}")


def isvc_validator(version: str) -> jsonschema.Validator:
    return crd_validator(version, CRD_PATH)


#: KServe kinds validated against a vendored CRD.
KSERVE_CRDS = {ISVC: CRD_PATH, RUNTIME_KIND: RUNTIME_CRD_PATH}


@functools.cache
def istio_validators() -> dict[str, jsonschema.Validator]:
    schema = json.loads(ISTIO_SCHEMA.read_text())
    defs = schema["$defs"]
    return {
        kind: jsonschema.Draft202012Validator({**schema[kind], "$defs": defs})
        for kind in ("Gateway", "VirtualService")
    }


def _errors(validator: jsonschema.Validator, doc: Doc, label: str) -> list[str]:
    return [
        f"{label}: {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(doc)
    ]


def check_schemas(docs: list[Doc], kubernetes_version: str) -> list[str]:
    """Every object against the schema of its kind and version, unknown fields rejected."""
    problems = []
    for doc in docs:
        label = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        group_version = doc.get("apiVersion", "")
        if doc.get("kind") in KSERVE_CRDS:
            group, _, version = group_version.partition("/")
            if group != "serving.kserve.io":
                problems.append(f"{label}: apiVersion {group_version} is not serving.kserve.io")
                continue
            try:
                problems += _errors(crd_validator(version, KSERVE_CRDS[doc["kind"]]), doc, label)
            except LookupError as exc:
                problems.append(f"{label}: {exc}")
        elif group_version.startswith("networking.istio.io/"):
            validator = istio_validators().get(doc.get("kind", ""))
            if validator is None:
                problems.append(f"{label}: no schema for Istio kind {doc.get('kind')}")
            else:
                problems += _errors(validator, doc, label)
        elif group_version in STANDARD_GROUPS:
            try:
                kubernetes_validate.validate(doc, kubernetes_version, strict=True)
            except jsonschema.ValidationError as exc:
                where = "/".join(map(str, exc.absolute_path)) or "(root)"
                problems.append(f"{label}: {where}: {exc.message}")
        else:
            problems.append(f"{label}: unexpected apiVersion {group_version}")
    return problems


# --- structure shared by every overlay ----------------------------------------------------------


def check_namespaces_and_labels(docs: list[Doc]) -> list[str]:
    """One Namespace, everything in it, and the same part-of/instance labels on every object."""
    problems = []
    namespaces = find(docs, "Namespace")
    if len(namespaces) != 1:
        return [f"expected one Namespace, found {len(namespaces)}"]
    ns = namespaces[0]["metadata"]["name"]
    instances = set()
    for doc in docs:
        meta = doc["metadata"]
        label = f"{doc['kind']}/{meta['name']}"
        if doc["kind"] in CLUSTER_SCOPED:
            if "namespace" in meta:
                problems.append(f"{label}: cluster-scoped, but has namespace {meta['namespace']!r}")
        elif meta.get("namespace") != ns:
            problems.append(f"{label}: namespace {meta.get('namespace')!r}, not {ns!r}")
        labels = meta.get("labels", {})
        if labels.get("app.kubernetes.io/part-of") != "circle-detector":
            problems.append(f"{label}: no app.kubernetes.io/part-of=circle-detector label")
        instances.add(labels.get("app.kubernetes.io/instance"))
        if doc["kind"] != "Namespace" and "app.kubernetes.io/component" not in labels:
            problems.append(f"{label}: no app.kubernetes.io/component label")
    if len(instances) != 1:
        problems.append(
            f"app.kubernetes.io/instance differs between objects: {sorted(map(str, instances))}"
        )
    return problems


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_references(docs: list[Doc]) -> list[str]:
    """Selectors, ConfigMaps, claims, service accounts and scale targets point at real objects."""
    problems = []
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for dep in find(docs, "Deployment"):
        pod = dep["spec"]["template"]
        if not _selects(dep["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"]):
            problems.append(f"Deployment/{dep['metadata']['name']}: selector misses its own pods")
        spec = pod["spec"]
        if ("ServiceAccount", spec.get("serviceAccountName", "default")) not in names:
            problems.append(f"Deployment: service account {spec.get('serviceAccountName')} missing")
        for vol in spec.get("volumes", []):
            claim = vol.get("persistentVolumeClaim", {}).get("claimName")
            if claim and ("PersistentVolumeClaim", claim) not in names:
                problems.append(f"Deployment: volume {vol['name']} claims missing PVC {claim}")
        for c in spec["containers"]:
            for src in c.get("envFrom", []):
                ref = src.get("configMapRef", {}).get("name")
                if ref and ("ConfigMap", ref) not in names:
                    problems.append(f"Deployment: envFrom names missing ConfigMap {ref}")
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in find(docs, "Deployment")]
    for svc in find(docs, "Service"):
        if not any(_selects(svc["spec"].get("selector", {}), labels) for labels in pod_labels):
            problems.append(f"Service/{svc['metadata']['name']}: selector matches no pods")
    for pdb in find(docs, "PodDisruptionBudget"):
        if not any(_selects(pdb["spec"]["selector"]["matchLabels"], lb) for lb in pod_labels):
            problems.append(f"PodDisruptionBudget/{pdb['metadata']['name']}: selects no pods")
    for hpa in find(docs, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        if (ref["kind"], ref["name"]) not in names:
            problems.append(f"HorizontalPodAutoscaler: target {ref['kind']}/{ref['name']} missing")
    return problems


# --- the model ----------------------------------------------------------------------------------


def _probe_problems(label: str, probe: Doc | None, port: int, serves: Any) -> list[str]:
    if not probe:
        return [f"{label}: missing"]
    if "httpGet" in probe:
        get = probe["httpGet"]
        problems = []
        if not serves(get["path"]):
            problems.append(f"{label}: path {get['path']} is not a GET route of the server")
        if get.get("port") != port:
            problems.append(f"{label}: port {get.get('port')} is not the container port {port}")
        return problems
    if "tcpSocket" in probe:
        ok = probe["tcpSocket"].get("port") == port
        return [] if ok else [f"{label}: tcpSocket port is not the container port {port}"]
    return [f"{label}: neither httpGet nor tcpSocket"]


def check_model(docs: list[Doc], bento: contracts.BentoContract) -> list[str]:
    """The InferenceService runs the Bento the way Knative and the Bento's code expect."""
    isvc = [d for d in docs if d["kind"] == ISVC]
    if len(isvc) != 1:
        return [f"expected one InferenceService, found {len(isvc)}"]
    pred = isvc[0]["spec"]["predictor"]
    found = predictor(isvc[0], docs)
    if found.container is None:
        return found.problems
    problems = []
    c = found.container
    model = found.model
    env = env_of(c)
    ports = c.get("ports", [])
    if len(ports) != 1:
        return [f"predictor: Knative allows one container port, found {len(ports)}"]
    port = ports[0]
    grpc = port.get("name") == "h2c"
    if port.get("containerPort") in KNATIVE_RESERVED_PORTS:
        problems.append(
            f"predictor: port {port['containerPort']} is reserved by Knative's queue-proxy"
        )
    if model is None and env.get("PROTOCOL", {}).get("value") != "v2":
        problems.append("predictor: env PROTOCOL is not v2")
    if model is not None:
        want = "grpc-v2" if grpc else "v2"
        if model.get("protocolVersion") != want:
            problems.append(
                f"predictor.model: protocolVersion {model.get('protocolVersion')} with port "
                f"{port.get('name')} (want {want})"
            )
        if model.get("protocolVersion") not in found.runtime["spec"].get("protocolVersions", []):
            problems.append(
                f"predictor.model: runtime {found.runtime['metadata']['name']} does not serve "
                f"protocol {model.get('protocolVersion')}"
            )
    if "PORT" in env:
        problems.append("predictor: PORT is Knative's to set (reserved)")
    for name in env:
        if name.startswith("CIRCLE_DETECTOR_") and name not in bento.env_names:
            problems.append(f"predictor: env {name} is no setting of the Bento")
    if grpc:
        grpc_port = int(env.get("CIRCLE_DETECTOR_GRPC_PORT", {}).get("value", bento.grpc_port))
        if port["containerPort"] != grpc_port:
            problems.append(
                f"predictor: h2c port {port['containerPort']} is not the Bento's gRPC port "
                f"{grpc_port}"
            )
        command = c.get("command", [])
        http_port = option_value(command + c.get("args", []), ("--port", "--http_port"))
        # No command: the image's entrypoint, the launcher.
        serves = not command or command[:3] == LAUNCHER or command[:2] == ["bentoml", "serve"]
        if not serves or http_port is None or int(http_port) == grpc_port:
            problems.append("predictor: gRPC variant must pin the HTTP server off the gRPC port")
    else:
        if port != {"name": "http1", "containerPort": 8080, "protocol": "TCP"}:
            problems.append(f"predictor: port must be http1/8080/TCP (KServe's), got {port}")
    for kind in ("readinessProbe", "livenessProbe"):
        problems += _probe_problems(
            f"predictor {kind}", c.get(kind), port["containerPort"], bento.serves_get
        )
    if not grpc:
        ready = c.get("readinessProbe", {}).get("httpGet", {}).get("path", "")
        live = c.get("livenessProbe", {}).get("httpGet", {}).get("path", "")
        if not ready.endswith("/ready") or not live.endswith("/live"):
            problems.append("predictor: readiness must use the ready route, liveness the live one")
    if c.get("imagePullPolicy") != "IfNotPresent":
        problems.append("predictor: imagePullPolicy must be IfNotPresent")
    res = c.get("resources", {})
    for part in ("requests", "limits"):
        for key in ("cpu", "memory"):
            if key not in res.get(part, {}):
                problems.append(f"predictor: resources.{part}.{key} missing")
    problems += _model_probe_budget(c, env, bento)
    labels = isvc[0]["metadata"].get("labels", {})
    if labels.get(VISIBILITY_LABEL) != "cluster-local":
        problems.append(
            f"InferenceService: label {VISIBILITY_LABEL}: cluster-local missing "
            "(the model would be public on the ingress by its Host header)"
        )
    timeout = pred.get("timeout")
    if not isinstance(timeout, int) or timeout < COLD_START_BUDGET_S:
        problems.append(
            f"predictor: timeout {timeout} is shorter than a cold start ({COLD_START_BUDGET_S} s)"
        )
    if pred.get("minReplicas") != 0:
        problems.append("predictor: minReplicas must be 0 (scale to zero)")
    if not isinstance(pred.get("maxReplicas"), int) or pred["maxReplicas"] < 1:
        problems.append("predictor: maxReplicas must be at least 1")
    if pred.get("scaleMetric") != "concurrency" or not pred.get("scaleTarget"):
        problems.append("predictor: needs scaleMetric concurrency and a scaleTarget")
    delay = (
        isvc[0]["metadata"].get("annotations", {}).get("autoscaling.knative.dev/scale-down-delay")
    )
    if not delay or not re.fullmatch(r"\d+(s|m|h)", delay):
        problems.append("InferenceService: scale-down-delay annotation missing or malformed")
    return problems


def check_runtime(docs: list[Doc], bento: contracts.BentoContract) -> list[str]:
    """Each ClusterServingRuntime runs the Bento as KServe starts a runtime: the model's format
    and version, V2 over REST and gRPC, KServe's arguments (options the launcher has), no ports
    (the InferenceService's single Knative port wins), Knative-friendly probes, resources, the
    Bento's uid under Pod Security 'restricted', metrics for Prometheus."""
    problems = []
    runtimes = find(docs, RUNTIME_KIND)
    if "circle-detector-bento" not in {r["metadata"]["name"] for r in runtimes}:
        problems.append("no ClusterServingRuntime circle-detector-bento")
    for rt in runtimes:
        name = f"{RUNTIME_KIND}/{rt['metadata']['name']}"
        spec = rt["spec"]
        formats = spec.get("supportedModelFormats", [])
        if not any(
            f.get("name") == bento.model_name and f.get("version") == bento.model_version
            for f in formats
        ):
            problems.append(
                f"{name}: supportedModelFormats lacks {bento.model_name} version "
                f"{bento.model_version} (circle_detector.json)"
            )
        if not set(spec.get("protocolVersions", [])) <= {"v2", "grpc-v2"}:
            problems.append(f"{name}: protocolVersions {spec.get('protocolVersions')}: V2 only")
        if rt["metadata"]["name"] == "circle-detector-bento":
            if set(spec.get("protocolVersions", [])) != {"v2", "grpc-v2"}:
                problems.append(f"{name}: protocolVersions must be v2 and grpc-v2")
            if not any(f.get("autoSelect") for f in formats):
                problems.append(f"{name}: the format must autoSelect this runtime")
        notes = rt["metadata"].get("annotations", {})
        if notes.get("prometheus.kserve.io/path") != bento.metrics_path:
            problems.append(
                f"{name}: prometheus.kserve.io/path must be the launcher's {bento.metrics_path}"
            )
        if notes.get("prometheus.kserve.io/port") != "8080":
            problems.append(f"{name}: prometheus.kserve.io/port must be the HTTP port 8080")
        containers = spec.get("containers", [])
        if [c.get("name") for c in containers] != [RUNTIME_CONTAINER]:
            problems.append(f"{name}: one container named {RUNTIME_CONTAINER} expected")
            continue
        c = containers[0]
        if c.get("ports"):
            problems.append(
                f"{name}: ports {c['ports']}: leave them to the InferenceService (Knative "
                "allows one port, KServe merges the runtime's and the InferenceService's)"
            )
        args = c.get("args", [])
        for want in KSERVE_ARGS:
            if want not in args:
                problems.append(f"{name}: args lack KServe's {want}")
        ready = c.get("readinessProbe")
        if not ready:
            problems.append(f"{name}: readinessProbe missing")
        env = env_of(c)
        problems += [f"{name}: {p}" for p in _model_probe_budget(c, env, bento)]
        res = c.get("resources", {})
        if any(
            k not in res.get(part, {}) for part in ("requests", "limits") for k in ("cpu", "memory")
        ):
            problems.append(f"{name}: resources need cpu and memory requests and limits")
        sec = c.get("securityContext", {})
        if sec.get("runAsUser") != BENTO_UID or not sec.get("runAsNonRoot"):
            problems.append(f"{name}: must run as the Bento's uid {BENTO_UID}, non-root")
        if (sec.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: seccompProfile RuntimeDefault missing")
    return problems


def check_launcher_args(docs: list[Doc], options: frozenset[str]) -> list[str]:
    """Every option a runtime or the predictor passes is one the launcher parses (argparse would
    stop the container with 'unrecognized arguments')."""
    problems = []
    containers = [
        (f"{RUNTIME_KIND}/{r['metadata']['name']}", c)
        for r in find(docs, RUNTIME_KIND)
        for c in r["spec"].get("containers", [])
    ]
    containers += [
        (f"{ISVC}/{d['metadata']['name']}", c)
        for d in find(docs, ISVC)
        if (c := predictor(d, docs).container)
    ]
    for name, c in containers:
        command = c.get("command", [])
        if command and command[:3] != LAUNCHER:
            continue
        for arg in command[3:] + c.get("args", []):
            option = arg.split("=", 1)[0]
            if option.startswith("--") and option not in options:
                problems.append(f"{name}: {option} is no option of the launcher")
    return problems


def check_storage(docs: list[Doc], local: bool) -> list[str]:
    """The runtime form's storageUri: a PVC on kind (scripts/load-model-pvc.sh fills it), object
    storage elsewhere; with s3:// the predictor's ServiceAccount carries KServe's S3 settings
    and lists the credentials Secret."""
    problems = []
    for isvc in find(docs, ISVC):
        pred = isvc["spec"]["predictor"]
        model = pred.get("model")
        if model is None:
            continue
        uri = model.get("storageUri") or ""
        allowed = LOCAL_STORAGE if local else REMOTE_STORAGE
        if not uri.startswith(allowed):
            problems.append(f"predictor.model: storageUri {uri!r} (want one of {allowed})")
        if uri.startswith("s3://"):
            account = find(docs, "ServiceAccount", pred.get("serviceAccountName", "default"))
            notes = account[0]["metadata"].get("annotations", {}) if account else {}
            missing = [a for a in S3_ANNOTATIONS if a not in notes]
            if missing:
                problems.append(f"predictor: s3:// but its ServiceAccount lacks {missing}")
            if not account or not account[0].get("secrets"):
                problems.append(
                    "predictor: s3:// but its ServiceAccount lists no credentials Secret"
                )
    return problems


def _model_probe_budget(c: Doc, env: dict[str, Doc], bento: contracts.BentoContract) -> list[str]:
    """Readiness left to Knative's aggressive probing; liveness that tolerates a throttled pod and
    agrees with the Bento's own ready deadline (its /v2/health/live fails after it)."""
    problems = []
    ready = c.get("readinessProbe") or {}
    if ready.get("periodSeconds"):
        problems.append(
            "predictor readinessProbe: periodSeconds turns off Knative's aggressive "
            "(50 ms) readiness probing; leave it out"
        )
    live = c.get("livenessProbe") or {}
    # Kubernetes' defaults: timeout 1 s, period 10 s, failureThreshold 3.
    timeout = live.get("timeoutSeconds", 1)
    window = live.get("periodSeconds", 10) * live.get("failureThreshold", 3)
    if timeout < LIVENESS_MIN_TIMEOUT_S:
        problems.append(
            f"predictor livenessProbe: timeoutSeconds {timeout} < {LIVENESS_MIN_TIMEOUT_S}: "
            "a CPU-throttled pod under load would be restarted"
        )
    if window < LIVENESS_MIN_WINDOW_S:
        problems.append(
            f"predictor livenessProbe: {window} s of failures (periodSeconds x failureThreshold) "
            f"< {LIVENESS_MIN_WINDOW_S} s: a load spike would restart the pod"
        )
    raw = env.get("CIRCLE_DETECTOR_READY_DEADLINE_S", {}).get("value")
    deadline = float(raw) if raw is not None else bento.ready_deadline_s
    if deadline < COLD_START_BUDGET_S:
        problems.append(
            f"predictor: CIRCLE_DETECTOR_READY_DEADLINE_S {deadline:g} s is shorter than a cold "
            f"start ({COLD_START_BUDGET_S} s): a slow warm-up would be restarted"
        )
    if deadline + window + live.get("initialDelaySeconds", 0) > KNATIVE_PROGRESS_DEADLINE_S:
        problems.append(
            f"predictor: ready deadline {deadline:g} s + liveness window {window} s exceed "
            f"Knative's progress deadline ({KNATIVE_PROGRESS_DEADLINE_S} s): the revision fails "
            "before the kubelet restarts a stuck warm-up"
        )
    return problems


# --- the backend --------------------------------------------------------------------------------


def _backend_env(docs: list[Doc], container: Doc) -> dict[str, str | None]:
    """The backend's effective environment: ConfigMap values, then env (None: from a Secret)."""
    values: dict[str, str | None] = {}
    for src in container.get("envFrom", []):
        name = src.get("configMapRef", {}).get("name")
        for cm in find(docs, "ConfigMap", name):
            values.update(cm.get("data", {}))
    for e in container.get("env", []):
        values[e["name"]] = e.get("value")
    return values


def check_backend(
    docs: list[Doc], backend: contracts.BackendContract, model_name: str
) -> list[str]:
    """The Deployment runs `python -m backend` the way its settings and routes expect."""
    deps = find(docs, "Deployment", "circle-detector-backend")
    if len(deps) != 1:
        return ["expected the Deployment circle-detector-backend"]
    pod = deps[0]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    problems = []
    env = _backend_env(docs, c)
    known = backend.env_names | contracts.AWS_ENV_NAMES | {"POD_NAMESPACE"}
    for name in env:
        if name not in known:
            problems.append(f"backend: env {name} is no setting of the backend")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    port = int(env.get("PORT") or backend.default_port)
    if ports.get("http") != port:
        problems.append(f"backend: container port {ports.get('http')} is not PORT {port}")
    if env.get("HOST") != "0.0.0.0":
        problems.append("backend: HOST must be 0.0.0.0 to be reachable in the pod")
    for kind, want in (("livenessProbe", "/health"), ("readinessProbe", "/health/ready")):
        probe = c.get(kind) or {}
        get = probe.get("httpGet", {})
        if get.get("port") not in ("http", port):
            problems.append(f"backend {kind}: port {get.get('port')} is not the http port")
        if get.get("path") != want or not backend.serves_get(get.get("path", "")):
            problems.append(f"backend {kind}: path {get.get('path')} (want {want}, served)")
    sec = {**pod.get("securityContext", {}), **c.get("securityContext", {})}
    if not sec.get("runAsNonRoot") or not sec.get("readOnlyRootFilesystem"):
        problems.append("backend: must run as non-root with a read-only root file system")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    storage_url = env.get("STORAGE_URL") or ""
    bad_url = contracts.storage_url_problem(storage_url)
    if bad_url:
        problems.append(f"backend: STORAGE_URL {storage_url!r}: {bad_url}")
    # Uploads in S3 and PostgreSQL leave nothing in DATA_DIR; local files or SQLite live there.
    in_s3 = storage_url.startswith("s3://")
    if not in_s3 or "DATABASE_URL" not in env:
        data_dir = env.get("DATA_DIR")
        if not data_dir or "persistentVolumeClaim" not in volumes.get(mounts.get(data_dir, ""), {}):
            held = "the SQLite database" if in_s3 else "the uploads"
            problems.append(f"backend: DATA_DIR must be a mounted PersistentVolumeClaim ({held})")
    if "/tmp" not in mounts:
        problems.append("backend: /tmp must be writable (emptyDir) with a read-only root")
    if env.get("MODEL_NAME") != model_name:
        problems.append(f"backend: MODEL_NAME {env.get('MODEL_NAME')} is not {model_name}")
    isvc_names = [d["metadata"]["name"] for d in docs if d["kind"] == ISVC]
    url = env.get("MODEL_SERVER_URL") or ""
    if not isvc_names or url != f"{isvc_names[0]}.$(POD_NAMESPACE).svc.cluster.local:80":
        problems.append(f"backend: MODEL_SERVER_URL {url} is not the InferenceService's host:80")
    ns_env = env_of(c).get("POD_NAMESPACE", {})
    if ns_env.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.namespace":
        problems.append("backend: POD_NAMESPACE must come from metadata.namespace")
    scales_to_zero = any(
        d["spec"]["predictor"].get("minReplicas") == 0 for d in docs if d["kind"] == ISVC
    )
    if scales_to_zero and env.get("READY_REQUIRES_MODEL") != "false":
        problems.append(
            "backend: READY_REQUIRES_MODEL must be false while the model scales to zero"
        )
    if pod.get("enableServiceLinks") is not False:
        problems.append(
            "backend: enableServiceLinks must be false (service env looks like settings)"
        )
    return problems


def _seconds(duration: str | None) -> float | None:
    """An Istio duration (`300s`, `5m`, `1h`, `250ms`) in seconds."""
    match = re.fullmatch(r"([0-9.]+)(ms|s|m|h)", duration or "")
    if not match:
        return None
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    return float(match.group(1)) * scale


def check_timeouts(docs: list[Doc], backend: contracts.BackendContract) -> list[str]:
    """Every wait on the way to the model covers a cold start: the backend's MODEL_TIMEOUT_S is
    at least the InferenceService's timeout (Knative holds a request that long while a pod
    starts), MODEL_RETRY_DEADLINE_S a whole cold start, and the gateway's route to the backend
    outlasts an upload that waits for both."""
    isvc = [d for d in docs if d["kind"] == ISVC]
    deps = find(docs, "Deployment", "circle-detector-backend")
    if len(isvc) != 1 or len(deps) != 1:
        return ["expected one InferenceService and the backend Deployment"]
    env = _backend_env(docs, deps[0]["spec"]["template"]["spec"]["containers"][0])
    model_timeout = float(env.get("MODEL_TIMEOUT_S") or backend.model_timeout_s)
    deadline = float(env.get("MODEL_RETRY_DEADLINE_S") or backend.model_retry_deadline_s)
    isvc_timeout = isvc[0]["spec"]["predictor"].get("timeout") or 0
    problems = []
    if model_timeout < isvc_timeout:
        problems.append(
            f"backend: MODEL_TIMEOUT_S {model_timeout:g} s < the InferenceService's timeout "
            f"{isvc_timeout} s: the backend gives up on a request Knative still holds"
        )
    if deadline < max(COLD_START_BUDGET_S, isvc_timeout):
        problems.append(
            f"backend: MODEL_RETRY_DEADLINE_S {deadline:g} s does not cover a cold start "
            f"({max(COLD_START_BUDGET_S, isvc_timeout)} s)"
        )
    upload = deadline + model_timeout
    for vs in find(docs, "VirtualService"):
        for rule in vs["spec"].get("http", []):
            if not any(
                r["destination"]["host"] == "circle-detector-backend" for r in rule.get("route", [])
            ):
                continue
            route_timeout = _seconds(rule.get("timeout"))
            per_try = _seconds(rule.get("retries", {}).get("perTryTimeout")) or route_timeout
            if route_timeout is None or min(route_timeout, per_try or 0) < upload:
                problems.append(
                    f"VirtualService/{vs['metadata']['name']}: timeout {rule.get('timeout')} "
                    f"(perTryTimeout {rule.get('retries', {}).get('perTryTimeout')}) cuts an "
                    f"upload that waits for a cold start ({upload:g} s)"
                )
    return problems


def _pods(docs: list[Doc]) -> list[tuple[str, Doc, list[Doc]]]:
    """(label, pod-level spec, containers) of every workload: Deployments and predictors."""
    out = []
    for d in find(docs, "Deployment"):
        spec = d["spec"]["template"]["spec"]
        out.append((f"Deployment/{d['metadata']['name']}", spec, spec["containers"]))
    for d in docs:
        if d["kind"] == ISVC:
            pred = d["spec"]["predictor"]
            c = predictor(d, docs).container
            out.append((f"{ISVC}/{d['metadata']['name']}", pred, [c] if c else []))
    return out


def check_pod_security(docs: list[Doc]) -> list[str]:
    """Pod Security 'restricted' for every pod of ours (the parts the manifests decide): a
    seccomp profile, non-root, no privilege escalation, every capability dropped; and each pod's
    ServiceAccount exists (the place for imagePullSecrets)."""
    problems = []
    accounts = {d["metadata"]["name"] for d in find(docs, "ServiceAccount")}
    for label, pod, containers in _pods(docs):
        pod_sec = pod.get("securityContext", {})
        if pod.get("serviceAccountName") not in accounts:
            problems.append(f"{label}: serviceAccountName {pod.get('serviceAccountName')} missing")
        for c in containers:
            sec = c.get("securityContext", {})
            where = f"{label} container {c.get('name')}"
            seccomp = sec.get("seccompProfile") or pod_sec.get("seccompProfile") or {}
            if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
                problems.append(f"{where}: seccompProfile RuntimeDefault missing (restricted)")
            if not sec.get("runAsNonRoot", pod_sec.get("runAsNonRoot")):
                problems.append(f"{where}: runAsNonRoot missing (restricted)")
            if sec.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation must be false (restricted)")
            caps = sec.get("capabilities", {})
            if "ALL" not in caps.get("drop", []) or set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
                problems.append(f"{where}: capabilities must drop ALL (restricted)")
    namespace = find(docs, "Namespace")
    labels = namespace[0]["metadata"].get("labels", {}) if namespace else {}
    if labels.get("pod-security.kubernetes.io/warn") != "restricted":
        problems.append("Namespace: label pod-security.kubernetes.io/warn: restricted missing")
    return problems


def check_api_key(docs: list[Doc], public: bool) -> list[str]:
    """Overlays behind the public gateway protect writes with API_KEY from a Secret; none has it
    as a literal (a key in a manifest is a key in git)."""
    dep = find(docs, "Deployment", "circle-detector-backend")[0]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    key = env_of(c).get("API_KEY")
    if key is not None and "value" in key:
        return ["backend: API_KEY is a literal in the manifest; take it from a Secret"]
    if any("API_KEY" in cm.get("data", {}) for cm in find(docs, "ConfigMap")):
        return ["backend: API_KEY is in a ConfigMap; take it from a Secret"]
    if public and "secretKeyRef" not in (key or {}).get("valueFrom", {}):
        return ["backend: API_KEY must come from a Secret (writes are open otherwise)"]
    return []


#: The ServiceAccount annotation of EKS's IAM roles for service accounts (a web identity).
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"


def check_storage_credentials(docs: list[Doc]) -> list[str]:
    """The backend's AWS credentials come from a Secret, never a literal or a ConfigMap (a key
    in a manifest is a key in git); with STORAGE_URL s3:// it has some: the key pair from a
    Secret, or a web identity (AWS_ROLE_ARN, or EKS's role annotation on its ServiceAccount)."""
    dep = find(docs, "Deployment", "circle-detector-backend")[0]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = env_of(c)
    problems = []
    for name in sorted(contracts.AWS_SECRET_NAMES & set(env)):
        if "value" in env[name]:
            problems.append(f"backend: {name} is a literal in the manifest; take it from a Secret")
        elif "secretKeyRef" not in env[name].get("valueFrom", {}):
            problems.append(f"backend: {name} must come from a Secret (secretKeyRef)")
    for cm in find(docs, "ConfigMap"):
        leaked = sorted(contracts.AWS_SECRET_NAMES & set(cm.get("data", {})))
        if leaked:
            problems.append(
                f"ConfigMap/{cm['metadata']['name']}: {', '.join(leaked)} in a ConfigMap; "
                "take it from a Secret"
            )
    if not (_backend_env(docs, c).get("STORAGE_URL") or "").startswith("s3://"):
        return problems
    key_pair = all(
        "secretKeyRef" in env.get(name, {}).get("valueFrom", {})
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    )
    accounts = find(docs, "ServiceAccount", pod.get("serviceAccountName", "default"))
    annotations = accounts[0]["metadata"].get("annotations", {}) if accounts else {}
    web_identity = "AWS_ROLE_ARN" in env or IRSA_ANNOTATION in annotations
    if not key_pair and not web_identity:
        problems.append(
            "backend: STORAGE_URL is s3:// but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY do not "
            "come from a Secret (nor is there a web identity)"
        )
    return problems


def check_high_availability(docs: list[Doc]) -> list[str]:
    """stage/prod: PostgreSQL from a Secret, replicas > 1, PDB, HPA, the uploads in object
    storage and no ReadWriteMany volume (which common storage classes cannot provision)."""
    problems = []
    dep = find(docs, "Deployment", "circle-detector-backend")[0]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    db = env_of(c).get("DATABASE_URL", {})
    if "secretKeyRef" not in db.get("valueFrom", {}):
        problems.append("backend: DATABASE_URL must come from a Secret")
    hpas = find(docs, "HorizontalPodAutoscaler")
    if not hpas or hpas[0]["spec"]["minReplicas"] < 2:
        problems.append("backend: needs more than one replica (an HPA with minReplicas >= 2)")
    if "replicas" in dep["spec"]:
        problems.append("backend: the HPA owns replicas; a fixed count would fight it on apply")
    if dep["spec"].get("strategy", {}).get("type") != "RollingUpdate":
        problems.append("backend: several replicas roll, they do not Recreate")
    if not find(docs, "PodDisruptionBudget"):
        problems.append("no PodDisruptionBudget")
    if not (_backend_env(docs, c).get("STORAGE_URL") or "").startswith("s3://"):
        problems.append(
            "backend: several replicas need STORAGE_URL s3://BUCKET/PREFIX (a local folder is "
            "one pod's)"
        )
    for pvc in find(docs, "PersistentVolumeClaim"):
        if "ReadWriteMany" in pvc["spec"].get("accessModes", []):
            problems.append(
                f"PersistentVolumeClaim/{pvc['metadata']['name']}: ReadWriteMany, which the "
                "common storage classes (kind's, EBS, GCE PD) cannot provision: uploads go to S3"
            )
    claims = [v["name"] for v in pod.get("volumes", []) if "persistentVolumeClaim" in v]
    if claims:
        problems.append(
            f"backend: several replicas mount no PersistentVolumeClaim (volumes {claims}): "
            "a ReadWriteOnce claim holds them on one node"
        )
    return problems


# --- Istio --------------------------------------------------------------------------------------


def _vs_matches(match: Doc, path: str) -> bool:
    uri = match.get("uri", {})
    if "exact" in uri:
        return path == uri["exact"]
    if "prefix" in uri:
        return path.startswith(uri["prefix"])
    if "regex" in uri:
        return re.fullmatch(uri["regex"], path) is not None
    return True


def _example(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def _first_rule(vss: list[Doc], path: str) -> Doc | None:
    """The HTTP rule Istio applies to `path`: the first whose match list matches (no list: all)."""
    for vs in vss:
        for rule in vs["spec"].get("http", []):
            matches = rule.get("match") or [{}]
            if any(_vs_matches(m, path) for m in matches):
                return rule
    return None


def public_paths(backend: contracts.BackendContract) -> list[str]:
    """What users reach through the gateway: the API, health, docs and the web page's files."""
    paths = [_example(p) for p in backend.api_paths if p.startswith("/api/")]
    paths += ["/health", "/health/ready", "/docs", "/openapi.json", "/"]
    static = backend.static_dir
    if static is not None:
        paths += ["/" + p.relative_to(static).as_posix() for p in static.rglob("*") if p.is_file()]
    return paths


def check_routing(docs: list[Doc], backend: contracts.BackendContract, tls: bool) -> list[str]:
    """Where users arrive (net-istio's public Gateway; with TLS the project's HTTPS Gateway),
    every public path of the backend goes to the backend Service; /metrics stays inside on every
    gateway; with TLS plain HTTP is redirected to HTTPS and hosts are named."""
    problems = []
    gateways = {g["metadata"]["name"]: g for g in find(docs, "Gateway")}
    services = {s["metadata"]["name"]: s for s in find(docs, "Service")}
    vss = find(docs, "VirtualService")
    if not vss:
        return ["no VirtualService"]
    bound: dict[str, list[Doc]] = {}
    for vs in vss:
        for gw in vs["spec"].get("gateways", []):
            if gw not in gateways and gw not in KNATIVE_GATEWAYS:
                problems.append(f"VirtualService: gateway {gw} does not exist")
            bound.setdefault(gw, []).append(vs)
        for rule in vs["spec"].get("http", []):
            for dest in rule.get("route", []):
                d = dest["destination"]
                svc = services.get(d["host"])
                ports = {p["port"] for p in svc["spec"]["ports"]} if svc else set()
                if d.get("port", {}).get("number") not in ports:
                    problems.append(f"VirtualService: destination {d} is no Service port")
    servers = [s for g in gateways.values() for s in g["spec"]["servers"]]
    https = [
        name
        for name, g in gateways.items()
        for s in g["spec"]["servers"]
        if s["port"]["protocol"] == "HTTPS" and s.get("tls", {}).get("credentialName")
    ]
    if tls and not https:
        problems.append("Gateway: HTTPS with a credentialName is required")
    for gw in https if tls else [PUBLIC_GATEWAY]:
        for path in public_paths(backend):
            rule = _first_rule(bound.get(gw, []), path)
            hosts = {d["destination"]["host"] for d in (rule or {}).get("route", [])}
            if not backend.serves_get(path):
                problems.append(f"the backend does not serve {path} (contract out of date?)")
            if hosts != {"circle-detector-backend"}:
                problems.append(f"VirtualService: {path} is not routed to the backend on {gw}")
    for gw, serving in bound.items():
        rule = _first_rule(serving, "/metrics")
        if rule is not None and rule.get("route"):
            problems.append(f"VirtualService: /metrics must not be reachable through {gw}")
    if tls:
        http = [s for s in servers if s["port"]["protocol"] == "HTTP"]
        if any(not s.get("tls", {}).get("httpsRedirect") for s in http):
            problems.append("Gateway: plain HTTP must redirect to HTTPS")
        plain = [r for vs in bound.get(PUBLIC_GATEWAY, []) for r in vs["spec"].get("http", [])]
        if not plain and not http:
            problems.append("plain HTTP for the host must be redirected to HTTPS (nothing does)")
        if any(r.get("redirect", {}).get("scheme") != "https" for r in plain):
            problems.append(f"{PUBLIC_GATEWAY}: plain HTTP must redirect to HTTPS")
        hosts = {h for vs in vss for h in vs["spec"]["hosts"]}
        if "*" in hosts:
            problems.append("VirtualService: a TLS environment names its host, not *")
    return problems


def _hosts_overlap(a: str, b: str) -> bool:
    """Istio's host.Name.Matches: equal names, or a wildcard covering the other."""
    a, b = a.rsplit("/", 1)[-1], b.rsplit("/", 1)[-1]
    if a.startswith("*") and b.startswith("*"):
        return a[1:].endswith(b[1:]) or b[1:].endswith(a[1:])
    if a.startswith("*"):
        return b.endswith(a[1:])
    if b.startswith("*"):
        return a.endswith(b[1:])
    return a == b


def check_gateway_conflicts(docs: list[Doc]) -> list[str]:
    """Istio's analyzer IST0145 (ConflictingGateways): two Gateways with the same selector and
    port whose hosts overlap, among ours and the ones net-istio installs."""
    servers = [(name, *spec) for name, spec in KNATIVE_GATEWAYS.items()]
    for g in find(docs, "Gateway"):
        name = f"{g['metadata'].get('namespace')}/{g['metadata']['name']}"
        selector = g["spec"].get("selector", {})
        for srv in g["spec"]["servers"]:
            servers.append((name, selector, srv["port"]["number"], srv["hosts"]))
    problems = []
    for name, selector, port, hosts in servers[len(KNATIVE_GATEWAYS) :]:
        for other, selector2, port2, hosts2 in servers:
            if other == name or selector != selector2 or port != port2:
                continue
            if any(_hosts_overlap(h, h2) for h in hosts for h2 in hosts2):
                problems.append(
                    f"Gateway {name}: port {port} hosts {hosts} overlap {other}'s {hosts2} "
                    "(Istio IST0145 ConflictingGateways)"
                )
    return problems


# --- images -------------------------------------------------------------------------------------


def images_of(docs: list[Doc]) -> dict[str, Doc]:
    """'bento' and 'backend' containers by role."""
    out = {}
    for d in docs:
        if d["kind"] == ISVC and predictor(d, docs).container is not None:
            out["bento"] = predictor(d, docs).container
        if d["kind"] == "Deployment":
            out["backend"] = d["spec"]["template"]["spec"]["containers"][0]
    return out


def _repo_and_tag(ref: str) -> tuple[str, str]:
    repo, _, tag = ref.rpartition(":")
    return (repo, tag) if "/" not in tag else (ref, "")


def check_images(docs: list[Doc], built: contracts.Images, local: bool, version: str) -> list[str]:
    """Images are those the build script produces (local: exactly; elsewhere: same repository
    names under another registry), tagged with the project's version, never pulled on kind."""
    problems = []
    containers = images_of(docs)
    for role, want in (("bento", built.bento), ("backend", built.backend)):
        c = containers.get(role)
        if c is None:
            problems.append(f"no {role} container")
            continue
        got = c["image"]
        repo, tag = _repo_and_tag(got)
        want_repo, _ = _repo_and_tag(want)
        if local and got != want:
            problems.append(f"{role}: image {got} is not what build-images.sh makes ({want})")
        if not local and repo.rsplit("/", 1)[-1] != want_repo.rsplit("/", 1)[-1]:
            problems.append(f"{role}: image {got} is not named like {want_repo}")
        if not tag or tag == "latest" or tag != version:
            problems.append(f"{role}: image tag {tag!r} is not the project version {version}")
        if c.get("imagePullPolicy") != "IfNotPresent":
            problems.append(f"{role}: imagePullPolicy must be IfNotPresent")
        if local and repo.split("/", 1)[0] not in contracts.KNATIVE_SKIPPED_REGISTRIES:
            problems.append(f"{role}: {got} is outside Knative's registries-skipping-tag-resolving")
    return problems


def mutated(docs: list[Doc], kind: str, change) -> list[Doc]:
    """A deep copy of `docs` with `change(doc)` applied to the first object of `kind`."""
    out = copy.deepcopy(docs)
    change(next(d for d in out if d["kind"] == kind))
    return out
