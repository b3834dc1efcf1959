"""Homework 8 (Tricks of the trade) as a student who solved it sees it: every cell runs, the
hidden tests leak nowhere into the release, and the student's pieces train and tune the digits
network exactly as minidl's reference does (the demo cells are not graded)."""

from __future__ import annotations

import re

import pytest
from gradeclass import REPO, Homework

from autograder.release import leaked_secrets, secret_lines

pytestmark = pytest.mark.autograder

ASSIGNMENT = "hw8-tricks"
HOMEWORK = Homework(ASSIGNMENT)
SOURCE, RELEASE = HOMEWORK.source, HOMEWORK.release


def test_no_solution_or_hidden_test_leaks_into_the_exercises():
    secrets = secret_lines(SOURCE, RELEASE)
    assert any("the momentum weights are swapped" in line for line in secrets)
    assert not leaked_secrets(REPO / "exercises" / ASSIGNMENT, secrets)


@pytest.mark.slow
def test_solution_notebook_races_the_reference_and_ties(tmp_path):
    text = HOMEWORK.solved_output(tmp_path)
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
