"""Grade a class of Homework 1 through the command line, once, and check the pipeline's promises.

The class: the instructor's solution, one submission that tampered with the test cells, one whose
code loops forever, and an unreadable file. It is graded from a .zip, then re-graded (idempotent),
then one student is re-graded from an nbgrader tree. (Every homework's solution, blank release and
typical mistakes are graded in tests/autograder/test_homework_cases.py.)
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pytest
from gradeclass import CASES, Homework, autograder, expectations, read_grades, write_zip
from gradeclass import feedback_messages as feedback_page_messages

from autograder.notebooks import grade_id, is_answer, is_test
from autograder.runner import Kernel, Limits, execute_notebook, start_kernel
from autograder.splice import parse_cells

pytestmark = [pytest.mark.autograder, pytest.mark.slow, pytest.mark.xdist_group("autograder")]

ASSIGNMENT = "hw1-backprop"
HW1 = Homework(ASSIGNMENT)
SOURCE, RELEASE, POINTS = HW1.source, HW1.release, HW1.points
SIGMOID_PLUS = CASES / ASSIGNMENT / "sigmoid_plus.cells"
CELL_TIMEOUT = 3

NUMERICAL_GRADIENT_LOOPS = """
def numerical_gradient(f, x, eps=1e-6):
    while True:
        pass
"""


def tampered_notebook() -> nbformat.NotebookNode:
    """The sigmoid mistake, and test cells edited, deleted, duplicated and moved."""
    replacements, _ = parse_cells(SIGMOID_PLUS.read_text())
    nb = HW1.notebook(replacements)
    cells = {grade_id(c): c for c in nb.cells if grade_id(c)}
    cells["sigmoid_selfcheck"].source = "print('all good')"
    cells["sigmoid_backward_hidden"].source = "pass"
    nb.cells.remove(cells["linear_forward_hidden"])
    duplicate = copy.deepcopy(cells["softmax_selfcheck"])
    duplicate["id"] = "copy-of-softmax-selfcheck"  # as Jupyter gives a pasted cell a new id
    nb.cells.append(duplicate)
    nb.cells.remove(cells["mlp_selfcheck"])
    nb.cells.insert(0, cells["mlp_selfcheck"])
    return nb


def class_notebooks() -> dict[str, nbformat.NotebookNode | bytes]:
    return {
        "solution": HW1.notebook({}),
        "blank": RELEASE,
        "tampered": tampered_notebook(),
        "loops": HW1.notebook({"numerical_gradient": NUMERICAL_GRADIENT_LOOPS}),
        "unreadable": b'{"cells": [{"cell_type": "code", "sou',
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    archive = write_zip(folder / "class.zip", class_notebooks())
    out = folder / "out"
    first = autograder("grade", ASSIGNMENT, archive, "--out", out, "--cell-timeout", CELL_TIMEOUT)
    return {"archive": archive, "out": out, "run": first, "grades": read_grades(out)}


def failed_tests(row: dict[str, str]) -> set[str]:
    return HW1.failed_tests(row)


def feedback_messages(out: Path, student: str) -> dict[str, str]:
    return feedback_page_messages(out, student, POINTS)


def test_grades_csv_has_every_student_and_the_required_columns(graded):
    grades = graded["grades"]
    assert set(grades) == set(class_notebooks())
    row = grades["solution"]
    assert {"student", "assignment", "score", "max_score"} <= set(row)
    assert row["assignment"] == ASSIGNMENT and row["max_score"] == "25"


def test_tampered_test_cells_are_graded_with_the_original_tests(graded):
    expected = expectations(SIGMOID_PLUS)
    assert failed_tests(graded["grades"]["tampered"]) == set(expected)
    page = (graded["out"] / "feedback" / "tampered.html").read_text()
    assert "sigmoid_selfcheck" in page and "linear_forward_hidden" in page  # the notes say so


def test_a_looping_cell_times_out_and_the_rest_is_graded(graded):
    row = graded["grades"]["loops"]
    looping = {
        "numerical_gradient_selfcheck",
        "numerical_gradient_hidden",
        "numerical_gradient_restores_hidden",
    }
    assert failed_tests(row) == looping
    messages = feedback_messages(graded["out"], "loops")
    assert all(f"ran longer than {CELL_TIMEOUT} s" in messages[name] for name in looping)


def test_an_unreadable_notebook_gets_zero_and_says_why(graded):
    assert graded["grades"]["unreadable"]["score"] == "0"
    assert graded["grades"]["unreadable"]["status"] == "unreadable"
    assert "not a readable notebook" in (graded["out"] / "feedback" / "unreadable.html").read_text()


def test_feedback_is_offline_and_never_shows_hidden_tests(graded):
    released = {line.strip() for c in RELEASE.cells for line in c.source.splitlines()}
    hidden = {
        line.strip()
        for c in SOURCE.cells
        if is_test(c) or is_answer(c)
        for line in c.source.splitlines()
        if len(line.strip()) >= 12 and line.strip() not in released
    }
    pages = list((graded["out"] / "feedback").glob("*.html"))
    assert len(pages) == len(class_notebooks())
    for page in pages:
        text = page.read_text()
        assert not [line for line in hidden if line in text], page.name
        assert "Traceback" not in text and "HIDDEN TESTS" not in text
        assert not re.search(r"<script|<link|src=|https?://", text), page.name


def test_summary_reports_distribution_and_pass_rates(graded):
    out = graded["run"].stdout
    assert f"{len(class_notebooks())} submissions" in out
    assert "score: mean" in out and "tests (pass rate):" in out
    assert re.search(r"100\.0%\s+1 pt\s+linear_forward_selfcheck", out) is None  # blank fails
    assert "unreadable" in out


def test_regrading_is_idempotent_and_never_loses_a_grade(graded, tmp_path):
    out = graded["out"]
    again = autograder("grade", ASSIGNMENT, graded["archive"], "--out", out)
    assert f"0 graded now, {len(class_notebooks())} unchanged" in again.stdout
    assert read_grades(out) == graded["grades"]

    tree = tmp_path / "submitted" / "solution" / ASSIGNMENT
    tree.mkdir(parents=True)
    blanked = HW1.notebook({"sequential": "# gave up"})
    nbformat.write(blanked, tree / f"{ASSIGNMENT}.ipynb")
    autograder("grade", ASSIGNMENT, tmp_path / "submitted", "--out", out)
    grades = read_grades(out)
    assert set(grades) == set(graded["grades"])  # everyone else is still there
    assert float(grades["solution"]["score"]) < 25
    assert {k: v for k, v in grades.items() if k != "solution"} == {
        k: v for k, v in graded["grades"].items() if k != "solution"
    }


def test_a_notebook_past_its_total_time_is_stopped_and_the_rest_marked_not_run(tmp_path):
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("x = 1"),
            nbformat.v4.new_code_cell("while True:\n    pass"),
            nbformat.v4.new_code_cell("print(x)"),
        ]
    )
    limits = Limits(cell_timeout=60, total_timeout=3)
    kernel: Kernel = start_kernel(tmp_path, "", limits)
    execution = execute_notebook(nb, kernel, limits)
    assert execution.status == "timeout"
    assert 3 <= execution.seconds < 30
    last = execution.notebook.cells[-1]
    assert [o.ename for o in last.outputs] == ["NotRun"]
    assert "longer than 3 s" in last.outputs[0].evalue
