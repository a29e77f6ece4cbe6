"""The deployment scripts: each has --help, rejects what it does not understand with a clear
message, fails fast when a tool is missing, and passes bash's syntax check (and shellcheck's,
where installed). Their cluster steps cannot run here (no Kubernetes)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.k8s.manifests import SCRIPTS

SCRIPT_NAMES = sorted(p.name for p in SCRIPTS.glob("*.sh") if p.name != "test-deps.sh")
OURS = [
    "build-images.sh",
    "container-base.sh",
    "container-test.sh",
    "deploy.sh",
    "install-kustomize.sh",
    "kind-up.sh",
    "render.sh",
    "smoke-test.sh",
    "teardown.sh",
]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", *args], capture_output=True, text=True, timeout=60, env=env or os.environ.copy()
    )


def test_every_script_is_here():
    assert set(OURS) <= set(SCRIPT_NAMES)


@pytest.mark.parametrize("name", OURS)
def test_help_explains_usage(name):
    result = _run(str(SCRIPTS / name), "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: scripts/{name}")
    assert len(result.stdout.splitlines()) >= 4


@pytest.mark.parametrize("name", OURS)
def test_unknown_option_fails_with_a_message(name):
    result = _run(str(SCRIPTS / name), "--no-such-option")
    assert result.returncode != 0
    assert "error:" in result.stderr and "no-such-option" in result.stderr


@pytest.mark.parametrize("name", OURS)
def test_bash_syntax(name):
    result = _run("-n", str(SCRIPTS / name))
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shellcheck_finds_no_errors():
    paths = [str(SCRIPTS / n) for n in OURS] + [str(SCRIPTS / "lib" / "common.sh")]
    result = subprocess.run(
        ["shellcheck", "--severity=error", "-x", *paths], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("kind-up.sh", (), "'kind' is required"),
        ("teardown.sh", ("--cluster",), "'kind' is required"),
        ("smoke-test.sh", ("local",), "is required but not on PATH"),
        ("build-images.sh", ("--engine", "docker"), "'docker' is required"),
        ("container-base.sh", (), "'debootstrap' is required"),
    ],
)
def test_missing_tools_fail_fast(name, args, message, tmp_path):
    """With only bash's own directory on PATH, no cluster tool can be found."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "cat", "date", "sed", "head", "printf", "id"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    result = _run(str(SCRIPTS / name), *args, env=env)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("staging",), "unknown overlay 'staging'"),
        (("local", "--with", "canary,blue"), "unknown component 'blue'"),
        (("local", "--canary-percent", "10"), "needs --with canary"),
        (("local", "--with", "canary", "--canary-percent", "120"), "0..100"),
        (("local", "dev"), "one overlay only"),
        ((), "which overlay"),
    ],
)
def test_render_rejects_bad_arguments(args, message):
    result = _run(str(SCRIPTS / "render.sh"), *args)
    assert result.returncode != 0
    assert message in result.stderr


def test_deploy_fails_fast_without_a_cluster(tmp_path):
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "none"), "KUBE_CONTEXT": "kind-nowhere"}
    result = _run(str(SCRIPTS / "deploy.sh"), "local", env=env)
    assert result.returncode != 0
    assert "no cluster answers" in result.stderr


def test_print_versions_pins_everything():
    out = _run(str(SCRIPTS / "kind-up.sh"), "--print-versions").stdout
    names = {line.split()[0] for line in out.splitlines()}
    assert {"kubernetes", "istio", "knative-serving", "net-istio", "kserve"} <= names
    assert "latest" not in out


def test_install_kustomize_is_idempotent():
    first = _run(str(SCRIPTS / "install-kustomize.sh"))
    assert first.returncode == 0, first.stderr
    second = _run(str(SCRIPTS / "install-kustomize.sh"))
    assert second.returncode == 0 and "already installed" in second.stderr


ENSURE = r"""
source "{common}"
ensure_tools sh=dash fake-podman=podman fake-buildah=buildah
echo "after: $(command -v fake-podman) $(command -v fake-buildah)"
"""


@pytest.mark.parametrize("uid", ["0", "1000"])
def test_ensure_tools_installs_only_what_is_missing_and_only_as_root(tmp_path, uid):
    """container-test.sh's tools on a bare machine: apt-get installs the missing packages (here a
    fake apt-get that puts the tools on PATH); without root it stops with the command instead."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (bin_dir / "apt-get").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {tmp_path}/apt-calls\n'
        'if [ "$1" = install ]; then for p in "$@"; do\n'
        f'  case "$p" in podman|buildah) printf "#!/bin/sh\\n" > {bin_dir}/fake-$p;'
        f" chmod +x {bin_dir}/fake-$p;; esac\n"
        "done; fi\n"
    )
    for tool in ("id", "apt-get"):
        (bin_dir / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    script = ENSURE.format(common=SCRIPTS / "lib" / "common.sh")
    result = _run("-c", script, env=env)
    if uid == "0":
        assert result.returncode == 0, result.stderr
        calls = (tmp_path / "apt-calls").read_text().splitlines()
        assert calls[0] == "update -qq"
        assert calls[1].endswith("install -y -qq podman buildah")  # not dash: sh is there
        assert f"after: {bin_dir}/fake-podman {bin_dir}/fake-buildah" in result.stdout
    else:
        assert result.returncode != 0
        assert "apt-get install -y podman buildah" in result.stderr
        assert not (tmp_path / "apt-calls").exists()
