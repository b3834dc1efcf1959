r"""An optimizer as a pair of pure functions (the stateful shell is :mod:`minidl.optim.optimizer`).

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

The scaffolding every factory of :mod:`minidl.optim` shares is written here once, so that a
factory is its algorithm box and nothing else. :func:`factory` checks the arguments (each
annotated with its check, ``lr: NonNegative``) and records them as ``hyperparams``.
:func:`formula_rule` turns the box's step, a function of the checked gradient and the rate of
this step, into an ``update``: the rate override, the gradient's shape and dtype, and torch's
coupled ``weight_decay`` :math:`g \leftarrow g + \lambda w` (:func:`coupled_decay`, the same
map as the modifier :func:`~minidl.optim.modifiers.l2`).
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Annotated, Any, NamedTuple, TypeVar

import numpy as np

from minidl._checks import (
    check_decay,
    check_flat_grad,
    check_grad,
    check_nonnegative,
    check_positive,
)


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


Built = TypeVar("Built", bound=tuple)


# The checks an argument's annotation names: check(factory_name, argument_name, value).


def nonnegative(where: str, name: str, value: float) -> None:
    """``value >= 0`` (NaN is not)."""
    check_nonnegative(where, **{name: value})


def positive(where: str, name: str, value: float) -> None:
    """``value > 0`` (NaN is not)."""
    check_positive(where, **{name: value})


def decay(where: str, name: str, value: float) -> None:
    """A decay rate in [0, 1)."""
    check_decay(where, name, value)


def decay_or_one(where: str, name: str, value: float) -> None:
    """A decay rate in [0, 1]."""
    check_decay(where, name, value, one_allowed=True)


def decays(where: str, name: str, values: tuple[float, ...]) -> None:
    """Each entry a decay rate in [0, 1) (``betas``), named ``betas[0]``, ``betas[1]``, ..."""
    for i, value in enumerate(values):
        check_decay(where, f"{name}[{i}]", value)


NonNegative = Annotated[float, nonnegative]
Positive = Annotated[float, positive]
Decay = Annotated[float, decay]
DecayOrOne = Annotated[float, decay_or_one]
Decays = Annotated[tuple[float, float], decays]


def factory(build: Callable[..., Built]) -> Callable[..., Built]:
    """Decorate a factory of rules or modifiers: check every argument annotated with a check
    (``lr: NonNegative``, ``Annotated[type, check]``), and record the factory's name and every
    argument (defaults included, in the signature's order) as the result's ``hyperparams``, so
    the record is true by construction::

        @factory
        def momentum(lr: NonNegative, beta: Decay = 0.9) -> Rule: ...
    """
    signature = inspect.signature(build)
    name = build.__name__
    hints = typing.get_type_hints(build, include_extras=True)
    checks = {
        argument: check
        for argument in signature.parameters
        for check in getattr(hints.get(argument), "__metadata__", ())
    }

    @functools.wraps(build)
    def checked_and_recorded(*args: Any, **kwargs: Any) -> Built:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        for argument, check in checks.items():
            check(name, argument, bound.arguments[argument])
        built = build(*bound.args, **bound.kwargs)
        return built._replace(hyperparams=MappingProxyType({"name": name, **bound.arguments}))

    return checked_and_recorded


def coupled_decay(grad: np.ndarray, param: np.ndarray, weight_decay: float) -> np.ndarray:
    r"""The gradient of :math:`L + \tfrac{\lambda}{2}\|w\|^2`: :math:`g + \lambda w`."""
    return grad + weight_decay * param if weight_decay != 0.0 else grad


def formula_rule(
    name: str,
    init: Callable[[np.ndarray], Any],
    step: Callable[..., tuple[np.ndarray, Any]],
    *,
    lr: float | None,
    weight_decay: float = 0.0,
    needs: frozenset[str] = frozenset(),
    flat: bool = False,
) -> Rule:
    r"""The rule whose update is ``step(g, state, param, eta, **extras) -> (step, state)``.

    ``update(grad, state, param, *, lr=None, **extras)`` checks ``grad`` against ``param``
    (one shape, converted to ``param``'s dtype; one vector each for a flat rule), adds the
    coupled decay :math:`\lambda w` (``weight_decay``, torch's coupled ``weight_decay``), and
    calls ``step`` with the rate :math:`\eta` of this step: the ``lr`` given to ``update``, else
    the factory's ``lr``. Of the keyword inputs, ``step`` gets those listed in ``needs``.
    """
    checked = check_flat_grad if flat else check_grad
    default_lr = lr

    def update(
        grad: np.ndarray, state: Any, param: np.ndarray, *, lr: float | None = None, **extras: Any
    ) -> tuple[np.ndarray, Any]:
        g = coupled_decay(checked(name, grad, param), param, weight_decay)
        inputs = {key: extras[key] for key in needs if key in extras}
        return step(g, state, param, default_lr if lr is None else lr, **inputs)

    return Rule(init, update, needs=frozenset(needs), flat=flat)


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
