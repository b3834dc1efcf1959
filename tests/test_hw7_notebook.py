"""Homework 7 end to end: the solved notebook runs, and the student's penalty, dropout and early
stopping train the two-moons network exactly as minidl's references do (the demo cell)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from autograder.notebooks import read_source, source_path
from autograder.splice import submission

pytestmark = pytest.mark.autograder

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "hw7-regularization"
SOURCE = read_source(source_path(REPO / "solutions", ASSIGNMENT))
RELEASE = nbformat.read(REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def test_points_add_up_to_the_table():
    points = [
        c.metadata.nbgrader["points"]
        for c in RELEASE.cells
        if "points" in c.metadata.get("nbgrader", {})
    ]
    assert sum(points) == 25


@pytest.mark.slow
def test_solution_notebook_races_the_reference_and_matches_it(tmp_path):
    from autograder.runner import Limits, execute_notebook, start_kernel

    nb = submission(RELEASE, SOURCE, {})
    assert any("demo" in c.metadata.get("tags", []) for c in nb.cells)
    limits = Limits(cell_timeout=120, total_timeout=300)
    execution = execute_notebook(nb, start_kernel(tmp_path, "", limits), limits)
    assert execution.status == "ok"
    outputs = [o for c in execution.notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert [o for o in outputs if o.output_type == "error"] == []
    text = "".join(o.get("text", "") for o in outputs)
    gap = float(re.search(r"difference between the two validation curves: (\S+)", text).group(1))
    assert gap < 1e-10
    best = re.findall(r"best epoch (\d+)", text)
    assert len(best) == 2 and best[0] == best[1]
    for check in ["l2_penalty", "l1_penalty", "Dropout", "EarlyStopping", "k_fold"]:
        assert f"{check}: correct on the example" in text
