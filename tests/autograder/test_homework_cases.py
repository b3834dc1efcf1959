"""Every homework, graded as one class through the command line: the instructor's solution gets
full marks, the blank release gets zero and so do arbitrary answers (every function returns
``object()``: no point for a side condition alone), each correct solution written another way
(``tests/autograder/autograder_cases/<assignment>/correct_*.cells``) gets full marks too, and
each typical mistake (every other ``.cells`` file there) loses exactly the points of the tests
it names, with the hint it names in the feedback."""

from __future__ import annotations

import pytest
from gradeclass import (
    CASES,
    Homework,
    autograder,
    expectations,
    feedback_messages,
    read_grades,
    write_zip,
)

ASSIGNMENTS = sorted(p.name for p in CASES.iterdir() if p.is_dir())
CASE_IDS = [(a, c.stem) for a in ASSIGNMENTS for c in sorted((CASES / a).glob("*.cells"))]
MISTAKES = [case for case in CASE_IDS if not case[1].startswith("correct_")]
CORRECT = [case for case in CASE_IDS if case[1].startswith("correct_")]
CELL_TIMEOUT = 30


def grouped(values, assignment_of):
    """One xdist group per assignment, so that each class is graded once, by one worker."""
    return [
        pytest.param(v, marks=pytest.mark.xdist_group(f"class-{assignment_of(v)}")) for v in values
    ]


pytestmark = [pytest.mark.autograder, pytest.mark.slow]

_graded: dict[str, dict] = {}


def graded(assignment: str, tmp_path_factory) -> dict:
    if assignment not in _graded:
        homework = Homework(assignment)
        folder = tmp_path_factory.mktemp(f"class-{assignment}")
        archive = write_zip(folder / "class.zip", homework.case_notebooks())
        out = folder / "out"
        autograder("grade", assignment, archive, "--out", out, "--cell-timeout", CELL_TIMEOUT)
        _graded[assignment] = {"homework": homework, "out": out, "grades": read_grades(out)}
    return _graded[assignment]


@pytest.mark.parametrize("assignment", grouped(ASSIGNMENTS, lambda a: a))
def test_solution_gets_full_marks_and_blank_gets_zero(assignment, tmp_path_factory):
    run = graded(assignment, tmp_path_factory)
    homework, grades = run["homework"], run["grades"]
    assert homework.cases, f"{assignment} has no typical mistakes in {CASES / assignment}"
    solution = grades["solution"]
    assert float(solution["score"]) == homework.max_score, homework.failed_tests(solution)
    assert solution["status"] == "graded"
    assert grades["blank"]["score"] == "0" and grades["blank"]["status"] == "graded"
    messages = feedback_messages(run["out"], "blank", homework.points)
    assert set(messages) == set(homework.points)


@pytest.mark.parametrize("assignment", grouped(ASSIGNMENTS, lambda a: a))
def test_arbitrary_answers_earn_no_more_than_the_blank(assignment, tmp_path_factory):
    run = graded(assignment, tmp_path_factory)
    grades, homework = run["grades"], run["homework"]
    earned = set(homework.points) - homework.failed_tests(grades["arbitrary"])
    assert float(grades["arbitrary"]["score"]) <= float(grades["blank"]["score"]), earned


@pytest.mark.parametrize("case", grouped(CORRECT, lambda case: case[0]), ids="/".join)
def test_a_correct_solution_written_another_way_gets_full_marks(case, tmp_path_factory):
    assignment, name = case
    run = graded(assignment, tmp_path_factory)
    row, homework = run["grades"][name], run["homework"]
    assert float(row["score"]) == homework.max_score, homework.failed_tests(row)


@pytest.mark.parametrize("case", grouped(MISTAKES, lambda case: case[0]), ids="/".join)
def test_typical_mistake_loses_exactly_its_tests_with_the_right_hint(case, tmp_path_factory):
    assignment, name = case
    run = graded(assignment, tmp_path_factory)
    homework = run["homework"]
    expected = expectations(CASES / assignment / f"{name}.cells")
    assert expected, f"{name}.cells names no test it must fail"
    row = run["grades"][name]
    assert homework.failed_tests(row) == set(expected)
    assert float(row["score"]) == homework.max_score - sum(homework.points[t] for t in expected)
    messages = feedback_messages(run["out"], name, homework.points)
    for test, hint in expected.items():
        assert hint in messages[test], (test, messages[test])
