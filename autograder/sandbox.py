"""The sandbox a student's kernel runs in: bubblewrap, rlimits and cgroup v1 controllers.

A kernel is started as

    sh -c 'join the cgroups; exec "$@"'  prlimit ...  bwrap ...  python -m ipykernel_launcher

- ``bwrap`` (Debian's ``bubblewrap``) gives it new user, PID, network, IPC, UTS and cgroup
  namespaces (``--unshare-all``: no network at all, not even the host's loopback; it sees only its
  own processes), drops every capability, and builds a file system of read-only binds of exactly
  what the kernel needs: ``/usr``, the Python installation, the virtual environment and the
  repository's code in :data:`MOUNTED_CODE` (nothing else of the repository: no ``solutions/``,
  no ``tests/``, no submissions, no gradebook). The one writable host folder is the kernel's
  own scratch directory (its working directory and home, which also holds the kernel's sockets);
  ``/tmp`` is a private tmpfs. ``--die-with-parent`` kills it if the grader dies.
- ``prlimit`` sets the rlimits: no core files, a maximum file size, a maximum number of open files.
- cgroup v1: a ``memory`` cgroup caps its memory (page cache and tmpfs included: the scratch
  directory lives on ``/dev/shm`` when that is a tmpfs, so files count as memory) and a ``pids``
  cgroup caps its processes and threads. Both are removed, and every process in them killed, when
  the kernel is shut down.

:func:`problem` says why the sandbox cannot be had on this machine (``None`` if it can).
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CGROUP_ROOT = Path("/sys/fs/cgroup")
# What of the repository a kernel sees: the framework, the course's student-facing code and the
# grader's in-kernel side (autograder/kernel needs its package's __init__, which imports nothing).
MOUNTED_CODE = ("minidl", "course", "autograder/__init__.py", "autograder/kernel")
CONTROLLERS = ("memory", "pids")
_counter = itertools.count()


def scratch_root() -> str | None:
    """Where kernels' scratch directories go: ``/dev/shm`` if it is a tmpfs (files written
    there are charged to the kernel's memory cgroup), else the default temporary folder."""
    try:
        with open("/proc/mounts") as mounts:
            if any(line.split()[1:3] == ["/dev/shm", "tmpfs"] for line in mounts):
                return "/dev/shm"
    except OSError:
        pass
    return None


@functools.cache
def problem() -> str | None:
    """Why kernels cannot be sandboxed here, or ``None`` if they can."""
    for tool in ("bwrap", "prlimit"):
        if shutil.which(tool) is None:
            package = "bubblewrap" if tool == "bwrap" else "util-linux"
            return f"`{tool}` is not installed (Debian package {package}; `make /usr/bin/bwrap`)"
    for controller in CONTROLLERS:
        procs = CGROUP_ROOT / controller / "cgroup.procs"
        if not procs.exists():
            return f"the cgroup v1 {controller} controller is not mounted at {procs.parent}"
        if not os.access(procs.parent, os.W_OK):
            return f"cannot create cgroups in {procs.parent} (run as root)"
    with tempfile.TemporaryDirectory(dir=scratch_root()) as tmp:
        command = [*bwrap_arguments(Path(tmp), env={}), "--", python_executable(), "-c", "pass"]
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bubblewrap does not run: {error}"
        if run.returncode != 0:
            return f"bubblewrap does not run: {run.stderr.strip()[:300]}"
    return None


def _python_paths() -> list[Path]:
    """The Python installation and the virtual environment (real paths)."""
    paths = {Path(os.path.realpath(sys.base_prefix)), Path(os.path.realpath(sys.prefix))}
    return sorted(paths)


def python_executable() -> str:
    """The environment's Python as the sandbox sees it (no symlinked worktree paths)."""
    return str(Path(os.path.realpath(sys.prefix)) / "bin" / "python")


def bwrap_arguments(workdir: Path, env: dict[str, str], tmp_bytes: int = 256 << 20) -> list[str]:
    """``bwrap`` and its options for a kernel working in ``workdir`` (before ``--``)."""
    arguments = ["bwrap", "--unshare-all", "--die-with-parent", "--cap-drop", "ALL"]
    arguments += ["--hostname", "sandbox", "--ro-bind", "/usr", "/usr"]
    # The private /tmp first: binds below may lie under /tmp (a clone in /tmp/...), and a tmpfs
    # mounted after them would hide them.
    arguments += ["--proc", "/proc", "--dev", "/dev", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / top
        if path.is_symlink():
            arguments += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            arguments += ["--ro-bind", str(path), str(path)]
    for path in _python_paths():
        arguments += ["--ro-bind", str(path), str(path)]
    for relative in MOUNTED_CODE:
        path = REPO / relative
        arguments += ["--ro-bind", str(path), str(path)]
    workdir = Path(os.path.realpath(workdir))
    arguments += ["--bind", str(workdir), str(workdir), "--chdir", str(workdir), "--clearenv"]
    for key, value in env.items():
        arguments += ["--setenv", key, value]
    return arguments


class Cgroups:
    """A kernel's ``memory`` and ``pids`` cgroups (cgroup v1)."""

    def __init__(self, memory_bytes: int, max_processes: int):
        name = f"autograder-{os.getpid()}-{next(_counter)}"
        self.paths = {c: CGROUP_ROOT / c / name for c in CONTROLLERS}
        for path in self.paths.values():
            path.mkdir()
        self.memory_bytes = memory_bytes
        (self.paths["memory"] / "memory.limit_in_bytes").write_text(str(memory_bytes))
        (self.paths["pids"] / "pids.max").write_text(str(max_processes))

    def wrap(self, command: list[str]) -> list[str]:
        """``command``, run in these cgroups (the shell joins them, then becomes ``command``)."""
        join = 'for g in "$1" "$2"; do echo $$ > "$g"; done; shift 2; exec "$@"'
        procs = [str(p / "cgroup.procs") for p in self.paths.values()]
        return ["/bin/sh", "-c", join, "sh", *procs, *command]

    def out_of_memory(self) -> bool:
        try:
            control = (self.paths["memory"] / "memory.oom_control").read_text()
        except OSError:
            return False
        counts = dict(line.split() for line in control.splitlines() if len(line.split()) == 2)
        return int(counts.get("oom_kill", 0)) > 0

    def refused_processes(self) -> int:
        """How many times a fork or thread was refused for the pids limit."""
        try:
            events = (self.paths["pids"] / "pids.events").read_text().split()
        except OSError:
            return 0
        return int(events[1]) if len(events) >= 2 and events[0] == "max" else 0

    def kill_all(self) -> None:
        """Kill every process in the cgroups (a fork bomb's too: they cannot leave them)."""
        for _ in range(50):
            pids = set()
            for path in self.paths.values():
                try:
                    pids |= {int(p) for p in (path / "cgroup.procs").read_text().split()}
                except OSError:
                    pass
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)

    def destroy(self) -> None:
        """Kill every process left in the cgroups and remove them."""
        self.kill_all()
        for path in self.paths.values():
            try:
                path.rmdir()
            except OSError:
                pass


def prlimit_arguments(file_bytes: int, open_files: int = 1024) -> list[str]:
    return ["prlimit", "--core=0", f"--fsize={file_bytes}", f"--nofile={open_files}", "--"]
