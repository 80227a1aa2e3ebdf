"""Browser tests: Playwright (Python) driving Debian's Chromium, never a downloaded one.

Without ``/usr/bin/chromium`` (``make system-deps`` installs it) or the playwright
package they skip with the reason; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import unavailable

CHROMIUM = os.environ.get("DATAFERRY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        unavailable(f"no Chromium at {CHROMIUM} (Debian package 'chromium'; make system-deps)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable(f"the playwright package is not installed: {exc}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Watched:
    """A page plus every request it made and every response body it received."""

    def __init__(self, page: Any, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.requests: list[str] = []
        self.bodies: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("response", self._response)

    def _response(self, response: Any) -> None:
        with contextlib.suppress(Exception):  # redirects and aborted requests have no body
            self.bodies.append(response.text())

    def foreign_requests(self) -> list[str]:
        allowed = (self.origin + "/", "data:", "about:")
        return [u for u in self.requests if not u.startswith(allowed)]


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    """``open_page(server_url)`` -> :class:`Watched` in a fresh browser context."""
    contexts: list[Any] = []

    def make(origin: str) -> Watched:
        ctx = browser.new_context(viewport={"width": 1280, "height": 860})
        ctx.set_default_timeout(30_000)
        contexts.append(ctx)
        return Watched(ctx.new_page(), origin)

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def shots(tmp_path: Path) -> Any:
    """Save a screenshot; into ``docs/screenshots`` when DATAFERRY_SCREENSHOTS=1
    (``make screenshots``), else into the test's temporary folder."""
    folder = REPO / "docs" / "screenshots" if os.environ.get("DATAFERRY_SCREENSHOTS") else tmp_path

    def save(page: Any, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
