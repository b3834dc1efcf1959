"""The isolation a student's kernel runs in: the strongest of four tiers that the machine offers.

Every tier but ``none`` runs the kernel under Debian's ``bubblewrap``, unprivileged (user
namespaces), with the same view of the machine:

- new user, PID, network, IPC, UTS and cgroup namespaces (``--unshare-all``: no network at all,
  not even the host's loopback; it sees and can signal only its own processes), every capability
  dropped, killed if the grader dies (``--die-with-parent``);
- a file system of read-only binds of exactly what the kernel needs: ``/usr``, the Python
  installation, the virtual environment and the repository folders of :data:`SANDBOX_PACKAGES`
  (nothing else of the repository: no ``solutions/``, no ``tests/``, no submissions, no
  gradebook). The one writable host folder is the kernel's own scratch directory (its working
  directory and home, which also holds the kernel's sockets); ``/tmp`` is a private tmpfs.

The tiers differ in how they cap memory and processes and kill what is left (the table of
promises per tier is in autograder/README.md):

- ``cgroup2`` (:class:`Cgroup2`): a cgroup v2 per kernel (``memory.max``, ``memory.swap.max``,
  ``pids.max``), in a subtree the grader may write: the cgroup v2 root as root, else a delegated
  one (``AUTOGRADER_CGROUP``, or the grader's own cgroup when it runs in a delegated systemd
  scope, ``systemd-run --user --scope -p Delegate=yes``), as rootless container engines do;
- ``cgroup1`` (:class:`Cgroup1`): a ``memory`` and a ``pids`` cgroup v1 per kernel (root only);
- ``rlimit`` (:class:`Rlimit`): no cgroup; rlimits set *inside* the kernel's user namespace.
  ``RLIMIT_NPROC`` is counted per user namespace (Linux >= 5.14), so it caps the processes and
  threads of this kernel alone, never the grader's or another kernel's; ``RLIMIT_AS`` caps each
  process's address space (a memory cap per process, not per kernel);
- ``none`` (:class:`Unsandboxed`): the kernel runs with the grader's rights.

:func:`choose` picks a tier by name, or the strongest one this machine can give (``auto``, which
never falls back to ``none``); :meth:`Isolation.problem` says why a tier cannot be had here.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import ClassVar

REPO = Path(__file__).resolve().parent.parent
# What of the repository a kernel sees (read-only): the framework, the course's student-facing
# code and the grader's in-kernel side (autograder/kernel needs its package's __init__, which
# imports nothing). Nothing else of the repository is in its view.
SANDBOX_PACKAGES = ("minidl", "course", "autograder/__init__.py", "autograder/kernel")
TIERS = ("cgroup2", "cgroup1", "rlimit", "none")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP1_CONTROLLERS = ("memory", "pids")
CGROUP2_CONTROLLERS = ("memory", "pids")
DELEGATED_CGROUP_ENV = "AUTOGRADER_CGROUP"
INSTALL_HINT = "`make /usr/bin/bwrap` (as root) installs bubblewrap"
# The environment of the commands that start the sandbox (the kernel's is set by bwrap).
LAUNCH_ENV = {"PATH": "/usr/bin:/bin"}
_counter = itertools.count()


class SandboxUnavailable(RuntimeError):
    """The tier asked for (or, for ``auto``, every sandboxed tier) cannot be had here."""


def shm_root() -> str | None:
    """``/dev/shm`` if it is a tmpfs (files written there are charged to a memory cgroup),
    else ``None`` (the default temporary folder)."""
    try:
        with open("/proc/mounts") as mounts:
            if any(line.split()[1:3] == ["/dev/shm", "tmpfs"] for line in mounts):
                return "/dev/shm"
    except OSError:
        pass
    return None


def python_executable() -> str:
    """The environment's Python as the sandbox sees it (no symlinked worktree paths)."""
    return str(Path(os.path.realpath(sys.prefix)) / "bin" / "python")


def _python_paths() -> list[Path]:
    """The Python installation and the virtual environment (real paths)."""
    paths = {Path(os.path.realpath(sys.base_prefix)), Path(os.path.realpath(sys.prefix))}
    return sorted(paths)


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
    for path in [*_python_paths(), *(REPO / package for package in SANDBOX_PACKAGES)]:
        arguments += ["--ro-bind", str(path), str(path)]
    workdir = Path(os.path.realpath(workdir))
    arguments += ["--bind", str(workdir), str(workdir), "--chdir", str(workdir), "--clearenv"]
    for key, value in env.items():
        arguments += ["--setenv", key, value]
    return arguments


def sandbox_environment(workdir: Path, env: dict[str, str]) -> dict[str, str]:
    """The whole environment of a sandboxed kernel: ``env`` and what the sandbox's view needs."""
    return {
        **env,
        "HOME": str(workdir),
        "PATH": f"{Path(python_executable()).parent}:/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "IPYTHONDIR": "/tmp/ipython",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def base_rlimits(file_bytes: int, open_files: int = 1024) -> list[str]:
    """``prlimit`` options every sandboxed tier sets: no core files, a maximum file size, a
    maximum number of open files."""
    return ["--core=0", f"--fsize={file_bytes}", f"--nofile={open_files}"]


def limited_sandbox(
    kernel: list[str], workdir: Path, env: dict[str, str], memory_bytes: int
) -> list[str]:
    """``prlimit`` (every tier's rlimits), then ``bwrap``, then the kernel: what a cgroup tier
    runs in its cgroups."""
    bwrap = bwrap_arguments(workdir, sandbox_environment(workdir, env))
    prlimit = ["prlimit", *base_rlimits(memory_bytes), "--"]
    return [*prlimit, *bwrap, "--", python_executable(), *kernel[1:]]


@functools.cache
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot run a kernel here (unprivileged or not), or ``None``."""
    for tool in ("bwrap", "prlimit"):
        if shutil.which(tool) is None:
            package = "bubblewrap" if tool == "bwrap" else "util-linux"
            return f"`{tool}` is not installed (Debian package {package}; {INSTALL_HINT})"
    with tempfile.TemporaryDirectory() as tmp:
        command = [*bwrap_arguments(Path(tmp), env={}), "--", python_executable(), "-c", "pass"]
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bubblewrap does not run: {error}"
        if run.returncode != 0:
            why = run.stderr.strip()[:300]
            return (
                f"bubblewrap does not run: {why} (are unprivileged user namespaces allowed? "
                "`sysctl kernel.unprivileged_userns_clone=1`, or AppArmor's "
                "`kernel.apparmor_restrict_unprivileged_userns=0`)"
            )
    return None


def _kill_listed(procs_files: list[Path]) -> None:
    """SIGKILL every process listed in the cgroups' ``cgroup.procs`` until none is left (a fork
    bomb's too: its processes cannot leave the cgroups)."""
    for _ in range(50):
        pids = set()
        for procs in procs_files:
            try:
                pids |= {int(p) for p in procs.read_text().split()}
            except (OSError, ValueError):
                pass
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)


def join_cgroups(procs_files: list[Path], command: list[str]) -> list[str]:
    """``command``, run in the cgroups of ``procs_files`` (a shell joins them, then becomes it)."""
    join = 'for g; do [ "$g" = -- ] && break; echo $$ > "$g"; shift; done; shift; exec "$@"'
    return ["/bin/sh", "-c", join, "sh", *map(str, procs_files), "--", *command]


class Isolation:
    """One kernel's isolation. A tier is a subclass; the grader makes one per kernel, runs the
    kernel as :meth:`command` says and, when done, asks and cleans up through the rest."""

    name: ClassVar[str]
    sandboxed: ClassVar[bool] = True
    # Interrupt by a message: the kernel then signals itself, inside its PID namespace (a signal
    # to the process group would reach bwrap, which would die and take it along).
    interrupt_mode: ClassVar[str] = "message"
    # Past its memory limit, does an allocation fail (Python raises MemoryError) rather than the
    # kernel being killed? The grader then stops the kernel at its first MemoryError, so that the
    # outcome is the same, "out of memory".
    allocation_fails: ClassVar[bool] = False

    @classmethod
    def problem(cls) -> str | None:
        """Why this tier cannot be had on this machine, or ``None`` if it can."""
        return bwrap_problem()

    @classmethod
    def scratch_root(cls) -> str | None:
        """Where kernels' scratch directories go (``None``: the default temporary folder)."""
        return shm_root()

    def __init__(self, memory_bytes: int, max_processes: int):
        self.memory_bytes, self.max_processes = memory_bytes, max_processes

    def command(
        self, kernel: list[str], workdir: Path, env: dict[str, str]
    ) -> tuple[list[str], dict[str, str]]:
        """The command line and environment that run ``kernel`` (``python -m ipykernel_launcher
        ...``) isolated, in ``workdir``, with ``env`` in its environment."""
        raise NotImplementedError

    def observe(self) -> None:
        """Called after every cell: note what :meth:`hit_process_limit` cannot read later."""

    def out_of_memory(self) -> bool:
        """Was a process of the kernel killed for the memory limit?"""
        return False

    def hit_process_limit(self) -> bool:
        """Was a fork or thread refused for the process limit?"""
        return False

    def kill_all(self) -> None:
        """Kill every process of the kernel."""

    def destroy(self) -> None:
        """Kill every process left and remove what the tier made."""
        self.kill_all()


class Unsandboxed(Isolation):
    """``none``: the kernel runs with the grader's rights, the time and output limits only."""

    name = "none"
    sandboxed = False
    interrupt_mode = "signal"

    @classmethod
    def problem(cls) -> str | None:
        return None

    @classmethod
    def scratch_root(cls) -> str | None:
        return None

    def command(self, kernel, workdir, env):  # type: ignore[no-untyped-def]
        # The repository first on the path, as in the sandbox: the grader's own minidl.
        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        return [sys.executable, *kernel[1:]], {**os.environ, **env, "PYTHONPATH": path}


class Cgroup1(Isolation):
    """``cgroup1``: a ``memory`` and a ``pids`` cgroup v1 per kernel (``memory.limit_in_bytes``
    and, where swap is accounted, ``memory.memsw.limit_in_bytes``: no swap; page cache and the
    tmpfs scratch directory count as memory). Root only."""

    name = "cgroup1"
    root = CGROUP_ROOT

    @classmethod
    @functools.cache
    def problem(cls) -> str | None:
        for controller in CGROUP1_CONTROLLERS:
            procs = cls.root / controller / "cgroup.procs"
            if not procs.exists():
                return f"the cgroup v1 {controller} controller is not mounted at {procs.parent}"
            if not os.access(procs.parent, os.W_OK):
                return f"cannot create cgroups in {procs.parent} (only root can)"
        return bwrap_problem()

    def __init__(self, memory_bytes: int, max_processes: int):
        super().__init__(memory_bytes, max_processes)
        name = f"autograder-{os.getpid()}-{next(_counter)}"
        self.paths = {c: self.root / c / name for c in CGROUP1_CONTROLLERS}
        for path in self.paths.values():
            path.mkdir()
        memory = self.paths["memory"]
        (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
        try:  # memory and swap together: else a kernel past its limit swaps instead of dying
            (memory / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
        except OSError:  # a kernel without swap accounting has no such file
            pass
        (self.paths["pids"] / "pids.max").write_text(str(max_processes))

    def command(self, kernel, workdir, env):  # type: ignore[no-untyped-def]
        limited = limited_sandbox(kernel, workdir, env, self.memory_bytes)
        return join_cgroups([p / "cgroup.procs" for p in self.paths.values()], limited), LAUNCH_ENV

    def out_of_memory(self) -> bool:
        try:
            control = (self.paths["memory"] / "memory.oom_control").read_text()
        except OSError:
            return False
        counts = dict(line.split() for line in control.splitlines() if len(line.split()) == 2)
        return int(counts.get("oom_kill", 0)) > 0

    def hit_process_limit(self) -> bool:
        try:
            events = (self.paths["pids"] / "pids.events").read_text().split()
        except OSError:
            return False
        return len(events) >= 2 and events[0] == "max" and int(events[1]) > 0

    def kill_all(self) -> None:
        _kill_listed([p / "cgroup.procs" for p in self.paths.values()])

    def destroy(self) -> None:
        self.kill_all()
        for path in self.paths.values():
            try:
                path.rmdir()
            except OSError:
                pass


def _cgroup2_mount() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (``/sys/fs/cgroup``, or ``.../unified`` on a
    hybrid host), or ``None``."""
    try:
        with open("/proc/self/mountinfo") as mountinfo:
            for line in mountinfo:
                fields = line.split()
                separator = fields.index("-")
                if fields[separator + 1] == "cgroup2":
                    return Path(fields[4])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _own_cgroup2(mount: Path) -> Path | None:
    """The grader's own cgroup v2 (``0::/path`` in ``/proc/self/cgroup``)."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return mount / line[3:].lstrip("/")
    except OSError:
        pass
    return None


def _words(path: Path) -> set[str]:
    try:
        return set(path.read_text().split())
    except OSError:
        return set()


class Cgroup2Tree:
    """A cgroup v2 subtree the grader may write, with the ``memory`` and ``pids`` controllers
    enabled for the kernels' cgroups made in it.

    The no-internal-processes rule: a cgroup other than the root that holds processes cannot
    hand controllers to its children. So when the grader runs in the subtree's top (its own
    delegated cgroup), :meth:`prepare` first moves the grader into a leaf ``grader`` child, as
    rootless container engines do.
    """

    def __init__(self, path: Path, *, is_root: bool = False):
        self.path, self.is_root = path, is_root

    def problem(self) -> str | None:
        if not self.path.is_dir():
            return f"{self.path} is not a cgroup v2 directory"
        controllers = _words(self.path / "cgroup.controllers")
        missing = [c for c in CGROUP2_CONTROLLERS if c not in controllers]
        if missing:
            return (
                f"the cgroup v2 at {self.path} has no {' and '.join(missing)} controller "
                f"(it has: {' '.join(sorted(controllers)) or 'none'})"
            )
        for name in ("cgroup.procs", "cgroup.subtree_control"):
            if not os.access(self.path / name, os.W_OK) or not os.access(self.path, os.W_OK):
                return f"the cgroup v2 at {self.path} is not delegated to this user"
        return None

    def prepare(self) -> None:
        """Enable the controllers for the kernels' cgroups (moving the grader out first)."""
        enabled = _words(self.path / "cgroup.subtree_control")
        if all(c in enabled for c in CGROUP2_CONTROLLERS):
            return
        if not self.is_root and _words(self.path / "cgroup.procs"):
            leaf = self.path / "grader"
            leaf.mkdir(exist_ok=True)
            for pid in _words(self.path / "cgroup.procs"):
                try:
                    (leaf / "cgroup.procs").write_text(pid)
                except OSError:  # a process that ended meanwhile
                    pass
        controls = " ".join(f"+{c}" for c in CGROUP2_CONTROLLERS)
        (self.path / "cgroup.subtree_control").write_text(controls)


@functools.cache
def cgroup2_tree() -> Cgroup2Tree | str:
    """The subtree the ``cgroup2`` tier makes kernels' cgroups in, or why there is none: the one
    named by ``AUTOGRADER_CGROUP``; else, as root, the cgroup v2 root; else the grader's own
    cgroup, if it is delegated to the grader."""
    mount = _cgroup2_mount()
    if given := os.environ.get(DELEGATED_CGROUP_ENV):
        tree = Cgroup2Tree(Path(given))
        return tree.problem() or tree
    if mount is None:
        return "cgroup v2 is not mounted"
    # Only the real root has no cgroup.type (a container's cgroup namespace root does).
    root = Cgroup2Tree(mount, is_root=not (mount / "cgroup.type").exists())
    reason = root.problem()
    if reason is None or "controller" in reason:
        return reason or root
    own = _own_cgroup2(mount)
    if own is not None and own != mount and Cgroup2Tree(own).problem() is None:
        return Cgroup2Tree(own)
    return (
        f"no cgroup v2 subtree is delegated to this user: run the grader in a delegated systemd "
        f"scope (`systemd-run --user --scope -p Delegate=yes python -m autograder ...`) or set "
        f"{DELEGATED_CGROUP_ENV} to a cgroup v2 directory you own"
    )


IN_SCOPE_ENV = "AUTOGRADER_IN_DELEGATED_SCOPE"


def delegated_scope(command: list[str]) -> list[str] | None:
    """``command`` run in a delegated systemd user scope (``systemd-run --user --scope -p
    Delegate=yes``), where the ``cgroup2`` tier can be had: if the grader runs as a normal user
    with a systemd user session on a cgroup v2 host whose controllers it is not given yet; else
    ``None``. The scope's grader does not ask again (``AUTOGRADER_IN_DELEGATED_SCOPE``)."""
    if os.environ.get(IN_SCOPE_ENV) or os.getuid() == 0 or shutil.which("systemd-run") is None:
        return None
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    mount = _cgroup2_mount()
    if not runtime or not Path(runtime, "bus").exists() or mount is None:
        return None
    controllers = _words(mount / "cgroup.controllers")
    if not all(c in controllers for c in CGROUP2_CONTROLLERS) or Cgroup2.problem() is None:
        return None
    scope = ["systemd-run", "--user", "--scope", "--quiet", "-p", "Delegate=yes", "--"]
    return [*scope, *command]


class Cgroup2(Isolation):
    """``cgroup2``: a cgroup v2 per kernel (``memory.max``, ``memory.swap.max``, ``pids.max``);
    its OOM kills are seen in ``memory.events``, its processes killed by ``cgroup.kill`` (or
    one by one from ``cgroup.procs`` on kernels before 5.14)."""

    name = "cgroup2"

    @classmethod
    def tree(cls) -> Cgroup2Tree | str:
        return cgroup2_tree()

    @classmethod
    def problem(cls) -> str | None:
        tree = cls.tree()
        return tree if isinstance(tree, str) else bwrap_problem()

    def __init__(self, memory_bytes: int, max_processes: int):
        super().__init__(memory_bytes, max_processes)
        tree = self.tree()
        if isinstance(tree, str):
            raise SandboxUnavailable(f"the cgroup2 sandbox cannot be had here: {tree}")
        tree.prepare()
        self.path = tree.path / f"autograder-{os.getpid()}-{next(_counter)}"
        self.path.mkdir()
        (self.path / "memory.max").write_text(str(memory_bytes))
        try:
            (self.path / "memory.swap.max").write_text("0")
        except OSError:  # a kernel without swap accounting has no such file
            pass
        (self.path / "pids.max").write_text(str(max_processes))

    def command(self, kernel, workdir, env):  # type: ignore[no-untyped-def]
        limited = limited_sandbox(kernel, workdir, env, self.memory_bytes)
        return join_cgroups([self.path / "cgroup.procs"], limited), LAUNCH_ENV

    def _events(self, name: str) -> dict[str, int]:
        try:
            lines = (self.path / name).read_text().splitlines()
        except OSError:
            return {}
        return {key: int(value) for key, value in (line.split() for line in lines if line.strip())}

    def out_of_memory(self) -> bool:
        return self._events("memory.events").get("oom_kill", 0) > 0

    def hit_process_limit(self) -> bool:
        return self._events("pids.events").get("max", 0) > 0

    def kill_all(self) -> None:
        kill = self.path / "cgroup.kill"
        if kill.exists():
            try:
                kill.write_text("1")
            except OSError:
                pass
        _kill_listed([self.path / "cgroup.procs"])

    def destroy(self) -> None:
        self.kill_all()
        for _ in range(50):  # the killed processes leave the cgroup as they are reaped
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)


class Rlimit(Isolation):
    """``rlimit``: no cgroup; rlimits set inside the kernel's user namespace, by ``prlimit``
    run by bwrap: ``RLIMIT_NPROC`` (processes and threads: counted per user namespace, so per
    kernel), ``RLIMIT_AS`` (each process's address space), and the rlimits of every tier.

    glibc's malloc keeps one arena (``MALLOC_ARENA_MAX=1``): each extra arena reserves 64 MB of
    address space that holds no memory. Stray processes die with the kernel's PID namespace: the
    grader kills its first process (bwrap's init), whose death kills every other one.
    """

    name = "rlimit"
    allocation_fails = True
    MALLOC_ENV: ClassVar[dict[str, str]] = {"MALLOC_ARENA_MAX": "1"}

    @classmethod
    @functools.cache
    def problem(cls) -> str | None:
        if os.getuid() == 0:
            return (
                "as root, RLIMIT_NPROC does not apply (Linux exempts root), so a fork bomb would "
                "not be stopped: run the grader as a normal user, or use a cgroup tier"
            )
        release = tuple(int(x) for x in re.findall(r"\d+", os.uname().release)[:2])
        if release < (5, 14):
            return (
                f"Linux {os.uname().release} counts RLIMIT_NPROC per user, not per user "
                "namespace, so one kernel's fork bomb would starve the others (needs Linux 5.14)"
            )
        return bwrap_problem()

    @classmethod
    def scratch_root(cls) -> str | None:
        # Files under /dev/shm would be memory no rlimit caps: the scratch goes on disk.
        return None

    def __init__(self, memory_bytes: int, max_processes: int):
        super().__init__(memory_bytes, max_processes)
        self.info: Path | None = None
        self.peak_tasks = 0

    def command(self, kernel, workdir, env):  # type: ignore[no-untyped-def]
        # bwrap writes the sandbox's first PID and its namespaces' inodes next to the workdir
        # (outside the sandbox's view), and closes that file in the sandbox.
        workdir = Path(os.path.realpath(workdir))
        self.info = workdir.with_name(workdir.name + ".bwrap.json")
        limits = [*base_rlimits(self.memory_bytes)]
        limits += [f"--nproc={self.max_processes}", f"--as={self.memory_bytes}"]
        bwrap = bwrap_arguments(workdir, {**sandbox_environment(workdir, env), **self.MALLOC_ENV})
        inner = ["--", "prlimit", *limits, "--", python_executable(), *kernel[1:]]
        record = ["/bin/sh", "-c", 'exec "$@" 3> "$0"', str(self.info)]
        return [*record, bwrap[0], "--info-fd", "3", *bwrap[1:], *inner], LAUNCH_ENV

    def _first_pid(self) -> int | None:
        """The sandbox's first process (bwrap's init) as the host sees it, while it lives: its
        PID is the sandbox's only while it is in the sandbox's PID namespace (not reused)."""
        try:
            info = json.loads(self.info.read_text()) if self.info else {}
            pid, namespace = int(info["child-pid"]), int(info["pid-namespace"])
            if os.readlink(f"/proc/{pid}/ns/pid") == f"pid:[{namespace}]":
                return pid
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None

    def observe(self) -> None:
        """Count the processes and threads in the sandbox: the tree under its first process,
        which inherits every orphan of its PID namespace. (No counter keeps the forks that
        RLIMIT_NPROC refused: a kernel at its limit at the end of a cell is taken to have been
        refused some.)"""
        first = self._first_pid()
        tasks, stack = 0, [first] if first else []
        while stack:
            pid = stack.pop()
            try:
                threads = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            tasks += len(threads)
            for thread in threads:
                children = Path(f"/proc/{pid}/task/{thread}/children")
                try:
                    stack += map(int, children.read_text().split())
                except (OSError, ValueError):
                    pass
        self.peak_tasks = max(self.peak_tasks, tasks)

    def hit_process_limit(self) -> bool:
        self.observe()
        return self.peak_tasks >= self.max_processes

    def kill_all(self) -> None:
        self.observe()
        if (first := self._first_pid()) is not None:
            try:  # the namespace's init: its death kills every other process in it
                os.kill(first, signal.SIGKILL)
            except OSError:
                pass

    def destroy(self) -> None:
        self.kill_all()
        if self.info is not None:
            self.info.unlink(missing_ok=True)


ISOLATIONS: dict[str, type[Isolation]] = {
    tier.name: tier for tier in (Cgroup2, Cgroup1, Rlimit, Unsandboxed)
}


@functools.cache
def choose(name: str = "auto") -> type[Isolation]:
    """The tier called ``name``, or for ``auto`` the strongest sandboxed tier this machine can
    give; raises :class:`SandboxUnavailable` (one line: what is missing) if it cannot be had."""
    if name == "auto":
        reasons = []
        for tier in (Cgroup2, Cgroup1, Rlimit):
            reason = tier.problem()
            if reason is None:
                return tier
            reasons.append(f"{tier.name}: {reason}")
        raise SandboxUnavailable(
            "no sandbox can be had on this machine (" + "; ".join(reasons) + f"). {INSTALL_HINT}"
        )
    if name not in ISOLATIONS:
        raise SandboxUnavailable(f"unknown sandbox {name!r} (one of auto, {', '.join(TIERS)})")
    tier = ISOLATIONS[name]
    if (reason := tier.problem()) is not None:
        raise SandboxUnavailable(f"the {name} sandbox cannot be had here: {reason}")
    return tier


def weaker_because(tier: type[Isolation]) -> list[str]:
    """Why each sandboxed tier that ``auto`` prefers to ``tier`` cannot be had here."""
    order = (Cgroup2, Cgroup1, Rlimit)
    before = order[: order.index(tier)] if tier in order else order
    return [f"{t.name}: {t.problem()}" for t in before if t.problem() is not None]
