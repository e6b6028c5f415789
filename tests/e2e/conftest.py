"""Fixtures the browser tests share: one headless chromium per test module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium (``deploy.binaries.ensure_chromium``), headless, driven by
    playwright; closed when the module's tests are done."""
    # imported here, so that the e2e tests without a browser do not need playwright
    from playwright.sync_api import sync_playwright

    from deploy.binaries import ensure_chromium

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=ensure_chromium(), headless=True)
        yield browser
        browser.close()
