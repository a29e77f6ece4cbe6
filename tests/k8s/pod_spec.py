"""Print what a rendered overlay tells the model's container, as `podman run` arguments, so that
scripts/container-test.sh runs the image exactly as the InferenceService would (env, command,
and the PORT Knative sets to the container port). In the runtime form (the default) that is the
ClusterServingRuntime's container merged with the predictor's, KServe's `{{.Name}}` filled in,
and the model directory mounted read-only at /mnt/models (the placeholder MODELDIR, which the
script replaces by an exported model folder, as KServe's pvc:// mount or storage initializer).

    python -m tests.k8s.pod_spec local [--with grpc]   # one argument per line
"""

from __future__ import annotations

import argparse

from tests.k8s.manifests import COMPONENTS, OVERLAYS, one, render
from tests.k8s.predictor import MODEL_MOUNT, predictor


def podman_args(overlay: str, components: tuple[str, ...]) -> list[str]:
    """`-e NAME=VALUE` for each env entry and Knative's PORT, the user, the model mount (runtime
    form), `--entrypoint` if a command is set, then the placeholder IMAGE and the command's
    arguments (podman's order)."""
    docs = render(overlay, components)
    isvc = one(docs, "InferenceService")
    found = predictor(isvc, docs)
    assert found.container is not None, found.problems
    container = found.container
    port = container["ports"][0]["containerPort"]
    args = ["-e", f"PORT={port}"]
    if found.model is not None:
        args += ["-v", f"MODELDIR:{MODEL_MOUNT}:ro"]
    user = container.get("securityContext", {}).get("runAsUser")
    if user is not None:
        args += ["--user", f"{user}:{user}"]
    for entry in container.get("env", []):
        args += ["-e", f"{entry['name']}={entry['value']}"]
    command = container.get("command", [])
    if command:
        args += ["--entrypoint", command[0]]
    # KServe's template: the InferenceService's name.
    name = isvc["metadata"]["name"]
    tail = [a.replace("{{.Name}}", name) for a in [*command[1:], *container.get("args", [])]]
    return [*args, "IMAGE", *tail]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overlay", choices=OVERLAYS)
    parser.add_argument(
        "--with", dest="components", default="", help="a,b of " + ",".join(COMPONENTS)
    )
    ns = parser.parse_args()
    components = tuple(c for c in ns.components.split(",") if c)
    print("\n".join(podman_args(ns.overlay, components)))


if __name__ == "__main__":
    main()
