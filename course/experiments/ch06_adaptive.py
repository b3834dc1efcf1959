r"""Chapter 6 (Adaptive learning rates): the experiments behind the chapter's claims.

- :func:`trajectory`: the iterates of any rule of :mod:`minidl.optim` on a 2-D
  :class:`~minidl.data.Problem` (:func:`minidl.minimize.minimize`), supplying the Hessian or the
  line-search closure a rule needs.
- :func:`effective_rates`: Adagrad's per-coordinate rate :math:`\eta / (\sqrt{G_t} + \epsilon)`
  and RMSprop's :math:`\eta / (\sqrt{s_t} + \epsilon)` over a long run of noisy gradients: the
  first decays like :math:`1/\sqrt t`, the second settles.
- :func:`sparse_feature_updates`: logistic regression on binary features of very different
  frequencies; Adagrad's update of a rare feature, when it occurs, is larger than a frequent
  one's (Duchi, Hazan & Singer 2011), plain SGD's is not.
- :func:`adam_steps`, :func:`bias_correction_ratios`: Adam's steps with each moment corrected
  or not (Kingma & Ba 2015, Sec. 3): which correction makes the first steps too small and which
  too large.
- :func:`race`: every optimizer of the course on the same surfaces, from the same start.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from minidl import data, optim
from minidl.functional import sigmoid
from minidl.minimize import minimize
from minidl.optim import Rule

# ----- running a rule on a 2-D problem ---------------------------------------------------------


def trajectory(rule: Rule, problem: data.Problem, w0: Sequence[float], steps: int) -> np.ndarray:
    r"""The iterates :math:`w_0, w_1, \ldots` of ``rule`` on ``problem``, shape ``(n, d)``.

    Runs :func:`minidl.minimize.minimize`, so a rule gets the exact Hessian or the loss
    closure it declares in ``Rule.needs``. Stops early once the gradient vanishes
    (:math:`\|\nabla L\| < 10^{-10}`: a line search has no descent direction left) or a run
    diverges (it ends at its last finite iterate).
    """

    def stationary(w: np.ndarray) -> bool:
        return np.linalg.norm(problem.grad(w)) < 1e-10

    return minimize(rule, problem, w0, steps, until=stationary).path


# ----- Adagrad's vanishing rate ----------------------------------------------------------------


def noisy_quadratic(
    steps: int, *, rng: np.random.Generator, noise: float = 1.0
) -> tuple[data.Quadratic, np.ndarray]:
    r"""The quadratic :math:`\tfrac12 w^\top \operatorname{diag}(1, 10)\, w` and ``steps``
    gradient-noise vectors :math:`\sigma \xi_t`, :math:`\xi_t \sim \mathcal N(0, I)`.

    The stochastic gradient :math:`g_t = A w_t + \sigma \xi_t` models a mini-batch gradient: its
    size does not go to zero at the minimum, as with a real training set.
    """
    return data.quadratic([1.0, 10.0]), noise * rng.standard_normal((steps, 2))


def effective_rates(
    steps: int, *, rng: np.random.Generator, lr: float = 0.1
) -> dict[str, np.ndarray]:
    r"""Per-coordinate effective rates of Adagrad and RMSprop along one run of noisy gradients.

    Both rules (``minidl.optim.adagrad(lr)``, ``minidl.optim.rmsprop(lr)`` with
    :math:`\alpha = 0.99`) start at :math:`w_0 = (1, 1)` on :func:`noisy_quadratic` and see the
    same noise. After step :math:`t` the effective rate of coordinate :math:`i` is

    .. math::
        \eta^{\text{Adagrad}}_{t,i} = \frac{\eta}{\sqrt{G_{t,i}} + \epsilon}, \quad
        G_{t,i} = \sum_{k \le t} g_{k,i}^2; \qquad
        \eta^{\text{RMSprop}}_{t,i} = \frac{\eta}{\sqrt{s_{t,i}} + \epsilon}, \quad
        s_{t,i} = \alpha s_{t-1,i} + (1 - \alpha) g_{t,i}^2.

    Returns ``{"adagrad": (steps, 2), "rmsprop": (steps, 2), "loss_adagrad": (steps,),
    "loss_rmsprop": (steps,)}`` (the noise-free loss after every step).
    """
    problem, noise = noisy_quadratic(steps, rng=rng)
    rules = {"adagrad": optim.adagrad(lr=lr), "rmsprop": optim.rmsprop(lr=lr)}
    out: dict[str, np.ndarray] = {}
    for name, rule in rules.items():
        w = np.ones(2)
        state = rule.init(w)
        rates, losses = np.empty((steps, 2)), np.empty(steps)
        for t in range(steps):
            step, state = rule.update(problem.grad(w) + noise[t], state, w)
            w = w + step
            accumulator = state.G if name == "adagrad" else state.s
            rates[t] = lr / (np.sqrt(accumulator) + rule.hyperparams["eps"])
            losses[t] = problem.value(w)
        out[name], out[f"loss_{name}"] = rates, losses
    return out


# ----- rare features ---------------------------------------------------------------------------


class SparseUpdates(NamedTuple):
    """Per feature: how often it occurs, and the mean size of its update on the steps it occurs."""

    frequency: np.ndarray
    adagrad: np.ndarray
    sgd: np.ndarray


def sparse_features(
    n: int, frequencies: Sequence[float], *, rng: np.random.Generator
) -> data.LinearModelData:
    r"""Binary features :math:`x_{nj} \sim \text{Bernoulli}(p_j)` and logistic labels.

    The labels follow :math:`P(y = 1 \mid x) = \sigma(w^\top x)` with true weights alternating
    :math:`\pm 1.5`, so every feature matters when it occurs; ``frequencies`` lists the
    :math:`p_j` (e.g. a word that is in half the documents and one in one document in a
    hundred).
    """
    frequencies = np.asarray(frequencies, dtype=np.float64)
    X = (rng.uniform(size=(n, frequencies.size)) < frequencies).astype(np.float64)
    w = 1.5 * np.where(np.arange(frequencies.size) % 2 == 0, 1.0, -1.0)
    logits = X @ w
    y = (rng.uniform(size=n) < sigmoid(logits)).astype(np.int64)
    return data.LinearModelData(X, y, w, 0.0)


def sparse_feature_updates(
    frequencies: Sequence[float],
    *,
    rng: np.random.Generator,
    n: int = 4000,
    adagrad_lr: float = 0.5,
    sgd_lr: float = 0.1,
) -> SparseUpdates:
    r"""One pass of stochastic (batch size 1) logistic regression with Adagrad and with SGD.

    The gradient of the logistic loss of example :math:`(x, y)` is :math:`(\sigma(w^\top x) - y)
    x`, so feature :math:`j` gets a gradient only when :math:`x_j = 1`. For each rule returns the
    mean :math:`|\Delta w_j|` over the steps where feature :math:`j` occurs. SGD's update is
    :math:`\eta |\sigma - y|` whatever the feature's frequency; Adagrad divides it by
    :math:`\sqrt{G_j}`, which grows with the number of times the feature occurred, so a feature
    seen :math:`p_j t` times in :math:`t` steps keeps a rate of about
    :math:`\eta / \sqrt{p_j t\, \overline{g^2}}`.
    """
    sample = sparse_features(n, frequencies, rng=rng)
    rules = {"adagrad": optim.adagrad(lr=adagrad_lr), "sgd": optim.gradient_descent(lr=sgd_lr)}
    sizes = {}
    for name, rule in rules.items():
        w = np.zeros(len(frequencies))
        state = rule.init(w)
        total, count = np.zeros_like(w), np.zeros_like(w)
        for x, y in zip(sample.X, sample.y, strict=True):
            p = sigmoid(x @ w)
            step, state = rule.update((p - y) * x, state, w)
            w = w + step
            total += np.abs(step) * x
            count += x
        sizes[name] = total / np.maximum(count, 1)
    return SparseUpdates(sample.X.mean(axis=0), sizes["adagrad"], sizes["sgd"])


# ----- Adam's bias correction ------------------------------------------------------------------


def adam_steps(
    grads: np.ndarray,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    correct_first: bool = True,
    correct_second: bool = True,
) -> np.ndarray:
    r"""Adam's steps :math:`\Delta w_t` for the gradients ``grads[t - 1]``, each moment's bias
    correction switched on or off.

    .. math::
        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
        s_t = \beta_2 s_{t-1} + (1 - \beta_2) g_t^2, \quad
        \Delta w_t = -\eta \, \frac{m_t / c_{1,t}}{\sqrt{s_t / c_{2,t}} + \epsilon},

    with :math:`c_{1,t} = 1 - \beta_1^t` if ``correct_first`` (else 1) and :math:`c_{2,t} = 1 -
    \beta_2^t` if ``correct_second`` (else 1). Both on is Kingma & Ba's Algorithm 1
    (``minidl.optim.adam()``); both off is ``minidl.optim.adam(bias_correction=False)``. The
    steps do not depend on the parameters, so the gradients are given in advance.
    """
    grads = np.asarray(grads, dtype=np.float64)
    beta1, beta2 = betas
    m, s = np.zeros_like(grads[0]), np.zeros_like(grads[0])
    steps = np.empty_like(grads)
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        s = beta2 * s + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t) if correct_first else m
        s_hat = s / (1 - beta2**t) if correct_second else s
        steps[t - 1] = -lr * m_hat / (np.sqrt(s_hat) + eps)
    return steps


VARIANTS = {
    "both corrected (Adam)": (True, True),
    "m not corrected": (False, True),
    "s not corrected": (True, False),
    "neither corrected": (False, False),
}
"""The four combinations of bias correction, ``name -> (correct_first, correct_second)``."""


def bias_correction_ratios(
    steps: int, *, betas: tuple[float, float] = (0.9, 0.999), gradient: float = 1.0
) -> dict[str, np.ndarray]:
    r"""Each variant's step divided by the corrected one, for a constant gradient.

    With :math:`g_t = g` the moments are :math:`m_t = (1 - \beta_1^t) g` and :math:`s_t = (1 -
    \beta_2^t) g^2` exactly, so (for :math:`\epsilon \ll |g|`) the corrected step is :math:`-\eta
    \operatorname{sign} g` from the first step on, and the ratios are :math:`1 - \beta_1^t` (m not
    corrected), :math:`1/\sqrt{1 - \beta_2^t}` (s not corrected) and their product (neither).
    """
    grads = np.full((steps, 1), gradient)
    corrected = adam_steps(grads, betas=betas)[:, 0]
    return {
        name: adam_steps(grads, betas=betas, correct_first=m, correct_second=s)[:, 0] / corrected
        for name, (m, s) in VARIANTS.items()
    }


@functools.cache
def adam_path(beta1: float, beta2: float, lr: float, *, steps: int = 80) -> np.ndarray:
    """Adam with the given hyperparameters on the race's quadratic (the slider's figure).

    Cached: the slider's frames and alt texts share one run. Treat the array as read-only.
    """
    surface = RACE_SURFACES["quadratic"]
    rule = optim.adam(lr=lr, betas=(beta1, beta2))
    return trajectory(rule, surface.problem, surface.start, steps)


# ----- the race --------------------------------------------------------------------------------


class Surface(NamedTuple):
    """A race course: the problem, the common start, the plotting window and the step budget."""

    problem: data.Problem
    start: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    steps: int


RACE_SURFACES: dict[str, Surface] = {
    "quadratic": Surface(data.rotated_quadratic(20.0), (-2.0, 1.5), (-2.6, 2.6), (-2.0, 2.0), 200),
    "rosenbrock": Surface(data.rosenbrock(), (-1.2, 1.0), (-2.0, 2.0), (-1.0, 3.0), 400),
    "saddle": Surface(data.double_well(), (-0.001, 1.5), (-1.6, 1.6), (-1.0, 2.0), 200),
}
"""An ill-conditioned rotated quadratic (:math:`\\kappa = 20`), Rosenbrock's valley, and the double
well started next to its saddle at the origin."""

_RATES = {
    # name: (quadratic, rosenbrock, saddle) rates, picked by hand so each method makes progress
    "gradient descent": (0.09, 1.5e-3, 0.1),
    "momentum": (0.02, 3e-4, 0.05),
    "nesterov": (0.02, 3e-4, 0.05),
    "quickprop": (0.02, 1e-3, 0.1),
    "adagrad": (0.5, 0.5, 0.5),
    "rmsprop": (0.02, 0.01, 0.02),
    "adam": (0.1, 0.05, 0.05),
}


def race_rules(surface: str) -> dict[str, Rule]:
    """Every optimizer of the course with its rate for ``surface`` (one of ``RACE_SURFACES``).

    Newton, L-BFGS (strong Wolfe line search), Rprop (:math:`\\Delta_0 = 0.1`) and Adadelta
    (:math:`\\eta = 1`, Zeiler's rate-free form) use their defaults; the others use the rates of
    ``_RATES``, and momentum and Nesterov :math:`\\beta = 0.9`.
    """
    k = list(RACE_SURFACES).index(surface)
    rate = {name: rates[k] for name, rates in _RATES.items()}
    return {
        "gradient descent": optim.gradient_descent(lr=rate["gradient descent"]),
        "momentum": optim.momentum(lr=rate["momentum"], beta=0.9),
        "nesterov": optim.nesterov(lr=rate["nesterov"], beta=0.9),
        "newton": optim.newton(),
        "lbfgs": optim.lbfgs(),
        "rprop": optim.rprop(lr=0.1),
        "quickprop": optim.quickprop(lr=rate["quickprop"]),
        "adagrad": optim.adagrad(lr=rate["adagrad"]),
        "rmsprop": optim.rmsprop(lr=rate["rmsprop"]),
        "adadelta": optim.adadelta(),
        "adam": optim.adam(lr=rate["adam"]),
    }


@functools.cache
def race(surface: str) -> dict[str, np.ndarray]:
    """The trajectory of every optimizer of :func:`race_rules` on ``RACE_SURFACES[surface]``.

    Cached: the slider's frames and the tests share one run. Treat the arrays as read-only.
    """
    course = RACE_SURFACES[surface]
    return {
        name: trajectory(rule, course.problem, course.start, course.steps)
        for name, rule in race_rules(surface).items()
    }


def gap_to_minimum(surface: str, path: np.ndarray) -> np.ndarray:
    """:math:`L(w_t) - L^*` along a path of the race (the curves of the race's right panel)."""
    problem = RACE_SURFACES[surface].problem
    return np.asarray(problem.value(path)) - problem.minimum
