"""An optimizer as a pair of pure functions (the stateful shell is :mod:`minidl.optim.optimizer`).

A *rule* is ``Rule(init, update)`` (optax's ``GradientTransformation``):

- ``state = rule.init(param)`` builds the rule's state for one parameter array;
- ``step, state = rule.update(grad, state, param, *, lr=None, **extras)`` returns the step to
  *add* to the parameter (``param + step`` is the new parameter) and the new state.

States are immutable ``NamedTuple``s, so a rule can be stepped by hand in the book, replayed, or
compared with another rule from the same state. ``lr`` overrides the learning rate the factory
was built with: the training loop resolves learning-rate schedules and passes the current rate.
Rules that need more than the gradient list the keyword inputs in ``Rule.needs`` (``"loss"``, the
loss at ``param``; ``"hess"``, the Hessian; ``"loss_fn"``, a function ``w -> (loss, grad)`` for a
line search); the shell supplies them. Rules with ``flat=True`` (the second-order ones) are
applied once to the whole parameter vector of a model, flattened, instead of array by array.
``hyperparams`` records what the factory was built with (its name under ``"name"``), for display
(``repr(adam())`` is ``adam(lr=0.001, betas=(0.9, 0.999), ...)``) and for the training loop's log
of the learning rate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np


class Rule(NamedTuple):
    """A pure update rule: ``init(param) -> state`` and
    ``update(grad, state, param) -> (step, state)``."""

    init: Callable[[np.ndarray], Any]
    update: Callable[..., tuple[np.ndarray, Any]]
    needs: frozenset[str] = frozenset()
    flat: bool = False
    hyperparams: Mapping[str, Any] = MappingProxyType({})

    def __repr__(self) -> str:
        return describe(self.hyperparams, "Rule(...)")


def describe(hyperparams: Mapping[str, Any], unnamed: str) -> str:
    """``name(key=value, ...)`` from recorded factory arguments, ``unnamed`` without a name.

    A value that is itself a mapping (a modifier's arguments in a chain) is described alike.
    """
    if "name" not in hyperparams:
        return unnamed
    args = ", ".join(f"{k}={_describe(v)}" for k, v in hyperparams.items() if k != "name")
    return f"{hyperparams['name']}({args})"


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return describe(value, "...")
    if isinstance(value, tuple):
        items = [_describe(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    return repr(value)
