"""Settings come from documented environment variables, validated at start-up."""

from __future__ import annotations

import pydantic
import pytest

from bentos.circle_detector.settings import load_settings


def test_defaults(monkeypatch):
    for name in ("PORT", "CIRCLE_DETECTOR_GRPC_PORT", "CIRCLE_DETECTOR_MAX_BATCH_SIZE"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.port, settings.grpc_port, settings.max_batch_size) == (3000, 8081, 32)
    assert settings.model_tag == "circle-detector:latest"


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("PORT", "8080")
    monkeypatch.setenv("CIRCLE_DETECTOR_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("CIRCLE_DETECTOR_MAX_LATENCY_MS", "250")
    monkeypatch.setenv("CIRCLE_DETECTOR_GRPC_PORT", "0")
    settings = load_settings()
    assert (settings.port, settings.max_batch_size, settings.max_latency_ms) == (8080, 8, 250)
    assert settings.grpc_port == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [("CIRCLE_DETECTOR_MAX_BATCH_SIZE", "1"), ("CIRCLE_DETECTOR_GRPC_PORT", "x"), ("PORT", "0")],
)
def test_invalid_values_are_refused(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(pydantic.ValidationError):
        load_settings()
