"""Every setting of the backend in one typed object, read from environment variables.

Names are the environment variables themselves (`DATABASE_URL`, `MODEL_SERVER_URL`, ...), so
the README's table, Kubernetes manifests and `Settings()` agree without a prefix to remember.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Mode(StrEnum):
    """Where detections come from."""

    REAL = "real"
    DUMMY = "dummy"


class Protocol(StrEnum):
    """Which V2 transport the inference client speaks."""

    HTTP = "http"
    GRPC = "grpc"


class Settings(BaseSettings):
    """Backend settings; each field is also an environment variable of the same name."""

    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", frozen=True
    )

    host: str = Field("127.0.0.1", description="Address `python -m backend` listens on.")
    port: int = Field(8000, ge=0, le=65535, description="Port `python -m backend` listens on.")
    data_dir: Path = Field(Path("data"), description="Base directory for SQLite and image files.")
    database_url: str = Field(
        "",
        description="Tortoise database URL; empty means sqlite://DATA_DIR/backend.sqlite3. "
        "Use postgres://user:pass@host:5432/db for several replicas.",
    )
    storage_dir: Path | None = Field(
        None, description="Where uploaded files go (the PVC in Kubernetes); empty: DATA_DIR/images."
    )
    storage_url: str = Field(
        "",
        description="Empty: files in STORAGE_DIR. `s3://bucket/prefix`: files in an S3 bucket "
        "(several replicas, no RWX volume); credentials and region by the usual AWS_* variables.",
    )
    s3_endpoint_url: str = Field(
        "",
        description="S3 API endpoint (MinIO, another S3-compatible store); empty: botocore's "
        "AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS. A custom endpoint uses path-style URLs.",
    )
    s3_timeout_s: float = Field(
        5.0, gt=0, description="Connect and read timeout of one S3 call (then 503)."
    )
    s3_max_attempts: int = Field(
        2, ge=1, le=10, description="Attempts of one S3 call (botocore's standard retries)."
    )
    migrate_on_start: bool = Field(True, description="Apply database migrations at start-up.")
    reconcile_on_start: bool = Field(
        True,
        description="At start-up, bring storage and database back in step after a crash "
        "(interrupted deletes restored or purged, temporary and orphan files removed).",
    )

    mode: Mode = Field(Mode.REAL, description="`real` calls the model server; `dummy` fakes it.")
    model_server_url: str = Field(
        "127.0.0.1:3000",
        description="host:port of the V2 model server; https:// or grpcs:// turns TLS on.",
    )
    model_name: str = Field("circle-detector", description="V2 model name to call.")
    model_host_header: str = Field(
        "", description="Host header (KServe hostname) when calling through the Istio gateway."
    )
    model_protocol: Protocol = Field(Protocol.HTTP, description="`http` (default) or `grpc`.")
    model_timeout_s: float = Field(30.0, gt=0, description="Timeout of one model server call.")
    model_retry_deadline_s: float = Field(
        30.0,
        ge=0,
        description="Keep retrying an unreachable model server this long (scale from zero).",
    )
    model_retry_backoff_s: float = Field(0.25, gt=0, description="First retry delay; doubles.")
    model_retry_backoff_max_s: float = Field(4.0, gt=0, description="Longest retry delay.")
    pending_retry_interval_s: float = Field(
        60.0,
        ge=0,
        description="Background retry of pending images: the longest wait between rounds "
        "after a failed one (the wait doubles from PENDING_RETRY_POLL_S up to this); 0 turns "
        "the background retry off (POST .../detect always works).",
    )
    model_server_tls: bool = Field(
        False,
        description="Speak TLS to the model server (HTTPS, or gRPC with TLS); implied by an "
        "https:// or grpcs:// MODEL_SERVER_URL, never dropped silently.",
    )
    model_server_ca_bundle: Path | None = Field(
        None,
        description="PEM file of the CAs that sign the model server's certificate (with TLS); "
        "empty: the system's CAs.",
    )
    model_server_error_attempts: int = Field(
        3,
        ge=1,
        le=20,
        description="Calls for one image that the model server answers 500 (gRPC INTERNAL) "
        "before the image is failed instead of retried forever.",
    )
    pending_retry_poll_s: float = Field(
        1.0,
        gt=0,
        description="While images are pending, check the model's readiness this often; the "
        "backlog is detected as soon as the model is ready.",
    )
    pending_retry_concurrency: int = Field(
        8, ge=1, le=64, description="Pending images detected at once by the background retry."
    )
    ready_timeout_s: float = Field(2.0, gt=0, description="Timeout of each /health/ready check.")
    ready_requires_model: bool = Field(
        True,
        description="Whether /health/ready fails when the model server is not ready. Set false "
        "when the model scales to zero (uploads are kept as pending meanwhile).",
    )
    score_threshold: float = Field(0.5, ge=0, le=1, description="Default minimum score kept.")
    max_detections: int = Field(100, ge=1, le=10000, description="Default most circles kept.")
    dummy_seed: int = Field(0, description="Seed of the fake detections in MODE=dummy.")

    max_upload_bytes: int = Field(
        20 * 1024 * 1024, gt=0, description="Largest accepted file (413, checked while streaming)."
    )
    max_image_pixels: int = Field(
        4096 * 4096, gt=0, description="Largest accepted width x height (decompression bombs: 413)."
    )
    budget_body_bytes: int = Field(
        128 * 1024 * 1024,
        gt=0,
        description="Process-wide budget of file bytes held in memory at once (uploads being "
        "received and checked, files read for detection or drawing); work beyond it waits.",
    )
    budget_pixel_bytes: int = Field(
        160 * 1024 * 1024,
        gt=0,
        description="Process-wide budget of decoded-pixel memory (checking uploads, drawing "
        "annotations and thumbnails); work beyond it waits.",
    )
    budget_wait_s: float = Field(
        20.0, ge=0, description="Longest wait for the memory budget before a 503 + Retry-After."
    )
    annotated_max_side: int = Field(
        2048, ge=64, description="Longest side of `/annotated` PNGs (larger images are scaled)."
    )
    thumbnail_side: int = Field(256, ge=16, le=1024, description="Longest side of thumbnails.")
    retry_after_s: int = Field(5, ge=1, description="Retry-After of 503/507 answers (seconds).")
    api_key: SecretStr | None = Field(
        None, description="When set, writes need header `X-API-Key` (or `Authorization: Bearer`)."
    )
    api_key_for_reads: bool = Field(
        False, description="Also require API_KEY for reads (GET /api/v1/...); needs API_KEY."
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="A request's headers must arrive within this (else 408, closed)."
    )
    body_timeout_s: float = Field(
        60.0, gt=0, description="A request's body must arrive within this (else closed)."
    )
    static_dir: Path = Field(
        Path(__file__).parent / "static", description="Web page served at / when the folder exists."
    )
    log_level: str = Field("info", description="Log level of the backend and uvicorn.")

    @model_validator(mode="before")
    @classmethod
    def _tls_from_scheme(cls, data: object) -> object:
        """https:// and grpcs:// ask for TLS: remember it before the scheme is stripped."""
        if isinstance(data, dict):
            url = str(data.get("model_server_url") or "")
            if url.startswith(("https://", "grpcs://")):
                data = {**data, "model_server_tls": True}
        return data

    @field_validator("model_server_ca_bundle", mode="before")
    @classmethod
    def _empty_ca_bundle_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("model_server_ca_bundle")
    @classmethod
    def _readable_ca_bundle(cls, value: Path | None) -> Path | None:
        """Fail at start-up, not at the first upload, when the CA file cannot be used."""
        if value is None:
            return None
        import ssl

        try:
            ssl.create_default_context(cafile=str(value))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"{value} is not a readable PEM CA bundle ({exc})") from exc
        return value

    @field_validator("model_server_url")
    @classmethod
    def _strip_scheme(cls, value: str) -> str:
        """tritonclient wants host:port; accept a URL with a scheme too."""
        for scheme in ("http://", "https://", "grpc://", "grpcs://"):
            if value.startswith(scheme):
                value = value[len(scheme) :]
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _no_memory_database(cls, value: str) -> str:
        """Migrations and the app use separate connections: an in-memory database would vanish."""
        if ":memory:" in value:
            raise ValueError("an in-memory SQLite database is not supported; use a file path")
        return value

    @field_validator("storage_url")
    @classmethod
    def _s3_url(cls, value: str) -> str:
        """Fail at start-up on a STORAGE_URL that names no bucket."""
        if value:
            from backend.s3storage import parse_storage_url

            parse_storage_url(value)
        return value

    @field_validator("api_key")
    @classmethod
    def _empty_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @model_validator(mode="after")
    def _check_backoff(self) -> Settings:
        if self.model_retry_backoff_max_s < self.model_retry_backoff_s:
            raise ValueError("MODEL_RETRY_BACKOFF_MAX_S must be >= MODEL_RETRY_BACKOFF_S")
        return self

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        if self.api_key_for_reads and self.api_key is None:
            raise ValueError("API_KEY_FOR_READS=true needs API_KEY to be set")
        if self.model_server_ca_bundle is not None and not self.model_server_tls:
            raise ValueError(
                "MODEL_SERVER_CA_BUNDLE is set but MODEL_SERVER_URL is not https:// or grpcs:// "
                "(or set MODEL_SERVER_TLS=true)"
            )
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        """DATABASE_URL, or the SQLite file in DATA_DIR."""
        return self.database_url or f"sqlite://{(self.data_dir / 'backend.sqlite3').as_posix()}"

    @cached_property
    def resolved_storage_dir(self) -> Path:
        """STORAGE_DIR, or DATA_DIR/images."""
        return self.storage_dir if self.storage_dir is not None else self.data_dir / "images"

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgres`: picks the migration folder."""
        scheme = self.resolved_database_url.split(":", 1)[0]
        if scheme == "sqlite":
            return "sqlite"
        if scheme in ("postgres", "postgresql", "asyncpg", "psycopg"):
            return "postgres"
        raise ValueError(
            f"unsupported DATABASE_URL scheme {scheme!r}; use sqlite:// or postgres://"
        )
