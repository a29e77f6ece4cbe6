"""Drive Debian's headless Chromium with Playwright, and watch what the page does.

No browser is ever downloaded: `scripts/install-browser.sh` installs Debian's `chromium`, and
Playwright is pointed at it. `watched_page` records every request, console error and uncaught
exception of the page so that tests can assert the page stayed on its own server and did not
throw.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, Playwright

from tests.servers import REPO_ROOT

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "web"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}  # a common phone's CSS pixels
KEY_STORAGE = "circle-detector.api-key"  # backend/static/js/api.js
WAIT_MS = 15_000
#: The page's own files (backend/static), by URL path.
STATIC_PATHS = {"/"} | {
    "/" + p.relative_to(REPO_ROOT / "backend" / "static").as_posix()
    for p in (REPO_ROOT / "backend" / "static").rglob("*")
    if p.is_file()
}


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless; fails with the fix when it is not installed."""
    if not Path(CHROMIUM).is_file():
        raise RuntimeError(f"{CHROMIUM} is missing: run scripts/install-browser.sh")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@dataclass
class Watched:
    """A page and what it did."""

    page: Page
    origin: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def foreign_requests(self) -> list[str]:
        """Requests that left the backend (fonts, CDNs, trackers...)."""
        return [
            url
            for url in self.requests
            if not url.startswith(("data:", "blob:"))
            and f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" != self.origin
        ]

    def non_api_calls(self) -> list[str]:
        """Requests other than the page's own files and the public API (/api/v1/images/...)."""
        return [
            url
            for url in self.requests
            if urlsplit(url).path not in STATIC_PATHS
            and not urlsplit(url).path.startswith("/api/v1/images/")
        ]

    def screenshot(self, name: str) -> Path:
        """Save a full-page PNG under test-artifacts/web/ (git-ignored) and return its path."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@contextlib.contextmanager
def watched_page(
    browser: Browser,
    url: str,
    *,
    viewport: dict | None = None,
    api_key: str | None = None,
    color_scheme: Literal["light", "dark"] = "light",
) -> Iterator[Watched]:
    """Open `url` in a fresh context (own sessionStorage); `api_key` is stored beforehand as
    if the user had entered it. On exit asserts that the page threw nothing and stayed on
    its server."""
    context = browser.new_context(viewport=viewport or DESKTOP, color_scheme=color_scheme)
    context.set_default_timeout(WAIT_MS)
    if api_key:
        context.add_init_script(f"sessionStorage.setItem({KEY_STORAGE!r}, {api_key!r})")
    page = context.new_page()
    parts = urlsplit(url)
    watched = Watched(page, f"{parts.scheme}://{parts.netloc}")
    page.on("request", lambda r: watched.requests.append(r.url))
    page.on("pageerror", lambda e: watched.errors.append(f"uncaught: {e}"))
    page.on(
        "console",
        lambda m: (
            watched.errors.append(f"console: {m.text}")
            if m.type == "error" and not _expected_console_error(m.text)
            else None
        ),
    )
    page.on("dialog", lambda d: d.accept())  # the delete confirmation
    try:
        page.goto(url)
        yield watched
        assert not watched.errors, watched.errors
        leaked = re.findall(
            r"\b(?:null|undefined|NaN|\[object Object\])\b", page.inner_text("body")
        )
        assert not leaked, f"the page shows JavaScript values as text: {leaked}"
        assert not watched.foreign_requests(), watched.foreign_requests()
        assert not watched.non_api_calls(), watched.non_api_calls()
    finally:
        context.close()


def _expected_console_error(text: str) -> bool:
    """Chromium logs every 4xx/5xx fetch as a console error; those are the tests' own doing."""
    return "Failed to load resource: the server responded with a status of" in text
