"""Homework 2 (gradient descent): the release matches the solution, leaks nothing, and the solved
notebook's trainers give exactly the numbers of minidl.train.train in the race of its demo."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from autograder.notebooks import is_answer, is_test, read_source, source_path
from autograder.release import leaked_secrets, secret_lines
from autograder.splice import submission

pytestmark = pytest.mark.autograder

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "hw2-gradient-descent"
SOURCE = read_source(source_path(REPO / "solutions", ASSIGNMENT))
RELEASE = nbformat.read(REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def test_release_holds_blanks_visible_tests_and_no_secret():
    answers = [c for c in RELEASE.cells if is_answer(c)]
    assert len(answers) == 7
    assert all("raise NotImplementedError()" in c.source for c in answers)
    assert sum(c.metadata.nbgrader["points"] for c in RELEASE.cells if is_test(c)) == 26
    secrets = secret_lines(SOURCE, RELEASE)
    assert any("rng.permutation(len(X))" in line for line in secrets)
    assert not leaked_secrets(REPO / "exercises" / ASSIGNMENT, secrets)


@pytest.mark.slow
def test_solved_notebook_trains_exactly_like_minidl_train(tmp_path):
    from autograder.runner import Limits, execute_notebook, start_kernel

    nb = submission(RELEASE, SOURCE, {})
    limits = Limits(cell_timeout=120, total_timeout=300)
    execution = execute_notebook(nb, start_kernel(tmp_path, "", limits), limits)
    assert execution.status == "ok"
    cells = [c for c in execution.notebook.cells if c.cell_type == "code"]
    assert [o for c in cells for o in c.outputs if o.output_type == "error"] == []
    text = "".join(o.get("text", "") for c in cells for o in c.outputs)
    gaps = [float(g) for g in re.findall(r"largest gap to minidl.train (\S+)", text)]
    assert len(gaps) == 3 and max(gaps) < 1e-10
    for trainer, updates in [("full batch", 60), ("stochastic", 1500), ("mini-batch (32)", 48)]:
        assert re.search(rf"{re.escape(trainer)}: {updates} updates", text), trainer
