r"""The homework's checks: comparisons that explain a wrong answer.

:func:`check_array` compares a student's array with the expected one using NumPy's ``allclose``
rule, entrywise

.. math::
    |r - e| \le \text{atol} + \text{rtol}\,|e|

(``rtol=0, atol=0`` checks an exact property: an input left exactly as it was, the same
trajectory twice), and on failure raises :class:`CheckFailed` (an ``AssertionError``) whose
message names the quantity, the first wrong entry with its expected and received value, and —
when the received array equals one of the ``mistakes`` the test computed (e.g. the gradient one
gets by forgetting a transpose) — a hint naming that mistake. The message never contains the
test's source.

Students call these checks in the homework's self-checks; while a class is graded the grader
judges the same calls in its own process (:mod:`autograder.kernel.protocol`) with
:func:`check_message`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


class CheckFailed(AssertionError):
    """A graded check failed; the message says what is wrong."""


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
    out of the student's sandbox (:mod:`autograder.kernel.protocol`), where nothing can patch it."""
    if scalar and not is_single_number(received):
        return f"{name}: expected a single number, got {describe(received)}."
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
        return f"expected an array of shape {expected.shape}, got {describe(received)}"
    if received.shape != expected.shape:
        return f"expected shape {expected.shape}, got shape {received.shape}"
    close = np.isclose(received, expected, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return None
    index = tuple(int(i) for i in np.argwhere(~close)[0])
    where = f" at index {index}" if index else ""
    wrong = int((~close).sum())
    count = f" ({wrong} of {close.size} entries differ)" if close.size > 1 else ""
    want, got = float(expected[index]), float(received[index])
    if f"{want:.6g}" != f"{got:.6g}":
        return f"wrong value{where}: expected {want:.6g}, got {got:.6g}{count}"
    # Too close to tell apart at 6 digits (an exact check, rtol = atol = 0): all 17 digits.
    return (
        f"wrong value{where}: expected {want!r}, got {got!r}, which differs by "
        f"{got - want:.2g}{count}"
    )


def is_single_number(value: Any) -> bool:
    """Whether ``value`` is one number (a Python or NumPy scalar, a 0-d array)."""
    if isinstance(value, Described):
        return value.scalar
    return bool(np.isscalar(value) or np.shape(value) == ())


def describe(value: Any) -> str:
    """What ``value`` is, for a message: ``"a list"``, ``"a ndarray of shape (3,)"``."""
    if isinstance(value, Described):
        return value.description
    shape = getattr(value, "shape", None)
    return f"a {type(value).__name__}" + (f" of shape {shape}" if shape is not None else "")
