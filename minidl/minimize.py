r"""Run an optimizer rule on an objective function: the one loop of the optimization chapters.

:func:`minimize` applies a :class:`~minidl.optim.Rule` to a :class:`~minidl.data.Problem` from
a start :math:`w_0`:

.. math::
    s_0 = \mathrm{init}(w_0), \qquad
    (\Delta w_t, s_{t+1}) = \mathrm{update}\big(\nabla L(w_t), s_t, w_t; \eta_t\big), \qquad
    w_{t+1} = w_t + \Delta w_t,

with :math:`\eta_t` = ``schedule(t)`` if a schedule is given (else the rule's own rate). A rule
that lists ``"loss"``, ``"hess"`` or ``"loss_fn"`` in ``Rule.needs`` gets :math:`L(w_t)`, the
exact Hessian :math:`\nabla^2 L(w_t)` and ``loss_fn(x) = (L(x), \nabla L(x))`` (its line
search's trial points). The whole vector :math:`w` is one array, so per-array and flat rules
run alike. The training loop on a network is :func:`minidl.train.train`; this is the loop on a
function of a few coordinates, whose every iterate is worth keeping.

The run ends after ``steps`` steps, or earlier:

- *converged*: ``until(w_t)`` holds (tested at every iterate, :math:`w_0` included, before the
  step from it); :math:`w_t` is the last iterate;
- *diverged*: :math:`w_{t+1}` has an entry that is not finite (an overflow to ``inf`` or a
  ``nan``); :math:`w_{t+1}` is not kept and :math:`w_t` is the last iterate. A loss that
  overflows while the iterate is still finite is recorded as ``inf``, and the run goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from minidl.data.problems import Problem
from minidl.optim.base import Rule

SUPPLIED_INPUTS = frozenset({"loss", "hess", "loss_fn"})
"""What :func:`minimize` can give a rule beyond the gradient (see ``Rule.needs``)."""


@dataclass(frozen=True)
class Run:
    r"""A rule's run on a problem; every array is read-only.

    Attributes:
        path: the iterates :math:`w_0, \ldots, w_T`, shape ``(T + 1, d)``.
        losses: :math:`L(w_0), \ldots, L(w_T)`, shape ``(T + 1,)``.
        evaluations: ``evaluations[t]`` is the number of gradient evaluations spent to reach
            :math:`w_t`: one per step, plus one per call of ``loss_fn`` (a line search's trial
            points); 0 for :math:`w_0`. Hessians are not counted.
        states: the rule's state :math:`s_t` at each iterate (``states[0] = init(w_0)``).
        converged: the run ended because ``until`` held at :math:`w_T`.
        diverged: the run ended because the step from :math:`w_T` left the finite numbers.
    """

    path: np.ndarray
    losses: np.ndarray
    evaluations: np.ndarray
    states: tuple[Any, ...]
    converged: bool
    diverged: bool

    @property
    def steps(self) -> int:
        """:math:`T`, the number of steps taken."""
        return len(self.path) - 1


def minimize(
    rule: Rule,
    problem: Problem,
    w0: ArrayLike,
    steps: int,
    *,
    schedule: Callable[[int], float] | None = None,
    until: Callable[[np.ndarray], bool] | None = None,
) -> Run:
    """At most ``steps`` steps of ``rule`` on ``problem`` from ``w0`` (see the module docstring).

    ``w0`` is copied (as float64), never changed. ``schedule(t)`` is the learning rate of step
    ``t`` (counted from 0), passed to the rule as ``lr``. ``until(w)`` is a stopping test, e.g.
    ``lambda w: np.linalg.norm(w - problem.minimizer) <= 1e-6``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 0:
        raise ValueError(f"minimize: steps must be an integer >= 0, got {steps!r}")
    w = np.array(w0, dtype=np.float64)
    if w.shape != (problem.dim,):
        raise ValueError(
            f"minimize: w0 must be one point of shape ({problem.dim},) for {problem.name}, "
            f"got shape {w.shape}"
        )
    unknown = rule.needs - SUPPLIED_INPUTS
    if unknown:
        raise ValueError(
            f"minimize: {rule!r} needs {sorted(unknown)}; a problem supplies only "
            f"{sorted(SUPPLIED_INPUTS)}"
        )
    calls = 0

    def loss_fn(x: np.ndarray) -> tuple[float, np.ndarray]:
        nonlocal calls
        calls += 1
        return problem.value(x), problem.grad(x)

    state = rule.init(w)
    path, losses, evaluations, states = [w], [problem.value(w)], [0], [state]
    converged = diverged = False
    # An overflow is how a run diverges: it is reported by ``diverged``, not as a warning.
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            if until is not None and until(w):
                converged = True
                break
            calls += 1
            extras: dict[str, Any] = {}
            if "loss" in rule.needs:
                extras["loss"] = losses[-1]
            if "hess" in rule.needs:
                extras["hess"] = problem.hessian(w)
            if "loss_fn" in rule.needs:
                extras["loss_fn"] = loss_fn
            lr = None if schedule is None else schedule(t)
            step, state = rule.update(problem.grad(w), state, w, lr=lr, **extras)
            w = w + step
            if not np.isfinite(w).all():
                diverged = True
                break
            path.append(w)
            losses.append(problem.value(w))
            evaluations.append(calls)
            states.append(state)
        else:
            converged = until is not None and bool(until(w))
    arrays = np.array(path), np.array(losses, dtype=np.float64), np.array(evaluations)
    for array in arrays:
        array.setflags(write=False)
    return Run(*arrays, states=tuple(states), converged=converged, diverged=diverged)
