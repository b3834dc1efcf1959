"""Late policy: how late a submission is, and what fraction of its score that costs.

A course's configuration is a TOML file (``autograder/course.toml`` by default)::

    [late]                       # the policy of every assignment, unless it has its own
    policy = "per-day"           # "none", "per-hour", "per-day" or "zero-after-cutoff"
    rate = 0.1                   # per-hour/per-day: fraction of the score per hour/day started
    max_penalty = 0.5            # the most a late submission loses by the rate (default 1)
    cutoff_hours = 72            # past the deadline plus this, the score is 0 (any policy but
                                 # "none"; "zero-after-cutoff" needs it, 0 is allowed)
    flag_hours = 1               # how late a submission counts that is only marked late

    [assignments.hw1-backprop]
    deadline = 2026-10-12T23:59:00+02:00   # a TOML date-time with its offset
    late = { policy = "none" }             # optional: this assignment's own policy

:func:`penalty` is the rule: ``(hours late, fraction of the score lost)``. A submission at or
before the deadline is on time; ``per-hour`` charges ``rate`` for every hour started past it
(``per-day``: every 24 hours started), at most ``max_penalty``; past ``deadline +
cutoff_hours`` the fraction is 1. Canvas's download says only *that* a submission was late,
not when: such a submission counts as ``flag_hours`` late (by default 1 hour: the least a
late submission can cost), since the marker proves it missed the deadline and nothing more.
Without a deadline for the assignment only a late marker counts.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

COURSE_FILE = Path(__file__).with_name("course.toml")
POLICIES = ("none", "per-hour", "per-day", "zero-after-cutoff")


@dataclass(frozen=True)
class Policy:
    policy: str = "none"
    rate: float = 0.0
    max_penalty: float = 1.0
    cutoff_hours: float | None = None
    flag_hours: float = 1.0

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"late policy: {self.policy!r} is not one of {', '.join(POLICIES)}")
        if self.policy == "zero-after-cutoff" and self.cutoff_hours is None:
            raise ValueError("late policy: 'zero-after-cutoff' needs cutoff_hours")
        if not (0 <= self.rate <= 1 and 0 <= self.max_penalty <= 1):
            raise ValueError("late policy: rate and max_penalty are fractions between 0 and 1")
        if self.flag_hours <= 0 or (self.cutoff_hours is not None and self.cutoff_hours < 0):
            raise ValueError("late policy: flag_hours must be positive, cutoff_hours not negative")

    def describe(self) -> str:
        """The policy in one phrase, for a feedback page."""
        cutoff = (
            f"; no points more than {self.cutoff_hours:g} h after the deadline"
            if self.cutoff_hours is not None
            else ""
        )
        if self.policy == "none":
            return "no penalty for late submissions"
        if self.policy == "zero-after-cutoff":
            return f"no points more than {self.cutoff_hours:g} h after the deadline"
        unit = "hour" if self.policy == "per-hour" else "day"
        return f"{100 * self.rate:g} % of the score per started {unit} late{cutoff}"


@dataclass(frozen=True)
class AssignmentRule:
    """An assignment's deadline (``None``: not configured) and late policy."""

    deadline: datetime | None
    policy: Policy


def penalty(
    policy: Policy, submitted: datetime | bool | None, deadline: datetime | None
) -> tuple[float | None, float]:
    """``(hours late, fraction of the score lost)`` of a submission made at ``submitted`` (a
    time), or only marked late (``True``) or not (``False``), or of unknown time (``None``).
    Hours late are ``None`` when unknown, 0 when on time."""
    if submitted is True:
        hours = policy.flag_hours
    elif isinstance(submitted, datetime) and deadline is not None:
        if submitted.tzinfo is None or deadline.tzinfo is None:
            raise ValueError("late policy: times need their UTC offset to be compared")
        hours = max(0.0, (submitted - deadline).total_seconds() / 3600)
    elif submitted is False:
        hours = 0.0
    else:
        return None, 0.0
    if hours == 0 or policy.policy == "none":
        return hours, 0.0
    if policy.cutoff_hours is not None and hours > policy.cutoff_hours:
        return hours, 1.0
    periods = {"per-hour": math.ceil(hours), "per-day": math.ceil(hours / 24)}.get(policy.policy, 0)
    return hours, min(policy.max_penalty, policy.rate * periods)


def load(path: Path = COURSE_FILE) -> dict[str, AssignmentRule]:
    """Every configured assignment's rule, from a course file (see the module's doc); the key
    ``"*"`` is the rule of an assignment the file does not name (no deadline)."""
    data = tomllib.loads(path.read_text()) if path.is_file() else {}
    default = _policy(data.get("late", {}), path)
    rules = {"*": AssignmentRule(None, default)}
    for name, entry in data.get("assignments", {}).items():
        deadline = entry.get("deadline")
        if deadline is not None and not (isinstance(deadline, datetime) and deadline.tzinfo):
            raise ValueError(
                f"{path}: assignments.{name}.deadline must be a date-time with its UTC offset "
                "(2026-10-12T23:59:00+02:00)"
            )
        own = entry.get("late")
        rules[name] = AssignmentRule(deadline, _policy(own, path) if own else default)
    return rules


def rule_for(rules: dict[str, AssignmentRule], assignment: str) -> AssignmentRule:
    return rules.get(assignment, rules["*"])


def _policy(table: dict, path: Path) -> Policy:
    try:
        return Policy(**table)
    except TypeError as error:
        raise ValueError(f"{path}: a late policy has an unknown key ({error})") from None
