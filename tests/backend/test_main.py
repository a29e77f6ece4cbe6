"""`python -m backend` as a command: --help, --migrate-only, and a clear error for bad settings."""

from __future__ import annotations

import os
import subprocess
import sys

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


def test_bad_setting_exits_with_a_message(tmp_path):
    r = run(["--migrate-only"], {"DATA_DIR": str(tmp_path), "MODE": "bogus"})
    assert r.returncode != 0
    assert "mode" in r.stderr and "bogus" in r.stderr
