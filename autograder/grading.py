"""Grade a class: every submission of one assignment, into nbgrader's gradebook, with feedback.

The instructor's side of the grading. Once per class: read the source, rewrite its checks
(:mod:`autograder.check_rewriting`), stage the course directory (nbgrader's ``generate_assignment``)
and run the instructor's solution once, sandboxed (the reference run): its checks' expected values
let the grader judge every student's checks in its own process (:mod:`autograder.check_server`). Per
student: keep the submission as nbgrader's ``submitted/<student>/<assignment>/<assignment>.ipynb``
and hand a :class:`~autograder.pipeline.GradingTask` (plain data) to one of ``workers`` threads,
which runs the unit of work :func:`~autograder.pipeline.grade_submission` (restore → sanitize →
rewrite checks → run in the sandbox → judge) on a kernel started ahead of time. From each result
record, in the main thread (only this thread touches the SQLite file), :data:`CLASS_STEPS` store the
grades in the gradebook as nbgrader's ``SaveAutoGrades`` would (and the graded notebook in
``autograded/``), write the feedback page, and record the result and which version of the assignment
graded it. The late policy (:mod:`autograder.late`) is applied on this side too, from the result
and the submission's late marker or time: a student's :class:`SubmissionRecord` says how late the
submission was and what fraction of its score that costs; the feedback page says it, and
``grades.csv`` has the score after it. It is worked out again on every run, so a changed deadline
or policy reaches a stored grade without running the notebook again.

Re-running is idempotent: a submission is not run again when its bytes *and* the assignment's
version (:func:`autograder.version.assignment_version`: its source, the framework and the grader)
are those of its stored result (unless ``force``); after a fix of a test every student is regraded
and the summary lists whose score changed. ``grades.csv`` is written from the gradebook, which keeps
every student ever graded. The submissions may be a Canvas or Moodle download
(:func:`autograder.submissions.collect_download`); the summary lists the files not graded. A
submission that cannot be read, raises, loops or kills its kernel is graded as it is; only a failure
of the grader itself (say, a kernel that cannot start) leaves the student's earlier grade in place,
and is reported.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import nbformat
from nbformat import NotebookNode
from nbgrader.api import Gradebook
from nbgrader.utils import compute_checksum, is_grade, is_solution
from sqlalchemy.exc import SAWarning

from autograder import check_rewriting, feedback, late, sandbox
from autograder.check_server import reference_records
from autograder.course import Course
from autograder.notebooks import grade_id, is_demo, is_test, read_source, source_path
from autograder.pipeline import (
    GradingTask,
    Status,
    StudentResult,
    grade_submission,
    instructor_cell_ids,
    kernel_setup,
)
from autograder.progress import Progress
from autograder.runner import Ending, KernelPool, Limits, execute_notebook, start_kernel
from autograder.submissions import Submission, collect_download
from autograder.version import assignment_version, short

# nbgrader's gradebook trips SQLAlchemy's autoflush warnings on every new submission: harmless.
warnings.filterwarnings("ignore", category=SAWarning, module=r"nbgrader\.")

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions"
SUBMISSION_STAMP = "submission.sha256"  # the bytes a stored result graded
SUBMISSION_RECORD = "submission.json"  # next to it: the name and lateness (SubmissionRecord)
GRADES_COLUMNS = [
    "student",
    "name",
    "assignment",
    "score",
    "max_score",
    "status",
    "late",
    "penalty",
]
"""The first columns of ``grades.csv``; each test's points follow."""
GRADING_LOG = "grading-log.csv"  # in the course directory: which version graded whom, when
GRADING_LOG_COLUMNS = [
    "graded_at",
    "assignment",
    "student",
    "version",
    "score",
    "max_score",
    "status",
]


@dataclass
class ClassResult:
    """A class's grading; ``previous`` holds the stored results of the students graded again
    (to tell whose score changed)."""

    assignment: str
    version: str
    students: list[StudentResult]
    seconds: float
    out: Path
    previous: dict[str, StudentResult] = field(default_factory=dict)
    lms: str | None = None  # the download's format: "canvas", "moodle" or None
    skipped: list[str] = field(default_factory=list)  # files not graded, and why
    sandbox: str = "none"  # the isolation tier the kernels ran in

    def score_changes(self) -> list[tuple[str, float, float]]:
        """(student, old score, new score) of every student graded again with another score."""
        return [
            (s.student, self.previous[s.student].score, s.score)
            for s in self.students
            if not s.unchanged
            and s.status is not Status.ERROR
            and s.student in self.previous
            and self.previous[s.student].score != s.score
        ]


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
    course: Path = late.COURSE_FILE,
    broker: str | None = None,
    worker_wait: float | None = None,
) -> ClassResult:
    """Autograde every submission in ``submissions`` (see :mod:`autograder.submissions`), with
    the deadline and late policy of ``course`` (see :mod:`autograder.late`); with ``broker`` (a
    Redis URL), the notebooks run on the queue's workers (:mod:`autograder.queue`), everything
    else here, and the command stops after ``worker_wait`` seconds without a result and without
    a worker (default: :data:`autograder.queue.WORKER_WAIT`)."""
    start = time.perf_counter()
    # Checked before anything is written: an unreachable broker is an error at once.
    through_queue = _queue_grading(broker, worker_wait, progress) if broker else None
    limits = limits or Limits()
    tier = sandbox.choose(limits.sandbox).name
    source = read_source(source_path(solutions, assignment))
    version = assignment_version(solutions, assignment)
    plan = check_rewriting.plan(source)
    rule = late.rule_for(late.load(course), assignment)
    collected = collect_download(submissions, assignment)
    class_submissions = collected.submissions
    bar = Progress(len(class_submissions), assignment, progress) if progress else None
    results: dict[str, StudentResult] = {}

    def done(result: StudentResult) -> None:
        results[result.student] = result
        if bar:
            again = " (unchanged, not re-run)" if result.unchanged else ""
            bar.step(
                f"{result.student}: {result.status} {result.score:g}/{result.max_score:g}{again}"
            )

    stored = {s.student: _stored_result(out, assignment, s.student) for s in class_submissions}
    to_grade, reused = [], []
    for submission in class_submissions:
        earlier = stored[submission.student]
        if (
            earlier is not None
            and not force
            and _reusable(out, assignment, earlier, submission, version)
        ):
            earlier.unchanged = True
            reused.append((earlier, submission))
            done(earlier)
        else:
            to_grade.append(submission)
    previous = {s.student: stored[s.student] for s in to_grade if stored[s.student] is not None}

    setup = kernel_setup(source)
    local = 0 if through_queue else len(to_grade)
    pool = KernelPool(workers, setup + check_rewriting.SETUP_SANDBOX, limits, total=local)
    try:
        with ThreadPoolExecutor(max_workers=workers) as executor:
            # The reference run goes on, and the pool's kernels start, while nbgrader sets up the
            # course and the submissions are kept; the tasks follow the reference run.
            reference = (
                executor.submit(reference_run, source, plan, setup, limits) if to_grade else None
            )
            with _ClassDirectory(assignment, out, source, rule) as directory:
                for earlier, submission in reused:
                    directory.update_record(earlier, submission)
                for submission in to_grade:
                    directory.receive(submission)
                tasks = AssignmentTasks(
                    assignment, version, source, directory.release, plan, limits
                )
                by_student = {s.student: s for s in to_grade}
                outcomes: Iterable[tuple[str, StudentResult | Exception]] = ()
                if reference is not None:
                    records = reference.result()
                    class_tasks = [tasks.task(s, records) for s in to_grade]
                    if through_queue:
                        outcomes = through_queue.results(class_tasks, force=force)
                    else:
                        outcomes = _graded_here(executor, pool, class_tasks)
                for student, outcome in outcomes:
                    submission = by_student[student]
                    try:
                        if isinstance(outcome, Exception):
                            raise outcome
                        for step in CLASS_STEPS:
                            step(directory, outcome, submission)
                        done(outcome)
                    except Exception as error:  # the grader failed, not the student
                        done(_failed(submission, error))
                directory.write_grades_csv(out / "grades.csv")
                write_run_record(out / RUN_RECORD, tier, limits)
    finally:
        pool.close()
        if through_queue:
            through_queue.close()

    students = [results[s.student] for s in class_submissions]
    seconds = time.perf_counter() - start
    return ClassResult(
        assignment,
        version,
        students,
        seconds,
        out,
        previous,
        lms=collected.lms,
        skipped=collected.skipped,
        sandbox=tier,
    )


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


def _queue_grading(broker: str, worker_wait: float | None, log: TextIO | None):
    from autograder import queue  # Celery is imported only to grade through a queue

    wait = queue.WORKER_WAIT if worker_wait is None else worker_wait
    return queue.QueueGrading(broker, worker_wait=wait, log=log)


def _graded_here(
    executor: ThreadPoolExecutor, pool: KernelPool, tasks: list[GradingTask]
) -> Iterator[tuple[str, StudentResult | Exception]]:
    """(student, result) of each task as its thread finishes it (the grader's failure as an
    exception)."""
    futures = {executor.submit(grade_submission, task, pool.take): task for task in tasks}
    for future in as_completed(futures):
        try:
            yield futures[future].student, future.result()
        except Exception as error:
            yield futures[future].student, error


def reference_run(
    source: NotebookNode, plan: check_rewriting.Plan, setup: str, limits: Limits
) -> dict[str, list[dict]]:
    """Run the instructor's solution once, sandboxed, and collect its checks' expected values
    (:func:`autograder.check_server.reference_records`, plain data); refuse to grade if the
    solution fails one of its own tests."""
    nb = nbformat.v4.new_notebook(
        cells=[c for c in source.cells if not is_demo(c)], metadata=source.metadata
    )
    nb = check_rewriting.apply(nb, plan.reference, instructor_cell_ids(source))
    scratch = sandbox.choose(limits.sandbox).scratch_root()
    workdir = Path(tempfile.mkdtemp(prefix="autograder-reference-", dir=scratch))
    kernel = start_kernel(workdir, setup + check_rewriting.SETUP_REFERENCE, limits)
    execution = execute_notebook(nb, kernel, limits)
    failed = [
        f"{grade_id(c) or c.get('id')}: {o.ename}: {o.evalue}"
        for c in execution.notebook.cells
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    if execution.status is not Ending.FINISHED or failed:
        raise RuntimeError(
            f"the reference run of the instructor's solution failed ({execution.status}): "
            + "; ".join(failed)[:2000]
        )
    return reference_records(execution.notebook)


@dataclass(frozen=True)
class AssignmentTasks:
    """The grading tasks of one assignment: what every task holds (the notebooks, the rewritten
    checks, the limits, the version) and, per submission, its bytes and notes."""

    assignment: str
    version: str
    source: NotebookNode
    release: NotebookNode
    plan: check_rewriting.Plan
    limits: Limits

    def task(self, submission: Submission, records: dict[str, list[dict]]) -> GradingTask:
        """The task "grade ``submission``" (``records``: the reference run's, see
        :func:`reference_run`)."""
        return GradingTask(
            assignment=self.assignment,
            version=self.version,
            student=submission.student,
            submission=base64.b64encode(submission.content).decode("ascii"),
            submission_notes=list(submission.notes),
            source=self.source,
            release=self.release,
            plan=self.plan.to_dict(),
            references=records,
            limits=asdict(self.limits),
        )


@dataclass(frozen=True)
class SubmissionRecord:
    """What the instructor's side knows of a submission besides its grading: the student's name
    as the learning-management system's download gives it, and how late it was under the late
    policy (:func:`autograder.late.penalty`: by the submission's time if known, else by the
    LMS's late marker). Stored as ``submission.json`` beside the result record."""

    name: str = ""
    late_hours: float | None = None  # None: not known (no deadline, no late marker)
    penalty: float = 0.0  # the fraction of the score the late policy takes
    marked_late: bool = False  # known from the LMS's late marker only, not from a time

    @classmethod
    def of(cls, submission: Submission, rule: late.AssignmentRule) -> SubmissionRecord:
        when = submission.submitted_at or submission.late
        hours, fraction = late.penalty(rule.policy, when, rule.deadline)
        marked = submission.submitted_at is None and submission.late is True
        return cls(submission.name, hours, fraction, marked)

    def score(self, score: float) -> float:
        """``score`` after the late penalty."""
        return score * (1 - self.penalty)

    def note(self, score: float, max_score: float) -> str | None:
        """What the feedback page says about the lateness (``None``: on time or not known)."""
        if not self.late_hours:
            return None
        how = (
            f"marked late by the course's LMS (counted as {self.late_hours:g} hours late)"
            if self.marked_late
            else f"{self.late_hours:.1f} hours late"
        )
        if not self.penalty:
            return f"Your submission was {how}."
        return (
            f"Your submission was {how}: the late policy takes {100 * self.penalty:g}% of your "
            f"score, {score:g} -> {self.score(score):g} / {max_score:g}."
        )


def _graded_dir(out: Path, assignment: str, student: str) -> Path:
    """Where nbgrader keeps a student's graded notebook; our records and stamp go there too."""
    return out / "course" / "autograded" / student / assignment


def _stored_result(out: Path, assignment: str, student: str) -> StudentResult | None:
    """The result stored for ``student`` by an earlier run, if any."""
    result = _graded_dir(out, assignment, student) / "result.json"
    return StudentResult.from_dict(json.loads(result.read_text())) if result.exists() else None


def _stored_record(graded: Path) -> SubmissionRecord | None:
    """The :class:`SubmissionRecord` in a student's ``graded`` folder, if any."""
    path = graded / SUBMISSION_RECORD
    return SubmissionRecord(**json.loads(path.read_text())) if path.exists() else None


def _reusable(
    out: Path, assignment: str, stored: StudentResult, submission: Submission, version: str
) -> bool:
    """Whether ``stored`` graded exactly these bytes with this version of the assignment."""
    stamp = _graded_dir(out, assignment, submission.student) / SUBMISSION_STAMP
    digest = hashlib.sha256(submission.content).hexdigest()
    return stored.version == version and stamp.exists() and stamp.read_text() == digest


def _failed(submission: Submission, error: Exception) -> StudentResult:
    """The grader itself failed: report it and keep whatever grade was stored before."""
    return StudentResult(
        submission.student, Status.ERROR, notes=[f"grader error: {type(error).__name__}: {error}"]
    )


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


class _ClassDirectory:
    """The course directory of one assignment: the staged source and its release, the gradebook
    (open for the run, used from this thread only), ``autograded/``, the feedback pages and the
    grading log."""

    def __init__(self, assignment: str, out: Path, source: NotebookNode, rule: late.AssignmentRule):
        self.assignment = assignment
        self.rule = rule
        self.out = out
        self.course = Course(out / "course")
        self.release = self.course.generate_assignment(assignment, source)
        (out / "feedback").mkdir(parents=True, exist_ok=True)
        self.gradebook = self.course.gradebook()

    def __enter__(self) -> _ClassDirectory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.gradebook.close()

    def graded_dir(self, student: str) -> Path:
        return _graded_dir(self.out, self.assignment, student)

    def receive(self, submission: Submission) -> None:
        """Keep the file as nbgrader's ``submitted/`` copy, and the student in the gradebook."""
        submitted = self.course.notebook("submitted", self.assignment, submission.student)
        submitted.parent.mkdir(parents=True, exist_ok=True)
        submitted.write_bytes(submission.content)
        self.gradebook.update_or_create_student(submission.student)
        self.gradebook.update_or_create_submission(self.assignment, submission.student)

    def store_grades(self, result: StudentResult, submission: Submission) -> None:
        """The result's points in the gradebook, and the graded notebook in ``autograded/``
        (an unreadable file has none: all its grades are 0)."""
        if result.notebook is None:
            notebook = self.gradebook.find_submission_notebook(
                self.assignment, self.assignment, result.student
            )
            for grade in notebook.grades:
                grade.auto_score, grade.needs_manual_grade = 0, False
            self.gradebook.db.commit()
            return
        nb = nbformat.from_dict(result.notebook)
        points = {test.grade_id: test.points for test in result.tests}
        _save_auto_grades(self.gradebook, nb, self._resources(result.student), points)
        graded = self.graded_dir(result.student)
        graded.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, graded / f"{self.assignment}.ipynb")

    def write_feedback(self, result: StudentResult, submission: Submission) -> None:
        """The student's feedback page (:mod:`autograder.feedback`), with the student's name
        and, first, what the late policy took."""
        record = SubmissionRecord.of(submission, self.rule)
        late_note = record.note(result.score, result.max_score)
        page = feedback.render(
            student=result.student,
            name=record.name,
            assignment=self.assignment,
            score=result.score,
            max_score=result.max_score,
            tests=result.tests,
            notes=[late_note, *result.notes] if late_note else result.notes,
        )
        (self.out / "feedback" / f"{result.student}.html").write_text(page)

    def record_result(self, result: StudentResult, submission: Submission) -> None:
        """The result record (``result.json``, without the notebook) and the
        :class:`SubmissionRecord`, the stamp of the bytes they graded (written last but one: a
        run that fails before it grades the student again), and a row of the grading log: when,
        which version of the assignment, which score."""
        graded = self.graded_dir(result.student)
        graded.mkdir(parents=True, exist_ok=True)
        record = {k: v for k, v in result.to_dict().items() if k != "notebook"}
        (graded / "result.json").write_text(json.dumps(record, indent=1))
        self._write_record(graded, SubmissionRecord.of(submission, self.rule))
        digest = hashlib.sha256(submission.content).hexdigest()
        (graded / SUBMISSION_STAMP).write_text(digest)
        log = self.course.root / GRADING_LOG
        new = not log.exists()
        with log.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(GRADING_LOG_COLUMNS)
            writer.writerow(
                [
                    datetime.now(UTC).isoformat(timespec="seconds"),
                    self.assignment,
                    result.student,
                    result.version,
                    f"{result.score:g}",
                    f"{result.max_score:g}",
                    result.status,
                ]
            )

    def update_record(self, result: StudentResult, submission: Submission) -> None:
        """For a stored result reused as it is: its :class:`SubmissionRecord` and feedback page
        again if the student's name or lateness changed since (a new deadline or late policy)."""
        graded = self.graded_dir(result.student)
        record = SubmissionRecord.of(submission, self.rule)
        if _stored_record(graded) != record:
            self.write_feedback(result, submission)
            self._write_record(graded, record)

    @staticmethod
    def _write_record(graded: Path, record: SubmissionRecord) -> None:
        (graded / SUBMISSION_RECORD).write_text(json.dumps(asdict(record), indent=1))

    def _resources(self, student: str) -> dict:
        return {
            "nbgrader": {
                "student": student,
                "assignment": self.assignment,
                "notebook": self.assignment,
                "db_url": self.course.db_url,
            }
        }

    def write_grades_csv(self, path: Path) -> None:
        """One row per student ever graded on this assignment, from the gradebook and the stored
        records (:data:`GRADES_COLUMNS`): ``score`` is the points after the late policy's
        ``penalty`` (a fraction), ``late`` the hours late (empty: not known), then each test's
        points."""
        tests = [grade_id(c) for c in self.release.cells if is_test(c)]
        rows = []
        for submission in sorted(
            self.gradebook.find_assignment(self.assignment).submissions,
            key=lambda s: s.student.id,
        ):
            graded = self.graded_dir(submission.student.id)
            result = graded / "result.json"
            status = json.loads(result.read_text())["status"] if result.exists() else ""
            record = _stored_record(graded) or SubmissionRecord()
            hours = record.late_hours
            by_name = {g.name: g.score for g in submission.notebooks[0].grades}
            rows.append(
                [
                    submission.student.id,
                    record.name,
                    self.assignment,
                    f"{round(record.score(submission.score), 4):g}",
                    f"{submission.max_score:g}",
                    status,
                    "" if hours is None else f"{round(hours, 2):g}",
                    f"{record.penalty:g}",
                    *(f"{by_name.get(t) or 0:g}" for t in tests),
                ]
            )
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([*GRADES_COLUMNS, *tests])
            writer.writerows(rows)


# The steps on the instructor's side, from each result record, in this order.
CLASS_STEPS = (
    _ClassDirectory.store_grades,
    _ClassDirectory.write_feedback,
    _ClassDirectory.record_result,
)


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
    lines.extend(_regrade_lines(result))
    if result.lms:
        lines.append(f"read as a {result.lms.capitalize()} download")
    if result.skipped:
        lines.append("not graded:")
        lines.extend(f"  {reason}" for reason in result.skipped)
    problems = [s for s in result.students if s.status is not Status.GRADED]
    if problems:
        lines.append("problems:")
        lines.extend(f"  {s.student}: {s.status}. {' '.join(s.notes)}" for s in problems)
    lines.append(f"sandbox: {result.sandbox} (autograder/README.md: what it keeps)")
    lines.append(f"grades: {result.out / 'grades.csv'}; feedback: {result.out / 'feedback'}/")
    return "\n".join(lines)


def _regrade_lines(result: ClassResult) -> list[str]:
    """Which version graded the class, which students it regraded because the assignment
    changed, and whose score changed since the last run (old → new)."""
    lines = [f"assignment version: {short(result.version)}"]
    regraded = sorted(
        s.student
        for s in result.students
        if s.student in result.previous
        and s.status is not Status.ERROR
        and result.previous[s.student].version != result.version
    )
    if regraded:
        earlier = sorted({short(result.previous[s].version) or "unrecorded" for s in regraded})
        lines[0] += (
            f" (changed since {', '.join(earlier)}: {len(regraded)} graded before were regraded)"
        )
    changes = result.score_changes()
    if changes:
        lines.append("score changed since the last run (old → new):")
        lines.extend(f"  {student}: {old:g} → {new:g}" for student, old, new in changes)
    return lines
