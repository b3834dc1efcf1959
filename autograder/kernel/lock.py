"""The grader's lock on the reference implementations, run in every grading kernel.

While a class is graded the answers must not be importable from the framework:
:func:`block_references` replaces each named function or class (``"minidl.layers.Linear"``) in
its module, and in every loaded module that imported it, by a stub that raises
:class:`NotAvailableWhileGrading`; a whole module (``"minidl.autodiff"``, ``"torch"``) can no
longer be imported, and the modules that lost a name cannot be re-imported or reloaded to get it
back. It keeps honest students honest; it is not a sandbox (:mod:`autograder.sandbox` is).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
from collections.abc import Iterable
from typing import Any

_active = False


class NotAvailableWhileGrading(RuntimeError):
    """Raised by a reference implementation that is locked while the grader runs."""


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
