"""Fixtures of the hub suite: a class on a real JupyterHub on 127.0.0.1, and Chromium.

The class is made of real Unix accounts (created here with ``useradd``/``chpasswd``, as
``python -m autograder hub setup`` and an administrator's ``passwd`` would; they get names
unique to the run and are removed at the end): an instructor, the students of the roster, and a
user who is not on it. Students log in through JupyterHub's PAM authenticator with their
password; each one's JupyterLab runs as that user (LocalProcessSpawner). The exchange, the course
directory and the hub's state live in a fresh folder under /tmp.

The students run the course environment (this interpreter and ``.venv``): where the interpreter
lives in a folder other users cannot traverse (pyenv under ``/root``, mode 0700, in CI), the
fixture grants traverse (``o+x``, not read) on those folders for the run and restores their modes
after; ``solutions/`` and ``tests/`` are made owner-only for the run, as the hub's start command
requires (autograder/README.md).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from autograder import hub

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ASSIGNMENT = "hw1-backprop"


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
            [sys.executable, "-m", "autograder", "hub", *args[:1], "--class", str(self.class_file),
             *args[1:]],
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


def _free_port_block(size: int = 3) -> int:
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


def _grant_traverse(paths: list[Path]) -> dict[Path, int]:
    """Add ``o+x`` to every folder on the way to ``paths`` that lacks it; the old modes."""
    changed = {}
    for path in paths:
        for folder in [*reversed(path.parents), path]:
            if folder.is_dir() and not folder.stat().st_mode & stat.S_IXOTH:
                changed[folder] = stat.S_IMODE(folder.stat().st_mode)
                folder.chmod(changed[folder] | stat.S_IXOTH)
    return changed


def _wait_for_hub(url: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
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


@pytest.fixture(scope="session")
def hub_class() -> Iterator[HubClass]:
    if os.geteuid() != 0:
        pytest.fail("the hub suite creates Unix accounts and runs the hub as root: run as root")
    tag = secrets.token_hex(3)
    roles = {
        role: f"tnn{tag}{role[:3]}"
        for role in ("instructor", "alice", "bob", "dave", "erin", "outsider")
    }
    roster = [roles[r] for r in ("alice", "bob", "dave", "erin")]
    root = Path(tempfile.mkdtemp(prefix=f"hub-class-{tag}-", dir="/tmp"))
    root.chmod(0o755)
    class_file = root / "class.toml"
    port = _free_port_block()
    class_file.write_text(
        f'course_id = "tnn-{tag}"\n'
        f'instructor = "{roles["instructor"]}"\n'
        f"students = {roster!r}\n".replace("'", '"')
        + 'exchange = "exchange"\ncourse_dir = "course"\nhub_state = "state"\n'
        f"port = {port}\n"
        '[late]\nkind = "per_hour"\nrate = 0.1\ncutoff_hours = 48\n'
    )
    course = hub.ClassConfig.load(class_file)
    passwords = {name: secrets.token_urlsafe(12) for name in roles.values()}
    modes = _grant_traverse([Path(sys.executable).resolve(), Path(sys.prefix), REPO])
    secrets_modes = {p: stat.S_IMODE(p.stat().st_mode) for p in (REPO / "solutions", REPO / "tests")}
    for path in secrets_modes:
        path.chmod(0o700)
    hub_run = HubClass(class_file, course, f"http://127.0.0.1:{port}", root, passwords, roles)
    try:
        hub_run.command("setup")
        subprocess.run(
            ["useradd", "--create-home", "-K", "HOME_MODE=0700", roles["outsider"]], check=True
        )
        subprocess.run(
            ["chpasswd"],
            input="".join(f"{name}:{password}\n" for name, password in passwords.items()),
            text=True,
            check=True,
        )
        hub_run.log = root / "hub.log"
        with hub_run.log.open("w") as log:
            hub_run.process = subprocess.Popen(
                [sys.executable, "-m", "autograder", "hub", "start", "--class", str(class_file)],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_for_hub(hub_run.url, hub_run.process, hub_run.log)
        yield hub_run
    finally:
        hub_run.stop()
        for pid in hub_run.user_pids():  # none, unless the hub failed to stop them
            os.kill(pid, signal.SIGKILL)
        for name in roles.values():
            subprocess.run(["userdel", "--remove", name], capture_output=True)
        subprocess.run(["groupdel", course.group], capture_output=True)
        for path, mode in {**modes, **secrets_modes}.items():
            path.chmod(mode)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make /usr/bin/chromium` installs Debian's Chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
