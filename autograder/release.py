"""Release: regenerate the student notebooks ``exercises/<a>/<a>.ipynb`` from ``solutions/``.

Each source goes through nbgrader's ``generate_assignment`` in a temporary course directory,
which removes the solution regions and hidden tests and locks the test cells.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import nbformat

from autograder.course import Course
from autograder.notebooks import assignments, is_answer, is_test, read_source, source_path

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


SHARED_HEADERS = ("import ", "from ", "def ", "class ", "@")
"""Beginnings of lines that are never secret: imports, function and class headers, decorators."""


def secret_lines(source_nb: nbformat.NotebookNode, release_nb: nbformat.NotebookNode) -> set[str]:
    """Lines of the solution regions and hidden tests that a release (or the built book) must
    not contain: every line of 20 characters or more of an answer or test cell of the source that
    the release does not show (shorter lines, like ``return grad``, are ordinary code), except
    imports and ``def``/``class`` headers, which any notebook may share (``def forward(self,
    x):``) and which give nothing away."""
    released = {line.strip() for c in release_nb.cells for line in c.source.splitlines()}
    secrets = {"BEGIN SOLUTION", "BEGIN HIDDEN TESTS"}
    for cell in source_nb.cells:
        if is_answer(cell) or is_test(cell):
            secrets |= {
                line.strip()
                for line in cell.source.splitlines()
                if len(line.strip()) >= 20
                and line.strip() not in released
                and not line.strip().startswith(SHARED_HEADERS)
            }
    return secrets


def leaked_secrets(root: Path, secrets: set[str]) -> dict[Path, list[str]]:
    """The files under ``root`` that contain any of ``secrets``, with what they contain."""
    found = {}
    for path in root.rglob("*"):
        if path.suffix in (".ipynb", ".html", ".md", ".txt", ".js", ".json", ".py"):
            text = path.read_text(errors="replace")
            leaked = [s for s in secrets if s in text]
            if leaked:
                found[path] = leaked
    return found
