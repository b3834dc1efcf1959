r"""Support for the graded notebooks: checks that explain a wrong answer, and the grader's lock
on the reference implementations.

Checks. :func:`check_array` compares a student's array with the expected one using NumPy's
``allclose`` rule, entrywise

.. math::
    |r - e| \le \text{atol} + \text{rtol}\,|e|,

and on failure raises :class:`CheckFailed` (an ``AssertionError``) whose message names the
quantity, the first wrong entry with its expected and received value, and — when the received
array equals one of the ``mistakes`` the test computed (e.g. the gradient one gets by forgetting
a transpose) — a hint naming that mistake. The message never contains the test's source.

Lock. While a class is graded the answers must not be importable from the framework:
:func:`block_references` replaces each named function or class (``"minidl.layers.Linear"``) in
its module, and in every loaded module that imported it, by a stub that raises
:class:`NotAvailableWhileGrading`; a whole module (``"minidl.autodiff"``, ``"torch"``) can no
longer be imported, and the modules that lost a name cannot be re-imported or reloaded to get it
back. It keeps honest students honest; it is not a sandbox.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

_active = False


class CheckFailed(AssertionError):
    """A graded check failed; the message says what is wrong."""


class NotAvailableWhileGrading(RuntimeError):
    """Raised by a reference implementation that is locked while the grader runs."""


def check_array(
    name: str,
    received: Any,
    expected: Any,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    mistakes: Mapping[str, Any] | None = None,
) -> None:
    """Raise :class:`CheckFailed` unless ``received`` is close to ``expected`` (same shape).

    ``mistakes`` maps a hint (what the student probably did) to the value that mistake
    produces; the first one ``received`` matches is added to the message.
    """
    message = check_message(name, received, expected, rtol=rtol, atol=atol, mistakes=mistakes)
    if message is not None:
        raise CheckFailed(message)


def check_scalar(
    name: str,
    received: Any,
    expected: float,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    mistakes: Mapping[str, float] | None = None,
) -> None:
    """:func:`check_array` for a single number (a loss, an error)."""
    message = check_message(
        name, received, expected, rtol=rtol, atol=atol, mistakes=mistakes, scalar=True
    )
    if message is not None:
        raise CheckFailed(message)


def check_message(
    name: str,
    received: Any,
    expected: Any,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    mistakes: Mapping[str, Any] | None = None,
    scalar: bool = False,
) -> str | None:
    """What :func:`check_array` (``scalar=False``) or :func:`check_scalar` would raise, or
    ``None`` if the check passes. The grader calls it in its own process on values serialized
    out of the student's sandbox (:mod:`autograder.checks`), where nothing can patch it."""
    if scalar and not _is_single_number(received):
        return f"{name}: expected a single number, got {_describe(received)}."
    expected = np.asarray(expected, dtype=np.float64)
    problem = _difference(received, expected, rtol, atol)
    if problem is None:
        return None
    message = f"{name}: {problem}."
    for hint, wrong in (mistakes or {}).items():
        if _difference(received, np.asarray(wrong, dtype=np.float64), rtol, atol) is None:
            message += f" Hint: {hint}"
            break
    return message


class Described:
    """A value that is not a number array, known only by its description (``"a list"``): what
    the grader receives from the sandbox in place of such a value."""

    def __init__(self, description: str, *, scalar: bool = False):
        self.description = description
        self.scalar = scalar

    def __repr__(self) -> str:
        return self.description


def _difference(received: Any, expected: np.ndarray, rtol: float, atol: float) -> str | None:
    """What differs between ``received`` and ``expected``, or ``None`` if they agree."""
    if received is None:
        return f"expected an array of shape {expected.shape}, got None"
    try:
        received = np.asarray(received, dtype=np.float64)
    except (TypeError, ValueError):
        return f"expected an array of shape {expected.shape}, got {_describe(received)}"
    if received.shape != expected.shape:
        return f"expected shape {expected.shape}, got shape {received.shape}"
    close = np.isclose(received, expected, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return None
    index = tuple(int(i) for i in np.argwhere(~close)[0])
    where = f" at index {index}" if index else ""
    wrong = int((~close).sum())
    count = f" ({wrong} of {close.size} entries differ)" if close.size > 1 else ""
    return f"wrong value{where}: expected {expected[index]:.6g}, got {received[index]:.6g}{count}"


def _is_single_number(value: Any) -> bool:
    if isinstance(value, Described):
        return value.scalar
    return bool(np.isscalar(value) or np.shape(value) == ())


def _describe(value: Any) -> str:
    if isinstance(value, Described):
        return value.description
    shape = getattr(value, "shape", None)
    return f"a {type(value).__name__}" + (f" of shape {shape}" if shape is not None else "")


def active() -> bool:
    """Whether :func:`block_references` has run in this process (the grader is running)."""
    return _active


def block_references(names: Iterable[str]) -> None:
    """Lock the reference implementations ``names`` for the rest of the process.

    A name is ``"package.module.attribute"`` (a function or class, replaced by a stub that
    raises) or ``"package.module"`` (a module that can no longer be imported).
    """
    global _active
    sealed: set[str] = set()
    blocked_modules: set[str] = set()
    for full_name in names:
        if _is_module(full_name):
            blocked_modules.add(full_name)
            continue
        module_name, _, attribute = full_name.rpartition(".")
        original = getattr(importlib.import_module(module_name), attribute)
        stub = _stub(full_name, original)
        for loaded in list(sys.modules.values()):
            for key, value in list(getattr(loaded, "__dict__", {}).items()):
                if value is original:
                    setattr(loaded, key, stub)
                    sealed.add(loaded.__name__)
    for module_name in blocked_modules:
        for loaded in [m for m in sys.modules if _within(m, module_name)]:
            sys.modules[loaded] = _blocked_module(loaded)
        parent_name, _, child = module_name.rpartition(".")
        if parent_name in sys.modules:
            setattr(sys.modules[parent_name], child, _blocked_module(module_name))
    sys.meta_path.insert(0, _Refuse(sealed, blocked_modules))
    _active = True


def _is_module(full_name: str) -> bool:
    """Whether ``full_name`` names a module (top-level names count even when not installed)."""
    if "." not in full_name:
        return True
    try:
        return importlib.util.find_spec(full_name) is not None
    except ImportError:
        return False


def _within(module_name: str, package: str) -> bool:
    return module_name == package or module_name.startswith(package + ".")


def _message(full_name: str) -> str:
    return f"{full_name} is not available while grading: the grader runs your own implementation"


def _stub(full_name: str, original: Any) -> Any:
    message = _message(full_name)
    if isinstance(original, type):

        def refuse_init(self: Any, *args: Any, **kwargs: Any) -> None:
            raise NotAvailableWhileGrading(message)

        return type(original.__name__, (), {"__init__": refuse_init, "__doc__": message})

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise NotAvailableWhileGrading(message)

    refuse.__name__ = getattr(original, "__name__", "blocked")
    refuse.__doc__ = message
    return refuse


def _blocked_module(module_name: str) -> types.ModuleType:
    module = types.ModuleType(module_name, _message(module_name))

    def refuse(attribute: str) -> Any:
        if attribute.startswith("__"):  # introspection (inspect, pickle, tracebacks) stays quiet
            raise AttributeError(attribute)
        raise NotAvailableWhileGrading(_message(f"{module_name}.{attribute}"))

    module.__getattr__ = refuse  # type: ignore[method-assign]
    return module


class _Refuse(importlib.abc.MetaPathFinder):
    """Refuse to (re)import the modules whose references were locked or that are blocked."""

    def __init__(self, sealed: set[str], blocked: set[str]):
        self.sealed = sealed
        self.blocked = blocked

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname in self.sealed or any(_within(fullname, b) for b in self.blocked):
            raise ImportError(_message(fullname))
        return None


# --- the grader's channel (autograder.checks) --------------------------------------------------
# While a class is graded, the test cells' calls to check_array/check_scalar are rewritten: in the
# student's sandbox they call report_check, which sends the values to the grader and raises what
# the grader answers; in the instructor's reference run they call record_check. Neither is meant
# to be called by a notebook's own code.

CHECKS_SOCKET_ENV = "AUTOGRADER_CHECKS_SOCKET"
REFERENCE_MIME = "application/vnd.autograder.reference+json"
_MAGIC = b"AGC1"


def encode_values(values: list[Any]) -> tuple[list[dict[str, Any]], bytes]:
    """Describe ``values`` in JSON-able form, with the float64 data of the arrays in one blob."""
    described, blobs, offset = [], [], 0
    for value in values:
        if value is None:
            described.append({"none": True})
            continue
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            described.append({"described": _describe(value), "scalar": _is_single_number(value)})
            continue
        data = array.tobytes()
        described.append(
            {
                "array": list(array.shape),
                "offset": offset,
                "nbytes": len(data),
                "scalar": _is_single_number(value),
                "describe": _describe(value),
            }
        )
        blobs.append(data)
        offset += len(data)
    return described, b"".join(blobs)


def report_check(site: str, name: str, received: Any, *rest: Any) -> None:
    """Send a check's values to the grader; raise :class:`CheckFailed` if the grader says so.

    ``rest`` is empty when the grader holds the expected value itself (from the instructor's
    reference run), else ``(expected, mistakes)`` as the test computed them.
    """
    import json
    import os
    import socket
    import struct

    values, hints = [received], []
    if rest:
        expected, mistakes = rest
        values.append(expected)
        for hint, wrong in (mistakes or {}).items():
            hints.append(str(hint))
            values.append(wrong)
    described, data = encode_values(values)
    header = {"site": site, "name": str(name), "values": described, "hints": hints}
    header = json.dumps(header).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(os.environ[CHECKS_SOCKET_ENV])
        connection.sendall(_MAGIC + struct.pack("<IQ", len(header), len(data)) + header + data)
        connection.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    message = json.loads(reply.decode())["message"]
    if message is not None:
        raise CheckFailed(message)


def record_check(site: str, kind: str, name: str, received: Any, expected: Any, **options: Any):
    """In the instructor's reference run: publish the check's expected values, then check."""
    import base64

    from IPython.display import publish_display_data

    mistakes = options.get("mistakes") or {}
    described, data = encode_values([expected, *mistakes.values()])
    record = {
        "site": site,
        "kind": kind,
        "name": name,
        "rtol": options.get("rtol", 1e-6),
        "atol": options.get("atol", 1e-8),
        "values": described,
        "hints": [str(h) for h in mistakes],
        "data": base64.b64encode(data).decode(),
    }
    publish_display_data({REFERENCE_MIME: record})
    (check_scalar if kind == "check_scalar" else check_array)(name, received, expected, **options)
