"""Fixtures of the browser suite: a built copy of the book, and a local web server (Chromium is
``tests/conftest.py``'s).

The book is copied (sources only, modification times kept so Sphinx sees unchanged pages as
unchanged) into ``_build/browser-test/src`` together with a test-only page, ``fixture_sliders.md``,
whose slider values are known, and built with the same flags as ``make book``. The copy executes
its pages with ``execute_notebooks: force`` instead of the book's jupyter-cache: a fresh build
executes every page either way, Sphinx's own environment still skips unchanged pages on a rerun,
and the cache's SQLite database once failed a CI build mid-way (``Could not refresh instance
NbCacheRecord``, a record gone right after its commit) on a file system we cannot inspect.

Chromium is Debian's (``make test`` installs it); Playwright drives it through
``executable_path``, never through ``playwright install``.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from toc import FIXTURE_PAGE, toc_files  # noqa: F401 (test modules import from toc)

REPO = Path(__file__).resolve().parents[2]
WORK = REPO / "_build" / "browser-test"
SOURCE = WORK / "src"
HTML = SOURCE / "_build" / "html"
SCREENSHOTS = WORK / "screenshots"
BOOK_SOURCES = ("_ext", "book", "exercises")  # the homework pages link to the released notebooks
BUILD_FLAGS = ("--warningiserror", "--nitpick", "--keep-going")  # as in the Makefile's `book`


def _sync_sources() -> None:
    SOURCE.mkdir(parents=True, exist_ok=True)
    for name in BOOK_SOURCES:
        origin, copy = REPO / name, SOURCE / name
        if origin.is_dir():
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(origin, copy, ignore=shutil.ignore_patterns("__pycache__", ".*"))
        else:
            shutil.copy2(origin, copy)
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "force"
    _write_if_changed(SOURCE / "_config.yml", yaml.safe_dump(config, sort_keys=False))
    kit = subprocess.run(  # the book links to the student kit, as `make book` builds it first
        [sys.executable, "-m", "autograder", "kit", "--out", str(SOURCE / "_build" / "kit")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if kit.returncode != 0:
        pytest.fail(f"building the student kit failed ({kit.returncode}):\n{kit.stderr[-4000:]}")
    fixture = Path(__file__).with_name("fixture_sliders.md")
    shutil.copy2(fixture, SOURCE / f"{FIXTURE_PAGE}.md")
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    toc.setdefault("parts", []).append(
        {"caption": "Browser-test fixtures", "chapters": [{"file": FIXTURE_PAGE}]}
    )
    _write_if_changed(SOURCE / "_toc.yml", yaml.safe_dump(toc, sort_keys=False))


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless ``path`` holds it (a new mtime would make Sphinx reread the book)."""
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


@pytest.fixture(scope="session")
def built_book() -> Path:
    """``_build/html`` of the book plus the fixture page, built like ``make book``."""
    _sync_sources()
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run(
        [str(jupyter_book), "build", str(SOURCE), *BUILD_FLAGS],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        log = (result.stdout + result.stderr)[-6000:]
        pytest.fail(f"jupyter-book build {SOURCE} failed ({result.returncode}):\n{log}")
    return HTML


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def server(built_book: Path) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:<free port>/``) of a thread serving the built book."""
    handler = functools.partial(_QuietHandler, directory=str(built_book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@dataclass
class Visit:
    """A browser tab confined to the local server, with what went wrong on it so far."""

    page: object
    base: str
    external_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed_responses: list[str] = field(default_factory=list)  # "404 http://127.0.0.1:.../x"

    def assert_clean(self, where: str) -> None:
        """Nothing left the local server, nothing was logged as an error, nothing was missing."""
        assert not self.external_requests, f"{where} requested {self.external_requests}"
        assert not self.console_errors, f"{where} logged {self.console_errors}"
        assert not self.failed_responses, f"{where} got error responses {self.failed_responses}"

    def goto(self, docname: str) -> None:
        """Open ``docname`` (e.g. ``book/intro``) and wait until its maths is typeset."""
        self.page.goto(self.base + docname + ".html", wait_until="load")
        self.wait_for_math()

    def wait_for_math(self) -> None:
        if self.page.locator(".math").count():
            self.page.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
            )
            self.page.evaluate("() => MathJax.startup.promise")


@pytest.fixture
def browser_page(chromium, server: str) -> Iterator[Visit]:
    """A fresh tab whose requests outside the local server are aborted and recorded."""
    context = chromium.new_context()
    page = context.new_page()
    visit = Visit(page, server)
    local = urlsplit(server).netloc

    def route(route) -> None:
        url = urlsplit(route.request.url)
        if url.scheme in ("http", "https") and url.netloc != local:
            visit.external_requests.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def response(response) -> None:
        if response.status >= 400:
            visit.failed_responses.append(f"{response.status} {response.url}")

    def request_failed(request) -> None:
        # Aborted external requests are recorded by route(); ERR_ABORTED on a local one means
        # the tab navigated away before it finished (the toc walk clicks on at once): not a miss.
        if urlsplit(request.url).netloc == local and request.failure != "net::ERR_ABORTED":
            visit.failed_responses.append(f"{request.failure} {request.url}")

    context.route("**/*", route)
    page.on("response", response)
    page.on("requestfailed", request_failed)
    page.on("console", lambda m: m.type == "error" and visit.console_errors.append(m.text))
    page.on("pageerror", lambda error: visit.console_errors.append(str(error)))
    yield visit
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On a failed browser test, save a screenshot of the tab and say where it is."""
    report = yield
    visit = getattr(item, "funcargs", {}).get("browser_page")
    if report.when == "call" and report.failed and visit is not None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / (re.sub(r"[^\w.-]+", "_", item.name) + ".png")
        try:
            visit.page.screenshot(path=str(path), full_page=True)
            message = f"screenshot of {visit.page.url}: {path}"
        except Exception as error:  # a crashed tab must not hide the original failure
            message = f"no screenshot ({error})"
        print(message)
        report.sections.append(("browser screenshot", message))
    return report


# The JupyterLab server and its notebook tabs (test_lab_*.py).
from lab import lab, open_notebook  # noqa: E402, F401
