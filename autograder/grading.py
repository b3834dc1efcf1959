"""Grade a class: every submission of one assignment, into nbgrader's gradebook, with feedback.

For each student, in the main thread: keep the submission as nbgrader's
``submitted/<student>/<assignment>/<assignment>.ipynb``, rebuild it on the instructor's notebook
(:mod:`autograder.restore`, which does what nbgrader's ``OverwriteCells`` does and more) and
sanitize it with nbgrader's ``ClearOutput`` and ``DeduplicateIds``. Each notebook goes to one of
``workers`` threads as soon as it is ready and runs in a fresh pre-started kernel
(:mod:`autograder.runner`), sandboxed. Before the first student, the instructor's solution runs
once (the reference run): its checks' expected values let the grader judge every student's checks
in its own process (:mod:`autograder.checks`). As each finishes, the main thread stores its
grades in the gradebook (only this thread touches the SQLite file) as nbgrader's
``SaveAutoGrades`` would, writes the graded notebook to ``autograded/`` and the feedback page.

Re-running is idempotent: a submission whose bytes were graded before is not run again (unless
``force``), and ``grades.csv`` is written from the gradebook, which keeps every student ever
graded. A submission that cannot be read, raises, loops or kills its kernel is graded as it is;
only a failure of the grader itself (say, a kernel that cannot start) leaves the student's
earlier grade in place, and is reported.
"""

from __future__ import annotations

import csv
import hashlib
import json
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

import nbformat
from nbformat import NotebookNode
from nbgrader.api import Gradebook
from nbgrader.preprocessors import ClearOutput, DeduplicateIds
from nbgrader.utils import compute_checksum, determine_grade, is_grade, is_solution
from sqlalchemy.exc import SAWarning

from autograder import checks, feedback, sandbox
from autograder.course import Course
from autograder.notebooks import (
    blocked_references,
    grade_id,
    is_answer,
    is_demo,
    is_test,
    read_source,
    source_path,
    test_title,
)
from autograder.progress import Progress
from autograder.restore import restore
from autograder.runner import Execution, KernelPool, Limits, execute_notebook, start_kernel
from autograder.submissions import Submission, collect

# nbgrader's gradebook trips SQLAlchemy's autoflush warnings on every new submission: harmless.
warnings.filterwarnings("ignore", category=SAWarning, module=r"nbgrader\.")

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions"


@dataclass
class StudentResult:
    """One student's grading; ``status`` is ``graded``, ``unreadable``, ``timeout``,
    ``kernel died``, ``out of memory``, ``too much output`` or ``error`` (the grader failed: the
    earlier grade is kept)."""

    student: str
    status: str
    score: float = 0.0
    max_score: float = 0.0
    tests: list[feedback.TestResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    execution_seconds: float = 0.0
    unchanged: bool = False

    @classmethod
    def from_json(cls, text: str) -> StudentResult:
        data = json.loads(text)
        data["tests"] = [feedback.TestResult(**t) for t in data["tests"]]
        return cls(**data)


@dataclass
class ClassResult:
    assignment: str
    students: list[StudentResult]
    seconds: float
    out: Path
    sandbox: str = "none"  # the isolation tier the kernels ran in


@dataclass
class _Job:
    submission: Submission
    notebook: NotebookNode
    notes: list[str]


def grade_class(
    assignment: str,
    submissions: Path,
    out: Path,
    *,
    solutions: Path = SOLUTIONS,
    workers: int = 2,
    limits: Limits | None = None,
    force: bool = False,
    progress: TextIO | None = sys.stderr,
) -> ClassResult:
    """Autograde every submission in ``submissions`` (see :mod:`autograder.submissions`)."""
    start = time.perf_counter()
    limits = limits or Limits()
    tier = sandbox.choose(limits.sandbox).name
    source = read_source(source_path(solutions, assignment))
    plan = checks.plan(source)
    class_submissions = collect(submissions, assignment)
    bar = Progress(len(class_submissions), assignment, progress) if progress else None
    results: dict[str, StudentResult] = {}

    def done(result: StudentResult) -> None:
        results[result.student] = result
        if bar:
            again = " (unchanged, not re-run)" if result.unchanged else ""
            bar.step(
                f"{result.student}: {result.status} {result.score:g}/{result.max_score:g}{again}"
            )

    to_grade = []
    for submission in class_submissions:
        earlier = None if force else _earlier_result(out, assignment, submission)
        if earlier is None:
            to_grade.append(submission)
        else:
            done(earlier)

    # Kernels start, and the reference run goes on, in the background while nbgrader sets up the
    # course and the notebooks are prepared; each notebook is handed to a worker as soon as it is
    # ready (and the reference run is done).
    setup = _setup_code(blocked_references(source))
    pool = KernelPool(workers, setup + checks.SETUP_SANDBOX, limits, total=len(to_grade))
    background = ThreadPoolExecutor(max_workers=1)
    reference = background.submit(reference_run, source, plan, setup, limits) if to_grade else None
    try:
        with _Grader(assignment, out, source, limits, plan) as grader:
            with ThreadPoolExecutor(max_workers=workers) as executor:
                futures: dict[Future[Execution], _Job] = {}
                for submission in to_grade:
                    job = grader.prepare(submission)
                    if isinstance(job, StudentResult):
                        done(job)
                        continue
                    if reference is not None:
                        grader.references = reference.result()
                    references = grader.references
                    future = executor.submit(
                        lambda nb, references=references: execute_notebook(
                            nb, pool.take(), limits, checks=(plan, references)
                        ),
                        job.notebook,
                    )
                    futures[future] = job
                for future in as_completed(futures):
                    job = futures[future]
                    try:
                        done(grader.save(job, future.result()))
                    except Exception as error:  # the grader failed, not the student
                        done(grader.failed(job.submission, error))
            grader.write_grades_csv(out / "grades.csv")
            write_run_record(out / RUN_RECORD, tier, limits)
    finally:
        background.shutdown(wait=True)
        pool.close()

    students = [results[s.student] for s in class_submissions]
    return ClassResult(assignment, students, time.perf_counter() - start, out, tier)


RUN_RECORD = "run.json"


def write_run_record(path: Path, tier: str, limits: Limits) -> None:
    """``run.json`` beside ``grades.csv``: the last run's isolation tier and limits (what the
    threat model promised the grades it wrote: autograder/README.md)."""
    record = {
        "sandbox": tier,
        "asked": limits.sandbox,
        "limits": {k: v for k, v in asdict(limits).items() if k != "sandbox"},
        "finished": time.strftime("%FT%T%z"),
    }
    path.write_text(json.dumps(record, indent=1) + "\n")


def reference_run(
    source: NotebookNode, plan: checks.Plan, setup: str, limits: Limits
) -> dict[str, list[checks.Reference]]:
    """Run the instructor's solution once, sandboxed, and collect its checks' expected values
    (:mod:`autograder.checks`); refuse to grade if the solution fails one of its own tests."""
    nb = nbformat.v4.new_notebook(
        cells=[c for c in source.cells if not is_demo(c)], metadata=source.metadata
    )
    nb = checks.apply(nb, plan.reference, _instructor_ids(source))
    scratch = sandbox.choose(limits.sandbox).scratch_root()
    workdir = Path(tempfile.mkdtemp(prefix="autograder-reference-", dir=scratch))
    kernel = start_kernel(workdir, setup + checks.SETUP_REFERENCE, limits)
    execution = execute_notebook(nb, kernel, limits)
    failed = [
        f"{grade_id(c) or c.get('id')}: {o.ename}: {o.evalue}"
        for c in execution.notebook.cells
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    if execution.status != "ok" or failed:
        raise RuntimeError(
            f"the reference run of the instructor's solution failed ({execution.status}): "
            + "; ".join(failed)[:2000]
        )
    return checks.reference_records(execution.notebook)


def _instructor_ids(source: NotebookNode) -> set[str]:
    """The cells a submission takes from the source (every code cell but the answers)."""
    return {c["id"] for c in source.cells if c.cell_type == "code" and not is_answer(c)}


def _graded_dir(out: Path, assignment: str, student: str) -> Path:
    """Where nbgrader keeps a student's graded notebook; our result and stamp go there too."""
    return out / "course" / "autograded" / student / assignment


def _earlier_result(out: Path, assignment: str, submission: Submission) -> StudentResult | None:
    """The stored result if exactly these bytes were graded before."""
    graded = _graded_dir(out, assignment, submission.student)
    stamp, result = graded / "submission.sha256", graded / "result.json"
    if not (stamp.exists() and result.exists()):
        return None
    if stamp.read_text() != hashlib.sha256(submission.content).hexdigest():
        return None
    earlier = StudentResult.from_json(result.read_text())
    earlier.unchanged = True
    return earlier


def _save_auto_grades(
    gradebook: Gradebook, nb: NotebookNode, resources: dict, points: dict[str, float]
) -> None:
    """What nbgrader's ``SaveAutoGrades`` stores, in one query and one commit (it queries and
    commits once per cell, which made saving a student's grades cost a third of a second):
    each grade cell's ``auto_score`` (``points``: nbgrader's own rule, :func:`determine_grade`,
    and the grader's confirmation of the checks), flagged for manual review if a grader overrode
    it before, and "No response." on unchanged answers."""
    ids = resources["nbgrader"]
    notebook = gradebook.find_submission_notebook(
        ids["notebook"], ids["assignment"], ids["student"]
    )
    grades = {grade.name: grade for grade in notebook.grades}
    comments = {comment.name: comment for comment in notebook.comments}
    for cell in nb.cells:
        name = grade_id(cell)
        if is_grade(cell) and name in grades:
            grade = grades[name]
            grade.auto_score = points[name]
            grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
        if is_solution(cell) and name in comments:
            unchanged = cell.metadata.nbgrader.get("checksum") == compute_checksum(cell)
            comments[name].auto_comment = "No response." if unchanged else None
    gradebook.db.commit()


def _setup_code(blocked: list[str]) -> str:
    """What every kernel runs before a notebook: the imports all notebooks make, and the lock on
    the reference implementations."""
    return (
        "import numpy\nimport minidl\nimport minidl.grading\n"
        f"minidl.grading.block_references({blocked!r})\n"
    )


class _Grader:
    """The course directory, the assignment's notebooks, the gradebook (open for the run, used
    from this thread only) and the per-student steps."""

    def __init__(
        self,
        assignment: str,
        out: Path,
        source: NotebookNode,
        limits: Limits,
        plan: checks.Plan,
    ):
        self.assignment = assignment
        self.plan = plan
        self.references: dict[str, list[checks.Reference]] = {}  # from the reference run
        self.instructor_ids = _instructor_ids(source)
        self.answer_ids = {grade_id(c) for c in source.cells if is_answer(c)}
        self.out = out
        self.limits = limits
        self.course = Course(out / "course")
        self.source = source
        self.release = self.course.generate_assignment(assignment, self.source)
        self.titles = {grade_id(c): test_title(c) for c in self.release.cells if is_test(c)}
        self.max_points = {
            grade_id(c): c.metadata.nbgrader["points"] for c in source.cells if is_test(c)
        }
        self.hidden_lines = _hidden_lines(self.source, self.release)
        (out / "feedback").mkdir(parents=True, exist_ok=True)
        self.gradebook = self.course.gradebook()

    def __enter__(self) -> _Grader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.gradebook.close()

    def resources(self, student: str) -> dict:
        return {
            "nbgrader": {
                "student": student,
                "assignment": self.assignment,
                "notebook": self.assignment,
                "db_url": self.course.db_url,
            }
        }

    def _graded_dir(self, student: str) -> Path:
        return _graded_dir(self.out, self.assignment, student)

    def prepare(self, submission: Submission) -> _Job | StudentResult:
        student = submission.student
        submitted = self.course.notebook("submitted", self.assignment, student)
        submitted.parent.mkdir(parents=True, exist_ok=True)
        submitted.write_bytes(submission.content)
        self.gradebook.update_or_create_student(student)
        self.gradebook.update_or_create_submission(self.assignment, student)
        try:
            notebook = nbformat.reads(submission.content.decode("utf-8"), as_version=4)
        except Exception as error:
            return self._unreadable(submission, error)
        restored = restore(self.source, self.release, notebook)
        nb, resources = restored.notebook, self.resources(student)
        # nbgrader's sanitizing steps. Its OverwriteCells, OverwriteKernelspec and
        # CheckCellMetadata are not needed (and cost a gradebook query per cell): restore() took
        # every cell but the answers, and all metadata, from the source.
        for preprocessor in (ClearOutput(), DeduplicateIds()):
            nb, resources = preprocessor.preprocess(nb, resources)
        nb = checks.apply(nb, self.plan.sandbox, self.instructor_ids)
        notes = list(submission.notes) + restored.notes
        found = {grade_id(c) for c in notebook.cells} | {c.get("id") for c in notebook.cells}
        if self.answer_ids and not self.answer_ids & found:
            notes.insert(
                0,
                f"None of the answer cells of {self.assignment} are in your notebook: is it the "
                "notebook of another assignment? It was graded as blank.",
            )
        return _Job(submission, nb, notes)

    def save(self, job: _Job, execution: Execution) -> StudentResult:
        student = job.submission.student
        nb = execution.notebook
        # A test's points: nbgrader's rule (no error output and nothing written to standard
        # error: full points) on the notebook the sandbox returned, and the grader's own
        # confirmation of every check the test makes (autograder.checks).
        points, messages = {}, {}
        for cell in nb.cells:
            if not is_test(cell):
                continue
            name, (nbgrader_points, most) = grade_id(cell), determine_grade(cell)
            passed, reason = checks.verdict(
                cell["id"], execution.checks, self.references, nbgrader_points != most
            )
            points[name] = most if passed else 0.0
            messages[name] = reason if reason is not None else self._message(cell)
            if not passed and not messages[name]:
                messages[name] = "the test failed"
        _save_auto_grades(self.gradebook, nb, self.resources(student), points)
        graded = self._graded_dir(student)
        graded.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, graded / f"{self.assignment}.ipynb")
        notes = list(job.notes) + execution.notes
        if execution.status != "ok":
            notes.append(f"Your notebook did not finish: {execution.status}.")
        status = "graded" if execution.status == "ok" else execution.status
        return self._finish(job.submission, status, points, messages, notes, execution.seconds)

    def _unreadable(self, submission: Submission, error: Exception) -> StudentResult:
        gb = self.gradebook
        for grade in gb.find_submission_notebook(
            self.assignment, self.assignment, submission.student
        ).grades:
            grade.auto_score, grade.needs_manual_grade = 0, False
        gb.db.commit()
        reason = f"Your file is not a readable notebook ({type(error).__name__}: {error})."
        messages = dict.fromkeys(self.titles, "not run: the notebook could not be read")
        points = dict.fromkeys(self.titles, 0.0)
        return self._finish(submission, "unreadable", points, messages, [reason[:500]], 0.0)

    def failed(self, submission: Submission, error: Exception) -> StudentResult:
        """The grader itself failed: report it and keep whatever grade was stored before."""
        return StudentResult(
            submission.student, "error", notes=[f"grader error: {type(error).__name__}: {error}"]
        )

    def _finish(
        self,
        submission: Submission,
        status: str,
        points: dict[str, float],
        messages: dict[str, str],
        notes: list[str],
        seconds: float,
    ) -> StudentResult:
        student = submission.student
        tests = []
        for name, title in self.titles.items():
            got, most = float(points[name]), float(self.max_points[name])
            tests.append(
                feedback.TestResult(name, title, got, most, "" if got >= most else messages[name])
            )
        score, max_score = sum(t.points for t in tests), sum(t.max_points for t in tests)
        result = StudentResult(student, status, score, max_score, tests, notes, seconds)
        page = feedback.render(
            student=student,
            assignment=self.assignment,
            score=score,
            max_score=max_score,
            tests=tests,
            notes=notes,
        )
        (self.out / "feedback" / f"{student}.html").write_text(page)
        graded = self._graded_dir(student)
        graded.mkdir(parents=True, exist_ok=True)
        (graded / "result.json").write_text(json.dumps(asdict(result), indent=1))
        (graded / "submission.sha256").write_text(hashlib.sha256(submission.content).hexdigest())
        return result

    def _message(self, cell: NotebookNode) -> str:
        """Why a test cell failed, without its source: the error's type and message only (or
        the last line the cell wrote to standard error), with any line of hidden test removed."""
        errors = [o for o in cell.outputs if o.output_type == "error"]
        stderr = [o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
        if errors:
            message = _error_message(errors[0].ename, errors[0].evalue, self.limits)
        elif stderr:
            last = [line for line in "".join(stderr).splitlines() if line.strip()][-1:]
            message = f"the cell wrote to standard error: {''.join(last)}"
        else:
            return ""
        hidden = self.hidden_lines.get(grade_id(cell), set())
        kept = [line for line in message.splitlines() if not any(h in line for h in hidden)]
        return "\n".join(kept) if kept else "the test failed (its details are hidden)"

    def write_grades_csv(self, path: Path) -> None:
        """One row per student ever graded on this assignment, from the gradebook."""
        tests = list(self.titles)
        rows = []
        for submission in sorted(
            self.gradebook.find_assignment(self.assignment).submissions,
            key=lambda s: s.student.id,
        ):
            result = self._graded_dir(submission.student.id) / "result.json"
            status = json.loads(result.read_text())["status"] if result.exists() else ""
            by_name = {g.name: g.score for g in submission.notebooks[0].grades}
            rows.append(
                [
                    submission.student.id,
                    self.assignment,
                    f"{submission.score:g}",
                    f"{submission.max_score:g}",
                    status,
                    *(f"{by_name.get(t) or 0:g}" for t in tests),
                ]
            )
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["student", "assignment", "score", "max_score", "status", *tests])
            writer.writerows(rows)


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


def _error_message(ename: str, evalue: str, limits: Limits) -> str:
    if ename == "KeyboardInterrupt":
        return f"the cell ran longer than {limits.cell_timeout:g} s and was stopped"
    if ename == "NotRun":
        return evalue
    if ename == "CheckFailed":
        return evalue
    if ename == "NotImplementedError" and not evalue:
        return "not implemented yet: an answer cell still raises NotImplementedError"
    return f"{ename}: {evalue}" if evalue else ename


def summary(result: ClassResult) -> str:
    """Score distribution, per-test pass rates and problems, as text."""
    students = [s for s in result.students if s.status != "error"]
    lines = []
    minutes = result.seconds / 60
    run = sum(not s.unchanged for s in result.students)
    lines.append(
        f"{result.assignment}: {len(result.students)} submissions in {result.seconds:.1f} s "
        f"({run} graded now, {len(result.students) - run} unchanged since the last run"
        + (f", {run / minutes:.1f} per minute" if run and minutes > 0 else "")
        + ")"
    )
    if students:
        scores = [s.score for s in students]
        top = max(s.max_score for s in students) or 1.0
        lines.append(
            f"score: mean {statistics.mean(scores):.1f}, median {statistics.median(scores):g}, "
            f"min {min(scores):g}, max {max(scores):g} (out of {top:g})"
        )
        bins = 5
        counts = [0] * bins
        for score in scores:
            counts[min(int(bins * score / top), bins - 1)] += 1
        for i, count in enumerate(counts):
            low, high = top * i / bins, top * (i + 1) / bins
            closing = "]" if i == bins - 1 else ")"
            lines.append(f"  [{low:4.1f}, {high:4.1f}{closing} {'#' * count:<20} {count}")
        lines.append("tests (pass rate):")
        for i, test in enumerate(students[0].tests):
            passed = sum(s.tests[i].passed for s in students if len(s.tests) > i)
            lines.append(
                f"  {100 * passed / len(students):5.1f}%  {test.max_points:g} pt  {test.grade_id}"
            )
    problems = [s for s in result.students if s.status not in ("graded",)]
    if problems:
        lines.append("problems:")
        lines.extend(f"  {s.student}: {s.status}. {' '.join(s.notes)}" for s in problems)
    lines.append(f"sandbox: {result.sandbox} (autograder/README.md: what it keeps)")
    lines.append(f"grades: {result.out / 'grades.csv'}; feedback: {result.out / 'feedback'}/")
    return "\n".join(lines)
