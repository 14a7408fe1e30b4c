"""A real headless browser for the tests that look at a page as a person would: Debian's
Chromium (`apt-get install chromium`) driven by Playwright over the DevTools protocol.

Playwright's own browser downloads are never used: the executable is the system's. Where it
is absent the tests that need it skip, saying what to install.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

# The binary itself first: Debian's /usr/bin/chromium is a shell wrapper around it.
CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")


@contextmanager
def chromium() -> Iterator[Browser]:
    executable = next(filter(None, map(shutil.which, CANDIDATES)), None)
    if executable is None:
        pytest.skip("no Chromium on this machine: apt-get install -y chromium (make install)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageVisit:
    """What a page did while it loaded, and what it shows."""

    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every URL it asked for, itself first
    metrics: dict[str, str] = field(default_factory=dict)  # data-metric -> the text shown
    text: str = ""
    charts: int = 0


def visit(
    browser: Browser, page_file: Path, screenshot: Path | None = None, width: int = 1000
) -> PageVisit:
    seen = PageVisit()
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.on("console", lambda m: seen.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: seen.console_errors.append(str(error)))
    page.on("request", lambda request: seen.requests.append(request.url))
    page.goto(page_file.resolve().as_uri(), wait_until="load")
    if screenshot is not None:
        page.screenshot(path=str(screenshot), full_page=True)
    seen.metrics = page.eval_on_selector_all(
        "[data-metric]",
        "cells => Object.fromEntries(cells.map(c => [c.dataset.metric, c.innerText]))",
    )
    seen.charts = page.locator("figure svg").count()
    seen.text = page.inner_text("body")
    page.close()
    return seen
