"""Settings come from documented environment variables, validated at start-up."""

from __future__ import annotations

import pytest

from bentos.circle_detector.settings import SettingsError, load_settings


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
    [
        ("CIRCLE_DETECTOR_MAX_BATCH_SIZE", "0"),
        ("CIRCLE_DETECTOR_GRPC_PORT", "x"),
        ("CIRCLE_DETECTOR_GRPC_PORT", "70000"),
        ("PORT", "0"),
        ("CIRCLE_DETECTOR_RUNTIME", "tensorflow"),
        ("CIRCLE_DETECTOR_MAX_IN_FLIGHT", "-1"),
        ("CIRCLE_DETECTOR_MAX_IN_FLIGHT", "many"),
        ("CIRCLE_DETECTOR_MAX_IN_FLIGHT", "1.5"),
    ],
)
def test_invalid_values_are_refused_naming_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_runtime_and_threads(monkeypatch):
    monkeypatch.setenv("CIRCLE_DETECTOR_RUNTIME", "torch")
    monkeypatch.setenv("CIRCLE_DETECTOR_THREADS", "3")
    settings = load_settings()
    assert (settings.runtime, settings.threads) == ("torch", 3)
    monkeypatch.delenv("CIRCLE_DETECTOR_RUNTIME")
    assert load_settings().runtime == "onnx"
