"""The student kit: everything a student needs, nothing an instructor must keep.

``build(out)`` writes ``out/`` and ``out.zip`` (``make kit``: ``_build/kit/``, ``_build/kit.zip``):

- ``README.md``: setting up, working, self-checking and handing in (``kit_README.md``);
- ``homework/<assignment>/<assignment>.ipynb``: the released notebooks of ``exercises/``;
- ``book/...ipynb``: every page of the book's table of contents as a notebook (jupytext's
  conversion of the MyST source, not executed);
- ``wheels/``: the framework ``minidl`` and the course's code ``course`` (the homework's
  ``course.checks``, the pages' experiments, figures and sliders) as one wheel, built from
  ``pyproject.toml``, so it holds exactly the packages pyproject's
  ``[tool.setuptools.packages.find]`` lists (and the kit README as its description, not the
  repository's);
- ``requirements.txt``: what the notebooks, the pages and the framework import, with
  JupyterLab, pinned to the versions of the repository's ``requirements.txt`` with every
  dependency (read from the installed distributions' metadata).

No instructor's file goes in: not ``solutions/``, ``tests/``, ``autograder/``, nor the
repository's README; a test scans the kit for every solution line and hidden test.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import jupytext
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from autograder.notebooks import assignments

REPO = Path(__file__).resolve().parent.parent
KIT = REPO / "_build" / "kit"
README = Path(__file__).with_name("kit_README.md")
STUDENT_TOOLS = ("jupyterlab", "ipykernel")
"""What a student runs the notebooks in, beyond what they import."""
COURSE_EXTRA = "course"
"""pyproject's extra with the dependencies of the ``course`` package (figures, sliders)."""


def build(out: Path = KIT, *, repo: Path = REPO) -> Path:
    """Write the kit into ``out`` (replacing it) and zip it as ``out.zip``; return the zip."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copy(README, out / "README.md")
    notebooks = []
    for name in assignments(repo / "solutions"):
        released = repo / "exercises" / name / f"{name}.ipynb"
        target = out / "homework" / name / released.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(released, target)
        notebooks.append(target)
    for page in book_pages(repo):
        target = (out / page).with_suffix(".ipynb")
        target.parent.mkdir(parents=True, exist_ok=True)
        notebook = jupytext.read(repo / page)
        for i, cell in enumerate(notebook.cells):  # stable ids: the same page, the same bytes
            cell.id = f"{target.stem}-{i:02d}"
        jupytext.write(notebook, target, fmt="ipynb")
        notebooks.append(target)
    wheel = build_wheel(repo, out / "wheels")
    own = top_level_packages(wheel)
    (out / "requirements.txt").write_text(
        requirements_text(repo, imported_distributions(notebooks, own))
    )
    return _zip(out)


def _zip(folder: Path) -> Path:
    """``folder.zip``, its members dated 1980-01-01 so that an unchanged kit gives the same
    bytes, and left untouched then (a new time would make Sphinx re-read the pages linking
    to it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                name = (Path(folder.name) / path.relative_to(folder)).as_posix()
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    zipped = folder.with_suffix(".zip")
    if not zipped.is_file() or zipped.read_bytes() != buffer.getvalue():
        zipped.write_bytes(buffer.getvalue())
    return zipped


def book_pages(repo: Path) -> list[Path]:
    """The book's pages in reading order (``_toc.yml``), as paths relative to ``repo``."""
    toc = yaml.safe_load((repo / "_toc.yml").read_text())
    found = []

    def walk(entries: list) -> None:
        for entry in entries:
            if "file" in entry:
                found.append(entry["file"])
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key, []))

    walk([{"file": toc["root"]}, *toc.get("parts", []), *toc.get("chapters", [])])
    pages = []
    for name in found:
        path = next(p for p in (repo / f"{name}.md", repo / f"{name}.ipynb") if p.is_file())
        pages.append(path.relative_to(repo))
    return pages


def build_wheel(repo: Path, wheels: Path) -> Path:
    """The framework's wheel, built from a copy of ``pyproject.toml`` and the packages it
    lists, with the kit's README as the package's description."""
    pyproject = tomllib.loads((repo / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    wheels.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        shutil.copy(repo / "pyproject.toml", source)
        shutil.copy(README, source / pyproject["project"]["readme"])
        for folder in sorted(repo.iterdir()):
            if folder.is_dir() and any(fnmatch.fnmatch(folder.name, p) for p in patterns):
                ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
                shutil.copytree(folder, source / folder.name, ignore=ignore)
        run = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--no-build-isolation", "--wheel-dir", str(wheels), str(source)],
            capture_output=True,
            text=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": "315532800"},  # the same bytes every time
        )  # fmt: skip
        if run.returncode != 0:
            raise RuntimeError(f"kit: building the wheel failed:\n{run.stdout}{run.stderr}")
    (wheel,) = wheels.glob("*.whl")
    return wheel


def top_level_packages(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {n.split("/")[0] for n in archive.namelist() if ".dist-info/" not in n}


def imported_distributions(notebooks: list[Path], own: set[str]) -> set[str]:
    """The distributions whose modules the notebooks' code imports (the framework's own
    packages and the standard library aside)."""
    modules = set()
    for path in notebooks:
        for cell in jupytext.read(path).cells:
            if cell.cell_type == "code":
                modules |= _imports(cell.source)
    providers = importlib.metadata.packages_distributions()
    found = set()
    for module in sorted(modules - own - set(sys.stdlib_module_names)):
        if module not in providers:
            raise ValueError(f"kit: the notebooks import {module!r}, which nothing installs")
        found |= {canonicalize_name(d) for d in providers[module]}
    return found


def _imports(source: str) -> set[str]:
    magics = ("%", "!")
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(magics))
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def requirements_text(repo: Path, imported: set[str]) -> str:
    """Pinned requirements: the wheel's dependencies (``minidl``'s, and those of ``course``,
    pyproject's extra :data:`COURSE_EXTRA`), what the notebooks import and the student's tools,
    with every dependency, at the repository's pins."""
    pins = _pins(repo / "requirements.txt")
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r).name for r in project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).get(COURSE_EXTRA, []):
        wanted.append(Requirement(extra).name)
    wanted += [*STUDENT_TOOLS, *imported]
    closure: dict[str, str] = {}
    done: set[tuple[str, str]] = set()  # (distribution, extra) whose requirements were added
    todo = [(canonicalize_name(n), "") for n in wanted]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in done or name == canonicalize_name(project["name"]):
            continue
        done.add((name, extra))
        if name not in pins:
            raise ValueError(f"kit: {name} is needed by the notebooks but not pinned in "
                             "requirements.txt")  # fmt: skip
        closure[name] = pins[name]
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": extra}):
                dependency = canonicalize_name(requirement.name)
                todo += [(dependency, e) for e in ("", *sorted(requirement.extras))]
    lines = [f"{closure[n]}" for n in sorted(closure)]
    header = (
        "# What the course's notebooks need, pinned (generated by `make kit` from the\n"
        "# course's requirements.txt). Install with: pip install -r requirements.txt wheels/*.whl\n"
    )
    return header + "\n".join(lines) + "\n"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if match := re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)$", line):
            pins[canonicalize_name(match[1])] = line
    return pins
