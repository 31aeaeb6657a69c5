"""Debian's `chromium`, headless and driven by Playwright, for the dashboard's tests: a page
to drive and the URLs of the requests that failed on it (a page must load nothing from
outside, and nothing of its own may be missing). The tests are skipped where chromium is not
installed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not "
                                    "installed (apt-get install -y chromium; .ci/run does it)")


@contextmanager
def chromium_page(**options: Any) -> Iterator[tuple[Page, list[str]]]:
    """A new page (`options` as Browser.new_page takes them) and its failed requests' URLs."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox"])
        try:
            page = browser.new_page(**options)
            failed: list[str] = []
            page.on("requestfailed", lambda r: failed.append(r.url))
            yield page, failed
        finally:
            browser.close()
