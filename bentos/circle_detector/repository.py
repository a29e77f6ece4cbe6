"""The model repository extension: which versions are loaded, and loading/unloading them.

A `ModelSource` knows one model's directory (one subfolder per version, as `circle-detector
export --repository` writes it and KServe mounts it at `--model_dir`) and builds a runtime for
a version; this module, model-agnostic, applies the version policy and swaps runtimes in the
dataplane's registry at run time:

- load: the versions the policy selects that are not loaded yet are built and warmed up off
  to the side, then published; loaded versions the policy no longer selects are retired
  (no new request reaches them, the ones in flight finish, then they are closed);
- unload: every version of the model is retired the same way.

Neither drops a request in flight. Both are refused with `ReadOnly` (403, PERMISSION_DENIED)
when the server is read-only (`CIRCLE_DETECTOR_READ_ONLY`, by default in Kubernetes).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .protocol import BadRequest, NotFound, ProtocolError
from .registry import version_key
from .runtime import ModelRuntime
from .version_policy import PolicyError, VersionPolicy

if TYPE_CHECKING:
    from .dataplane import DataPlane

logger = logging.getLogger(__name__)


class ReadOnly(ProtocolError):
    """Load or unload on a read-only server (403 / PERMISSION_DENIED)."""

    http_status = 403
    grpc_code = "PERMISSION_DENIED"


#: Each file of a version folder: (path in the folder, size, modification time in ns).
Fingerprint = tuple[tuple[str, int, int], ...]


class ModelSource(Protocol):
    """One model's directory of versions, and how to build a runtime for one."""

    name: str

    def versions(self) -> dict[str, Path]:
        """The versions the directory holds now (version -> its folder); reads only."""
        ...

    def load(self, version: str, folder: Path) -> ModelRuntime:
        """Build the version's runtime (blocking: runs on a thread), not yet warmed up."""
        ...


class ModelRepository:
    """The loaded versions of one model source, under a version policy."""

    def __init__(
        self, dataplane: DataPlane, source: ModelSource, policy: VersionPolicy, read_only: bool
    ) -> None:
        self.dataplane = dataplane
        self.source = source
        self.policy = policy
        self.read_only = read_only
        self._lock = asyncio.Lock()
        #: Versions being built and warmed up, and being retired (for the index).
        self._loading: set[str] = set()
        self._unloading: set[str] = set()
        #: Why a version on disk is not loaded (for the index).
        self._reasons: dict[str, str] = {}
        #: The files each loaded version was built from (`fingerprint`): a load reloads a
        #: version whose files changed since, as Triton's does.
        self._fingerprints: dict[str, Fingerprint] = {}

    def load_initial(self) -> list[ModelRuntime]:
        """Build the versions the policy selects and add them (warmed up by the server).
        A directory without a model, or a policy naming versions it lacks, raises (a
        `ValueError`: the launcher's one-line error)."""
        runtimes = []
        available = self.source.versions()
        for version in self.policy.select(list(available)):
            runtime = self.source.load(version, available[version])
            self.dataplane.registry.add(runtime)
            self._fingerprints[version] = fingerprint(available[version])
            runtimes.append(runtime)
        return runtimes

    # -- the extension's three calls ----------------------------------------------------------

    def index(self, ready_only: bool = False) -> list[dict[str, str]]:
        """Triton's repository index: every version on disk or loaded, with its state."""
        name = self.source.name
        try:
            on_disk = set(self.source.versions())
        except ValueError:  # the directory became unreadable: list what is loaded
            on_disk = set()
        loaded = set(self.dataplane.registry.versions(name))
        entries = []
        for version in sorted(on_disk | loaded | self._loading, key=version_key):
            runtime = self._loaded(version)
            if version in self._unloading:
                state, reason = "UNLOADING", ""
            elif runtime is not None:
                state, reason = ("READY", "") if runtime.ready() else ("LOADING", "warming up")
            elif version in self._loading:
                state, reason = "LOADING", ""
            else:
                reason = self._reasons.get(
                    version, f"not selected by the version policy {self.policy}"
                )
                state = "UNAVAILABLE"
            if ready_only and state != "READY":
                continue
            entries.append({"name": name, "version": version, "state": state, "reason": reason})
        return entries

    async def load(self, name: str, parameters: Mapping[str, Any]) -> None:
        """Load the versions the policy (or the request's `config` override) selects; one
        already loaded is reloaded if its files changed since (in-flight requests finish on
        the old one)."""
        self._check(name)
        policy = self._policy(parameters)
        async with self._lock:
            available = self._available()
            wanted = self._wanted(policy, available)
            loaded = set(self.dataplane.registry.versions(name))
            for version in wanted:
                folder = available[version]
                files = fingerprint(folder)
                if version not in loaded or files != self._fingerprints.get(version):
                    await self._load_version(version, folder, files, reload=version in loaded)
            self.policy = policy
            for version in sorted(loaded - set(wanted), key=version_key):
                await self._retire(version, f"not selected by the version policy {policy}")

    async def unload(self, name: str, parameters: Mapping[str, Any]) -> None:
        """Unload every version of the model (in-flight requests finish first)."""
        self._check(name)
        dependents = parameters.get("unload_dependents", False)
        if not isinstance(dependents, bool):
            raise BadRequest("parameter 'unload_dependents' must be a boolean")
        unknown = set(parameters) - {"unload_dependents"}
        if unknown:
            raise BadRequest(f"unknown unload parameter(s): {', '.join(sorted(unknown))}")
        async with self._lock:
            for version in self.dataplane.registry.versions(name):
                await self._retire(version, "unloaded")

    # -- helpers -------------------------------------------------------------------------------

    def _check(self, name: str) -> None:
        if name != self.source.name:
            raise NotFound(f"unknown model '{name}'; the repository holds '{self.source.name}'")
        if self.read_only:
            raise ReadOnly(
                "the model repository is read-only: load and unload are refused "
                "(CIRCLE_DETECTOR_READ_ONLY; read-only by default in Kubernetes)"
            )

    def _available(self) -> dict[str, Path]:
        try:
            return self.source.versions()
        except ValueError as exc:  # ModelFileError: the directory is missing or empty
            raise BadRequest(f"cannot read the model directory: {exc}") from None

    @staticmethod
    def _wanted(policy: VersionPolicy, available: dict[str, Path]) -> list[str]:
        try:
            wanted = policy.select(list(available))
        except PolicyError as exc:
            raise BadRequest(str(exc)) from None
        if not wanted:
            raise BadRequest(f"the version policy {policy} selects no version of the directory")
        return wanted

    def _policy(self, parameters: Mapping[str, Any]) -> VersionPolicy:
        """The request's `config` (Triton's model configuration JSON, of which only
        `version_policy` may be given), else the current policy."""
        unknown = set(parameters) - {"config"}
        if unknown:
            raise BadRequest(
                f"unknown load parameter(s) {', '.join(sorted(unknown))}: only 'config' is "
                "accepted (model files cannot be uploaded)"
            )
        config = parameters.get("config")
        if config is None:
            return self.policy
        if not isinstance(config, str):
            raise BadRequest("parameter 'config' must be a string of JSON")
        try:
            doc = json.loads(config)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"parameter 'config' is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise BadRequest("parameter 'config' must be a JSON object")
        extra = set(doc) - {"name", "version_policy"}
        if extra:
            raise BadRequest(
                f"parameter 'config' may only set 'version_policy'; got {', '.join(sorted(extra))}"
            )
        if doc.get("name", self.source.name) != self.source.name:
            raise BadRequest(f"parameter 'config' names another model: {doc['name']!r}")
        if "version_policy" not in doc:
            return self.policy
        try:
            return VersionPolicy.from_config(doc["version_policy"])
        except PolicyError as exc:
            raise BadRequest(str(exc)) from None

    def _loaded(self, version: str) -> ModelRuntime | None:
        try:
            return self.dataplane.registry.get(self.source.name, version)
        except NotFound:
            return None

    async def _load_version(
        self, version: str, folder: Path, files: Fingerprint, reload: bool
    ) -> None:
        """Build and warm up `version` from `folder` (holding `files`), then route to it in
        place of the loaded one (`reload`) or beside the others."""
        self._loading.add(version)
        try:
            try:
                runtime = await asyncio.to_thread(self.source.load, version, folder)
            except ValueError as exc:  # ModelFileError: missing or inconsistent files
                self._reasons[version] = f"failed to load: {exc}"
                raise BadRequest(f"cannot load version '{version}': {exc}") from None
            try:
                await runtime.warm_up()
                await runtime.warm_up(full_size=True)
            except BaseException:
                await runtime.close()
                raise
            if reload:
                await self.dataplane.replace(runtime)
            else:
                self.dataplane.registry.add(runtime)
            self._fingerprints[version] = files
            self._reasons.pop(version, None)
            logger.info(
                "%s %s version %s from %s",
                "reloaded" if reload else "loaded",
                self.source.name,
                version,
                folder,
            )
        finally:
            self._loading.discard(version)

    async def _retire(self, version: str, reason: str) -> None:
        self._unloading.add(version)
        try:
            await self.dataplane.retire(self.source.name, version)
        finally:
            self._unloading.discard(version)
        self._reasons[version] = reason
        self._fingerprints.pop(version, None)
        logger.info("unloaded %s version %s (%s)", self.source.name, version, reason)


def fingerprint(folder: Path) -> Fingerprint:
    """What a version folder holds: each file's name, size and modification time (read from
    the directory, not the files), enough to tell that a file was replaced."""
    return tuple(
        sorted(
            (str(p.relative_to(folder)), (st := p.stat()).st_size, st.st_mtime_ns)
            for p in folder.rglob("*")
            if p.is_file()
        )
    )
