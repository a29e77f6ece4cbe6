"""The loaded models: name -> version -> runtime, the dataplane's one view of what it serves."""

from __future__ import annotations

from .protocol import NotFound
from .runtime import ModelRuntime


def version_key(version: str) -> tuple[int, int, str]:
    """Numeric versions in numeric order, after any other name (so `10` is newer than `9`)."""
    return (1, int(version), version) if version.isdigit() else (0, 0, version)


class ModelRegistry:
    """Loaded model versions by name; a request without a version gets the newest."""

    def __init__(self) -> None:
        self._models: dict[str, dict[str, ModelRuntime]] = {}

    def add(self, runtime: ModelRuntime) -> None:
        """Serve `runtime` (replacing nothing: a loaded version must be removed first)."""
        versions = self._models.setdefault(runtime.name, {})
        if runtime.version in versions:
            raise ValueError(f"model '{runtime.name}' version '{runtime.version}' is loaded")
        versions[runtime.version] = runtime

    def replace(self, runtime: ModelRuntime) -> ModelRuntime:
        """Serve `runtime` in place of the loaded runtime of its version, returned (the
        caller's to close): the next request gets the new one, none finds the version gone."""
        old = self.get(runtime.name, runtime.version)
        self._models[runtime.name][runtime.version] = runtime
        return old

    def remove(self, name: str, version: str) -> ModelRuntime:
        """Stop routing to a version; its runtime is the caller's to close."""
        runtime = self.get(name, version)
        del self._models[name][version]
        if not self._models[name]:
            del self._models[name]
        return runtime

    def names(self) -> list[str]:
        return sorted(self._models)

    def versions(self, name: str) -> list[str]:
        """The loaded versions of `name`, oldest first (empty when none)."""
        return sorted(self._models.get(name, {}), key=version_key)

    def runtimes(self) -> list[ModelRuntime]:
        return [self._models[n][v] for n in self.names() for v in self.versions(n)]

    def get(self, name: str, version: str | None = None) -> ModelRuntime:
        """The runtime serving `name` (`version`, else the newest), or `NotFound`."""
        versions = self._models.get(name)
        if not versions:
            served = ", ".join(f"'{n}'" for n in self.names()) or "no model"
            raise NotFound(f"unknown model '{name}'; this server serves {served}")
        if version is None:
            return versions[self.versions(name)[-1]]
        if version not in versions:
            available = ", ".join(f"'{v}'" for v in self.versions(name))
            raise NotFound(f"model '{name}' has no version '{version}'; available: {available}")
        return versions[version]
