"""Checks judged by the grader, not by the student's process.

A test cell fails by raising; in any nbgrader course the checks therefore run in the student's
kernel, where the student's code can redefine ``check_array``, patch NumPy or silence the error.
Here every call ``check_array(name, received, expected, ...)`` / ``check_scalar(...)`` in the
instructor's cells is rewritten before the notebook runs:

- In the **reference run** (the instructor's solution, once per class) it becomes
  ``record_check(site, kind, ...)``: the expected value, the mistakes' values and the tolerances
  are published to the grader (:func:`reference_records`), then checked as usual.
- In the **student's sandbox** it becomes ``report_check(site, name, received)``: the received
  value is serialized to the grader's :class:`CheckServer`, which compares it, in the grader's own
  process, with the reference run's expected value, and answers with the message that
  ``check_array`` would have raised (the student's cell raises it). The expected value and how it
  is computed never enter the sandbox.

That holds where the expected value follows from the test's inputs alone. Where it is computed
from the student's own objects (a gradient check of the student's network against differences
of the student's loss), the reference run's value would be another number; there the sandbox sends
``received``, ``expected`` and the mistakes as the test computed them
(``report_check(site, name, received, expected, mistakes)``) and the grader still compares them
itself. Which case a check is decided from the source by a taint analysis (:func:`plan`): a value
is the student's if it is computed from a name an answer cell defines, or from an object handed
to the student's code (which may have changed it).

A test passes only if the sandbox ran it without an error **and** reported exactly the checks the
reference run made, each confirmed by the grader (:func:`verdict`): a test whose checks were
skipped, silenced or answered with forged values fails.
"""

from __future__ import annotations

import ast
import base64
import builtins
import copy
import json
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from IPython.core.inputtransformer2 import TransformerManager
from nbformat import NotebookNode

from autograder.kernel.protocol import REFERENCE_MIME, decode_values, read_report
from autograder.notebooks import is_answer, is_demo
from course.checks import Described, check_message

CHECKS = {"check_array", "check_scalar"}
REPORT = "__autograder_check__"
RECORD = "__autograder_record__"
SETUP_SANDBOX = f"from autograder.kernel.protocol import report_check as {REPORT}\n"
SETUP_REFERENCE = f"from autograder.kernel.protocol import record_check as {RECORD}\n"


@dataclass(frozen=True)
class Site:
    """One call of a check in the instructor's cells."""

    id: str
    kind: str  # "check_array" or "check_scalar"
    from_reference: bool  # the expected value comes from the reference run


@dataclass
class Plan:
    """The rewritten sources of the instructor's cells (by cell id) and their check sites."""

    sandbox: dict[str, str] = field(default_factory=dict)
    reference: dict[str, str] = field(default_factory=dict)
    sites: dict[str, Site] = field(default_factory=dict)


def plan(source: NotebookNode) -> Plan:
    """Rewrite every instructor cell of ``source`` for the sandbox and for the reference run."""
    result = Plan()
    answers = [c for c in source.cells if c.cell_type == "code" and is_answer(c)]
    student_names = set().union(*(_top_level_names(_parse(c.source)) for c in answers))
    ever: set[str] = set(student_names)
    imported = set(dir(builtins)).union(
        *(_imported_names(_parse(c.source)) for c in source.cells if c.cell_type == "code")
    )
    functions: dict[str, set[str]] = {}  # a test's function -> the globals its body uses
    for _ in range(2):  # the second pass sees names tainted anywhere in the first
        tainted: set[str] = set()
        result = Plan()
        for cell in source.cells:
            if cell.cell_type != "code" or is_demo(cell):
                continue
            tree = _parse(cell.source)
            if is_answer(cell):
                tainted |= _top_level_names(tree)
                continue
            rewriter = _Rewriter(cell["id"], tainted, ever, imported - student_names, functions)
            rewriter.statements(tree.body)
            tainted = rewriter.tainted
            ever |= tainted
            if rewriter.sites:
                result.sandbox[cell["id"]] = ast.unparse(rewriter.transform(tree, sandbox=True))
                result.reference[cell["id"]] = ast.unparse(rewriter.transform(tree, sandbox=False))
                result.sites.update({s.id: s for s in rewriter.sites})
    return result


def apply(nb: NotebookNode, sources: dict[str, str], instructor_ids: set[str]) -> NotebookNode:
    """A copy of ``nb`` whose instructor cells (ids in ``instructor_ids``, never an answer
    cell) have the rewritten sources."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.get("id") in sources and cell.get("id") in instructor_ids and not is_answer(cell):
            cell.source = sources[cell["id"]]
    return nb


def _parse(source: str) -> ast.Module:
    return ast.parse(TransformerManager().transform_cell(source))


def _top_level_names(tree: ast.Module) -> set[str]:
    """Names an answer cell defines for the rest of the notebook."""
    names = set()
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(statement.name)
        else:
            names |= _bound_names(statement) - _local_names(statement)
    return names


def _local_names(node: ast.AST) -> set[str]:
    """Names bound inside the functions and classes within ``node``."""
    inner = [
        n
        for n in ast.walk(node)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda)
    ]
    return set().union(*(_bound_names(n) for n in inner)) - {
        n.name for n in inner if not isinstance(n, ast.Lambda)
    }


def _bound_names(tree: ast.AST) -> set[str]:
    """Names a cell binds at its top level (and anywhere below, conservatively)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def _imported_names(tree: ast.AST) -> set[str]:
    return {
        (alias.asname or alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }


def _names(node: ast.AST | None) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} if node is not None else set()


def _root(node: ast.AST) -> str | None:
    """``x`` for ``x``, ``x.a``, ``x[i].b``: the name whose object an expression aliases."""
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Starred):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_check(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    return name if name in CHECKS else None


def _argument(call: ast.Call, index: int, keyword: str) -> ast.expr | None:
    if len(call.args) > index:
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


class _Rewriter:
    """A flow-sensitive taint analysis of one instructor cell, and its rewriting."""

    def __init__(
        self,
        cell_id: str,
        tainted: set[str],
        ever: set[str],
        imported: set[str],
        functions: dict[str, set[str]],
    ):
        self.cell_id = cell_id
        self.tainted = set(tainted)
        self.ever = ever
        self.imported = imported  # modules and library names: a call never makes them the student's
        # A function of the test handed to the student's code may be called there, and then
        # changes what its body reaches (a list it appends the student's arguments to).
        self.functions = functions
        self._site_of: dict[int, Site] = {}  # by id() of the call node, in the order found

    @property
    def sites(self) -> list[Site]:
        return list(self._site_of.values())

    # -- taint ---------------------------------------------------------------------------------
    def _is_tainted(self, node: ast.AST | None, extra: set[str] = frozenset()) -> bool:
        return bool(_names(node) & (self.tainted | extra))

    def _side_effects(self, node: ast.AST, extra: set[str] = frozenset()) -> None:
        """A call that involves the student's code may change every object handed to it."""
        for call in [n for n in ast.walk(node) if isinstance(n, ast.Call)]:
            if _is_check(call) or not self._is_tainted(call, extra):
                continue
            receivers = [call.func.value] if isinstance(call.func, ast.Attribute) else []
            for argument in [*call.args, *(k.value for k in call.keywords), *receivers]:
                root = _root(argument)
                if root is not None and root not in extra and root not in self.imported:
                    self.tainted.add(root)
                    self.tainted |= self.functions.get(root, set()) - self.imported

    def _assign(self, target: ast.AST, tainted: bool) -> None:
        if isinstance(target, ast.Name):
            (self.tainted.add if tainted else self.tainted.discard)(target.id)
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self._assign(element, tainted)
        elif tainted and (root := _root(target)) is not None:
            self.tainted.add(root)

    def statements(self, body: list[ast.stmt], context: bool = False) -> None:
        for statement in body:
            self.statement(statement, context)

    def statement(self, node: ast.stmt, context: bool) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            local = _bound_names(node) | {a.arg for a in ast.walk(node) if isinstance(a, ast.arg)}
            self.functions[node.name] = _names(node) - local - {node.name}
            self._sites_in(node, self.ever | local)
            self.tainted.discard(node.name)
            if context or _names(node) & (self.ever - local):
                self.tainted.add(node.name)
            return
        compound = ast.For | ast.AsyncFor | ast.While | ast.If | ast.With | ast.AsyncWith | ast.Try
        headers = _headers(node) if isinstance(node, compound) else [node]
        for header in headers:
            self._sites_in(header, frozenset())
            self._side_effects(header)
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value_tainted = context or self._is_tainted(node.value)
            if isinstance(node, ast.AugAssign):
                value_tainted |= self._is_tainted(node.target)
            for target in targets:
                self._assign(target, value_tainted)
        elif isinstance(node, ast.For | ast.AsyncFor | ast.While):
            loop = node.iter if not isinstance(node, ast.While) else node.test
            inner = context or self._is_tainted(loop)
            for _ in range(2):
                if not isinstance(node, ast.While):
                    self._assign(node.target, inner or self._is_tainted(node.iter))
                self.statements(node.body, inner)
            self.statements(node.orelse, inner)
        elif isinstance(node, ast.If):
            inner = context or self._is_tainted(node.test)
            before = set(self.tainted)
            self.statements(node.body, inner)
            after_body, self.tainted = self.tainted, before
            self.statements(node.orelse, inner)
            self.tainted |= after_body
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                if item.optional_vars is not None:
                    self._assign(item.optional_vars, context or self._is_tainted(item))
            self.statements(node.body, context)
        elif isinstance(node, ast.Try):
            self.statements(node.body, context)
            for handler in node.handlers:
                if handler.name:
                    self.tainted.add(handler.name)
                self.statements(handler.body, context)
            self.statements(node.orelse, context)
            self.statements(node.finalbody, context)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                self.tainted.discard((alias.asname or alias.name).split(".")[0])

    def _sites_in(self, node: ast.AST, extra: set[str]) -> None:
        """Number the checks in ``node``; a check's expected value may come from the reference
        run unless it (or a mistake) is computed from a value of the student's."""
        for call in [n for n in ast.walk(node) if _is_check(n)]:
            if id(call) in self._site_of and not self._site_of[id(call)].from_reference:
                continue
            if any(isinstance(a, ast.Starred) for a in call.args) or any(
                k.arg is None for k in call.keywords
            ):
                raise ValueError(
                    f"cell {self.cell_id}: write {_is_check(call)}(name, received, expected, "
                    f"...) without * or ** arguments, so that the grader can judge it"
                )
            received = _argument(call, 1, "received")
            self._side_effects(received, extra) if received is not None else None
            expected = _argument(call, 2, "expected")
            mistakes = _argument(call, 99, "mistakes")
            own = self._is_tainted(expected, extra) or self._is_tainted(mistakes, extra)
            earlier = self._site_of.get(id(call))
            number = list(self._site_of).index(id(call)) if earlier else len(self._site_of)
            self._site_of[id(call)] = Site(f"{self.cell_id}#{number}", _is_check(call), not own)

    # -- rewriting -----------------------------------------------------------------------------
    def transform(self, tree: ast.Module, *, sandbox: bool) -> ast.Module:
        tree_copy = copy.deepcopy(tree)
        # The copy's calls, in the same walk order as the analysed tree's.
        pairs = zip(
            [n for n in ast.walk(tree) if _is_check(n)],
            [n for n in ast.walk(tree_copy) if _is_check(n)],
            strict=True,
        )
        sites = {id(c): self._site_of[id(o)] for o, c in pairs if id(o) in self._site_of}

        class Transformer(ast.NodeTransformer):
            def visit_Call(self, node: ast.Call) -> ast.AST:
                site = sites.get(id(node))
                node = self.generic_visit(node)
                if site is None:
                    return node
                if not sandbox:
                    args = [ast.Constant(site.id), ast.Constant(site.kind), *node.args]
                    return ast.Call(ast.Name(RECORD, ast.Load()), args, node.keywords)
                name = _argument(node, 0, "name")
                args = [ast.Constant(site.id), name, _argument(node, 1, "received")]
                if not site.from_reference:
                    mistakes = _argument(node, 99, "mistakes") or ast.Constant(None)
                    args += [_argument(node, 2, "expected"), mistakes]
                return ast.Call(ast.Name(REPORT, ast.Load()), args, [])

        return ast.fix_missing_locations(Transformer().visit(tree_copy))


def _headers(node: ast.stmt) -> list[ast.AST]:
    """The parts of a compound statement that run before its body."""
    if isinstance(node, ast.For | ast.AsyncFor):
        return [node.iter]
    if isinstance(node, ast.While | ast.If):
        return [node.test]
    if isinstance(node, ast.With | ast.AsyncWith):
        return list(node.items)
    return []


# --- values across the sandbox's wall ---------------------------------------------------------


@dataclass
class Reference:
    """What a check must find: from the instructor's reference run."""

    site: str
    kind: str
    name: str
    rtol: float
    atol: float
    expected: Any
    mistakes: dict[str, Any]


def reference_records(nb: NotebookNode) -> dict[str, list[Reference]]:
    """Per cell id, the checks the reference run made, in order."""
    records: dict[str, list[Reference]] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            record = output.get("data", {}).get(REFERENCE_MIME)
            if output.get("output_type") != "display_data" or record is None:
                continue
            if isinstance(record, str):
                record = json.loads(record)
            values = decode_values(record["values"], base64.b64decode(record["data"]))
            records.setdefault(cell["id"], []).append(
                Reference(
                    record["site"],
                    record["kind"],
                    record["name"],
                    float(record["rtol"]),
                    float(record["atol"]),
                    values[0],
                    dict(zip(record["hints"], values[1:], strict=True)),
                )
            )
    return records


# --- the grader's side of the channel ---------------------------------------------------------


@dataclass
class CellChecks:
    """The checks of one instructor cell as the grader saw them."""

    expected: int
    confirmed: int = 0
    failure: str | None = None  # the first failed check's message


class CheckServer:
    """Judge the checks a sandboxed kernel reports, on a Unix socket at ``path``.

    The grader calls :meth:`begin_cell` before each cell runs; the checks of that cell must then
    arrive in the reference run's order. Everything read from the socket is untrusted: sizes
    are bounded, arrays are raw float64, and a malformed or unexpected report fails the cell.
    """

    def __init__(self, path: str, plan: Plan, references: dict[str, list[Reference]]):
        self.path, self.plan, self.references = path, plan, references
        self.cells: dict[str, CellChecks] = {}
        self._current: str | None = None
        self._lock = threading.Lock()
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.bind(path)
        os.chmod(path, 0o666)
        self._socket.listen(8)
        self._closed = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def begin_cell(self, cell_id: str | None) -> None:
        with self._lock:
            self._current = cell_id
            if cell_id in self.references and cell_id not in self.cells:
                self.cells[cell_id] = CellChecks(len(self.references[cell_id]))

    def close(self) -> None:
        self._closed = True
        try:
            self._socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._socket.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while not self._closed:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(10)
                try:
                    message = self._judge(read_report(connection))
                except Exception as error:  # a malformed report fails the cell, nothing more
                    message = self._fail(f"the grader could not read a check's values ({error})")
                try:
                    connection.sendall(json.dumps({"message": message}).encode())
                except OSError:
                    pass

    def _fail(self, message: str) -> str:
        with self._lock:
            cell = self.cells.get(self._current or "")
            if cell is not None and cell.failure is None:
                cell.failure = message
        return message

    def _judge(self, request: tuple[dict, bytes]) -> str | None:
        header, data = request
        with self._lock:
            cell_id = self._current
            cell = self.cells.get(cell_id or "")
            references = self.references.get(cell_id or "", [])
            if cell is None or cell.failure is not None:
                return None if cell is None else cell.failure
            index = cell.confirmed
        site = self.plan.sites.get(str(header.get("site")))
        if index >= len(references) or site is None or references[index].site != site.id:
            return self._fail(
                "the test's checks did not run as written (your code changed the test's "
                "helpers or called them itself)"
            )
        reference = references[index]
        values = decode_values(header["values"], data)
        name = str(header.get("name") or reference.name)[:300]
        if site.from_reference:
            expected, mistakes = reference.expected, reference.mistakes
        else:
            if len(values) < 2:
                return self._fail("the test's checks did not run as written")
            expected = values[1]
            hints = [str(h) for h in header.get("hints", [])]
            mistakes = dict(zip(hints, values[2:], strict=False))
        if isinstance(expected, Described) or expected is None:
            message = f"{name}: the test's expected value is not a number array."
        else:
            message = check_message(
                name,
                values[0],
                expected,
                rtol=reference.rtol,
                atol=reference.atol,
                mistakes=mistakes,
                scalar=site.kind == "check_scalar",
            )
        if message is not None:
            return self._fail(message)
        with self._lock:
            cell.confirmed += 1
        return None


def verdict(
    cell_id: str,
    cells: dict[str, CellChecks] | None,
    references: dict[str, list[Reference]],
    errored: bool,
) -> tuple[bool, str | None]:
    """Whether a test cell passed by the grader's own account (``cells``: the check server's
    record; ``None`` if there was none), and the reason if the grader knows better than the
    cell's outputs (``None``: use the cell's error message)."""
    if cells is None or cell_id not in references:
        return not errored, None
    checks = cells.get(cell_id)
    if checks is None:  # it never started: its outputs say why
        return False, None
    if checks.failure is not None:
        return False, checks.failure
    if errored:
        return False, None
    if checks.confirmed != checks.expected:
        return False, (
            f"the grader confirmed {checks.confirmed} of the test's {checks.expected} checks: "
            "your code stopped the test's checks from reaching the grader"
        )
    return True, None
