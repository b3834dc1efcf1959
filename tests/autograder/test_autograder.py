"""The homework pipeline's parts: checks (course.checks) and the reference lock
(autograder.kernel.lock), the release, restoring tampered submissions, and reading a class's
submissions."""

from __future__ import annotations

import ast
import copy
import os
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
from gradeclass import Homework

from autograder.notebooks import (
    assignments,
    grade_id,
    is_answer,
    is_test,
    read_source,
    source_path,
)
from autograder.release import leaked_secrets, release, secret_lines
from autograder.restore import restore
from autograder.splice import solution_source, submission
from autograder.submissions import collect
from course.checks import CheckFailed, check_array, check_scalar

pytestmark = pytest.mark.autograder

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENT = "hw1-backprop"
SOURCE = read_source(source_path(REPO / "solutions", ASSIGNMENT))
RELEASE = nbformat.read(REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


# --- checks -----------------------------------------------------------------------------------


def test_check_array_names_first_wrong_entry_expected_and_received():
    with pytest.raises(CheckFailed) as failure:
        check_array("grad", np.array([[1.0, 2.0], [3.0, 5.0]]), [[1.0, 2.0], [3.0, 4.0]])
    assert str(failure.value) == (
        "grad: wrong value at index (1, 1): expected 4, got 5 (1 of 4 entries differ)."
    )


def test_an_exact_check_prints_every_digit_of_a_rounding_error():
    x = np.array([0.21673547751431738, 0.5])
    restored = x.copy()
    restored[0] += 1e-4  # put back by arithmetic: off in the last bit
    restored[0] -= 2e-4
    restored[0] += 1e-4
    check_array("x", x.copy(), x, rtol=0, atol=0)
    with pytest.raises(CheckFailed) as failure:
        check_array("x", restored, x, rtol=0, atol=0)
    assert str(failure.value) == (
        "x: wrong value at index (0,): expected 0.21673547751431738, got 0.21673547751431735, "
        "which differs by -2.8e-17 (1 of 2 entries differ)."
    )


def test_check_array_reports_shape_and_none():
    with pytest.raises(CheckFailed, match=r"expected shape \(2, 3\), got shape \(3, 2\)"):
        check_array("W.grad", np.zeros((3, 2)), np.zeros((2, 3)))
    with pytest.raises(CheckFailed, match=r"expected an array of shape \(2,\), got None"):
        check_array("b.grad", None, np.zeros(2))


def test_check_array_names_the_matching_mistake_only():
    expected, transposed = np.arange(4.0).reshape(2, 2), np.arange(4.0).reshape(2, 2).T
    mistakes = {"halved": expected / 2, "transposed": transposed}
    with pytest.raises(CheckFailed, match=r"Hint: transposed$"):
        check_array("x", transposed, expected, mistakes=mistakes)
    with pytest.raises(CheckFailed) as failure:
        check_array("x", expected + 1, expected, mistakes=mistakes)
    assert "Hint" not in str(failure.value)
    check_array("x", expected * (1 + 1e-9), expected, mistakes=mistakes)


def test_check_array_matches_a_nan_mistake():
    with pytest.raises(CheckFailed, match=r"got nan.*Hint: overflow"):
        check_array("p", [np.nan, 1.0], [0.5, 0.5], mistakes={"overflow": [np.nan, 1.0]})


def test_check_scalar_refuses_arrays():
    with pytest.raises(CheckFailed, match="expected a single number, got a ndarray of shape"):
        check_scalar("loss", np.ones(3), 1.0)
    check_scalar("loss", np.float64(2.0), 2.0)


def test_block_references_locks_names_aliases_modules_and_reloads():
    """In a child process: the lock lasts for the rest of the process."""
    code = """
import importlib, numpy as np, minidl, minidl.layers, minidl.losses
from autograder.kernel import lock
from minidl.layers import Layer
lock.block_references(["minidl.layers.Linear", "minidl.layers.sigmoid", "minidl.autodiff",
                          "torch"])
attempts = {
    "class": lambda: minidl.layers.Linear(2, 3, rng=np.random.default_rng(0)),
    "alias": lambda: minidl.losses.sigmoid(np.zeros(1)),
    "module": lambda: minidl.autodiff.Tensor,
    "reload": lambda: importlib.reload(minidl.layers),
    "import": lambda: importlib.import_module("torch"),
}
for name, attempt in attempts.items():
    try:
        attempt()
    except Exception as error:
        assert "not available while grading" in str(error), (name, error)
    else:
        raise SystemExit(f"{name} was not blocked")
assert lock.active() and Layer is minidl.layers.Layer
assert minidl.layers.Tanh()(np.zeros(1)).shape == (1,)  # the rest of minidl still works
print("locked")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "locked"


# --- release ------------------------------------------------------------------------------------


def _comparable(nb):
    return [(c.get("id"), c.cell_type, c.source, dict(c.metadata)) for c in nb.cells], dict(
        nb.metadata
    )


ASSIGNMENTS = assignments(REPO / "solutions")


def released(assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(REPO / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)


def instructor_source(assignment: str) -> nbformat.NotebookNode:
    return read_source(source_path(REPO / "solutions", assignment))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_are_the_release_of_the_solutions(tmp_path, assignment):
    """exercises/ is what `python -m autograder release` makes now: rerun it when this fails."""
    (fresh,) = release([assignment], solutions=REPO / "solutions", exercises=tmp_path)
    assert _comparable(nbformat.read(fresh, as_version=4)) == _comparable(released(assignment)), (
        f"exercises/{assignment} is out of date: run `make release`"
    )


def test_secret_lines_are_found():
    secrets = secret_lines(SOURCE, RELEASE)
    assert "self.W.grad = grad_y.T @ self._x" in secrets
    assert "return grad" not in secrets  # too short to be told apart from ordinary code
    assert "return x @ self.W.value.T + self.b.value" in secrets
    assert any("you forgot the bias gradient" in line for line in secrets)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_solution_or_hidden_test_leaks_into_the_exercises(assignment):
    """An assignment's release holds none of its solutions and hidden tests (the built book is
    checked by tests/browser, which builds it)."""
    secrets = secret_lines(instructor_source(assignment), released(assignment))
    assert not leaked_secrets(REPO / "exercises" / assignment, secrets)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_holds_blanks_and_visible_tests_only(assignment):
    release_nb, source_nb = released(assignment), instructor_source(assignment)
    answers = [c for c in release_nb.cells if is_answer(c)]
    assert answers and all("raise NotImplementedError()" in c.source for c in answers)
    for cell in answers:  # a blank still defines its functions: a self-check says "not
        # implemented yet", never a NameError because the cell raised before its `def`
        top_level = ast.parse(cell.source).body
        assert not any(isinstance(node, ast.Raise) for node in top_level), grade_id(cell)
    hidden = {grade_id(c) for c in source_nb.cells if "### BEGIN HIDDEN TESTS" in c.source}
    assert hidden, f"{assignment} has no hidden test"
    tests = {grade_id(c): c for c in release_nb.cells if is_test(c)}
    assert hidden <= set(tests) and not any("HIDDEN TESTS" in tests[t].source for t in hidden)
    assert sum(c.metadata.nbgrader["points"] for c in tests.values()) > 0


HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.DOTALL)


def _global_names(node: ast.AST) -> set[str]:
    """The names a block binds in its module's namespace (not inside functions or classes)."""
    names = set()
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.ClassDef):
            names.add(child.name)
        elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
            names.add(child.id)
        elif not isinstance(
            child, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
        ):
            names |= _global_names(child)
    return names


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_hidden_tests_only_bind_names_no_student_would_use(assignment):
    """The hidden tests run in the student's namespace: a global they bind must not overwrite a
    helper the student defined (a `_weights` helper once lost 6 points). They bind `_t_*` only
    (and may import library names)."""
    bound = set()
    for cell in instructor_source(assignment).cells:
        for block in HIDDEN.findall(cell.source):
            bound |= _global_names(ast.parse(textwrap.dedent(block)))
    assert bound, "found no hidden tests"
    assert {name for name in bound if not name.startswith("_t_")} <= {"_"}


def test_homework_1_has_five_answers_worth_25_points():
    assert len([c for c in RELEASE.cells if is_answer(c)]) == 5
    assert sum(c.metadata.nbgrader["points"] for c in RELEASE.cells if is_test(c)) == 25


# --- restoring a submission ---------------------------------------------------------------------


def _solution():
    return submission(RELEASE, SOURCE, {})


def _ids(cells):
    return [c.get("id") for c in cells]


def test_restore_of_a_clean_submission_is_the_source_without_demo_cells():
    restored = restore(SOURCE, RELEASE, _solution())
    expected = [c for c in SOURCE.cells if "demo" not in c.metadata.get("tags", [])]
    assert _ids(restored.notebook.cells) == _ids(expected)
    for got, want in zip(restored.notebook.cells, expected, strict=True):
        assert got.source == (solution_source(want) if is_answer(want) else want.source)
    assert restored.notes == []


def test_restore_undoes_edited_deleted_duplicated_and_moved_test_cells():
    nb = _solution()
    cells = {grade_id(c): c for c in nb.cells if grade_id(c)}
    cells["sigmoid_selfcheck"].source = "pass"
    nb.cells.remove(cells["linear_forward_hidden"])
    nb.cells.append(copy.deepcopy(cells["softmax_selfcheck"]))
    nb.cells.remove(cells["mlp_selfcheck"])
    nb.cells.insert(0, cells["mlp_selfcheck"])
    restored = restore(SOURCE, RELEASE, nb)
    clean = restore(SOURCE, RELEASE, _solution())
    assert [c.source for c in restored.notebook.cells] == [c.source for c in clean.notebook.cells]
    notes = " ".join(restored.notes)
    for word in ["edited", "sigmoid_selfcheck", "missing", "linear_forward_hidden", "Duplicated"]:
        assert word in notes
    assert "moved" in notes


def test_restore_keeps_added_cells_before_the_next_answer_and_all_answer_copies():
    nb = _solution()
    index = next(i for i, c in enumerate(nb.cells) if grade_id(c) == "sigmoid")
    helper = nbformat.v4.new_code_cell("def helper():\n    return 1")
    nb.cells.insert(index - 1, helper)
    again = copy.deepcopy(nb.cells[index + 1])
    again.source = "# second try\n" + again.source
    nb.cells.insert(index + 2, again)
    restored = restore(SOURCE, RELEASE, nb).notebook
    sources = [c.source for c in restored.cells]
    first = next(i for i, c in enumerate(restored.cells) if grade_id(c) == "sigmoid")
    assert sources[first - 1] == helper.source
    assert sources[first + 1].startswith("# second try")
    assert grade_id(restored.cells[first + 1]) is None  # graded once, run as "Run All" would


def test_restore_turns_a_missing_answer_into_the_blank():
    nb = _solution()
    nb.cells = [c for c in nb.cells if grade_id(c) != "linear"]
    restored = restore(SOURCE, RELEASE, nb)
    linear = next(c for c in restored.notebook.cells if grade_id(c) == "linear")
    assert "raise NotImplementedError()" in linear.source
    assert any("'linear' was missing" in note for note in restored.notes)


# --- reading submissions ------------------------------------------------------------------------


def test_collect_reads_a_folder_a_zip_and_nbgrader_tree(tmp_path):
    folder = tmp_path / "lms"
    folder.mkdir()
    for student in ["s2", "s1"]:
        (folder / f"{student}.ipynb").write_bytes(student.encode())
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("export/s1.ipynb", b"s1")
        zf.writestr("__MACOSX/export/._s1.ipynb", b"junk")
        zf.writestr("export/readme.txt", b"")
    tree = tmp_path / "submitted"
    (tree / "s3" / ASSIGNMENT).mkdir(parents=True)
    (tree / "s3" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_bytes(b"s3")
    assert [(s.student, s.content) for s in collect(folder, ASSIGNMENT)] == [
        ("s1", b"s1"),
        ("s2", b"s2"),
    ]
    assert [(s.student, s.content) for s in collect(archive, ASSIGNMENT)] == [("s1", b"s1")]
    assert [(s.student, s.content) for s in collect(tree, ASSIGNMENT)] == [("s3", b"s3")]


def test_collect_refuses_an_empty_folder_and_renames_bad_ids(tmp_path):
    with pytest.raises(ValueError, match=r"no notebooks in .*<student-id>\.ipynb"):
        collect(tmp_path, ASSIGNMENT)
    (tmp_path / "bad id.ipynb").write_bytes(b"x")
    (tmp_path / "good.ipynb").write_bytes(b"y")
    bad, good = collect(tmp_path, ASSIGNMENT)
    assert re.fullmatch(r"bad_id-[0-9a-f]{8}", bad.student) and bad.content == b"x"
    assert "not a valid student id" in bad.notes[0]
    assert (good.student, good.notes) == ("good", ())


def test_collect_never_follows_paths_out_of_an_archive_and_renames_duplicates(tmp_path):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("export/x.ipynb", b"inside")
        zf.writestr("../../x.ipynb", b"outside")
        zf.writestr("other/x.ipynb", b"again")
    found = {s.student: s for s in collect(archive, ASSIGNMENT)}
    assert found["x"].content == b"inside"
    renamed = {s.content: s for s in found.values() if s.student != "x"}
    assert set(renamed) == {b"outside", b"again"}
    assert "only its name was used" in renamed[b"outside"].notes[0]


# --- the student's notebook -------------------------------------------------------------------


@pytest.mark.slow
def test_solution_notebook_runs_end_to_end_and_trains_like_the_reference(tmp_path):
    """What a student sees after solving everything: every cell runs, and their backprop trains
    the digits MLP exactly as minidl's reference does (the demo cell is not graded)."""
    text = Homework(ASSIGNMENT).solved_output(tmp_path)
    gap = float(re.search(r"difference between the two loss curves: (\S+)", text).group(1))
    assert gap < 1e-10
    assert "MLP backprop: correct on the example" in text


# --- checks judged by the grader (check_rewriting, check_server) ------------------------------


def _source_with(answer: str, *tests: str) -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_code_cell("import numpy as np\nfrom course.checks import check_array")]
    cells[0]["id"] = "setup"
    cell = nbformat.v4.new_code_cell(answer)
    cell.metadata["nbgrader"] = {"grade_id": "f", "solution": True, "grade": False}
    cell["id"] = "f"
    cells.append(cell)
    for i, test in enumerate(tests):
        cell = nbformat.v4.new_code_cell(test)
        cell.metadata["nbgrader"] = {"grade_id": f"t{i}", "grade": True, "points": 1}
        cell["id"] = f"t{i}"
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells)


def test_plan_keeps_expected_values_out_of_the_sandbox_unless_they_are_the_students():
    from autograder.check_rewriting import plan

    source = _source_with(
        "def f(x):\n    return 2 * x",
        "_x = np.arange(3.0)\ncheck_array('copy', f(_x.copy()), 2 * _x)",
        "_x = np.arange(3.0)\ncheck_array('handed', f(_x), 2 * _x)",
        "_x = np.arange(3.0)\n_y = f(_x.copy())\ncheck_array('own', _y, f(_x.copy()))",
        "_x = np.arange(3.0)\nfor _k in range(2):\n"
        "    check_array('loop', f(_x.copy()) + _k, 2 * _x + _k)",
    )
    result = plan(source)
    assert {s.id: s.from_reference for s in result.sites.values()} == {
        "t0#0": True,
        "t1#0": False,
        "t2#0": False,
        "t3#0": True,
    }
    assert "2 * _x" not in result.sandbox["t0"] and "__autograder_check__" in result.sandbox["t0"]
    assert "2 * _x" in result.sandbox["t1"]  # computed in the sandbox: the student's object
    assert "__autograder_record__('t0#0', 'check_array', 'copy'" in result.reference["t0"]


def test_check_server_judges_reports_in_order_and_a_skipped_check_fails(tmp_path):
    import socket as sockets

    from autograder.check_rewriting import plan
    from autograder.check_server import CheckServer, Reference, verdict
    from autograder.kernel.protocol import SOCKET_ENV, report_check

    source = _source_with(
        "def f(x):\n    return 2 * x",
        "_x = np.arange(3.0)\ncheck_array('f(x)', f(_x.copy()), 2 * _x, mistakes={'halved': _x})",
    )
    references = {
        "t0": [
            Reference(
                "t0#0",
                "check_array",
                "f(x)",
                1e-6,
                1e-8,
                np.arange(3.0) * 2,
                {"halved": np.arange(3.0)},
            )
        ]
    }
    path = tmp_path / "c.sock"
    server = CheckServer(str(path), plan(source), references)
    old = os.environ.get(SOCKET_ENV)
    os.environ[SOCKET_ENV] = str(path)
    try:
        server.begin_cell("t0")
        with pytest.raises(CheckFailed, match=r"expected 2, got 1 .*Hint: halved"):
            report_check("t0#0", "f(x)", np.arange(3.0))
        assert verdict("t0", server.cells, references, errored=True) == (
            False,
            server.cells["t0"].failure,
        )
        server.cells.clear()
        server.begin_cell("t0")
        report_check("t0#0", "f(x)", [0.0, 2.0, 4.0])
        assert verdict("t0", server.cells, references, errored=False) == (True, None)
        server.cells.clear()
        server.begin_cell("t0")  # the check never reported: not confirmed
        passed, reason = verdict("t0", server.cells, references, errored=False)
        assert not passed and "confirmed 0 of the test's 1 checks" in reason
        with sockets.socket(sockets.AF_UNIX) as rogue:  # garbage fails the cell, nothing more
            rogue.connect(str(path))
            rogue.sendall(b"AGC1" + b"\xff" * 12)
            rogue.shutdown(sockets.SHUT_WR)
            assert b"could not read" in rogue.recv(1000)
    finally:
        server.close()
        if old is None:
            os.environ.pop(SOCKET_ENV, None)
        else:
            os.environ[SOCKET_ENV] = old
