"""Homework 6 (adaptive learning rates): the release is current and leaks nothing, and the
solved notebook runs end to end, where the student's four rules train the digits MLP exactly as
minidl's reference rules do. Grading of the solution, the blank release and every typical mistake
is tests/test_homework_cases.py's job."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from autograder.notebooks import grade_id, is_answer, is_test, read_source, source_path
from autograder.release import leaked_secrets, secret_lines
from autograder.splice import submission

pytestmark = pytest.mark.autograder

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "hw6-adaptive"
SOURCE = read_source(source_path(REPO / "solutions", ASSIGNMENT))
RELEASE = nbformat.read(REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def test_release_holds_four_blank_rules_and_20_points_and_leaks_nothing():
    answers = [grade_id(c) for c in RELEASE.cells if is_answer(c)]
    assert answers == ["adagrad", "rmsprop", "adadelta", "adam"]
    assert all("raise NotImplementedError()" in c.source for c in RELEASE.cells if is_answer(c))
    hidden = [c for c in RELEASE.cells if is_test(c) and "hidden" in grade_id(c)]
    assert len(hidden) == 11 and all(len(c.source.splitlines()) == 1 for c in hidden)
    assert sum(c.metadata.nbgrader["points"] for c in RELEASE.cells if is_test(c)) == 20
    secrets = secret_lines(SOURCE, RELEASE)
    assert "G = state.G + grad * grad" in secrets
    assert not leaked_secrets(REPO / "exercises" / ASSIGNMENT, secrets)


@pytest.mark.slow
def test_solution_notebook_runs_and_the_students_rules_train_like_the_references(tmp_path):
    from autograder.runner import Limits, execute_notebook, start_kernel

    nb = submission(RELEASE, SOURCE, {})
    assert any("demo" in c.metadata.get("tags", []) for c in nb.cells)
    limits = Limits(cell_timeout=120, total_timeout=300)
    execution = execute_notebook(nb, start_kernel(tmp_path, "", limits), limits)
    assert execution.status == "ok"
    outputs = [o for c in execution.notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert [o for o in outputs if o.output_type == "error"] == []
    text = "".join(o.get("text", "") for o in outputs)
    for rule in ["adagrad", "rmsprop", "adadelta", "adam"]:
        assert f"{rule}: correct on the example" in text
    gap = float(re.search(r"curves and the reference's: (\S+)", text).group(1))
    assert gap < 1e-10
