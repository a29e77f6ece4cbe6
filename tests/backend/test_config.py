"""Settings: defaults, environment variables, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from backend.config import Mode, Protocol, Settings

ENV_NAMES = [
    "HOST", "PORT", "DATA_DIR", "DATABASE_URL", "STORAGE_DIR", "MODE", "MODEL_SERVER_URL",
    "MODEL_NAME", "MODEL_HOST_HEADER", "MODEL_PROTOCOL", "API_KEY", "MAX_UPLOAD_BYTES",
]  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def test_defaults():
    s = Settings()
    assert (s.host, s.port, s.mode, s.model_protocol) == ("127.0.0.1", 8000, Mode.REAL, "http")
    assert s.resolved_database_url == "sqlite://data/backend.sqlite3"
    assert s.resolved_storage_dir == Path("data/images")
    assert s.dialect == "sqlite"
    assert s.model_server_url == "127.0.0.1:3000" and s.model_name == "circle-detector"
    assert s.api_key is None


def test_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MODE", "dummy")
    monkeypatch.setenv("MODEL_PROTOCOL", "grpc")
    monkeypatch.setenv("MODEL_SERVER_URL", "http://istio-ingress:80/")
    monkeypatch.setenv("MODEL_HOST_HEADER", "circle-detector.default.example.com")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db:5432/app")
    monkeypatch.setenv("API_KEY", "s3cret")
    s = Settings()
    assert s.port == 9001 and s.mode == Mode.DUMMY and s.model_protocol == Protocol.GRPC
    assert s.model_server_url == "istio-ingress:80"
    assert s.dialect == "postgres" and s.resolved_storage_dir == tmp_path / "images"
    assert s.api_key is not None and s.api_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)


def test_empty_api_key_means_none(monkeypatch):
    monkeypatch.setenv("API_KEY", "")
    assert Settings().api_key is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MODE", "fake"),
        ("MODEL_PROTOCOL", "udp"),
        ("PORT", "70000"),
        ("MAX_UPLOAD_BYTES", "0"),
        ("SCORE_THRESHOLD", "2"),
        ("MODEL_RETRY_BACKOFF_MAX_S", "0.01"),
    ],
)
def test_bad_values_are_refused_by_name(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert name.lower() in str(info.value).lower() or "backoff" in str(info.value).lower()


def test_in_memory_sqlite_is_refused():
    with pytest.raises(ValidationError, match="in-memory"):
        Settings(database_url="sqlite://:memory:")


def test_unknown_database_scheme():
    with pytest.raises(ValueError, match="unsupported DATABASE_URL scheme 'mysql'"):
        _ = Settings(database_url="mysql://x/y").dialect
