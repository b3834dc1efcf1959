"""Grade the same class of Homework 1 with ``python -m autograder`` and with plain
``nbgrader autograde``, in the same run, and compare.

The class: ``--students`` submissions (default 50), the instructor's solution and the typical
mistakes of tests/autograder/autograder_cases/hw1-backprop/ in turn. Every grader runs with one BLAS
thread per kernel (``OMP_NUM_THREADS=1`` etc.), the setting the pipeline uses; with NumPy's
default of one thread per core, two notebooks at once fight over the cores and everything is
several times slower.

Two baselines, both plain ``nbgrader autograde`` on an nbgrader course with the same source:

- *as submitted*: the notebooks as the students hand them in, including the ungraded demo at the
  end (training on digits), which nbgrader runs and the pipeline skips;
- *graded cells only*: the same notebooks without the demo cells, so both graders execute the
  same cells and the comparison is of the machinery alone.

Printed per grader: wall time, submissions per minute, the mean time spent executing one notebook
(from the kernel's first to last reply), and for the pipeline its overhead per submission beyond
that execution: ``workers * wall / n - mean execution`` (kernel start-up, nbgrader's gradebook,
restoring and sanitizing, feedback). Targets: at least 2x the plain throughput on 2 cores, and at
most 1 s of overhead per submission.

The pipeline grades the class once per isolation tier this machine gives the user running the
benchmark (autograder/sandbox.py; ``none`` is the unsandboxed reference), and prints each tier's
overhead; the tiers it cannot give are named with the reason. As root on cgroup v1 that is
``cgroup1`` and ``none``; a normal user's tier (``rlimit``) needs a normal user:
``runuser -u USER -- .venv/bin/python -m benchmarks.bench_grading --no-baseline``.

Run from the repository root: ``.venv/bin/python -m benchmarks.bench_grading [--students N]
[--workers W] [--tiers cgroup1,rlimit,...] [--no-baseline]`` (about 10 minutes for 50 students,
most of it plain nbgrader).

With ``--broker`` it compares grading through the queue (:mod:`autograder.queue`) instead: a
``redis-server`` of its own on 127.0.0.1 and worker processes of one slot each
(``python -m autograder worker --concurrency 1``), started before the clock starts. The same class
is graded locally with ``--workers`` threads, through the queue with as many worker processes
(target: the queue's throughput within 10 % of local grading on the same cores), and through the
queue with one worker, to show how throughput scales with workers.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import redis

from autograder import sandbox
from autograder.course import CONFIG_FILE, Course
from autograder.grading import grade_class
from autograder.notebooks import is_demo, read_source, source_path
from autograder.runner import KERNEL_ENV, Limits
from autograder.splice import parse_cells, submission

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "hw1-backprop"
CASES = REPO / "tests" / "autograder" / "autograder_cases" / "hw1-backprop"


def make_class(n: int, folder: Path, *, keep_demo: bool) -> Path:
    source = read_source(source_path(REPO / "solutions", ASSIGNMENT))
    release = nbformat.read(REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    variants = [({}, False)] + [parse_cells(p.read_text()) for p in sorted(CASES.glob("*.cells"))]
    folder.mkdir(parents=True)
    for i in range(n):
        replacements, blank = variants[i % len(variants)]
        nb = submission(release, source, replacements, blank=blank)
        if not keep_demo:
            nb.cells = [c for c in nb.cells if not is_demo(c)]
        nbformat.write(nb, folder / f"student{i:03d}.ipynb")
    return folder


def plain_nbgrader(students: Path, root: Path) -> float:
    """Wall time of ``nbgrader autograde`` on an nbgrader course holding ``students``."""
    source = read_source(source_path(REPO / "solutions", ASSIGNMENT))
    Course(root).generate_assignment(ASSIGNMENT, source)
    shutil.copy(CONFIG_FILE, root / "nbgrader_config.py")
    for path in students.glob("*.ipynb"):
        target = root / "submitted" / path.stem / ASSIGNMENT
        target.mkdir(parents=True)
        shutil.copy(path, target / f"{ASSIGNMENT}.ipynb")
    env = {**os.environ, **KERNEL_ENV}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT, "--log-level=ERROR"],
        cwd=root,
        env=env,
        check=True,
    )
    return time.perf_counter() - start


def grade_pipeline(
    submitted: Path, out: Path, workers: int, tier: str
) -> tuple[float, float, float]:
    """Wall time, mean notebook execution and overhead per submission of the pipeline."""
    source = read_source(source_path(REPO / "solutions", ASSIGNMENT))
    # The grader starts from a course whose assignment nbgrader has already generated.
    Course(out / "course").generate_assignment(ASSIGNMENT, source)
    start = time.perf_counter()
    result = grade_class(
        ASSIGNMENT, submitted, out, workers=workers, limits=Limits(sandbox=tier), progress=None
    )
    wall = time.perf_counter() - start
    assert all(s.status in ("graded",) for s in result.students), "a submission failed"
    n = len(result.students)
    execution = sum(s.execution_seconds for s in result.students) / n
    return wall, execution, workers * wall / n - execution


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A Redis server on a free port of 127.0.0.1, without persistence: its URL."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    server = subprocess.Popen(
        [*command, "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL
    )
    client = redis.Redis(port=port)
    try:
        _wait(lambda: _answers(client), "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(60)


def _answers(client: redis.Redis) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


def _wait(condition, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not start in {timeout:g} s")
        time.sleep(0.2)


@contextlib.contextmanager
def queue_workers(url: str, count: int, folder: Path) -> Iterator[None]:
    """``count`` worker processes of one slot each, ready; stopped at the end."""
    workers = []
    for i in range(count):
        log = folder / f"worker{i}.log"
        command = [sys.executable, "-m", "autograder", "worker", "--broker", url]
        with log.open("w") as handle:
            process = subprocess.Popen(
                [*command, "--concurrency", "1", "--name", f"bench{i}@local"],
                cwd=REPO,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        workers.append((process, log, f"bench{i}@local ready."))
    try:
        for process, log, ready in workers:
            _wait(functools.partial(_worker_ready, process, log, ready), "a worker")
        yield
    finally:
        for process, _, _ in workers:
            os.killpg(process.pid, signal.SIGTERM)
        for process, _, _ in workers:
            process.wait(120)


def _worker_ready(process: subprocess.Popen, log: Path, ready: str) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"a worker exited: {log.read_text()}")
    return ready in log.read_text()


def bench_queue(n: int, workers: int) -> None:
    """Local grading with ``workers`` threads against the queue with ``workers`` worker
    processes and with one."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        submitted = make_class(n, tmp / "submitted", keep_demo=True)

        def timed(out: str, **options) -> float:
            start = time.perf_counter()
            result = grade_class(ASSIGNMENT, submitted, tmp / out, progress=None, **options)
            assert all(s.status == "graded" for s in result.students), "a submission failed"
            return time.perf_counter() - start

        local = timed("local", workers=workers)
        walls = {}
        with redis_server(tmp) as url:
            for count in (workers, 1):
                redis.Redis.from_url(url).flushdb()  # no result of the run before is reused
                with queue_workers(url, count, tmp):
                    walls[count] = timed(f"queue{count}", broker=url)

    print(f"{n} submissions of {ASSIGNMENT}, {os.cpu_count()} cores")
    print(f"{'grader':<48} {'wall s':>8} {'per min':>8}")
    rows = [(f"local, {workers} workers", local)]
    rows += [
        (f"through the queue, {count} worker process{'es' * (count > 1)}", walls[count])
        for count in walls
    ]
    for name, wall in rows:
        print(f"{name:<48} {wall:8.1f} {60 * n / wall:8.1f}")
    overhead = walls[workers] / local - 1
    print(
        f"the queue's overhead on the same cores: {100 * overhead:+.1f} % of local wall time "
        "(target <= 10 %)"
    )
    per_worker = 60 * n / walls[1]
    speedup = walls[1] / walls[workers]
    print(
        f"scaling: {per_worker:.1f} per minute with 1 worker, {speedup:.2f}x with {workers} "
        f"({100 * speedup / workers:.0f} % of linear); with a core per worker, W workers grade "
        f"about {per_worker * speedup / workers:.1f} x W submissions per minute"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tiers", default=",".join(sandbox.TIERS), help="tiers to time")
    parser.add_argument("--no-baseline", action="store_true", help="skip plain nbgrader")
    parser.add_argument(
        "--broker", action="store_true", help="compare local grading with grading through a queue"
    )
    args = parser.parse_args()
    n = args.students
    os.environ.update(KERNEL_ENV)  # the pipeline's kernels get it anyway; nbgrader's inherit it
    if args.broker:
        bench_queue(n, args.workers)
        return
    tiers, refused = [], {}
    for name in args.tiers.split(","):
        try:
            tiers.append(sandbox.choose(name).name)
        except sandbox.SandboxUnavailable as error:
            refused[name] = str(error)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        submitted = make_class(n, tmp / "submitted-as-is", keep_demo=True)
        pipelines = {t: grade_pipeline(submitted, tmp / t, args.workers, t) for t in tiers}
        plain = {}
        if not args.no_baseline:
            graded_only = make_class(n, tmp / "graded-cells-only", keep_demo=False)
            plain["nbgrader autograde, as submitted (runs the demo)"] = plain_nbgrader(
                submitted, tmp / "plain-as-is"
            )
            plain["nbgrader autograde, graded cells only"] = plain_nbgrader(
                graded_only, tmp / "plain-graded-only"
            )

    print(f"{n} submissions of {ASSIGNMENT}, {os.cpu_count()} cores, uid {os.getuid()}")
    reference = pipelines[tiers[0]][0] if tiers else None
    print(f"{'grader':<48} {'wall s':>8} {'per min':>8} {'vs first':>9}")
    rows = [
        (f"python -m autograder --sandbox {t} ({args.workers} workers)", w[0])
        for t, w in pipelines.items()
    ]
    for name, wall in rows + list(plain.items()):
        ratio = f"{wall / reference:8.2f}x" if reference else ""
        print(f"{name:<48} {wall:8.1f} {60 * n / wall:8.1f} {ratio:>9}")
    for tier, (wall, execution, overhead) in pipelines.items():
        print(
            f"pipeline, sandbox {tier}: mean notebook execution {execution:.2f} s, overhead per "
            f"submission {overhead:.2f} s (target <= 1 s); {60 * n / wall:.1f} per minute"
        )
    for name, reason in refused.items():
        print(f"sandbox {name}: not timed: {reason}")
    if "rlimit" in refused and os.getuid() == 0:
        print(
            "the rlimit tier's figure: as a normal user, `runuser -u USER -- "
            ".venv/bin/python -m benchmarks.bench_grading --no-baseline --tiers rlimit`"
        )


if __name__ == "__main__":
    main()
