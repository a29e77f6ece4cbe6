"""The app factory served by plain uvicorn (`--factory`): it migrates a fresh database itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from tests.backend.helpers import API, circles_png, upload
from tests.servers import REPO_ROOT, free_port


def test_uvicorn_factory_migrates_and_serves(tmp_path):
    port = free_port()
    env = {**os.environ, "DATA_DIR": str(tmp_path), "DATABASE_URL": "", "MODE": "dummy"}
    env.pop("PORT", None)
    log = (tmp_path / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "backend.app:create_app",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "uvicorn.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        with httpx.Client(base_url=url, timeout=30) as c:
            r = upload(c, circles_png(seed=1500))
            assert r.status_code == 201, r.text
            assert c.get(API).json()["total"] == 1
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
    assert (tmp_path / "backend.sqlite3").is_file()
