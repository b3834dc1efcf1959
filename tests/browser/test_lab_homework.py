"""The homework in JupyterLab: each released notebook runs and fails only where answers are
missing; nbgrader's Validate button passes a completed copy (see lab.py for the server)."""

from __future__ import annotations

import ast

import pytest
from lab import HOMEWORK, REPO

from autograder.notebooks import is_answer, read_source, source_path
from autograder.splice import solution_source

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("lab-homework")]


@pytest.mark.parametrize("assignment", HOMEWORK)
def test_homework_runs_and_fails_only_where_answers_are_missing(
    open_notebook, assignment: str
) -> None:
    notebook = open_notebook(f"exercises/{assignment}/{assignment}.ipynb")
    notebook.run_all()
    errors = notebook.errors()
    assert errors, f"{assignment}: the blank release raised nothing (no self-check ran?)"
    blanks = {f"name '{name}' is not defined" for name in _answer_names(assignment)}
    other = [
        e
        for e in errors
        if e["ename"] != "NotImplementedError"
        and not (e["ename"] == "NameError" and e["evalue"] in blanks)
    ]
    assert other == [], f"{assignment}: cells failed for another reason than a blank answer"


def _answer_names(assignment: str) -> set[str]:
    """The functions and classes the answer cells define: in the release an answer cell that is
    all solution raises NotImplementedError, and a self-check then cannot find its name."""
    source = read_source(source_path(REPO / "solutions", assignment))
    names = set()
    for cell in source.cells:
        if is_answer(cell):
            tree = ast.parse(solution_source(cell))
            names |= {
                node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)
            }
    return names


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
