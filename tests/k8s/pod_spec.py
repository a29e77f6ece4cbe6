"""Print what a rendered overlay tells the model's container, as `podman run` arguments, so that
scripts/container-test.sh runs the image exactly as the InferenceService would (env, command,
and the PORT Knative sets to the container port).

    python -m tests.k8s.pod_spec local [--with grpc]   # one argument per line
"""

from __future__ import annotations

import argparse

from tests.k8s.manifests import COMPONENTS, OVERLAYS, one, render


def podman_args(overlay: str, components: tuple[str, ...]) -> list[str]:
    """`-e NAME=VALUE` for each env entry and Knative's PORT, the user, `--entrypoint` if a
    command is set, then the placeholder IMAGE and the command's arguments (podman's order)."""
    container = one(render(overlay, components), "InferenceService")["spec"]["predictor"][
        "containers"
    ][0]
    port = container["ports"][0]["containerPort"]
    args = ["-e", f"PORT={port}"]
    user = container.get("securityContext", {}).get("runAsUser")
    if user is not None:
        args += ["--user", f"{user}:{user}"]
    for entry in container.get("env", []):
        args += ["-e", f"{entry['name']}={entry['value']}"]
    command = container.get("command", [])
    if command:
        args += ["--entrypoint", command[0]]
    return [*args, "IMAGE", *command[1:], *container.get("args", [])]


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
