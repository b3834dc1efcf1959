r"""Chapter 5 (Momentum and Nesterov): the experiments behind the chapter's claims.

- :func:`ravine`, :func:`run`: the 2-D ravine :math:`L(w) = \tfrac12(\lambda_1 w_1^2 +
  \lambda_2 w_2^2)` and the iterates of any :class:`minidl.optim.Rule` on a problem
  (:func:`minidl.minimize.minimize`).
- :func:`ravine_directions`: how far gradient descent, momentum and Nesterov get *along* the
  ravine and how much they zig-zag *across* it (:func:`directions` measures one path).
- :func:`iteration_matrix`, :func:`convergence_rate`, :func:`rate_map`: the heavy-ball and
  Nesterov iterations on a quadratic, one :math:`2 \times 2` matrix per eigenvalue, and the
  largest eigenvalue modulus over the spectrum (Polyak 1964; Lessard, Recht & Packard 2016).
- :func:`optimal_heavy_ball`, :func:`optimal_nesterov`: the best :math:`(\eta, \beta)` of each
  method on a quadratic with eigenvalues in :math:`[\lambda_\min, \lambda_\max]`.
- :func:`measured_rate`: what a run actually does.
- :func:`nesterov_vs_momentum`: iterations of both methods with the same :math:`(\eta, \beta)` on
  an ill-conditioned quadratic.
- :func:`digits_race`: the lectures' mini-batch training loop with each method on the digits.

References: B. T. Polyak (1964), "Some methods of speeding up the convergence of iteration
methods"; Y. Nesterov (1983), "A method for solving the convex programming problem with
convergence rate O(1/k^2)"; I. Sutskever, J. Martens, G. Dahl, G. Hinton (2013), "On the
importance of initialization and momentum in deep learning"; L. Lessard, B. Recht, A. Packard
(2016), "Analysis and design of optimization algorithms via integral quadratic constraints";
G. Goh (2017), "Why momentum really works", Distill.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from course.experiments.ch02_gradient_descent import steps_to_tolerance
from minidl import data, layers, losses, optim, train
from minidl.data.problems import Problem, Quadratic
from minidl.minimize import minimize

Method = Literal["momentum", "nesterov"]

RAVINE_EIGENVALUES = (1.0, 50.0)
"""Curvatures along (:math:`w_1`) and across (:math:`w_2`) the ravine: :math:`\\kappa = 50`."""

RAVINE_START = (-10.0, 1.0)
"""Start far along the ravine's floor and a little up one of its walls."""


def ravine() -> Quadratic:
    r"""The ravine :math:`L(w) = \tfrac12 (w_1^2 + 50 w_2^2)`: gentle along :math:`w_1`, steep
    across :math:`w_2`, minimum at the origin."""
    problem = data.quadratic(list(RAVINE_EIGENVALUES))
    problem.name = "ravine"
    return problem


def run(rule: optim.Rule, problem: Problem, w0: ArrayLike, steps: int) -> np.ndarray:
    """The iterates ``w_0, ..., w_steps`` (shape ``(steps + 1, d)``) of ``rule`` on ``problem``,
    by :func:`minidl.minimize.minimize`; a run that diverges ends at its last finite iterate.

    The rule sees the gradient at its own iterate; for :func:`minidl.optim.nesterov` that
    iterate is the look-ahead point (see its docstring).
    """
    return minimize(rule, problem, w0, steps).path


# ----- along and across the ravine -------------------------------------------------------------


@dataclass(frozen=True)
class Directions:
    """What a path does along the ravine's floor and across its walls.

    ``along_left``: the fraction of the initial distance to the minimum along the floor (the
    eigenvector of :math:`\\lambda_\\min`) still to go at the end. ``across_path``: the distance
    travelled across (along the eigenvector of :math:`\\lambda_\\max`), summed over all steps; a
    path that goes straight down the wall travels just the initial height. ``reversals``: how
    often the step across changes sign, the zig-zag count.
    """

    along_left: float
    across_path: float
    reversals: int


def directions(path: np.ndarray, problem: Quadratic) -> Directions:
    """Measure ``path`` in the eigenbasis of ``problem`` (floor = first, wall = last axis)."""
    coords = (np.asarray(path) - problem.minimizer) @ problem.eigenvectors
    along, across = coords[:, 0], coords[:, -1]
    steps_across = np.diff(across)
    signs = np.sign(steps_across[np.abs(steps_across) > 1e-15])
    return Directions(
        along_left=float(abs(along[-1]) / abs(along[0])),
        across_path=float(np.abs(steps_across).sum()),
        reversals=int(np.sum(signs[1:] != signs[:-1])),
    )


def ravine_directions(
    lr: float = 0.0038, beta: float = 0.9, steps: int = 60
) -> dict[str, Directions]:
    r"""Four runs from :data:`RAVINE_START`: gradient descent with :math:`\eta` and with the
    momentum's long-run rate :math:`\eta/(1-\beta)`, momentum and Nesterov with
    :math:`(\eta, \beta)`. The default :math:`\eta = 0.19/\lambda_\max` makes
    :math:`\eta/(1-\beta) = 1.9/\lambda_\max`, just inside gradient descent's limit."""
    problem = ravine()
    rules = {
        "gradient descent": optim.gradient_descent(lr),
        "gradient descent, rate / (1 - beta)": optim.gradient_descent(lr / (1.0 - beta)),
        "momentum": optim.momentum(lr, beta),
        "nesterov": optim.nesterov(lr, beta),
    }
    return {
        name: directions(run(rule, problem, RAVINE_START, steps), problem)
        for name, rule in rules.items()
    }


# ----- the iteration matrix and the rate map ---------------------------------------------------


def iteration_matrix(lr: ArrayLike, beta: ArrayLike, eigenvalue: ArrayLike, method: Method):
    r"""The matrix :math:`T` with :math:`(e_{t+1}, e_t) = T (e_t, e_{t-1})` along one eigenvector.

    With :math:`x = \eta\lambda`, heavy ball :math:`e_{t+1} = e_t - x e_t + \beta(e_t - e_{t-1})`
    and Nesterov :math:`e_{t+1} = (1 - x)\big(e_t + \beta(e_t - e_{t-1})\big)` give

    .. math::
        T_\text{HB} = \begin{pmatrix} 1 + \beta - x & -\beta \\ 1 & 0 \end{pmatrix}, \qquad
        T_\text{NAG} = \begin{pmatrix} (1 + \beta)(1 - x) & -\beta(1 - x) \\ 1 & 0 \end{pmatrix}.

    Arguments broadcast; the result has shape ``broadcast_shape + (2, 2)``.
    """
    lr, beta, eigenvalue = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (lr, beta, eigenvalue))
    )
    x = lr * eigenvalue
    if method == "momentum":
        top = np.stack([1.0 + beta - x, -beta], axis=-1)
    elif method == "nesterov":
        top = np.stack([(1.0 + beta) * (1.0 - x), -beta * (1.0 - x)], axis=-1)
    else:
        raise ValueError(
            f"iteration_matrix: method must be 'momentum' or 'nesterov', got {method!r}"
        )
    bottom = np.stack([np.ones_like(x), np.zeros_like(x)], axis=-1)
    return np.stack([top, bottom], axis=-2)


def convergence_rate(
    lr: ArrayLike, beta: ArrayLike, eigenvalues: ArrayLike, method: Method
) -> np.ndarray:
    r""":math:`\rho(\eta, \beta) = \max_i \max |\operatorname{eig} T(\eta, \beta, \lambda_i)|`.

    The error shrinks like :math:`\rho^t`: below 1 the method converges, above 1 it diverges.
    ``lr`` and ``beta`` broadcast together; the maximum runs over ``eigenvalues``.
    """
    lr, beta = np.broadcast_arrays(np.asarray(lr, float), np.asarray(beta, float))
    lams = np.asarray(eigenvalues, dtype=np.float64).reshape((-1,) + (1,) * lr.ndim)
    moduli = np.abs(np.linalg.eigvals(iteration_matrix(lr, beta, lams, method)))
    return moduli.max(axis=(0, -1))


def rate_map(eigenvalues: ArrayLike, lrs: ArrayLike, betas: ArrayLike, method: Method):
    """:func:`convergence_rate` on the grid ``betas`` (rows) × ``lrs`` (columns)."""
    L, B = np.meshgrid(np.asarray(lrs, float), np.asarray(betas, float))
    return convergence_rate(L, B, eigenvalues, method)


def optimal_heavy_ball(lambda_min: float, lambda_max: float) -> tuple[float, float, float]:
    r"""Polyak's optimum :math:`\eta^* = \big(2/(\sqrt{\lambda_\max} + \sqrt{\lambda_\min})\big)^2`,
    :math:`\beta^* = \big((\sqrt\kappa - 1)/(\sqrt\kappa + 1)\big)^2` and the rate
    :math:`\sqrt{\beta^*}`."""
    root_kappa = np.sqrt(lambda_max / lambda_min)
    rate = (root_kappa - 1.0) / (root_kappa + 1.0)
    return float((2.0 / (np.sqrt(lambda_max) + np.sqrt(lambda_min))) ** 2), float(rate**2), rate


def optimal_nesterov(lambda_min: float, lambda_max: float) -> tuple[float, float, float]:
    r"""Nesterov's best tuning on a quadratic (Lessard, Recht & Packard 2016):
    :math:`\eta = 4/(3\lambda_\max + \lambda_\min)`, :math:`\beta = (\sqrt{3\kappa + 1} - 2)/
    (\sqrt{3\kappa + 1} + 2)`, rate :math:`1 - 2/\sqrt{3\kappa + 1}`."""
    root = np.sqrt(3.0 * lambda_max / lambda_min + 1.0)
    return (
        float(4.0 / (3.0 * lambda_max + lambda_min)),
        float((root - 2) / (root + 2)),
        1 - 2 / root,
    )


# ----- measured behaviour ----------------------------------------------------------------------


def measured_rate(rule: optim.Rule, problem: Quadratic, w0: ArrayLike, steps: int = 400) -> float:
    r"""The error's shrink factor per step, measured on the second half of a run.

    A spiralling error oscillates, so the rate compares the error's envelope, its largest norm
    over a window of ``steps // 8`` steps, at the end of the run and at its middle:
    :math:`\big(\max_{t \in W_T} \|e_t\| / \max_{t \in W_{T/2}} \|e_t\|\big)^{2/T}`.
    Infinite if the run diverges or its error overflows.
    """
    result = minimize(rule, problem, w0, steps)
    with np.errstate(over="ignore"):
        errors = np.linalg.norm(result.path - problem.minimizer, axis=1)
    if result.diverged or not np.all(np.isfinite(errors)):
        return np.inf
    half, window = steps // 2, max(steps // 8, 1)
    end, middle = errors[-window:].max(), errors[half - window + 1 : half + 1].max()
    return float((end / middle) ** (1.0 / (steps - half)))


MAX_STEPS = 20_000
"""The step budget of :func:`nesterov_vs_momentum`."""


def ill_conditioned_quadratic(kappa: float = 100.0, dim: int = 10, *, seed: int = 0) -> Quadratic:
    """A ``dim``-D quadratic with eigenvalues log-spaced in ``[1, kappa]``, random eigenvectors."""
    return data.quadratic(np.geomspace(1.0, kappa, dim), rng=np.random.default_rng(seed))


def nesterov_vs_momentum(
    betas: ArrayLike, *, kappa: float = 100.0, dim: int = 10, seed: int = 0, tol: float = 1e-6
) -> dict[str, np.ndarray]:
    r"""Iterations to reach ``tol`` with the same :math:`\eta = 1/\lambda_\max` and each
    :math:`\beta`, for momentum and for Nesterov, from one random start (Chapter 2's
    :func:`~course.experiments.ch02_gradient_descent.steps_to_tolerance`); :data:`MAX_STEPS`
    for a run that does not get there."""
    problem = ill_conditioned_quadratic(kappa, dim, seed=seed)
    w0 = np.random.default_rng(seed + 1).standard_normal(dim)
    lr = 1.0 / problem.eigenvalues[-1]
    counts = {}
    for method in ("momentum", "nesterov"):
        steps = [
            steps_to_tolerance(
                getattr(optim, method)(lr, beta), problem, w0, tol=tol, max_steps=MAX_STEPS
            )
            for beta in np.asarray(betas, float)
        ]
        counts[method] = np.array([MAX_STEPS if n is None else n for n in steps])
    return {"beta": np.asarray(betas, float), **counts}


# ----- the training loop on digits -------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def digits_race(lr: float = 0.02, beta: float = 0.9, epochs: int = 15, seed: int = 0):
    """Training-loss curves (one value per mini-batch step) of a 64-32-10 tanh MLP on the digits,
    trained with gradient descent, momentum and Nesterov from the same weights and batches."""
    split = data.train_val_test_split(*data.digits(), rng=np.random.default_rng(seed))
    split = data.normalize_split(split, data.MinMaxNormalizer())
    rules = {
        "gradient descent": optim.gradient_descent(lr),
        "momentum": optim.momentum(lr, beta),
        "nesterov": optim.nesterov(lr, beta),
    }
    curves = {}
    for name, rule in rules.items():
        model = layers.mlp([64, 32, 10], activation="tanh", rng=np.random.default_rng(seed))
        history = train.train(
            model,
            losses.SoftmaxCrossEntropy(),
            rule,
            split.train,
            val_data=split.val,
            epochs=epochs,
            batch_size=32,
            rng=np.random.default_rng(seed + 1),
            track_norms=False,
        )
        curves[name] = (np.array(history.train_loss), np.array(history.val_accuracy, float))
    return curves
