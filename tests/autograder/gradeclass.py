"""Grade a class of one homework through the command line: the helpers every homework's tests share.

A homework's typical mistakes live in
``tests/autograder/autograder_cases/<assignment>/*.cells`` (see :mod:`autograder.splice`);
each file names the tests it must fail, and the hint each failure's message must contain,
in lines ``# expect: <grade_id>[ = <hint>]``.
"""

from __future__ import annotations

import ast
import csv
import html
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat

from autograder.notebooks import grade_id, is_answer, is_test, read_source, source_path
from autograder.splice import parse_cells, submission

REPO = Path(__file__).resolve().parents[2]
CASES = Path(__file__).with_name("autograder_cases")
EXPECT = re.compile(r"^# expect: (\S+)(?: = (.+))?$", re.MULTILINE)
ANY = "self, *args, **kwargs"  # the signature of an arbitrary answer's methods


class Homework:
    """An assignment's instructor source, its release, its test points and its mistake cases."""

    def __init__(self, assignment: str):
        self.name = assignment
        self.source = read_source(source_path(REPO / "solutions", assignment))
        self.release = nbformat.read(
            REPO / "exercises" / assignment / f"{assignment}.ipynb", as_version=4
        )
        self.points = {
            grade_id(c): c.metadata.nbgrader["points"] for c in self.release.cells if is_test(c)
        }
        self.max_score = sum(self.points.values())
        self.cases = sorted((CASES / assignment).glob("*.cells"))

    def notebook(self, replacements: dict[str, str], *, blank: bool = False):
        return submission(self.release, self.source, replacements, blank=blank)

    def arbitrary(self) -> nbformat.NotebookNode:
        """The submission that answers with arbitrary objects: every function and method the
        solution's answer cells define returns ``object()`` and touches nothing. It must earn no
        more than the blank: a point for a side condition (an input left unchanged, purity) is
        only earned together with the right result."""
        return self.notebook(
            {grade_id(c): arbitrary_answer(c.source) for c in self.source.cells if is_answer(c)}
        )

    def case_notebooks(self) -> dict[str, nbformat.NotebookNode]:
        """The solution, the blank release, the arbitrary answers and one submission per
        typical mistake."""
        notebooks = {
            "solution": self.notebook({}),
            "blank": self.release,
            "arbitrary": self.arbitrary(),
        }
        for case in self.cases:
            replacements, blank = parse_cells(case.read_text())
            notebooks[case.stem] = self.notebook(replacements, blank=blank)
        return notebooks

    def solved_output(self, workdir: Path) -> str:
        """The printed text of the solved notebook, demo cells included, run like a student's
        kernel would run it (sandboxed); fails on a cell error."""
        from autograder.runner import Limits, execute_notebook, start_kernel

        nb = self.notebook({})
        assert any("demo" in c.metadata.get("tags", []) for c in nb.cells), "no demo cell"
        limits = Limits(cell_timeout=120, total_timeout=300)
        execution = execute_notebook(nb, start_kernel(workdir, "", limits), limits)
        assert execution.status == "ok", execution.status
        outputs = [o for c in execution.notebook.cells if c.cell_type == "code" for o in c.outputs]
        assert [o for o in outputs if o.output_type == "error"] == []
        return "".join(o.get("text", "") for o in outputs)

    def failed_tests(self, row: dict[str, str]) -> set[str]:
        return {name for name, points in self.points.items() if float(row[name]) < points}


def arbitrary_answer(solution: str) -> str:
    """An answer cell defining the solution's top-level functions and classes, each function and
    method returning ``object()`` (a class's ``__init__`` accepts anything and does nothing)."""
    lines = []
    for node in ast.parse(solution).body:
        if isinstance(node, ast.FunctionDef):
            lines += [f"def {node.name}(*args, **kwargs):", "    return object()"]
        elif isinstance(node, ast.ClassDef):
            lines += [f"class {node.name}:", f"    def __init__({ANY}):", "        pass"]
            for method in node.body:
                if isinstance(method, ast.FunctionDef) and method.name != "__init__":
                    lines += [f"    def {method.name}({ANY}):", "        return object()"]
    return "\n".join(lines)


def expectations(path: Path) -> dict[str, str]:
    """The tests a case must fail, each with the hint its message must contain ("" if none)."""
    return {name: hint or "" for name, hint in EXPECT.findall(path.read_text())}


def autograder(*args: str | Path, user: str | None = None) -> subprocess.CompletedProcess:
    """``python -m autograder ARGS`` from the repository root (as ``user``, if given: the
    tests run as root, an instructor often does not), which must succeed."""
    as_user = ["runuser", "-u", user, "--"] if user else []
    run = subprocess.run(
        [*as_user, sys.executable, "-m", "autograder", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def write_zip(archive: Path, notebooks: dict[str, nbformat.NotebookNode | bytes]) -> Path:
    """A learning-management system's export: ``lms-export/<student>.ipynb`` in a .zip."""
    with zipfile.ZipFile(archive, "w") as zf:
        for student, nb in notebooks.items():
            content = nb if isinstance(nb, bytes) else nbformat.writes(nb).encode()
            zf.writestr(f"lms-export/{student}.ipynb", content)
    return archive


def read_grades(out: Path) -> dict[str, dict[str, str]]:
    with (out / "grades.csv").open() as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def feedback_messages(out: Path, student: str, points: dict[str, float]) -> dict[str, str]:
    """grade_id -> message of every failed test in the student's feedback page."""
    page = (out / "feedback" / f"{student}.html").read_text()
    rows = re.findall(
        r"<tr><td>(.*?)</td><td class='points'>.*?</td><td class='(passed|failed)'>.*?"
        r"<td class='message'>(.*?)</td></tr>",
        page,
        re.DOTALL,
    )
    assert len(rows) == len(points)
    return {
        name: html.unescape(message)
        for name, (_, result, message) in zip(points, rows, strict=True)
        if result == "failed"
    }
