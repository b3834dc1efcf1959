"""Rewrite the checks of the instructor's cells so that the grader, not the student's process,
judges them; decide by a taint analysis of the source which expected values the grader can hold.

A test cell fails by raising; in any nbgrader course the checks therefore run in the student's
kernel, where the student's code can redefine ``check_array``, patch NumPy or silence the error.
Here every call ``check_array(name, received, expected, ...)`` / ``check_scalar(...)`` in the
instructor's cells is rewritten before the notebook runs (:func:`plan`, :func:`apply`):

- In the **reference run** (the instructor's solution, once per class) it becomes
  ``record_check(site, kind, ...)``: the expected value, the mistakes' values and the tolerances
  are published to the grader, then checked as usual.
- In the **student's sandbox** it becomes ``report_check(site, name, received)``: the received
  value goes to the grader's check server (:mod:`autograder.check_server`), which compares it
  with the reference run's expected value. The expected value and how it is computed never enter
  the sandbox.

That holds where the expected value follows from the test's inputs alone. Where it is computed
from the student's own objects (a gradient check of the student's network against differences
of the student's loss), the reference run's value would be another number; there the sandbox sends
``received``, ``expected`` and the mistakes as the test computed them
(``report_check(site, name, received, expected, mistakes)``). Which case a check is decided by
:func:`plan`: a value is the student's if it is computed from a name an answer cell defines, or
from an object handed to the student's code (which may have changed it). Both ends of the wire
are :mod:`autograder.kernel.protocol`.
"""

from __future__ import annotations

import ast
import builtins
import copy
from dataclasses import asdict, dataclass, field
from typing import Any

from IPython.core.inputtransformer2 import TransformerManager
from nbformat import NotebookNode

from autograder.notebooks import is_answer, is_demo

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

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain data (JSON), for a grading task."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        sites = {key: Site(**site) for key, site in data["sites"].items()}
        return cls(dict(data["sandbox"]), dict(data["reference"]), sites)


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
