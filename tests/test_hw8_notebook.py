"""Homework 8 (Tricks of the trade) as a student who solved it sees it: every cell runs, the
hidden tests leak nowhere into the release, and the student's pieces train and tune the digits
network exactly as minidl's reference does (the demo cells are not graded)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from autograder.notebooks import read_source, source_path
from autograder.release import leaked_secrets, secret_lines
from autograder.splice import submission

pytestmark = pytest.mark.autograder

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "hw8-tricks"
SOURCE = read_source(source_path(REPO / "solutions", ASSIGNMENT))
RELEASE = nbformat.read(REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def test_no_solution_or_hidden_test_leaks_into_the_exercises():
    secrets = secret_lines(SOURCE, RELEASE)
    assert any("the momentum weights are swapped" in line for line in secrets)
    assert not leaked_secrets(REPO / "exercises" / ASSIGNMENT, secrets)


@pytest.mark.slow
def test_solution_notebook_races_the_reference_and_ties(tmp_path):
    from autograder.runner import Limits, execute_notebook, start_kernel

    nb = submission(RELEASE, SOURCE, {})
    limits = Limits(cell_timeout=120, total_timeout=300)
    execution = execute_notebook(nb, start_kernel(tmp_path, "", limits), limits)
    assert execution.status == "ok"
    outputs = [o for c in execution.notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert [o for o in outputs if o.output_type == "error"] == []
    text = "".join(o.get("text", "") for o in outputs)
    assert float(re.search(r"normalized test sets: (\S+)", text).group(1)) < 1e-10
    trained = re.findall(
        r"(yours|minidl reference): final validation loss (\S+), test accuracy "
        r"(\S+)",
        text,
    )
    assert len(trained) == 2 and trained[0][1:] == trained[1][1:]
    assert float(trained[0][2]) > 0.9
    tuned = re.findall(r"(yours|minidl reference): best rate (\S+), validation loss (\S+)", text)
    assert len(tuned) == 2 and tuned[0][1:] == tuned[1][1:]
