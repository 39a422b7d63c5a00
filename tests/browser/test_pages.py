"""Every page of the built book, opened in a real browser with the internet blocked.

Each page listed in ``_toc.yml`` is loaded once (see ``conftest.visit``); the tests below check
what that visit saw. Run after the build: ``make browser`` (``make test`` does it).
"""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest
from book_site import (
    WIDGET_STATE,
    WIDGET_VIEW,
    BookPage,
    anchors,
    book_pages,
    expected_colab_url,
    fetch,
)

PAGES = book_pages()
NOTEBOOK_PAGES = [p for p in PAGES if p.is_notebook]


def page_params(pages):
    return pytest.mark.parametrize("page", pages, ids=[p.docname for p in pages])


def widget_views_in_source(page: BookPage) -> list[str]:
    """Model ids of the widget views stored in a notebook's outputs."""
    nb = json.loads(page.source.read_text())
    ids = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view:
                ids.append(view["model_id"])
    return ids


def test_the_toc_lists_pages():
    assert PAGES, "_toc.yml lists no pages"


def test_index_redirects_to_the_root_page(browser, server):
    context = browser.new_context()
    context.route(
        "**/*",
        lambda r: r.continue_() if r.request.url.startswith(server) else r.abort(),
    )
    tab = context.new_page()
    tab.goto(server, wait_until="load")
    tab.wait_for_url(urllib.parse.urljoin(server, PAGES[0].html), timeout=10_000)
    context.close()


@page_params(PAGES)
def test_page_loads_without_javascript_errors(page, visits):
    visit = visits(page)
    assert visit.status == 200, f"{visit.url} answered {visit.status}"
    assert not visit.page_errors, f"uncaught JavaScript errors: {visit.page_errors}"
    assert not visit.console_errors, f"console errors: {visit.console_errors}"
    assert not visit.local_failures, f"local resources that failed to load: {visit.local_failures}"
    assert visit.screenshot is not None and visit.screenshot.stat().st_size > 0


@page_params(PAGES)
def test_page_works_offline(page, visits):
    # Every non-local request was aborted by the browser; the book must not need any of them.
    visit = visits(page)
    assert not visit.external_requests, (
        f"the page tried to fetch from the internet: {sorted(set(visit.external_requests))}"
    )


@page_params(PAGES)
def test_every_image_has_loaded(page, visits):
    visit = visits(page)
    broken = [img["src"][:120] for img in visit.images if not img["complete"] or img["width"] == 0]
    assert not broken, f"images that did not load: {broken}"


@page_params(PAGES)
def test_every_internal_link_and_anchor_resolves(page, visits, server):
    visit = visits(page)
    broken = []
    for href in sorted(set(visit.links)):
        if not href.startswith(server):
            continue  # external (not fetched offline) or mailto:/javascript:
        target, _, fragment = href.partition("#")
        status, _ = fetch(target)
        if status != 200:
            broken.append(f"{href} -> HTTP {status}")
            continue
        fragment = urllib.parse.unquote(fragment)
        if not fragment or not target.endswith(".html"):
            continue
        ids = visit.ids if target == visit.url else anchors(target)
        if fragment not in ids:
            broken.append(f"{href} -> no element with id {fragment!r}")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


# Raw TeX that MathJax should have replaced: \( \) \[ \] delimiters, $$...$$ and $...$.
RAW_MATH = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|(?<![\w$])\$[^\s$][^$\n]{0,200}?\$(?![\w$])")


@page_params(PAGES)
def test_math_is_typeset(page, visits):
    visit = visits(page)
    math = visit.math
    leftover = RAW_MATH.findall(math["text"])
    assert not leftover, f"raw TeX left visible in the page: {leftover[:5]}"
    if math["nodes"]:
        assert math["mathjax"], "the page has math but MathJax did not load"
        assert math["version"].startswith("3."), f"MathJax {math['version']}, expected 3.x"
        assert not math["untypeset"], f"math MathJax did not typeset: {math['untypeset'][:5]}"
        assert math["containers"] >= math["nodes"]
    assert not math["errors"], f"TeX errors in typeset math: {math['errors']}"


def test_some_page_has_math(visits):
    # Guards the test above against passing vacuously because no page was seen to hold math.
    assert any(visits(page).math["containers"] for page in PAGES), "no typeset math in the book"


@page_params(NOTEBOOK_PAGES)
def test_notebook_page_has_the_colab_launch_button(page, visits):
    visit = visits(page)
    expected = expected_colab_url(page)
    assert expected in visit.colab_links, (
        f"no Colab launch link to {expected}; found {visit.colab_links}"
    )


@page_params(NOTEBOOK_PAGES)
def test_widgets_carry_their_saved_state(page, visits):
    in_source = widget_views_in_source(page)
    widgets = visits(page).widgets
    if not in_source:
        assert not widgets["views"], "widget views on a page whose notebook stores none"
        return
    assert widgets["views"] == in_source, (
        "the page's widget views are not the notebook's (lost in the build, or a stale build)"
    )
    assert widgets["states"] == 1, f"expected one {WIDGET_STATE} script, found {widgets['states']}"
    missing = sorted(set(in_source) - set(widgets["state_ids"]))
    assert not missing, f"widget views with no saved model state (blank offline): {missing}"


@page_params(NOTEBOOK_PAGES)
def test_widgets_render_offline(page, visits):
    widgets = visits(page).widgets
    if not widgets["views"]:
        pytest.skip("no widgets on this page")
    assert all(widgets["rendered"]), (
        f"the widget manager rendered {sum(widgets['rendered'])} of {len(widgets['views'])} views"
    )
    assert all(width > 0 for width in widgets["widget_images"]), "an image in a widget is broken"
