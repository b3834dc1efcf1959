"""The bundled demo class of Homework 1, so a new instructor sees the whole flow.

``demo_class/hw1-backprop/`` holds one file per student: a ``.cells`` file (see
:mod:`autograder.splice`) spliced into the released notebook ``exercises/hw1-backprop/``, or a
``.submitted`` file handed in as ``<student>.ipynb`` byte for byte (a broken file). The class: a
correct submission, partial ones with typical mistakes, a blank one, one that tampered with the
test cells, and an unreadable file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from autograder.notebooks import read_source, source_path
from autograder.release import EXERCISES, REPO
from autograder.splice import submission_from_file

CLASS = Path(__file__).with_name("demo_class")


def build_demo_class(
    folder: Path,
    *,
    assignment: str = "hw1-backprop",
    solutions: Path = REPO / "solutions",
    exercises: Path = EXERCISES,
) -> Path:
    """Write the demo class as ``<student>.ipynb`` files into ``folder``; return ``folder``."""
    source = read_source(source_path(solutions, assignment))
    release = nbformat.read(exercises / assignment / f"{assignment}.ipynb", as_version=4)
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted((CLASS / assignment).iterdir()):
        if path.suffix == ".submitted":
            shutil.copy(path, folder / f"{path.stem}.ipynb")
        elif path.suffix == ".cells":
            (folder / f"{path.stem}.ipynb").write_bytes(submission_from_file(release, source, path))
    return folder
