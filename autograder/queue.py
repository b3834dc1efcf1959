"""Grade a class on many machines: one Celery task per submission, Redis as broker and result store.

The unit of work is the same as in local grading: a :class:`~autograder.pipeline.GradingTask`
(plain data) in, a :class:`~autograder.pipeline.StudentResult` out
(:func:`~autograder.pipeline.grade_submission`). The instructor's command keeps everything else:
the reference run (once per class; its expected values travel in every task), the gradebook, the
feedback pages and ``grades.csv``, written from the results as they arrive.

- Messages and results are JSON only (``accept_content=['json']``): a worker never unpickles what
  the broker hands it.
- A task is acknowledged when it has finished (``task_acks_late``), one at a time per slot
  (``worker_prefetch_multiplier=1``): the Redis transport keeps a delivered, unacknowledged message
  and delivers it again once ``visibility_timeout`` seconds have passed, so a worker killed in the
  middle of a notebook loses nothing; its submission is graded again by another worker. The
  timeout must exceed the longest notebook (``Limits.total_timeout`` plus start-up), or a slow
  notebook is graded twice (harmlessly: see below).
- A task's id is the hash of the whole task (the submission's bytes, the student, the assignment's
  version, the limits): a result stored under that id is that grading, however often the message
  was delivered or sent. The instructor's command reads each id's result once, so no grade is
  counted twice, and a result that a worker stored after the command was interrupted is used by
  the next run instead of grading the submission again.
- Every task names the assignment's version (:func:`autograder.version.assignment_version`); a
  worker whose checkout has another version refuses the task, and the refusal (which worker, both
  versions) is the student's grader error, as any other failure of the grader: the earlier grade
  is kept.
- A worker decides its sandbox itself: a task cannot turn it off.
- The command waits for results as long as some worker answers a ping; when none has come for
  ``worker_wait`` seconds and no worker answers, it stops with :class:`NoWorker` (what it
  recorded is kept, and the tasks stay queued for the next run).

``python -m autograder worker --broker URL`` runs :func:`run_worker`;
``python -m autograder grade ... --broker URL`` grades through :class:`QueueGrading`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, TextIO

import nbformat
from celery import Celery
from celery.signals import worker_shutdown
from celery.utils.log import get_task_logger
from kombu.utils.url import maybe_sanitize_url

from autograder import check_rewriting, sandbox
from autograder.pipeline import GradingTask, StudentResult, grade_submission, kernel_setup
from autograder.runner import KernelPool, Limits
from autograder.version import assignment_version, short

TASK_NAME = "autograder.grade_submission"
QUEUE_NAME = "autograder"
VISIBILITY_TIMEOUT = 3600.0  # seconds; Celery's default for Redis
RESULT_EXPIRES = 7 * 24 * 3600  # a result waits a week for the instructor's command
CONNECT_TIMEOUT = 5.0
WORKER_WAIT = 300.0  # seconds without a result, and no worker answering, before the command stops
PING_TIMEOUT = 5.0  # seconds; a ping waits this long whoever answers, and a loaded worker is slow
logger = get_task_logger(__name__)


class BrokerUnreachable(RuntimeError):
    """The broker (or its result store) does not answer."""


class NoWorker(RuntimeError):
    """Submissions wait in the queue, and no worker answers."""


def make_app(broker: str, *, visibility_timeout: float = VISIBILITY_TIMEOUT) -> Celery:
    """The Celery application of the grader: ``broker`` (``redis://HOST:PORT/DB`` or
    ``redis+socket:///PATH``) is both the broker and the result store."""
    app = Celery("autograder", broker=broker, backend=broker, set_as_current=False)
    transport = {
        "visibility_timeout": visibility_timeout,
        # check for messages to deliver again well within the timeout (default: every 60 s)
        "unacked_restore_interval": max(1.0, min(60.0, visibility_timeout / 4)),
        "socket_connect_timeout": CONNECT_TIMEOUT,
    }
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE_NAME,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        redis_socket_connect_timeout=CONNECT_TIMEOUT,
        result_expires=RESULT_EXPIRES,
        broker_connection_retry_on_startup=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    app.task(name=TASK_NAME, bind=True)(_grade_task)
    return app


def check_broker(app: Celery) -> None:
    """Raise :class:`BrokerUnreachable` (at once) unless the broker and the result store answer."""
    url = maybe_sanitize_url(app.conf.broker_url)  # no password in a message
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=CONNECT_TIMEOUT)
        app.backend.client.ping()
    except Exception as error:  # kombu and redis-py raise their own kinds, all "unreachable"
        raise BrokerUnreachable(
            f"cannot reach the broker {url}: {type(error).__name__}: {error}"
        ) from error


def task_id(task: GradingTask) -> str:
    """The task's id: SHA-256 of the whole task, so one grading has one result, however often it
    was sent or delivered."""
    body = json.dumps(task.to_dict(), sort_keys=True).encode()
    return f"{task.assignment}-{hashlib.sha256(body).hexdigest()}"


class QueueGrading:
    """The instructor's side: send the tasks, yield each result once as it arrives."""

    def __init__(
        self, broker: str, *, worker_wait: float = WORKER_WAIT, log: TextIO | None = sys.stderr
    ):
        self.app = make_app(broker)
        check_broker(self.app)
        self.url = maybe_sanitize_url(broker)
        self.worker_wait = worker_wait
        self.log = log

    def workers(self, timeout: float = PING_TIMEOUT) -> list[str]:
        """The names of the workers that answer a ping within ``timeout`` seconds."""
        try:
            replies = self.app.control.ping(timeout=timeout)
        except Exception as error:  # as in check_broker: kombu's and redis-py's own kinds
            raise BrokerUnreachable(f"lost the broker {self.url}: {error}") from error
        return sorted(name for reply in replies for name in reply)

    def results(
        self, tasks: Iterable[GradingTask], *, force: bool = False
    ) -> Iterator[tuple[str, StudentResult | Exception]]:
        """(student, result) for every task: a result already stored for the same task is used
        (unless ``force``); a refusal or a failure of the grader comes as an exception. Raises
        :class:`NoWorker` once no result has come for ``worker_wait`` seconds and no worker
        answers."""
        by_id = {task_id(task): task for task in tasks}
        grade = self.app.tasks[TASK_NAME]
        for key, task in by_id.items():
            stored = self.app.AsyncResult(key)
            if force:
                stored.forget()
            elif stored.state == "SUCCESS":
                continue  # graded after an interrupted run: not sent again
            grade.apply_async(args=[task.to_dict()], task_id=key)
        if self.log and not self.workers(timeout=1.0):  # only a note: a short look
            print(
                f"no worker answers at {self.url} yet: the submissions wait in the queue for "
                f"one (python -m autograder worker --broker URL), at most {self.worker_wait:g} s",
                file=self.log,
            )
        waiting = len(by_id)
        heard_at = time.monotonic()

        def give_up_without_workers() -> None:
            nonlocal heard_at
            if time.monotonic() - heard_at < self.worker_wait:
                return
            if self.workers():  # busy with long notebooks: wait on
                heard_at = time.monotonic()
                return
            raise NoWorker(
                f"no result for {self.worker_wait:g} s and no worker answers at {self.url}: "
                f"{waiting} of {len(by_id)} submissions wait in the queue. Start a worker "
                "(python -m autograder worker --broker URL) and run this command again: what "
                "it recorded is kept, and the rest is graded then."
            )

        # Each id's result is read once: a second delivery of a task stored the same result
        # under the same id, and is not counted again.
        for key, meta in self.app.backend.get_many(
            list(by_id), timeout=None, interval=0.2, on_interval=give_up_without_workers
        ):
            waiting, heard_at = waiting - 1, time.monotonic()
            yield by_id[key].student, _outcome(meta)

    def close(self) -> None:
        self.app.close()


def _outcome(meta: dict[str, Any]) -> StudentResult | Exception:
    if meta["status"] != "SUCCESS":
        return RuntimeError(f"the task failed on a worker: {meta.get('result')}")
    reply = meta["result"]
    if "refused" in reply:
        return RuntimeError(reply["refused"])
    if "error" in reply:
        return RuntimeError(f"on worker {reply['worker']}: {reply['error']}")
    return StudentResult.from_dict(reply["result"])


# The worker's side.


def _grade_task(self, task: dict[str, Any]) -> dict[str, Any]:
    """Grade one submission on this worker, unless its checkout has another version of the
    assignment. The worker's own sandbox setting replaces the task's."""
    conf = self.app.conf
    worker = self.request.hostname or socket.gethostname()
    grading = GradingTask.from_dict(task)
    try:
        ours = _version(conf.autograder_solutions, grading.assignment)
    except FileNotFoundError as error:
        return {"refused": f"worker {worker} refused the task: {error}"}
    if ours != grading.version:
        return {
            "refused": f"worker {worker} refused the task: its checkout has version "
            f"{short(ours)} of {grading.assignment}, the instructor's {short(grading.version)} "
            "(give it the instructor's checkout and environment, and restart it)"
        }
    earlier = self.app.AsyncResult(self.request.id)
    if earlier.state == "SUCCESS":  # delivered again (or sent again) after it was graded
        logger.info("already graded: %s of %s", grading.student, grading.assignment)
        return earlier.result
    logger.info("grading %s of %s", grading.student, grading.assignment)
    limits = replace(Limits(**grading.limits), sandbox=conf.autograder_sandbox)
    grading = replace(grading, limits=asdict(limits))
    try:
        result = grade_submission(
            grading, _POOLS.take(grading, limits, conf.autograder_concurrency)
        )
    except Exception as error:  # the grader failed, not the student: reported, kept as before
        return {"worker": worker, "error": f"{type(error).__name__}: {error}"}
    return {"worker": worker, "result": result.to_dict()}


@functools.cache
def _version(solutions: str, assignment: str) -> str:
    """The assignment's version in this worker's checkout (its code is loaded once, too)."""
    return assignment_version(Path(solutions), assignment)


class _Pools:
    """The worker's kernels, started ahead of time as in local grading: one pool for the
    assignment (and limits) of the latest task, ``concurrency`` kernels ready."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, Limits] | None = None
        self._pool: KernelPool | None = None

    def take(self, task: GradingTask, limits: Limits, concurrency: int):
        setup = kernel_setup(nbformat.from_dict(task.source)) + check_rewriting.SETUP_SANDBOX
        with self._lock:
            if self._pool is None or self._key != (setup, limits):
                self.close()
                self._pool = KernelPool(concurrency, setup, limits, total=sys.maxsize)
                self._key = (setup, limits)
            pool = self._pool
        return pool.take

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        self._pool, self._key = None, None


_POOLS = _Pools()


@worker_shutdown.connect
def _close_pools(**_: object) -> None:
    _POOLS.close()


def run_worker(
    broker: str,
    *,
    concurrency: int,
    sandbox_tier: str,
    solutions: Path,
    visibility_timeout: float = VISIBILITY_TIMEOUT,
    hostname: str | None = None,
) -> int:
    """Run a worker until it is stopped (SIGTERM or Ctrl-C: it finishes its notebooks first).
    Returns the exit status: 2 if the sandbox or the broker cannot be had. ``sandbox_tier`` is
    an isolation tier of :mod:`autograder.sandbox` or ``auto``; every task runs in it, whatever
    the instructor's machine used."""
    try:
        tier = sandbox.choose(sandbox_tier)
    except sandbox.SandboxUnavailable as error:
        print(
            f"error: this worker cannot sandbox students' notebooks: {error}. Or pass "
            "--sandbox none to run their code with the worker's rights (never for submissions "
            "you do not trust).",
            file=sys.stderr,
        )
        return 2
    if tier.sandboxed:
        print(f"sandbox: {tier.name}", file=sys.stderr)
    else:
        print(
            "warning: --sandbox none: students' code runs with this worker's rights",
            file=sys.stderr,
        )
    app = make_app(broker, visibility_timeout=visibility_timeout)
    try:
        check_broker(app)
    except BrokerUnreachable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app.conf.update(
        autograder_sandbox=tier.name,
        autograder_solutions=str(solutions),
        autograder_concurrency=concurrency,
    )
    worker = app.Worker(
        hostname=hostname or f"autograder@{socket.gethostname()}",
        pool="threads",  # the notebooks run in kernels (processes); a slot only waits for one
        concurrency=concurrency,
        queues=[QUEUE_NAME],
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
        loglevel="INFO",
    )
    worker.start()
    return worker.exitcode or 0
