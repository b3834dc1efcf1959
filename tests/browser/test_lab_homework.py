"""The homework in JupyterLab: each released notebook runs and fails only where answers are
missing; nbgrader's Validate button passes a completed copy (see lab.py for the server)."""

from __future__ import annotations

import pytest
from lab import HOMEWORK

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("lab-homework")]


@pytest.mark.parametrize("assignment", HOMEWORK)
def test_homework_runs_and_fails_only_where_answers_are_missing(
    open_notebook, assignment: str
) -> None:
    notebook = open_notebook(f"exercises/{assignment}/{assignment}.ipynb")
    notebook.run_all()
    errors = notebook.errors()
    assert errors, f"{assignment}: the blank release raised nothing (no self-check ran?)"
    other = [e for e in errors if e["ename"] != "NotImplementedError"]
    assert other == [], f"{assignment}: cells failed for another reason than a blank answer"


@pytest.mark.parametrize("assignment", HOMEWORK)
def test_validate_button_passes_a_completed_homework(open_notebook, assignment: str) -> None:
    notebook = open_notebook(f"completed/{assignment}/{assignment}.ipynb")
    page = notebook.page
    # JupyterLab shows the notebook's toolbar twice (its own and the main area's copy).
    toolbar = page.locator(".jp-NotebookPanel-toolbar").first
    toolbar.get_by_text("Validate", exact=True).click()
    message = page.locator("#validation-message")
    message.wait_for(timeout=600_000)
    assert "validation-success" in (message.get_attribute("class") or ""), message.inner_text()
    assert "Success! Your notebook passes all the tests." in message.inner_text()
