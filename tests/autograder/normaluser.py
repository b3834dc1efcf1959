"""A normal (non-root) user to run the grader as: the tests run as root, an instructor on a
course server does not.

The :func:`instructor` fixture creates the user (``useradd --create-home``) and makes the paths to
the clone and to the virtual environment traversable by it (``o+x`` on every directory on the
way, never ``o+r``: a clone or a Python under ``/root``, mode 700, is otherwise out of its reach);
the grader then runs as that user through ``runuser``. When the tests already run as a normal
user, they grade as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from gradeclass import REPO

INSTRUCTOR = "autograder-instructor"


def make_traversable(path: Path) -> None:
    """Let others traverse every directory on the way to ``path`` (not list them)."""
    for directory in [*reversed(path.parents), path]:
        mode = directory.stat().st_mode
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


def as_user(user: str | None, command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``command`` from the repository root as ``user`` (``None``: as the tests run)."""
    prefix = ["runuser", "-u", user, "--"] if user else []
    return subprocess.run(
        [*prefix, *map(str, command)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        **kwargs,
    )


@pytest.fixture(scope="session")
def instructor() -> str | None:
    """The normal user the grader runs as (``None``: the tests already run as one)."""
    if os.getuid() != 0:
        return None
    try:
        pwd.getpwnam(INSTRUCTOR)
    except KeyError:
        subprocess.run(["useradd", "--create-home", INSTRUCTOR], check=True)
    python = (Path(os.path.realpath(sys.prefix)), Path(os.path.realpath(sys.base_prefix)))
    for path in (REPO, *python):
        make_traversable(path)
    check = as_user(INSTRUCTOR, [sys.executable, "-c", "import autograder.grading, minidl"])
    assert check.returncode == 0, f"{INSTRUCTOR} cannot use the repository: {check.stderr}"
    return INSTRUCTOR


@pytest.fixture(scope="module")
def user_folder(instructor):
    """A folder of the instructor's own (pytest's temporary folders are root's, mode 700)."""
    folder = Path(tempfile.mkdtemp(prefix="autograder-instructor-"))
    if instructor:
        shutil.chown(folder, instructor, instructor)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
