"""Grade one submission: the unit of work "grade this submission", as an ordered list of steps.

:func:`grade_submission` takes a :class:`GradingTask` and returns a :class:`StudentResult`. Both
are plain data (``to_dict``/``from_dict``, JSON): the task holds everything the unit needs (the
submission's bytes, the instructor's notebook and its release, the rewritten checks, the
reference run's expected values, the limits, the assignment's version), and the unit needs no
gradebook and no course directory, so it runs in a thread of the instructor's grader as well as
on another machine. Like nbgrader's ``Autograde`` converter (its sanitizing preprocessors, then
``Execute``, ``SaveAutoGrades``), the work is a declared list of steps, :data:`STEPS`, each a
function with one job that adds to the submission's state:

    restore → sanitize → rewrite checks → run in the sandbox → judge

Storing the result in the gradebook and writing the feedback page happen on the instructor's
side, from the result record (:mod:`autograder.grading`). A file that is not a notebook stops at
the first step and gets 0 (:attr:`Status.UNREADABLE`).
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbgrader.preprocessors import ClearOutput, DeduplicateIds
from nbgrader.utils import determine_grade

from autograder import check_rewriting, sandbox
from autograder.check_rewriting import Plan
from autograder.check_server import Reference, decode_references, verdict
from autograder.feedback import TestResult
from autograder.notebooks import blocked_references, grade_id, is_answer, is_test, test_title
from autograder.restore import restore
from autograder.runner import Ending, Execution, Kernel, Limits, execute_notebook, start_kernel


class Status(StrEnum):
    """How a submission's grading ended (the ``status`` column of ``grades.csv``)."""

    GRADED = "graded"
    UNREADABLE = "unreadable"  # not a notebook: 0 points
    TIMEOUT = "timeout"  # past the total time, or a cell ignored its interrupt
    KERNEL_DIED = "kernel died"
    OUT_OF_MEMORY = "out of memory"
    TOO_MUCH_OUTPUT = "too much output"
    ERROR = "error"  # the grader itself failed: the earlier grade is kept


STATUS_OF_ENDING = {
    Ending.FINISHED: Status.GRADED,
    Ending.TIMEOUT: Status.TIMEOUT,
    Ending.IGNORED_INTERRUPT: Status.TIMEOUT,
    Ending.TOO_MUCH_OUTPUT: Status.TOO_MUCH_OUTPUT,
    Ending.OUT_OF_MEMORY: Status.OUT_OF_MEMORY,
    Ending.KERNEL_DIED: Status.KERNEL_DIED,
}


@dataclass(frozen=True)
class GradingTask:
    """Grade this submission: everything the unit of work needs, as plain data."""

    assignment: str
    version: str  # autograder.version.assignment_version
    student: str
    submission: str  # base64 of the file as submitted (possibly not even JSON)
    submission_notes: list[str]  # what the feedback says about the file itself
    source: dict[str, Any]  # the instructor's notebook (notebooks.read_source)
    release: dict[str, Any]  # the notebook the students got
    plan: dict[str, Any]  # the rewritten checks (check_rewriting.Plan.to_dict)
    references: dict[str, list[dict[str, Any]]]  # check_server.reference_records
    limits: dict[str, Any]  # runner.Limits' fields

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GradingTask:
        return cls(**data)


@dataclass
class StudentResult:
    """One student's grading: the result record of :func:`grade_submission`.

    ``notebook`` is the graded notebook (``None`` when the file could not be read or the grader
    failed); ``unchanged`` marks a result reused from an earlier run.
    """

    student: str
    status: Status
    score: float = 0.0
    max_score: float = 0.0
    tests: list[TestResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    execution_seconds: float = 0.0
    unchanged: bool = False
    version: str = ""
    notebook: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudentResult:
        data = dict(data)
        data["status"] = Status(data["status"])
        data["tests"] = [TestResult(**test) for test in data.get("tests", [])]
        return cls(**data)


class _Assignment:
    """What the steps read from a task: the notebooks, the checks and the tests' titles."""

    def __init__(self, task: GradingTask):
        self.name = task.assignment
        self.source = nbformat.from_dict(task.source)
        self.release = nbformat.from_dict(task.release)
        self.plan = Plan.from_dict(task.plan)
        self.references: dict[str, list[Reference]] = decode_references(task.references)
        self.limits = Limits(**task.limits)
        self.instructor_ids = instructor_cell_ids(self.source)
        self.answer_ids = {grade_id(c) for c in self.source.cells if is_answer(c)}
        self.titles = {grade_id(c): test_title(c) for c in self.release.cells if is_test(c)}
        self.max_points = {
            grade_id(c): c.metadata.nbgrader["points"] for c in self.source.cells if is_test(c)
        }
        self.hidden_lines = _hidden_lines(self.source, self.release)


@dataclass
class _Grading:
    """A submission on its way through the steps."""

    task: GradingTask
    assignment: _Assignment
    take_kernel: Callable[[], Kernel]
    notebook: NotebookNode | None = None
    notes: list[str] = field(default_factory=list)
    execution: Execution | None = None
    result: StudentResult | None = None


class _Unreadable(Exception):
    """The submitted file is not a notebook."""


def restore_answers(grading: _Grading) -> None:
    """Rebuild the submission on the instructor's notebook (:mod:`autograder.restore`): the
    student's answers, every other cell from the source."""
    task, assignment = grading.task, grading.assignment
    try:
        text = base64.b64decode(task.submission).decode("utf-8")
        submitted = nbformat.reads(text, as_version=4)
    except Exception as error:
        raise _Unreadable(f"{type(error).__name__}: {error}") from error
    restored = restore(assignment.source, assignment.release, submitted)
    grading.notebook = restored.notebook
    grading.notes = list(task.submission_notes) + restored.notes
    found = {grade_id(c) for c in submitted.cells} | {c.get("id") for c in submitted.cells}
    if assignment.answer_ids and not assignment.answer_ids & found:
        grading.notes.insert(
            0,
            f"None of the answer cells of {assignment.name} are in your notebook: is it the "
            "notebook of another assignment? It was graded as blank.",
        )


def sanitize(grading: _Grading) -> None:
    """nbgrader's sanitizing steps ``ClearOutput`` and ``DeduplicateIds``. (Its
    ``OverwriteCells``, ``OverwriteKernelspec`` and ``CheckCellMetadata`` are not needed:
    :func:`restore_answers` took every cell but the answers, and all metadata, from the source.)"""
    nb, resources = grading.notebook, {}
    for preprocessor in (ClearOutput(), DeduplicateIds()):
        nb, resources = preprocessor.preprocess(nb, resources)
    grading.notebook = nb


def rewrite_checks(grading: _Grading) -> None:
    """Give the instructor's cells their sandbox form, whose checks report to the grader
    (:mod:`autograder.check_rewriting`)."""
    assignment = grading.assignment
    grading.notebook = check_rewriting.apply(
        grading.notebook, assignment.plan.sandbox, assignment.instructor_ids
    )


def run_in_sandbox(grading: _Grading) -> None:
    """Run the notebook in a fresh sandboxed kernel, the grader judging its checks."""
    assignment = grading.assignment
    grading.execution = execute_notebook(
        grading.notebook,
        grading.take_kernel(),
        assignment.limits,
        checks=(assignment.plan, assignment.references),
    )


def judge(grading: _Grading) -> None:
    """Each test's points and message: nbgrader's rule (no error output and nothing written to
    standard error: full points) on the notebook the sandbox returned, and the grader's own
    confirmation of every check the test makes (:func:`autograder.check_server.verdict`)."""
    assignment, execution = grading.assignment, grading.execution
    points, messages = {}, {}
    for cell in execution.notebook.cells:
        if not is_test(cell):
            continue
        name, (nbgrader_points, most) = grade_id(cell), determine_grade(cell)
        passed, reason = verdict(
            cell["id"], execution.checks, assignment.references, nbgrader_points != most
        )
        points[name] = most if passed else 0.0
        messages[name] = reason if reason is not None else _message(cell, assignment)
        if not passed and not messages[name]:
            messages[name] = "the test failed"
    status = STATUS_OF_ENDING[execution.status]
    notes = grading.notes + execution.notes
    if execution.status is not Ending.FINISHED:
        notes.append(f"Your notebook did not finish: {status}.")
    grading.result = _result(
        grading.task, assignment, status, points, messages, notes, execution.seconds
    )
    grading.result.notebook = execution.notebook


STEPS: tuple[Callable[[_Grading], None], ...] = (
    restore_answers,
    sanitize,
    rewrite_checks,
    run_in_sandbox,
    judge,
)


def grade_submission(
    task: GradingTask, take_kernel: Callable[[], Kernel] | None = None
) -> StudentResult:
    """Grade one submission through :data:`STEPS`. ``take_kernel`` hands out a started kernel
    (the grader's pool, :class:`~autograder.runner.KernelPool`, started ahead of time); by
    default a fresh one is started when the notebook is ready to run."""
    assignment = _Assignment(task)
    grading = _Grading(task, assignment, take_kernel or (lambda: fresh_kernel(assignment)))
    try:
        for step in STEPS:
            step(grading)
    except _Unreadable as error:
        return _unreadable(task, assignment, str(error))
    return grading.result


def fresh_kernel(assignment: _Assignment) -> Kernel:
    """A kernel for one submission, in its own scratch directory (removed at its shutdown)."""
    scratch = sandbox.choose(assignment.limits.sandbox).scratch_root()
    workdir = Path(tempfile.mkdtemp(prefix="autograder-", dir=scratch))
    setup = kernel_setup(assignment.source) + check_rewriting.SETUP_SANDBOX
    return start_kernel(workdir, setup, assignment.limits)


def kernel_setup(source: NotebookNode) -> str:
    """What every kernel runs before a notebook: the imports all notebooks make, and the lock on
    the reference implementations the source names."""
    return (
        "import numpy\nimport minidl\nimport autograder.kernel.lock\n"
        f"autograder.kernel.lock.block_references({blocked_references(source)!r})\n"
    )


def instructor_cell_ids(source: NotebookNode) -> set[str]:
    """The cells a submission takes from the source (every code cell but the answers)."""
    return {c["id"] for c in source.cells if c.cell_type == "code" and not is_answer(c)}


def _unreadable(task: GradingTask, assignment: _Assignment, error: str) -> StudentResult:
    reason = f"Your file is not a readable notebook ({error})."
    messages = dict.fromkeys(assignment.titles, "not run: the notebook could not be read")
    points = dict.fromkeys(assignment.titles, 0.0)
    notes = [reason[:500], *task.submission_notes]
    return _result(task, assignment, Status.UNREADABLE, points, messages, notes, 0.0)


def _result(
    task: GradingTask,
    assignment: _Assignment,
    status: Status,
    points: dict[str, float],
    messages: dict[str, str],
    notes: list[str],
    seconds: float,
) -> StudentResult:
    tests = []
    for name, title in assignment.titles.items():
        got, most = float(points[name]), float(assignment.max_points[name])
        tests.append(TestResult(name, title, got, most, "" if got >= most else messages[name]))
    score, max_score = sum(t.points for t in tests), sum(t.max_points for t in tests)
    return StudentResult(
        task.student, status, score, max_score, tests, notes, seconds, version=task.version
    )


def _message(cell: NotebookNode, assignment: _Assignment) -> str:
    """Why a test cell failed, without its source: the error's type and message only (or the
    last line the cell wrote to standard error), with any line of hidden test removed."""
    errors = [o for o in cell.outputs if o.output_type == "error"]
    stderr = [o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
    if errors:
        message = _error_message(errors[0].ename, errors[0].evalue, assignment.limits)
    elif stderr:
        last = [line for line in "".join(stderr).splitlines() if line.strip()][-1:]
        message = f"the cell wrote to standard error: {''.join(last)}"
    else:
        return ""
    hidden = assignment.hidden_lines.get(grade_id(cell), set())
    kept = [line for line in message.splitlines() if not any(h in line for h in hidden)]
    return "\n".join(kept) if kept else "the test failed (its details are hidden)"


def _error_message(ename: str, evalue: str, limits: Limits) -> str:
    if ename == "KeyboardInterrupt":
        return f"the cell ran longer than {limits.cell_timeout:g} s and was stopped"
    if ename in ("NotRun", "CheckFailed"):
        return evalue
    if ename == "NotImplementedError" and not evalue:
        return "not implemented yet: an answer cell still raises NotImplementedError"
    return f"{ename}: {evalue}" if evalue else ename


def _hidden_lines(source: NotebookNode, release: NotebookNode) -> dict[str, set[str]]:
    """Per test cell, the lines of hidden test (long enough to be recognized in a message)."""
    released = {grade_id(c): set(c.source.splitlines()) for c in release.cells if is_test(c)}
    return {
        grade_id(c): {
            line.strip()
            for line in c.source.splitlines()
            if line not in released.get(grade_id(c), set()) and len(line.strip()) >= 12
        }
        for c in source.cells
        if is_test(c)
    }
