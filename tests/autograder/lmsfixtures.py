"""Canvas and Moodle bulk downloads, named exactly as each system names them (for the tests).

- Canvas, ``ContentZipper``: ``get_filename`` joins ``[sortable name, "LATE" if late, user
  id]`` with ``_``, removes every character that is not a letter, digit or ``_`` and lowercases
  (the sortable name first loses the underscores around digits, ``_(\\d+)_`` -> ``\\1``); each
  attachment is then ``<that>_<attachment id>_<display name>``; anonymous grading leaves the
  name out.
- Moodle, ``downloader::get_student_prefix``/``load_submissionplugin_filelist``: the full name
  with ``_`` replaced by spaces, ``_<participant id>``, cleaned with ``clean_filename`` (which
  drops ``/\\:*?"<>|`` and control characters), then ``_assignsubmission_file`` and the file's
  path as a folder, or ``_assignsubmission_file_<file name>`` flat; blind marking writes
  ``Participant`` for the name.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path


def canvas_prefix(sortable_name: str | None, user_id: int, *, late: bool = False) -> str:
    name = None if sortable_name is None else re.sub(r"_(\d+)_", r"\1", sortable_name)
    joined = "_".join(p for p in (name, "LATE" if late else None, str(user_id)) if p is not None)
    return re.sub(r"[^\w]", "", joined).lower()


def canvas_file(
    sortable_name: str | None, user_id: int, attachment_id: int, display_name: str, *, late=False
) -> str:
    return f"{canvas_prefix(sortable_name, user_id, late=late)}_{attachment_id}_{display_name}"


def moodle_prefix(full_name: str, participant_id: int) -> str:
    return re.sub(r'[/\\:*?"<>|\x00-\x1f]', "", f"{full_name.replace('_', ' ')}_{participant_id}")


def moodle_file(full_name: str, participant_id: int, file_name: str, *, folders=True) -> str:
    prefix = moodle_prefix(full_name, participant_id)
    if folders:
        return f"{prefix}_assignsubmission_file/{file_name}"
    return f"{prefix}_assignsubmission_file_{file_name}"


@dataclass(frozen=True)
class Entry:
    name: str  # the member's name in the archive
    content: bytes
    date_time: tuple[int, int, int, int, int, int] = (2026, 10, 12, 12, 0, 0)


def write_zip(path: Path, entries: list[Entry]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for entry in entries:
            archive.writestr(zipfile.ZipInfo(entry.name, entry.date_time), entry.content)
    return path


def extract(archive: Path, folder: Path) -> Path:
    """The download as an instructor's unzip leaves it (member times kept)."""
    import os
    import time

    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = folder / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            stamp = time.mktime((*info.date_time, 0, 0, -1))
            os.utime(target, (stamp, stamp))
    return folder
