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
  *" version "*|*" get crd "*|*" wait "*|*" rollout status "*) exit 0 ;;
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

    def run(script: str, *args: str, secrets: str = "") -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "FAKE_DIR": str(tmp_path),
            "FAKE_SECRETS": secrets,
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
    result = cluster("deploy.sh", "stage", secrets="circle-detector-tls circle-detector-api-key")
    assert result.returncode != 0
    assert "create secret generic circle-detector-db" in result.stderr
    assert not (cluster.dir / "applied.yaml").exists()


def test_deploy_dev_stops_without_the_api_key_secret(cluster):
    result = cluster("deploy.sh", "dev")
    assert result.returncode != 0
    assert "create secret generic circle-detector-api-key" in result.stderr
    assert not (cluster.dir / "applied.yaml").exists()


def test_deploy_prod_stops_without_the_tls_secret(cluster):
    result = cluster("deploy.sh", "prod", secrets="circle-detector-db circle-detector-api-key")
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
        secrets="circle-detector-db circle-detector-tls circle-detector-api-key",
    )
    assert result.returncode == 0, result.stderr
    applied = _docs(cluster.dir / "applied.yaml")
    isvc = next(d for d in applied if d["kind"] == "InferenceService")
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert isvc["spec"]["predictor"]["containers"][0]["image"] == image


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
