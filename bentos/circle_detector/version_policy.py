"""Which versions of a model directory are served: Triton's version policy.

`CIRCLE_DETECTOR_VERSION_POLICY` spells it `latest:N` (the newest N, default `latest:1`),
`all`, or `specific:V1,V2`; a repository load may override it with Triton's JSON form,
`{"version_policy": {"latest": {"num_versions": 2}}}` (`{"all": {}}`,
`{"specific": {"versions": [1, 3]}}`), as tritonclient's `load_model(name, config=...)` sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .registry import version_key


class PolicyError(ValueError):
    """A version policy that cannot be read; the message says what is expected."""


@dataclass(frozen=True)
class VersionPolicy:
    kind: str = "latest"  # latest | all | specific
    num_versions: int = 1
    versions: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> VersionPolicy:
        """`latest[:N]`, `all` or `specific:V1,V2`."""
        kind, _, rest = text.strip().partition(":")
        if kind == "all" and not rest:
            return cls("all")
        if kind == "latest":
            if not rest:
                return cls("latest", 1)
            if rest.isascii() and rest.isdigit() and int(rest) >= 1:
                return cls("latest", int(rest))
        if kind == "specific":
            versions = tuple(v.strip() for v in rest.split(",") if v.strip())
            if versions:
                return cls("specific", versions=versions)
        raise PolicyError(f"{text!r}: use latest:N (N >= 1), all, or specific:V1,V2")

    @classmethod
    def from_config(cls, doc: Any) -> VersionPolicy:
        """Triton's JSON `version_policy`: exactly one of `latest`, `all`, `specific`."""
        if not isinstance(doc, dict) or len(doc) != 1:
            raise PolicyError(
                "version_policy must be an object with one of 'latest', 'all', 'specific'"
            )
        ((kind, body),) = doc.items()
        if not isinstance(body, dict):
            raise PolicyError(f"version_policy '{kind}' must be an object")
        if kind == "all" and not body:
            return cls("all")
        if kind == "latest" and set(body) <= {"num_versions"}:
            n = body.get("num_versions", 1)
            if isinstance(n, int) and not isinstance(n, bool) and n >= 1:
                return cls("latest", n)
            raise PolicyError("version_policy latest.num_versions must be an integer >= 1")
        if kind == "specific" and set(body) == {"versions"}:
            versions = body["versions"]
            if (
                isinstance(versions, list)
                and versions
                and all(isinstance(v, int | str) and not isinstance(v, bool) for v in versions)
            ):
                return cls("specific", versions=tuple(str(v) for v in versions))
            raise PolicyError("version_policy specific.versions must be a non-empty list")
        raise PolicyError(
            f"version_policy {doc!r}: use {{'latest': {{'num_versions': N}}}}, {{'all': {{}}}} "
            "or {'specific': {'versions': [...]}}"
        )

    def select(self, available: list[str]) -> list[str]:
        """The versions to serve out of `available`, oldest first; a specific version that is
        not available is an error naming it."""
        ordered = sorted(available, key=version_key)
        if self.kind == "all":
            return ordered
        if self.kind == "latest":
            return ordered[-self.num_versions :]
        missing = [v for v in self.versions if v not in available]
        if missing:
            raise PolicyError(
                f"version(s) {', '.join(missing)} of the policy are not in the model directory "
                f"(it has {', '.join(ordered) or 'none'})"
            )
        return sorted(self.versions, key=version_key)

    def as_config(self) -> dict[str, Any]:
        """Triton's JSON form (the model configuration's `version_policy`)."""
        if self.kind == "all":
            return {"all": {}}
        if self.kind == "latest":
            return {"latest": {"num_versions": self.num_versions}}
        return {"specific": {"versions": [int(v) if v.isdigit() else v for v in self.versions]}}

    def __str__(self) -> str:
        if self.kind == "latest":
            return f"latest:{self.num_versions}"
        return "all" if self.kind == "all" else "specific:" + ",".join(self.versions)
