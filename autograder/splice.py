"""Make submissions from the released notebook and small files of replacement cells.

A ``.cells`` file holds sections ``# %% cell: <grade_id>``, each the full new source of the cell
with that nbgrader id (an answer, or a test cell a student tampered with). The other answer cells
get the instructor's solution, or stay blank if the file's first line is ``# start: blank``.
The demo class and the tests' typical mistakes are written this way, so they follow the solution
when it changes.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder.notebooks import grade_id, is_answer

SECTION = re.compile(r"^# %% cell: (\S+)\s*$", re.MULTILINE)
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def parse_cells(text: str) -> tuple[dict[str, str], bool]:
    """The replacement sources by grade id, and whether to start from the blank release."""
    blank = text.startswith("# start: blank")
    parts = SECTION.split(text)
    return {
        name: body.strip("\n") for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }, blank


def solution_source(cell: NotebookNode) -> str:
    """An answer cell's instructor solution, without nbgrader's markers."""
    lines = cell.source.splitlines()
    return "\n".join(line for line in lines if line.strip() not in SOLUTION_MARKERS)


def submission(
    release: NotebookNode,
    source: NotebookNode,
    replacements: dict[str, str],
    *,
    blank: bool = False,
) -> NotebookNode:
    """The release with answers filled in (solution or blank) and ``replacements`` applied."""
    solutions = {grade_id(c): solution_source(c) for c in source.cells if is_answer(c)}
    unknown = set(replacements) - {grade_id(c) for c in release.cells}
    if unknown:
        raise ValueError(f"submission: no cells with grade ids {sorted(unknown)} in the release")
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        name = grade_id(cell)
        if name in replacements:
            cell.source = replacements[name]
        elif is_answer(cell) and not blank:
            cell.source = solutions[name]
    return nb


def submission_from_file(release: NotebookNode, source: NotebookNode, path: Path) -> bytes:
    """The submission a ``.cells`` file describes, as notebook bytes."""
    replacements, blank = parse_cells(path.read_text())
    nb = submission(release, source, replacements, blank=blank)
    return nbformat.writes(nb).encode()
