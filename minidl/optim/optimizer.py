"""The thin stateful shell that applies a pure rule to every parameter of a model."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from minidl._checks import check_positive
from minidl.optim.base import Rule
from minidl.optim.modifiers import clip_global_norm
from minidl.parameter import Parameter

_PER_ARRAY_INPUTS = frozenset({"loss"})
_FLAT_INPUTS = frozenset({"loss", "hess", "loss_fn"})


class Optimizer:
    r"""Trains ``params`` with ``rule``: ``loss = opt.step(closure, lr=...)`` once per iteration.

    ``closure()`` recomputes the loss at the current parameter values, writes every ``p.grad``
    and returns the loss. ``step`` calls it, clips the *global* gradient norm (all parameters
    together) to ``max_grad_norm`` if given (:func:`~minidl.optim.modifiers.clip_global_norm`,
    the map :func:`~minidl.optim.modifiers.clip_by_norm` applies to one array), and adds the
    rule's step to every ``p.value`` in place, so the layers holding the arrays see the change.
    ``p.grad`` keeps the unclipped gradient. ``state`` holds the rules' states (a list aligned
    with ``params``, or one state for a flat rule) and ``last_steps`` the steps just taken,
    aligned with ``params``.

    A rule with ``flat=True`` is applied once to all parameters concatenated into one vector
    :math:`w` (in the parameters' dtype). It can ask for ``loss_fn(x) -> (loss, grad)``, which
    writes ``x`` into the parameters and calls the closure; it restores nothing, so after a line
    search the parameters and gradients are those of its last trial point until the shell writes
    :math:`w + \Delta w`. ``"hess"`` is the Hessian by central differences of the gradient,
    symmetrised: :math:`2n` closure calls for :math:`n` parameters, fine for the few thousand
    parameters of the course's models, not beyond. It is computed before the gradient, so
    unless a line search runs, ``p.grad`` ends as the gradient at :math:`w`.

    Biases are not regularized. ``unregularized_rule``, if given, steps every parameter with
    ``p.regularize == False`` (biases, normalization shifts and scales) in place of ``rule``:
    two parameter groups, as torch users build for ``weight_decay``. Typically ``rule`` carries
    the penalty and ``unregularized_rule`` is the same rule without it::

        Optimizer(chain(l2(1e-3), sgd(0.1)), model.parameters(), unregularized_rule=sgd(0.1))

    A flat rule sees all parameters as one vector and cannot be split this way.
    """

    def __init__(
        self,
        rule: Rule,
        params: Sequence[Parameter],
        *,
        max_grad_norm: float | None = None,
        unregularized_rule: Rule | None = None,
    ):
        self.rule = rule
        self.params = list(params)
        if not self.params:
            raise ValueError("Optimizer: got an empty parameter list")
        if unregularized_rule is not None and (rule.flat or unregularized_rule.flat):
            raise ValueError(
                "Optimizer: unregularized_rule needs per-array rules; a flat rule sees all "
                "parameters as one vector (put the penalty into the loss instead)"
            )
        self.rules = [
            unregularized_rule if unregularized_rule is not None and not p.regularize else rule
            for p in self.params
        ]
        if max_grad_norm is not None:
            check_positive("Optimizer", max_grad_norm=max_grad_norm)
        self.max_grad_norm = max_grad_norm
        for checked in {id(r): r for r in self.rules}.values():
            missing = checked.needs - (_FLAT_INPUTS if checked.flat else _PER_ARRAY_INPUTS)
            if missing:
                raise ValueError(
                    f"Optimizer: rule {_rule_name(checked)} needs {sorted(missing)}, but a "
                    f"per-array rule only gets {sorted(_PER_ARRAY_INPUTS)}; build it with flat=True"
                )
        self._bounds = np.cumsum([0] + [p.size for p in self.params])
        self.state: Any = (
            rule.init(self._flat_values())
            if rule.flat
            else [r.init(p.value) for r, p in zip(self.rules, self.params, strict=True)]
        )
        self.last_steps: list[np.ndarray] = []

    def step(self, closure: Callable[[], float], *, lr: float | None = None) -> float:
        """Take one step; return the loss ``closure()`` gave at the parameters before it."""
        if self.rule.flat:
            return self._flat_step(closure, lr)
        loss = closure()
        grads = self._clip([p.grad for p in self.params])
        steps, states = [], []
        for rule, p, grad, state in zip(self.rules, self.params, grads, self.state, strict=True):
            extras = {"loss": loss} if "loss" in rule.needs else {}
            step, state = rule.update(grad, state, p.value, lr=lr, **extras)
            p.value += step
            steps.append(step)
            states.append(state)
        self.state, self.last_steps = states, steps
        return loss

    def _flat_step(self, closure: Callable[[], float], lr: float | None) -> float:
        def loss_fn(x: np.ndarray) -> tuple[float, np.ndarray]:
            self._write(x)
            loss = closure()
            return loss, np.concatenate([np.ravel(p.grad) for p in self.params])

        w = self._flat_values()
        extras: dict[str, Any] = {}
        if "hess" in self.rule.needs:
            extras["hess"] = _hessian(loss_fn, w)
        loss, grad = loss_fn(w)
        if "loss" in self.rule.needs:
            extras["loss"] = loss
        if "loss_fn" in self.rule.needs:
            extras["loss_fn"] = loss_fn
        (grad,) = self._clip([grad])
        step, self.state = self.rule.update(grad, self.state, w, lr=lr, **extras)
        self._write(w + step)
        self.last_steps = [step[a:b].reshape(p.shape) for p, a, b in self._slices()]
        return loss

    def _clip(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        if self.max_grad_norm is None:
            return grads
        return clip_global_norm(grads, self.max_grad_norm)

    def _flat_values(self) -> np.ndarray:
        return np.concatenate([p.value.ravel() for p in self.params])

    def _write(self, x: np.ndarray) -> None:
        for p, a, b in self._slices():
            p.value[...] = x[a:b].reshape(p.shape)

    def _slices(self) -> Iterator[tuple[Parameter, int, int]]:
        return zip(self.params, self._bounds[:-1], self._bounds[1:], strict=True)


def _hessian(
    loss_fn: Callable[[np.ndarray], tuple[float, np.ndarray]], w: np.ndarray
) -> np.ndarray:
    """Central differences of the gradient, column by column, symmetrised."""
    h = np.finfo(w.dtype).eps ** (1 / 3) * np.maximum(1.0, np.abs(w))
    hess = np.empty((w.size, w.size), dtype=w.dtype)
    for i in range(w.size):
        e = np.zeros_like(w)
        e[i] = h[i]
        hess[:, i] = (loss_fn(w + e)[1] - loss_fn(w - e)[1]) / (2 * h[i])
    return (hess + hess.T) / 2


def _rule_name(rule: Rule) -> str:
    """The factory's name, else the function that defined ``update`` (a hand-made rule)."""
    if "name" in rule.hyperparams:
        return rule.hyperparams["name"]
    return getattr(rule.update, "__qualname__", repr(rule.update)).split(".<locals>")[0]
