r"""Quickprop: a per-parameter secant (Newton) step with a growth limit (Fahlman 1988).

Reference: S. E. Fahlman, "An empirical study of learning speed in back-propagation networks",
CMU-CS-88-162, 1988, and his reference implementation (``QUICKPROP_UPDATE`` in the
Cascade-Correlation simulator), which this module follows branch by branch.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minidl.optim.base import Positive, Rule, factory, formula_rule


class QuickpropState(NamedTuple):
    r"""``prev_grad``: the previous slope :math:`S_{t-1}` (weight decay included);
    ``prev_step``: the previous step :math:`\Delta w_{t-1}`. Both 0 before the first step."""

    prev_grad: np.ndarray
    prev_step: np.ndarray


@factory
def quickprop(lr: float = 0.01, max_growth: Positive = 1.75, weight_decay: float = 0.0) -> Rule:
    r"""Quickprop (Fahlman 1988).

    Each parameter is treated on its own, as if the loss were a parabola in it. Two slopes
    :math:`S_{t-1}, S_t` measured a step :math:`\Delta w_{t-1}` apart give the parabola's
    curvature :math:`(S_{t-1} - S_t)/\Delta w_{t-1}` (a secant, finite-difference second
    derivative), and the jump to its vertex is

    .. math::
        \Delta w_t = \frac{S_t}{S_{t-1} - S_t}\, \Delta w_{t-1}.

    Fahlman's rule guards this jump. With :math:`\mu` the maximum growth factor
    (``max_growth``), :math:`\epsilon` the gradient-descent rate (``lr``) and :math:`\lambda`
    the weight decay, per parameter:

    .. math::
        \begin{aligned}
        &\textbf{input}: \epsilon \text{ (lr)}, \mu \text{ (max\_growth)},
            \lambda \text{ (weight decay)}, w_1; \quad \Delta w_0 = 0, S_0 = 0 \\
        &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
        &\quad S_t \leftarrow \partial L / \partial w_t + \lambda w_t \\
        &\quad \textbf{if } \Delta w_{t-1} = 0: \; \Delta w_t \leftarrow -\epsilon S_t
            \quad \text{(no secant yet: a gradient step)} \\
        &\quad \textbf{else} \\
        &\quad\quad \Delta w_t \leftarrow -\epsilon S_t \textbf{ if }
            \operatorname{sign}(S_t) = -\operatorname{sign}(\Delta w_{t-1})
            \textbf{ else } 0 \quad \text{(still downhill: add a gradient step)} \\
        &\quad\quad \textbf{if } -\operatorname{sign}(\Delta w_{t-1})\, S_t \ge
            \tfrac{\mu}{1+\mu} \left(-\operatorname{sign}(\Delta w_{t-1})\, S_{t-1}\right):
            \; \Delta w_t \leftarrow \Delta w_t + \mu \Delta w_{t-1}
            \quad \text{(jump too large, infinite or uphill)} \\
        &\quad\quad \textbf{else}: \; \Delta w_t \leftarrow \Delta w_t
            + \frac{S_t}{S_{t-1} - S_t} \Delta w_{t-1} \\
        &\quad w_{t+1} \leftarrow w_t + \Delta w_t
        \end{aligned}

    In words: slopes are measured along the previous step, :math:`-\operatorname{sign}(\Delta
    w_{t-1}) S` being the downhill slope in the direction just travelled. The vertex jump is at
    most :math:`\mu |\Delta w_{t-1}|` exactly when that slope has fallen below
    :math:`\mu/(1+\mu)` of the previous one; otherwise (including a slope that did not fall,
    where the parabola opens downwards or has no vertex) the jump is :math:`\mu \Delta
    w_{t-1}`. If the slope changed sign the vertex lies between the two points, a jump back
    shorter than :math:`|\Delta w_{t-1}|`, and the gradient term is left out. So the secant
    part of a step never exceeds :math:`\mu` times the previous step (default 1.75, Fahlman's
    value); the gradient term comes on top. "Previous step zero" means exactly zero, as in
    Fahlman's code (at the first step, or after a slope that was exactly 0). Fahlman's
    experiments used :math:`\lambda = 10^{-4}`, a coupled L2 penalty added to the slope.
    """
    if not lr >= 0.0 or not weight_decay >= 0.0:
        raise ValueError(
            f"quickprop: lr and weight_decay must be >= 0, got lr={lr}, weight_decay={weight_decay}"
        )
    shrink = max_growth / (1.0 + max_growth)

    def init(param: np.ndarray) -> QuickpropState:
        return QuickpropState(np.zeros_like(param), np.zeros_like(param))

    def step(slope: np.ndarray, state: QuickpropState, param: np.ndarray, eta: float):
        prev_slope, prev_step = state.prev_grad, state.prev_step
        direction = np.sign(prev_step)
        downhill, prev_downhill = -direction * slope, -direction * prev_slope
        moved = direction != 0
        capped = moved & (downhill >= shrink * prev_downhill)
        secant = moved & ~capped
        # Along the rule's own trajectory a nonzero step always went downhill (prev_downhill > 0),
        # so on the secant branch prev_slope - slope != 0; the mask skips the other entries.
        ratio = np.divide(slope, prev_slope - slope, out=np.zeros_like(slope), where=secant)
        jump = np.where(capped, max_growth * prev_step, ratio * prev_step)
        gradient_term = np.where(~moved | (downhill > 0), -eta * slope, 0.0)
        dw = (jump + gradient_term).astype(param.dtype, copy=False)
        return dw, QuickpropState(slope, dw)

    return formula_rule("quickprop", init, step, lr=lr, weight_decay=weight_decay)
