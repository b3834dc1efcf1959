"""Find the class's submissions: one notebook per student, from any of the three layouts.

- a folder of ``<student-id>.ipynb`` files (what a learning-management system exports);
- a ``.zip`` of such files (in any sub-folder of the archive);
- nbgrader's tree ``submitted/<student-id>/<assignment>/<assignment>.ipynb`` (given as the
  ``submitted`` folder itself).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")


@dataclass(frozen=True)
class Submission:
    student: str
    content: bytes  # the notebook as submitted, possibly not even JSON


def collect(path: Path, assignment: str) -> list[Submission]:
    """The submissions in ``path`` (folder, ``.zip`` or nbgrader tree), sorted by student."""
    if path.is_file() and path.suffix == ".zip":
        found = _from_zip(path)
    elif path.is_dir():
        tree = sorted(path.glob(f"*/{assignment}/{assignment}.ipynb"))
        found = (
            {p.parent.parent.name: p.read_bytes() for p in tree}
            if tree
            else {p.stem: p.read_bytes() for p in sorted(path.glob("*.ipynb"))}
        )
    else:
        raise ValueError(f"submissions: {path} is neither a folder nor a .zip file")
    if not found:
        raise ValueError(
            f"submissions: no notebooks in {path} (expected <student-id>.ipynb files, or "
            f"<student-id>/{assignment}/{assignment}.ipynb)"
        )
    bad = [student for student in found if not STUDENT_ID.match(student)]
    if bad:
        raise ValueError(
            f"submissions: student ids must match {STUDENT_ID.pattern}, got {', '.join(bad)}"
        )
    return [Submission(student, found[student]) for student in sorted(found)]


def _from_zip(path: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            member = PurePosixPath(name)
            if member.suffix != ".ipynb" or any(
                p.startswith(("__MACOSX", ".")) for p in member.parts
            ):
                continue
            student = member.stem
            if student in found:
                raise ValueError(f"submissions: {path} holds two notebooks for {student!r}")
            found[student] = archive.read(name)
    return found
