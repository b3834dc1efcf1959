"""Book pages as notebooks in JupyterLab: every slider page runs and its sliders move the
picture; one page per chapter shows no MyST markup raw (see lab.py for the server)."""

from __future__ import annotations

import pytest
from lab import CHAPTER_PAGES, RAW_MYST, SLIDER_PAGES, Notebook
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("lab-pages")]


# What JupyterLab's widget manager writes where a widget cannot be shown.
WIDGET_ERRORS = ("Failed to create view", "Error displaying widget", "Click to show javascript")


def _widget_problems(notebook: Notebook) -> list[str]:
    text = notebook.page.inner_text(".jp-Notebook")
    problems = [line for line in text.splitlines() if any(e in line for e in WIDGET_ERRORS)]
    problems += [m for m in notebook.console if "widget" in m.lower() or "view" in m.lower()]
    return problems


@pytest.mark.parametrize("path", SLIDER_PAGES)
def test_slider_page_runs_and_every_slider_moves_the_picture(open_notebook, path: str) -> None:
    notebook = open_notebook(path)
    notebook.run_all()
    assert notebook.errors() == [], f"{path}: a cell raised in JupyterLab"
    _move_every_slider(notebook, path)


def test_notebook_7_shows_a_live_slider_that_moves_the_picture(open_notebook) -> None:
    path = "book/ch02-gradient-descent/quadratic-1d.ipynb"
    notebook = open_notebook(path, front_end="notebooks")
    notebook.run_all()
    assert notebook.errors() == [], f"{path}: a cell raised in Notebook 7"
    _move_every_slider(notebook, path)


def _move_every_slider(notebook: Notebook, path: str) -> None:
    """Each slider of each figure, moved with the keyboard, changes the picture and its alt
    text."""
    assert _widget_problems(notebook) == [], f"{path}: a widget failed to display"
    page = notebook.page
    figures = page.locator(".jp-OutputArea-output .widget-vbox:has(.widget-image)")
    assert figures.count() >= 1, f"{path}: no slider figure was displayed"
    for f in range(figures.count()):
        figure = figures.nth(f)
        image = figure.locator("img.widget-image")
        caption = figure.locator(".widget-html span[aria-live]")
        handles = figure.locator(".widget-slider .noUi-handle")
        assert handles.count() >= 1, f"{path}: figure {f} has no slider"
        for h in range(handles.count()):
            before, alt_before = image.get_attribute("src"), caption.inner_text()
            handle = handles.nth(h)
            handle.scroll_into_view_if_needed()
            handle.focus()
            at_end = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
            # Home/End, not the arrows: Notebook 7 takes the arrow keys for its own shortcuts
            # even while a slider has the focus (JupyterLab leaves them to the slider).
            page.keyboard.press("Home" if at_end else "End")
            page.wait_for_function(
                "([img, old]) => img.getAttribute('src') !== old",
                arg=[image.element_handle(), before],
                timeout=60_000,  # a comm round trip to the kernel; generous for a loaded machine
            )
            # The caption is a widget of its own: its update may arrive just after the image's,
            # and it replaces its span (so look the span up anew inside the figure).
            try:
                page.wait_for_function(
                    """([figure, old]) => {
                        const span = figure.querySelector(".widget-html span[aria-live]");
                        return span !== null && span.innerText !== old;
                    }""",
                    arg=[figure.element_handle(), alt_before],
                    timeout=30_000,
                )
            except PlaywrightTimeout:
                pytest.fail(f"{path}: figure {f}, slider {h}: the alt text did not follow")


@pytest.mark.parametrize("path", CHAPTER_PAGES)
def test_chapter_page_shows_no_raw_myst(open_notebook, path: str) -> None:
    notebook = open_notebook(path)
    notebook.page.wait_for_selector(".jp-MarkdownCell .myst", state="attached", timeout=60_000)
    text = notebook.evaluate(
        """return [...panel.content.widgets]
            .filter((cell) => cell.model.type === "markdown")
            .map((cell) => cell.node.querySelector(".jp-MarkdownOutput, .myst"))
            .filter((node) => node).map((node) => node.innerText).join("\\n");"""
    )
    assert text.strip(), f"{path}: no rendered Markdown"
    raw = sorted(set(RAW_MYST.findall(text)))
    assert raw == [], f"{path}: MyST markup shown raw in JupyterLab: {raw}"
