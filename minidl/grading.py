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
    expected = np.asarray(expected, dtype=np.float64)
    problem = _difference(received, expected, rtol, atol)
    if problem is None:
        return
    message = f"{name}: {problem}."
    for hint, wrong in (mistakes or {}).items():
        if _difference(received, np.asarray(wrong, dtype=np.float64), rtol, atol) is None:
            message += f" Hint: {hint}"
            break
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
    if not np.isscalar(received) and np.shape(received) != ():
        raise CheckFailed(f"{name}: expected a single number, got {_describe(received)}.")
    check_array(name, received, expected, rtol=rtol, atol=atol, mistakes=mistakes)


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


def _describe(value: Any) -> str:
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
