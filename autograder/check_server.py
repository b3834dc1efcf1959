"""The grader's end of the checks: the check server that judges a sandboxed kernel's reports in
the grader's own process, against the reference run's expected values, and the verdict on a test.

The instructor's solution runs once per class with its checks rewritten to publish what they expect
(:mod:`autograder.check_rewriting`); :func:`reference_records` collects those records, as plain data
(JSON: the values are :func:`~autograder.kernel.protocol.encode_values`' descriptions and base64
float64 data), and :func:`decode_references` decodes them. While a student's notebook runs, a
:class:`CheckServer` answers every check the kernel reports with the message ``check_array`` would
have raised, computed here with :func:`course.checks.check_message`.

A test passes only if the sandbox ran it without an error **and** reported exactly the checks the
reference run made, each confirmed by the grader (:func:`verdict`): a test whose checks were
skipped, silenced or answered with forged values fails.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any

from nbformat import NotebookNode

from autograder.check_rewriting import Plan
from autograder.kernel.protocol import REFERENCE_MIME, decode_values, read_report
from course.checks import Described, check_message


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

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Reference:
        """The check a reference-run record describes (see :func:`reference_records`)."""
        values = decode_values(record["values"], base64.b64decode(record["data"]))
        mistakes = dict(zip(record["hints"], values[1:], strict=True))
        return cls(
            record["site"],
            record["kind"],
            record["name"],
            float(record["rtol"]),
            float(record["atol"]),
            values[0],
            mistakes,
        )


def reference_records(nb: NotebookNode) -> dict[str, list[dict[str, Any]]]:
    """Per cell id, the records of the checks the reference run made, in order, as published
    by :func:`autograder.kernel.protocol.record_check` (plain JSON data)."""
    records: dict[str, list[dict[str, Any]]] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            record = output.get("data", {}).get(REFERENCE_MIME)
            if output.get("output_type") != "display_data" or record is None:
                continue
            records.setdefault(cell["id"], []).append(
                json.loads(record if isinstance(record, str) else json.dumps(record))
            )
    return records


def decode_references(records: dict[str, list[dict[str, Any]]]) -> dict[str, list[Reference]]:
    """The checks of :func:`reference_records`, decoded."""
    return {
        cell: [Reference.from_record(r) for r in cell_records]
        for cell, cell_records in records.items()
    }


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
