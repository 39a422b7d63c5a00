"""The built book as the browser tests see it: its pages, its configuration, one visit per page.

The built HTML is served on 127.0.0.1 and every page listed in ``_toc.yml`` is opened once in
Debian's Chromium, driven by Playwright (never ``playwright install``: the browser is the system
one). Every request that does not go to the local server is aborted and recorded, so the tests
prove that the book works offline. One visit per page collects everything the tests check
(``PageVisit``) and saves a full-page screenshot under ``_build/screenshots/``.

Environment variables:

* ``BOOK_HTML``: the built HTML folder (default ``_build/html``);
* ``BOOK_ROOT``: the book's source folder holding ``_toc.yml`` and ``_config.yml`` (default: the
  repository root);
* ``BOOK_SCREENSHOTS``: where screenshots go (default: ``screenshots`` next to ``BOOK_HTML``);
* ``CHROMIUM``: the browser executable (default ``chromium`` on ``PATH``, else
  ``/usr/bin/chromium``).
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BOOK_ROOT = Path(os.environ.get("BOOK_ROOT", REPO)).resolve()
HTML_DIR = Path(os.environ.get("BOOK_HTML", REPO / "_build" / "html")).resolve()
SCREENSHOTS = Path(os.environ.get("BOOK_SCREENSHOTS", HTML_DIR.parent / "screenshots")).resolve()

# Headless flags that work on this machine kind (see /work/shared/TOOLCHAIN.md); Playwright adds
# --headless and a fresh temporary --user-data-dir itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


# ---------------------------------------------------------------------------------------------
# The book: its pages and its configuration


@dataclass(frozen=True)
class BookPage:
    """One entry of ``_toc.yml``: ``docname`` is the ``file`` value without its suffix."""

    docname: str
    source: Path

    @property
    def html(self) -> str:
        return f"{self.docname}.html"

    @property
    def is_notebook(self) -> bool:
        return self.source.suffix == ".ipynb"


def _toc_files(node) -> list[str]:
    files = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if isinstance(node.get(key), str):
                files.append(node[key])
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key) or []:
                files.extend(_toc_files(child))
    return files


def _source(docname: str) -> Path:
    stem = BOOK_ROOT / docname
    if stem.suffix in (".md", ".ipynb") and stem.is_file():
        return stem
    for suffix in (".ipynb", ".md", ".rst"):
        if stem.with_name(stem.name + suffix).is_file():
            return stem.with_name(stem.name + suffix)
    raise FileNotFoundError(f"_toc.yml lists {docname!r} but no .ipynb/.md/.rst source exists")


@functools.cache
def book_pages() -> tuple[BookPage, ...]:
    toc = yaml.safe_load((BOOK_ROOT / "_toc.yml").read_text())
    pages = []
    for entry in _toc_files(toc):
        docname = str(Path(entry).with_suffix("")) if entry.endswith((".md", ".ipynb")) else entry
        page = BookPage(docname=docname, source=_source(docname))
        if page not in pages:
            pages.append(page)
    return tuple(pages)


@functools.cache
def book_config() -> dict:
    return yaml.safe_load((BOOK_ROOT / "_config.yml").read_text())


def expected_colab_url(page: BookPage) -> str:
    """The Colab launch link that _config.yml implies for a notebook page."""
    config = book_config()
    repo = config["repository"]
    org_repo = urllib.parse.urlparse(repo["url"]).path.strip("/").removesuffix(".git")
    colab = config["launch_buttons"]["colab_url"].rstrip("/")
    prefix = (repo.get("path_to_book") or "").strip("/")
    path = f"{prefix}/{page.docname}.ipynb" if prefix else f"{page.docname}.ipynb"
    return f"{colab}/github/{org_repo}/blob/{repo.get('branch', 'main')}/{path}"


# ---------------------------------------------------------------------------------------------
# Serving the build


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's signature)
        pass


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and (name == "id" or (tag == "a" and name == "name")):
                self.ids.add(value)


@functools.cache
def fetch(url: str) -> tuple[int, bytes]:
    """Status and body of a local URL (cached: pages share most of their links)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


@functools.cache
def anchors(url: str) -> frozenset[str]:
    """The ids (and <a name>) in the served HTML document at ``url``."""
    parser = _Ids()
    parser.feed(fetch(url)[1].decode("utf-8", errors="replace"))
    return frozenset(parser.ids)


# ---------------------------------------------------------------------------------------------
# The browser and one visit per page


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        pytest.fail(f"Chromium not found at {path}: `apt-get install -y chromium` (make browser)")
    return path


@dataclass
class PageVisit:
    """Everything observed while one page loaded, rendered its math and widgets, and settled."""

    url: str
    status: int | None = None
    page_errors: list[str] = field(default_factory=list)  # uncaught exceptions
    console_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)  # aborted: not localhost
    local_failures: list[str] = field(default_factory=list)  # local requests that failed/4xx
    images: list[dict] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # absolute hrefs
    ids: set[str] = field(default_factory=set)
    math: dict = field(default_factory=dict)
    widgets: dict = field(default_factory=dict)
    colab_links: list[str] = field(default_factory=list)
    screenshot: Path | None = None


# Text nodes inside these are code or already-typeset math, not prose that MathJax should own.
_COLLECT_JS = r"""
() => {
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight, .MathJax';
  const main = document.querySelector('main') || document.body;
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  let text = '';
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.parentElement.closest(skip)) text += node.nodeValue + ' ';
  }
  const mathNodes = [...document.querySelectorAll('.math')];
  const views = [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')];
  const states = [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-state+json"]')];
  let stateIds = [];
  for (const s of states) {
    try { stateIds = stateIds.concat(Object.keys(JSON.parse(s.textContent).state)); } catch (e) {}
  }
  return {
    images: [...document.images].map(i => ({src: i.currentSrc || i.src, alt: i.alt,
                                            complete: i.complete, width: i.naturalWidth})),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id], a[name]')].map(e => e.id || e.getAttribute('name')),
    colab: [...document.querySelectorAll('a[href*="colab.research.google.com"]')].map(a => a.href),
    math: {
      mathjax: typeof window.MathJax === 'object' && !!window.MathJax.version,
      version: (window.MathJax && window.MathJax.version) || null,
      nodes: mathNodes.length,
      untypeset: mathNodes.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80)),
      containers: document.querySelectorAll('mjx-container').length,
      errors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 80)),
      text: text,
    },
    widgets: {
      views: views.map(v => { try { return JSON.parse(v.textContent).model_id; } catch (e) { return null; } }),
      states: states.length,
      state_ids: stateIds,
      rendered: views.map(v => {
        const area = v.previousElementSibling;
        return !!(area && area.querySelector('.jupyter-widgets'));
      }),
      widget_images: [...document.querySelectorAll('.jupyter-widgets img')].map(i => i.naturalWidth),
    },
  };
}
"""

_SETTLE_JS = r"""
async () => {
  if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
    await window.MathJax.startup.promise;
  }
  await Promise.all([...document.images].map(i => i.complete ? null :
    new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); })));
}
"""

TOLERATED_PAGE_ERRORS = (
    # sphinx-thebe 0.3.1 adds its one-line config script twice to every page (Jupyter Book
    # registers the extension's hook twice), so the second `const THEBE_JS_URL` is a redeclaration.
    # Nothing of the book uses thebe; see /work/shared/TOOLCHAIN.md.
    "Identifier 'THEBE_JS_URL' has already been declared",
)
TOLERATED_CONSOLE_ERRORS = (
    # pydata-sphinx-theme logs this on a reader's first visit when no colour mode was ever
    # chosen (Jupyter Book leaves the theme's default_mode empty); the theme then uses "auto".
    "Got invalid theme mode: . Resetting to auto.",
)


def visit(browser, base_url: str, page: BookPage) -> PageVisit:
    url = urllib.parse.urljoin(base_url, page.html)
    result = PageVisit(url=url)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")

    def route(route):
        request_url = route.request.url
        if urllib.parse.urlparse(request_url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            result.external_requests.append(request_url)
            route.abort("blockedbyclient")

    def on_response(response):
        if response.status >= 400:
            result.local_failures.append(f"{response.status} {response.url}")

    def on_failed(request):
        if urllib.parse.urlparse(request.url).hostname in LOCAL_HOSTS:
            result.local_failures.append(f"{request.failure} {request.url}")

    def on_console(message):
        # "Failed to load resource" lines duplicate what the request checks already report.
        if message.type == "error" and "Failed to load resource" not in message.text:
            result.console_errors.append(message.text)

    context.route("**/*", route)
    tab = context.new_page()
    tab.on("pageerror", lambda exc: result.page_errors.append(str(exc)))
    tab.on("console", on_console)
    tab.on("response", on_response)
    tab.on("requestfailed", on_failed)
    try:
        response = tab.goto(url, wait_until="load", timeout=30_000)
        result.status = response.status if response else None
        tab.evaluate(_SETTLE_JS)
        has_views = tab.locator(f'script[type="{WIDGET_VIEW}"]').count() > 0
        if has_views:
            # The manager replaces nothing: it renders each view into a new element just before
            # the view's script tag. Give it a moment; the widget test reports what was missing.
            try:
                tab.wait_for_function(
                    f"""() => [...document.querySelectorAll('script[type="{WIDGET_VIEW}"]')]
                         .every(v => v.previousElementSibling &&
                                     v.previousElementSibling.querySelector('.jupyter-widgets'))""",
                    timeout=15_000,
                )
            except Exception:  # noqa: BLE001 (reported by test_widgets_render)
                pass
            tab.evaluate(_SETTLE_JS)
        tab.wait_for_load_state("networkidle", timeout=15_000)
        collected = tab.evaluate(_COLLECT_JS)
        result.images = collected["images"]
        result.links = collected["links"]
        result.ids = set(collected["ids"])
        result.math = collected["math"]
        result.widgets = collected["widgets"]
        result.colab_links = collected["colab"]
        shot = SCREENSHOTS / f"{page.docname}.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(shot), full_page=True)
        result.screenshot = shot
    finally:
        context.close()
    result.page_errors = [
        e for e in result.page_errors if not any(t in e for t in TOLERATED_PAGE_ERRORS)
    ]
    result.console_errors = [e for e in result.console_errors if e not in TOLERATED_CONSOLE_ERRORS]
    return result
