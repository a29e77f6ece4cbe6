"""Fixtures of the web page tests: one Chromium and two real backends per session.

* `web_backend`: `python -m backend` in MODE=dummy with API_KEY set, serving backend/static at
  `/`, a 256 KiB upload limit (so a "too large" file is small), SQLite in a temp DATA_DIR.
* `model_down_web_backend`: MODE=real pointing at a port where nothing listens, a 1 s retry
  deadline, no API key: uploads are kept and answered 202 `pending`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.backend.helpers import BackendServer, start_backend, stop_backend
from tests.servers import REPO_ROOT, free_port
from tests.web.browser import launch

STATIC_DIR = REPO_ROOT / "backend" / "static"
API_KEY = "web-test-key-42"
MAX_UPLOAD_BYTES = 256 * 1024


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def web_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendServer]:
    env = {
        "MODE": "dummy",
        "DATABASE_URL": "",
        "STATIC_DIR": str(STATIC_DIR),
        "API_KEY": API_KEY,
        "MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
    }
    server = start_backend(tmp_path_factory.mktemp("web-backend"), env)
    yield server
    stop_backend(server)


@pytest.fixture(scope="session")
def model_down_web_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendServer]:
    env = {
        "MODE": "real",
        "MODEL_SERVER_URL": f"127.0.0.1:{free_port()}",
        "MODEL_RETRY_DEADLINE_S": "1",
        "API_KEY": "",
        "DATABASE_URL": "",
        "STATIC_DIR": str(STATIC_DIR),
    }
    server = start_backend(tmp_path_factory.mktemp("web-backend-model-down"), env)
    yield server
    stop_backend(server)
