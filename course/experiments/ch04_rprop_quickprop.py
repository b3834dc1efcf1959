r"""Chapter 4 (Rprop and Quickprop): the experiments behind the chapter's claims.

- :func:`trajectory`: the iterates :math:`w_0, \ldots, w_T` of any rule of :mod:`minidl.optim`
  on a :class:`minidl.data.Problem`, run by :func:`minidl.minimize.minimize`.
- :func:`badly_scaled_quadratic`, :func:`steps_to_reach`, :func:`gradient_descent_sweep`: Rprop
  against gradient descent at every single rate of a sweep on
  :math:`L(w) = \tfrac12 (w_1^2 + 1000\, w_2^2)`.
- :func:`~minidl.data.rotated_quadratic` (``rq.rotated_quadratic(1000.0, angle=0.6)``): the same
  valley turned, no longer along a coordinate axis.
- :func:`scaled`, :func:`scaling_experiment`: multiplying the loss by 1000 leaves Rprop's
  trajectory unchanged, bit for bit, and throws gradient descent off.
- :func:`secant_vertex`, :func:`quickprop_on_parabola`: the secant step lands on the vertex of
  a parabola; Quickprop reaches the minimum of a 1-D parabola in one secant step
  (``parabola(a, w*)`` is Chapter 2's
  :func:`~course.experiments.ch02_gradient_descent.one_d_quadratic`).
- :func:`gaussian_well`, :func:`quickprop_growth_sweep`: on the non-convex
  :math:`L(w) = 1 - e^{-w^2/2}` Quickprop's growth-limited jumps throw it into the flat tails
  once the growth limit :math:`\mu` is large.

References: M. Riedmiller and H. Braun (1993), "A direct adaptive method for faster
backpropagation learning: the RPROP algorithm"; C. Igel and M. Hüsken (2000), "Improving the
Rprop learning algorithm"; S. E. Fahlman (1988), "An empirical study of learning speed in
back-propagation networks", CMU-CS-88-162.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from course.experiments.ch02_gradient_descent import one_d_quadratic as parabola
from minidl import data, optim
from minidl.data.problems import Problem
from minidl.data.problems import (
    rotated_quadratic as rotated_quadratic,
)  # the pages' rq.rotated_quadratic
from minidl.minimize import minimize
from minidl.optim.base import Rule


def trajectory(rule: Rule, problem: Problem, w0: ArrayLike, steps: int) -> np.ndarray:
    """The iterates ``w_0, ..., w_steps`` (shape ``(steps + 1, d)``) of ``rule`` on ``problem``,
    by :func:`minidl.minimize.minimize` (which passes the loss to iRprop+). A run that diverges
    ends at its last finite iterate."""
    return minimize(rule, problem, w0, steps).path


# ----- a badly scaled quadratic ---------------------------------------------------------------

START = (3.0, 2.0)
"""The starting point of the badly scaled quadratic experiments."""

TOLERANCE = 1e-8
"""Converged means :math:`L(w_t) - L(w^*) < 10^{-8}`."""


def badly_scaled_quadratic(scale: float = 1000.0) -> data.Quadratic:
    r""":math:`L(w) = \tfrac12 (w_1^2 + s\, w_2^2)`: curvature 1 along :math:`w_1`, ``scale``
    along :math:`w_2`, axes aligned with the coordinates; condition number :math:`\kappa = s`."""
    return data.quadratic([1.0, scale])


def steps_to_reach(problem: Problem, path: np.ndarray, tol: float = TOLERANCE) -> int | None:
    """The first step ``t`` with ``L(w_t) - L* < tol``, or ``None`` if the path never gets there."""
    with np.errstate(invalid="ignore", over="ignore"):
        gaps = problem.value(path) - problem.minimum
    below = np.flatnonzero(gaps < tol)
    return int(below[0]) if below.size else None


def gradient_descent_sweep(
    problem: Problem,
    rates: ArrayLike,
    *,
    w0: ArrayLike = START,
    max_steps: int = 20_000,
    tol: float = TOLERANCE,
) -> dict[float, int | None]:
    r"""Steps gradient descent needs at each fixed rate to get within ``tol`` of the minimum.

    ``None``: not within ``max_steps`` (too small a rate) or diverged (a rate beyond
    :math:`2/\lambda_\max`).
    """

    def reached(w: np.ndarray) -> bool:
        return problem.value(w) - problem.minimum < tol

    sweep = {}
    for rate in np.asarray(rates, dtype=np.float64):
        run = minimize(optim.gradient_descent(rate), problem, w0, max_steps, until=reached)
        sweep[float(rate)] = run.steps if run.converged else None
    return sweep


def best_gradient_descent(sweep: dict[float, int | None]) -> tuple[float, int | None]:
    """The rate of a sweep that needs the fewest steps, and that number."""
    finite = {rate: n for rate, n in sweep.items() if n is not None}
    if not finite:
        return float("nan"), None
    rate = min(finite, key=finite.get)
    return rate, finite[rate]


# ----- the variants and their hyperparameters --------------------------------------------------

VALLEY_START = (-4.0, 3.0)
"""The starting point on :func:`tilted_valley`."""


def tilted_valley() -> data.Quadratic:
    r"""A valley that is not aligned with the axes: curvatures 1 and 20, turned by 0.5 rad, so
    each coordinate's derivative mixes both directions and its sign changes now and then."""
    return data.quadratic([1.0, 20.0], angle=0.5)


def variant_paths(
    problem: Problem, *, w0: ArrayLike = VALLEY_START, steps: int = 100, lr: float = 0.1
) -> dict[str, np.ndarray]:
    """The trajectories of Rprop+, Rprop-, iRprop+, iRprop- and the simplified Rprop."""
    rules: dict[str, Rule] = {v: optim.rprop(lr=lr, variant=v) for v in VARIANT_NAMES}
    rules["simplified"] = optim.simple_rprop(lr=lr)
    return {name: trajectory(rule, problem, w0, steps) for name, rule in rules.items()}


VARIANT_NAMES = ("rprop+", "rprop-", "irprop+", "irprop-")


# ----- scaling the loss ----------------------------------------------------------------------


def scaled(problem: Problem, factor: float) -> Problem:
    """The problem ``factor * L``: same minimizer, every gradient ``factor`` times larger."""
    return Problem(
        f"{factor:g} x {problem.name}",
        problem.dim,
        value=lambda w: factor * problem.value(w),
        grad=lambda w: factor * problem.grad(w),
        hessian=lambda w: factor * problem.hessian(w),
        minimizer=problem.minimizer,
        minimum=factor * problem.minimum,
    )


def scaling_experiment(
    rule: Rule, problem: Problem, *, factor: float = 1000.0, w0: ArrayLike = START, steps: int = 60
) -> tuple[np.ndarray, np.ndarray]:
    """The trajectories of ``rule`` on ``L`` and on ``factor * L`` from the same start."""
    return (
        trajectory(rule, problem, w0, steps),
        trajectory(rule, scaled(problem, factor), w0, steps),
    )


# ----- Quickprop on a parabola -----------------------------------------------------------------


def secant_vertex(w_prev: float, g_prev: float, w: float, g: float) -> float:
    r"""Where the line through the slopes :math:`(w_{t-1}, g_{t-1})` and :math:`(w_t, g_t)` is
    zero: the vertex of the parabola with those slopes,

    .. math::
        w_t + \Delta w_t, \qquad \Delta w_t = \frac{g_t}{g_{t-1} - g_t}\,(w_t - w_{t-1}).
    """
    return w + g / (g_prev - g) * (w - w_prev)


def quickprop_on_parabola(
    curvature: float = 4.0,
    minimizer: float = 0.7,
    *,
    w0: float = 3.0,
    lr: float = 0.375,
    max_growth: float = 1.75,
    steps: int = 4,
) -> np.ndarray:
    """Quickprop's iterates ``w_0, ..., w_steps`` on ``parabola(curvature, minimizer)`` (a 1-D
    array)."""
    rule = optim.quickprop(lr=lr, max_growth=max_growth)
    return trajectory(rule, parabola(curvature, minimizer), [w0], steps)[:, 0]


# ----- Quickprop on a non-convex well ---------------------------------------------------------


def gaussian_well() -> Problem:
    r""":math:`L(w) = 1 - e^{-w^2/2}`: one minimum at 0, convex only for :math:`|w| < 1`.

    .. math::
        L'(w) = w\, e^{-w^2/2}, \qquad L''(w) = (1 - w^2)\, e^{-w^2/2}.

    Outside :math:`|w| < 1` the curvature is negative: going downhill towards 0 the slope
    *grows*, and beyond :math:`|w| \approx 3` the function is almost flat.
    """

    def value(w: np.ndarray) -> np.ndarray:
        return 1.0 - np.exp(-0.5 * w[..., 0] ** 2)

    def grad(w: np.ndarray) -> np.ndarray:
        return w * np.exp(-0.5 * w**2)

    def hessian(w: np.ndarray) -> np.ndarray:
        return np.array([[(1.0 - w[0] ** 2) * np.exp(-0.5 * w[0] ** 2)]])

    return Problem("gaussian_well", 1, value, grad, hessian, minimizer=[0.0], minimum=0.0)


WELL_LR = 0.1
"""Quickprop's gradient-descent rate :math:`\\epsilon` in the non-convex experiments."""


def quickprop_on_well(
    max_growth: float, *, w0: float = 2.5, steps: int = 100, lr: float = WELL_LR
) -> np.ndarray:
    """Quickprop's iterates ``w_0, ..., w_steps`` on :func:`gaussian_well` (a 1-D array)."""
    rule = optim.quickprop(lr=lr, max_growth=max_growth)
    return trajectory(rule, gaussian_well(), [w0], steps)[:, 0]


def quickprop_growth_sweep(
    growths: Sequence[float], starts: Sequence[float], *, steps: int = 100
) -> dict[tuple[float, float], float]:
    """``(growth limit, start) -> L(w_steps)`` of Quickprop on :func:`gaussian_well`."""
    well = gaussian_well()
    return {
        (mu, w0): float(well.value([quickprop_on_well(mu, w0=w0, steps=steps)[-1]]))
        for mu in growths
        for w0 in starts
    }
