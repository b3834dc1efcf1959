r"""Gradient modifiers (penalties, noise, clipping) and how to compose them with a rule.

A *modifier* is a pure pair like a rule (optax's chained transformations), but it returns a new
gradient instead of a step: ``state = modifier.init(param)`` and
``new_grad, state = modifier.update(grad, state, param)``. :func:`chain` applies modifiers in
order and hands the result to a rule, giving a rule again. The L1 *proximal* step is not a
gradient modifier, since it acts on the point after the step: :func:`proximal_l1` wraps a rule.

A modifier sees whatever the rule sees: one parameter array, or the flat parameter vector for a
rule with ``flat=True`` (then :func:`clip_by_norm` clips the global norm). Penalties change only
the gradient: the ``loss``/``loss_fn`` a line search evaluates does not include them. Which
parameters get a penalty is the caller's choice: to leave the biases alone
(``Parameter.regularize`` is ``False`` for them), give the :class:`~minidl.optim.Optimizer` the
rule without the penalty as ``unregularized_rule``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from minidl._checks import check_grad, check_nonnegative
from minidl.optim.base import NonNegative, Positive, Rule, coupled_decay, describe, factory


class Modifier(NamedTuple):
    """A pure gradient map: ``init(param) -> state`` and
    ``update(grad, state, param) -> (new_grad, new_state)``."""

    init: Callable[[np.ndarray], Any]
    update: Callable[[np.ndarray, Any, np.ndarray], tuple[np.ndarray, Any]]
    hyperparams: Mapping[str, Any] = MappingProxyType({})

    def __repr__(self) -> str:
        return describe(self.hyperparams, "Modifier(...)")


class NoState(NamedTuple):
    """The state of a modifier that remembers nothing."""


class NoiseState(NamedTuple):
    """``t``: the number of noise draws so far, the step index of the next one."""

    t: int


class ChainState(NamedTuple):
    """The modifiers' states, in order, and the rule's state."""

    modifier_states: tuple
    rule_state: Any


def _no_state(param: np.ndarray) -> NoState:
    return NoState()


@factory
def l2(weight_decay: NonNegative) -> Modifier:
    r"""Coupled L2 penalty :math:`\tfrac{\lambda}{2}\|w\|^2`: :math:`g \leftarrow g + \lambda w`.

    Coupled means the penalty's gradient goes through the rule, so an adaptive rule rescales
    it too (Loshchilov & Hutter 2019 contrast this with AdamW's decoupled decay). It is the
    map the factories' ``weight_decay=`` applies (:func:`~minidl.optim.base.coupled_decay`).
    """

    def update(grad: np.ndarray, state: NoState, param: np.ndarray) -> tuple[np.ndarray, NoState]:
        return coupled_decay(check_grad("l2", grad, param), param, weight_decay), state

    return Modifier(_no_state, update)


@factory
def l1(strength: NonNegative) -> Modifier:
    r"""L1 penalty :math:`\lambda \|w\|_1` by its subgradient:
    :math:`g \leftarrow g + \lambda \operatorname{sign}(w)` (with :math:`\operatorname{sign}(0)
    = 0`). Weights oscillate around 0 rather than reach it; :func:`proximal_l1` makes exact
    zeros."""

    def update(grad: np.ndarray, state: NoState, param: np.ndarray) -> tuple[np.ndarray, NoState]:
        return check_grad("l1", grad, param) + strength * np.sign(param), state

    return Modifier(_no_state, update)


@factory
def gradient_noise(eta: NonNegative = 0.01, gamma: NonNegative = 0.55, *, seed: int) -> Modifier:
    r"""Annealed Gaussian gradient noise (Neelakantan et al. 2015, "Adding gradient noise
    improves learning for very deep networks"):

    .. math::
        g_t \leftarrow g_t + \mathcal{N}(0, \sigma_t^2), \qquad
        \sigma_t^2 = \frac{\eta}{(1 + t)^\gamma}, \quad t = 0, 1, 2, \ldots

    Here :math:`\eta` is the noise scale, not a learning rate (the paper uses
    :math:`\eta \in \{0.01, 0.3, 1\}`, :math:`\gamma = 0.55`). To keep the modifier pure and
    replayable the noise of draw :math:`t` comes from ``np.random.default_rng((seed, t))``, a
    function of the seed and the state only, instead of a shared ``Generator``. Consequently
    every array this modifier is applied to with the same ``seed`` gets the same draw at the
    same ``t`` (arrays of equal shape get equal noise): give each parameter its own seed, or
    apply it under a flat rule.
    """
    if not (isinstance(seed, int | np.integer) and seed >= 0):
        raise ValueError(f"gradient_noise: seed must be an integer >= 0, got {seed!r}")

    def init(param: np.ndarray) -> NoiseState:
        return NoiseState(0)

    def update(
        grad: np.ndarray, state: NoiseState, param: np.ndarray
    ) -> tuple[np.ndarray, NoiseState]:
        grad = check_grad("gradient_noise", grad, param)
        sigma = np.sqrt(eta / (1.0 + state.t) ** gamma)
        noise = np.random.default_rng((seed, state.t)).normal(0.0, sigma, size=grad.shape)
        return grad + noise.astype(grad.dtype), NoiseState(state.t + 1)

    return Modifier(init, update)


@factory
def clip_by_norm(max_norm: Positive) -> Modifier:
    r"""Rescale a gradient longer than ``max_norm`` to that length (Pascanu et al. 2013):

    .. math::
        g \leftarrow g \cdot \min\!\left(1, \frac{c}{\|g\|_2}\right).

    The norm is that of the array the modifier sees (one parameter array, or the flat vector
    under a flat rule); the :class:`~minidl.optim.Optimizer`'s ``max_grad_norm`` applies the
    same map (:func:`clip_global_norm`) to the norm of all parameters' gradients together.
    """

    def update(grad: np.ndarray, state: NoState, param: np.ndarray) -> tuple[np.ndarray, NoState]:
        (grad,) = clip_global_norm([check_grad("clip_by_norm", grad, param)], max_norm)
        return grad, state

    return Modifier(_no_state, update)


def clip_global_norm(grads: Sequence[np.ndarray], max_norm: float) -> list[np.ndarray]:
    r"""``grads`` scaled by one factor :math:`\min(1, c / \|g\|_2)`, :math:`\|g\|_2` the norm
    of all of them together, so that it is at most ``max_norm`` :math:`c`."""
    norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads)))
    if norm <= max_norm:
        return list(grads)
    return [g * (max_norm / norm) for g in grads]


def chain(*parts: Modifier | Rule) -> Rule:
    """``chain(m1, m2, ..., rule)``: a rule that feeds the gradient through ``m1``, then ``m2``,
    ..., then ``rule``.

    The state is a :class:`ChainState` of the modifiers' states and the rule's state; ``lr``
    and the extra inputs go to the rule, whose ``needs`` and ``flat`` the chain keeps. So are
    its ``hyperparams``, with the modifiers' (in order) under ``"modifiers"``.
    """
    if not parts or not isinstance(parts[-1], Rule):
        last = type(parts[-1]).__name__ if parts else "nothing"
        raise ValueError(f"chain: the last argument must be a Rule, got {last}")
    *modifiers, rule = parts
    for modifier in modifiers:
        if not isinstance(modifier, Modifier):
            raise ValueError(
                f"chain: every argument before the rule must be a Modifier, "
                f"got {type(modifier).__name__}"
            )

    def init(param: np.ndarray) -> ChainState:
        return ChainState(tuple(m.init(param) for m in modifiers), rule.init(param))

    def update(
        grad: np.ndarray,
        state: ChainState,
        param: np.ndarray,
        *,
        lr: float | None = None,
        **extras: Any,
    ) -> tuple[np.ndarray, ChainState]:
        modifier_states = []
        for modifier, modifier_state in zip(modifiers, state.modifier_states, strict=True):
            grad, modifier_state = modifier.update(grad, modifier_state, param)
            modifier_states.append(modifier_state)
        step, rule_state = rule.update(grad, state.rule_state, param, lr=lr, **extras)
        return step, ChainState(tuple(modifier_states), rule_state)

    inner = rule.hyperparams.get("modifiers", ())
    hyperparams = {**rule.hyperparams, "modifiers": (*(m.hyperparams for m in modifiers), *inner)}
    return Rule(
        init, update, needs=rule.needs, flat=rule.flat, hyperparams=MappingProxyType(hyperparams)
    )


def proximal_l1(rule: Rule, strength: float, *, lr: float | None = None) -> Rule:
    r"""``rule`` followed by the proximal map of :math:`\eta\lambda\|w\|_1`, the soft threshold
    (proximal gradient / ISTA; Parikh & Boyd 2014, §6.5.2):

    .. math::
        u = w_t + \Delta w_t, \qquad
        w_{t+1} = \operatorname{sign}(u) \max(|u| - \eta \lambda, 0),

    where :math:`\Delta w_t` is the step of ``rule`` and :math:`\lambda` is ``strength``. The
    returned step is :math:`w_{t+1} - w_t`, so weights that the threshold catches land exactly
    on 0 (a subgradient, :func:`l1`, only makes them oscillate around it). :math:`\eta` is the
    learning rate: the ``lr`` passed to ``update`` when there is one, else the ``lr`` given
    here, by default the rate the rule was built with (``rule.hyperparams["lr"]``). The rule's
    ``hyperparams`` are kept, with ``strength`` and :math:`\eta` under ``"proximal_l1"``.
    """
    if lr is None:
        if "lr" not in rule.hyperparams:
            raise ValueError(
                f"proximal_l1: the rule records no lr in its hyperparams {dict(rule.hyperparams)}; "
                "pass lr="
            )
        lr = rule.hyperparams["lr"]
    check_nonnegative("proximal_l1", strength=strength, lr=lr)
    default_lr = lr

    def update(
        grad: np.ndarray, state: Any, param: np.ndarray, *, lr: float | None = None, **extras: Any
    ) -> tuple[np.ndarray, Any]:
        eta = default_lr if lr is None else lr
        step, state = rule.update(grad, state, param, lr=lr, **extras)
        u = param + step
        w_new = np.sign(u) * np.maximum(np.abs(u) - eta * strength, 0.0)
        return (w_new - param).astype(np.asarray(param).dtype, copy=False), state

    proximal = MappingProxyType({"name": "proximal_l1", "strength": strength, "lr": lr})
    hyperparams = {**rule.hyperparams, "proximal_l1": proximal}
    return Rule(
        rule.init,
        update,
        needs=rule.needs,
        flat=rule.flat,
        hyperparams=MappingProxyType(hyperparams),
    )
