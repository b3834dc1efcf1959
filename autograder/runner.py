"""Execute one notebook in a scratch directory, in a fresh kernel, under time limits.

:func:`execute_notebook` is the one place where a student's code runs; a sandbox (a later issue)
wraps exactly this: the kernel process that :func:`start_kernel` launches in ``workdir``.

Every submission gets a fresh kernel: nothing of one student's run can leak into another's. What
is shared is only the start-up: a :class:`KernelPool` starts kernels ahead of time, each in its own
scratch directory, and runs the same set-up code in each (imports, and locking the reference
implementations), so that grading a notebook costs only its own cells.

Limits: a cell running longer than ``Limits.cell_timeout`` is interrupted and the notebook goes
on with the next cell; a notebook running longer than ``Limits.total_timeout`` has its kernel
killed. Cells that never ran get an error output saying why, so nbgrader (which passes any test
cell without an error output) cannot count them as passed.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode

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


@dataclass(frozen=True)
class Limits:
    """Time limits, in seconds, for one submission."""

    cell_timeout: float = 60.0
    total_timeout: float = 600.0
    startup_timeout: float = 120.0


@dataclass
class Execution:
    """An executed notebook; ``status`` is ``"ok"``, ``"timeout"`` or ``"kernel died"``."""

    notebook: NotebookNode
    status: str
    seconds: float


class Kernel:
    """A started kernel and the scratch directory it runs in."""

    def __init__(self, manager: KernelManager, workdir: Path):
        self.manager = manager
        self.workdir = workdir

    def shutdown(self) -> None:
        try:
            self.manager.shutdown_kernel(now=True)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_kernel(workdir: Path, setup_code: str, limits: Limits) -> Kernel:
    """Start a Python kernel in ``workdir`` and run ``setup_code`` in it."""
    # IPC sockets in the scratch directory: no TCP ports, nothing outside ``workdir``.
    manager = KernelManager(kernel_name="python3", transport="ipc", ip=str(workdir / "kernel"))
    manager.kernel_spec.argv[0] = sys.executable  # this environment's Python, whatever is on PATH
    manager.start_kernel(
        cwd=str(workdir), env={**os.environ, **KERNEL_ENV}, extra_arguments=KERNEL_ARGUMENTS
    )
    kernel = Kernel(manager, workdir)
    client = manager.client()
    # nbclient drives the kernel asynchronously: hand it an asynchronous client later.
    manager.client_class = "jupyter_client.asynchronous.AsyncKernelClient"
    try:
        client.start_channels()
        client.wait_for_ready(timeout=limits.startup_timeout)
        if setup_code:
            reply = client.execute_interactive(
                setup_code, store_history=False, timeout=limits.startup_timeout, output_hook=_quiet
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


def execute_notebook(nb: NotebookNode, kernel: Kernel, limits: Limits) -> Execution:
    """Run every code cell of a copy of ``nb`` in ``kernel`` (then shut the kernel down).

    Errors do not stop the notebook; see the module docstring for the time limits.
    """
    nb = nbformat.from_dict(nb)
    client = NotebookClient(
        nb,
        km=kernel.manager,
        timeout=limits.cell_timeout,
        interrupt_on_timeout=True,
        allow_errors=True,
        shutdown_kernel="immediate",  # nbclient's polite shutdown sometimes waits seconds
        record_timing=False,
        resources={"metadata": {"path": str(kernel.workdir)}},
    )
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        kernel.manager.shutdown_kernel(now=True)

    watchdog = threading.Timer(limits.total_timeout, stop)
    start = time.perf_counter()
    status = "ok"
    watchdog.start()
    try:
        client.execute(cleanup_kc=True)
    except DeadKernelError:
        status = "timeout" if timed_out.is_set() else "kernel died"
    except Exception:
        if not timed_out.is_set():
            raise
        status = "timeout"
    finally:
        watchdog.cancel()
        seconds = time.perf_counter() - start
        kernel.shutdown()
    if status != "ok":
        reason = (
            f"the notebook ran longer than {limits.total_timeout:g} s and was stopped"
            if status == "timeout"
            else "the kernel died (crashed or ran out of memory)"
        )
        mark_unexecuted(nb, reason)
    return Execution(nb, status, seconds)


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
        self.scratch = Path(tempfile.mkdtemp(prefix="autograder-"))
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
