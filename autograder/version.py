"""The version of an assignment as the grader sees it: what decides whether a stored grade holds.

A grade depends on the assignment's source (its answers, tests and hidden tests), on the framework
the notebook runs against (``minidl/``), on the course's code it imports (``course/``, the
homework's checks) and on the grader itself (``autograder/``: how a submission is restored, run
and judged). :func:`assignment_version` hashes all of them; a stored result is reused only for the
same submission graded by the same version, so a corrected test reaches every student.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CODE = ("minidl", "course", "autograder")  # packages whose Python files a grade depends on


def assignment_version(solutions: Path, assignment: str, *, repo: Path = REPO) -> str:
    """SHA-256 (hex) of every file of ``solutions/<assignment>/`` and every ``.py`` file of
    ``minidl/``, ``course/`` and ``autograder/`` in ``repo``: each file's path (relative to its
    root) and bytes, in sorted order."""
    digest = hashlib.sha256()
    folder = solutions / assignment
    if not folder.is_dir():
        raise FileNotFoundError(f"assignment_version: no folder {folder}")
    roots = [("solutions", folder, "*")] + [(name, repo / name, "*.py") for name in CODE]
    for label, root, pattern in roots:
        for path in sorted(p for p in root.rglob(pattern) if _counts(p, root)):
            digest.update(f"{label}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def short(version: str) -> str:
    """The first 12 hex digits, for people to read."""
    return version[:12]


def _counts(path: Path, root: Path) -> bool:
    """A file that is part of the code: not a cache, nor a hidden file (an editor's backup,
    Jupyter's ``.ipynb_checkpoints/``)."""
    parts = path.relative_to(root).parts
    hidden = any(part.startswith(".") or part == "__pycache__" for part in parts)
    return path.is_file() and not hidden and path.suffix != ".pyc"
