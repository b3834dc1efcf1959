r"""Gradient descent and its momentum variants as pure rules (see :mod:`minidl.optim.base`).

Three readings of "gradient descent with momentum" live here, each exactly as its source
writes it:

- :func:`gradient_descent`, the plain rule :math:`w_{t+1} = w_t - \eta g_t`;
- :func:`momentum` and :func:`nesterov`, the lecture forms with a velocity :math:`v_t` that
  carries the learning rate (Polyak 1964; Sutskever et al. 2013);
- :func:`sgd`, ``torch.optim.SGD`` to the last detail, whose buffer :math:`b_t` does not carry
  the learning rate. With a constant rate :math:`v_t = -\eta b_t`, so ``momentum(lr, beta)`` and
  ``sgd(lr, momentum=beta)`` give the same trajectory, and ``nesterov(lr, beta)`` and
  ``sgd(lr, momentum=beta, nesterov=True)`` too; under a schedule they differ, because the
  lecture forms keep the old rates inside :math:`v_t`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minidl.optim.base import Decay, DecayOrOne, NonNegative, Rule, factory, formula_rule


class GradientDescentState(NamedTuple):
    """Plain gradient descent remembers nothing."""


class MomentumState(NamedTuple):
    """``v``: the velocity :math:`v_t`, the last step taken."""

    v: np.ndarray


class SGDState(NamedTuple):
    """``b``: the momentum buffer :math:`b_t`; ``None`` before step 1 or without momentum."""

    b: np.ndarray | None


@factory
def gradient_descent(lr: NonNegative) -> Rule:
    r"""Plain gradient descent (Cauchy 1847).

    .. math::
        \begin{aligned}
        &\textbf{input}: \eta \text{ (lr)}, w_1 \\
        &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
        &\quad g_t \leftarrow \nabla L(w_t) \\
        &\quad w_{t+1} \leftarrow w_t - \eta g_t
        \end{aligned}
    """

    def step(g: np.ndarray, state: GradientDescentState, param: np.ndarray, eta: float):
        return -eta * g, state

    return formula_rule("gradient_descent", lambda param: GradientDescentState(), step, lr=lr)


@factory
def momentum(lr: NonNegative, beta: Decay = 0.9) -> Rule:
    r"""Gradient descent with momentum, the heavy-ball method (Polyak 1964; Rumelhart et al. 1986).

    The velocity is a running sum of past steps: gradients that keep their sign add up, those
    that alternate cancel.

    .. math::
        \begin{aligned}
        &\textbf{input}: \eta \text{ (lr)}, \beta \text{ (momentum)}, w_1 \\
        &\textbf{initialize}: v_0 \leftarrow 0 \\
        &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
        &\quad g_t \leftarrow \nabla L(w_t) \\
        &\quad v_t \leftarrow \beta v_{t-1} - \eta g_t \\
        &\quad w_{t+1} \leftarrow w_t + v_t
        \end{aligned}

    With a constant rate this is ``sgd(lr, momentum=beta)`` (torch's :math:`b_t = -v_t/\eta`).
    """
    return _velocity_rule("momentum", lr, beta, look_ahead=False)


@factory
def nesterov(lr: NonNegative, beta: Decay = 0.9) -> Rule:
    r"""Nesterov's accelerated gradient in the form of Sutskever et al. (2013); Nesterov (1983).

    Sutskever's form first extends the velocity, then takes the gradient at the look-ahead point:

    .. math::
        v_t = \beta v_{t-1} - \eta \nabla L(w_t + \beta v_{t-1}), \qquad w_{t+1} = w_t + v_t.

    A rule only sees the gradient at its ``param``, so the rule's ``param`` *is* the look-ahead
    point :math:`u_t = w_t + \beta v_{t-1}` (with :math:`v_0 = 0`, :math:`u_1 = w_1`). Then
    :math:`v_t = \beta v_{t-1} - \eta \nabla L(u_t)` and

    .. math::
        u_{t+1} = w_{t+1} + \beta v_t = (u_t - \beta v_{t-1}) + v_t + \beta v_t
                = u_t + \beta v_t - \eta \nabla L(u_t),

    since :math:`v_t - \beta v_{t-1} = -\eta \nabla L(u_t)`. The rule is therefore

    .. math::
        \begin{aligned}
        &\textbf{input}: \eta \text{ (lr)}, \beta \text{ (momentum)}, u_1 = w_1 \\
        &\textbf{initialize}: v_0 \leftarrow 0 \\
        &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
        &\quad g_t \leftarrow \nabla L(u_t) \\
        &\quad v_t \leftarrow \beta v_{t-1} - \eta g_t \\
        &\quad u_{t+1} \leftarrow u_t + \beta v_t - \eta g_t
        \end{aligned}

    and Sutskever's iterate is recovered as ``w = param - beta * state.v``. With a constant
    rate and :math:`b_t = -v_t/\eta` this is exactly ``sgd(lr, momentum=beta, nesterov=True)``:
    :math:`b_t = \beta b_{t-1} + g_t` and :math:`u_{t+1} = u_t - \eta (g_t + \beta b_t)`.
    """
    return _velocity_rule("nesterov", lr, beta, look_ahead=True)


def _velocity_rule(name: str, lr: float, beta: float, *, look_ahead: bool) -> Rule:
    r"""The lecture forms: :math:`v_t = \beta v_{t-1} - \eta g_t`, then the step :math:`v_t`
    (:func:`momentum`) or :math:`\beta v_t - \eta g_t` (:func:`nesterov`, at the look-ahead
    point)."""

    def step(g: np.ndarray, state: MomentumState, param: np.ndarray, eta: float):
        v = beta * state.v - eta * g
        return (beta * v - eta * g if look_ahead else v), MomentumState(v)

    return formula_rule(name, lambda param: MomentumState(np.zeros_like(param)), step, lr=lr)


@factory
def sgd(
    lr: NonNegative = 0.1,
    momentum: NonNegative = 0.0,
    dampening: DecayOrOne = 0.0,
    weight_decay: NonNegative = 0.0,
    nesterov: bool = False,
) -> Rule:
    r"""Stochastic gradient descent exactly as ``torch.optim.SGD`` (Sutskever et al. 2013).

    .. math::
        \begin{aligned}
        &\textbf{input}: \eta \text{ (lr)}, \beta \text{ (momentum)}, \tau \text{ (dampening)},
            \lambda \text{ (weight decay)}, \text{nesterov}, w_1 \\
        &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
        &\quad g_t \leftarrow \nabla L(w_t) + \lambda w_t \\
        &\quad \textbf{if } \beta \neq 0 \\
        &\quad\quad \textbf{if } t = 1: b_t \leftarrow g_t
            \quad \text{(no dampening on the first step)} \\
        &\quad\quad \textbf{else}: b_t \leftarrow \beta b_{t-1} + (1 - \tau) g_t \\
        &\quad\quad \textbf{if } \text{nesterov}: g_t \leftarrow g_t + \beta b_t \\
        &\quad\quad \textbf{else}: g_t \leftarrow b_t \\
        &\quad w_{t+1} \leftarrow w_t - \eta g_t
        \end{aligned}

    Weight decay is coupled: added to the gradient, it is an L2 penalty
    :math:`\tfrac{\lambda}{2}\|w\|^2`.
    Nesterov momentum needs ``momentum > 0`` and ``dampening == 0``, as in torch. The rate
    multiplies :math:`b_t` at each step, so a schedule changes every later step at once; see
    :func:`momentum` for the lecture form where the velocity keeps the old rates.
    """
    if nesterov and (momentum <= 0.0 or dampening != 0.0):
        raise ValueError(
            "sgd: nesterov=True requires momentum > 0 and dampening == 0, "
            f"got momentum={momentum}, dampening={dampening}"
        )

    def step(g: np.ndarray, state: SGDState, param: np.ndarray, eta: float):
        if momentum == 0.0:
            return -eta * g, state
        b = g.copy() if state.b is None else momentum * state.b + (1.0 - dampening) * g
        return -eta * (g + momentum * b if nesterov else b), SGDState(b)

    return formula_rule(
        "sgd", lambda param: SGDState(b=None), step, lr=lr, weight_decay=weight_decay
    )
