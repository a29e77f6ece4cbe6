"""Render the kustomize overlays with the project's own scripts and look objects up in the result.

Rendering goes through `scripts/render.sh` (the script `scripts/deploy.sh` applies), so the tests
check exactly what a deployment would send to the API server. kustomize comes from
`.venv/bin/kubectl` (`scripts/install-kustomize.sh`), a `kubectl` or a `kustomize` on PATH.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S = REPO_ROOT / "k8s"
SCRIPTS = REPO_ROOT / "scripts"
OVERLAYS = ("local", "dev", "stage", "prod")
COMPONENTS = ("canary", "grpc", "gpu", "pull-secret", "custom-container")
RENDER_TIMEOUT_S = 60

Doc = dict[str, Any]


class RenderError(RuntimeError):
    """kustomize refused a kustomization; the message is its stderr."""


def render_dir(path: Path) -> list[Doc]:
    """Render any kustomization directory with the same kustomize the scripts pick."""
    kustomize = run_script("lib/kustomize-cmd.sh").split()
    result = subprocess.run(
        [*kustomize, str(path)], capture_output=True, text=True, timeout=RENDER_TIMEOUT_S
    )
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@functools.lru_cache(maxsize=64)
def _render(overlay: str, components: tuple[str, ...], extra: tuple[str, ...]) -> str:
    args = [overlay, *extra]
    if components:
        args += ["--with", ",".join(components)]
    result = subprocess.run(
        [str(SCRIPTS / "render.sh"), *args],
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_S,
        cwd=REPO_ROOT,
    )
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    return result.stdout


def render(overlay: str, components: Iterable[str] = (), *extra: str) -> list[Doc]:
    """The objects of an overlay (plus optional components); fresh copies on every call."""
    text = _render(overlay, tuple(components), tuple(extra))
    return [d for d in yaml.safe_load_all(text) if d]


def run_script(name: str, *args: str) -> str:
    """Run a script from scripts/ and return its stdout (raises on a non-zero exit)."""
    result = subprocess.run(
        ["bash", str(SCRIPTS / name), *args],
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_S,
        cwd=REPO_ROOT,
        check=True,
    )
    return result.stdout


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    """Objects of a kind (and name)."""
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    """The single object of a kind (and name); fails the test otherwise."""
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def env_of(container: Doc) -> dict[str, Doc]:
    """A container's env entries by name."""
    return {e["name"]: e for e in container.get("env", [])}
