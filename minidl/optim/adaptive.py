r"""Adaptive per-parameter learning rates as pure rules, each exactly as in ``torch.optim``.

Every rule divides the step by a running measure of the gradient's size, so each coordinate gets
its own effective rate. They differ in how they measure it (a sum or a decaying average of
:math:`g_t^2`), where the stability constant :math:`\epsilon` sits, and whether the first moments
are bias-corrected; each docstring says so. ``weight_decay`` is coupled (added to the gradient)
everywhere except :func:`adamw`. The rate ``lr`` passed to ``update`` replaces the factory's
rate at that step, as a ``torch.optim`` scheduler changes a group's ``lr``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minidl.optim.base import DecayOrOne, Decays, NonNegative, Rule, factory, formula_rule


class AdagradState(NamedTuple):
    """``t``: steps taken; ``G``: the sum of squared gradients :math:`G_t`."""

    t: int
    G: np.ndarray


class RMSpropState(NamedTuple):
    """``s``: mean square :math:`s_t`; ``m``: mean gradient :math:`m_t` (``centered`` only);
    ``b``: momentum buffer :math:`b_t` (``momentum > 0`` only)."""

    s: np.ndarray
    m: np.ndarray | None
    b: np.ndarray | None


class AdadeltaState(NamedTuple):
    """``s``: mean square gradient :math:`s_t`; ``u``: mean square update :math:`u_t`."""

    s: np.ndarray
    u: np.ndarray


class AdamState(NamedTuple):
    """``t``: steps taken; ``m``, ``s``: first and second moments :math:`m_t, s_t`;
    ``s_max``: the running maximum of :math:`s_t` (``amsgrad`` only)."""

    t: int
    m: np.ndarray
    s: np.ndarray
    s_max: np.ndarray | None


class NAdamState(NamedTuple):
    r"""``t``: steps taken; ``m``, ``s``: first and second moments; ``mu_product``:
    :math:`\Pi_t = \mu_1 \cdots \mu_t`."""

    t: int
    m: np.ndarray
    s: np.ndarray
    mu_product: float


@factory
def adagrad(
    lr: NonNegative = 1e-2,
    lr_decay: NonNegative = 0.0,
    weight_decay: NonNegative = 0.0,
    initial_accumulator_value: NonNegative = 0.0,
    eps: NonNegative = 1e-10,
) -> Rule:
    r"""Adagrad (Duchi et al. 2011), as ``torch.optim.Adagrad``.

    .. math::
        \begin{aligned}
        &\textbf{input}: \eta \text{ (lr)}, \gamma \text{ (lr\_decay)},
            \lambda \text{ (weight decay)}, G_0 \text{ (initial\_accumulator\_value)},
            \epsilon, w_1 \\
        &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
        &\quad g_t \leftarrow \nabla L(w_t) + \lambda w_t \\
        &\quad \eta_t \leftarrow \eta / (1 + (t - 1) \gamma) \\
        &\quad G_t \leftarrow G_{t-1} + g_t^2 \\
        &\quad w_{t+1} \leftarrow w_t - \eta_t \, g_t / (\sqrt{G_t} + \epsilon)
        \end{aligned}

    :math:`\epsilon` is added outside the square root. :math:`G_t` only grows, so the effective
    rate :math:`\eta_t / \sqrt{G_t}` of every coordinate decays towards zero; coordinates with
    rare, small gradients keep a larger rate than frequent ones.
    """

    def init(param: np.ndarray) -> AdagradState:
        return AdagradState(t=0, G=np.full_like(param, initial_accumulator_value))

    def step(g: np.ndarray, state: AdagradState, param: np.ndarray, eta: float):
        t = state.t + 1
        eta_t = eta / (1.0 + (t - 1) * lr_decay)
        G = state.G + g * g
        return -eta_t * g / (np.sqrt(G) + eps), AdagradState(t, G)

    return formula_rule("adagrad", init, step, lr=lr, weight_decay=weight_decay)


@factory
def rmsprop(
    lr: NonNegative = 1e-2,
    alpha: DecayOrOne = 0.99,
    eps: NonNegative = 1e-8,
    weight_decay: NonNegative = 0.0,
    momentum: NonNegative = 0.0,
    centered: bool = False,
) -> Rule:
    r"""RMSprop (Tieleman & Hinton 2012, lecture 6e), as ``torch.optim.RMSprop``.

    .. math::
        \begin{aligned}
        &\textbf{input}: \eta \text{ (lr)}, \alpha \text{ (decay)}, \epsilon,
            \lambda \text{ (weight decay)}, \beta \text{ (momentum)}, \text{centered}, w_1 \\
        &\textbf{initialize}: s_0 \leftarrow 0, \; m_0 \leftarrow 0, \; b_0 \leftarrow 0 \\
        &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
        &\quad g_t \leftarrow \nabla L(w_t) + \lambda w_t \\
        &\quad s_t \leftarrow \alpha s_{t-1} + (1 - \alpha) g_t^2 \\
        &\quad \textbf{if } \text{centered}: m_t \leftarrow \alpha m_{t-1} + (1 - \alpha) g_t,
            \; \sigma_t \leftarrow s_t - m_t^2 \quad \textbf{else}: \sigma_t \leftarrow s_t \\
        &\quad d_t \leftarrow g_t / (\sqrt{\sigma_t} + \epsilon) \\
        &\quad \textbf{if } \beta > 0: b_t \leftarrow \beta b_{t-1} + d_t,
            \; w_{t+1} \leftarrow w_t - \eta b_t \\
        &\quad \textbf{else}: w_{t+1} \leftarrow w_t - \eta d_t
        \end{aligned}

    :math:`\epsilon` is added outside the square root. There is no bias correction: with
    :math:`s_0 = 0` the first step is about :math:`\eta / \sqrt{1 - \alpha}` per coordinate
    (ten times :math:`\eta` for :math:`\alpha = 0.99`). ``centered`` divides by an estimate of the
    gradient's standard deviation instead of its root mean square (Graves 2013). The momentum
    buffer starts at zero (unlike :func:`~minidl.optim.sgd.sgd`'s).
    """

    def init(param: np.ndarray) -> RMSpropState:
        return RMSpropState(
            s=np.zeros_like(param),
            m=np.zeros_like(param) if centered else None,
            b=np.zeros_like(param) if momentum > 0.0 else None,
        )

    def step(g: np.ndarray, state: RMSpropState, param: np.ndarray, eta: float):
        s = alpha * state.s + (1.0 - alpha) * g * g
        m = alpha * state.m + (1.0 - alpha) * g if centered else None
        sigma = s - m * m if centered else s
        d = g / (np.sqrt(sigma) + eps)
        b = momentum * state.b + d if momentum > 0.0 else None
        return -eta * (d if b is None else b), RMSpropState(s, m, b)

    return formula_rule("rmsprop", init, step, lr=lr, weight_decay=weight_decay)


@factory
def adadelta(
    lr: NonNegative = 1.0,
    rho: DecayOrOne = 0.9,
    eps: NonNegative = 1e-6,
    weight_decay: NonNegative = 0.0,
) -> Rule:
    r"""Adadelta (Zeiler 2012), as ``torch.optim.Adadelta``.

    .. math::
        \begin{aligned}
        &\textbf{input}: \eta \text{ (lr)}, \rho \text{ (decay)}, \epsilon,
            \lambda \text{ (weight decay)}, w_1 \\
        &\textbf{initialize}: s_0 \leftarrow 0, \; u_0 \leftarrow 0 \\
        &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
        &\quad g_t \leftarrow \nabla L(w_t) + \lambda w_t \\
        &\quad s_t \leftarrow \rho s_{t-1} + (1 - \rho) g_t^2 \\
        &\quad \Delta w_t \leftarrow
            -\frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{s_t + \epsilon}} \, g_t \\
        &\quad u_t \leftarrow \rho u_{t-1} + (1 - \rho) \Delta w_t^2 \\
        &\quad w_{t+1} \leftarrow w_t + \eta \, \Delta w_t
        \end{aligned}

    Zeiler's units argument: in gradient descent (and Adagrad) the step has the units of
    :math:`g`, not of :math:`w`; Newton's step :math:`H^{-1} g` has the units of :math:`w`, and
    :math:`\Delta w / g \approx 1 / H`. Adadelta replaces :math:`1/H` by the ratio of the root
    mean square of past updates to that of gradients, so the update has the units of :math:`w`
    and no learning rate is needed. torch keeps :math:`\eta` as a plain multiplier (default 1,
    Zeiler's method) and accumulates :math:`u_t` from the step *before* that multiplication.
    :math:`\epsilon` sits inside both square roots; it also starts the process: with
    :math:`u_0 = 0` the first step is at most :math:`\eta \sqrt{\epsilon / (1 - \rho)}` in size.
    """

    def init(param: np.ndarray) -> AdadeltaState:
        return AdadeltaState(s=np.zeros_like(param), u=np.zeros_like(param))

    def step(g: np.ndarray, state: AdadeltaState, param: np.ndarray, eta: float):
        s = rho * state.s + (1.0 - rho) * g * g
        delta = -np.sqrt(state.u + eps) / np.sqrt(s + eps) * g
        u = rho * state.u + (1.0 - rho) * delta * delta
        return eta * delta, AdadeltaState(s, u)

    return formula_rule("adadelta", init, step, lr=lr, weight_decay=weight_decay)


@factory
def adam(
    lr: NonNegative = 1e-3,
    betas: Decays = (0.9, 0.999),
    eps: NonNegative = 1e-8,
    weight_decay: NonNegative = 0.0,
    amsgrad: bool = False,
    bias_correction: bool = True,
) -> Rule:
    r"""Adam (Kingma & Ba 2015) and AMSGrad (Reddi et al. 2018), as ``torch.optim.Adam``.

    .. math::
        \begin{aligned}
        &\textbf{input}: \eta \text{ (lr)}, \beta_1, \beta_2 \text{ (betas)}, \epsilon,
            \lambda \text{ (weight decay)}, \text{amsgrad}, w_1 \\
        &\textbf{initialize}: m_0 \leftarrow 0, \; s_0 \leftarrow 0, \; s^{\max}_0 \leftarrow 0 \\
        &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
        &\quad g_t \leftarrow \nabla L(w_t) + \lambda w_t \\
        &\quad m_t \leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        &\quad s_t \leftarrow \beta_2 s_{t-1} + (1 - \beta_2) g_t^2 \\
        &\quad \textbf{if } \text{amsgrad}: s^{\max}_t \leftarrow \max(s^{\max}_{t-1}, s_t)
            \quad \textbf{else}: s^{\max}_t \leftarrow s_t \\
        &\quad \hat m_t \leftarrow m_t / (1 - \beta_1^t), \;
            \hat s_t \leftarrow s^{\max}_t / (1 - \beta_2^t) \\
        &\quad w_{t+1} \leftarrow w_t - \eta \, \hat m_t / (\sqrt{\hat s_t} + \epsilon)
        \end{aligned}

    :math:`\epsilon` is added outside the square root, after the bias correction (Kingma & Ba's
    Algorithm 1). AMSGrad takes the maximum of the uncorrected :math:`s_t`, as torch does.

    ``bias_correction=False`` uses :math:`m_t` and :math:`s^{\max}_t` as they are. Both start at
    zero, so early on :math:`m_t \approx (1 - \beta_1^t) g` and :math:`s_t \approx (1 - \beta_2^t)
    g^2`: the first step is :math:`-\eta (1 - \beta_1) g_1 / (\sqrt{1 - \beta_2} |g_1| + \epsilon)`
    instead of :math:`-\eta g_1 / (|g_1| + \epsilon)`, i.e. :math:`(1 - \beta_1) / \sqrt{1 -
    \beta_2}` times the corrected one when :math:`\epsilon \ll |g_1|`. That is 3.16 with the
    default betas (the uncorrected step is too *large*), 0.32 with
    :math:`\beta_2 = 0.9`, and for a constant gradient the ratio at step :math:`t` is
    :math:`(1 - \beta_1^t) / \sqrt{1 - \beta_2^t}`. Dropping the correction of :math:`m_t`
    alone would make the steps :math:`1 - \beta_1^t` times the corrected ones, too small.
    """
    return _adam("adam", lr, betas, eps, weight_decay, amsgrad, bias_correction, decoupled=False)


@factory
def adamw(
    lr: NonNegative = 1e-3,
    betas: Decays = (0.9, 0.999),
    eps: NonNegative = 1e-8,
    weight_decay: NonNegative = 1e-2,
    amsgrad: bool = False,
    bias_correction: bool = True,
) -> Rule:
    r"""AdamW (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``: Adam with decoupled decay.

    .. math::
        \begin{aligned}
        &\textbf{input}: \eta \text{ (lr)}, \beta_1, \beta_2 \text{ (betas)}, \epsilon,
            \lambda \text{ (weight decay)}, \text{amsgrad}, w_1 \\
        &\textbf{initialize}: m_0 \leftarrow 0, \; s_0 \leftarrow 0, \; s^{\max}_0 \leftarrow 0 \\
        &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
        &\quad g_t \leftarrow \nabla L(w_t) \\
        &\quad m_t, s_t, s^{\max}_t, \hat m_t, \hat s_t \text{ as in Adam} \\
        &\quad w_{t+1} \leftarrow w_t - \eta \lambda w_t
            - \eta \, \hat m_t / (\sqrt{\hat s_t} + \epsilon)
        \end{aligned}

    The decay :math:`\eta \lambda w_t` bypasses the moments, so every weight shrinks by the same
    factor :math:`1 - \eta \lambda` whatever its gradient history; with Adam's coupled decay a
    weight with large gradients is barely decayed. The decay uses the current rate
    :math:`\eta`, so a schedule scales it too. ``bias_correction`` is as in :func:`adam`.
    """
    return _adam("adamw", lr, betas, eps, weight_decay, amsgrad, bias_correction, decoupled=True)


def _adam(
    name: str,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    bias_correction: bool,
    *,
    decoupled: bool,
) -> Rule:
    """Adam's box, with the decay coupled (:func:`adam`) or decoupled (:func:`adamw`)."""
    beta1, beta2 = betas

    def init(param: np.ndarray) -> AdamState:
        s_max = np.zeros_like(param) if amsgrad else None
        return AdamState(t=0, m=np.zeros_like(param), s=np.zeros_like(param), s_max=s_max)

    def step(g: np.ndarray, state: AdamState, param: np.ndarray, eta: float):
        t = state.t + 1
        m = beta1 * state.m + (1.0 - beta1) * g
        s = beta2 * state.s + (1.0 - beta2) * g * g
        s_max = np.maximum(state.s_max, s) if amsgrad else s
        m_hat = m / (1.0 - beta1**t) if bias_correction else m
        s_hat = s_max / (1.0 - beta2**t) if bias_correction else s_max
        dw = -eta * m_hat / (np.sqrt(s_hat) + eps)
        if decoupled:
            dw = dw - eta * weight_decay * param
        return dw, AdamState(t, m, s, s_max if amsgrad else None)

    coupled = 0.0 if decoupled else weight_decay
    return formula_rule(name, init, step, lr=lr, weight_decay=coupled)


@factory
def nadam(
    lr: NonNegative = 2e-3,
    betas: Decays = (0.9, 0.999),
    eps: NonNegative = 1e-8,
    weight_decay: NonNegative = 0.0,
    momentum_decay: NonNegative = 4e-3,
) -> Rule:
    r"""NAdam, Adam with Nesterov momentum (Dozat 2016), as ``torch.optim.NAdam``.

    .. math::
        \begin{aligned}
        &\textbf{input}: \eta \text{ (lr)}, \beta_1, \beta_2 \text{ (betas)}, \epsilon,
            \lambda \text{ (weight decay)}, \psi \text{ (momentum\_decay)}, w_1 \\
        &\textbf{initialize}: m_0 \leftarrow 0, \; s_0 \leftarrow 0, \; \Pi_0 \leftarrow 1 \\
        &\textbf{for } t = 1, 2, \ldots \textbf{ do} \\
        &\quad g_t \leftarrow \nabla L(w_t) + \lambda w_t \\
        &\quad \mu_t \leftarrow \beta_1 \big(1 - \tfrac12 \, 0.96^{t \psi}\big), \;
            \mu_{t+1} \leftarrow \beta_1 \big(1 - \tfrac12 \, 0.96^{(t+1) \psi}\big) \\
        &\quad \Pi_t \leftarrow \Pi_{t-1} \mu_t \\
        &\quad m_t \leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        &\quad s_t \leftarrow \beta_2 s_{t-1} + (1 - \beta_2) g_t^2, \;
            \hat s_t \leftarrow s_t / (1 - \beta_2^t) \\
        &\quad w_{t+1} \leftarrow w_t - \eta \Big( \frac{1 - \mu_t}{1 - \Pi_t} g_t
            + \frac{\mu_{t+1}}{1 - \Pi_t \mu_{t+1}} m_t \Big) / (\sqrt{\hat s_t} + \epsilon)
        \end{aligned}

    The momentum coefficient :math:`\mu_t` warms up from :math:`\beta_1 / 2` towards
    :math:`\beta_1` (Sutskever et al. 2013's schedule); :math:`\Pi_t` is the bias correction of
    the momentum and uses :math:`\mu_{t+1}` for the look-ahead term, as Nesterov's method takes
    its gradient one step ahead. :math:`\epsilon` is added outside the square root, after the bias
    correction. Weight decay is coupled (torch's default ``decoupled_weight_decay=False``).
    """
    beta1, beta2 = betas

    def momentum_coefficient(t: int) -> float:
        return beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))

    def init(param: np.ndarray) -> NAdamState:
        return NAdamState(t=0, m=np.zeros_like(param), s=np.zeros_like(param), mu_product=1.0)

    def step(g: np.ndarray, state: NAdamState, param: np.ndarray, eta: float):
        t = state.t + 1
        mu, mu_next = momentum_coefficient(t), momentum_coefficient(t + 1)
        mu_product = state.mu_product * mu
        m = beta1 * state.m + (1.0 - beta1) * g
        s = beta2 * state.s + (1.0 - beta2) * g * g
        s_hat = s / (1.0 - beta2**t)
        gradient_weight = (1.0 - mu) / (1.0 - mu_product)
        momentum_weight = mu_next / (1.0 - mu_product * mu_next)
        dw = -eta * (gradient_weight * g + momentum_weight * m) / (np.sqrt(s_hat) + eps)
        return dw, NAdamState(t, m, s, mu_product)

    return formula_rule("nadam", init, step, lr=lr, weight_decay=weight_decay)
