"""The model's container as KServe runs it, from either form of the InferenceService.

- custom container: `predictor.containers[0]` is the container;
- runtime form: `predictor.model` names a format, a protocol and a storageUri; KServe picks the
  ClusterServingRuntime (by name, or the one whose format autoSelects) and merges the model's
  container fields over the runtime's container (KServe's MergeRuntimeContainers: a strategic
  merge; maps merge, env entries merge by name, other lists are replaced).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from tests.k8s.manifests import Doc, find

RUNTIME_KIND = "ClusterServingRuntime"
#: predictor.model fields that are KServe's, not the container's.
MODEL_ONLY = frozenset({"modelFormat", "runtime", "protocolVersion", "storageUri", "storage"})
#: Where KServe puts the model for the runtime (its storage initializer or the pvc:// mount).
MODEL_MOUNT = "/mnt/models"


@dataclass
class Predictor:
    container: Doc | None
    runtime: Doc | None
    model: Doc | None  # predictor.model (runtime form) or None (custom container)
    problems: list[str]


def _merge(base: Any, override: Any, key: str = "") -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = copy.deepcopy(base)
        for k, v in override.items():
            out[k] = _merge(base[k], v, k) if k in base else copy.deepcopy(v)
        return out
    if key == "env" and isinstance(base, list) and isinstance(override, list):
        merged = {e["name"]: e for e in base}
        merged.update({e["name"]: e for e in override})
        return list(merged.values())
    return copy.deepcopy(override)


def select_runtime(docs: list[Doc], model: Doc) -> Doc | None:
    """The ClusterServingRuntime KServe would pick for `predictor.model`."""
    runtimes = find(docs, RUNTIME_KIND)
    fmt = (model.get("modelFormat") or {}).get("name")
    name = model.get("runtime")
    for rt in runtimes:
        formats = {f.get("name") for f in rt["spec"].get("supportedModelFormats", [])}
        auto = any(f.get("autoSelect") for f in rt["spec"].get("supportedModelFormats", []))
        if fmt in formats and (rt["metadata"]["name"] == name or (name is None and auto)):
            return rt
    return None


def predictor(isvc: Doc, docs: list[Doc]) -> Predictor:
    """The effective container of `isvc`'s predictor (with its runtime in the runtime form)."""
    pred = isvc["spec"]["predictor"]
    model = pred.get("model")
    containers = pred.get("containers", [])
    if model is not None and containers:
        return Predictor(None, None, model, ["predictor: both model and containers"])
    if model is None:
        if len(containers) != 1:
            return Predictor(
                None, None, None, [f"predictor: expected one container, found {len(containers)}"]
            )
        return Predictor(containers[0], None, None, [])
    runtime = select_runtime(docs, model)
    if runtime is None:
        return Predictor(
            None,
            None,
            model,
            [
                f"predictor.model: no ClusterServingRuntime serves format "
                f"{model.get('modelFormat')} (runtime {model.get('runtime')!r})"
            ],
        )
    rt_containers = runtime["spec"].get("containers", [])
    if len(rt_containers) != 1:
        return Predictor(None, runtime, model, ["runtime: expected one container"])
    fields = {k: v for k, v in model.items() if k not in MODEL_ONLY}
    return Predictor(_merge(rt_containers[0], fields), runtime, model, [])


def option_value(tokens: list[str], names: tuple[str, ...]) -> str | None:
    """The value of the last `--name V` or `--name=V` among command/args tokens."""
    value = None
    for i, tok in enumerate(tokens):
        for name in names:
            if tok == name and i + 1 < len(tokens):
                value = tokens[i + 1]
            elif tok.startswith(name + "="):
                value = tok.split("=", 1)[1]
    return value
