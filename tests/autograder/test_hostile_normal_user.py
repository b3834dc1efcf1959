"""The hostile class of test_hostile_submissions.py, graded by a normal user
(tests/autograder/normaluser.py): every attack contained with the same grade, status and reason
as root's run, the ordinary students keep exactly their grades alone. Here a normal user has no
cgroup to write: tier ``rlimit``."""

from __future__ import annotations

import json

import pytest
from gradeclass import autograder
from normaluser import instructor, user_folder  # noqa: F401 (fixtures)
from test_hostile_submissions import (  # the same checks, on this module's ``graded`` class
    grade_hostile_class,
    test_bombs_are_stopped_fast_and_big_files_stay_out_of_the_results,  # noqa: F401
    test_each_attack_gets_the_grade_it_deserves_with_its_reason,  # noqa: F401
    test_every_other_student_gets_exactly_their_grade_alone,  # noqa: F401
    test_the_class_finishes_and_every_submission_is_graded,  # noqa: F401
    test_the_gradebook_loses_nothing_and_no_attack_wrote_outside_its_sandbox,  # noqa: F401
)

pytestmark = [
    pytest.mark.autograder,
    pytest.mark.slow,
    pytest.mark.xdist_group("hostile"),  # never at the same time as root's class
]


@pytest.fixture(scope="module")
def graded(instructor, user_folder):  # noqa: F811
    return grade_hostile_class(user_folder, lambda *args: autograder(*args, user=instructor))


def test_a_normal_user_grades_sandboxed_in_the_rlimit_tier(graded, instructor):  # noqa: F811
    tier = json.loads((graded["out"] / "run.json").read_text())["sandbox"]
    # the user the tests create has no cgroup to write; a developer may have a delegated one
    assert tier == "rlimit" if instructor else tier in ("rlimit", "cgroup2")
    assert f"sandbox: {tier}" in graded["run"].stdout
    assert "warning" not in graded["run"].stderr
