r"""Chapter 3 (Second-order methods): the experiments behind the chapter's claims.

- :func:`inverse_sqrt`, :func:`scaled_quadratic`: the change of variables
  :math:`v = A^{1/2} w` that turns a quadratic with Hessian :math:`A` into one with Hessian
  :math:`I`, so every direction has the same optimal rate.
- :func:`run_rule`: drive any rule of :mod:`minidl.optim` on a :class:`~minidl.data.Problem`
  (:func:`minidl.minimize.minimize`), supplying the Hessian, the loss and a ``loss_fn`` when the
  rule needs them, and counting the gradient evaluations.
- :func:`newton_one_step_errors`: Newton's method on random positive-definite quadratics.
- :func:`newton_step_size_errors`: Newton with a step size :math:`\eta`; the error shrinks by
  :math:`|1 - \eta|` per step in every direction, so it diverges past :math:`\eta = 2`.
- :func:`damped_step`, :func:`damping_sweep`: Newton's and Levenberg–Marquardt's step in the
  non-convex strip of the double well, as the damping :math:`\lambda` grows.
- :func:`hessian_cost`: memory and time of forming and solving with the Hessian of a logistic
  model of :math:`n` parameters, and :func:`growth_exponent` of each against :math:`n`.
- :func:`bfgs_update`: one BFGS update of the inverse-Hessian estimate.
- :func:`rosenbrock_race`, :func:`network_race`: L-BFGS against gradient descent.

References: J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006
(chapters 2, 3, 6, 7); the lecture "Neural Networks: Optimization Part 1" (CMU 11-785) for the
scaling of the axes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from minidl import data, layers, losses, optim
from minidl.data.problems import Problem, Quadratic
from minidl.functional import sigmoid
from minidl.minimize import Run, minimize
from minidl.optim.base import Rule

# ----- scaling the axes ------------------------------------------------------------------------


def inverse_sqrt(A: np.ndarray) -> np.ndarray:
    r""":math:`A^{-1/2} = Q \operatorname{diag}(\lambda_i^{-1/2}) Q^\top` for a symmetric
    positive-definite :math:`A = Q \operatorname{diag}(\lambda_i) Q^\top`."""
    eigenvalues, Q = np.linalg.eigh(A)
    if not eigenvalues[0] > 0:
        raise ValueError(
            f"inverse_sqrt: A must be positive definite, got smallest eigenvalue {eigenvalues[0]}"
        )
    return (Q / np.sqrt(eigenvalues)) @ Q.T


def scaled_quadratic(problem: Quadratic) -> tuple[Quadratic, np.ndarray]:
    r"""The quadratic in the scaled coordinates :math:`v = A^{1/2} w`, and :math:`A^{-1/2}`.

    Substituting :math:`w = A^{-1/2} v` in :math:`\tfrac12 w^\top A w + b^\top w + c` gives
    :math:`\tfrac12 v^\top v + (A^{-1/2} b)^\top v + c`: Hessian :math:`I`, so every direction
    has the optimal rate 1 and one gradient step of rate 1 lands on the minimum.
    """
    S = inverse_sqrt(problem.A)
    return Quadratic(S @ problem.A @ S, S @ problem.b, problem.c, name="scaled quadratic"), S


def gradient_descent_path(problem: Problem, w0: np.ndarray, lr: float, steps: int) -> np.ndarray:
    r"""The iterates :math:`w_{t+1} = w_t - \eta \nabla L(w_t)`, shape ``(steps + 1, d)``."""
    return run_rule(optim.gradient_descent(lr), problem, w0, steps).path


def run_rule(rule: Rule, problem: Problem, w0: np.ndarray, steps: int) -> Run:
    """``steps`` steps of ``rule`` from ``w0`` by :func:`minidl.minimize.minimize`, which gives
    the rule what its ``needs`` list asks for (the exact Hessian, the loss, a ``loss_fn``) and
    counts the gradient evaluations in ``Run.evaluations``: one per step, plus one per call of
    ``loss_fn`` (a line search's trial points, Levenberg–Marquardt's trial steps). A non-finite
    point ends the run early."""
    return minimize(rule, problem, w0, steps)


# ----- Newton on quadratics --------------------------------------------------------------------


def newton_one_step_errors(
    dims: list[int], *, rng: np.random.Generator, condition: float = 1e4
) -> dict[int, float]:
    r"""For each dimension :math:`d`: a random quadratic with eigenvalues log-spaced over
    ``condition`` (random eigenvectors, random :math:`b`), one Newton step from a random start,
    and the relative error :math:`\|w_1 - w^*\| / \|w_0 - w^*\|`."""
    errors = {}
    for d in dims:
        eigenvalues = np.geomspace(1.0, condition, d) * rng.uniform(0.1, 10.0)
        problem = data.quadratic(eigenvalues, rng=rng, b=rng.standard_normal(d))
        w0 = problem.minimizer + rng.standard_normal(d)
        run = run_rule(optim.newton(), problem, w0, steps=1)
        errors[d] = float(
            np.linalg.norm(run.path[1] - problem.minimizer) / np.linalg.norm(w0 - problem.minimizer)
        )
    return errors


def newton_step_size_errors(problem: Quadratic, w0: np.ndarray, lr: float, steps: int) -> Run:
    r"""Newton with step size :math:`\eta` on a quadratic: :math:`w_{t+1} - w^* = (1 - \eta)
    (w_t - w^*)`, the same factor in every direction, whatever the condition number."""
    return run_rule(optim.newton(lr=lr), problem, w0, steps)


# ----- Newton in a non-convex region -----------------------------------------------------------

UPHILL_START = np.array([0.3, 0.1])
"""A point of the double well where :math:`\\partial^2 L / \\partial x^2 = 3x^2 - 1 < 0`."""


def damped_step(problem: Problem, w: np.ndarray, damping: float) -> np.ndarray:
    r"""The step :math:`-(H + \lambda I)^{-1} \nabla L(w)` (Newton's at :math:`\lambda = 0`)."""
    rule = optim.levenberg_marquardt(damping=damping)
    step, _ = rule.update(problem.grad(w), rule.init(w), w, hess=problem.hessian(w))
    return step


def damping_sweep(problem: Problem, w: np.ndarray, dampings: np.ndarray) -> dict[str, np.ndarray]:
    r"""For each :math:`\lambda`: the change of loss :math:`L(w + d_\lambda) - L(w)` of the
    damped step, and its slope :math:`\nabla L(w)^\top d_\lambda` (negative: a descent
    direction)."""
    g = problem.grad(w)
    changes, slopes = [], []
    for lam in dampings:
        step = damped_step(problem, w, float(lam))
        changes.append(problem.value(w + step) - problem.value(w))
        slopes.append(float(g @ step))
    return {
        "damping": np.asarray(dampings, float),
        "change": np.array(changes),
        "slope": np.array(slopes),
    }


# ----- the cost of the Hessian -----------------------------------------------------------------


def _best_time(function, repeats: int) -> float:
    """The least CPU time of ``repeats`` calls: CPU time, unlike wall time, hardly depends on
    what else the machine runs."""
    best = np.inf
    for _ in range(repeats):
        start = time.process_time()
        function()
        best = min(best, time.process_time() - start)
    return best


def hessian_cost(
    sizes: list[int], *, rng: np.random.Generator, samples: int = 200, repeats: int = 3
) -> dict[str, np.ndarray]:
    r"""Memory and time of Newton's linear algebra for a logistic model with :math:`n` weights.

    For :math:`L(w) = \frac1N \sum_i \ell(x_i^\top w, y_i)` the Hessian is
    :math:`H = \frac1N X^\top D X` with :math:`D = \operatorname{diag}(\sigma_i (1 - \sigma_i))`:
    forming it costs :math:`O(N n^2)` operations, storing it :math:`n^2` floats, and solving
    :math:`H d = g` (LU) :math:`O(n^3)`. Times are the least CPU time of ``repeats`` runs, with
    BLAS limited to one thread (so that they count operations, not the machine's load); a small
    ridge :math:`10^{-3} I` keeps :math:`H` invertible.
    """
    with threadpool_limits(limits=1):
        return _hessian_cost(sizes, rng, samples, repeats)


def _hessian_cost(
    sizes: list[int], rng: np.random.Generator, samples: int, repeats: int
) -> dict[str, np.ndarray]:
    memory, form, solve = [], [], []
    np.linalg.solve(np.eye(8), np.ones(8))  # warm up LAPACK, so the first size is not penalized
    for n in sizes:
        X = rng.standard_normal((samples, n)) / np.sqrt(n)
        p = sigmoid(X @ rng.standard_normal(n))
        g = rng.standard_normal(n)
        weights = p * (1 - p) / samples

        def form_hessian(X=X, weights=weights, n=n):
            return (X.T * weights) @ X + 1e-3 * np.eye(n)

        H = form_hessian()
        memory.append(H.nbytes)
        form.append(_best_time(form_hessian, repeats))
        solve.append(_best_time(lambda H=H, g=g: np.linalg.solve(H, g), repeats))
    return {
        "n": np.asarray(sizes),
        "memory": np.array(memory, float),
        "form": np.array(form),
        "solve": np.array(solve),
    }


def growth_exponent(n: np.ndarray, cost: np.ndarray) -> float:
    r"""The slope :math:`k` of the least-squares line :math:`\log \text{cost} \approx k \log n +
    c`: the cost grows like :math:`n^k`."""
    return float(np.polyfit(np.log(n), np.log(cost), 1)[0])


# ----- Levenberg-Marquardt on least squares ----------------------------------------------------


def decay_fit(
    steps: int = 8, *, rng: np.random.Generator, start: tuple[float, float] = (1.0, 0.1)
) -> dict[str, np.ndarray]:
    r"""Fit :math:`\hat y = a e^{-b x}` to 30 noisy points of :math:`2.5 e^{-1.3 x}` by
    Levenberg–Marquardt on the Gauss–Newton matrix :math:`J^\top J` (Marquardt's adaptive
    damping from :math:`10^{-2}`). Returns the parameters, losses and dampings per step."""
    x = np.linspace(0.0, 4.0, 30)
    y = 2.5 * np.exp(-1.3 * x) + 0.02 * rng.standard_normal(30)

    def residuals_and_jacobian(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        decay = np.exp(-w[1] * x)
        return w[0] * decay - y, np.column_stack([decay, -w[0] * x * decay])

    def loss_fn(w: np.ndarray) -> tuple[float, np.ndarray]:
        r, J = residuals_and_jacobian(w)
        return 0.5 * float(r @ r), J.T @ r

    rule = optim.levenberg_marquardt(damping=1e-2, adaptive=True)
    w = np.array(start, dtype=float)
    state = rule.init(w)
    params, values, dampings = [w], [loss_fn(w)[0]], [state.damping]
    for _ in range(steps):
        _, J = residuals_and_jacobian(w)
        loss, grad = loss_fn(w)
        hess = optim.gauss_newton_matrix(J)
        step, state = rule.update(grad, state, w, hess=hess, loss=loss, loss_fn=loss_fn)
        w = w + step
        params.append(w)
        values.append(loss_fn(w)[0])
        dampings.append(state.damping)
    return {"params": np.array(params), "loss": np.array(values), "damping": np.array(dampings)}


# ----- the BFGS update -------------------------------------------------------------------------


def bfgs_update(M: np.ndarray, s: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""One BFGS update of the inverse-Hessian estimate (Nocedal & Wright 2006, eq. 6.17):
    :math:`M^+ = (I - \rho s y^\top) M (I - \rho y s^\top) + \rho s s^\top`,
    :math:`\rho = 1 / (y^\top s)`. It satisfies the secant condition :math:`M^+ y = s`, and
    keeps :math:`M` positive definite exactly when :math:`y^\top s > 0`."""
    rho = 1.0 / float(y @ s)
    E = np.eye(len(s)) - rho * np.outer(s, y)
    return E @ M @ E.T + rho * np.outer(s, s)


# ----- L-BFGS against gradient descent ---------------------------------------------------------

ROSENBROCK_START = np.array([-1.2, 1.0])
"""The classic starting point of Rosenbrock (1960)."""


def rosenbrock_race(
    steps_gd: int = 5000, steps_lbfgs: int = 100, steps_newton: int = 10
) -> dict[str, Run]:
    r"""Gradient descent at :math:`\eta = 2 \times 10^{-3}`, just below :math:`2/\lambda_{\max}
    \approx 2.0 \times 10^{-3}` of the Hessian at the minimum (the best fixed rate: at
    :math:`2.5 \times 10^{-3}` it stalls), against L-BFGS (history 10, strong Wolfe line
    search) and plain Newton (exact Hessian, step 1), on Rosenbrock's function."""
    problem = data.rosenbrock()
    return {
        "gradient descent": run_rule(
            optim.gradient_descent(lr=2e-3), problem, ROSENBROCK_START, steps_gd
        ),
        "newton": run_rule(optim.newton(), problem, ROSENBROCK_START, steps_newton),
        "lbfgs": run_rule(optim.lbfgs(), problem, ROSENBROCK_START, steps_lbfgs),
    }


@dataclass(frozen=True)
class NetworkRun:
    """Training losses ``losses[t]`` before step ``t`` and the gradient evaluations spent."""

    losses: np.ndarray
    evaluations: np.ndarray


def moons_network(*, seed: int = 0) -> tuple[layers.Sequential, np.ndarray, np.ndarray]:
    """A 2-8-1 tanh network with one logistic output and 200 two-moons points."""
    moons = data.two_moons(100, rng=np.random.default_rng(seed), noise=0.15)
    model = layers.mlp([2, 8, 1], rng=np.random.default_rng(seed + 1), activation="tanh")
    return model, moons.X, moons.y.astype(float)


def train_flat(
    rule: Rule, model: layers.Sequential, X: np.ndarray, y: np.ndarray, steps: int
) -> NetworkRun:
    """Full-batch training of ``model`` on the binary cross-entropy with ``rule``, counting the
    forward-backward passes (the shell's closure calls)."""
    loss = losses.BinaryCrossEntropy()
    calls = 0

    def closure() -> float:
        nonlocal calls
        calls += 1
        value = loss.forward(model.forward(X), y[:, None])
        model.backward(loss.backward(), input_grad=False)
        return value

    opt = optim.Optimizer(rule, model.parameters())
    values, evaluations = [], []
    for _ in range(steps):
        values.append(opt.step(closure))
        evaluations.append(calls)
    return NetworkRun(np.array(values), np.array(evaluations))


def network_race(
    gd_steps: int = 1000, lbfgs_steps: int = 40, *, gd_lr: float = 10.0, seed: int = 0
) -> dict[str, NetworkRun]:
    """Gradient descent (rate 10, the best of 1, 3, 10 and 30 here) against L-BFGS
    (history 10, strong Wolfe) on the same 2-8-1 network from the same initial weights."""
    runs = {}
    for name, rule, steps in [
        ("gradient descent", optim.gradient_descent(lr=gd_lr), gd_steps),
        ("lbfgs", optim.lbfgs(), lbfgs_steps),
    ]:
        model, X, y = moons_network(seed=seed)
        runs[name] = train_flat(rule, model, X, y, steps)
    return runs
