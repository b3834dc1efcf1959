"""Book pages as notebooks in JupyterLab: every slider page runs and its sliders move the
picture; one page per chapter shows no MyST markup raw (see lab.py for the server)."""

from __future__ import annotations

import pytest
from lab import CHAPTER_PAGES, RAW_MYST, SLIDER_PAGES, Notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("lab-pages")]


def _widget_problems(notebook: Notebook) -> list[str]:
    text = notebook.page.inner_text(".jp-Notebook")
    problems = [
        line for line in text.splitlines() if "Failed to create view" in line or "Error" in line
    ]
    problems += [m for m in notebook.console if "widget" in m.lower() or "view" in m.lower()]
    return problems


@pytest.mark.parametrize("path", SLIDER_PAGES)
def test_slider_page_runs_and_every_slider_moves_the_picture(open_notebook, path: str) -> None:
    notebook = open_notebook(path)
    notebook.run_all()
    assert notebook.errors() == [], f"{path}: a cell raised in JupyterLab"
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
            key = (
                "ArrowLeft"
                if handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
                else "ArrowRight"
            )
            page.keyboard.press(key)
            page.wait_for_function(
                "([img, old]) => img.getAttribute('src') !== old",
                arg=[image.element_handle(), before],
                timeout=10_000,
            )
            assert caption.inner_text() != alt_before, f"{path}: the alt text did not follow"


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
