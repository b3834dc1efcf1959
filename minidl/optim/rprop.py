r"""Resilient backpropagation: per-parameter step sizes driven by gradient signs only.

Rprop (Riedmiller & Braun 1993) gives every parameter its own step size :math:`\Delta`, grows it
by :math:`\eta^+` while the partial derivative keeps its sign, shrinks it by :math:`\eta^-` when
the sign flips (a minimum was jumped over), and steps by :math:`-\operatorname{sign}(g)\Delta`.
The gradient's magnitude never enters, so scaling the loss leaves the trajectory unchanged.
The four variants are those named by Igel & Hüsken, "Improving the Rprop learning algorithm"
(NC 2000); :func:`simple_rprop` is the lecture's simplified form.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minidl._checks import require_input
from minidl.optim.base import Rule, factory, formula_rule

VARIANTS = ("rprop+", "rprop-", "irprop+", "irprop-")


def _check_hyperparameters(
    rule: str, lr: float, etas: tuple[float, float], step_sizes: tuple[float, float]
) -> None:
    eta_minus, eta_plus = etas
    step_min, step_max = step_sizes
    if not 0.0 < eta_minus < 1.0 < eta_plus:
        raise ValueError(f"{rule}: etas must satisfy 0 < etas[0] < 1 < etas[1], got {etas}")
    if not 0.0 <= step_min <= step_max:
        raise ValueError(f"{rule}: step_sizes must satisfy 0 <= min <= max, got {step_sizes}")
    if not lr > 0.0:
        raise ValueError(f"{rule}: lr (the initial step size Delta_0) must be > 0, got {lr}")


class RpropState(NamedTuple):
    r"""``prev_grad``: :math:`g_{t-1}` as the algorithm remembers it (set to 0 where the sign
    flipped, except in Rprop-); ``step_size``: :math:`\Delta_{t-1}`; ``prev_step``: the last
    step :math:`\Delta w_{t-1}` (used by the backtracking variants); ``prev_loss``:
    :math:`L(w_{t-1})`, ``inf`` before the first step (used by iRprop+)."""

    prev_grad: np.ndarray
    step_size: np.ndarray
    prev_step: np.ndarray
    prev_loss: float


@factory
def rprop(
    lr: float = 0.1,
    etas: tuple[float, float] = (0.5, 1.2),
    step_sizes: tuple[float, float] = (1e-6, 50.0),
    variant: str = "irprop-",
) -> Rule:
    r"""Rprop in the four variants of Igel & Hüsken (2000); Riedmiller & Braun (1993).

    ``lr`` is the initial step size :math:`\Delta_0`, ``etas`` :math:`(\eta^-, \eta^+)`,
    ``step_sizes`` :math:`(\Delta_{\min}, \Delta_{\max})`, as in ``torch.optim.Rprop``. Per
    parameter (all operations elementwise, :math:`g_0 = 0`):

    .. math::
        \begin{aligned}
        &\textbf{input}: \Delta_0 \text{ (lr)}, \eta^-, \eta^+, \Delta_{\min}, \Delta_{\max},
            w_1 \\
        &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
        &\quad g_t \leftarrow \nabla L(w_t) \\
        &\quad \textbf{if } g_{t-1} g_t > 0: \;
            \Delta_t \leftarrow \min(\eta^+ \Delta_{t-1}, \Delta_{\max}), \;
            \Delta w_t \leftarrow -\operatorname{sign}(g_t) \Delta_t \\
        &\quad \textbf{else if } g_{t-1} g_t < 0: \;
            \Delta_t \leftarrow \max(\eta^- \Delta_{t-1}, \Delta_{\min}) \\
        &\quad\quad \text{rprop+}: \Delta w_t \leftarrow -\Delta w_{t-1}
            \text{ (backtrack)}, \; g_t \leftarrow 0 \\
        &\quad\quad \text{rprop-}: \Delta w_t \leftarrow -\operatorname{sign}(g_t) \Delta_t \\
        &\quad\quad \text{irprop+}: \Delta w_t \leftarrow -\Delta w_{t-1}
            \textbf{ if } L(w_t) > L(w_{t-1}) \textbf{ else } 0, \; g_t \leftarrow 0 \\
        &\quad\quad \text{irprop-}: \Delta w_t \leftarrow 0, \; g_t \leftarrow 0 \\
        &\quad \textbf{else}: \; \Delta_t \leftarrow \Delta_{t-1}, \;
            \Delta w_t \leftarrow -\operatorname{sign}(g_t) \Delta_t \\
        &\quad w_{t+1} \leftarrow w_t + \Delta w_t
        \end{aligned}

    Setting the remembered :math:`g_t` to 0 after a sign change makes the next step take the
    last branch: the parameter moves with the reduced :math:`\Delta` without being punished
    twice. iRprop- (the default) is ``torch.optim.Rprop``; iRprop+ needs ``loss=`` (its
    ``needs`` is ``{"loss"}``, the other variants need nothing). As in torch, every
    :math:`\Delta_t` is clipped to :math:`[\Delta_{\min}, \Delta_{\max}]`, and ``lr`` only sets
    :math:`\Delta_0`: a rate passed to ``update`` is ignored, since the step sizes adapt
    themselves.
    """
    if variant not in VARIANTS:
        raise ValueError(f"rprop: variant must be one of {', '.join(VARIANTS)}; got {variant!r}")
    name = f"rprop({variant})"
    _check_hyperparameters(name, lr, etas, step_sizes)
    eta_minus, eta_plus = etas
    step_min, step_max = step_sizes

    def init(param: np.ndarray) -> RpropState:
        zeros = np.zeros_like(param)
        return RpropState(zeros, np.full_like(param, lr), zeros, float("inf"))

    def step(
        g: np.ndarray, state: RpropState, param: np.ndarray, eta: float, loss: float | None = None
    ):
        product = g * state.prev_grad
        flipped = product < 0.0
        factor = np.where(product > 0.0, eta_plus, np.where(flipped, eta_minus, 1.0))
        step_size = np.clip(state.step_size * factor, step_min, step_max).astype(g.dtype)
        prev_loss = state.prev_loss
        if variant == "rprop-":
            state = RpropState(g.copy(), step_size, state.prev_step, prev_loss)
            return -np.sign(g) * step_size, state
        remembered = np.where(flipped, 0.0, g).astype(g.dtype)
        dw = -np.sign(remembered) * step_size
        if variant == "rprop+":
            dw = np.where(flipped, -state.prev_step, dw)
        elif variant == "irprop+":
            loss = float(require_input(name, "loss", loss))
            if loss > prev_loss:
                dw = np.where(flipped, -state.prev_step, dw)
            prev_loss = loss
        return dw, RpropState(remembered, step_size, dw, prev_loss)

    needs = frozenset({"loss"}) if variant == "irprop+" else frozenset()
    return formula_rule(name, init, step, lr=None, needs=needs)


class SimpleRpropState(NamedTuple):
    r"""``accepted_grad``: the derivative at the last accepted point, whose sign fixes the
    direction of travel (``None`` before the first step); ``step_size``: :math:`\Delta`."""

    accepted_grad: np.ndarray | None
    step_size: np.ndarray


@factory
def simple_rprop(
    lr: float = 0.1,
    etas: tuple[float, float] = (0.5, 1.2),
    step_sizes: tuple[float, float] = (1e-6, 50.0),
) -> Rule:
    r"""The lecture's simplified Rprop: step forward, and step back when the sign flips.

    Each parameter keeps walking in the direction :math:`-\operatorname{sign}(g)` it started
    with. While the derivative at the new point keeps the sign of the derivative :math:`D` at
    the last accepted point, the point is accepted and the step grows by :math:`\eta^+`
    (the lecture's :math:`\alpha = 1.2`). When it flips, the point is rejected: return to the
    accepted point, shrink the step by :math:`\eta^-` (:math:`\beta = 0.5`) and take the
    smaller step forward. One call does the return and the new step together:

    .. math::
        \begin{aligned}
        &\textbf{input}: \Delta_0 \text{ (lr)}, \eta^-, \eta^+, \Delta_{\min}, \Delta_{\max},
            w_1 \\
        &D \leftarrow \nabla L(w_1), \quad \Delta \leftarrow \Delta_0, \quad
            w_2 \leftarrow w_1 - \operatorname{sign}(D) \Delta \\
        &\textbf{for } t = 2, 3, \ldots \textbf{ do} \\
        &\quad g_t \leftarrow \nabla L(w_t) \\
        &\quad \textbf{if } \operatorname{sign}(g_t) = \operatorname{sign}(D): \;
            D \leftarrow g_t, \; \Delta \leftarrow \min(\eta^+ \Delta, \Delta_{\max}), \;
            w_{t+1} \leftarrow w_t - \operatorname{sign}(D) \Delta \\
        &\quad \textbf{else}: \;
            w_{t+1} \leftarrow \underbrace{w_t + \operatorname{sign}(D) \Delta}_{\text{back}}
            {} - \operatorname{sign}(D) \max(\eta^- \Delta, \Delta_{\min}), \;
            \Delta \leftarrow \max(\eta^- \Delta, \Delta_{\min})
        \end{aligned}

    Unlike :func:`rprop`, a parameter never reverses its direction of travel: it approaches its
    minimum from one side. It does so in one dimension; in several, the minimum of a
    coordinate can move behind it as the others change, and it then stays where it is
    (a parameter whose first derivative is exactly 0 never moves). ``lr`` only sets
    :math:`\Delta_0`; a rate passed to ``update`` is ignored.
    """
    _check_hyperparameters("simple_rprop", lr, etas, step_sizes)
    eta_minus, eta_plus = etas
    step_min, step_max = step_sizes

    def init(param: np.ndarray) -> SimpleRpropState:
        return SimpleRpropState(None, np.full_like(param, lr))

    def step(g: np.ndarray, state: SimpleRpropState, param: np.ndarray, eta: float):
        if state.accepted_grad is None:
            return -np.sign(g) * state.step_size, SimpleRpropState(g.copy(), state.step_size)
        direction = np.sign(state.accepted_grad)
        accepted = np.sign(g) == direction
        step_size = np.where(
            accepted,
            np.minimum(eta_plus * state.step_size, step_max),
            np.maximum(eta_minus * state.step_size, step_min),
        ).astype(g.dtype)
        back = np.where(accepted, 0.0, direction * state.step_size)
        dw = (back - direction * step_size).astype(g.dtype)
        return dw, SimpleRpropState(np.where(accepted, g, state.accepted_grad), step_size)

    return formula_rule("simple_rprop", init, step, lr=None)
