"""Feedback for one student: a self-contained HTML page (no scripts, no remote resources).

Per test it shows the title (the first line of the *released* test cell), the points, passed or
failed, and the message: the exception's type and message only. Tracebacks are never shown: an
IPython traceback quotes the source of the failing cell, which for a grader's test is hidden.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

MESSAGE_LIMIT = 600

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .4rem .6rem; text-align: left;
         vertical-align: top; }
td.points { white-space: nowrap; }
.passed { color: #1a7f37; font-weight: bold; }
.failed { color: #cf222e; font-weight: bold; }
.message { font-family: ui-monospace, monospace; font-size: .9em; white-space: pre-wrap; }
.notes { background: #fff8c5; padding: .5rem 1rem; border-radius: .3rem; }
"""


@dataclass(frozen=True)
class TestResult:
    grade_id: str
    title: str
    points: float
    max_points: float
    message: str  # "" when passed

    @property
    def passed(self) -> bool:
        return self.points >= self.max_points


def render(
    *,
    student: str,
    assignment: str,
    name: str = "",
    score: float,
    max_score: float,
    tests: list[TestResult],
    notes: list[str],
) -> str:
    """The feedback page; every piece of text is escaped. ``name`` is the student's name where
    the learning-management system gives one (the page then says both)."""
    e = html.escape
    who = f"{name} ({student})" if name else student
    rows = "\n".join(
        f"<tr><td>{e(t.title)}</td><td class='points'>{t.points:g} / {t.max_points:g}</td>"
        f"<td class='{'passed' if t.passed else 'failed'}'>"
        f"{'passed' if t.passed else 'failed'}</td>"
        f"<td class='message'>{e(_shorten(t.message))}</td></tr>"
        for t in tests
    )
    notes_html = (
        "<div class='notes'><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul></div>"
        if notes
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{e(assignment)}: feedback for {e(who)}</title>
<style>{STYLE}</style></head>
<body>
<h1>{e(assignment)}: feedback for {e(who)}</h1>
<p><strong>Score: {score:g} / {max_score:g}</strong></p>
{notes_html}
<table>
<thead><tr><th>test</th><th>points</th><th>result</th><th>message</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""


def _shorten(message: str) -> str:
    return message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 1] + "…"
