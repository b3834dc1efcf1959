"""Read a learning-management system's bulk download of an assignment as it is.

Two layouts are recognized, in a ``.zip`` or in the folder it was extracted to:

- **Canvas** ("Download Submissions"): a flat archive, one file per attachment, named
  ``<name>_[late_]<user id>_<attachment id>_<file name>``. Canvas builds it in
  ``ContentZipper#get_filename``: ``[sortable name, "LATE" if late, user id].join("_")``, then
  every character that is not a letter, digit or ``_`` removed and the whole lowercased
  (``"O'Brien-Smith, Seán"`` -> ``obriensmithseán``; digits framed by underscores are removed
  from the name first), then ``_<attachment id>_<the student's file name>``. With anonymous
  grading the name part is absent. The student's file name is Canvas's display name: a file
  handed in again under the same name gets ``-1``, ``-2``, ... before its suffix.
- **Moodle** ("Download all submissions"): one folder per student and submission plugin,
  ``<full name>_<participant id>_assignsubmission_file`` (Moodle < 4.1 ended it with ``_``), the
  student's files inside, in their own sub-folders if they made any; or, with "download
  submissions in folders" off, flat files ``<full name>_<participant id>_assignsubmission_file_
  <file name>``. In the full name ``_`` becomes a space; the participant id is the number
  Moodle's grading worksheet shows as ``Participant <id>`` (``assign::get_uniqueid_for_user``).
  Online-text answers come as ``..._assignsubmission_onlinetext/onlinetext.html``.

:func:`read_download` turns either into one :class:`Handin` per student: the student's id (the
Canvas user id, the Moodle participant id), the name the LMS gives, the notebook's bytes, Canvas's
late marker, and what was not graded (a PDF, an online-text answer, an earlier or second
notebook). When a student has several notebooks, the latest is graded: on Canvas the highest
attachment id (ids grow with every upload), on Moodle the file last modified (the archive keeps
each file's modification time), the file named after the assignment on a tie.

Names are only ever read, never used as paths; a member larger than ``MAX_BYTES`` is not read.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_BYTES = 100 << 20
TOO_LARGE = b"<not read: the file is larger than the limit of 100 MB>"

CANVAS_FILE = re.compile(
    r"^(?:(?P<name>\w+?)_)??(?:(?P<late>late)_)?(?P<id>\d+)_(?P<attachment>\d+)_(?P<file>.+)$"
)
CANVAS_ENTRY = re.compile(  # an online text entry or URL, no attachment
    r"^(?:(?P<name>\w+?)_)??(?:(?P<late>late)_)?(?P<id>\d+)_(?P<file>text\.html|link\.html)$"
)
MOODLE_FOLDER = re.compile(r"^(?P<name>.*)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_?$")
MOODLE_FLAT_FILE = re.compile(
    r"^(?P<name>.*?)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<file>.+)$"
)


@dataclass(frozen=True)
class Member:
    """One file of a download: its path inside it (``/``-separated), size, modification time
    (as a sortable tuple) and a reader of its bytes."""

    path: str
    size: int
    modified: tuple[int, ...]
    read: Callable[[], bytes]


@dataclass(frozen=True)
class Handin:
    """What one student handed in, as the download shows it."""

    student: str  # Canvas user id, Moodle participant id
    name: str  # the name in the download, for the feedback page
    file_name: str  # the student's own file name
    content: bytes
    late: bool  # Canvas's late marker (Moodle's download has none)
    skipped: tuple[str, ...] = ()  # this student's files that were not graded, and why


@dataclass(frozen=True)
class Download:
    lms: str  # "canvas" or "moodle"
    handins: list[Handin]
    skipped: list[str]  # files that belong to no student


def members(path: Path) -> list[Member]:
    """The files of a ``.zip`` or a folder, hidden files and macOS's ``__MACOSX`` left out."""
    if path.is_file():
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
        return [
            Member(_member_name(i), i.file_size, i.date_time, _zip_reader(path, i))
            for i in infos
            if not _hidden(i.filename)
        ]
    found = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = file.relative_to(path).as_posix()
        if not _hidden(relative):
            stat = file.stat()
            found.append(Member(relative, stat.st_size, (stat.st_mtime_ns,), _file_reader(file)))
    return found


def recognize(files: list[Member]) -> str | None:
    """``"moodle"``, ``"canvas"`` or ``None`` (neither: a plain folder of notebooks)."""
    if any(_moodle_parts(m.path) for m in files):
        return "moodle"
    notebooks = [m for m in files if m.path.endswith(".ipynb")]
    if notebooks and all(CANVAS_FILE.match(PurePosixPath(m.path).name) for m in notebooks):
        return "canvas"
    return None


def read_download(files: list[Member], assignment: str) -> Download:
    """One :class:`Handin` per student of a Canvas or Moodle download (see the module's doc)."""
    lms = recognize(files)
    if lms is None:
        raise ValueError("lms: neither a Canvas nor a Moodle download")
    by_student: dict[str, list[tuple[Member, str, str, bool, tuple]]] = {}
    stray = []
    for member in files:
        parts = _moodle_parts(member.path) if lms == "moodle" else _canvas_parts(member.path)
        if parts is None:
            stray.append(f"{member.path}: not named as {lms.capitalize()} names its files")
            continue
        student, name, file_name, late, order = parts
        if lms == "moodle":
            order = member.modified
        by_student.setdefault(student, []).append((member, name, file_name, late, order))
    handins = []
    for student, entries in sorted(by_student.items()):
        notebooks = [e for e in entries if e[2].endswith(".ipynb")]
        others = [e for e in entries if not e[2].endswith(".ipynb")]
        skipped = [f"{e[2]}: not a notebook" for e in others]
        if not notebooks:
            stray.append(f"{entries[0][1]} ({student}): no notebook ({', '.join(skipped)})")
            continue
        notebooks.sort(key=lambda e: (e[4], e[2] == f"{assignment}.ipynb", e[2]))
        member, name, file_name, late, _ = notebooks[-1]
        skipped += [f"{e[2]}: an earlier or second notebook" for e in notebooks[:-1]]
        content = TOO_LARGE if member.size > MAX_BYTES else member.read()
        content = TOO_LARGE if len(content) > MAX_BYTES else content
        handins.append(Handin(student, name, file_name, content, late, tuple(skipped)))
    return Download(lms, handins, stray)


def _canvas_parts(path: str) -> tuple[str, str, str, bool, tuple] | None:
    name = PurePosixPath(path).name
    match = CANVAS_FILE.match(name) or CANVAS_ENTRY.match(name)
    if match is None:
        return None
    order = (int(match.groupdict().get("attachment") or -1),)
    return match["id"], match["name"] or "", match["file"], bool(match["late"]), order


def _moodle_parts(path: str) -> tuple[str, str, str, bool, tuple] | None:
    """(participant id, full name, file name, False, ()) of a member of a Moodle download:
    the first folder named like a student's (any folder above it is the archive's own), or a
    flat file named like one."""
    parts = PurePosixPath(path).parts
    for depth, folder in enumerate(parts[:-1]):
        if match := MOODLE_FOLDER.match(folder):
            return match["id"], match["name"], "/".join(parts[depth + 1 :]), False, ()
    if match := MOODLE_FLAT_FILE.match(parts[-1]):
        return match["id"], match["name"], match["file"], False, ()
    return None


def _hidden(path: str) -> bool:
    return any(p.startswith((".", "__MACOSX")) for p in PurePosixPath(path).parts)


def _member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its writer meant it: an archive without the UTF-8 flag that still
    holds UTF-8 names (as many writers produce) is decoded as UTF-8, not as code page 437."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except UnicodeError:
        return info.filename


def _zip_reader(path: Path, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        with zipfile.ZipFile(path) as archive, archive.open(info) as handle:
            return handle.read(MAX_BYTES + 1)  # never more (zip bombs)

    return read


def _file_reader(path: Path) -> Callable[[], bytes]:
    return lambda: path.read_bytes()
