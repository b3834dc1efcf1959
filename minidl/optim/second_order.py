r"""Newton's method and its practical relatives as pure rules on the flat parameter vector.

Every rule here has ``flat=True``: it sees all parameters of a model as one vector
:math:`w \in \mathbb{R}^n`, because curvature couples them. References for the algorithm
boxes: Nocedal & Wright, *Numerical Optimization*, 2nd ed., Springer 2006 (N&W): ch. 3
(Newton's method, line searches), ch. 6 (BFGS), ch. 7 (L-BFGS); Levenberg (1944) and
Marquardt (1963) for the damped Newton step.

- :func:`newton` needs the Hessian ``hess=``; :func:`levenberg_marquardt` too, and the loss
  ``loss=`` when its damping adapts;
- :func:`bfgs` and :func:`lbfgs` build their curvature from gradient differences and, with a
  line search, need ``loss=`` and ``loss_fn=`` (a function ``w -> (loss, grad)``).

Each rule returns the step in the parameter's dtype; linear algebra runs in that dtype too.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np

from minidl._checks import positive_int, require_input
from minidl.optim.base import NonNegative, Rule, factory, formula_rule
from minidl.optim.line_search import LossFn, backtracking_armijo, strong_wolfe

LineSearchName = Literal["armijo", "wolfe"]
_LINE_SEARCHES = {"armijo": backtracking_armijo, "wolfe": strong_wolfe}


def _check_hessian(rule: str, hess: Any, param: np.ndarray) -> np.ndarray:
    hess = np.asarray(require_input(rule, "hess", hess))
    n = param.shape[0]
    if hess.shape != (n, n):
        raise ValueError(f"{rule}: expected hess of shape ({n}, {n}), got {hess.shape}")
    return hess.astype(param.dtype, copy=False)


def _solve(rule: str, matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """:math:`M^{-1} v` by an LU solve (never forming the inverse); a singular ``M`` raises."""
    try:
        return np.linalg.solve(matrix, vector)
    except np.linalg.LinAlgError as error:
        raise np.linalg.LinAlgError(
            f"{rule}: the (damped) Hessian of shape {matrix.shape} is singular, so the Newton "
            "system has no unique solution; add damping (levenberg_marquardt with lambda > 0)"
        ) from error


class NewtonState(NamedTuple):
    """Newton's method remembers nothing."""


@factory
def newton(lr: NonNegative = 1.0) -> Rule:
    r"""Newton's method: a step to the minimum of the local quadratic model (N&W §3.3).

    .. math::
        \begin{aligned}
        &\textbf{input}: \eta \text{ (lr)}, w_1 \\
        &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
        &\quad g_t \leftarrow \nabla L(w_t), \quad H_t \leftarrow \nabla^2 L(w_t)
            \quad \text{(keyword input hess=)} \\
        &\quad \text{solve } H_t d_t = g_t \\
        &\quad w_{t+1} \leftarrow w_t - \eta\, d_t
        \end{aligned}

    With :math:`\eta = 1` it solves a positive-definite quadratic in one step; any
    :math:`0 < \eta < 2` converges there. This is plain Newton: it solves the system as it is.
    If :math:`H_t` is indefinite (a saddle or a maximum nearby) the step goes to the stationary
    point of the model, which can be uphill; :func:`levenberg_marquardt` damps that. A singular
    :math:`H_t` raises :class:`numpy.linalg.LinAlgError` (a ``ValueError``).
    """

    def step(
        g: np.ndarray, state: NewtonState, param: np.ndarray, eta: float, hess: Any | None = None
    ):
        h = _check_hessian("newton", hess, param)
        return (-eta * _solve("newton", h, g)).astype(param.dtype, copy=False), state

    return formula_rule(
        "newton", lambda param: NewtonState(), step, lr=lr, needs=frozenset({"hess"}), flat=True
    )


class LevenbergMarquardtState(NamedTuple):
    r"""``damping``: the current :math:`\lambda`."""

    damping: float


@factory
def levenberg_marquardt(
    lr: NonNegative = 1.0, damping: float = 1e-3, adaptive: bool = False, max_tries: int = 10
) -> Rule:
    r"""Damped Newton, the Levenberg–Marquardt step (Levenberg 1944; Marquardt 1963).

    Adding :math:`\lambda I` to the Hessian ("diagonal loading") shifts every eigenvalue by
    :math:`\lambda`: a small :math:`\lambda` gives Newton's step, a large one gradient descent
    with rate :math:`\eta/\lambda`, and any :math:`\lambda > -\lambda_{\min}(H)` makes the step
    go downhill where Newton's would go uphill.

    .. math::
        \begin{aligned}
        &\textbf{input}: \eta \text{ (lr)}, \lambda_1 \text{ (damping)}, w_1 \\
        &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
        &\quad g_t \leftarrow \nabla L(w_t), \quad H_t \leftarrow \nabla^2 L(w_t) \\
        &\quad d_t \leftarrow -\eta\,(H_t + \lambda_t I)^{-1} g_t \\
        &\quad \textbf{if } \text{adaptive}: \textbf{while } L(w_t + d_t) > L(w_t):
            \lambda_t \leftarrow 10 \lambda_t, \;
            d_t \leftarrow -\eta\,(H_t + \lambda_t I)^{-1} g_t \\
        &\quad\quad \lambda_{t+1} \leftarrow \lambda_t / 10 \\
        &\quad w_{t+1} \leftarrow w_t + d_t
        \end{aligned}

    The default keeps :math:`\lambda` fixed (needs ``hess=``). With ``adaptive=True`` it is
    Marquardt's schedule (needs ``hess=``, ``loss=`` and ``loss_fn=``): a trial step that
    would raise the loss is refused and retried with ten times the damping, up to ``max_tries``
    times (after which the rule stays put, with the raised damping); an accepted step lets the
    damping fall tenfold. So the loss never rises. The damping never falls below the smallest
    normal float, so it can always grow again.

    For a least-squares loss :math:`\tfrac12\|r(w)\|^2` pass the Gauss–Newton matrix
    :func:`gauss_newton_matrix` of the residuals' Jacobian as ``hess`` (Marquardt's setting).
    """
    if not damping >= 0.0 or (adaptive and damping == 0.0):
        raise ValueError(
            "levenberg_marquardt: damping must be >= 0 (> 0 when adaptive), "
            f"got damping={damping}, adaptive={adaptive}"
        )
    positive_int("levenberg_marquardt", "max_tries", max_tries)
    name = "levenberg_marquardt"

    def init(param: np.ndarray) -> LevenbergMarquardtState:
        return LevenbergMarquardtState(float(damping))

    def damped_step(h: np.ndarray, g: np.ndarray, lam: float, eta: float, param: np.ndarray):
        damped = h + lam * np.eye(h.shape[0], dtype=h.dtype)
        return (-eta * _solve(name, damped, g)).astype(param.dtype, copy=False)

    def step(
        g: np.ndarray,
        state: LevenbergMarquardtState,
        param: np.ndarray,
        eta: float,
        hess: np.ndarray | None = None,
        loss: float | None = None,
        loss_fn: LossFn | None = None,
    ):
        h = _check_hessian(name, hess, param)
        lam = state.damping
        if not adaptive:
            return damped_step(h, g, lam, eta, param), state
        loss = float(require_input(name, "loss", loss))
        loss_fn = require_input(name, "loss_fn", loss_fn)
        for _ in range(max_tries):
            dw = damped_step(h, g, lam, eta, param)
            if loss_fn(param + dw)[0] <= loss:
                tiny = float(np.finfo(param.dtype).tiny)
                return dw, LevenbergMarquardtState(max(lam / 10.0, tiny))
            lam *= 10.0
        return np.zeros_like(param), LevenbergMarquardtState(lam)

    needs = frozenset({"hess", "loss", "loss_fn"} if adaptive else {"hess"})
    return formula_rule(name, init, step, lr=lr, needs=needs, flat=True)


def gauss_newton_matrix(jacobian: np.ndarray) -> np.ndarray:
    r"""The Gauss–Newton approximation :math:`J^\top J` of the Hessian of
    :math:`\tfrac12 \|r(w)\|^2`, from the Jacobian :math:`J = \partial r / \partial w` of shape
    ``(m residuals, n parameters)``.

    The exact Hessian is :math:`J^\top J + \sum_i r_i \nabla^2 r_i`; the dropped term vanishes
    when the residuals do, and :math:`J^\top J` is always positive semi-definite. The gradient
    of the same loss is :math:`J^\top r`.
    """
    jacobian = np.asarray(jacobian)
    if jacobian.ndim != 2:
        raise ValueError(
            f"gauss_newton_matrix: expected a Jacobian of shape (m, n), got {jacobian.shape}"
        )
    return jacobian.T @ jacobian


def _check_line_search(rule: str, line_search: str | None) -> None:
    if line_search is not None and line_search not in _LINE_SEARCHES:
        raise ValueError(
            f"{rule}: line_search must be 'armijo', 'wolfe' or None, got {line_search!r}"
        )


def _curvature_ok(s: np.ndarray, y: np.ndarray) -> bool:
    r""":math:`y^\top s > \epsilon_{mach} \|s\| \|y\|`: the pair carries positive curvature.

    BFGS keeps :math:`H` positive definite only if :math:`y^\top s > 0`; a Wolfe line search
    guarantees it, a fixed step or an Armijo search on a non-convex loss need not. Pairs below
    this (relative) threshold, including :math:`s = 0`, are skipped (N&W §6.1).
    """
    return float(y @ s) > np.finfo(s.dtype).eps * float(np.linalg.norm(s) * np.linalg.norm(y))


def _step_along(
    rule: str,
    direction: np.ndarray,
    eta: float,
    line_search: str | None,
    param: np.ndarray,
    g: np.ndarray,
    loss: float | None,
    loss_fn: LossFn | None,
) -> np.ndarray:
    r""":math:`\alpha p`: :math:`\alpha = \eta`, or the line search's step from the trial
    step :math:`\eta`."""
    if line_search is None:
        return (eta * direction).astype(param.dtype, copy=False)
    search = _LINE_SEARCHES[line_search]
    loss_fn = require_input(rule, "loss_fn", loss_fn)
    loss = float(require_input(rule, "loss", loss))
    result = search(loss_fn, param, direction, loss=loss, grad=g, lr=eta)
    return (result.step_size * direction).astype(param.dtype, copy=False)


class BFGSState(NamedTuple):
    r"""``inv_hess``: :math:`H_t`, the inverse-Hessian estimate (``None`` while it is still the
    identity, before the first update); ``prev_grad``, ``prev_step``: :math:`g_{t-1}` and
    :math:`s_{t-1} = w_t - w_{t-1}` (``None`` before the first step)."""

    inv_hess: np.ndarray | None
    prev_grad: np.ndarray | None
    prev_step: np.ndarray | None


@factory
def bfgs(lr: NonNegative = 1.0, line_search: LineSearchName | None = "wolfe") -> Rule:
    r"""The BFGS quasi-Newton method (Broyden, Fletcher, Goldfarb, Shanno 1970; N&W Alg. 6.1).

    .. math::
        \begin{aligned}
        &\textbf{input}: \eta \text{ (lr)}, w_1, H_1 = I \\
        &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
        &\quad g_t \leftarrow \nabla L(w_t) \\
        &\quad \textbf{if } t > 1: s \leftarrow s_{t-1}, \; y \leftarrow g_t - g_{t-1},
            \; \rho \leftarrow 1 / (y^\top s) \\
        &\quad\quad \textbf{if } y^\top s > \epsilon_{mach} \|s\|\|y\| \\
        &\quad\quad\quad \textbf{if } \text{first update}: H_t \leftarrow
            \frac{y^\top s}{y^\top y} I \quad \text{(N\&W eq. 6.20)} \\
        &\quad\quad\quad H_t \leftarrow (I - \rho s y^\top) H_t (I - \rho y s^\top)
            + \rho s s^\top \\
        &\quad p_t \leftarrow -H_t g_t \\
        &\quad \alpha_t \leftarrow \eta \text{ or a line search along } p_t
            \text{ from the trial step } \eta \\
        &\quad s_t \leftarrow \alpha_t p_t, \quad w_{t+1} \leftarrow w_t + s_t
        \end{aligned}

    ``line_search`` is ``"wolfe"`` (strong Wolfe, :func:`~minidl.optim.line_search.strong_wolfe`;
    the default, since its curvature condition guarantees :math:`y^\top s > 0`), ``"armijo"``
    (:func:`~minidl.optim.line_search.backtracking_armijo`) or ``None`` (step :math:`\eta p_t`).
    With a line search the rule needs ``loss=`` and ``loss_fn=``; the search's last evaluation
    is not reused, so the next call evaluates the gradient at :math:`w_{t+1}` once more.

    Safeguards: a pair with too little curvature is skipped and :math:`H` kept; if
    :math:`p_t` is not a descent direction (:math:`H` lost positive definiteness to rounding)
    :math:`H` is reset to :math:`I` and :math:`p_t = -g_t`; at a zero gradient the step is 0.
    """
    _check_line_search("bfgs", line_search)

    def step(
        g: np.ndarray,
        state: BFGSState,
        param: np.ndarray,
        eta: float,
        loss: float | None = None,
        loss_fn: LossFn | None = None,
    ):
        h = state.inv_hess
        if state.prev_step is not None:
            s, y = state.prev_step, g - state.prev_grad
            if _curvature_ok(s, y):
                if h is None:
                    h = float(y @ s) / float(y @ y) * np.eye(g.size, dtype=g.dtype)
                # The product form above, expanded so an update costs O(n^2), not O(n^3).
                rho = 1.0 / float(y @ s)
                hy = h @ y
                h = (
                    h
                    - rho * (np.outer(s, hy) + np.outer(hy, s))
                    + (rho * rho * float(y @ hy) + rho) * np.outer(s, s)
                )
        if not np.any(g):
            return np.zeros_like(g), BFGSState(h, g.copy(), np.zeros_like(g))
        direction = -g if h is None else -(h @ g)
        if not float(g @ direction) < 0.0:
            h, direction = None, -g
        dw = _step_along("bfgs", direction, eta, line_search, param, g, loss, loss_fn)
        return dw, BFGSState(h, g.copy(), dw)

    def init(param: np.ndarray) -> BFGSState:
        return BFGSState(None, None, None)

    return formula_rule("bfgs", init, step, lr=lr, needs=_line_search_needs(line_search), flat=True)


def _line_search_needs(line_search: str | None) -> frozenset[str]:
    return frozenset() if line_search is None else frozenset({"loss", "loss_fn"})


class LBFGSState(NamedTuple):
    r"""``s_history``, ``y_history``: the last ``history_size`` pairs :math:`s_i = w_{i+1} -
    w_i`, :math:`y_i = g_{i+1} - g_i`, oldest first; ``prev_grad``, ``prev_step``:
    :math:`g_{t-1}`, :math:`s_{t-1}` (``None`` before the first step)."""

    s_history: tuple[np.ndarray, ...]
    y_history: tuple[np.ndarray, ...]
    prev_grad: np.ndarray | None
    prev_step: np.ndarray | None


def _two_loop(g: np.ndarray, s_history: tuple, y_history: tuple) -> np.ndarray:
    r""":math:`H_t g` by the L-BFGS two-loop recursion (N&W Alg. 7.4)."""
    q = g.copy()
    rhos = [1.0 / float(y @ s) for s, y in zip(s_history, y_history, strict=True)]
    alphas = []
    for s, y, rho in reversed(list(zip(s_history, y_history, rhos, strict=True))):
        alpha = rho * float(s @ q)
        q = q - alpha * y
        alphas.append(alpha)
    if s_history:
        s, y = s_history[-1], y_history[-1]
        q = float(s @ y) / float(y @ y) * q
    for s, y, rho, alpha in zip(s_history, y_history, rhos, reversed(alphas), strict=True):
        beta = rho * float(y @ q)
        q = q + (alpha - beta) * s
    return q


@factory
def lbfgs(
    lr: NonNegative = 1.0, history_size: int = 10, line_search: LineSearchName | None = "wolfe"
) -> Rule:
    r"""Limited-memory BFGS (Nocedal 1980; Liu & Nocedal 1989; N&W Alg. 7.4 and 7.5).

    L-BFGS keeps the last :math:`m` (``history_size``) pairs :math:`(s_i, y_i)` instead of the
    matrix, and applies the BFGS update they define to :math:`H^0_t = \gamma_t I`,
    :math:`\gamma_t = s_{t-1}^\top y_{t-1} / y_{t-1}^\top y_{t-1}`, on the fly:

    .. math::
        \begin{aligned}
        &\textbf{input}: \eta \text{ (lr)}, m, w_1 \\
        &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
        &\quad g_t \leftarrow \nabla L(w_t) \\
        &\quad \textbf{if } t > 1 \textbf{ and } y^\top s > \epsilon_{mach}\|s\|\|y\|
            \text{ for } s = s_{t-1}, y = g_t - g_{t-1}:
            \text{ append } (s, y) \text{, keep the last } m \\
        &\quad q \leftarrow g_t \\
        &\quad \textbf{for } i = \text{newest}, \ldots, \text{oldest}: \;
            \rho_i \leftarrow 1 / y_i^\top s_i, \; \alpha_i \leftarrow \rho_i s_i^\top q, \;
            q \leftarrow q - \alpha_i y_i \\
        &\quad r \leftarrow \gamma_t q \quad (\gamma_t = 1 \text{ with no pairs yet}) \\
        &\quad \textbf{for } i = \text{oldest}, \ldots, \text{newest}: \;
            \beta \leftarrow \rho_i y_i^\top r, \; r \leftarrow r + s_i (\alpha_i - \beta) \\
        &\quad p_t \leftarrow -r \\
        &\quad \alpha_t \leftarrow \eta \text{ or a line search along } p_t
            \text{ from the trial step } \eta \\
        &\quad s_t \leftarrow \alpha_t p_t, \quad w_{t+1} \leftarrow w_t + s_t
        \end{aligned}

    ``line_search``, the needs and the safeguards are those of :func:`bfgs`; a direction that
    is not downhill clears the history. The history is a tuple of arrays, so states stay
    immutable.
    """
    _check_line_search("lbfgs", line_search)
    if not (isinstance(history_size, int) and history_size >= 1):
        raise ValueError(f"lbfgs: history_size must be an integer >= 1, got {history_size!r}")

    def step(
        g: np.ndarray,
        state: LBFGSState,
        param: np.ndarray,
        eta: float,
        loss: float | None = None,
        loss_fn: LossFn | None = None,
    ):
        s_history, y_history = state.s_history, state.y_history
        if state.prev_step is not None:
            s, y = state.prev_step, g - state.prev_grad
            if _curvature_ok(s, y):
                s_history = (*s_history, s)[-history_size:]
                y_history = (*y_history, y)[-history_size:]
        if not np.any(g):
            return np.zeros_like(g), LBFGSState(s_history, y_history, g.copy(), np.zeros_like(g))
        direction = -_two_loop(g, s_history, y_history)
        if not float(g @ direction) < 0.0:
            s_history, y_history, direction = (), (), -g
        dw = _step_along("lbfgs", direction, eta, line_search, param, g, loss, loss_fn)
        return dw, LBFGSState(s_history, y_history, g.copy(), dw)

    def init(param: np.ndarray) -> LBFGSState:
        return LBFGSState((), (), None, None)

    return formula_rule(
        "lbfgs", init, step, lr=lr, needs=_line_search_needs(line_search), flat=True
    )
