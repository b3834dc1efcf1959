"""The built book in a real browser: offline, typeset, accessible, with working sliders.

Every page listed in ``_toc.yml`` (plus a test-only slider page) is opened in Chromium through a
local server; any request to another host is aborted and fails the page, and so does any response
with an error status (a missing favicon, image, script or stylesheet: a 404).
"""

from __future__ import annotations

import itertools
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from toc import FIXTURE_PAGE, book_pages

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

PAGES = book_pages()
RESOURCE_ATTRIBUTES = {"script": "src", "link": "href", "img": "src", "iframe": "src"}
IMAGE_PATH = re.compile(r"(^|/)_images/|\.(png|jpe?g|svg|gif)$", re.IGNORECASE)


class _RemoteResources(HTMLParser):
    """Collects the remote URLs a page would load (not plain ``<a href>`` links)."""

    def __init__(self) -> None:
        super().__init__()
        self.remote: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = RESOURCE_ATTRIBUTES.get(tag)
        for name, value in attrs:
            if name == wanted and value and urlsplit(value).scheme in ("http", "https", ""):
                if value.startswith(("http://", "https://", "//")):
                    self.remote.append(f"<{tag} {name}={value}>")

    def handle_data(self, data: str) -> None:
        self.remote.extend(re.findall(r"https?://(?:unpkg|cdn|[\w.-]*jsdelivr)[^\s\"']*", data))


def test_every_page_of_the_toc_is_built(built_book: Path) -> None:
    built = {
        str(p.relative_to(built_book).with_suffix("")) for p in built_book.glob("book/**/*.html")
    }
    assert built == set(PAGES), f"toc pages {PAGES}, built {sorted(built)}"


def test_every_page_source_is_in_the_toc() -> None:
    repo = Path(__file__).resolve().parents[2]
    sources = {str(p.relative_to(repo).with_suffix("")) for p in (repo / "book").rglob("*.md")}
    assert sources <= set(PAGES), f"pages missing from _toc.yml: {sorted(sources - set(PAGES))}"


def test_no_html_file_loads_a_remote_resource(built_book: Path) -> None:
    offenders = {}
    for path in built_book.rglob("*.html"):
        parser = _RemoteResources()
        parser.feed(path.read_text(encoding="utf-8"))
        if parser.remote:
            offenders[str(path.relative_to(built_book))] = parser.remote
    assert not offenders, f"pages loading remote resources: {offenders}"


@pytest.mark.parametrize("docname", PAGES)
def test_page_loads_offline_typeset_and_accessible(browser_page, docname: str) -> None:
    browser_page.goto(docname)
    page = browser_page.page
    browser_page.assert_clean(docname)

    untypeset = page.evaluate(
        """() => [...document.querySelectorAll('.math')]
                 .filter(el => !el.querySelector('mjx-container')).map(el => el.textContent)"""
    )
    assert not untypeset, f"{docname}: maths not typeset by MathJax: {untypeset[:3]}"
    prose = page.evaluate(
        """() => { const body = document.querySelector('main').cloneNode(true);
                   body.querySelectorAll('pre, code, script, style').forEach(el => el.remove());
                   return body.textContent; }"""
    )
    for delimiter in ("\\(", "\\[", "$$"):
        assert delimiter not in prose, (
            f"{docname}: raw TeX delimiter {delimiter!r} left in the text"
        )

    images = page.evaluate(
        """() => [...document.images].map(img => ({
                src: img.getAttribute('src').slice(0, 80), alt: img.getAttribute('alt'),
                loaded: img.complete && img.naturalWidth > 0}))"""
    )
    for image in images:
        assert image["loaded"], f"{docname}: image {image['src']} did not load"
        alt = (image["alt"] or "").strip()
        assert alt and not IMAGE_PATH.search(alt), (
            f"{docname}: image {image['src']} has no alt text (alt={image['alt']!r}); set it "
            "with the cell metadata `mystnb: image: alt:` or slider_figure(alt=...)"
        )


def _slider_pages(built_book: Path) -> list[str]:
    return [
        docname
        for docname in PAGES
        if "minidl-sliders" in (built_book / f"{docname}.html").read_text(encoding="utf-8")
    ]


def _figure_state(figure) -> dict:
    return figure.evaluate(
        """f => ({src: f.querySelector('img').src, alt: f.querySelector('img').alt,
                  values: [...f.querySelectorAll('output')].map(o => o.textContent)})"""
    )


def test_every_static_slider_moves_the_figure(built_book: Path, browser_page) -> None:
    pages = _slider_pages(built_book)
    assert FIXTURE_PAGE in pages
    for docname in pages:
        browser_page.goto(docname)
        for figure in browser_page.page.locator("figure.minidl-sliders").all():
            for i, slider in enumerate(figure.locator('input[type="range"]').all()):
                before = _figure_state(figure)
                at_end = slider.evaluate("s => s.value === s.max")
                slider.focus()
                slider.press("ArrowLeft" if at_end else "ArrowRight")
                after_key = _figure_state(figure)
                assert after_key["src"] != before["src"], f"{docname}: slider {i} key: same image"
                assert after_key["values"][i] != before["values"][i], f"{docname}: slider {i} label"
                assert after_key["alt"].strip(), f"{docname}: slider {i} frame has no alt text"

                slider.evaluate(
                    """s => { s.value = s.value === s.min ? s.max : s.min;
                              s.dispatchEvent(new Event('input', {bubbles: true})); }"""
                )
                after_set = _figure_state(figure)
                assert after_set["src"] != after_key["src"], (
                    f"{docname}: slider {i} set: same image"
                )
                assert after_set["values"][i] != after_key["values"][i]
    browser_page.assert_clean("the slider pages")


def test_fixture_slider_shows_formatted_values_and_frame_alt_text(browser_page) -> None:
    browser_page.goto(FIXTURE_PAGE)
    figure = browser_page.page.locator("figure.minidl-sliders")
    rate = figure.get_by_label("learning rate")
    assert _figure_state(figure)["values"] == ["0.10", "sigmoid"]
    rate.focus()
    rate.press("ArrowRight")
    state = _figure_state(figure)
    assert state["values"] == ["0.20", "sigmoid"]
    assert state["alt"] == "A decaying sigmoid curve with rate 0.20"
    assert rate.get_attribute("aria-valuetext") == "0.20"
    rate.press("ArrowRight")  # already at the last value: nothing changes
    assert _figure_state(figure) == state
    figure.get_by_label("activation").press("ArrowRight")
    assert _figure_state(figure)["alt"] == "A decaying tanh curve with rate 0.20"


def test_search_finds_a_chapter_one_term(browser_page) -> None:
    page = browser_page.page
    page.goto(browser_page.base + "search.html?q=backpropagation", wait_until="load")
    results = page.locator("#search-results ul.search li a")
    results.first.wait_for(timeout=15_000)
    hrefs = [a.get_attribute("href") for a in results.all()]
    expected = "ch01-backprop" if any("ch01-backprop" in p for p in PAGES) else "book/intro"
    assert any(expected in href for href in hrefs), f"search results {hrefs} miss {expected}"
    browser_page.assert_clean("the search page")


def test_next_and_previous_links_walk_the_toc_in_order(browser_page) -> None:
    # Walk forward by clicking "next"; on every page, "previous" must point at the page just left
    # (read from its resolved href: clicking it would load every page a second time).
    page = browser_page.page
    browser_page.goto(PAGES[0])
    for before, docname in itertools.pairwise(PAGES):
        page.locator("a.right-next").click()
        page.wait_for_load_state("load")
        assert page.url.endswith(f"/{docname}.html"), f"next after {before} led to {page.url}"
        previous = page.locator("a.left-prev").evaluate("a => a.href")
        assert previous.endswith(f"/{before}.html"), f"previous on {docname} is {previous}"
    assert page.locator("a.right-next").count() == 0, "the last page links to a next page"
    browser_page.assert_clean("the walk through the toc")


def test_every_page_names_a_favicon_that_loads(built_book: Path, browser_page) -> None:
    # Without a <link rel="icon">, a browser asks for /favicon.ico on the first visit: a 404.
    for docname in PAGES:
        html = (built_book / f"{docname}.html").read_text(encoding="utf-8")
        assert re.search(r'<link[^>]+rel="(?:shortcut )?icon"', html), f"{docname}: no favicon"
    browser_page.goto(PAGES[0])
    href = browser_page.page.evaluate("() => document.querySelector('link[rel~=icon]').href")
    response = browser_page.page.request.get(href)
    assert response.ok and response.body().lstrip().startswith(b"<svg"), (
        f"favicon {href} -> {response.status}"
    )
    browser_page.assert_clean(PAGES[0])


@pytest.mark.parametrize("docname", PAGES)
def test_page_downloads_as_an_executed_notebook(browser_page, docname: str) -> None:
    browser_page.goto(docname)
    link = browser_page.page.locator("a.btn-download-notebook-button")
    assert link.count() == 1, f"{docname}: no .ipynb in the download menu"
    response = browser_page.page.request.get(link.evaluate("a => a.href"))
    assert response.ok, f"{docname}: notebook download {response.url} -> {response.status}"
    notebook = json.loads(response.body())
    assert notebook["nbformat"] == 4 and notebook["cells"], f"{docname}: not a notebook"


def test_the_built_book_holds_no_solution_or_hidden_test(built_book):
    """Neither the site nor its executed notebooks contain a line of any homework's solutions or
    hidden tests."""
    import nbformat

    from autograder.notebooks import assignments, read_source, source_path
    from autograder.release import leaked_secrets, secret_lines

    repo = Path(__file__).resolve().parents[2]
    executed = built_book.parent / "jupyter_execute"
    assert executed.is_dir() and any(executed.rglob("*.ipynb"))
    names = assignments(repo / "solutions")
    releases = {
        a: nbformat.read(repo / "exercises" / a / f"{a}.ipynb", as_version=4) for a in names
    }
    # A line that some homework shows its students (`return Rule(init, update)`) is no secret.
    public = {
        line.strip() for nb in releases.values() for c in nb.cells for line in c.source.splitlines()
    }
    for assignment in names:
        source = read_source(source_path(repo / "solutions", assignment))
        secrets = secret_lines(source, releases[assignment]) - public
        assert not leaked_secrets(built_book, secrets), assignment
        assert not leaked_secrets(executed, secrets), assignment
