"""Argument checks shared by the modules of minidl.

Each check names the caller (``where``, e.g. ``"adam"`` or ``"Linear"``) and the value it got,
so that a bad argument is reported where it was given, not where it later breaks a formula.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np


def check_grad(where: str, grad: np.ndarray, param: np.ndarray) -> np.ndarray:
    """``grad`` as an array of ``param``'s dtype, after checking that the shapes agree."""
    grad = np.asarray(grad)
    if grad.shape != np.shape(param):
        raise ValueError(
            f"{where}: grad of shape {grad.shape} does not match param of shape {np.shape(param)}"
        )
    return grad.astype(np.asarray(param).dtype, copy=False)


def check_flat_grad(where: str, grad: np.ndarray, param: np.ndarray) -> np.ndarray:
    """``grad`` in ``param``'s dtype, after checking both are one vector of the same length."""
    grad, param = np.asarray(grad), np.asarray(param)
    if param.ndim != 1 or grad.shape != param.shape:
        raise ValueError(
            f"{where}: expected param and grad of one shape (n,), got param {param.shape} "
            f"and grad {grad.shape}"
        )
    return grad.astype(param.dtype, copy=False)


def check_nonnegative(where: str, **values: float) -> None:
    """Every keyword value is >= 0 (NaN is not)."""
    for name, value in values.items():
        if not value >= 0.0:
            raise ValueError(f"{where}: {name} must be >= 0, got {value}")


def check_positive(where: str, **values: float) -> None:
    """Every keyword value is > 0 (NaN is not)."""
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{where}: {name} must be > 0, got {value}")


def check_decay(where: str, name: str, value: float, *, one_allowed: bool = False) -> None:
    """A decay rate lies in [0, 1) (or [0, 1] when ``one_allowed``), as torch checks betas."""
    if not (0.0 <= value < 1.0 or (one_allowed and value == 1.0)):
        bracket = "]" if one_allowed else ")"
        raise ValueError(f"{where}: {name} must be in [0, 1{bracket}, got {value}")


def positive_int(where: str, name: str, value: int) -> int:
    """``value`` as an int, if it is an integer (not a bool) of at least 1."""
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}") from None
    if value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value}")
    return value


def check_generator(where: str, rng: object) -> None:
    """``rng`` is a ``numpy.random.Generator`` (a ``TypeError`` otherwise)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{where}: rng must be a numpy.random.Generator (e.g. np.random.default_rng(0)), "
            f"got {type(rng).__name__}"
        )


def require_input(where: str, name: str, value: Any) -> Any:
    """``value``, a keyword input a rule lists in ``Rule.needs`` (a ``TypeError`` if missing)."""
    if value is None:
        raise TypeError(f"{where}: missing the keyword input {name}= (listed in rule.needs)")
    return value


def as_floating(x: np.ndarray) -> np.ndarray:
    """``x`` as an array, converted to float64 unless it already has a floating dtype."""
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)
