"""A class on a JupyterHub: ``python -m autograder hub {setup,start,release,collect,grade,return}``.

Each command is a thin layer over nbgrader's own tools and this grader (autograder/README.md,
"A class on a JupyterHub"; the hub's configuration is ``deploy/jupyterhub/``):

    setup    the Unix group of the class, an account per student on the roster, the exchange and
             the instructor's course directory with their permissions
    start    JupyterHub and its proxy (students log in with their Unix password)
    release  exercises/<assignment>/ into the exchange (``nbgrader release_assignment``); never
             anything from solutions/
    collect  the submissions (``nbgrader collect``): the latest one before the deadline, or the
             latest late one when a student has none on time
    grade    ``python -m autograder grade`` on the collected submissions, with the late policy
    return   the feedback pages into the exchange (``nbgrader release_feedback``): each student
             fetches their own in the Assignments tab

Run them as root (``sudo``): accounts and the exchange's permissions need it, and so does the
grading sandbox. The class is one TOML file (``deploy/jupyterhub/class.toml`` is the example).
"""

from __future__ import annotations

import csv
import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.utils import compute_checksum, parse_utc

from autograder import feedback, late
from autograder.notebooks import grade_id, is_answer, is_test, test_title
from autograder.release import EXERCISES, REPO
from autograder.submissions import STUDENT_ID

DEPLOY = REPO / "deploy" / "jupyterhub"
SINGLEUSER = DEPLOY / "singleuser"
PROXY = DEPLOY / "node_modules" / ".bin" / "configurable-http-proxy"
SOLUTION_MARKERS = ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS")
# What nbgrader's collect writes next to a submission (nbgrader.exchange.default.submit).
TIMESTAMP, SECRET = "timestamp.txt", "submission_secret.txt"


@dataclass(frozen=True)
class ClassConfig:
    """One class on one hub, read from its TOML file (see ``deploy/jupyterhub/class.toml``)."""

    course_id: str
    instructor: str
    students: tuple[str, ...]
    exchange: Path
    course_dir: Path
    hub_state: Path
    group: str
    port: int = 8000
    bind: str = "127.0.0.1"
    deadlines: dict[str, datetime] = field(default_factory=dict)
    late_policy: late.Policy = field(default_factory=late.Policy)

    @classmethod
    def load(cls, path: Path) -> ClassConfig:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ValueError(f"class file {path}: {error}") from None
        here = path.resolve().parent

        def folder(key: str) -> Path:
            return (here / data[key]).resolve()

        try:
            config = cls(
                course_id=data["course_id"],
                instructor=data["instructor"],
                students=tuple(data["students"]),
                exchange=folder("exchange"),
                course_dir=folder("course_dir"),
                hub_state=folder("hub_state"),
                group=data.get("group", data["course_id"]),
                port=int(data.get("port", 8000)),
                bind=data.get("bind", "127.0.0.1"),
                deadlines=dict(data.get("deadlines", {})),
                late_policy=late.Policy(**data.get("late", {})),
            )
        except KeyError as error:
            raise ValueError(f"class file {path}: {error.args[0]!r} is missing") from None
        except TypeError as error:
            raise ValueError(f"class file {path}: [late]: {error}") from None
        for name in (config.instructor, *config.students):
            if not STUDENT_ID.match(name) or "+" in name:
                raise ValueError(f"class file {path}: {name!r} is not a valid Unix user name")
        for assignment, deadline in config.deadlines.items():
            if not isinstance(deadline, datetime) or deadline.tzinfo is None:
                raise ValueError(
                    f"class file {path}: the deadline of {assignment} is not a date and time "
                    "with its UTC offset (e.g. 2026-12-14T23:59:00+01:00)"
                )
        return config


def singleuser_environment(course: ClassConfig, user: str) -> dict[str, str]:
    """What a user's JupyterLab gets from the spawner: nbgrader's configuration (the
    instructor's adds the formgrader on the course directory; a student's disables it)."""
    role = "instructor" if user == course.instructor else "student"
    return {
        "JUPYTER_CONFIG_PATH": os.pathsep.join(
            [str(SINGLEUSER / role), str(SINGLEUSER / "common")]
        ),
        "COURSE_ID": course.course_id,
        "NBGRADER_EXCHANGE": str(course.exchange),
        "COURSE_DIR": str(course.course_dir) if role == "instructor" else "",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
    }


# --- setup ----------------------------------------------------------------------------------


def setup(course: ClassConfig) -> list[str]:
    """Create what is missing: the class's group, an account per student (home readable by its
    owner only) and for the instructor, the exchange and the course directory. Idempotent;
    returns what it did. Passwords are set by the administrator (``passwd NAME``)."""
    done = []
    if not _group_exists(course.group):
        subprocess.run(["groupadd", course.group], check=True)
        done.append(f"created the group {course.group}")
    for name in (course.instructor, *course.students):
        if not _user_exists(name):
            subprocess.run(
                ["useradd", "--create-home", "--shell", "/bin/bash", "-K", "HOME_MODE=0700", name],
                check=True,
            )
            done.append(f"created the account {name} (set its password: passwd {name})")
        if name not in grp.getgrnam(course.group).gr_mem:
            subprocess.run(["usermod", "--append", "--groups", course.group, name], check=True)
            done.append(f"added {name} to the group {course.group}")
    # The exchange's root is world-writable with the sticky bit (nbgrader's documented set-up);
    # the course's folder in it is open to the class's group only, so a user who is not on the
    # roster can neither fetch nor submit.
    course.exchange.mkdir(parents=True, exist_ok=True)
    course.exchange.chmod(0o1777)
    exchange_course = course.exchange / course.course_id
    exchange_course.mkdir(exist_ok=True)
    os.chown(exchange_course, 0, grp.getgrnam(course.group).gr_gid)
    exchange_course.chmod(0o2750)
    course.course_dir.mkdir(parents=True, exist_ok=True)
    _write_course_config(course)
    _hand_over(course)
    course.hub_state.mkdir(parents=True, exist_ok=True)
    course.hub_state.chmod(0o700)
    return done


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _write_course_config(course: ClassConfig) -> None:
    """The course directory's ``nbgrader_config.py``: the grader's configuration, this course
    and its exchange (read by the nbgrader commands below and the instructor's formgrader)."""
    from autograder.course import CONFIG_FILE

    (course.course_dir / "nbgrader_config.py").write_text(
        '"""Written by `python -m autograder hub setup`: the course and its exchange."""\n\n'
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(CONFIG_FILE)!r})  # noqa: F821\n"
        f"c.CourseDirectory.course_id = {course.course_id!r}\n"
        f"c.Exchange.root = {str(course.exchange)!r}\n"
        "c.Exchange.path_includes_course = False\n"
    )


def _hand_over(course: ClassConfig) -> None:
    """The course directory belongs to the instructor (their formgrader works on it), mode
    0700: no student can open a submission, a grade or the gradebook."""
    user = pwd.getpwnam(course.instructor)
    for folder, _, files in os.walk(course.course_dir):
        for path in [folder, *(os.path.join(folder, f) for f in files)]:
            os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
    course.course_dir.chmod(0o700)


# --- start ----------------------------------------------------------------------------------


def environment_problems(course: ClassConfig) -> list[str]:
    """Why the hub cannot serve this class safely, if it cannot: the students' servers run the
    course environment as the students, so it must be readable by everyone, and the
    instructor's solutions must not be."""
    problems = []
    for path in (Path(sys.executable).resolve(), Path(sys.prefix), REPO / "minidl"):
        for folder in [*reversed(path.parents), path]:
            if folder.is_dir() and not folder.stat().st_mode & stat.S_IXOTH:
                problems.append(
                    f"{folder} (mode {stat.S_IMODE(folder.stat().st_mode):o}) is not "
                    f"traversable by other users, so the students cannot run {path}"
                )
                break
    for secret in (REPO / "solutions", REPO / "tests"):
        if secret.stat().st_mode & (stat.S_IROTH | stat.S_IXOTH):
            problems.append(
                f"{secret} is readable by other users: every student could open it "
                f"(chmod 0700 {secret})"
            )
    if not os.access(PROXY, os.X_OK):
        problems.append(f"{PROXY} is missing: run `make hub` (npm installs the proxy)")
    return problems


def start_command(course_file: Path, port: int | None = None) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run the hub in the foreground."""
    env = dict(os.environ, COURSE_HUB_CLASS=str(course_file.resolve()))
    if port is not None:
        env["COURSE_HUB_PORT"] = str(port)
    command = [
        str(Path(sys.executable).parent / "jupyterhub"),
        "--config",
        str(DEPLOY / "jupyterhub_config.py"),
    ]
    return command, env


# --- release, collect -----------------------------------------------------------------------


def _nbgrader(course: ClassConfig, *args: str) -> subprocess.CompletedProcess:
    """Run one of nbgrader's commands on the course directory (its ``nbgrader_config.py``)."""
    _write_course_config(course)
    scripts = str(Path(sys.executable).parent)  # nbgrader runs its environment's `alembic`
    result = subprocess.run(
        [os.path.join(scripts, "nbgrader"), *args],
        cwd=course.course_dir,
        capture_output=True,
        text=True,
        env=dict(os.environ, PATH=os.pathsep.join([scripts, os.environ.get("PATH", "")])),
    )
    _hand_over(course)
    if result.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{result.stderr.strip()}")
    return result


def _set_deadline(course: ClassConfig, assignment: str) -> None:
    """The assignment in the course's gradebook, with its deadline (nbgrader's ``duedate``,
    naive UTC as nbgrader stores it)."""
    deadline = course.deadlines.get(assignment)
    duedate = deadline.astimezone(UTC).replace(tzinfo=None) if deadline else None
    scripts = str(Path(sys.executable).parent)  # nbgrader runs its environment's `alembic`
    os.environ["PATH"] = os.pathsep.join([scripts, os.environ.get("PATH", "")])
    url = f"sqlite:///{course.course_dir / 'gradebook.db'}"
    with Gradebook(url, course.course_id) as gradebook:
        gradebook.update_or_create_assignment(assignment, duedate=duedate)
    _hand_over(course)


def release(course: ClassConfig, assignment: str, exercises: Path = EXERCISES) -> Path:
    """Put ``exercises/<assignment>/`` (what students get, never the solutions) into the
    exchange; return the released notebook's place in the exchange."""
    notebook = exercises / assignment / f"{assignment}.ipynb"
    if not notebook.is_file():
        raise FileNotFoundError(f"release: no {notebook} (run `python -m autograder release`)")
    text = notebook.read_text()
    if any(marker in text for marker in SOLUTION_MARKERS):
        raise ValueError(f"release: {notebook} holds a solution or a hidden test: not released")
    staged = course.course_dir / "release" / assignment
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir(parents=True)
    shutil.copy(notebook, staged / notebook.name)
    _set_deadline(course, assignment)
    _nbgrader(course, "release_assignment", assignment, "--force")
    # nbgrader creates the course's exchange folders world-readable; the class's group only.
    exchange_course = course.exchange / course.course_id
    os.chown(exchange_course, 0, grp.getgrnam(course.group).gr_gid)
    exchange_course.chmod(0o2750)
    return exchange_course / "outbound" / assignment / notebook.name


def collect(course: ClassConfig, assignment: str) -> list[str]:
    """Collect the submissions into ``<course_dir>/submitted/``: per student the latest one
    before the deadline, or the latest one if none came on time (nbgrader's
    ``--before-duedate``). Returns the students collected."""
    _set_deadline(course, assignment)
    args = ["collect", assignment, "--update"]
    if assignment in course.deadlines and course.late_policy.policy != "none":
        args.append("--before-duedate")
    _nbgrader(course, *args)
    submitted = course.course_dir / "submitted"
    return sorted(p.parent.name for p in submitted.glob(f"*/{assignment}") if p.is_dir())


# --- grade, return --------------------------------------------------------------------------


@dataclass(frozen=True)
class Lateness:
    submitted_at: datetime | None
    hours_late: float
    penalty: float  # the fraction of the score the late policy takes, as in the grader's grades.csv

    def score_after(self, score: float) -> float:
        return score * (1 - self.penalty)


def grading_dir(course: ClassConfig, assignment: str) -> Path:
    """Where ``python -m autograder grade`` writes: grades.csv, feedback/, its own course."""
    return course.course_dir / "grading" / assignment


def grade(course: ClassConfig, assignment: str, grade_args: list[str]) -> Path:
    """Grade the collected submissions with ``python -m autograder grade`` (the sandbox and the
    checks as always), then apply the late policy: ``grades.csv`` gets the submission time, the
    hours late and the penalty (its ``score`` is after the penalty), and each feedback page goes
    where nbgrader's ``release_feedback`` takes it. Returns ``grades.csv``."""
    from autograder.__main__ import main as autograder_main

    submitted = course.course_dir / "submitted"
    out = grading_dir(course, assignment)
    students = sorted(p.parent.name for p in submitted.glob(f"*/{assignment}") if p.is_dir())
    if not students:
        raise ValueError(f"grade: nothing collected for {assignment} (run `hub collect` first)")
    with_notebook = [
        s
        for s in students
        if (submitted / s / assignment).joinpath(f"{assignment}.ipynb").is_file()
    ]
    if with_notebook:
        code = autograder_main(
            ["grade", assignment, str(submitted), "--out", str(out), *grade_args]
        )
        if code == 2:
            raise RuntimeError("grade: python -m autograder grade refused to run (see above)")
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for student in students:
        folder = submitted / student / assignment
        result_file = out / "course" / "autograded" / student / assignment / "result.json"
        if student in with_notebook and result_file.exists():
            result = json.loads(result_file.read_text())
            if result["status"] == "graded" and _unanswered(folder / f"{assignment}.ipynb"):
                result["status"] = "no answers"
                result["notes"].insert(
                    0,
                    "You submitted the notebook without answers: every answer cell is as "
                    "released. Write your answers, save the notebook and submit again.",
                )
        else:
            result = _not_submitted(assignment, folder)
        lateness = _lateness(course, assignment, folder)
        rows[student] = (result, lateness)
        _write_feedback(course, assignment, student, result, lateness, folder)
    grades = out / "grades.csv"
    _write_grades(grades, assignment, rows)
    _hand_over(course)
    return grades


def _unanswered(notebook: Path) -> bool:
    """Whether every answer cell of a submitted notebook is as released (nbgrader's checksum
    of the released cell, kept in its metadata)."""
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception:  # an unreadable file has its own status
        return False
    answers = [c for c in nb.cells if is_answer(c)]
    return bool(answers) and all(
        c.metadata.nbgrader.get("checksum") == compute_checksum(c) for c in answers
    )


def _not_submitted(assignment: str, folder: Path) -> dict:
    """The result of a submission without the assignment's notebook: every test fails."""
    release = nbformat.read(EXERCISES / assignment / f"{assignment}.ipynb", as_version=4)
    tests = [
        feedback.TestResult(
            grade_id(c),
            test_title(c),
            0.0,
            float(c.metadata.nbgrader["points"]),
            "not run: your submission has no notebook of this assignment",
        )
        for c in release.cells
        if is_test(c)
    ]
    found = sorted(p.name for p in folder.iterdir() if p.name not in (TIMESTAMP, SECRET))
    note = (
        f"Your submission has no {assignment}.ipynb (it holds: {', '.join(found) or 'nothing'}). "
        f"Fetch the assignment again, answer in {assignment}.ipynb and submit that."
    )
    return {
        "status": "no notebook",
        "score": 0.0,
        "max_score": sum(t.max_points for t in tests),
        "tests": [asdict(t) for t in tests],
        "notes": [note],
    }


def _lateness(course: ClassConfig, assignment: str, folder: Path) -> Lateness:
    """The submission time from the exchange (nbgrader's ``timestamp.txt``) and the penalty."""
    stamp = folder / TIMESTAMP
    submitted_at = (  # nbgrader's parse_utc gives a naive datetime in UTC
        parse_utc(stamp.read_text().strip()).replace(tzinfo=UTC) if stamp.exists() else None
    )
    deadline = course.deadlines.get(assignment)
    if submitted_at is None or deadline is None:
        return Lateness(submitted_at, 0.0, 0.0)
    hours, fraction = late.penalty(course.late_policy, submitted_at, deadline)
    return Lateness(submitted_at, hours, fraction)


def _write_feedback(
    course: ClassConfig,
    assignment: str,
    student: str,
    result: dict,
    lateness: Lateness,
    folder: Path,
) -> None:
    """The student's page, with the lateness, as ``feedback/<student>/<assignment>/`` with the
    submission's timestamp and secret: what ``nbgrader release_feedback`` hands out."""
    notes = list(result["notes"])
    deadline = course.deadlines.get(assignment)
    if lateness.hours_late > 0:
        notes.insert(
            0,
            f"Submitted {_duration(lateness.hours_late)} after the deadline "
            f"({deadline:%Y-%m-%d %H:%M %Z}); late policy: {course.late_policy.describe()}: "
            f"{100 * lateness.penalty:g}% of the score off, "
            f"{result['score'] - lateness.score_after(result['score']):g} points "
            f"({result['score']:g} before the penalty).",
        )
    page = feedback.render(
        student=student,
        assignment=assignment,
        score=lateness.score_after(result["score"]),
        max_score=result["max_score"],
        tests=[feedback.TestResult(**t) for t in result["tests"]],
        notes=notes,
    )
    target = course.course_dir / "feedback" / student / assignment
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{assignment}.html").write_text(page)
    (target / f"{assignment}.html").chmod(0o644)  # readable in the exchange by its hash only
    for name in (TIMESTAMP, SECRET):
        if (folder / name).exists():
            shutil.copy(folder / name, target / name)


def _duration(hours: float) -> str:
    """``"2 d 3 h 5 min"``; under a minute, in seconds (a few seconds late is still late)."""
    if hours * 60 < 1:
        return f"{max(1, round(hours * 3600))} s"
    minutes = round(hours * 60)
    days, minutes = divmod(minutes, 24 * 60)
    text = f"{minutes // 60} h {minutes % 60} min"
    return f"{days} d {text}" if days else text


def _write_grades(path: Path, assignment: str, rows: dict[str, tuple[dict, Lateness]]) -> None:
    tests = [t["grade_id"] for result, _ in rows.values() for t in result["tests"]]
    tests = list(dict.fromkeys(tests))
    header = ["student", "assignment", "score", "max_score", "status", "submitted_at"]
    header += ["hours_late", "penalty", *tests]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for student, (result, lateness) in sorted(rows.items()):
            points = {t["grade_id"]: t["points"] for t in result["tests"]}
            writer.writerow(
                [
                    student,
                    assignment,
                    f"{lateness.score_after(result['score']):g}",
                    f"{result['max_score']:g}",
                    result["status"],
                    lateness.submitted_at.isoformat() if lateness.submitted_at else "",
                    f"{lateness.hours_late:.4f}",  # to 0.36 s, so that seconds late are not 0.00
                    f"{lateness.penalty:g}",
                    *(f"{points.get(t, 0):g}" for t in tests),
                ]
            )


def return_feedback(course: ClassConfig, assignment: str) -> list[str]:
    """Release the graded feedback into the exchange (``nbgrader release_feedback``): each
    page under a hash of its submission's secret, which only that student holds. Returns the
    students whose feedback was released."""
    pages = sorted((course.course_dir / "feedback").glob(f"*/{assignment}/{assignment}.html"))
    if not pages:
        raise ValueError(f"return: no feedback for {assignment} (run `hub grade` first)")
    _nbgrader(course, "release_feedback", assignment)
    return [p.parent.parent.name for p in pages]


# --- command line ---------------------------------------------------------------------------


def add_parser(commands) -> None:  # type: ignore[no-untyped-def]
    """Register ``hub`` and its subcommands on ``python -m autograder``'s subparsers."""
    hub = commands.add_parser("hub", help="a class on a JupyterHub (release, collect, grade ...)")
    steps = hub.add_subparsers(dest="hub_command", required=True)
    for name, text in (
        ("setup", "accounts, group, exchange and course directory of the class"),
        ("start", "run JupyterHub and its proxy in the foreground"),
        ("release", "put exercises/ASSIGNMENT into the exchange"),
        ("collect", "collect the submissions of ASSIGNMENT"),
        ("grade", "grade the collected submissions, with the late policy"),
        ("return", "release the feedback: students fetch it in the Assignments tab"),
    ):
        step = steps.add_parser(name, help=text)
        step.add_argument("--class", dest="class_file", type=Path, required=True)
        if name == "start":
            step.add_argument("--port", type=int)
        elif name != "setup":
            step.add_argument("assignment")


def run(args, extra: list[str]) -> int:  # type: ignore[no-untyped-def]
    """Run ``python -m autograder hub ...``; ``extra`` are options for ``autograder grade``."""
    if extra and args.hub_command != "grade":
        print(f"error: unrecognized arguments: {' '.join(extra)}", file=sys.stderr)
        return 2
    try:
        course = ClassConfig.load(args.class_file)
        if args.hub_command == "setup":
            for line in setup(course) or ["nothing to do: the class is set up"]:
                print(line)
        elif args.hub_command == "start":
            if problems := environment_problems(course):
                print("error: the hub cannot serve this class:", *problems, sep="\n  ")
                return 2
            command, env = start_command(args.class_file, args.port)
            os.execve(command[0], command, env)
        elif args.hub_command == "release":
            print(f"released {release(course, args.assignment)}")
        elif args.hub_command == "collect":
            students = collect(course, args.assignment)
            print(f"collected {len(students)} submissions: {', '.join(students)}")
        elif args.hub_command == "grade":
            print(f"grades: {grade(course, args.assignment, extra)}")
        elif args.hub_command == "return":
            students = return_feedback(course, args.assignment)
            print(f"returned the feedback of {len(students)} students: {', '.join(students)}")
    except (ValueError, FileNotFoundError, RuntimeError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
