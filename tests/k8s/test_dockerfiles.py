"""The images agree with the code and the manifests: the backend image installs what the backend
imports (and no torch), and users, ports and paths in the Dockerfiles are the manifests' ones.
Building them for real is scripts/container-test.sh."""

from __future__ import annotations

import ast
import json
import os
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.k8s import checks
from tests.k8s.manifests import REPO_ROOT, one, render
from tests.k8s.predictor import predictor

DOCKER = REPO_ROOT / "docker"
BACKEND_REQUIREMENTS = DOCKER / "backend-requirements.txt"


def _requirements(path: Path) -> dict[str, Requirement]:
    reqs = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            reqs[canonicalize_name(req.name)] = req
    return reqs


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _backend_top_level_imports() -> set[str]:
    """Third-party top-level modules the backend imports, following its imports into bentos/."""
    seen, todo, found = set(), list((REPO_ROOT / "backend").rglob("*.py")), set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "bentos":
                module = REPO_ROOT / Path(*name.split("."))
                todo += [
                    p for p in (module.with_suffix(".py"), module / "__init__.py") if p.exists()
                ]
            elif top != "backend" and top not in sys.stdlib_module_names:
                found.add(top)
    return found


def _closure(reqs: dict[str, Requirement]) -> set[str]:
    """Distributions these requirements install (extras included), from installed metadata."""
    todo = [(name, frozenset(r.extras)) for name, r in reqs.items()]
    seen: set[tuple[str, frozenset[str]]] = set()
    done: set[str] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        done.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for spec in requires:
            req = Requirement(spec)
            env = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(e) for e in env):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return done


def test_backend_image_installs_every_import_of_the_backend():
    installed = _closure(_requirements(BACKEND_REQUIREMENTS))
    providers = metadata.packages_distributions()
    missing = {}
    for module in sorted(_backend_top_level_imports()):
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        assert dists, f"{module} is imported by the backend but installed by nothing here"
        if not dists & installed:
            missing[module] = sorted(dists)
    assert missing == {}, f"imported by the backend, not in {BACKEND_REQUIREMENTS.name}"


def test_backend_image_has_no_model_stack():
    installed = _closure(_requirements(BACKEND_REQUIREMENTS))
    assert not {"torch", "bentoml", "opencv-python-headless"} & installed


def test_backend_requirements_match_pyproject():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared = {
        canonicalize_name(Requirement(r).name): Requirement(r) for r in project["dependencies"]
    }
    for name, req in _requirements(BACKEND_REQUIREMENTS).items():
        assert name in declared, f"{name} is not a dependency in pyproject.toml"
        assert req.specifier == declared[name].specifier, f"{name}: {req} vs {declared[name]}"


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    return _parse(dockerfile.read_text())


def _parse(text: str) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _env(instructions) -> dict[str, str]:
    env = {}
    for word, rest in instructions:
        if word == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return env


def _last(instructions, word: str) -> str:
    return [rest for w, rest in instructions if w == word][-1]


@pytest.fixture(scope="module")
def local():
    return render("local")


def test_backend_dockerfile_matches_the_deployment(local, backend):
    ins = _instructions(DOCKER / "backend.Dockerfile")
    env = _env(ins)
    dep = one(local, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    port = container["ports"][0]["containerPort"]
    assert int(env["PORT"]) == port and str(port) in _last(ins, "EXPOSE").split()
    assert env["HOST"] == "0.0.0.0"
    assert env["DATA_DIR"] in {m["mountPath"] for m in container["volumeMounts"]}
    assert {"PORT", "HOST", "DATA_DIR"} <= backend.env_names
    user = _last(ins, "USER").split(":")[0]
    assert int(user) == pod["securityContext"]["runAsUser"]
    assert _last(ins, "CMD") == '["python", "-m", "backend"]'
    assert (REPO_ROOT / "backend" / "__main__.py").exists()


@pytest.mark.parametrize("components", [(), ("custom-container",)], ids=["runtime", "custom"])
def test_bento_dockerfile_matches_the_inference_service(components, bento):
    ins = _instructions(DOCKER / "bento.Dockerfile")
    env = _env(ins)
    docs = render("local", components)
    container = predictor(one(docs, checks.ISVC), docs).container
    port = container["ports"][0]["containerPort"]
    exposed = {int(p) for p in _last(ins, "EXPOSE").split()}
    assert int(env["PORT"]) == port and {port, bento.grpc_port} <= exposed
    assert "PORT" in bento.env_names  # the Bento reads the port Knative sets
    uid = int(_last(ins, "USER").split(":")[0])
    assert uid == container["securityContext"]["runAsUser"]
    # ... and the uid of `bentoml containerize` images, which the same manifest must run.
    from bentoml._internal.container.generate import BENTO_UID_GID

    assert uid == BENTO_UID_GID
    # The launcher is the ENTRYPOINT: the runtime's `args` (no command) go to it.
    assert _last(ins, "ENTRYPOINT") == json.dumps(checks.LAUNCHER)
    assert _last(ins, "CMD") == "[]"
    assert "command" not in container or container["command"][:3] == checks.LAUNCHER
    assert "PYTHONPATH" in env and env["PYTHONPATH"].endswith("/bento/src")


def test_base_image_is_an_argument_with_a_public_default():
    for name in ("backend.Dockerfile", "bento.Dockerfile"):
        ins = _instructions(DOCKER / name)
        assert ins[0] == ("ARG", "BASE_IMAGE=python:3.11-slim")
        assert ins[1] == ("FROM", "${BASE_IMAGE}")


def _containerize_dockerfile(tmp_path: Path, buildkit: bool = False) -> str:
    """The Dockerfile `bentoml containerize` renders for this bentofile (BentoML's own code,
    rendered from a Bento-like folder as containerize does; nothing is built)."""
    import yaml
    from bentoml._internal.bento.build_config import BentoBuildConfig
    from bentoml._internal.container.generate import generate_containerfile

    config = BentoBuildConfig.from_yaml((REPO_ROOT / "bentofile.yaml").open()).with_defaults()
    bento = tmp_path / "bento"
    (bento / "env/docker").mkdir(parents=True)
    (bento / "env/python").mkdir(parents=True)
    (bento / "env/python/requirements.txt").write_text("\n".join(config.python.packages))
    template = REPO_ROOT / config.docker.dockerfile_template
    (bento / "env/docker/Dockerfile.template").write_text(template.read_text())
    attrs = {**yaml.safe_load(yaml.safe_dump(config.docker.to_dict()))}
    attrs["dockerfile_template"] = "env/docker/Dockerfile.template"
    cwd = os.getcwd()
    os.chdir(tmp_path)  # BentoML refuses a template outside the working directory
    try:
        return generate_containerfile(
            docker=type(config.docker)(**attrs),
            build_ctx=str(bento),
            conda=config.conda,
            bento_fs=bento,
            enable_buildkit=buildkit,
            add_header=False,
        )
    finally:
        os.chdir(cwd)


def test_containerize_builds_what_the_dockerfile_builds(tmp_path):
    """docker/bento.Dockerfile (the offline build) and `bentoml containerize` (bentofile.yaml's
    docker options + docker/bento.containerize.j2) agree on what the manifests rely on: the
    base image as the build argument BASE_IMAGE with the same default, the user (uid 1034), the
    Bento's path on PYTHONPATH, PORT and the exposed ports, the launcher as ENTRYPOINT (the
    runtime passes args only) with no CMD, and no apt-get (nothing but wheels, offline base)."""
    generated = _parse(_containerize_dockerfile(tmp_path))
    handwritten = _instructions(DOCKER / "bento.Dockerfile")
    for ins in (generated, handwritten):
        assert ins[0] == ("ARG", "BASE_IMAGE=python:3.11-slim")
        assert ins[1][0] == "FROM" and ins[1][1].split()[0] == "${BASE_IMAGE}"
        assert _last(ins, "ENTRYPOINT") == json.dumps(checks.LAUNCHER)
        assert _last(ins, "CMD") == "[]"
        env = _env(ins)
        assert env["PORT"] == "8080"
        assert env["PYTHONPATH"] == "/home/bentoml/bento/src"
        exposed = {int(p) for e in ins if e[0] == "EXPOSE" for p in e[1].split()}
        assert {8080, 8081} <= exposed
        assert not any(word == "RUN" and "apt-get" in rest for word, rest in ins)
    generated_text = _containerize_dockerfile(tmp_path / "again")
    assert "BENTO_USER_UID=1034" in generated_text and "USER bentoml" in generated_text
    assert _last(handwritten, "USER") == "1034:1034"
    # This machine's index settings are build arguments only, never the image's environment.
    assert "SSL_CERT_FILE" not in _env(generated)
