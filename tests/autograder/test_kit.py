"""The student kit (``make kit``): installed into a fresh virtual environment outside the
repository, every homework's released notebook runs there, and nothing secret is in it.

The environment gets the kit's wheel installed for real (``pip install --no-index --no-deps``)
and the third-party packages from the course's own environment: a folder of links to its
installed packages (all but this repository's), put on the new environment's path by a ``.pth``
file, so that the test needs no network and takes seconds. That the kit's pinned
``requirements.txt`` is complete and consistent is checked by pip itself, resolving it offline
against those packages (``pip install --dry-run --no-index``): every pin must already be
satisfied, nothing may be missing. (Installing the pins from PyPI takes minutes; a student does
it once.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import nbformat
import pytest
from gradeclass import REPO

from autograder.notebooks import assignments, read_source, source_path
from autograder.release import leaked_secrets, secret_lines

pytestmark = [pytest.mark.autograder, pytest.mark.slow, pytest.mark.xdist_group("kit")]

NAMES = assignments(REPO / "solutions")

RUN_NOTEBOOK = """
import json, sys
import nbformat
from nbclient import NotebookClient

nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True).execute()
errors = [
    {"cell": c.get("id"), "ename": o.ename, "evalue": o.evalue}
    for c in nb.cells if c.cell_type == "code"
    for o in c.outputs if o.output_type == "error"
]
print(json.dumps(errors))
"""


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kit") / "kit"
    subprocess.run(
        [sys.executable, "-m", "autograder", "kit", "--out", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def venv(kit, tmp_path_factory) -> Path:
    """A fresh environment outside the repository with the kit's wheel installed."""
    root = tmp_path_factory.mktemp("student")
    assert REPO not in root.parents
    env = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    shared = root / "course-packages"
    shared.mkdir()
    own = _own_packages()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not any(entry.name.startswith(p) for p in own) and entry.suffix != ".pth":
            (shared / entry.name).symlink_to(entry)
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "course-packages.pth").write_text(f"{shared}\n")
    (wheel,) = (kit / "wheels").glob("*.whl")
    _pip(python, root, "install", "--no-index", "--no-deps", str(wheel))
    return python


def _own_packages() -> tuple[str, ...]:
    """Names in site-packages that belong to this repository's own distribution."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    name = project["project"]["name"]
    patterns = project["tool"]["setuptools"]["packages"]["find"]["include"]
    return (name, f"__editable__.{name}", f"__editable___{name}", f"_{name}",
            *(p.rstrip("*") for p in patterns))  # fmt: skip


def _pip(python: Path, cwd: Path, *args: str) -> str:
    """This environment's pip run on the student's environment (which has none of its own)."""
    run = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_FIND_LINKS": "", "PIP_CONSTRAINT": ""},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def test_the_kit_holds_what_a_student_needs(kit):
    assert (kit / "README.md").read_text().startswith("# Training Neural Networks: the student kit")
    for name in NAMES:
        released = REPO / "exercises" / name / f"{name}.ipynb"
        assert (kit / "homework" / name / f"{name}.ipynb").read_bytes() == released.read_bytes()
    pages = sorted(p.relative_to(kit) for p in (kit / "book").rglob("*.ipynb"))
    assert Path("book/intro.ipynb") in pages and Path("book/ch08-tricks/summary.ipynb") in pages
    intro = nbformat.read(kit / "book" / "intro.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in intro.cells)  # converted, not executed
    assert kit.with_suffix(".zip").is_file()
    with zipfile.ZipFile(kit.with_suffix(".zip")) as archive:
        zipped = {n.removeprefix("kit/") for n in archive.namelist()}
    assert zipped == {p.relative_to(kit).as_posix() for p in kit.rglob("*") if p.is_file()}


def test_the_wheel_holds_the_packages_pyproject_lists_and_nothing_of_the_instructor(kit):
    (wheel,) = (kit / "wheels").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(archive.read(n) for n in names if n.endswith(".dist-info/METADATA"))
    top = {n.split("/")[0] for n in names if ".dist-info/" not in n}
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    wanted = {p.name for p in REPO.iterdir() if p.is_dir() and any(p.match(x) for x in patterns)}
    assert top == wanted
    assert b"the student kit" in metadata  # the kit's README, not the repository's
    every = [p.relative_to(kit).as_posix() for p in kit.rglob("*")] + names
    for forbidden in ("solutions", "tests", "autograder", "autograder_cases"):
        assert not [n for n in every if forbidden in n.split("/")], forbidden


def test_no_solution_line_or_hidden_test_is_in_the_kit(kit, tmp_path):
    """Every file of the kit, the zip's members and the wheel's too, but the modules of the
    wheel's packages (``minidl``, ``course``), which must be the repository's, byte for byte:
    the framework is the course's public reference (the book explains it, the grader locks it)
    and ``course`` is what the book's pages and the homework's self-checks run, and a few of
    their lines are also lines of some solution (``return x * self._mask``). A line that some
    homework shows its students is no secret either."""
    unpacked = tmp_path / "unpacked"
    (wheel,) = (kit / "wheels").glob("*.whl")
    for archive in (kit.with_suffix(".zip"), wheel):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(unpacked / archive.name)
    releases = {
        a: nbformat.read(REPO / "exercises" / a / f"{a}.ipynb", as_version=4) for a in NAMES
    }
    public = {
        line.strip() for nb in releases.values() for c in nb.cells for line in c.source.splitlines()
    }
    for module in (unpacked / wheel.name).rglob("*.py"):
        relative = module.relative_to(unpacked / wheel.name)
        assert module.read_bytes() == (REPO / relative).read_bytes(), relative
        module.unlink()
    for name in NAMES:
        secrets = secret_lines(read_source(source_path(REPO / "solutions", name)), releases[name])
        secrets -= public
        assert len(secrets) > 10, name
        assert not leaked_secrets(kit, secrets), name
        assert not leaked_secrets(unpacked, secrets), name


def test_the_pinned_requirements_are_complete_and_consistent(kit, venv):
    """pip resolves the kit's requirements and wheel offline, and every one of them, with all
    their dependencies, is already satisfied by the pinned versions: nothing to install."""
    report = venv.parent.parent / "report.json"
    wheels = [str(w) for w in (kit / "wheels").glob("*.whl")]
    _pip(venv, venv.parent.parent, "install", "--dry-run", "--no-index", "--report", str(report),
         "-r", str(kit / "requirements.txt"), *wheels)  # fmt: skip
    assert json.loads(report.read_text())["install"] == []
    listed = _pip(venv, venv.parent.parent, "list", "--format", "json")
    installed = {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(listed)}
    for line in (kit / "requirements.txt").read_text().splitlines():
        if "==" in line:
            name, version = line.split("==")
            assert installed.get(name.lower().replace("_", "-")) == version, line


@pytest.mark.parametrize("module", ["minidl", "course.checks", "course.widgets"])
def test_the_packages_are_imported_from_the_students_environment(venv, tmp_path, module):
    where = subprocess.run(
        [venv, "-c", f"import {module}; print({module}.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(venv.parent.parent), where


@pytest.mark.parametrize("name", NAMES)
def test_every_released_notebook_runs_and_fails_only_where_not_implemented(
    kit, venv, name, tmp_path
):
    """Run as a student would, before writing anything: every error is an answer still
    raising NotImplementedError (the self-checks included), or a name that such an answer cell
    defines once written (a blank ``def`` cell of hw6 raises before it defines the rule)."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    notebook = workdir / f"{name}.ipynb"
    notebook.write_bytes((kit / "homework" / name / f"{name}.ipynb").read_bytes())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [venv, "-c", RUN_NOTEBOOK, str(notebook)],
        cwd=workdir, capture_output=True, text=True, env={**env, "MPLBACKEND": "Agg"},
        timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    errors = json.loads(run.stdout.splitlines()[-1])
    assert any(e["ename"] == "NotImplementedError" for e in errors), "nothing failed"
    # a blank answer still defines its names, so only NotImplementedError may be raised
    assert all(e["ename"] == "NotImplementedError" for e in errors), errors
