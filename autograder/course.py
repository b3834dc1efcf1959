"""An nbgrader course directory: ``source/``, ``release/``, ``submitted/``, ``autograded/`` and
the SQLite gradebook ``gradebook.db``, configured by ``autograder/nbgrader_config.py``.

Releasing stages a temporary course; grading keeps a persistent one under ``--out DIR/course`` so
that the gradebook (every earlier grade) survives re-runs.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine
from traitlets.config import Config, PyFileConfigLoader

CONFIG_FILE = Path(__file__).with_name("nbgrader_config.py")


@event.listens_for(Engine, "connect")
def _fast_sqlite(connection, record) -> None:  # type: ignore[no-untyped-def]
    """nbgrader commits after every grade; in SQLite's default mode each commit waits for the
    disk (fsync), which made saving one student's grades take most of a second. A write-ahead
    log with ``synchronous=NORMAL`` commits without waiting and still never corrupts the file
    (a power cut can lose the last commits only: re-grading restores them)."""
    if type(connection).__module__.startswith("sqlite3"):
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")


def nbgrader_config(root: Path) -> Config:
    """The course's nbgrader configuration with the course directory set to ``root``."""
    config = PyFileConfigLoader(CONFIG_FILE.name, path=str(CONFIG_FILE.parent)).load_config()
    config.CourseDirectory.root = str(root.resolve())
    return config


class Course:
    """An nbgrader course directory at ``root``."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        # nbgrader runs the `alembic` script of its environment when it creates a gradebook.
        scripts = str(Path(sys.executable).parent)
        if scripts not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")
        self.config = nbgrader_config(self.root)
        self.coursedir = CourseDirectory(config=self.config)

    @property
    def db_url(self) -> str:
        return self.coursedir.db_url

    @property
    def course_id(self) -> str:
        return self.coursedir.course_id

    def gradebook(self) -> Gradebook:
        return Gradebook(self.db_url, self.course_id)

    def path(self, step: str, assignment: str, student: str = ".") -> Path:
        """``<root>/<step>/[<student>/]<assignment>`` (nbgrader's directory structure)."""
        return Path(self.coursedir.format_path(step, student, assignment))

    def notebook(self, step: str, assignment: str, student: str = ".") -> Path:
        return self.path(step, assignment, student) / f"{assignment}.ipynb"

    def generate_assignment(self, assignment: str, source: NotebookNode) -> NotebookNode:
        """Stage ``source`` and run nbgrader's ``generate_assignment``; return the release.

        Skipped when the staged source is unchanged and released already, so re-grading never
        touches the gradebook's assignment.
        """
        staged = self.notebook("source", assignment)
        released = self.notebook("release", assignment)
        text = nbformat.writes(source)
        stamp = self.root / f".{assignment}.source.sha256"
        digest = hashlib.sha256(text.encode()).hexdigest()
        if released.exists() and stamp.exists() and stamp.read_text() == digest:
            return nbformat.read(released, as_version=4)
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.write_text(text)
        result = NbGraderAPI(coursedir=self.coursedir, config=self.config).generate_assignment(
            assignment, force=True, create=True
        )
        if not result["success"]:
            raise RuntimeError(
                f"nbgrader generate_assignment {assignment} failed:\n"
                f"{result.get('error', '')}\n{result.get('log', '')}"
            )
        stamp.write_text(digest)
        return nbformat.read(released, as_version=4)
