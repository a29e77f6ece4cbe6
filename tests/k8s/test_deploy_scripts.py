"""deploy.sh and teardown.sh drive kubectl as they should. Mocked: kubectl and the cluster behind
it (no Kubernetes can run here): a fake kubectl on PATH records each call, keeps what it is asked
to apply or delete, and answers from a small state (which Secrets exist)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.k8s.manifests import SCRIPTS, render

FAKE = r"""#!/usr/bin/env bash
# fake kubectl: log the call, then answer like a cluster with KServe and the listed Secrets.
printf '%s\n' "$*" >> "$FAKE_DIR/calls"
args=" $* "
file=""
prev=""
for a in "$@"; do [[ "$prev" == -f ]] && file="$a"; prev="$a"; done
case "$args" in
  *" get crd virtualservices.networking.istio.io "*) printf '%s' "$FAKE_ISTIO_VERSIONS"; exit 0 ;;
  *" version "*|*" get crd "*|*" wait "*|*" rollout status "*) exit 0 ;;
  *" get storageclass "*)
    for c in $FAKE_STORAGE_CLASSES; do [[ "$args" == *" $c "* ]] && exit 0; done
    echo "Error from server (NotFound): storageclasses not found" >&2; exit 1 ;;
  *" get configmap config-features "*) printf '%s' "$FAKE_FEATURE"; exit 0 ;;
  *" get pvc "*)
    for s in $FAKE_PVCS; do [[ "$args" == *" $s "* ]] && exit 0; done
    echo "Error from server (NotFound): persistentvolumeclaims not found" >&2; exit 1 ;;
  *" get secret "*)
    for s in $FAKE_SECRETS; do [[ "$args" == *" $s "* ]] && exit 0; done
    echo "Error from server (NotFound): secrets not found" >&2; exit 1 ;;
  *" apply "*) cp "$file" "$FAKE_DIR/applied.yaml"; exit 0 ;;
  *" delete "*) cp "$file" "$FAKE_DIR/deleted.yaml"; exit 0 ;;
  *" get inferenceservice "*) printf 'http://circle-detector.ns.example.com'; exit 0 ;;
esac
echo "fake kubectl: unexpected call: $*" >&2
exit 1
"""


@pytest.fixture
def cluster(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE)
    kubectl.chmod(0o755)

    def run(
        script: str,
        *args: str,
        secrets: str = "",
        istio: str = "v1alpha3 v1beta1 v1",
        classes: str = "efs-sc",
        feature: str = "enabled",
        pvcs: str = "circle-detector-models",
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "FAKE_DIR": str(tmp_path),
            "FAKE_SECRETS": secrets,
            "FAKE_ISTIO_VERSIONS": istio,
            "FAKE_STORAGE_CLASSES": classes,
            "FAKE_FEATURE": feature,
            "FAKE_PVCS": pvcs,
        }
        return subprocess.run(
            ["bash", str(SCRIPTS / script), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    run.dir = tmp_path
    return run


ALL_SECRETS = (
    "circle-detector-db circle-detector-tls circle-detector-api-key circle-detector-s3 "
    "circle-detector-storage"
)


def _calls(cluster) -> list[str]:
    path = cluster.dir / "calls"
    return path.read_text().splitlines() if path.exists() else []


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_deploy_local_applies_the_rendered_overlay_and_waits(cluster):
    result = cluster("deploy.sh", "local")
    assert result.returncode == 0, result.stderr
    assert _docs(cluster.dir / "applied.yaml") == render("local")
    calls = _calls(cluster)
    assert any(c.startswith("--context kind-circle-detector apply --server-side") for c in calls)
    waits = [c for c in calls if " wait " in f" {c} " or "rollout status" in c]
    assert any("inferenceservice/circle-detector" in c for c in waits)
    assert any("deployment/circle-detector-backend" in c for c in waits)
    assert "http://circle-detector.ns.example.com" in result.stderr


def test_deploy_stage_stops_before_applying_without_the_database_secret(cluster):
    result = cluster(
        "deploy.sh",
        "stage",
        secrets="circle-detector-tls circle-detector-api-key",
    )
    assert result.returncode != 0
    assert "create secret generic circle-detector-db" in result.stderr
    assert not (cluster.dir / "applied.yaml").exists()


def test_deploy_dev_stops_without_the_api_key_secret(cluster):
    result = cluster("deploy.sh", "dev")
    assert result.returncode != 0
    assert "create secret generic circle-detector-api-key" in result.stderr
    assert not (cluster.dir / "applied.yaml").exists()


def test_deploy_prod_stops_without_the_tls_secret(cluster):
    result = cluster(
        "deploy.sh",
        "prod",
        secrets="circle-detector-db circle-detector-api-key circle-detector-s3 "
        "circle-detector-storage",
    )
    assert result.returncode != 0
    assert "create secret tls circle-detector-tls" in result.stderr
    assert not (cluster.dir / "applied.yaml").exists()


def test_deploy_prod_with_its_secrets_and_a_canary(cluster):
    image = "registry.example.com/circle-detector/bento:0.2.0"
    result = cluster(
        "deploy.sh",
        "prod",
        "--with",
        "canary",
        "--bento-image",
        image,
        secrets=ALL_SECRETS,
    )
    assert result.returncode == 0, result.stderr
    applied = _docs(cluster.dir / "applied.yaml")
    isvc = next(d for d in applied if d["kind"] == "InferenceService")
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert isvc["spec"]["predictor"]["model"]["image"] == image


def test_dry_run_asks_the_api_server_and_changes_nothing(cluster):
    result = cluster("deploy.sh", "dev", "--dry-run")
    assert result.returncode == 0, result.stderr
    applies = [c for c in _calls(cluster) if " apply " in f" {c} "]
    assert applies and all("--dry-run=server" in c for c in applies)
    assert not any(" wait " in f" {c} " for c in _calls(cluster))


def test_teardown_deletes_the_overlay_or_keeps_its_data(cluster):
    assert cluster("teardown.sh", "local").returncode == 0
    assert _docs(cluster.dir / "deleted.yaml") == render("local")
    result = cluster("teardown.sh", "local", "--keep-data")
    assert result.returncode == 0, result.stderr
    kinds = {d["kind"] for d in _docs(cluster.dir / "deleted.yaml")}
    assert "Namespace" not in kinds and "PersistentVolumeClaim" not in kinds
    assert {"Deployment", "InferenceService", "Service"} <= kinds


def test_deploy_local_stops_without_the_model_pvc(cluster):
    result = cluster("deploy.sh", "local", pvcs="")
    assert result.returncode != 0
    assert "circle-detector-models is missing" in result.stderr
    assert "scripts/load-model-pvc.sh local" in result.stderr
    assert not (cluster.dir / "applied.yaml").exists()
    # The custom-container form carries the model in its image: no PVC asked for.
    assert cluster("deploy.sh", "local", "--with", "custom-container", pvcs="").returncode == 0


def test_deploy_dev_stops_without_the_models_s3_secret(cluster):
    result = cluster("deploy.sh", "dev", secrets="circle-detector-api-key")
    assert result.returncode != 0
    assert "create secret generic circle-detector-s3" in result.stderr
    assert "AWS_ACCESS_KEY_ID" in result.stderr
    ok = cluster("deploy.sh", "dev", secrets="circle-detector-api-key circle-detector-s3")
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("overlay", ["stage", "prod"])
def test_deploy_stops_without_the_upload_storage_secret(cluster, overlay):
    """stage/prod keep uploads in S3: no volume, and the credentials' Secret must exist first."""
    others = ALL_SECRETS.replace(" circle-detector-storage", "")
    result = cluster("deploy.sh", overlay, secrets=others)
    assert result.returncode != 0
    assert "Secret circle-detector-storage missing" in result.stderr
    assert (
        "create secret generic circle-detector-storage --from-literal=aws-access-key-id="
        in result.stderr
    )
    assert "--from-literal=aws-secret-access-key=" in result.stderr
    assert not (cluster.dir / "applied.yaml").exists()
    result = cluster("deploy.sh", overlay, secrets=ALL_SECRETS)
    assert result.returncode == 0, result.stderr
    applied = _docs(cluster.dir / "applied.yaml")
    assert not [d for d in applied if d["kind"] == "PersistentVolumeClaim"]
    assert not any(" get storageclass " in f" {c} " for c in _calls(cluster))
    config = next(d for d in applied if d["kind"] == "ConfigMap")["data"]
    assert config["STORAGE_URL"].startswith("s3://")


def test_storage_class_names_the_volume_of_local_and_dev_only(cluster):
    """--storage-class is for the PVC that local/dev keep; stage/prod have none and refuse it
    (a patch on a missing object would be dropped without a word)."""
    refused = cluster("deploy.sh", "stage", "--storage-class", "efs-sc", secrets=ALL_SECRETS)
    assert refused.returncode != 0
    assert "overlay stage has no PersistentVolumeClaim" in refused.stderr
    assert not (cluster.dir / "applied.yaml").exists()
    dev = "circle-detector-api-key circle-detector-s3"
    missing = cluster("deploy.sh", "dev", "--storage-class", "nfs", secrets=dev)
    assert missing.returncode != 0 and "StorageClass nfs does not exist" in missing.stderr
    result = cluster("deploy.sh", "dev", "--storage-class", "efs-sc", secrets=dev)
    assert result.returncode == 0, result.stderr
    pvc = next(
        d for d in _docs(cluster.dir / "applied.yaml") if d["kind"] == "PersistentVolumeClaim"
    )
    assert pvc["spec"]["storageClassName"] == "efs-sc"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_deploy_stops_on_an_istio_older_than_1_22(cluster):
    result = cluster("deploy.sh", "local", istio="v1alpha3 v1beta1")
    assert result.returncode != 0
    assert "Istio 1.22 or later" in result.stderr and "v1alpha3 v1beta1" in result.stderr
    assert not (cluster.dir / "applied.yaml").exists()


def test_deploy_with_gpu_needs_knatives_podspec_features(cluster):
    result = cluster("deploy.sh", "local", "--with", "gpu", feature="disabled")
    assert result.returncode != 0
    assert "kubernetes.podspec-nodeselector is 'disabled'" in result.stderr
    assert "patch configmap/config-features" in result.stderr
    assert not (cluster.dir / "applied.yaml").exists()
    assert cluster("deploy.sh", "local", "--with", "gpu").returncode == 0
    features = [c for c in _calls(cluster) if "config-features" in c]
    assert any("kubernetes\\.podspec-tolerations" in c for c in features), features
    # Without the GPU component the flags are not asked for.
    (cluster.dir / "calls").unlink()
    assert cluster("deploy.sh", "local", feature="disabled").returncode == 0
    assert not [c for c in _calls(cluster) if "config-features" in c]


def test_deploy_with_pull_secret_stops_without_the_registry_secret(cluster):
    result = cluster("deploy.sh", "local", "--with", "pull-secret")
    assert result.returncode != 0
    assert "create secret docker-registry circle-detector-registry" in result.stderr
    ok = cluster("deploy.sh", "local", "--with", "pull-secret", secrets="circle-detector-registry")
    assert ok.returncode == 0, ok.stderr


KIND_FAKES = {
    "kind": """#!/usr/bin/env bash
printf 'kind %s\\n' "$*" >> "$FAKE_DIR/calls"
case "$1" in
  version) echo "kind $FAKE_KIND_VERSION go1.22.9 linux/amd64" ;;
  get) echo circle-detector ;;
esac
""",
    "curl": "#!/usr/bin/env bash\nexit 1\n",
    "istioctl": '#!/usr/bin/env bash\nprintf \'istioctl %s\\n\' "$*" >> "$FAKE_DIR/calls"\n',
    # A cluster whose webhooks refuse the first calls: Knative's until its deployment `webhook`
    # was waited for and then once more, KServe's manifest twice (cert-manager's webhook).
    "kubectl": """#!/usr/bin/env bash
printf 'kubectl %s\\n' "$*" >> "$FAKE_DIR/calls"
args=" $* "
count() {
  local n
  n=$(( $(cat "$FAKE_DIR/$1" 2>/dev/null || echo 0) + 1 ))
  echo "$n" > "$FAKE_DIR/$1"
  echo "$n"
}
refuse() { echo "$1" >&2; exit 1; }
case "$args" in
  *" patch configmap/"*)
    grep -q 'deploy/webhook ' "$FAKE_DIR/calls" || refuse 'webhook not ready'
    (( $(count patch) > 1 )) || refuse 'failed calling webhook "config.webhook.serving.knative.dev"'
    ;;
  *"/kserve.yaml "*) (( $(count kserve) > 2 )) || refuse 'no endpoints for cert-manager-webhook' ;;
esac
exit 0
""",
}


def _kind_up(tmp_path: Path, kind_version: str = "v0.25.0") -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in KIND_FAKES.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_DIR": str(tmp_path),
        "FAKE_KIND_VERSION": kind_version,
        "ISTIOCTL": str(bin_dir / "istioctl"),
        "RETRY_DELAY_S": "0",
        "RETRY_ATTEMPTS": "5",
    }
    return subprocess.run(
        ["bash", str(SCRIPTS / "kind-up.sh")], capture_output=True, text=True, env=env, timeout=60
    )


def test_kind_up_waits_for_the_webhooks_and_retries_what_they_refuse(tmp_path):
    result = _kind_up(tmp_path)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    first_patch = next(i for i, c in enumerate(calls) if "patch configmap/" in c)
    webhook_wait = next(i for i, c in enumerate(calls) if "deploy/webhook " in c)
    assert webhook_wait < first_patch  # waited for before the first patch
    assert "webhook" in result.stderr and "retrying" in result.stderr
    features = [c for c in calls if "patch configmap/config-features" in c]
    assert features and all(
        '"kubernetes.podspec-nodeselector":"enabled"' in c
        and '"kubernetes.podspec-tolerations":"enabled"' in c
        for c in features
    )
    assert sum("/kserve.yaml" in c for c in calls) == 3  # refused twice, then applied
    assert any("kserve-cluster-resources.yaml" in c for c in calls)


def test_kind_up_refuses_another_kind_version(tmp_path):
    result = _kind_up(tmp_path, kind_version="v0.20.0")
    assert result.returncode != 0
    assert "kind v0.20.0 found, v0.25.0 pinned" in result.stderr


def test_kind_node_image_is_pinned_by_digest_inside_kserves_tested_range():
    """KServe 0.14 is tested on Kubernetes 1.28 to 1.30; the node image of kind v0.25.0."""
    out = subprocess.run(
        ["bash", str(SCRIPTS / "kind-up.sh"), "--print-versions"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    pins = dict(line.split(None, 1) for line in out.splitlines())
    major, minor, _ = (int(x) for x in pins["kubernetes"].split("."))
    assert (major, minor) in {(1, 28), (1, 29), (1, 30)}, pins["kubernetes"]
    assert pins["kind"].strip() == "v0.25.0"
    image = pins["kind-node"].strip()
    assert image.startswith(f"kindest/node:v{pins['kubernetes'].strip()}@sha256:")
    assert len(image.rsplit(":", 1)[1]) == 64
