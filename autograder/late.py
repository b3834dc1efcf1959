"""Late submissions: a course's late policy and the points it takes off a late submission.

A policy is one of

- ``none``: lateness is recorded, nothing is taken off;
- ``per_hour`` / ``per_day``: ``rate`` of the maximum score is taken off per started hour / day
  after the deadline (``rate = 0.1``, 2 h 10 min late: three started hours, 30 %);
- ``zero_after``: no penalty up to ``cutoff_hours`` after the deadline, every point after it.

For ``per_hour`` and ``per_day`` a ``cutoff_hours`` too means every point is lost after it. The
penalty never exceeds the points the submission earned: a late score is never negative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

KINDS = ("none", "per_hour", "per_day", "zero_after")
_UNIT_SECONDS = {"per_hour": 3600.0, "per_day": 86400.0}


@dataclass(frozen=True)
class LatePolicy:
    kind: str = "none"
    rate: float = 0.0  # per_hour / per_day: fraction of the maximum score per started unit
    cutoff_hours: float | None = None  # every point is lost past it

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"late policy: {self.kind!r} is not one of {', '.join(KINDS)}")
        if not 0 <= self.rate <= 1:
            raise ValueError(f"late policy: rate {self.rate} is not a fraction in [0, 1]")
        if self.kind == "zero_after" and self.cutoff_hours is None:
            raise ValueError("late policy: zero_after needs cutoff_hours")
        if self.cutoff_hours is not None and self.cutoff_hours < 0:
            raise ValueError(f"late policy: cutoff_hours {self.cutoff_hours} is negative")

    def describe(self) -> str:
        """The policy in one phrase, for the feedback page."""
        cutoff = (
            f"; no points more than {self.cutoff_hours:g} h after the deadline"
            if self.cutoff_hours is not None
            else ""
        )
        if self.kind == "none":
            return "no penalty for late submissions"
        if self.kind == "zero_after":
            return f"no points more than {self.cutoff_hours:g} h after the deadline"
        unit = "hour" if self.kind == "per_hour" else "day"
        return f"{100 * self.rate:g} % of the points per started {unit} late{cutoff}"


def seconds_late(submitted_at: datetime, deadline: datetime) -> float:
    """How long after the deadline the submission came (0 if on time); both timezone-aware."""
    return max(0.0, (submitted_at - deadline).total_seconds())


def penalty(
    policy: LatePolicy, submitted_at: datetime, deadline: datetime, score: float, max_score: float
) -> float:
    """The points taken off a submission of ``score`` out of ``max_score`` submitted at
    ``submitted_at`` for a ``deadline``."""
    late = seconds_late(submitted_at, deadline)
    if late == 0 or policy.kind == "none":
        return 0.0
    if policy.cutoff_hours is not None and late > 3600 * policy.cutoff_hours:
        return score
    if policy.kind == "zero_after":
        return 0.0
    units = math.ceil(late / _UNIT_SECONDS[policy.kind])
    return min(score, units * policy.rate * max_score)
