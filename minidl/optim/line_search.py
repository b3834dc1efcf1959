r"""Line searches: how far to go along a descent direction (Nocedal & Wright 2006, ch. 3).

Given a point :math:`w`, a direction :math:`p` and :math:`\phi(\alpha) = L(w + \alpha p)`, a line
search picks a step length :math:`\alpha > 0` that satisfies

.. math::
    \begin{aligned}
    &\text{Armijo (sufficient decrease):} && \phi(\alpha) \le \phi(0) + c_1 \alpha \phi'(0) \\
    &\text{strong Wolfe (curvature):} && |\phi'(\alpha)| \le c_2 |\phi'(0)|
    \end{aligned}

with :math:`0 < c_1 < c_2 < 1` and :math:`\phi'(\alpha) = \nabla L(w + \alpha p)^\top p`. Both
searches take ``loss_fn: w -> (loss, grad)`` and return a :class:`LineSearchResult` with the loss
and gradient at the accepted point, so the caller need not evaluate them again.

The direction must be a descent direction, :math:`\phi'(0) = g^\top p < 0`; otherwise there
may be no step that decreases the loss, and both searches raise ``ValueError`` instead of
quietly searching along another direction (the caller, who owns the direction, decides what to
do: :func:`minidl.optim.second_order.bfgs` falls back to :math:`-g`). When no trial step
satisfies the conditions within ``max_iter`` evaluations of ``loss_fn`` (this happens near a
minimum, where rounding hides any decrease), a search returns the best step it has verified,
which is :math:`\alpha = 0` (stay at :math:`w`) if none decreased the loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from minidl._checks import check_positive

LossFn = Callable[[np.ndarray], tuple[float, np.ndarray]]


class LineSearchResult(NamedTuple):
    """The accepted step length :math:`\\alpha`, and the loss and gradient at
    :math:`w + \\alpha p`."""

    step_size: float
    loss: float
    grad: np.ndarray


class _Trial(NamedTuple):
    """One evaluation of :math:`\\phi`: step length, loss, gradient and slope :math:`\\phi'`."""

    alpha: float
    loss: float
    grad: np.ndarray
    slope: float

    def result(self) -> LineSearchResult:
        return LineSearchResult(self.alpha, self.loss, self.grad)


def _initial_slope(name: str, w: np.ndarray, direction: np.ndarray, grad: np.ndarray) -> float:
    """:math:`\\phi'(0) = g^\\top p`, after checking shapes and that ``direction`` goes downhill."""
    w, direction, grad = np.asarray(w), np.asarray(direction), np.asarray(grad)
    if direction.shape != w.shape or grad.shape != w.shape:
        raise ValueError(
            f"{name}: w, direction and grad must have one shape, got {w.shape}, "
            f"{direction.shape} and {grad.shape}"
        )
    slope = float(np.vdot(grad, direction))
    if not slope < 0.0:
        raise ValueError(
            f"{name}: direction is not a descent direction, grad·direction = {slope} (must be < 0)"
        )
    return slope


def backtracking_armijo(
    loss_fn: LossFn,
    w: np.ndarray,
    direction: np.ndarray,
    *,
    loss: float,
    grad: np.ndarray,
    lr: float = 1.0,
    c1: float = 1e-4,
    shrink: float = 0.5,
    max_iter: int = 50,
) -> LineSearchResult:
    r"""Backtracking line search with the Armijo condition (Nocedal & Wright 2006, Alg. 3.1).

    .. math::
        \begin{aligned}
        &\textbf{input}: w, p, \alpha_0 \text{ (lr)}, c_1, \rho \text{ (shrink)} \in (0, 1) \\
        &\alpha \leftarrow \alpha_0 \\
        &\textbf{while } L(w + \alpha p) > L(w) + c_1 \alpha\, g^\top p
            \textbf{ do } \alpha \leftarrow \rho \alpha \\
        &\textbf{return } \alpha
        \end{aligned}

    The accepted :math:`\alpha` is the largest of :math:`\alpha_0, \rho\alpha_0, \rho^2\alpha_0,
    \ldots` that satisfies the Armijo condition; after ``max_iter`` failed trials the result is
    :math:`\alpha = 0` with the inputs ``loss`` and ``grad``. A non-finite trial loss counts as
    a failure.
    """
    name = "backtracking_armijo"
    check_positive(name, lr=lr, max_iter=max_iter)
    if not 0.0 < c1 < 1.0 or not 0.0 < shrink < 1.0:
        raise ValueError(
            f"{name}: need 0 < c1 < 1 and 0 < shrink < 1, got c1={c1}, shrink={shrink}"
        )
    slope0 = _initial_slope(name, w, direction, grad)
    alpha = float(lr)
    for _ in range(max_iter):
        trial_loss, trial_grad = loss_fn(w + alpha * direction)
        trial_loss = float(trial_loss)
        if trial_loss <= loss + c1 * alpha * slope0:
            return LineSearchResult(alpha, trial_loss, np.asarray(trial_grad))
        alpha *= shrink
    return LineSearchResult(0.0, float(loss), np.asarray(grad))


def _cubic_minimizer(a: _Trial, b: _Trial) -> float:
    r"""Minimizer of the cubic that matches :math:`\phi, \phi'` at ``a`` and ``b`` (N&W eq. 3.59).

    Returns NaN when that cubic has no minimizer (the caller then bisects).
    """
    if a.alpha == b.alpha:
        return math.nan
    d1 = a.slope + b.slope - 3.0 * (a.loss - b.loss) / (a.alpha - b.alpha)
    discriminant = d1 * d1 - a.slope * b.slope
    if not discriminant >= 0.0:
        return math.nan
    d2 = math.copysign(math.sqrt(discriminant), b.alpha - a.alpha)
    denominator = b.slope - a.slope + 2.0 * d2
    if denominator == 0.0:
        return math.nan
    return b.alpha - (b.alpha - a.alpha) * (b.slope + d2 - d1) / denominator


def _interpolate(lo: _Trial, hi: _Trial) -> float:
    """A trial step inside the bracket: the cubic minimizer, or the midpoint when the cubic's
    point is undefined or within 10 % of the bracket's width from either end (a safeguard
    that makes the bracket shrink geometrically)."""
    left, right = sorted((lo.alpha, hi.alpha))
    margin = 0.1 * (right - left)
    alpha = _cubic_minimizer(lo, hi)
    if not left + margin <= alpha <= right - margin:
        alpha = 0.5 * (left + right)
    return alpha


def strong_wolfe(
    loss_fn: LossFn,
    w: np.ndarray,
    direction: np.ndarray,
    *,
    loss: float,
    grad: np.ndarray,
    lr: float = 1.0,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_iter: int = 25,
) -> LineSearchResult:
    r"""Line search for the strong Wolfe conditions (Nocedal & Wright 2006, Alg. 3.5 and 3.6).

    The bracketing phase (Alg. 3.5) doubles the trial step until the interval
    :math:`[\alpha_{i-1}, \alpha_i]` must contain a strong Wolfe point; ``zoom`` (Alg. 3.6)
    then shrinks the bracket :math:`(\alpha_{lo}, \alpha_{hi})` with safeguarded cubic
    interpolation, keeping :math:`\alpha_{lo}` the best step so far that satisfies the Armijo
    condition.

    .. math::
        \begin{aligned}
        &\textbf{input}: w, p, \alpha_1 \text{ (lr)}, 0 < c_1 < c_2 < 1 \\
        &\alpha_0 \leftarrow 0 \\
        &\textbf{for } i = 1, 2, \ldots \textbf{ do} \\
        &\quad \textbf{if } \phi(\alpha_i) > \phi(0) + c_1 \alpha_i \phi'(0)
            \textbf{ or } (i > 1 \textbf{ and } \phi(\alpha_i) \ge \phi(\alpha_{i-1})):
            \textbf{ return } \mathrm{zoom}(\alpha_{i-1}, \alpha_i) \\
        &\quad \textbf{if } |\phi'(\alpha_i)| \le -c_2 \phi'(0): \textbf{ return } \alpha_i \\
        &\quad \textbf{if } \phi'(\alpha_i) \ge 0:
            \textbf{ return } \mathrm{zoom}(\alpha_i, \alpha_{i-1}) \\
        &\quad \alpha_{i+1} \leftarrow 2 \alpha_i \\[4pt]
        &\mathrm{zoom}(\alpha_{lo}, \alpha_{hi}): \textbf{ repeat} \\
        &\quad \alpha \leftarrow \text{cubic interpolation in } [\alpha_{lo}, \alpha_{hi}] \\
        &\quad \textbf{if } \phi(\alpha) > \phi(0) + c_1 \alpha \phi'(0)
            \textbf{ or } \phi(\alpha) \ge \phi(\alpha_{lo}): \alpha_{hi} \leftarrow \alpha \\
        &\quad \textbf{else} \\
        &\quad\quad \textbf{if } |\phi'(\alpha)| \le -c_2 \phi'(0): \textbf{ return } \alpha \\
        &\quad\quad \textbf{if } \phi'(\alpha)(\alpha_{hi} - \alpha_{lo}) \ge 0:
            \alpha_{hi} \leftarrow \alpha_{lo} \\
        &\quad\quad \alpha_{lo} \leftarrow \alpha
        \end{aligned}

    ``max_iter`` bounds the evaluations of ``loss_fn`` over both phases. If it runs out, the
    result is the last step of the bracketing phase or :math:`\alpha_{lo}` of the zoom: the
    Armijo condition holds there, the curvature condition may not.
    """
    name = "strong_wolfe"
    check_positive(name, lr=lr, max_iter=max_iter)
    if not 0.0 < c1 < c2 < 1.0:
        raise ValueError(f"{name}: need 0 < c1 < c2 < 1, got c1={c1}, c2={c2}")
    slope0 = _initial_slope(name, w, direction, grad)
    loss0 = float(loss)

    def evaluate(alpha: float) -> _Trial:
        trial_loss, trial_grad = loss_fn(w + alpha * direction)
        trial_grad = np.asarray(trial_grad)
        return _Trial(alpha, float(trial_loss), trial_grad, float(np.vdot(trial_grad, direction)))

    def armijo(trial: _Trial) -> bool:
        return trial.loss <= loss0 + c1 * trial.alpha * slope0  # False for a NaN loss

    def curvature(trial: _Trial) -> bool:
        return abs(trial.slope) <= -c2 * slope0

    def zoom(lo: _Trial, hi: _Trial, evaluations_left: int) -> LineSearchResult:
        for _ in range(evaluations_left):
            trial = evaluate(_interpolate(lo, hi))
            if not armijo(trial) or trial.loss >= lo.loss:
                hi = trial
            else:
                if curvature(trial):
                    return trial.result()
                if trial.slope * (hi.alpha - lo.alpha) >= 0.0:
                    hi = lo
                lo = trial
        return lo.result()

    previous = _Trial(0.0, loss0, np.asarray(grad), slope0)
    alpha = float(lr)
    for i in range(1, max_iter + 1):
        trial = evaluate(alpha)
        if not armijo(trial) or (i > 1 and trial.loss >= previous.loss):
            return zoom(previous, trial, max_iter - i)
        if curvature(trial):
            return trial.result()
        if trial.slope >= 0.0:
            return zoom(trial, previous, max_iter - i)
        previous = trial
        alpha *= 2.0
    return previous.result()
