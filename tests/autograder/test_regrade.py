"""Regrading after a fix of a test (issue 23), and the unit of work "grade this submission".

A tiny assignment (one answer, ``double``; a hidden test and a visible one) is written into a
temporary ``solutions/``. Its first hidden test has the instructor's mistake: it checks ``double``
on zeros only, so a student whose ``double`` returns its input passes it. Fixing it must regrade
the class, change that student's score and say so in the summary; a re-run with nothing changed
must reuse every stored result.
"""

from __future__ import annotations

import base64
import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from gradeclass import autograder, read_grades

from autograder.check_rewriting import plan
from autograder.course import Course
from autograder.grading import GRADING_LOG, AssignmentTasks, reference_run
from autograder.notebooks import read_source
from autograder.pipeline import GradingTask, Status, StudentResult, grade_submission, kernel_setup
from autograder.runner import Limits
from autograder.submissions import Submission
from autograder.version import assignment_version

pytestmark = [pytest.mark.autograder, pytest.mark.xdist_group("regrade")]

ASSIGNMENT = "tiny-double"
SETUP = "import numpy as np\nfrom course.checks import check_array"
ANSWER = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"
HIDDEN_TEST = """# Grader's test (1 point): double on a vector.
### BEGIN HIDDEN TESTS
_t_x = {x}
check_array("double(x)", double(_t_x.copy()), 2 * _t_x)
### END HIDDEN TESTS"""
MISTAKE, FIX = "np.zeros(3)", "np.arange(3.0)"  # on zeros, returning x is right too
VISIBLE_TEST = """# Test (1 point): double(1) is 2.
check_array("double(1)", double(np.ones(1)), np.full(1, 2.0))"""
STUDENTS = {
    "correct": "def double(x):\n    return x + x",
    "identity": "def double(x):\n    return x",
}


def write_assignment(solutions: Path, hidden_x: str) -> Path:
    """``solutions/tiny-double/tiny-double.ipynb`` with the hidden test on ``hidden_x``."""
    cells = [
        (nbformat.v4.new_code_cell(SETUP), {"grade_id": "setup", "locked": True}),
        (nbformat.v4.new_code_cell(ANSWER), {"grade_id": "double", "solution": True}),
        (
            nbformat.v4.new_code_cell(HIDDEN_TEST.format(x=hidden_x)),
            {"grade_id": "double_hidden", "points": 1},
        ),
        (nbformat.v4.new_code_cell(VISIBLE_TEST), {"grade_id": "double_one", "points": 1}),
    ]
    for cell, nbgrader in cells:
        cell.metadata["nbgrader"] = nbgrader
    nb = nbformat.v4.new_notebook(
        cells=[cell for cell, _ in cells],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    path = solutions / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def student_notebook(answer: str) -> bytes:
    cell = nbformat.v4.new_code_cell(answer)
    cell.metadata["nbgrader"] = {"grade_id": "double", "solution": True, "grade": False}
    return nbformat.writes(nbformat.v4.new_notebook(cells=[cell])).encode()


def write_class(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for student, answer in STUDENTS.items():
        (folder / f"{student}.ipynb").write_bytes(student_notebook(answer))
    return folder


def grading_log(out: Path) -> list[dict[str, str]]:
    with (out / "course" / GRADING_LOG).open() as handle:
        return list(csv.DictReader(handle))


# --- the assignment's version -----------------------------------------------------------------


def test_assignment_version_changes_with_the_source_the_framework_and_the_grader(tmp_path):
    repo, solutions = tmp_path / "repo", tmp_path / "solutions"
    for name in ("minidl", "course", "autograder"):
        (repo / name).mkdir(parents=True)
        (repo / name / "__init__.py").write_text(f"# {name}\n")
    write_assignment(solutions, MISTAKE)
    first = assignment_version(solutions, ASSIGNMENT, repo=repo)
    assert len(first) == 64 and first == assignment_version(solutions, ASSIGNMENT, repo=repo)

    # Caches, hidden files and the grader's non-code files do not count.
    (repo / "minidl" / "__pycache__").mkdir()
    (repo / "minidl" / "__pycache__" / "layers.cpython-311.pyc").write_bytes(b"\0")
    (solutions / ASSIGNMENT / ".ipynb_checkpoints").mkdir()
    (solutions / ASSIGNMENT / ".ipynb_checkpoints" / "x.ipynb").write_text("{}")
    (repo / "autograder" / "README.md").write_text("notes")
    assert assignment_version(solutions, ASSIGNMENT, repo=repo) == first

    seen = {first}
    for what, change in (
        ("a hidden test fixed", lambda: write_assignment(solutions, FIX)),
        (
            "a data file of the assignment",
            lambda: (solutions / ASSIGNMENT / "x.csv").write_text("1"),
        ),
        ("the framework", lambda: (repo / "minidl" / "layers.py").write_text("x = 1\n")),
        ("the course's checks", lambda: (repo / "course" / "checks.py").write_text("y = 1\n")),
        ("the grader", lambda: (repo / "autograder" / "grading.py").write_text("z = 1\n")),
    ):
        change()
        version = assignment_version(solutions, ASSIGNMENT, repo=repo)
        assert version not in seen, what
        seen.add(version)

    with pytest.raises(FileNotFoundError, match="no folder"):
        assignment_version(solutions, "hw0-missing", repo=repo)


# --- the unit of work -------------------------------------------------------------------------


def test_a_grading_task_is_plain_data_and_grades_a_submission_alone(tmp_path):
    """The task survives JSON (as on a queue to another machine); ``grade_submission`` needs no
    course directory and no gradebook, starts its own kernel, and returns a plain-data record."""
    solutions = tmp_path / "solutions"
    source = read_source(write_assignment(solutions, FIX))
    release = Course(tmp_path / "course").generate_assignment(ASSIGNMENT, source)
    limits = Limits(cell_timeout=30, total_timeout=120)
    checks = plan(source)
    records = reference_run(source, checks, kernel_setup(source), limits)
    version = assignment_version(solutions, ASSIGNMENT)
    tasks = AssignmentTasks(ASSIGNMENT, version, source, release, checks, limits)
    shutil.rmtree(tmp_path / "course")  # the unit of work never reads it

    results = {}
    for student, answer in {**STUDENTS, "broken": None}.items():
        content = student_notebook(answer) if answer else b'{"cells": [{"sou'
        task = tasks.task(Submission(student, content, ("a note on the file",)), records)
        task = GradingTask.from_dict(json.loads(json.dumps(task.to_dict())))
        assert base64.b64decode(task.submission) == content
        result = grade_submission(task)
        record = json.loads(json.dumps(result.to_dict()))
        assert StudentResult.from_dict(record) == result
        results[student] = result

    correct, identity, broken = results["correct"], results["identity"], results["broken"]
    assert (correct.status, correct.score, correct.max_score) == (Status.GRADED, 2, 2)
    assert correct.version == version and correct.notes[0] == "a note on the file"
    assert [t.grade_id for t in identity.tests] == ["double_hidden", "double_one"]
    assert identity.score == 0 and "double(x)" in identity.tests[0].message
    assert nbformat.from_dict(identity.notebook).cells[1].source == STUDENTS["identity"]
    assert (broken.status, broken.score, broken.notebook) == (Status.UNREADABLE, 0, None)
    assert "not a readable notebook" in broken.notes[0]


# --- regrading through the command line -------------------------------------------------------


@pytest.mark.slow
def test_a_fixed_hidden_test_regrades_the_class_and_lists_the_changed_scores(tmp_path):
    solutions, out = tmp_path / "solutions", tmp_path / "out"
    submissions = write_class(tmp_path / "class")
    grade = ["grade", ASSIGNMENT, submissions, "--out", out, "--solutions", solutions]

    write_assignment(solutions, MISTAKE)
    mistaken = assignment_version(solutions, ASSIGNMENT)
    autograder(*grade)
    before = read_grades(out)
    assert {s: before[s]["score"] for s in STUDENTS} == {"correct": "2", "identity": "1"}

    again = autograder(*grade)  # nothing changed: every stored result is reused
    assert "0 graded now, 2 unchanged" in again.stdout
    assert "score changed" not in again.stdout and "regraded" not in again.stdout
    assert read_grades(out) == before

    write_assignment(solutions, FIX)
    fixed = assignment_version(solutions, ASSIGNMENT)
    assert fixed != mistaken
    regrade = autograder(*grade)
    assert "2 graded now, 0 unchanged" in regrade.stdout
    assert f"changed since {mistaken[:12]}: 2 graded before were regraded" in regrade.stdout
    changed = regrade.stdout.split("score changed since the last run (old → new):\n")[1]
    assert changed.splitlines()[0] == "  identity: 1 → 0"
    assert "correct:" not in changed  # regraded, same score: not listed
    after = read_grades(out)
    assert after["identity"]["score"] == "0" and after["correct"]["score"] == "2"
    assert after["identity"]["double_hidden"] == "0" and before["identity"]["double_hidden"] == "1"

    log = [(row["student"], row["version"], row["score"]) for row in grading_log(out)]
    assert sorted(log[:2]) == [("correct", mistaken, "2"), ("identity", mistaken, "1")]
    assert sorted(log[2:]) == [("correct", fixed, "2"), ("identity", fixed, "0")]  # not the rerun
    result = out / "course" / "autograded" / "identity" / ASSIGNMENT / "result.json"
    assert json.loads(result.read_text())["version"] == fixed
