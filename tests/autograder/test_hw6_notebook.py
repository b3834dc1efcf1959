"""Homework 6 (adaptive learning rates): the release is current and leaks nothing, and the
solved notebook runs end to end, where the student's four rules train the digits MLP exactly as
minidl's reference rules do. Grading of the solution, the blank release and every typical mistake
is tests/autograder/test_homework_cases.py's job."""

from __future__ import annotations

import re

import pytest
from gradeclass import REPO, Homework

from autograder.notebooks import grade_id, is_answer, is_test
from autograder.release import leaked_secrets, secret_lines

pytestmark = pytest.mark.autograder

ASSIGNMENT = "hw6-adaptive"
HOMEWORK = Homework(ASSIGNMENT)
SOURCE, RELEASE = HOMEWORK.source, HOMEWORK.release


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
    text = HOMEWORK.solved_output(tmp_path)
    for rule in ["adagrad", "rmsprop", "adadelta", "adam"]:
        assert f"{rule}: correct on the example" in text
    gap = float(re.search(r"curves and the reference's: (\S+)", text).group(1))
    assert gap < 1e-10
