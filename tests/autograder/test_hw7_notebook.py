"""Homework 7 end to end: the solved notebook runs, and the student's penalty, dropout and early
stopping train the two-moons network exactly as minidl's references do (the demo cell)."""

from __future__ import annotations

import re

import pytest
from gradeclass import Homework

pytestmark = pytest.mark.autograder

ASSIGNMENT = "hw7-regularization"
HOMEWORK = Homework(ASSIGNMENT)
SOURCE, RELEASE = HOMEWORK.source, HOMEWORK.release


def test_points_add_up_to_the_table():
    points = [
        c.metadata.nbgrader["points"]
        for c in RELEASE.cells
        if "points" in c.metadata.get("nbgrader", {})
    ]
    assert sum(points) == 25


@pytest.mark.slow
def test_solution_notebook_races_the_reference_and_matches_it(tmp_path):
    text = HOMEWORK.solved_output(tmp_path)
    gap = float(re.search(r"difference between the two validation curves: (\S+)", text).group(1))
    assert gap < 1e-10
    best = re.findall(r"best epoch (\d+)", text)
    assert len(best) == 2 and best[0] == best[1]
    for check in ["l2_penalty", "l1_penalty", "Dropout", "EarlyStopping", "k_fold"]:
        assert f"{check}: correct on the example" in text
