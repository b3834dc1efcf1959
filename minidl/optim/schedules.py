r"""Learning-rate schedules: the rate :math:`\eta_k` at optimizer step :math:`k = 0, 1, 2, \ldots`

A schedule is any callable ``schedule(k) -> float``. The training loop calls it before step
:math:`k` (counted from 0) and passes the rate to the rule as ``update(..., lr=schedule(k))``;
rules never see the schedule. :class:`ReduceOnPlateau` is also callable (it returns its current
rate whatever ``k`` is), and the loop reports the validation loss to it once per epoch with
``observe(val_loss)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from minidl._checks import check_nonnegative

Schedule = Callable[[int], float]


def _check_step(name: str, k: int) -> None:
    if k < 0:
        raise ValueError(f"{name}: the step index k must be >= 0, got {k}")


def constant(lr: float) -> Schedule:
    r""":math:`\eta_k = \eta_0`."""
    check_nonnegative("constant", lr=lr)

    def schedule(k: int) -> float:
        _check_step("constant", k)
        return float(lr)

    return schedule


def linear_decay(lr: float) -> Schedule:
    r""":math:`\eta_k = \eta_0 / (k + 1)`: the :math:`1/k` decay of stochastic approximation
    (Robbins & Monro 1951), with :math:`\sum_k \eta_k = \infty` and
    :math:`\sum_k \eta_k^2 < \infty`."""
    check_nonnegative("linear_decay", lr=lr)

    def schedule(k: int) -> float:
        _check_step("linear_decay", k)
        return lr / (k + 1)

    return schedule


def quadratic_decay(lr: float) -> Schedule:
    r""":math:`\eta_k = \eta_0 / (k + 1)^2`. Its rates sum to a finite total, so far from a
    minimum it can stop short of it."""
    check_nonnegative("quadratic_decay", lr=lr)

    def schedule(k: int) -> float:
        _check_step("quadratic_decay", k)
        return lr / (k + 1) ** 2

    return schedule


def exponential_decay(lr: float, alpha: float) -> Schedule:
    r""":math:`\eta_k = \eta_0 e^{-\alpha k}` with decay constant :math:`\alpha \ge 0`, as
    ``torch.optim.lr_scheduler.ExponentialLR(gamma=exp(-alpha))``."""
    check_nonnegative("exponential_decay", lr=lr, alpha=alpha)

    def schedule(k: int) -> float:
        _check_step("exponential_decay", k)
        return lr * math.exp(-alpha * k)

    return schedule


def step_decay(lr: float, factor: float, every: int) -> Schedule:
    r""":math:`\eta_k = \eta_0 \gamma^{\lfloor k / n \rfloor}`: the rate is multiplied by
    :math:`\gamma` (``factor``) every :math:`n` (``every``) steps, as ``torch.optim.lr_scheduler.
    StepLR(step_size=n, gamma=γ)``."""
    check_nonnegative("step_decay", lr=lr)
    if not 0.0 < factor <= 1.0 or not (isinstance(every, int) and every >= 1):
        raise ValueError(
            f"step_decay: need 0 < factor <= 1 and an integer every >= 1, "
            f"got factor={factor}, every={every!r}"
        )

    def schedule(k: int) -> float:
        _check_step("step_decay", k)
        return lr * factor ** (k // every)

    return schedule


class ReduceOnPlateau:
    r"""Multiply the rate by ``factor`` when the validation loss stops improving, as
    ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (mode ``"min"``, relative threshold, no
    cooldown).

    The loop calls :meth:`observe` once per epoch with the validation loss :math:`v`. An epoch
    improves if :math:`v < v_{best} (1 - \text{threshold})`; then :math:`v_{best} \leftarrow v`
    and the count of bad epochs restarts at 0. ``patience`` is the number of bad epochs
    tolerated: the rate drops, :math:`\eta \leftarrow \max(\text{factor}\,\eta,
    \text{min\_lr})`, at the end of the ``patience + 1``-th bad epoch in a row, and the count
    restarts. The first observed epoch always improves (:math:`v_{best}` starts at
    :math:`+\infty`).

    Calling the object, ``plateau(k)``, returns the current rate ``plateau.lr`` for any step
    ``k``, so it plugs in wherever a schedule does.
    """

    def __init__(
        self,
        lr: float,
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        min_lr: float = 0.0,
    ):
        check_nonnegative("ReduceOnPlateau", lr=lr)
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceOnPlateau: factor must be in (0, 1), got {factor}")
        if not (isinstance(patience, int) and patience >= 0):
            raise ValueError(f"ReduceOnPlateau: patience must be an integer >= 0, got {patience!r}")
        if not threshold >= 0.0 or not min_lr >= 0.0:
            raise ValueError(
                f"ReduceOnPlateau: threshold and min_lr must be >= 0, "
                f"got threshold={threshold}, min_lr={min_lr}"
            )
        self.lr = float(lr)
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.min_lr = float(min_lr)
        self.best = math.inf
        self.bad_epochs = 0

    def observe(self, val_loss: float) -> float:
        """Record one epoch's validation loss; return the (possibly reduced) rate."""
        val_loss = float(val_loss)
        if val_loss < self.best * (1.0 - self.threshold):
            self.best = val_loss
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.lr = max(self.lr * self.factor, self.min_lr)
            self.bad_epochs = 0
        return self.lr

    def __call__(self, k: int) -> float:
        _check_step("ReduceOnPlateau", k)
        return self.lr

    def __repr__(self) -> str:
        return (
            f"ReduceOnPlateau(lr={self.lr}, factor={self.factor}, patience={self.patience}, "
            f"threshold={self.threshold}, min_lr={self.min_lr})"
        )


def cosine_decay(lr: float, steps: int, *, min_lr: float = 0.0) -> Schedule:
    r"""Half a cosine from :math:`\eta_0` down to :math:`\eta_{\min}` over ``steps`` steps, then
    :math:`\eta_{\min}` (Loshchilov & Hutter, "SGDR", ICLR 2017, without restarts):

    .. math::
        \eta_k = \eta_{\min} + \tfrac12 (\eta_0 - \eta_{\min})
        \big(1 + \cos(\pi \min(k, K) / K)\big),

    as ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=K, eta_min=min_lr)`` for
    :math:`k \le K`."""
    check_nonnegative("cosine_decay", lr=lr, min_lr=min_lr)
    _check_length("cosine_decay", "steps", steps)

    def schedule(k: int) -> float:
        _check_step("cosine_decay", k)
        return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(k, steps) / steps))

    return schedule


def warmup(schedule: Schedule, steps: int, *, start_factor: float = 0.0) -> Schedule:
    r"""Ramp the rate linearly from ``start_factor`` times :math:`\eta_0 =` ``schedule(0)`` up
    to :math:`\eta_0` over ``steps`` steps, then follow ``schedule`` from its start
    (Goyal et al., "Accurate, large minibatch SGD", 2017, Sec. 2.2):

    .. math::
        \eta_k = \eta_0 \big(f + (1 - f)\, k / W\big) \ (k < W), \qquad
        \eta_k = \text{schedule}(k - W) \ (k \ge W),

    as ``SequentialLR([LinearLR(start_factor=f, total_iters=W), ...], milestones=[W])``."""
    _check_length("warmup", "steps", steps)
    if not 0.0 <= start_factor <= 1.0:
        raise ValueError(f"warmup: start_factor must be in [0, 1], got {start_factor}")
    peak = schedule(0)

    def warmed(k: int) -> float:
        _check_step("warmup", k)
        if k < steps:
            return peak * (start_factor + (1 - start_factor) * k / steps)
        return schedule(k - steps)

    return warmed


def one_cycle(
    max_lr: float,
    steps: int,
    *,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""Smith & Topin's one-cycle policy ("Super-convergence", 2019) with cosine phases: from
    :math:`\eta_{\max}/d` up to :math:`\eta_{\max}` over the first ``pct_start`` of the
    ``steps``, then down to :math:`\eta_{\max}/(d\, d_{\text{final}})`, as
    ``torch.optim.lr_scheduler.OneCycleLR(max_lr, total_steps=steps, pct_start, div_factor,
    final_div_factor, cycle_momentum=False)``. Each phase runs
    :math:`\eta = b + \tfrac12 (a - b)(1 + \cos(\pi p))` from :math:`a` to :math:`b` as its
    fraction :math:`p` goes from 0 to 1; steps past the end keep the final rate."""
    check_nonnegative("one_cycle", max_lr=max_lr)
    _check_length("one_cycle", "steps", steps)
    if not 0.0 < pct_start < 1.0 or div_factor <= 0 or final_div_factor <= 0:
        raise ValueError(
            "one_cycle: need 0 < pct_start < 1 and positive div factors, got "
            f"pct_start={pct_start}, div_factor={div_factor}, final_div_factor={final_div_factor}"
        )
    start, end = max_lr / div_factor, max_lr / (div_factor * final_div_factor)
    peak_step, last_step = float(pct_start * steps) - 1, steps - 1

    def anneal(a: float, b: float, fraction: float) -> float:
        return b + 0.5 * (a - b) * (1 + math.cos(math.pi * fraction))

    def schedule(k: int) -> float:
        _check_step("one_cycle", k)
        if k <= peak_step:
            return anneal(start, max_lr, k / peak_step)
        return anneal(max_lr, end, (min(k, last_step) - peak_step) / (last_step - peak_step))

    return schedule


def _check_length(name: str, what: str, steps: int) -> None:
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"{name}: {what} must be an integer >= 1, got {steps!r}")
