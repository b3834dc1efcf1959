r"""Chapter 2 (Gradient descent and convergence): the experiments behind the chapter's claims.

- :func:`gd_path`: the iterates of plain gradient descent (:func:`minidl.optim.gradient_descent`)
  on a :class:`minidl.data.Problem`, run by :func:`minidl.minimize.minimize`.
- :func:`regime`, :func:`three_regimes`: on a 1-D quadratic :math:`\tfrac12 a w^2` the error
  :math:`e_t = w_t - w^*` obeys :math:`e_{t+1} = (1 - \eta a) e_t`: monotone for
  :math:`\eta < \eta_{\mathrm{opt}} = 1/a`, oscillating and convergent between
  :math:`\eta_{\mathrm{opt}}` and :math:`2\eta_{\mathrm{opt}}`, divergent beyond.
- :func:`eigen_coordinates`: on a :func:`~minidl.data.rotated_quadratic` each eigen-coordinate
  of the error follows its own 1-D recursion with factor :math:`1 - \eta\lambda_i`.
- :func:`steps_to_tolerance`: the steps a rule needs to shrink the error by a factor.
- :func:`iterations_to_tolerance`, :func:`predicted_iterations`: at the best single rate the
  slowest contraction is :math:`(\kappa - 1)/(\kappa + 1)`, so the iteration count grows
  about linearly with the condition number :math:`\kappa`.
- :func:`rate_comparison`: a linear rate on a strongly convex quadratic against the sublinear
  rates on two smooth convex functions that are not strongly convex: :math:`w^4`
  (:math:`\Theta(1/k^2)`) and the logistic loss :math:`\log(1 + e^{-w})` (:math:`\Theta(1/k)`).
- :func:`saddle_escape_steps`: near a saddle gradient descent stalls for a number of steps that
  grows like :math:`\log(1/x_0)` with the distance :math:`x_0` of the start from the stable
  direction.
- :func:`minibatch_gradient_variance`: the variance of the mini-batch gradient against
  :math:`|B|`, drawn as the training loop draws batches (without replacement), with the
  finite-population correction :math:`(N - |B|)/(N - 1)`.
- :func:`per_epoch`, :func:`schedule_comparison`: the learning-rate schedules of the lectures,
  decayed once per epoch, on a mini-batch training run on the digits.
- :func:`shallow_and_deep`, :func:`escape_runs`: a rate above :math:`2\eta_{\mathrm{opt}}` of a
  narrow local minimum throws the iterate out of it; kept above :math:`2\eta_{\mathrm{opt}}` of
  every minimum it never settles, decayed it settles in the deep one.

References: J. Nocedal and S. J. Wright, *Numerical Optimization* (2006), Sec. 3.3;
Y. Nesterov, *Introductory Lectures on Convex Optimization* (2004), Sec. 2.1; L. Bottou,
F. E. Curtis and J. Nocedal, "Optimization methods for large-scale machine learning", *SIAM
Review* 60(2), 2018, Sec. 4 and 5.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from minidl import data, layers, losses, optim
from minidl.data import Problem, Quadratic, rotated_quadratic
from minidl.minimize import minimize
from minidl.optim import Rule, schedules
from minidl.train import History, train

# ----- gradient descent on a problem -----------------------------------------------------------


def gd_path(problem: Problem, w0: np.ndarray, lr: float, steps: int) -> np.ndarray:
    r"""The iterates :math:`w_0, \ldots, w_T` of :math:`w_{t+1} = w_t - \eta \nabla L(w_t)`,
    shape ``(steps + 1, d)``, by :func:`minidl.minimize.minimize`: a run that diverges ends at
    its last finite iterate."""
    return minimize(optim.gradient_descent(lr), problem, w0, steps).path


def regime(errors: np.ndarray) -> str:
    r"""``"monotone"``, ``"oscillating"`` or ``"divergent"`` for a 1-D error sequence
    :math:`e_0, e_1, \ldots` of a linear recursion: divergent if :math:`|e_t|` grows, else
    oscillating if the sign alternates, else monotone."""
    errors = np.asarray(errors, dtype=np.float64).ravel()
    nonzero = errors[errors != 0]
    if np.abs(nonzero[-1]) > np.abs(nonzero[0]):
        return "divergent"
    if np.all(np.sign(nonzero[1:]) == -np.sign(nonzero[:-1])):
        return "oscillating"
    return "monotone"


def one_d_quadratic(a: float, minimizer: float = 0.0) -> Quadratic:
    r""":math:`L(w) = \tfrac12 a (w - w^*)^2` as a :class:`~minidl.data.Quadratic`, minimum 0,
    :math:`\eta_{\mathrm{opt}} = 1/a`."""
    return data.Quadratic([[a]], [-a * minimizer], 0.5 * a * minimizer**2)


def three_regimes(
    a: float = 2.0,
    *,
    multiples: tuple[float, ...] = (0.75, 1.5, 2.1),
    w0: float = 1.5,
    steps: int = 12,
) -> dict[float, np.ndarray]:
    r"""Gradient descent on :math:`\tfrac12 a w^2` at :math:`\eta = c\,\eta_{\mathrm{opt}}` for
    each multiple :math:`c`; ``{c: iterates of shape (steps + 1,)}``."""
    problem = one_d_quadratic(a)
    return {c: gd_path(problem, [w0], c * problem.optimal_lr, steps)[:, 0] for c in multiples}


def eigen_coordinates(problem: Quadratic, path: np.ndarray) -> np.ndarray:
    r"""The error :math:`w_t - w^*` in the eigenbasis of :math:`A`: column ``i`` is
    :math:`q_i^\top (w_t - w^*)`, which gradient descent multiplies by :math:`1 - \eta\lambda_i`
    per step."""
    return (np.asarray(path) - problem.minimizer) @ problem.eigenvectors


# ----- condition number ------------------------------------------------------------------------


def steps_to_tolerance(
    rule: Rule, problem: Problem, w0: ArrayLike, *, tol: float = 1e-6, max_steps: int = 100_000
) -> int | None:
    r"""The first :math:`t \le` ``max_steps`` with :math:`\|w_t - w^*\| \le \text{tol}\,
    \|w_0 - w^*\|` in ``rule``'s run on ``problem`` from ``w0``; ``None`` if there is none."""
    target = tol * np.linalg.norm(np.asarray(w0, dtype=np.float64) - problem.minimizer)
    run = minimize(
        rule,
        problem,
        w0,
        max_steps,
        until=lambda w: np.linalg.norm(w - problem.minimizer) <= target,
    )
    return run.steps if run.converged else None


def iterations_to_tolerance(
    kappa: float,
    *,
    tol: float = 1e-6,
    multiple: float = 1.0,
    angle: float = np.pi / 6,
    max_steps: int = 100_000,
) -> int:
    r""":func:`steps_to_tolerance` of gradient descent at :math:`\eta = c\,\eta_{\mathrm{opt}}`
    on :func:`~minidl.data.rotated_quadratic`, started at :math:`w^* + q_1 + q_2` (equal error
    along both eigenvectors)."""
    problem = rotated_quadratic(kappa, angle)
    w0 = problem.minimizer + problem.eigenvectors.sum(axis=1)
    rule = optim.gradient_descent(multiple * problem.optimal_lr)
    steps = steps_to_tolerance(rule, problem, w0, tol=tol, max_steps=max_steps)
    if steps is None:
        raise RuntimeError(f"iterations_to_tolerance: no convergence in {max_steps} steps")
    return steps


def predicted_iterations(kappa: float, tol: float = 1e-6) -> float:
    r"""From the contraction :math:`\rho = (\kappa - 1)/(\kappa + 1)` of the slowest direction
    (both directions contract by :math:`\rho` at :math:`\eta_{\mathrm{opt}}`), the count
    :math:`\lceil \log \text{tol} / \log \rho \rceil \approx \tfrac{\kappa}{2} \log(1/\text{tol})`;
    0 steps for :math:`\kappa = 1` would mean one step lands on the minimum."""
    if kappa == 1.0:
        return 1.0
    rho = (kappa - 1) / (kappa + 1)
    return float(np.ceil(np.log(tol) / np.log(rho)))


# ----- linear against sublinear rates ----------------------------------------------------------


@dataclass(frozen=True)
class RateRun:
    """Gradient descent on one 1-D function: the gaps :math:`L(w_k) - L^*`, ``k = 0..K``."""

    name: str
    lr: float
    smoothness: float
    gaps: np.ndarray


def _logistic_gaps(lr: float, w0: float, steps: int) -> np.ndarray:
    r"""GD on :math:`\log(1 + e^{-w})`, whose infimum 0 is approached as :math:`w \to \infty`;
    :math:`L'(w) = -\sigma(-w)`."""
    w, gaps = w0, []
    for _ in range(steps + 1):
        gaps.append(np.logaddexp(0.0, -w))
        w = w + lr * layers.sigmoid(np.array(-w))
    return np.array(gaps)


def rate_comparison(*, lr: float = 0.5, steps: int = 1000) -> dict[str, RateRun]:
    r"""The three runs of the rates figure, all at the same :math:`\eta`:

    - ``"quadratic"``: :math:`0.2 w^2` (:math:`\lambda = 0.4`, strongly convex) from
      :math:`w_0 = 1`: the gap shrinks by :math:`(1 - \eta\lambda)^2` per step;
    - ``"quartic"``: :math:`w^4` from :math:`w_0 = 0.4`, smooth with constant
      :math:`M = 12 w_0^2` on its sublevel set, not strongly convex: the gap falls as
      :math:`1/(64 \eta^2 k^2)`;
    - ``"logistic"``: :math:`\log(1 + e^{-w})` from :math:`w_0 = 0`, smooth with
      :math:`M = 1/4`, no minimizer: the gap falls as :math:`1/(\eta k)`.

    Each satisfies :math:`\eta \le 1/M`, the step of the :math:`O(1/k)` bound (Nesterov 2004,
    Thm. 2.1.14).
    """
    quadratic = data.quadratic([0.4])
    quartic = data.quartic(1)
    return {
        "quadratic": RateRun(
            "quadratic", lr, 0.4, quadratic.value(gd_path(quadratic, [1.0], lr, steps))
        ),
        "quartic": RateRun(
            "quartic", lr, 12 * 0.4**2, quartic.value(gd_path(quartic, [0.4], lr, steps))
        ),
        "logistic": RateRun("logistic", lr, 0.25, _logistic_gaps(lr, 0.0, steps)),
    }


def loglog_slope(values: np.ndarray, start: int, stop: int) -> float:
    r"""Least-squares slope of :math:`\log v_k` against :math:`\log k` for ``k`` in
    ``[start, stop)``: the exponent :math:`p` of :math:`v_k \propto k^p`."""
    k = np.arange(start, stop)
    return float(np.polyfit(np.log(k), np.log(values[start:stop]), 1)[0])


def saddle_escape_steps(x0: float, *, lr: float = 0.1, y0: float = 1.0) -> int:
    r"""Steps of gradient descent on :func:`minidl.data.double_well` from :math:`(x_0, y_0)`
    until :math:`L < -0.2` (the minima have :math:`L = -1/4`, the saddle at the origin 0).

    The :math:`y`-error vanishes fast, then near the saddle :math:`x_{t+1} \approx (1 + \eta)
    x_t`: the escape takes about :math:`\log(1/x_0)/\log(1 + \eta)` steps, longer the closer
    the start lies to the saddle's stable direction :math:`x = 0`.
    """
    problem = data.double_well()
    path = gd_path(problem, [x0, y0], lr, 10_000)
    below = np.flatnonzero(problem.value(path) < -0.2)
    if below.size == 0:
        raise RuntimeError(f"saddle_escape_steps: no escape from x0={x0} in 10000 steps")
    return int(below[0])


# ----- mini-batch gradient variance ------------------------------------------------------------


@dataclass(frozen=True)
class VarianceResult:
    r"""Measured and predicted :math:`\mathbb{E}\|g_B - \nabla L\|^2` per batch size."""

    batch_sizes: np.ndarray
    measured: np.ndarray
    predicted: np.ndarray
    corrected: np.ndarray
    per_example_variance: float
    n: int

    @property
    def slope(self) -> float:
        """Log-log slope of the corrected variance against the batch size (theory: -1)."""
        return float(np.polyfit(np.log(self.batch_sizes), np.log(self.corrected), 1)[0])


def regression_problem(n: int = 512, dim: int = 4, *, seed: int = 0):
    """A linear model at a fixed, wrong weight vector and its least-squares data."""
    rng = np.random.default_rng(seed)
    sample = data.linear_regression(n, dim, rng=rng, noise=0.5)
    model = layers.Sequential(layers.Linear(dim, 1, rng=rng))
    return model, losses.MSE(), sample.X, sample.y[:, None]


def model_gradient(model, loss, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The gradient of the mean loss on ``(X, y)`` with respect to all parameters, flattened."""
    loss.forward(model.forward(X), y)
    model.backward(loss.backward(), input_grad=False)
    return np.concatenate([p.grad.ravel() for p in model.parameters()])


def minibatch_gradient_variance(
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128),
    *,
    trials: int = 400,
    seed: int = 0,
) -> VarianceResult:
    r"""Measure :math:`\mathbb{E}\|g_B - \nabla L\|^2` for mini-batches drawn as the training
    loop draws them: the first batch of :func:`minidl.data.batches` on a fresh permutation, a
    uniform sample *without replacement*. With :math:`\sigma^2 = \frac1N \sum_n \|\nabla\ell_n -
    \nabla L\|^2` the prediction is (sampling theory, e.g. Bottou et al. 2018, Sec. 5.2)

    .. math::
        \mathbb{E}\|g_B - \nabla L\|^2 = \frac{\sigma^2}{|B|}\,\frac{N - |B|}{N - 1},

    and ``corrected`` divides the measurement by the finite-population factor, leaving
    :math:`\sigma^2 / |B|`.
    """
    model, loss, X, y = regression_problem(seed=seed)
    n = len(X)
    full = model_gradient(model, loss, X, y)
    per_example = np.array(
        [model_gradient(model, loss, X[i : i + 1], y[i : i + 1]) for i in range(n)]
    )
    sigma2 = float(np.mean(np.sum((per_example - full) ** 2, axis=1)))
    rng = np.random.default_rng(seed + 1)
    measured = []
    for size in batch_sizes:
        squared = []
        for _ in range(trials):
            X_batch, y_batch = next(data.batches(X, y, size, rng=rng))
            squared.append(np.sum((model_gradient(model, loss, X_batch, y_batch) - full) ** 2))
        measured.append(np.mean(squared))
    sizes = np.array(batch_sizes, dtype=np.float64)
    measured = np.array(measured)
    correction = (n - sizes) / (n - 1)
    return VarianceResult(
        batch_sizes=sizes,
        measured=measured,
        predicted=sigma2 / sizes * correction,
        corrected=measured / correction,
        per_example_variance=sigma2,
        n=n,
    )


def minibatch_gradient_cloud(batch_size: int, *, samples: int = 200, seed: int = 0) -> np.ndarray:
    r"""``samples`` mini-batch gradients :math:`g_B` of a one-input linear model
    :math:`\hat y = W x + b` (two parameters, so each gradient is a point in the plane), drawn
    without replacement, and the full gradient as the last row."""
    model, loss, X, y = regression_problem(n=256, dim=1, seed=seed)
    rng = np.random.default_rng(seed + 2)
    points = [
        model_gradient(model, loss, *next(data.batches(X, y, batch_size, rng=rng)))
        for _ in range(samples)
    ]
    return np.array([*points, model_gradient(model, loss, X, y)])


# ----- learning-rate schedules on digits -------------------------------------------------------


def per_epoch(schedule: Callable[[int], float], steps_per_epoch: int) -> Callable[[int], float]:
    r"""A per-step schedule for :func:`minidl.train.train` that holds ``schedule(e)`` during
    epoch :math:`e`: :math:`\eta_k = \text{schedule}(\lfloor k / n_B \rfloor)` with :math:`n_B`
    updates per epoch."""
    return lambda k: schedule(k // steps_per_epoch)


@functools.cache
def _digits_split(seed: int) -> data.Split:
    raw = data.digits()
    split = data.train_val_test_split(raw.X / 16.0, raw.y, rng=np.random.default_rng(seed))
    return split


def lecture_schedules(lr: float, epochs: int) -> dict[str, Callable[[int], float]]:
    r"""The lectures' schedules, indexed by the epoch :math:`e`, all from :math:`\eta_0`:
    constant, linear :math:`\eta_0/(e+1)`, quadratic :math:`\eta_0/(e+1)^2`, exponential
    :math:`\eta_0 e^{-\alpha e}` with :math:`e^{-\alpha\,\text{epochs}} = 0.05`, step decay
    (halved every ``epochs // 4`` epochs) and reduce-on-plateau (halved after 2 epochs without
    progress of the validation loss)."""
    return {
        "constant": schedules.constant(lr),
        "linear": schedules.linear_decay(lr),
        "quadratic": schedules.quadratic_decay(lr),
        "exponential": schedules.exponential_decay(lr, np.log(20.0) / epochs),
        "step": schedules.step_decay(lr, 0.5, max(epochs // 4, 1)),
        "plateau": schedules.ReduceOnPlateau(lr, factor=0.5, patience=2),
    }


def schedule_comparison(
    *, lr: float = 1.0, epochs: int = 15, batch_size: int = 32, seed: int = 0
) -> dict[str, History]:
    r"""Train the same 64-32-10 ReLU network on the digits with mini-batch gradient descent at
    initial rate :math:`\eta_0` under each of :func:`lecture_schedules`, decayed per epoch, from
    the same initial weights and the same batch order; ``{schedule name: History}``."""
    split = _digits_split(seed)
    steps_per_epoch = data.num_batches(len(split.train.y), batch_size)
    histories = {}
    for name, schedule in lecture_schedules(lr, epochs).items():
        model = layers.mlp([64, 32, 10], rng=np.random.default_rng(seed))
        step_schedule = (
            schedule if hasattr(schedule, "observe") else per_epoch(schedule, steps_per_epoch)
        )
        histories[name] = train(
            model,
            losses.SoftmaxCrossEntropy(),
            optim.gradient_descent(lr),
            split.train,
            val_data=split.val,
            epochs=epochs,
            batch_size=batch_size,
            rng=np.random.default_rng(seed + 1),
            schedule=step_schedule,
            track_norms=False,
        )
    return histories


# ----- a large rate escapes a narrow local minimum; a decayed one then settles ------------------

ESCAPE_CURVATURE, ESCAPE_DEPTH, ESCAPE_WIDTH, ESCAPE_CENTRE = 2.0, 1.5, 0.1, 2.0


def shallow_and_deep() -> Problem:
    r"""A 1-D loss with a narrow, shallow local minimum near 0 and a wide, deep one at 2,

    .. math::
        L(w) = \tfrac{k}{2} (w - 2)^2 - a\, e^{-w^2 / (2 s^2)}, \qquad k = 2,\ a = 1.5,\ s = 0.1 .

    The Gaussian dent makes a local minimum at :math:`w \approx 0.027` (:math:`L \approx 2.45`)
    of curvature :math:`\approx 136`, so :math:`2\eta_{\mathrm{opt}} \approx 0.015` there; the
    global minimum :math:`w^* = 2` (:math:`L = 0` up to :math:`e^{-200}`) has curvature
    :math:`k = 2`, so :math:`2\eta_{\mathrm{opt}} = 1`.
    """
    k, a, s, c = ESCAPE_CURVATURE, ESCAPE_DEPTH, ESCAPE_WIDTH, ESCAPE_CENTRE

    def dent(x):
        return a * np.exp(-(x**2) / (2 * s**2))

    return Problem(
        "shallow_and_deep",
        1,
        value=lambda w: k / 2 * (w[..., 0] - c) ** 2 - dent(w[..., 0]),
        grad=lambda w: (k * (w[..., 0] - c) + w[..., 0] / s**2 * dent(w[..., 0]))[..., None],
        hessian=lambda w: np.array([[k + dent(w[0]) / s**2 * (1 - w[0] ** 2 / s**2)]]),
        minimizer=[c],
        minimum=0.0,
    )


def local_minimum(problem: Problem, w0: float, *, lr: float = 5e-3, steps: int = 400) -> float:
    """The minimum gradient descent with a tiny rate reaches from ``w0`` (1-D)."""
    return float(gd_path(problem, [w0], lr, steps)[-1, 0])


def escape_runs(steps: int = 200, *, decay: float = 0.05) -> dict[str, np.ndarray]:
    r"""Gradient descent on :func:`shallow_and_deep` from just beside its shallow minimum, with
    :math:`\eta = 0.01` (below that minimum's :math:`2\eta_{\mathrm{opt}}`), with a constant
    :math:`\eta = 1.2` (above :math:`2\eta_{\mathrm{opt}}` of both minima) and with
    :math:`\eta_t = 1.2\, e^{-\alpha t}`, :math:`\alpha` = ``decay``; ``{name: w_0..w_T}``.
    A diverging run stops once :math:`|w| > 10^6`."""
    problem = shallow_and_deep()
    start = local_minimum(problem, 0.0) + 1e-3
    rates = {
        "small": lambda t: 0.01,
        "large": lambda t: 1.2,
        "large, decayed": lambda t: 1.2 * np.exp(-decay * t),
    }
    runs = {}
    for name, rate in rates.items():
        w, path = start, [start]
        for t in range(steps):
            w = w - rate(t) * float(problem.grad([w])[0])
            path.append(w)
            if abs(w) > 1e6:
                break
        runs[name] = np.array(path)
    return runs
