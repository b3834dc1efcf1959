"""A class on a real JupyterHub for the hub suite: its accounts, its hub process, helpers.

See conftest.py for how the class is set up.
"""

from __future__ import annotations

import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from autograder import hub

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENT = "hw1-backprop"
# The students of the run: alice and bob in the browser, dave, erin and fay in a terminal.
ROSTER = ("alice", "bob", "dave", "erin", "fay")
ROLES = (
    "instructor",
    *ROSTER,
    "outsider",
)  # the outsider has an account, not a place on the roster


@dataclass
class HubClass:
    """The running class: its file, its configuration, the hub's address and process."""

    class_file: Path
    course: hub.ClassConfig
    url: str
    root: Path
    passwords: dict[str, str]
    roles: dict[str, str]  # role in the test ("alice", "outsider", ...) -> Unix name
    process: subprocess.Popen | None = None
    log: Path = field(default_factory=Path)

    def user(self, role: str) -> str:
        return self.roles[role]

    def command(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """``python -m autograder hub ARGS --class CLASS`` as the instructor runs it (as root)."""
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "autograder",
                "hub",
                *args[:1],
                "--class",
                str(self.class_file),
                *args[1:],
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if check:
            assert run.returncode == 0, run.stdout + run.stderr
        return run

    def as_user(self, role: str, *command: str) -> subprocess.CompletedProcess:
        """Run a command as one of the class's Unix users, in their home, with their groups."""
        name = self.user(role)
        return subprocess.run(
            ["runuser", "-u", name, "--", "env", f"HOME=/home/{name}", *command],
            cwd=f"/home/{name}",
            capture_output=True,
            text=True,
            timeout=120,
        )

    def user_pids(self) -> list[int]:
        """The processes of the class's Unix users (their servers and kernels)."""
        found = subprocess.run(
            ["ps", "-o", "pid=", "-u", ",".join(self.roles.values())],
            capture_output=True,
            text=True,
        )
        return [int(pid) for pid in found.stdout.split()]

    def processes(self) -> list[str]:
        """Every process left of the hub: its own, the proxy's and the class's users'."""
        users = ",".join(self.roles.values())
        found = subprocess.run(
            ["ps", "-o", "pid=,user:32=,args=", "-u", users], capture_output=True, text=True
        ).stdout.splitlines()
        for pid_file in ("jupyterhub.pid", "proxy.pid"):
            path = self.course.hub_state / pid_file
            if path.exists():
                pid = path.read_text().strip()
                if pid and Path(f"/proc/{pid}").exists():
                    found.append(f"{pid} ({pid_file})")
        if self.process is not None and self.process.poll() is None:
            found.append(f"{self.process.pid} (the hub)")
        return found

    def stop(self) -> None:
        """Stop the hub as an administrator would (SIGTERM): it stops the proxy and every
        user's server."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port_block(size: int = 3) -> int:
    """A port p with p .. p+size-1 free on 127.0.0.1 (the hub, its API and the proxy's)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + size > 65535:
            continue
        try:
            sockets = []
            for port in range(base, base + size):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no block of free ports on 127.0.0.1")


def grant_traverse(paths: list[Path]) -> dict[Path, int]:
    """Add ``o+x`` to every folder on the way to ``paths`` that lacks it; the old modes."""
    changed = {}
    for path in paths:
        for folder in [*reversed(path.parents), path]:
            if folder.is_dir() and not folder.stat().st_mode & stat.S_IXOTH:
                changed[folder] = stat.S_IMODE(folder.stat().st_mode)
                folder.chmod(changed[folder] | stat.S_IXOTH)
    return changed


def wait_for_hub(url: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the hub exited ({process.returncode}):\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/hub/api", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the hub did not answer in {timeout} s:\n{log.read_text()[-4000:]}")
