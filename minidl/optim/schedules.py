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
