"""`python -m backend` as a command: --help, --migrate-only, and a clear error for bad settings."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.servers import REPO_ROOT


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help():
    r = run(["--help"], {})
    assert r.returncode == 0
    assert "--host" in r.stdout and "--port" in r.stdout and "--migrate-only" in r.stdout


def test_migrate_only_creates_the_schema_and_exits(tmp_path):
    r = run(["--migrate-only"], {"DATA_DIR": str(tmp_path), "DATABASE_URL": ""})
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "backend.sqlite3").is_file() and (tmp_path / "images").is_dir()
    again = run(["--migrate-only"], {"DATA_DIR": str(tmp_path), "DATABASE_URL": ""})
    assert again.returncode == 0 and "none needed" in again.stderr


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"MODE": "bogus"}, "error: MODE='bogus': Input should be 'real' or 'dummy'"),
        ({"PORT": ""}, "error: PORT='': Input should be a valid integer"),
        ({"MODEL_TIMEOUT_S": "-1"}, "error: MODEL_TIMEOUT_S='-1': Input should be greater than 0"),
        ({"API_KEY_FOR_READS": "true"}, "error: API_KEY_FOR_READS=true needs API_KEY to be set"),
        (
            {"MODEL_SERVER_CA_BUNDLE": "/no/such.pem", "MODEL_SERVER_URL": "https://m:443"},
            "error: MODEL_SERVER_CA_BUNDLE='/no/such.pem': /no/such.pem is not a readable PEM",
        ),
        (
            {"MODEL_SERVER_CA_BUNDLE": __file__, "MODEL_SERVER_URL": "m:80"},
            "error: MODEL_SERVER_CA_BUNDLE='",
        ),
        (
            {"MODEL_SERVER_CA_BUNDLE": "", "MODEL_SERVER_URL": "m:80", "API_KEY": "s3cret-value",
             "MAX_DETECTIONS": "0"},
            "error: MAX_DETECTIONS='0': Input should be greater than or equal to 1",
        ),
    ],
)  # fmt: skip
def test_a_bad_setting_is_one_line_naming_the_variable(tmp_path, env, line):
    r = run(["--migrate-only"], {"DATA_DIR": str(tmp_path), "DATABASE_URL": "", **env})
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), r.stderr
    assert "Traceback" not in r.stderr and "s3cret" not in r.stderr


def test_a_ca_bundle_without_tls_is_refused(tmp_path):
    """MODEL_SERVER_CA_BUNDLE with a plain-HTTP URL is a contradiction, never plain HTTP."""
    from tests.backend.inference.tls import self_signed

    cert, _ = self_signed(tmp_path)
    env = {"MODEL_SERVER_CA_BUNDLE": str(cert), "MODEL_SERVER_URL": "127.0.0.1:3000"}
    r = run(["--migrate-only"], {"DATA_DIR": str(tmp_path), **env})
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "error: MODEL_SERVER_CA_BUNDLE is set but MODEL_SERVER_URL is not https:// or grpcs:// "
        "(or set MODEL_SERVER_TLS=true)"
    )
