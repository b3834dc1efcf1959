"""Execute one notebook in a scratch directory, in a fresh sandboxed kernel, under limits.

:func:`execute_notebook` is the one place where a student's code runs, in the kernel that
:func:`start_kernel` launches in ``workdir``: inside the sandbox of :mod:`autograder.sandbox`
(no network, a file system of read-only binds plus ``workdir``, memory and process limits), in
the isolation tier ``Limits.sandbox`` names (``auto``: the strongest this machine offers).

Every submission gets a fresh kernel: nothing of one student's run can leak into another's. What
is shared is only the start-up: a :class:`KernelPool` starts kernels ahead of time, each in its own
scratch directory, and runs the same set-up code in each (imports, and locking the reference
implementations), so that grading a notebook costs only its own cells.

Limits: a cell running longer than ``Limits.cell_timeout`` is interrupted and the notebook goes
on with the next cell; a notebook running longer than ``Limits.total_timeout`` has its kernel
killed; so is a kernel whose outputs exceed ``Limits.output_mb`` in all (the outputs past the
limit are dropped as they arrive). Inside the kernel, ``sys.stdout`` and ``sys.stderr`` stop
the writer once it has printed past that limit, and IPython no longer keeps what cells print
(:data:`NO_OUTPUT_HISTORY`, :data:`OUTPUT_CAP`): before, a print loop on a busy machine could
fill the memory limit before its output reached the grader, and whether a print bomb died of
"too much output" or "out of memory" depended on the load. Cells that never ran get an error
output saying why, so nbgrader (which passes any test cell without an error output) cannot count
them as passed.

With a :class:`~autograder.check_server.CheckServer` (``checks``), the kernel's test cells report
their checks to the grader, which judges them in its own process.
"""

from __future__ import annotations

import atexit
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import nbformat
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode

from autograder import sandbox
from autograder.check_rewriting import Plan
from autograder.check_server import CellChecks, CheckServer, Reference
from autograder.kernel.protocol import SOCKET_ENV

# One BLAS thread per kernel: the grader runs one kernel per core, and NumPy's default of one
# thread per core in every kernel makes them fight over the cores (several times slower).
KERNEL_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MPLBACKEND": "agg",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}
KERNEL_ARGUMENTS = ["--HistoryManager.enabled=False"]

# Run first in every kernel, in this order. IPython keeps every string a cell prints in its
# history (``InteractiveShell._tee``, even with the history disabled), so a print loop grows the
# kernel's memory as fast as it prints, and it can fill the memory limit before its output
# reaches the grader. The tee goes; then, past ``limit`` characters printed in all, a write to
# stdout or stderr flushes what it holds (so the grader sees the output pass its own limit and
# kills the kernel) and waits to be killed: memory stays bounded by the limit plus one write.
# (Two executions: the tee restores the streams' ``write`` at the end of the cell it wraps.)
NO_OUTPUT_HISTORY = (
    'get_ipython()._tee = lambda channel, _null=__import__("contextlib").nullcontext: _null()'
)
OUTPUT_CAP = """
def _autograder_cap_output(limit):
    import sys, threading
    printed, stopped = [0], threading.Event()
    for stream in (sys.stdout, sys.stderr):
        def capped_write(text, *args, _write=stream.write, _stream=stream, **kwargs):
            printed[0] += len(text) if isinstance(text, str) else 0
            written = _write(text, *args, **kwargs)
            if printed[0] > limit:
                _stream.flush()
                stopped.wait()
            return written
        stream.write = capped_write
_autograder_cap_output({limit})
del _autograder_cap_output
"""

# Kernels are launched from this one long-lived thread: bwrap's --die-with-parent fires when the
# *thread* that started it ends, and the pool's threads end as soon as their kernel is ready.
_LAUNCHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kernel-launcher")


@dataclass(frozen=True)
class Limits:
    """Limits for one submission: time in seconds, memory and output in MB, processes
    (and threads) at once; ``sandbox`` is the isolation tier (:data:`autograder.sandbox.TIERS`,
    or ``auto``: the strongest this machine offers; ``none`` runs the kernel without one)."""

    cell_timeout: float = 60.0
    total_timeout: float = 600.0
    startup_timeout: float = 120.0
    memory_mb: int = 2048
    max_processes: int = 64
    output_mb: float = 10.0
    sandbox: str = "auto"


class Ending(StrEnum):
    """How a notebook's run ended."""

    FINISHED = "ok"
    TIMEOUT = "timeout"  # the notebook ran past ``Limits.total_timeout``
    IGNORED_INTERRUPT = "ignored interrupt"  # a cell still ran a time limit after its interrupt
    TOO_MUCH_OUTPUT = "too much output"
    OUT_OF_MEMORY = "out of memory"
    KERNEL_DIED = "kernel died"

    def reason(self, limits: Limits) -> str:
        """Why the notebook stopped, as the cells that did not run say it."""
        if self is Ending.TIMEOUT:
            return f"the notebook ran longer than {limits.total_timeout:g} s and was stopped"
        if self is Ending.IGNORED_INTERRUPT:
            return (
                f"a cell ran longer than {limits.cell_timeout:g} s and ignored the interrupt; "
                "the notebook was stopped"
            )
        if self is Ending.TOO_MUCH_OUTPUT:
            return f"the notebook printed more than {limits.output_mb:g} MB and was stopped"
        if self is Ending.OUT_OF_MEMORY:
            return f"the notebook used more than {limits.memory_mb} MB of memory and was stopped"
        return "the kernel died (it crashed or exited)"


@dataclass
class Execution:
    """An executed notebook and how its run ended; ``checks`` are the grader's record of the test
    cells' checks (with a check server), ``notes`` what the student should know."""

    notebook: NotebookNode
    status: Ending
    seconds: float
    checks: dict[str, CellChecks] | None = None
    notes: list[str] = field(default_factory=list)


class Kernel:
    """A started kernel, the scratch directory it runs in and its isolation."""

    def __init__(self, manager: KernelManager, workdir: Path, isolation: sandbox.Isolation):
        self.manager = manager
        self.workdir = workdir
        self.isolation = isolation

    @property
    def checks_socket(self) -> Path:
        return self.workdir / "checks.sock"

    def kill(self) -> None:
        """Stop the kernel now, and every process it started."""
        self.isolation.kill_all()
        # jupyter_client interrupts a kernel before killing it, by a message if that is its
        # interrupt mode, which fails once the kernel's sockets are closed.
        self.manager.kernel_spec.interrupt_mode = "signal"
        try:
            self.manager.shutdown_kernel(now=True)
        except Exception:
            if not self.isolation.sandboxed:
                raise

    def shutdown(self) -> None:
        try:
            self.kill()
        finally:
            self.isolation.destroy()
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_kernel(workdir: Path, setup_code: str, limits: Limits) -> Kernel:
    """Start a Python kernel in ``workdir``, isolated by the tier ``limits.sandbox``
    (:func:`autograder.sandbox.choose`), and run ``setup_code`` in it."""
    # IPC sockets in the scratch directory: no TCP ports, nothing outside ``workdir``.
    workdir = Path(os.path.realpath(workdir))
    manager = KernelManager(kernel_name="python3", transport="ipc", ip=str(workdir / "kernel"))
    manager.connection_file = str(workdir / "connection.json")
    env = {**KERNEL_ENV, SOCKET_ENV: str(workdir / "checks.sock")}
    tier = sandbox.choose(limits.sandbox)
    isolation = tier(limits.memory_mb << 20, limits.max_processes)
    manager.kernel_spec.interrupt_mode = tier.interrupt_mode
    manager.kernel_spec.argv, env = isolation.command(manager.kernel_spec.argv, workdir, env)
    try:
        _LAUNCHER.submit(
            manager.start_kernel,
            cwd=str(workdir),
            env=env,
            extra_arguments=KERNEL_ARGUMENTS,
            stdout=subprocess.DEVNULL,  # a kernel's own prints must not flood the grader's
            stderr=subprocess.DEVNULL,
        ).result()
    except BaseException:
        isolation.destroy()
        raise
    kernel = Kernel(manager, workdir, isolation)
    client = manager.client()
    # nbclient drives the kernel asynchronously: hand it an asynchronous client later.
    manager.client_class = "jupyter_client.asynchronous.AsyncKernelClient"
    try:
        client.start_channels()
        client.wait_for_ready(timeout=limits.startup_timeout)
        cap = OUTPUT_CAP.format(limit=int(limits.output_mb * (1 << 20)))
        for code in (NO_OUTPUT_HISTORY, cap, setup_code):
            reply = client.execute_interactive(
                code, store_history=False, timeout=limits.startup_timeout, output_hook=_quiet
            )
            if reply["content"]["status"] != "ok":
                content = reply["content"]
                raise RuntimeError(
                    f"kernel set-up failed: {content.get('ename')}: {content.get('evalue')}"
                )
    except BaseException:
        kernel.shutdown()
        raise
    finally:
        client.stop_channels()
    return kernel


def _quiet(message: dict) -> None:
    """Drop the set-up code's output."""


MESSAGE_BYTES = 100


class _LimitedClient(NotebookClient):
    """nbclient's client that stops taking outputs past ``output_limit`` bytes in all, and
    calls ``on_too_much`` (once) when they go past it; and calls ``on_stuck`` when a cell that
    was interrupted for its time limit is still running a time limit later (it ignored the
    interrupt); and ``on_memory_error`` (if given) when a cell raises ``MemoryError``."""

    def __init__(
        self,
        nb: NotebookNode,
        *,
        output_limit: int,
        on_too_much,
        on_stuck,
        on_memory_error=None,
        **kwargs,
    ):
        super().__init__(nb, **kwargs)
        self.output_limit, self.on_too_much, self.on_stuck = output_limit, on_too_much, on_stuck
        self.on_memory_error = on_memory_error
        self.output_bytes = 0
        self.too_much = False
        self._interrupted: set[int] = set()

    async def _async_handle_timeout(self, timeout, cell=None):  # type: ignore[no-untyped-def]
        if id(cell) in self._interrupted:
            self.on_stuck()
            return None
        self._interrupted.add(id(cell))
        return await super()._async_handle_timeout(timeout, cell)

    def output(self, outs, msg, display_id, cell_index):  # type: ignore[no-untyped-def]
        # Each message counts for at least MESSAGE_BYTES, so that a flood of tiny messages
        # (which cost the grader time, not memory) is stopped too.
        self.output_bytes += MESSAGE_BYTES + _size(msg.get("content"))
        is_error = msg.get("msg_type") == "error"
        if is_error and self.on_memory_error and msg["content"].get("ename") == "MemoryError":
            self.on_memory_error()
        if self.output_bytes > self.output_limit:
            if not self.too_much:
                self.too_much = True
                self.on_too_much()
            return None
        return super().output(outs, msg, display_id, cell_index)


def _size(value: object, depth: int = 0) -> int:
    """About how many bytes a message's content holds."""
    if isinstance(value, str | bytes):
        return len(value)
    if depth > 4:
        return 0
    if isinstance(value, dict):
        return sum(_size(v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_size(v, depth + 1) for v in value)
    return 8


class _Stopper:
    """Stops a notebook's run early: keeps the first reason and kills the kernel (from another
    thread: it is called from nbclient's callbacks and from the watchdog timer)."""

    def __init__(self, kernel: Kernel):
        self.kernel = kernel
        self.ending: Ending | None = None
        self.running: int | None = None  # the index of the cell being run

    def stop(self, ending: Ending) -> None:
        if self.ending is None:
            self.ending = ending
        threading.Thread(target=self.kernel.kill).start()


def execute_notebook(
    nb: NotebookNode,
    kernel: Kernel,
    limits: Limits,
    *,
    checks: tuple[Plan, dict[str, list[Reference]]] | None = None,
) -> Execution:
    """Run every code cell of a copy of ``nb`` in ``kernel`` (then shut the kernel down).

    Errors do not stop the notebook; see the module docstring for the limits. With ``checks``
    (the plan and the reference run's records), a check server judges the test cells' checks.
    """
    nb = nbformat.from_dict(nb)
    server = CheckServer(str(kernel.checks_socket), *checks) if checks else None
    stopper = _Stopper(kernel)

    def begin(cell: NotebookNode, cell_index: int) -> None:
        stopper.running = cell_index
        if server is not None:
            server.begin_cell(cell.get("id"))

    def out_of_memory() -> None:
        # At once, before nbclient sends the next cell: a tier whose memory limit makes
        # allocations fail stops the kernel where a cgroup's OOM killer would have.
        kernel.isolation.kill_all()
        stopper.stop(Ending.OUT_OF_MEMORY)

    client = _LimitedClient(
        nb,
        output_limit=int(limits.output_mb * (1 << 20)),
        on_too_much=lambda: stopper.stop(Ending.TOO_MUCH_OUTPUT),
        on_stuck=lambda: stopper.stop(Ending.IGNORED_INTERRUPT),
        on_memory_error=out_of_memory if kernel.isolation.allocation_fails else None,
        on_cell_execute=begin,
        on_cell_executed=lambda **_: kernel.isolation.observe(),
        km=kernel.manager,
        timeout=limits.cell_timeout,
        interrupt_on_timeout=True,
        allow_errors=True,
        shutdown_kernel="immediate",  # nbclient's polite shutdown sometimes waits seconds
        record_timing=False,
        resources={"metadata": {"path": str(kernel.workdir)}},
    )
    try:
        ending, seconds = _run_cells(client, stopper, limits)
        isolation = kernel.isolation  # read before the shutdown destroys it
        if ending is Ending.KERNEL_DIED and isolation.out_of_memory():
            ending = Ending.OUT_OF_MEMORY
        refused = isolation.hit_process_limit()
    finally:
        kernel.shutdown()
        if server is not None:
            server.close()
    if ending is not Ending.FINISHED:
        _mark_stopped(nb, stopper.running, ending.reason(limits))
    notes = []
    if refused:
        notes.append(
            f"Your code tried to run more than {limits.max_processes} processes and threads at "
            "once; the ones past the limit were refused."
        )
    return Execution(nb, ending, seconds, server.cells if server else None, notes)


def _run_cells(client: _LimitedClient, stopper: _Stopper, limits: Limits) -> tuple[Ending, float]:
    """Execute the notebook under the watchdog of ``limits.total_timeout``: how it ended, and
    the seconds it took."""
    watchdog = threading.Timer(limits.total_timeout, stopper.stop, [Ending.TIMEOUT])
    start = time.perf_counter()
    watchdog.start()
    try:
        client.execute(cleanup_kc=True)
        ending = Ending.FINISHED
    except DeadKernelError:
        ending = stopper.ending or Ending.KERNEL_DIED
    except Exception:
        if stopper.ending is None:
            raise
        ending = stopper.ending
    finally:
        watchdog.cancel()
        atexit.unregister(client._cleanup_kernel)  # left registered when the kernel died
    return ending, time.perf_counter() - start


def _mark_stopped(nb: NotebookNode, running: int | None, reason: str) -> None:
    """Say ``reason`` in the cell that was running when the notebook stopped (unless it has an
    error already) and in every cell that did not run."""
    if running is not None:
        cell = nb.cells[running]
        if not any(output.output_type == "error" for output in cell.outputs):
            cell.outputs.append(
                nbformat.v4.new_output("error", ename="NotRun", evalue=reason, traceback=[])
            )
    mark_unexecuted(nb, reason)


def mark_unexecuted(nb: NotebookNode, reason: str) -> None:
    """Give every code cell that did not run an error output saying ``reason``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.execution_count is None and cell.source.strip():
            if not any(output.output_type == "error" for output in cell.outputs):
                cell.outputs.append(
                    nbformat.v4.new_output(
                        "error", ename="NotRun", evalue=f"not run: {reason}", traceback=[]
                    )
                )


class KernelPool:
    """Kernels started ahead of time, ``size`` at a time, each running ``setup_code``.

    ``take()`` hands out a ready kernel (waiting if none is) and starts its replacement in the
    background, ``total`` kernels in all; each kernel serves one notebook only.
    """

    def __init__(self, size: int, setup_code: str, limits: Limits, *, total: int):
        self.setup_code = setup_code
        self.limits = limits
        scratch = sandbox.choose(limits.sandbox).scratch_root()
        self.scratch = Path(tempfile.mkdtemp(prefix="autograder-", dir=scratch))
        self._ready: queue.Queue[Kernel | BaseException] = queue.Queue()
        self._to_start = total  # never start more kernels than notebooks to run
        self._closed = False
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        for _ in range(size):
            self._start_one()

    def _start_one(self) -> None:
        with self._lock:
            if self._to_start <= 0:
                return
            self._to_start -= 1

        def run() -> None:
            try:
                workdir = Path(tempfile.mkdtemp(dir=self.scratch))
                self._ready.put(start_kernel(workdir, self.setup_code, self.limits))
            except BaseException as error:  # handed to the taker, who reports it
                self._ready.put(error)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def take(self) -> Kernel:
        if self._closed:
            raise RuntimeError("KernelPool.take: the pool is closed")
        item = self._ready.get()
        self._start_one()
        if isinstance(item, BaseException):
            raise RuntimeError(f"could not start a kernel: {item}") from item
        return item

    def close(self) -> None:
        self._closed = True
        for thread in self._threads:
            thread.join()
        while not self._ready.empty():
            item = self._ready.get()
            if isinstance(item, Kernel):
                item.shutdown()
        shutil.rmtree(self.scratch, ignore_errors=True)
