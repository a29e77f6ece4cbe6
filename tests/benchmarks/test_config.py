"""`benchmarks/config.py`: Locust's `--host` for tritonclient, and the `BENCH_*` settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from benchmarks.config import BenchSettings, split_host


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("http://127.0.0.1:3000", ("127.0.0.1:3000", False)),
        ("127.0.0.1:8081", ("127.0.0.1:8081", False)),
        ("https://gateway.example.com:443/", ("gateway.example.com:443", True)),
        ("grpcs://gateway.example.com:443", ("gateway.example.com:443", True)),
        ("grpc://10.0.0.1:8081", ("10.0.0.1:8081", False)),
    ],
)
def test_split_host(host, expected):
    assert split_host(host) == expected


@pytest.mark.parametrize(("host", "message"), [("ftp://h:1", "scheme"), ("http://", "no host")])
def test_split_host_refuses_what_tritonclient_cannot_use(host, message):
    with pytest.raises(ValueError, match=message):
        split_host(host)


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("BENCH_SIZES", "64, 128")
    monkeypatch.setenv("BENCH_HOST_HEADER", "circle-detector.example.com")
    monkeypatch.setenv("BENCH_REAL", "false")
    s = BenchSettings()
    assert s.size_list == [64, 128]
    assert s.host_header == "circle-detector.example.com"
    assert s.real is False and s.score_threshold is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("BENCH_SCORE_THRESHOLD", "1.5"), ("BENCH_TIMEOUT_S", "0"), ("BENCH_REAL", "maybe")],
)
def test_bad_settings_are_refused(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name[6:].lower()):
        BenchSettings()
