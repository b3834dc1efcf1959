"""Grades for the learning-management system: ``grades.csv`` turned into the CSV it imports.

With the instructor's own gradebook (``gradebook=``), that file is filled in and nothing else of
it changes, byte for byte, so that it can be uploaded back as it is:

- **Canvas** (Grades > Export): a header ``Student, ID, SIS User ID, SIS Login ID, Section,
  <assignment> (<assignment id>), ...``, then rows without an ``ID`` (``Points Possible``, the
  posting policy) and one row per student. Canvas's import matches a student by ``ID`` (the
  user id its submission download names files with) and an assignment by its column.
- **Moodle** (the assignment's "Download grading worksheet", the template of its offline grade
  import): ``Identifier, Full name, ..., Grade, Maximum Grade, ..., Last modified (grade), ...``,
  a row per participant whose ``Identifier`` is ``Participant <id>`` (the id its download names
  folders with). Moodle's import needs the ``Identifier``, ``Grade`` and ``Last modified
  (grade)`` columns and skips a row whose grade changed in Moodle after that time.

The assignment's column is the one named ``column``, or else the Canvas column whose name
without its ``(id)`` is the assignment's (letter case, ``-``, ``_`` and spaces aside); on Moodle
the ``Grade`` column. A score is scaled to the gradebook's points possible (Canvas's ``Points
Possible`` row, Moodle's ``Maximum Grade``) when they differ from the homework's. A student of
the gradebook without a grade gets an empty cell (``missing="zero"``: 0); a student graded but
absent from the gradebook is returned in :attr:`Export.unmatched`, never dropped silently.

Without a gradebook a new file in the same documented columns is written (Moodle: ``-`` as the
last-modified time, as its own worksheet shows an ungraded row), or, as ``csv``, the plain
columns ``student, name, assignment, score, max_score, late, penalty, status``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = ("canvas", "moodle", "csv")
CANVAS_ID_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
MOODLE_ID, MOODLE_GRADE, MOODLE_MAX, MOODLE_MODIFIED = (
    "Identifier",
    "Grade",
    "Maximum Grade",
    "Last modified (grade)",
)
MOODLE_PARTICIPANT = "Participant "
CSV_COLUMNS = ("student", "name", "assignment", "score", "max_score", "late", "penalty", "status")


@dataclass(frozen=True)
class Grade:
    student: str
    name: str
    score: float
    max_score: float
    late: str
    penalty: str
    status: str


@dataclass
class Export:
    text: str
    filled: int = 0  # students whose cell got a grade
    empty: int = 0  # students of the gradebook without a grade
    unmatched: list[Grade] = field(default_factory=list)  # graded, not in the gradebook
    scale: float = 1.0


def read_grades(path: Path, assignment: str) -> list[Grade]:
    """The rows of ``grades.csv`` (:func:`autograder.grading.grade_class`) for ``assignment``."""
    with path.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["assignment"] == assignment]
    return [
        Grade(
            r["student"],
            r.get("name", ""),
            float(r["score"]),
            float(r["max_score"]),
            r.get("late", ""),
            r.get("penalty", "0"),
            r["status"],
        )
        for r in rows
    ]


def export(
    grades: list[Grade],
    assignment: str,
    lms: str,
    *,
    gradebook: str | None = None,
    column: str | None = None,
    missing: str = "empty",
) -> Export:
    """The CSV text to import into ``lms`` (see the module's doc)."""
    if lms not in FORMATS:
        raise ValueError(f"export: format {lms!r} is not one of {', '.join(FORMATS)}")
    if missing not in ("empty", "zero"):
        raise ValueError("export: missing is 'empty' or 'zero'")
    if gradebook is None:
        return Export(_new_file(grades, assignment, lms), filled=len(grades))
    if lms == "csv":
        raise ValueError("export: --gradebook is read for the canvas and moodle formats")
    return _fill(grades, assignment, lms, gradebook, column, missing)


def _new_file(grades: list[Grade], assignment: str, lms: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if lms == "canvas":
        writer.writerow([*CANVAS_ID_COLUMNS, assignment])
        top = max((g.max_score for g in grades), default=0)
        writer.writerow(["Points Possible", "", "", "", "", _number(top)])
        writer.writerows(
            [g.name or g.student, g.student, "", "", "", _number(g.score)] for g in grades
        )
    elif lms == "moodle":
        writer.writerow([MOODLE_ID, "Full name", MOODLE_GRADE, MOODLE_MAX, MOODLE_MODIFIED])
        writer.writerows(
            [f"{MOODLE_PARTICIPANT}{g.student}", g.name, _number(g.score), _number(g.max_score),
             "-"]
            for g in grades
        )  # fmt: skip
    else:
        writer.writerow(CSV_COLUMNS)
        writer.writerows(
            [g.student, g.name, assignment, _number(g.score), _number(g.max_score), g.late,
             g.penalty, g.status]
            for g in grades
        )  # fmt: skip
    return out.getvalue()


def _fill(
    grades: list[Grade], assignment: str, lms: str, text: str, column: str | None, missing: str
) -> Export:
    records = split_records(text)
    if not records:
        raise ValueError("export: the gradebook is empty")
    header = [value for value, _ in records[0]]
    if lms == "canvas":
        id_index = _index(header, "ID", "a Canvas gradebook export")
        target = (
            _index(header, column, "the gradebook")
            if column
            else _canvas_column(header, assignment)
        )
    else:
        id_index = _index(header, MOODLE_ID, "a Moodle grading worksheet")
        _index(header, MOODLE_MODIFIED, "a Moodle grading worksheet")  # its import needs it
        target = _index(header, column or MOODLE_GRADE, "the grading worksheet")
    by_id = {g.student: g for g in grades}
    points_possible = _points_possible(records, header, target, lms)
    result = Export("")
    seen = set()
    edits: list[tuple[tuple[int, int], str]] = []
    for record in records[1:]:
        cells = [value for value, _ in record]
        if len(cells) <= max(id_index, target) or not cells[id_index].strip():
            continue  # Canvas's "Points Possible" and posting-policy rows, blank lines
        student = cells[id_index].strip()
        if lms == "moodle":
            student = student.removeprefix(MOODLE_PARTICIPANT.strip()).strip()
        grade = by_id.get(student)
        if grade is None:
            value = "0" if missing == "zero" else ""
            result.empty += 1
        else:
            possible = points_possible(cells)
            scale = possible / grade.max_score if possible and grade.max_score else 1.0
            result.scale = scale
            value = _number(grade.score * scale)
            result.filled += 1
            seen.add(student)
        edits.append((record[target][1], _quoted(value)))
    result.unmatched = [g for g in grades if g.student not in seen]
    result.text = _apply(text, edits)
    return result


def _canvas_column(header: list[str], assignment: str) -> int:
    wanted = _key(assignment)
    found = [
        i
        for i, name in enumerate(header)
        if i >= len(CANVAS_ID_COLUMNS) and _key(re.sub(r"\s*\(\d+\)\s*$", "", name)) == wanted
    ]
    if len(found) != 1:
        choices = ", ".join(repr(h) for h in header[len(CANVAS_ID_COLUMNS) :])
        how = "no column" if not found else "more than one column"
        raise ValueError(
            f"export: {how} of the gradebook is named after {assignment!r}; name it with "
            f"--column (the gradebook's columns: {choices})"
        )
    return found[0]


def _points_possible(
    records: list[list[tuple[str, tuple[int, int]]]], header: list[str], target: int, lms: str
) -> Callable[[list[str]], float]:
    """A function of a student's row that gives the gradebook's points possible (0: unknown)."""
    if lms == "canvas":
        for record in records[1:]:
            cells = [value for value, _ in record]
            if cells and cells[0].strip() == "Points Possible" and len(cells) > target:
                possible = _float(cells[target])
                return lambda cells: possible
        return lambda cells: 0.0
    if MOODLE_MAX in header:
        index = header.index(MOODLE_MAX)
        return lambda cells: _float(cells[index]) if len(cells) > index else 0.0
    return lambda cells: 0.0


def _index(header: list[str], name: str, what: str) -> int:
    stripped = [h.strip().lstrip("\ufeff") for h in header]
    if name not in stripped:
        raise ValueError(f"export: {what} has no column {name!r} (its columns: {header})")
    return stripped.index(name)


def split_records(text: str) -> list[list[tuple[str, tuple[int, int]]]]:
    """The records of CSV ``text`` (RFC 4180: ``"`` quotes, ``""`` inside quotes, CRLF or LF),
    each field as (value, (start, end) of its raw text), so that one field can be replaced and
    every other byte kept."""
    records, fields = [], []
    i, n = 0, len(text)
    start = 0
    while i <= n:
        value = []
        start = i
        if i < n and text[i] == '"':
            i += 1
            while True:
                close = text.find('"', i)
                if close < 0:
                    raise ValueError("export: the gradebook has an unclosed quote")
                value.append(text[i:close])
                if text.startswith('""', close):
                    value.append('"')
                    i = close + 2
                else:
                    i = close + 1
                    break
            while i < n and text[i] not in ",\r\n":
                value.append(text[i])
                i += 1
        else:
            while i < n and text[i] not in ",\r\n":
                i += 1
            value.append(text[start:i])
        fields.append(("".join(value), (start, i)))
        if i < n and text[i] == ",":
            i += 1
            continue
        records.append(fields)
        fields = []
        if i >= n:
            break
        i += 2 if text.startswith("\r\n", i) else 1
        if i >= n:
            break
    return [r for r in records if r != [("", (r[0][1][0], r[0][1][0]))]]


def _apply(text: str, edits: list[tuple[tuple[int, int], str]]) -> str:
    for (start, end), value in sorted(edits, reverse=True):
        text = text[:start] + value + text[end:]
    return text


def _quoted(value: str) -> str:
    return f'"{value}"' if any(c in value for c in ',"\r\n') else value


def _number(value: float) -> str:
    return f"{round(value, 2):g}"


def _float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        return 0.0


def _key(name: str) -> str:
    return re.sub(r"[\s_-]+", " ", name.strip().lstrip("\ufeff")).casefold()


def write(
    out: Path,
    assignment: str,
    lms: str,
    *,
    gradebook: Path | None = None,
    column: str | None = None,
    missing: str = "empty",
) -> tuple[Path, Export]:
    """Export ``out/grades.csv`` to ``out/export/<assignment>-<lms>.csv``; return its path."""
    grades_csv = out / "grades.csv"
    if not grades_csv.is_file():
        raise FileNotFoundError(f"export: no {grades_csv} (grade the class with --out {out})")
    grades = read_grades(grades_csv, assignment)
    if not grades:
        raise ValueError(f"export: {grades_csv} has no grades of {assignment}")
    raw = gradebook.read_bytes() if gradebook else None
    bom = b"\xef\xbb\xbf" if raw and raw.startswith(b"\xef\xbb\xbf") else b""
    try:
        text = raw[len(bom) :].decode("utf-8") if raw is not None else None
    except UnicodeDecodeError:
        message = f"export: {gradebook} is not UTF-8 (export it from the LMS as UTF-8)"
        raise ValueError(message) from None
    result = export(grades, assignment, lms, gradebook=text, column=column, missing=missing)
    target = out / "export" / f"{assignment}-{lms}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(bom + result.text.encode("utf-8"))
    return target, result
