"""What the manifests must agree with, read from the real code and scripts (never copied here).

- the Bento: its FastAPI app's routes (probe paths), its settings (env names, gRPC port), its
  served model name;
- the backend: its app's routes (probes, gateway routes), its settings (env names, port);
- the build script: the image references it produces (`scripts/build-images.sh --print-images`);
- the kind script: the Kubernetes version it installs (`scripts/kind-up.sh --print-versions`).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.routing import Match
from starlette.types import ASGIApp

from tests.k8s.manifests import run_script

# Knative Serving's default `registries-skipping-tag-resolving` (config-deployment).
KNATIVE_SKIPPED_REGISTRIES = frozenset({"kind.local", "ko.local", "dev.local"})

#: The standard AWS variables botocore reads (region, endpoint, credentials, web identity): the
#: backend's S3 client takes them from the environment, so they are no fields of its Settings.
AWS_ENV_NAMES = frozenset(
    {
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CA_BUNDLE",
        "AWS_STS_REGIONAL_ENDPOINTS",
    }
)
#: Of those, the ones that are secrets: from a Secret, never a literal or a ConfigMap.
AWS_SECRET_NAMES = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"})


def serves_get(app: ASGIApp) -> Callable[[str], bool]:
    """A predicate: does `app` have a route that fully matches GET on this path?"""

    def check(path: str) -> bool:
        scope = {"type": "http", "path": path, "method": "GET", "root_path": "", "headers": []}
        return any(route.matches(scope)[0] == Match.FULL for route in app.routes)

    return check


@dataclass(frozen=True)
class BentoContract:
    serves_get: Callable[[str], bool]
    env_names: frozenset[str]
    grpc_port: int
    default_port: int
    model_name: str
    #: CIRCLE_DETECTOR_READY_DEADLINE_S's default: not ready this long, /v2/health/live fails.
    ready_deadline_s: float
    #: The launcher's option strings (`--port`, `--model_dir`, ...): what a runtime may pass.
    launcher_options: frozenset[str]
    #: The committed model's format version (circle_detector.json "version"): the runtime's
    #: supportedModelFormats version.
    model_version: str
    #: The launcher's Prometheus route (standalone.py adds it beside the V2 app's routes).
    metrics_path: str


@dataclass(frozen=True)
class BackendContract:
    serves_get: Callable[[str], bool]
    env_names: frozenset[str]
    default_port: int
    api_paths: tuple[str, ...]
    static_dir: Path | None
    #: Defaults of MODEL_TIMEOUT_S and MODEL_RETRY_DEADLINE_S (seconds).
    model_timeout_s: float
    model_retry_deadline_s: float


@dataclass(frozen=True)
class Images:
    bento: str
    backend: str


def _env_names(settings_cls) -> frozenset[str]:
    prefix = settings_cls.model_config.get("env_prefix", "")
    names = set()
    for field_name, field in settings_cls.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else f"{prefix}{field_name}".upper())
    return frozenset(names)


@functools.cache
def bento() -> BentoContract:
    from bentos.circle_detector import rest, standalone
    from bentos.circle_detector.model.detector import MODEL_NAME
    from bentos.circle_detector.settings import BentoSettings, variable

    defaults = BentoSettings()
    return BentoContract(
        launcher_options=launcher_options(),
        model_version=model_version(),
        metrics_path=standalone._metrics_route().path,
        serves_get=serves_get(rest.app),
        env_names=frozenset(variable(f.name) for f in dataclasses.fields(BentoSettings)),
        grpc_port=defaults.grpc_port,
        default_port=defaults.port,
        model_name=MODEL_NAME,
        ready_deadline_s=defaults.ready_deadline_s,
    )


def launcher_options() -> frozenset[str]:
    """Every option string of the image's entrypoint, the launcher."""
    from bentos.circle_detector.standalone import build_parser

    return frozenset(s for action in build_parser()._actions for s in action.option_strings)


#: KServe's runtime arguments (`--model_name={{.Name}} --model_dir=/mnt/models --http_port=8080`)
#: and the gRPC port: the options the launcher must have to run as a ClusterServingRuntime.
KSERVE_OPTIONS = ("--model_name", "--model_dir", "--http_port", "--grpc_port")


def missing_kserve_options() -> list[str]:
    """KServe's options the launcher does not have (yet)."""
    return [o for o in KSERVE_OPTIONS if o not in launcher_options()]


def model_version() -> str:
    """The version in the committed export's metadata (what `circle-detector export` writes)."""
    import json

    from tests.k8s.manifests import REPO_ROOT

    meta = REPO_ROOT / "bentos/circle_detector/model/weights/circle_detector.json"
    return str(json.loads(meta.read_text())["version"])


@functools.cache
def backend() -> BackendContract:
    from backend.app import create_app
    from backend.config import Settings

    settings = Settings()
    app = create_app(settings)
    static = settings.static_dir if (settings.static_dir / "index.html").is_file() else None
    return BackendContract(
        serves_get=serves_get(app),
        env_names=_env_names(Settings),
        default_port=int(Settings.model_fields["port"].default),
        api_paths=tuple(app.openapi()["paths"]),
        static_dir=static,
        model_timeout_s=float(Settings.model_fields["model_timeout_s"].default),
        model_retry_deadline_s=float(Settings.model_fields["model_retry_deadline_s"].default),
    )


def storage_url_problem(url: str) -> str | None:
    """Why the backend would refuse this STORAGE_URL at start-up (its own parser), or None."""
    if not url:
        return None
    from backend.s3storage import parse_storage_url

    try:
        parse_storage_url(url)
    except ValueError as exc:
        return str(exc)
    return None


@functools.cache
def images() -> Images:
    bento_image, backend_image = run_script("build-images.sh", "--print-images").split()
    return Images(bento=bento_image, backend=backend_image)


@functools.cache
def kubernetes_version() -> str:
    """The Kubernetes version of the kind node image that scripts/kind-up.sh pins (x.y.z)."""
    out = run_script("kind-up.sh", "--print-versions")
    match = re.search(r"^kubernetes\s+v?(\d+\.\d+\.\d+)$", out, re.MULTILINE)
    assert match, f"kind-up.sh --print-versions names no kubernetes version:\n{out}"
    return match.group(1)


def project_version() -> str:
    import tomllib

    from tests.k8s.manifests import REPO_ROOT

    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]["version"]
