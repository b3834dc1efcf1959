"""Find the class's submissions: one notebook per student, from any of these layouts.

- a Canvas or a Moodle bulk download, as a ``.zip`` or extracted (:mod:`autograder.lms`): the
  student is the Canvas user id or the Moodle participant id, and what was not graded is listed;
- a folder of ``<student-id>.ipynb`` files;
- a ``.zip`` of such files (in any sub-folder of the archive);
- nbgrader's tree ``submitted/<student-id>/<assignment>/<assignment>.ipynb`` (given as the
  ``submitted`` folder itself).

A student id is the file's name without ``.ipynb``; a file's folders are ignored, and a name is
only ever read, never used as a path. A name that is not a valid id (non-UTF-8 bytes, spaces,
...), that another file has too, or that tries to leave the archive (``../../x.ipynb``) is graded
under a safe id made of its valid characters and a hash of the full name, and the student's
feedback says so. A file larger than ``MAX_BYTES`` is not read (it is graded as unreadable).
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from autograder import lms

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")
MAX_BYTES = 100 << 20
TOO_LARGE = b"<not read: the file is larger than the limit of 100 MB>"


@dataclass(frozen=True)
class Submission:
    student: str
    content: bytes  # the notebook as submitted, possibly not even JSON
    notes: tuple[str, ...] = ()  # what the feedback says about the file itself
    name: str = ""  # the student's name where the download gives one
    late: bool | None = None  # marked late (True) or not (False) by the LMS; None: unknown
    submitted_at: datetime | None = None


@dataclass(frozen=True)
class Collected:
    submissions: list[Submission]
    lms: str | None = None  # "canvas", "moodle", or None for the other layouts
    skipped: list[str] = field(default_factory=list)  # files not graded, and why


def collect(path: Path, assignment: str) -> list[Submission]:
    """The submissions in ``path`` (see :func:`collect_download`), sorted by student."""
    return collect_download(path, assignment).submissions


def collect_download(path: Path, assignment: str) -> Collected:
    """The submissions in ``path`` (LMS download, folder, ``.zip`` or nbgrader tree), sorted by
    student, and what was not graded."""
    if (path.is_file() and path.suffix == ".zip") or path.is_dir():
        files = lms.members(path)
        if lms.recognize(files) is not None:
            return _from_lms(lms.read_download(files, assignment))
    if path.is_file() and path.suffix == ".zip":
        found = _from_zip(path)
    elif path.is_dir():
        tree = sorted(path.glob(f"*/{assignment}/{assignment}.ipynb"))
        files = [(p.parent.parent.name, p) for p in tree] or [
            (p.stem, p) for p in sorted(path.glob("*.ipynb"))
        ]
        found = [(stem, stem, False, _read(p)) for stem, p in files]
    else:
        raise ValueError(f"submissions: {path} is neither a folder nor a .zip file")
    if not found:
        raise ValueError(
            f"submissions: no notebooks in {path} (expected <student-id>.ipynb files, or "
            f"<student-id>/{assignment}/{assignment}.ipynb)"
        )
    submissions: dict[str, Submission] = {}
    for stem, full_name, escapes, content in sorted(found, key=lambda f: (f[2], f[1])):
        notes = []
        if escapes:
            notes.append(f"Your file's path was {full_name!r}: only its name was used.")
        if escapes or not STUDENT_ID.match(stem) or stem in submissions:
            student = _safe_id(stem, full_name)
            notes.append(
                f"Your file's name {stem!r} is not a valid student id, or another file has it "
                f"too: you were graded as {student!r}."
            )
        else:
            student = stem
        submissions[student] = Submission(student, content, tuple(notes))
    return Collected([submissions[student] for student in sorted(submissions)])


def _from_lms(download: lms.Download) -> Collected:
    submissions, skipped = [], list(download.skipped)
    for handin in download.handins:
        notes = tuple(f"Not graded: {reason}." for reason in handin.skipped)
        submissions.append(
            Submission(handin.student, handin.content, notes, handin.name, handin.late)
            if download.lms == "canvas"  # Moodle's download has no late marker
            else Submission(handin.student, handin.content, notes, handin.name)
        )
        label = f"{handin.name} ({handin.student})" if handin.name else handin.student
        skipped.extend(f"{label}: {reason}" for reason in handin.skipped)
    if not submissions:
        raise ValueError(f"submissions: a {download.lms} download without any notebook")
    return Collected(submissions, download.lms, skipped)


def _safe_id(stem: str, full_name: str) -> str:
    """A valid student id: the valid characters of ``stem`` and a hash of the full name."""
    digest = hashlib.sha256(full_name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    kept = re.sub(r"[^A-Za-z0-9_.@+-]", "_", stem).lstrip("_.@+-")[:40]
    return f"{kept or 'unnamed'}-{digest}"


def _read(path: Path) -> bytes:
    return TOO_LARGE if path.stat().st_size > MAX_BYTES else path.read_bytes()


def _from_zip(path: Path) -> list[tuple[str, str, bool, bytes]]:
    """(name without folders and suffix, name in the archive, whether the name tries to leave
    the archive, content) per notebook in the archive."""
    found = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            member = PurePosixPath(info.filename)
            if member.suffix != ".ipynb" or any(
                p.startswith(("__MACOSX", ".")) and p != ".." for p in member.parts
            ):
                continue
            escapes = member.is_absolute() or ".." in member.parts
            if info.file_size > MAX_BYTES:
                content = TOO_LARGE
            else:
                with archive.open(info) as handle:  # never more than MAX_BYTES (zip bombs)
                    content = handle.read(MAX_BYTES + 1)
                content = TOO_LARGE if len(content) > MAX_BYTES else content
            found.append((member.stem, info.filename, escapes, content))
    return found
