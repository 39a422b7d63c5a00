"""Fixtures for the browser tests of the built book (``make browser``; needs ``make build`` first).

The helpers live in ``book_site.py`` (a module name of its own: test modules import from it, and
``conftest`` is not a safe module name to import when several conftest files exist).
"""

from __future__ import annotations

import functools
import http.server
import os
import tempfile
import threading

import pytest
from book_site import (
    CHROMIUM_ARGS,
    HTML_DIR,
    BookPage,
    PageVisit,
    QuietHandler,
    chromium_path,
    visit,
)


@pytest.fixture(scope="session")
def server() -> str:
    """Serve HTML_DIR on an ephemeral localhost port; yields the base URL (ending in '/')."""
    if not (HTML_DIR / "index.html").is_file():
        pytest.fail(f"no built book at {HTML_DIR}: run `make build` (or set BOOK_HTML)")
    handler = functools.partial(QuietHandler, directory=str(HTML_DIR))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as tmp:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=CHROMIUM_ARGS,
            env={**os.environ, "HOME": tmp},  # keep Chromium's caches out of the real home
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def visits(browser, server):
    """``visits(page)`` -> the page's ``PageVisit``, loading each page only once per session."""
    cache: dict[str, PageVisit] = {}

    def get(page: BookPage) -> PageVisit:
        if page.docname not in cache:
            cache[page.docname] = visit(browser, server, page)
        return cache[page.docname]

    return get
