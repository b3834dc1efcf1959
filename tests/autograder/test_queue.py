"""Grading through the queue (autograder/queue.py): a real ``redis-server`` on 127.0.0.1 and worker
processes started as ``python -m autograder worker``, as an instructor would run them.

A class graded through the queue gets exactly the grades and feedback pages of the same class
graded locally; a worker killed in the middle of a notebook loses no grade and counts none twice;
an interrupted command run again does not grade again what it recorded; an unreachable broker is
an error at once, before anything is written; without a worker the command stops, and its next
run grades the class; a worker whose checkout differs refuses, named; the hostile submissions are
contained on a worker exactly as locally.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import psutil
import pytest
import redis
from gradeclass import REPO, Homework, autograder, read_grades, write_zip
from test_hostile_submissions import LIMITS, attacks, feedback_text, student_of, write_class

from autograder import sandbox
from autograder.notebooks import grade_id
from autograder.splice import solution_source

pytestmark = [pytest.mark.autograder, pytest.mark.slow, pytest.mark.xdist_group("queue")]

ASSIGNMENT = "hw1-backprop"
HW1 = Homework(ASSIGNMENT)
TIMEOUT = 600  # the machine may be loaded: generous, and every wait polls for its condition
# Databases of the one server: the shared workers, the stale worker, the workers killed, the
# worker that comes late.
SHARED_DB, STALE_DB, KILL_DB, LATE_DB = 0, 1, 2, 3
# The attacks graded through the queue too (the whole corpus runs in test_hostile_submissions).
HOSTILE = [
    "infinite_loop",
    "fork_bomb",
    "memory_bomb",
    "kernel_crash",
    "read_other_student",
    "write_gradebook",
    "network",
    "invalid_json",
]


def wait_for(condition: Callable[[], object], what: str, timeout: float = TIMEOUT):
    """Poll ``condition`` until it holds (returning its value), or fail saying ``what``."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)
    return value


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory) -> Iterator[int]:
    """A Redis server of its own on the loopback, no persistence; stopped at the end."""
    folder = tmp_path_factory.mktemp("redis")
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(folder)]
    with (folder / "redis.log").open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def answers() -> bool:
        assert server.poll() is None, (folder / "redis.log").read_text()
        try:
            return redis.Redis(port=port, socket_connect_timeout=2).ping()
        except redis.ConnectionError:
            return False

    wait_for(answers, "redis-server to answer", 60)
    yield port
    server.terminate()
    server.wait(60)


def broker(port: int, db: int) -> str:
    return f"redis://127.0.0.1:{port}/{db}"


class Worker:
    """``python -m autograder worker`` in a session of its own, its log in a file."""

    def __init__(self, url: str, name: str, folder: Path, *options: str):
        self.name = name
        self.log = folder / f"{name}.log"
        command = [sys.executable, "-m", "autograder", "worker", "--broker", url]
        command += ["--concurrency", "1", "--name", f"{name}@test", *options]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> Worker:
        def ready() -> bool:
            assert self.process.poll() is None, self.text()
            return f"{self.name}@test ready." in self.text()

        wait_for(ready, f"worker {self.name} to start")
        return self

    def processes(self) -> list[psutil.Process]:
        try:
            parent = psutil.Process(self.process.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def command_lines(self) -> list[str]:
        """The command lines of the worker and its processes that are still running."""
        lines = []
        for process in self.processes():
            try:
                lines.append(" ".join(process.cmdline()))
            except psutil.NoSuchProcess:  # ended while we looked (a zombie too)
                pass
        return lines

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the worker and check that none of its processes (its kernels) is left."""
        processes = self.processes()
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(60)
        _, alive = psutil.wait_procs(processes, timeout=60)
        assert alive == [], f"left running after {self.name}: {alive}"


@pytest.fixture(scope="module")
def workers(redis_port, tmp_path_factory) -> Iterator[list[Worker]]:
    """The two workers most tests share."""
    folder = tmp_path_factory.mktemp("workers")
    url = broker(redis_port, SHARED_DB)
    started = [Worker(url, f"shared{i}", folder, "--visibility-timeout", "300") for i in (1, 2)]
    try:
        yield [worker.wait_ready() for worker in started]
    finally:
        for worker in started:
            worker.stop()


def grade_command(url: str, submissions: Path, out: Path, *options: object) -> list[str]:
    command = [sys.executable, "-m", "autograder", "grade", ASSIGNMENT, submissions, "--out", out]
    return [*map(str, command), "--broker", url, *map(str, options)]


def grade_through(url: str, submissions: Path, out: Path, *options: object):
    return subprocess.run(
        grade_command(url, submissions, out, *options),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def small_class(folder: Path, prefix: str = "") -> Path:
    """The solution, the blank release, three typical mistakes and a file that is no notebook."""
    notebooks = HW1.case_notebooks()
    chosen = {name: notebooks[name] for name in sorted(notebooks)[:5]}
    chosen["solution"], chosen["blank"] = notebooks["solution"], notebooks["blank"]
    chosen = {f"{prefix}{name}": nb for name, nb in chosen.items()}
    chosen[f"{prefix}not_json"] = b"this is not a notebook"
    return write_zip(folder / f"{prefix}class.zip", chosen)


def feedback_pages(out: Path) -> dict[str, str]:
    return {page.name: page.read_text() for page in (out / "feedback").glob("*.html")}


def grading_log(out: Path) -> list[dict[str, str]]:
    with (out / "course" / "grading-log.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def local_class(tmp_path_factory):
    """The small class, graded locally: what the queue must give."""
    folder = tmp_path_factory.mktemp("local")
    archive = small_class(folder)
    autograder("grade", ASSIGNMENT, archive, "--out", folder / "out")
    return archive, folder / "out"


def test_a_class_graded_through_the_queue_gets_exactly_the_local_grades(
    redis_port, workers, local_class, tmp_path
):
    archive, local = local_class
    run = grade_through(broker(redis_port, SHARED_DB), archive, tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    assert read_grades(tmp_path / "out") == read_grades(local)
    assert feedback_pages(tmp_path / "out") == feedback_pages(local)
    assert run.stderr.count(f"{ASSIGNMENT} [") == len(read_grades(local))  # the progress bar
    both = [w for w in workers if "grading " in w.text()]
    assert len(both) == 2, "both workers should have graded"


def test_a_worker_killed_in_the_middle_of_a_notebook_loses_no_grade(redis_port, tmp_path):
    """The worker running the slow notebook is killed (SIGKILL, with its kernels) once the
    notebook has started; the other worker grades it after the visibility timeout."""
    marker = f"started-{os.getpid()}-{time.monotonic_ns()}"
    slow = slow_notebook(marker)
    archive = write_zip(tmp_path / "class.zip", {"slow": slow, "quick": HW1.notebook({})})
    url = broker(redis_port, KILL_DB)
    pair = [Worker(url, f"kill{i}", tmp_path, "--visibility-timeout", "15") for i in (1, 2)]
    try:
        for worker in pair:
            worker.wait_ready()
        command = subprocess.Popen(
            grade_command(url, archive, tmp_path / "out"),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        root = Path(sandbox.choose("auto").scratch_root() or tempfile.gettempdir())
        started = wait_for(lambda: list(root.glob(f"autograder-*/*/{marker}")), "the slow run")
        workdir = str(started[0].parent)
        running = [w for w in pair if any(workdir in line for line in w.command_lines())]
        assert len(running) == 1, "one worker runs the slow notebook"
        running[0].stop(signal.SIGKILL)
        stdout, stderr = command.communicate(timeout=TIMEOUT)
        assert command.returncode == 0, stdout + stderr
    finally:
        for worker in pair:
            worker.stop()
    grades = read_grades(tmp_path / "out")
    assert set(grades) == {"slow", "quick"}
    assert grades["slow"]["score"] == grades["quick"]["score"] == f"{HW1.max_score:g}"
    assert sorted(row["student"] for row in grading_log(tmp_path / "out")) == ["quick", "slow"]
    survivor = next(w for w in pair if w is not running[0])
    assert f"grading slow of {ASSIGNMENT}" in survivor.text()


def slow_notebook(marker: str) -> nbformat.NotebookNode:
    """The solution, whose first answer leaves ``marker`` in its working directory and sleeps."""
    linear = next(solution_source(c) for c in HW1.source.cells if grade_id(c) == "linear")
    code = f"import pathlib, time\npathlib.Path({marker!r}).write_text('x')\ntime.sleep(6)\n"
    return HW1.notebook({"linear": code + linear})


def test_an_interrupted_command_run_again_grades_only_what_it_had_not_recorded(
    redis_port, workers, local_class, tmp_path
):
    archive, local = local_class
    out, url = tmp_path / "out", broker(redis_port, SHARED_DB)
    # Other limits than the first test's: other tasks, not the results stored by it.
    options = ["--cell-timeout", "59"]
    before = [len(w.text()) for w in workers]
    first = subprocess.Popen(
        grade_command(url, archive, out, *options),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    graded_dir = out / "course" / "autograded"
    wait_for(lambda: list(graded_dir.glob("*/*/result.json")), "a first recorded result")
    first.send_signal(signal.SIGINT)
    first.wait(TIMEOUT)
    recorded = {p.parent.parent.name for p in graded_dir.glob("*/*/submission.sha256")}
    assert 0 < len(recorded) < len(read_grades(local)), "interrupted in the middle"

    again = grade_through(url, archive, out, *options)
    assert again.returncode == 0, again.stdout + again.stderr
    for student in recorded:
        line = next(ln for ln in again.stderr.splitlines() if f"  {student}: " in ln)
        assert "(unchanged, not re-run)" in line
    assert read_grades(out) == read_grades(local)
    assert feedback_pages(out) == feedback_pages(local)
    log = grading_log(out)
    assert sorted(row["student"] for row in log) == sorted(read_grades(local))
    graded = "".join(w.text()[start:] for w, start in zip(workers, before, strict=True))
    for student in read_grades(local):
        times = graded.count(f"grading {student} of {ASSIGNMENT}")
        # recorded before the interruption: graded once; the rest at least once (a task still
        # queued when the command stopped is sent again; a copy may run, counted once)
        assert times == 1 if student in recorded else times >= 1, student


def test_without_a_worker_the_command_stops_and_its_next_run_grades_the_class(
    redis_port, local_class, tmp_path
):
    archive, local = local_class
    url, out = broker(redis_port, LATE_DB), tmp_path / "out"
    alone = grade_through(url, archive, out, "--worker-wait", "3")
    assert alone.returncode == 2, alone.stdout + alone.stderr
    assert f"no worker answers at {url} yet" in alone.stderr
    stopped = rf"error: no result for 3 s and no worker answers at {url}: (\d+) of \1 submissions"
    assert re.search(stopped, alone.stderr), alone.stderr
    assert not (out / "grades.csv").exists()
    # A worker comes. Its notebooks take longer than the new wait, but it answers: no stop.
    worker = Worker(url, "late", tmp_path).wait_ready()
    try:
        again = grade_through(url, archive, out, "--worker-wait", "0.5")
    finally:
        worker.stop()
    assert again.returncode == 0, again.stdout + again.stderr
    assert "no worker answers" not in again.stderr
    assert read_grades(out) == read_grades(local)
    assert feedback_pages(out) == feedback_pages(local)


def test_an_unreachable_broker_is_an_error_at_once_and_nothing_is_written(local_class, tmp_path):
    archive, _ = local_class
    url = f"redis://127.0.0.1:{free_port()}/0"
    start = time.monotonic()
    run = grade_through(url, archive, tmp_path / "out")
    assert run.returncode == 2
    assert f"error: cannot reach the broker {url}" in run.stderr
    assert time.monotonic() - start < 120  # at once: no retrying (start-up counted, under load)
    assert not (tmp_path / "out").exists()
    worker = subprocess.run(
        [sys.executable, "-m", "autograder", "worker", "--broker", url],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert worker.returncode == 2
    assert f"cannot reach the broker {url}" in worker.stderr


def test_a_worker_refuses_to_start_without_the_sandbox_unless_told(redis_port):
    env = {**os.environ, "PATH": "/nonexistent"}  # no bwrap to be found
    run = subprocess.run(
        [sys.executable, "-m", "autograder", "worker", "--broker", broker(redis_port, STALE_DB)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert run.returncode == 2
    assert "cannot sandbox" in run.stderr and "--sandbox none" in run.stderr


def test_a_worker_whose_checkout_differs_refuses_and_is_named(redis_port, tmp_path):
    solutions = tmp_path / "solutions"
    shutil.copytree(REPO / "solutions" / ASSIGNMENT, solutions / ASSIGNMENT)
    (solutions / ASSIGNMENT / "notes.txt").write_text("a file the instructor's checkout lacks")
    url = broker(redis_port, STALE_DB)
    stale = Worker(url, "stale", tmp_path, "--solutions", str(solutions)).wait_ready()
    try:
        archive = write_zip(tmp_path / "class.zip", {"solution": HW1.notebook({})})
        run = grade_through(url, archive, tmp_path / "out")
    finally:
        stale.stop()
    assert run.returncode == 1, run.stdout + run.stderr
    assert "worker stale@test refused the task: its checkout has version" in run.stdout
    # no grade from another version: the student is listed, with no result recorded
    assert read_grades(tmp_path / "out")["solution"]["status"] == ""
    assert not list((tmp_path / "out" / "course" / "autograded").glob("*/*/result.json"))


@pytest.fixture(scope="module")
def hostile(redis_port, workers, tmp_path_factory):
    """Part of the hostile corpus in one class, graded locally and through the queue; the
    network attack aims at the broker's port."""
    folder = tmp_path_factory.mktemp("hostile-queue")
    local, queued = folder / "local", folder / "queued"
    paths = {
        "solutions": REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.md",
        "tests": Path(__file__),
        "archive": folder / "hostile.zip",
        "submitted": queued / "course" / "submitted" / "solution" / ASSIGNMENT,
        "gradebook": queued / "course" / "gradebook.db",
        "feedback": queued / "feedback" / "solution.html",
    }
    chosen = [a for a in attacks(paths, redis_port) if a.student in HOSTILE]
    entries = [("lms-export/solution.ipynb", HW1.notebook({}))]
    entries += [(a.zip_name or f"lms-export/{a.student}.ipynb", a.content) for a in chosen]
    archive = write_class(paths["archive"], entries)
    autograder("grade", ASSIGNMENT, archive, "--out", local, *LIMITS)
    run = grade_through(broker(redis_port, SHARED_DB), archive, queued, *LIMITS)
    assert run.returncode == 0, run.stdout + run.stderr
    return {"attacks": chosen, "local": local, "queued": queued}


def test_hostile_submissions_are_contained_on_a_worker_exactly_as_locally(hostile):
    assert [a.student for a in hostile["attacks"]] == HOSTILE
    queued, local = hostile["queued"], hostile["local"]
    grades = read_grades(queued)
    assert grades == read_grades(local)
    assert feedback_pages(queued) == feedback_pages(local)
    for attack in hostile["attacks"]:
        student = student_of(attack, grades)
        assert HW1.failed_tests(grades[student]) == attack.failed, student
        assert grades[student]["status"] == attack.status, student
        assert attack.reason in feedback_text(queued, student), student
    assert grades["solution"]["score"] == f"{HW1.max_score:g}"  # the other tasks are untouched
