"""Hostile and broken submissions, graded in one class together with ordinary ones.

Every attack of autograder/README.md's table is a submission of Homework 1 (mostly the
instructor's solution with one attack in it). For each: the class finishes; the student gets the
grade the attack deserves (its answers, never more) with the reason in the feedback; every other
student's grade is exactly their grade alone; the gradebook keeps every earlier grade; nothing
outside the sandbox is read or written. The limits are small so that the whole file runs in a few
minutes.

The README's table is rendered from this run; to regenerate it after changing an attack:
``AUTOGRADER_WRITE_TABLE=1 .venv/bin/python -m pytest -q
tests/autograder/test_hostile_submissions.py``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import textwrap
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from gradeclass import CASES, REPO, Homework, autograder, expectations, read_grades, write_zip
from test_autograder_class import tampered_notebook

from autograder.notebooks import grade_id
from autograder.splice import parse_cells, solution_source

pytestmark = [pytest.mark.autograder, pytest.mark.slow, pytest.mark.xdist_group("hostile")]

ASSIGNMENT = "hw1-backprop"
HW1 = Homework(ASSIGNMENT)
CELL_TIMEOUT, MEMORY_MB, PROCESSES, OUTPUT_MB = 3, 400, 48, 2
LIMITS = ["--cell-timeout", CELL_TIMEOUT, "--total-timeout", 120, "--memory-mb", MEMORY_MB]
LIMITS += ["--max-processes", PROCESSES, "--output-mb", OUTPUT_MB]
README = REPO / "autograder" / "README.md"
TABLE_START, TABLE_END = "<!-- hostile-table:start -->", "<!-- hostile-table:end -->"

LINEAR_TESTS = set(expectations(CASES / ASSIGNMENT / "uses_reference.cells"))
SIGMOID_TESTS = {"sigmoid_selfcheck", "sigmoid_forward_hidden", "sigmoid_backward_hidden"}
MLP_TESTS = {"mlp_selfcheck", "mlp_gradcheck_hidden"}
SEQUENTIAL_TESTS = {"mlp_selfcheck", "sequential_hidden", "mlp_gradcheck_hidden"}
LOOP_TESTS = {
    "numerical_gradient_selfcheck",
    "numerical_gradient_hidden",
    "numerical_gradient_restores_hidden",
}
ALL_TESTS = set(HW1.points)
SOLUTION = {grade_id(c): solution_source(c) for c in HW1.source.cells if grade_id(c)}


@dataclass
class Attack:
    student: str
    attack: str  # for the table
    content: object  # a notebook, or the file's bytes
    failed: set[str]  # the tests the student must lose
    reason: str  # must appear in the student's feedback page
    status: str = "graded"
    zip_name: str | None = None  # the file's name in the archive, if not <student>.ipynb
    renamed: str = ""  # then the pattern of the safe id the student is graded as


def solution_with(cell: str, code: str, *, before: bool = False) -> nbformat.NotebookNode:
    """The solution, with ``code`` after (or before) the answer in cell ``cell``."""
    parts = [code, SOLUTION[cell]] if before else [SOLUTION[cell], code]
    return HW1.notebook({cell: "\n".join(parts)})


def blank_with(code: str) -> nbformat.NotebookNode:
    """The blank release with ``code`` as the first answer (the others stay blank)."""
    return HW1.notebook({"linear": code + "\nraise NotImplementedError()"}, blank=True)


def linear_if(attack: str) -> nbformat.NotebookNode:
    """The solution, except that Linear is only the right one if ``attack`` succeeds; if the
    sandbox stops it, Linear raises the attack's error (so the feedback shows it)."""
    code = f"""
try:
{textwrap.indent(textwrap.dedent(attack).strip(), "    ")}
    exec({SOLUTION["linear"]!r})
except Exception as _error:
    _reason = f"{{type(_error).__name__}}: {{_error}}"

    class Linear(Layer):
        def __init__(self, *args, **kwargs):
            raise RuntimeError("the attack failed: " + _reason)
"""
    return HW1.notebook({"linear": code})


def image_output(megabytes: int) -> nbformat.NotebookNode:
    nb = HW1.notebook({})
    data = base64.b64encode(os.urandom((megabytes << 20) * 3 // 4)).decode()
    cell = next(c for c in nb.cells if grade_id(c) == "linear")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": data})]
    cell.execution_count = 1
    return nb


def other_assignment() -> nbformat.NotebookNode:
    answer = nbformat.v4.new_code_cell("def rule(x):\n    return x")
    answer.metadata["nbgrader"] = {"grade_id": "hw0_rule", "solution": True, "grade": False}
    return nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# Homework 0"), answer],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )


FORK_BOMB = """
import os, time
_children = 0
while True:
    try:
        _pid = os.fork()
    except OSError:
        break
    if _pid == 0:  # every child holds its place until the kernel is shut down
        try:
            time.sleep(3600)
        finally:
            os._exit(0)
    _children += 1
print(f"started {_children} processes")
"""

PATCH_CHECKS = """
import course.checks
_never = lambda *args, **kwargs: None
course.checks.check_array = course.checks.check_scalar = _never
check_array = check_scalar = _never
"""
PATCH_NUMPY = """
import numpy
numpy.isclose = lambda a, b, **kwargs: numpy.ones(numpy.broadcast(a, b).shape, dtype=bool)
numpy.allclose = lambda *args, **kwargs: True
numpy.testing.assert_allclose = lambda *args, **kwargs: None
"""
PATCH_FRAMEWORK = """
import course.checks
course.checks._difference = lambda *args, **kwargs: None
course.checks.check_message = lambda *args, **kwargs: None
course.checks.CheckFailed = type("CheckFailed", (Exception,), {})
"""
SILENCE_ERRORS = """
get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)
"""
SKIP_REPORTS = """
__autograder_check__ = lambda *args, **kwargs: None
"""
# Forge the reports: send the test's own expected value as the answer wherever the test computed
# it in the sandbox, which it does only for checks of the student's own objects.
ECHO = """
import autograder.kernel.protocol
_report = autograder.kernel.protocol.report_check
def __autograder_check__(site, name, received, *rest):
    return _report(site, name, rest[0] if rest else received, *rest)
"""


NAMES = [
    "infinite_loop",
    "loop_ignoring_interrupts",
    "fork_bomb",
    "memory_bomb",
    "output_bomb",
    "sys_exit",
    "os_exit",
    "kernel_crash",
    "patch_check_helpers",
    "patch_numpy",
    "patch_framework",
    "silence_errors",
    "skip_reports",
    "echo_expected",
    "tampered_tests",
    "fake_all_passed",
    "read_hidden_tests",
    "read_tests_folder",
    "read_other_student",
    "write_gradebook",
    "write_feedback",
    "network",
    "invalid_json",
    "empty_file",
    "not_a_notebook",
    "json_not_a_notebook",
    "other_assignment",
    "non_utf8_name",
    "path_traversal",
    "huge_image",
]


def attacks(paths: dict[str, Path], port: int) -> list[Attack]:
    sigmoid_plus, _ = parse_cells((CASES / ASSIGNMENT / "sigmoid_plus.cells").read_text())
    sigmoid_plus_tests = set(expectations(CASES / ASSIGNMENT / "sigmoid_plus.cells"))
    return [
        Attack(
            "infinite_loop",
            "an infinite loop (`numerical_gradient` never returns)",
            HW1.notebook(
                {
                    "numerical_gradient": "def numerical_gradient(f, x, eps=1e-6):\n"
                    "    while True:\n        pass"
                }
            ),
            LOOP_TESTS,
            f"the cell ran longer than {CELL_TIMEOUT} s and was stopped",
        ),
        Attack(
            "loop_ignoring_interrupts",
            "an infinite loop that ignores the interrupt (SIGINT)",
            solution_with(
                "sequential",
                "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n"
                "    pass",
            ),
            SEQUENTIAL_TESTS,
            "ignored the interrupt; the notebook was stopped",
            status="timeout",
        ),
        Attack(
            "fork_bomb",
            "a fork bomb",
            solution_with("sequential", FORK_BOMB),
            set(),
            f"more than {PROCESSES} processes and threads at once",
        ),
        Attack(
            "memory_bomb",
            "a memory bomb",
            # one allocation past the limit: it gets there within a fraction of a second of CPU
            solution_with("sequential", "_hog = np.ones(10**9)"),
            SEQUENTIAL_TESTS,
            f"used more than {MEMORY_MB} MB of memory",
            status="out of memory",
        ),
        Attack(
            "output_bomb",
            "gigabytes of printed output",
            solution_with("sequential", "while True:\n    print('x' * 10**6)"),
            SEQUENTIAL_TESTS,
            f"printed more than {OUTPUT_MB} MB",
            status="too much output",
        ),
        Attack(
            "sys_exit",
            "`sys.exit()` in an answer",
            solution_with("sigmoid", "import sys\nsys.exit(0)", before=True),
            SIGMOID_TESTS | MLP_TESTS,
            "NameError: name 'Sigmoid' is not defined",
        ),
        Attack(
            "os_exit",
            "`os._exit()` in an answer",
            solution_with("sequential", "import os\nos._exit(1)", before=True),
            SEQUENTIAL_TESTS,
            "the kernel died",
            status="kernel died",
        ),
        Attack(
            "kernel_crash",
            "a kernel crash (segmentation fault)",
            solution_with("sequential", "import ctypes\nctypes.string_at(0)", before=True),
            SEQUENTIAL_TESTS,
            "the kernel died",
            status="kernel died",
        ),
        Attack(
            "patch_check_helpers",
            "blank answers; `check_array`/`check_scalar` replaced by no-ops",
            blank_with(PATCH_CHECKS),
            ALL_TESTS,
            "not implemented yet",
        ),
        Attack(
            "patch_numpy",
            "blank answers; `numpy.isclose`/`allclose`/`testing` patched to always agree",
            blank_with(PATCH_NUMPY),
            ALL_TESTS,
            "not implemented yet",
        ),
        Attack(
            "patch_framework",
            "blank answers; `course.checks` internals and `CheckFailed` patched",
            blank_with(PATCH_FRAMEWORK),
            ALL_TESTS,
            "not implemented yet",
        ),
        Attack(
            "silence_errors",
            "blank answers; IPython told to swallow every exception",
            blank_with(SILENCE_ERRORS),
            ALL_TESTS,
            "your code stopped the test's checks from reaching the grader",
        ),
        Attack(
            "skip_reports",
            "the sigmoid mistake; the grader's check reports replaced by a no-op",
            HW1.notebook({**sigmoid_plus, "linear": SKIP_REPORTS + SOLUTION["linear"]}),
            ALL_TESTS,
            "your code stopped the test's checks from reaching the grader",
        ),
        Attack(
            "echo_expected",
            "the sigmoid mistake; the reports forged with the test's own expected values "
            "(**known limit**: works on checks computed from the student's own objects)",
            HW1.notebook({**sigmoid_plus, "linear": ECHO + SOLUTION["linear"]}),
            {"sigmoid_selfcheck", "mlp_selfcheck"},
            "Sigmoid.backward: wrong value",
        ),
        Attack(
            "tampered_tests",
            "test cells edited, deleted, duplicated and moved (and the sigmoid mistake)",
            tampered_notebook(),
            sigmoid_plus_tests,
            "Test cells you edited (the originals were used)",
        ),
        Attack(
            "fake_all_passed",
            'blank answers and a cell that prints "All tests passed! 25/25"',
            HW1.notebook(
                {"linear": "print('All tests passed! Score: 25/25')\nraise NotImplementedError"},
                blank=True,
            ),
            ALL_TESTS,
            "not implemented yet",
        ),
        Attack(
            "read_hidden_tests",
            "reads the solutions (hidden tests) from the repository",
            linear_if(f"open({str(paths['solutions'])!r}).read()"),
            LINEAR_TESTS,
            "the attack failed: FileNotFoundError",
        ),
        Attack(
            "read_tests_folder",
            "reads the repository's `tests/` (the typical mistakes)",
            linear_if(f"open({str(paths['tests'])!r}).read()"),
            LINEAR_TESTS,
            "the attack failed: FileNotFoundError",
        ),
        Attack(
            "read_other_student",
            "reads another student's notebook (the class archive and the course folder)",
            linear_if(
                f"open({str(paths['archive'])!r}, 'rb').read()\n"
                f"open({str(paths['submitted'])!r}).read()"
            ),
            LINEAR_TESTS,
            "the attack failed: FileNotFoundError",
        ),
        Attack(
            "write_gradebook",
            "writes the gradebook",
            linear_if(
                f"import sqlite3\n_db = sqlite3.connect('file:{paths['gradebook']}?mode=rw', "
                "uri=True)\n_db.execute('update grade set manual_score = 100')\n_db.commit()"
            ),
            LINEAR_TESTS,
            "the attack failed: OperationalError: unable to open database file",
        ),
        Attack(
            "write_feedback",
            "writes another student's feedback",
            linear_if(f"open({str(paths['feedback'])!r}, 'w').write('hacked')"),
            LINEAR_TESTS,
            "the attack failed: FileNotFoundError",
        ),
        Attack(
            "network",
            "a network request (to the internet and to a server on the host's loopback)",
            linear_if(
                "import socket, urllib.request\n"
                "try:\n    urllib.request.urlopen('http://example.com', timeout=3)\n"
                "except OSError:\n    pass\n"
                f"socket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(b'hi')"
            ),
            LINEAR_TESTS,
            "the attack failed: ConnectionRefusedError",
        ),
        Attack(
            "invalid_json",
            "invalid JSON",
            b'{"cells": [{"cell_type": "code", "sou',
            ALL_TESTS,
            "not a readable notebook",
            status="unreadable",
        ),
        Attack(
            "empty_file",
            "an empty file",
            b"",
            ALL_TESTS,
            "not a readable notebook",
            status="unreadable",
        ),
        Attack(
            "not_a_notebook",
            "a file that is not a notebook (a PNG image)",
            b"\x89PNG\r\n\x1a\n" + os.urandom(2000),
            ALL_TESTS,
            "not a readable notebook",
            status="unreadable",
        ),
        Attack(
            "json_not_a_notebook",
            "JSON that is not a notebook",
            b'{"hello": "world"}',
            ALL_TESTS,
            "not a readable notebook",
            status="unreadable",
        ),
        Attack(
            "other_assignment",
            "the notebook of another assignment",
            other_assignment(),
            ALL_TESTS,
            "is it the notebook of another assignment?",
        ),
        Attack(
            "non_utf8_name",
            "a non-UTF-8 file name",
            HW1.notebook({}),
            set(),
            "is not a valid student id",
            zip_name="lms-export/caf\udce9.ipynb",
            renamed=r"caf_+-[0-9a-f]{8}",
        ),
        Attack(
            "path_traversal",
            "a path-traversing file name (`../../x.ipynb`)",
            HW1.notebook({}),
            set(),
            "only its name was used",
            zip_name="../../x.ipynb",
            renamed=r"x-[0-9a-f]{8}",
        ),
        Attack(
            "huge_image",
            "a huge embedded image (30 MB)",
            image_output(30),
            set(),
            "",
        ),
    ]


def write_class(archive: Path, entries: list[tuple[str, object]]) -> Path:
    """A zip of (name in the archive, notebook or bytes); a name may hold non-UTF-8 bytes
    (surrogate escapes), written raw as some systems do."""
    raw = {}
    names = {}
    for i, (name, _) in enumerate(entries):
        if any("\udc80" <= ch <= "\udcff" for ch in name):
            placeholder = f"lms-export/raw{i:04d}.ipynb"
            raw[placeholder.encode()] = name.encode("utf-8", "surrogateescape")
            names[i] = placeholder
    notebooks = {}
    for i, (name, content) in enumerate(entries):
        notebooks[names.get(i, name)] = content
    with zipfile.ZipFile(archive, "w") as zf:
        for name, nb in notebooks.items():
            zf.writestr(name, nb if isinstance(nb, bytes) else nbformat.writes(nb).encode())
    data = archive.read_bytes()
    for placeholder, name in raw.items():
        assert len(placeholder) >= len(name)
        # same length: pad the raw name's stem (the zip headers store the name's length)
        padded = name[: -len(b".ipynb")] + b"_" * (len(placeholder) - len(name)) + b".ipynb"
        data = data.replace(placeholder, padded)
    archive.write_bytes(data)
    return archive


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return grade_hostile_class(tmp_path_factory.mktemp("hostile"), autograder)


def grade_hostile_class(folder: Path, run_autograder) -> dict:
    """Grade the ordinary students alone, then the hostile class with them again, in ``folder``
    with ``run_autograder(*args)`` (``python -m autograder ARGS``); what the tests check."""
    alone_class = {"solution": HW1.notebook({}), "sigmoid_plus": _case("sigmoid_plus")}
    out = folder / "out"
    alone = run_autograder(
        "grade", ASSIGNMENT, write_zip(folder / "alone.zip", alone_class), "--out", out, *LIMITS
    )
    grades_alone = read_grades(out)
    pages_alone = {s: (out / "feedback" / f"{s}.html").read_text() for s in alone_class}

    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        listener.settimeout(300)
        try:
            while True:
                connection, _ = listener.accept()
                received.append(connection.recv(100) or b"(connected)")
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    paths = {
        "solutions": REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.md",
        "tests": Path(__file__),
        "archive": folder / "hostile.zip",
        "submitted": out
        / "course"
        / "submitted"
        / "again_solution"
        / ASSIGNMENT
        / f"{ASSIGNMENT}.ipynb",
        "gradebook": out / "course" / "gradebook.db",
        "feedback": out / "feedback" / "solution.html",
    }
    class_attacks = attacks(paths, listener.getsockname()[1])
    entries = [("lms-export/again_solution.ipynb", alone_class["solution"])]
    entries += [("lms-export/again_sigmoid_plus.ipynb", alone_class["sigmoid_plus"])]
    entries += [(a.zip_name or f"lms-export/{a.student}.ipynb", a.content) for a in class_attacks]
    archive = write_class(paths["archive"], entries)
    run = run_autograder("grade", ASSIGNMENT, archive, "--out", out, *LIMITS)
    listener.close()
    return {
        "out": out,
        "alone": alone,
        "run": run,
        "grades_alone": grades_alone,
        "pages_alone": pages_alone,
        "grades": read_grades(out),
        "attacks": class_attacks,
        "received": received,
        "folder": folder,
    }


def _case(name: str) -> nbformat.NotebookNode:
    replacements, blank = parse_cells((CASES / ASSIGNMENT / f"{name}.cells").read_text())
    return HW1.notebook(replacements, blank=blank)


def student_of(attack: Attack, grades: dict[str, dict[str, str]]) -> str:
    if not attack.renamed:
        return attack.student
    found = [s for s in grades if re.fullmatch(attack.renamed, s)]
    assert len(found) == 1, (attack.renamed, sorted(grades))
    return found[0]


def feedback_text(out: Path, student: str) -> str:
    import html

    return html.unescape((out / "feedback" / f"{student}.html").read_text())


def test_the_class_finishes_and_every_submission_is_graded(graded):
    grades = graded["grades"]
    for attack in graded["attacks"]:
        assert student_of(attack, grades) in grades, attack.student
    assert "again_solution" in grades and "again_sigmoid_plus" in grades


@pytest.mark.parametrize("name", NAMES)
def test_each_attack_gets_the_grade_it_deserves_with_its_reason(graded, name):
    assert [a.student for a in graded["attacks"]] == NAMES
    attack = graded["attacks"][NAMES.index(name)]
    student = student_of(attack, graded["grades"])
    row = graded["grades"][student]
    assert HW1.failed_tests(row) == attack.failed, attack.student
    assert float(row["score"]) == HW1.max_score - sum(HW1.points[t] for t in attack.failed)
    assert row["status"] == attack.status, attack.student
    assert attack.reason in feedback_text(graded["out"], student), attack.student


def test_every_other_student_gets_exactly_their_grade_alone(graded):
    grades, alone = graded["grades"], graded["grades_alone"]
    for student in ("solution", "sigmoid_plus"):
        again = dict(grades[f"again_{student}"], student=student)
        assert again == alone[student]
        page = (graded["out"] / "feedback" / f"again_{student}.html").read_text()
        assert page.replace(f"again_{student}", student) == graded["pages_alone"][student]


def test_the_gradebook_loses_nothing_and_no_attack_wrote_outside_its_sandbox(graded):
    grades, out = graded["grades"], graded["out"]
    assert {s: grades[s] for s in graded["grades_alone"]} == graded["grades_alone"]
    assert (out / "feedback" / "solution.html").read_text() == graded["pages_alone"]["solution"]
    assert graded["received"] == []  # the server on the host's loopback heard nothing
    assert not (graded["folder"].parent.parent / "x.ipynb").exists()
    expected = set(graded["grades_alone"]) | {"again_solution", "again_sigmoid_plus"}
    expected |= {student_of(a, grades) for a in graded["attacks"]}
    assert set(grades) == expected


def test_bombs_are_stopped_fast_and_big_files_stay_out_of_the_results(graded):
    out = graded["out"]
    for student in ("output_bomb", "memory_bomb", "fork_bomb"):
        result = json.loads(
            (out / "course" / "autograded" / student / ASSIGNMENT / "result.json").read_text()
        )
        assert result["execution_seconds"] < 60, student
    graded_nb = out / "course" / "autograded" / "output_bomb" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert graded_nb.stat().st_size < 2 * (OUTPUT_MB << 20)
    huge = out / "course" / "autograded" / "huge_image" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert huge.stat().st_size < 1 << 20


def render_table(graded) -> str:
    lines = ["| attack | grade | status | reason in the feedback |", "|---|---|---|---|"]
    for attack in graded["attacks"]:
        row = graded["grades"][student_of(attack, graded["grades"])]
        reason = attack.reason.replace("|", "\\|") or "(graded as its answers)"
        lines.append(
            f"| {attack.attack} | {row['score']}/{row['max_score']} | {row['status']} | {reason} |"
        )
    return "\n".join(lines)


def test_readme_table_is_this_run(graded):
    table = render_table(graded)
    text = README.read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    if os.environ.get("AUTOGRADER_WRITE_TABLE"):
        README.write_text(text[:start] + "\n" + table + "\n" + text[end:])
    assert text[start:end].strip() == table, (
        "autograder/README.md's table of attacks is out of date: run "
        "AUTOGRADER_WRITE_TABLE=1 .venv/bin/python -m pytest -q "
        "tests/autograder/test_hostile_submissions.py"
    )


def test_the_run_record_names_the_strongest_tier_this_machine_offers(graded):
    from autograder import sandbox

    tier = sandbox.choose("auto").name
    assert json.loads((graded["out"] / "run.json").read_text())["sandbox"] == tier
    assert f"sandbox: {tier}" in graded["run"].stdout


def test_the_grader_refuses_to_run_unsandboxed_without_the_flag(tmp_path, monkeypatch):
    from autograder import __main__ as cli
    from autograder import sandbox

    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "`bwrap` is not installed (test)")
    for tier in (sandbox.Cgroup2, sandbox.Cgroup1, sandbox.Rlimit):
        monkeypatch.setattr(tier, "problem", classmethod(lambda cls: sandbox.bwrap_problem()))
    monkeypatch.setattr(sandbox, "choose", sandbox.choose.__wrapped__)
    archive = write_zip(tmp_path / "c.zip", {"s": b"{}"})
    assert cli.main(["grade", ASSIGNMENT, str(archive), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
    shutil.rmtree(tmp_path, ignore_errors=True)
