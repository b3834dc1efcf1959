"""The instructor's source notebooks: reading them, and the cell roles the pipeline relies on.

A source is ``solutions/<assignment>/<assignment>.md`` (jupytext MyST) or ``.ipynb``. In a ``.md``
source a cell's nbgrader metadata may be short: ``{grade_id: x, solution: true}`` for an answer
cell, ``{grade_id: x, points: 2}`` for a test cell, ``{grade_id: x, locked: true}`` for a
read-only cell; :func:`read_source` expands it to nbgrader's full schema. Cell ids are made
deterministic (the grade id, else ``<assignment>-<index>``), so a release is reproducible and a
cell a student added (a fresh random id) is told apart from a released one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jupytext
import nbformat
from nbformat import NotebookNode

DEMO_TAG = "demo"  # cells the grader skips: ungraded demonstrations that may use the references


def source_path(solutions_dir: Path, assignment: str) -> Path:
    """``solutions/<assignment>/<assignment>.md`` or ``.ipynb``, whichever exists."""
    for suffix in (".md", ".ipynb"):
        path = solutions_dir / assignment / f"{assignment}{suffix}"
        if path.exists():
            return path
    raise FileNotFoundError(
        f"no source for assignment {assignment!r}: expected "
        f"{solutions_dir / assignment / assignment}.md or .ipynb"
    )


def assignments(solutions_dir: Path) -> list[str]:
    """The assignments that have a source notebook, sorted."""
    return sorted(
        d.name
        for d in solutions_dir.iterdir()
        if d.is_dir() and any((d / f"{d.name}{s}").exists() for s in (".md", ".ipynb"))
    )


def read_source(path: Path) -> NotebookNode:
    """The source notebook with full nbgrader metadata, deterministic ids and no outputs."""
    nb = jupytext.read(path) if path.suffix == ".md" else nbformat.read(path, as_version=4)
    nb.metadata.pop("jupytext", None)
    assignment = path.stem
    for index, cell in enumerate(nb.cells):
        short = cell.metadata.get("nbgrader")
        if short is not None:
            cell.metadata["nbgrader"] = _full_nbgrader_metadata(short, cell.cell_type)
        cell["id"] = short["grade_id"] if short else f"{assignment}-{index:02d}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
    return nb


def _full_nbgrader_metadata(short: dict[str, Any], cell_type: str) -> dict[str, Any]:
    grade = "points" in short
    full: dict[str, Any] = {
        "grade": grade,
        "grade_id": short["grade_id"],
        "locked": bool(short.get("locked", grade)),
        "schema_version": 3,
        "solution": bool(short.get("solution", False)),
        "task": False,
    }
    if grade:
        full["points"] = short["points"]
    if cell_type == "markdown" and grade:
        full["cell_type"] = "markdown"
    return full


def nbgrader_metadata(cell: NotebookNode) -> dict[str, Any]:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_answer(cell: NotebookNode) -> bool:
    """A cell the student fills in (an nbgrader solution cell)."""
    return bool(nbgrader_metadata(cell).get("solution"))


def is_test(cell: NotebookNode) -> bool:
    """An autograded test cell (a code cell with points)."""
    meta = nbgrader_metadata(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def is_demo(cell: NotebookNode) -> bool:
    return DEMO_TAG in cell.get("metadata", {}).get("tags", [])


def grade_id(cell: NotebookNode) -> str | None:
    return nbgrader_metadata(cell).get("grade_id")


def test_title(cell: NotebookNode) -> str:
    """A test's title for feedback: the first comment line of its *released* source."""
    first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
    return first.lstrip("# ").strip() or str(grade_id(cell))


def blocked_references(nb: NotebookNode) -> list[str]:
    """The reference implementations locked while grading (notebook metadata
    ``autograder.blocked``)."""
    return list(nb.metadata.get("autograder", {}).get("blocked", []))
