"""Fixtures of the hub suite: a class on a real JupyterHub on 127.0.0.1 (Chromium is
``tests/conftest.py``'s).

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
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubclass import (
    REPO,
    ROLES,
    ROSTER,
    HubClass,
    free_port_block,
    grant_traverse,
    wait_for_hub,
)

from autograder import hub


@pytest.fixture(scope="session")
def hub_class() -> Iterator[HubClass]:
    if os.geteuid() != 0:
        pytest.fail("the hub suite creates Unix accounts and runs the hub as root: run as root")
    tag = secrets.token_hex(3)
    roles = {role: f"tnn{tag}{role[:3]}" for role in ROLES}
    roster = [roles[r] for r in ROSTER]
    root = Path(tempfile.mkdtemp(prefix=f"hub-class-{tag}-", dir="/tmp"))
    root.chmod(0o755)
    class_file = root / "class.toml"
    port = free_port_block()
    class_file.write_text(
        f'course_id = "tnn-{tag}"\n'
        f'instructor = "{roles["instructor"]}"\n'
        f"students = {roster!r}\n".replace("'", '"')
        + 'exchange = "exchange"\ncourse_dir = "course"\nhub_state = "state"\n'
        f"port = {port}\n"
        '[late]\npolicy = "per-hour"\nrate = 0.1\ncutoff_hours = 48\n'
    )
    course = hub.ClassConfig.load(class_file)
    passwords = {name: secrets.token_urlsafe(12) for name in roles.values()}
    modes = grant_traverse([Path(sys.executable).resolve(), Path(sys.prefix), REPO])
    secrets_modes = {
        p: stat.S_IMODE(p.stat().st_mode) for p in (REPO / "solutions", REPO / "tests")
    }
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
        wait_for_hub(hub_run.url, hub_run.process, hub_run.log)
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
