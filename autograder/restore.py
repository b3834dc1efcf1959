"""Rebuild a submission on the instructor's notebook, so it is graded with the original tests.

Only the student's answers are taken from the submission; everything else (instructions, set-up,
every test cell with its hidden tests, in the original order) comes from the source. Whatever a
student did to the test cells (edited, deleted, duplicated, moved) is therefore irrelevant.

- An answer cell is found by its nbgrader ``grade_id`` (or, if a tool dropped the metadata, by
  its cell id). Every copy of it is kept, in the student's order, as "Run All" would run them;
  a missing answer becomes the released blank.
- A cell the student added (an id the release does not have, no nbgrader metadata) is kept, just
  before the answer it preceded in the student's notebook (after the last answer if none
  follows): it may define helpers the answer uses.
- Demonstration cells (tag ``demo``) are left out: they are not graded and may call the
  reference implementations, which are locked while grading.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import nbformat
from nbformat import NotebookNode

from autograder.notebooks import grade_id, is_answer, is_demo, nbgrader_metadata


@dataclass
class Restored:
    """The notebook to grade and notes on what was repaired (for the feedback)."""

    notebook: NotebookNode
    notes: list[str] = field(default_factory=list)


def restore(source: NotebookNode, release: NotebookNode, submission: NotebookNode) -> Restored:
    answer_ids = [grade_id(cell) for cell in source.cells if is_answer(cell)]
    released_ids = {cell.get("id") for cell in release.cells}
    blanks = {grade_id(cell): cell for cell in release.cells if is_answer(cell)}

    answers: dict[str, list[NotebookNode]] = {answer: [] for answer in answer_ids}
    added_before: dict[str | None, list[NotebookNode]] = {answer: [] for answer in answer_ids}
    pending: list[NotebookNode] = []
    for cell in submission.cells:
        answer = _answer_of(cell, answers)
        if answer is not None:
            answers[answer].append(cell)
            added_before[answer].extend(pending)
            pending = []
        elif cell.get("id") not in released_ids and not nbgrader_metadata(cell):
            pending.append(cell)
    last = answer_ids[-1] if answer_ids else None
    trailing = pending

    notes = _test_cell_notes(release, submission)
    cells: list[NotebookNode] = []
    for cell in source.cells:
        if is_demo(cell):
            continue
        answer = grade_id(cell) if is_answer(cell) else None
        if answer is None:
            cells.append(copy.deepcopy(cell))
            continue
        cells.extend(_added(added_before[answer]))
        copies = answers[answer] or [blanks[answer]]
        if not answers[answer]:
            notes.append(f"Your answer cell '{answer}' was missing; it was graded as blank.")
        for index, answer_cell in enumerate(copies):
            cells.append(_answer_cell(answer_cell, cell, duplicate=index > 0))
        if answer == last:
            cells.extend(_added(trailing))
    notebook = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(source.metadata))
    return Restored(notebook, notes)


def _answer_of(cell: NotebookNode, answers: dict[str, list[NotebookNode]]) -> str | None:
    meta = nbgrader_metadata(cell)
    if meta.get("solution") and meta.get("grade_id") in answers:
        return meta["grade_id"]
    if not meta and cell.get("id") in answers:
        return cell["id"]
    return None


def _answer_cell(student: NotebookNode, source: NotebookNode, *, duplicate: bool) -> NotebookNode:
    """The student's source in the instructor's cell (metadata and id), or a plain copy."""
    if duplicate:
        return nbformat.v4.new_code_cell(student.source)
    cell = copy.deepcopy(source)
    cell.source = student.source
    return cell


def _added(cells: list[NotebookNode]) -> list[NotebookNode]:
    return [
        nbformat.v4.new_code_cell(cell.source)
        if cell.cell_type == "code"
        else nbformat.v4.new_markdown_cell(cell.source)
        for cell in cells
        if cell.cell_type in ("code", "markdown")
    ]


def _test_cell_notes(release: NotebookNode, submission: NotebookNode) -> list[str]:
    """Say which test cells the student changed (they are graded with the originals anyway)."""
    released = {grade_id(c): c.source for c in release.cells if _is_graded_test(c)}
    expected = list(released)
    submitted = [c for c in submission.cells if _is_graded_test(c)]
    found = [grade_id(c) for c in submitted]
    edited = sorted(
        {grade_id(c) for c in submitted if c.source != released.get(grade_id(c), c.source)}
    )
    missing = [g for g in expected if g not in found]
    duplicated = sorted({g for g in found if found.count(g) > 1})
    reordered = [g for g in found if g in expected] != [g for g in expected if g in found]
    notes = []
    if edited:
        notes.append(f"Test cells you edited (the originals were used): {', '.join(edited)}.")
    if missing:
        notes.append(f"Test cells missing from your notebook (restored): {', '.join(missing)}.")
    if duplicated:
        notes.append(f"Duplicated test cells (graded once): {', '.join(duplicated)}.")
    if reordered:
        notes.append("Your test cells were moved; they were run in their original order.")
    return notes


def _is_graded_test(cell: NotebookNode) -> bool:
    return bool(nbgrader_metadata(cell).get("grade")) and not is_answer(cell)
