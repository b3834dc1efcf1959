"""Homework 2 (gradient descent): the release matches the solution, leaks nothing, and the solved
notebook's trainers give exactly the numbers of minidl.train.train in the race of its demo."""

from __future__ import annotations

import re

import pytest
from gradeclass import REPO, Homework

from autograder.notebooks import is_answer, is_test
from autograder.release import leaked_secrets, secret_lines

pytestmark = pytest.mark.autograder

ASSIGNMENT = "hw2-gradient-descent"
HOMEWORK = Homework(ASSIGNMENT)
SOURCE, RELEASE = HOMEWORK.source, HOMEWORK.release


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
    text = HOMEWORK.solved_output(tmp_path)
    gaps = [float(g) for g in re.findall(r"largest gap to minidl.train (\S+)", text)]
    assert len(gaps) == 3 and max(gaps) < 1e-10
    for trainer, updates in [("full batch", 60), ("stochastic", 1500), ("mini-batch (32)", 48)]:
        assert re.search(rf"{re.escape(trainer)}: {updates} updates", text), trainer
