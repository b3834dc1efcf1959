"""Release: regenerate the student notebooks ``exercises/<a>/<a>.ipynb`` from ``solutions/``.

Each source goes through nbgrader's ``generate_assignment`` in a temporary course directory,
which removes the solution regions and hidden tests and locks the test cells.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import nbformat

from autograder.course import Course
from autograder.notebooks import assignments, read_source, source_path

REPO = Path(__file__).resolve().parent.parent
EXERCISES = REPO / "exercises"


def release(
    names: list[str] | None = None,
    *,
    solutions: Path = REPO / "solutions",
    exercises: Path = EXERCISES,
) -> list[Path]:
    """Release ``names`` (default: every assignment in ``solutions``); return the written files."""
    written = []
    for name in names or assignments(solutions):
        with tempfile.TemporaryDirectory() as tmp:
            released = Course(Path(tmp)).generate_assignment(
                name, read_source(source_path(solutions, name))
            )
        path = exercises / name / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(released, path)
        written.append(path)
    return written
