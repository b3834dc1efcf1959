"""The class file and the late policy of the hub commands, without a hub (fast)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from autograder import hub
from autograder.late import Policy, penalty

pytestmark = pytest.mark.autograder

DEADLINE = datetime(2027, 1, 15, 23, 59, tzinfo=UTC)


def late_by(**delta: float) -> datetime:
    return DEADLINE + timedelta(**delta)


@pytest.mark.parametrize(
    ("policy", "submitted_at", "fraction"),
    [
        (Policy("per-hour", 0.1), late_by(hours=-1), 0),  # on time
        (Policy("per-hour", 0.1), late_by(seconds=5), 0.1),  # one started hour
        (Policy("per-hour", 0.1), late_by(hours=2, minutes=10), 0.3),  # three
        (Policy("per-hour", 0.1), late_by(hours=30), 1),  # never more than the score
        (Policy("per-day", 0.2), late_by(hours=25), 0.4),  # two started days
        (Policy("per-day", 0.2, cutoff_hours=48), late_by(hours=49), 1),
        (Policy("zero-after-cutoff", cutoff_hours=24), late_by(hours=23), 0),
        (Policy("zero-after-cutoff", cutoff_hours=24), late_by(hours=25), 1),
        (Policy("none"), late_by(days=30), 0),
    ],
)
def test_penalty(policy, submitted_at, fraction):
    assert penalty(policy, submitted_at, DEADLINE)[1] == pytest.approx(fraction)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"policy": "per_week"}, "not one of"),
        ({"policy": "per-hour", "rate": 1.5}, "fractions"),
        ({"policy": "zero-after-cutoff"}, "needs cutoff_hours"),
        ({"policy": "per-day", "rate": 0.1, "cutoff_hours": -1}, "not negative"),
    ],
)
def test_bad_policies_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Policy(**kwargs)


CLASS = """course_id = "c"
instructor = "teacher"
students = ["alice", "bob"]
exchange = "exchange"
course_dir = "course"
hub_state = "state"
"""


def test_the_example_class_file_loads():
    course = hub.ClassConfig.load(hub.DEPLOY / "class.toml")
    assert course.late_policy.policy in ("none", "per-hour", "per-day", "zero-after-cutoff")
    assert all(d.tzinfo is not None for d in course.deadlines.values())


def test_a_class_file_relative_folders_and_defaults(tmp_path: Path):
    (tmp_path / "class.toml").write_text(CLASS)
    course = hub.ClassConfig.load(tmp_path / "class.toml")
    assert course.exchange == tmp_path / "exchange"
    assert (course.group, course.port, course.bind) == ("c", 8000, "127.0.0.1")
    assert course.late_policy == Policy("none")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (CLASS.replace('instructor = "teacher"\n', ""), "'instructor' is missing"),
        (CLASS.replace('"bob"', '"bob smith"'), "not a valid Unix user name"),
        (CLASS + "[deadlines]\nhw1-backprop = 2027-01-15T23:59:00\n", "UTC offset"),
        (CLASS + '[late]\npolicy = "per-hour"\nrat = 0.1\n', r"\[late\]"),
        (CLASS + "students = [", "class file"),
    ],
)
def test_a_bad_class_file_says_what_is_wrong(tmp_path: Path, text: str, message: str):
    (tmp_path / "class.toml").write_text(text)
    with pytest.raises(ValueError, match=message):
        hub.ClassConfig.load(tmp_path / "class.toml")


def test_release_refuses_a_notebook_with_a_solution(tmp_path: Path):
    (tmp_path / "class.toml").write_text(CLASS)
    course = hub.ClassConfig.load(tmp_path / "class.toml")
    exercises = tmp_path / "exercises"
    (exercises / "hw1-backprop").mkdir(parents=True)
    (exercises / "hw1-backprop" / "hw1-backprop.ipynb").write_text('{"x": "### BEGIN SOLUTION"}')
    with pytest.raises(ValueError, match="holds a solution or a hidden test"):
        hub.release(course, "hw1-backprop", exercises=exercises)
    assert not course.exchange.exists()
