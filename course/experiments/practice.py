"""Experiments of the appendix "In practice today" (book/appendix-practice.md): the modern
counterparts of the lectures' tricks, run on the framework.

- :func:`cliff`, :func:`cliff_runs`: one huge gradient at a cliff throws plain gradient descent
  far away; clipping its norm (:func:`minidl.optim.clip_by_norm`) bounds the step
  (Pascanu, Mikolov and Bengio 2013).
- :func:`schedule_curves`: warm-up, cosine and one-cycle schedules of
  :mod:`minidl.optim.schedules` (tested against ``torch.optim.lr_scheduler`` in tests/minidl).
- :func:`warmup_runs`: a deep ReLU network on the digits at rates too large for it, with and
  without linear warm-up: whether warm-up lets it train, and when the runs blow up.
- :func:`linear_scaling`: larger batches at proportionally larger rates follow the small batch
  epoch by epoch (Goyal et al. 2017), until the rate meets the curvature's ceiling.
- :func:`schedule_runs`, :func:`optimizer_runs`: the modern schedules and Adam, AdamW and SGD
  with momentum trained on the digits: what a small problem does and does not show.
- :func:`initial_losses`: the first sanity check of a classifier, a loss of about
  :math:`\\log C` at initialization, and what a too large output layer does to it.
- :func:`update_ratios`: the ratio :math:`\\|\\Delta W\\| / \\|W\\|` of each update, the
  practitioners' gauge of a learning rate (Karpathy's rule of thumb: about :math:`10^{-3}`).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from threadpoolctl import threadpool_limits

from course.experiments import ch08_tricks as tricks
from minidl import layers, losses, optim, train
from minidl.data import Problem, num_batches
from minidl.optim import schedules

# ----- gradient clipping at a cliff --------------------------------------------------------------

CLIFF_HEIGHT, CLIFF_SHARPNESS, CLIFF_AT, BOWL_MINIMUM = 10.0, 20.0, 1.0, 4.0


def cliff() -> Problem:
    r"""A bowl with a cliff: :math:`L(w) = (w - 4)^2 / 8 + h\, \sigma\big(s (1 - w)\big)`,
    :math:`h = 10`, :math:`s = 20`. Left of :math:`w = 1` a plateau of height about 10 falls, over
    a width of about :math:`1/s`, onto a gentle bowl with its minimum at :math:`w^* \approx 4`;
    on the wall the slope reaches :math:`h s / 4 = 50`."""
    h, s, c, m = CLIFF_HEIGHT, CLIFF_SHARPNESS, CLIFF_AT, BOWL_MINIMUM

    def sig(w):
        return 1 / (1 + np.exp(-s * (c - w[..., 0])))

    def grad(w):
        return ((w[..., 0] - m) / 4 - h * s * sig(w) * (1 - sig(w)))[..., None]

    def hessian(w):
        p = sig(w)
        return np.array([[0.25 + h * s**2 * p * (1 - p) * (1 - 2 * p)]])

    return Problem(
        "cliff",
        1,
        value=lambda w: (w[..., 0] - m) ** 2 / 8 + h * sig(w),
        grad=grad,
        hessian=hessian,
        minimizer=[m],
        minimum=0.0,
    )


def cliff_runs(
    *, lr: float = 0.5, max_norm: float = 1.0, w0: float = 0.0, steps: int = 60
) -> dict[str, np.ndarray]:
    """Gradient descent on :func:`cliff` from the plateau, plain and with its gradient clipped to
    norm ``max_norm``: ``{"plain" | "clipped": w_0..w_T}``."""
    problem = cliff()
    rules = {
        "plain": optim.gradient_descent(lr),
        "clipped": optim.chain(optim.clip_by_norm(max_norm), optim.gradient_descent(lr)),
    }
    runs = {}
    for name, rule in rules.items():
        w = np.array([w0])
        state = rule.init(w)
        path = [w]
        for _ in range(steps):
            step, state = rule.update(problem.grad(w), state, w)
            w = w + step
            path.append(w)
        runs[name] = np.array(path)[:, 0]
    return runs


# ----- training on the digits ---------------------------------------------------------------------


def _train_on_digits(
    sizes, rule, *, seed: int, epochs: int, batch_size: int, schedule=None, track_norms=False
):
    """A ReLU MLP of ``sizes`` trained on the digits' training split and validated on its
    validation split, from ``seed``: ``(model, history)``. A run that blows up stops early and
    silently (``history.diverged``): the experiments count those runs."""
    split = tricks.digits_split()
    model = layers.mlp(sizes, rng=np.random.default_rng(seed))
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", train.TrainingDiverged)
        history = train.train(
            model,
            losses.SoftmaxCrossEntropy(),
            rule,
            split.train,
            val_data=split.val,
            epochs=epochs,
            batch_size=batch_size,
            rng=np.random.default_rng(seed + 1),
            schedule=schedule,
            track_norms=track_norms,
        )
    return model, history


# ----- the modern schedules -----------------------------------------------------------------------


def schedule_curves(lr: float = 1.0, steps: int = 100, warm: int = 10) -> dict[str, np.ndarray]:
    """Rates of step decay, cosine, warm-up + cosine and one-cycle over ``steps`` updates."""
    shapes = {
        "step decay": schedules.step_decay(lr, 0.1, steps // 3 + 1),
        "cosine": schedules.cosine_decay(lr, steps),
        "warm-up + cosine": schedules.warmup(schedules.cosine_decay(lr, steps - warm), warm),
        "one-cycle": schedules.one_cycle(lr, steps),
    }
    return {name: np.array([s(k) for k in range(steps)]) for name, s in shapes.items()}


class WarmupRun(NamedTuple):
    step_loss: np.ndarray  # mini-batch loss of every update, up to the one that blew up
    blew_up_at: int | None  # update k (from 0) whose loss or weights were not finite, or None
    val_accuracy: float  # after the last epoch; 0.0 for a run that blew up

    @property
    def trained(self) -> bool:
        """Finite to the end and far better than chance (10 classes: 0.1)."""
        return self.blew_up_at is None and self.val_accuracy > 0.5


def warmup_runs(
    lrs=(0.05, 0.1, 0.2), *, warm: int = 50, seeds: int = 5, epochs: int = 15, depth: int = 8
) -> dict[tuple[float, int], list[WarmupRun]]:
    """Train a 64-(64 x ``depth``)-10 ReLU MLP on the digits with momentum 0.9 (batches of 64,
    17 updates an epoch) at each peak rate, with a constant rate and with a linear warm-up over
    the first ``warm`` updates: ``{(lr, 0 | warm): one WarmupRun per seed}``."""
    runs: dict[tuple[float, int], list[WarmupRun]] = {}
    for lr in lrs:
        for w in (0, warm):
            schedule = schedules.constant(lr)
            if w:
                schedule = schedules.warmup(schedule, w)
            runs[lr, w] = []
            for seed in range(seeds):
                _, history = _train_on_digits(
                    [64] + [64] * depth + [10],
                    optim.momentum(lr, 0.9),
                    seed=seed,
                    epochs=epochs,
                    batch_size=64,
                    schedule=schedule,
                )
                blew_up = history.steps - 1 if history.diverged else None
                accuracy = 0.0 if history.diverged else float(history.val_accuracy[-1])
                runs[lr, w].append(WarmupRun(np.array(history.step_loss), blew_up, accuracy))
    return runs


class FinalLosses(NamedTuple):
    train_loss: np.ndarray  # per seed, after the last epoch
    val_loss: np.ndarray
    val_accuracy: np.ndarray


def _finals(histories) -> FinalLosses:
    histories = list(histories)
    return FinalLosses(
        *(np.array([getattr(h, key)[-1] for h in histories]) for key in FinalLosses._fields)
    )


def schedule_runs(lr: float = 1.0, *, epochs: int = 20, seeds: int = 3) -> dict[str, FinalLosses]:
    """The 64-32-10 ReLU MLP on the digits, plain SGD with batches of 64 (17 updates an epoch)
    and peak rate ``lr``, under a constant rate, cosine decay, warm-up over two epochs then
    cosine, and one-cycle, each over the whole run."""
    per_epoch = num_batches(len(tricks.digits_split().train.y), 64)
    steps, warm = epochs * per_epoch, 2 * per_epoch
    shapes = {
        "constant": lambda: None,
        "cosine": lambda: schedules.cosine_decay(lr, steps),
        "warm-up + cosine": lambda: schedules.warmup(
            schedules.cosine_decay(lr, steps - warm), warm
        ),
        "one-cycle": lambda: schedules.one_cycle(lr, steps),
    }
    return {
        name: _finals(
            _train_on_digits(
                [64, 32, 10],
                optim.gradient_descent(lr),
                seed=seed,
                epochs=epochs,
                batch_size=64,
                schedule=shape(),
            )[1]
            for seed in range(seeds)
        )
        for name, shape in shapes.items()
    }


def optimizer_runs(*, epochs: int = 40, seeds: int = 3) -> dict[str, FinalLosses]:
    """A 64-64-10 ReLU MLP on the digits with batches of 64: SGD with momentum 0.9 at rate 0.05,
    Adam at its default rate :math:`10^{-3}`, and AdamW at that rate with decoupled weight decay
    :math:`10^{-2}`."""
    rules = {
        "SGD + momentum": lambda: optim.momentum(0.05, 0.9),
        "Adam": lambda: optim.adam(1e-3),
        "AdamW": lambda: optim.adamw(1e-3, weight_decay=1e-2),
    }
    return {
        name: _finals(
            _train_on_digits([64, 64, 10], rule(), seed=seed, epochs=epochs, batch_size=64)[1]
            for seed in range(seeds)
        )
        for name, rule in rules.items()
    }


# ----- the linear scaling rule ------------------------------------------------------------------


class LinearScaling(NamedTuple):
    batch_sizes: tuple[int, ...]
    val_loss: dict[tuple[int, str], np.ndarray]  # (batch, "scaled" | "unscaled") -> per seed
    base_lr: float
    n_train: int


def linear_scaling(
    batch_sizes=(8, 16, 32, 64, 128, 256, 512),
    *,
    base_lr: float = 0.05,
    epochs: int = 10,
    seeds: int = 3,
) -> LinearScaling:
    r"""Train the 64-32-10 ReLU MLP on the digits with plain SGD for ``epochs`` epochs at each
    batch size :math:`kB_0` (:math:`B_0` = ``batch_sizes[0]``), at the rate :math:`k\eta_0`
    ("scaled") and at :math:`\eta_0` ("unscaled"): the validation loss after the last epoch, per
    seed. A run whose loss stops being finite counts as ``inf``."""
    split = tricks.digits_split()
    losses_ = {}
    for batch in batch_sizes:
        k = batch / batch_sizes[0]
        for name, lr in [("scaled", k * base_lr), ("unscaled", base_lr)]:
            finals = []
            for seed in range(seeds):
                _, history = _train_on_digits(
                    [64, 32, 10],
                    optim.gradient_descent(lr),
                    seed=seed,
                    epochs=epochs,
                    batch_size=batch,
                )
                finals.append(np.inf if history.diverged else history.val_loss[-1])
            losses_[batch, name] = np.array(finals)
    return LinearScaling(tuple(batch_sizes), losses_, base_lr, len(split.train.y))


# ----- sanity checks of a training run ---------------------------------------------------------


def initial_losses(*, seed: int = 0, output_gain: float = 0.01) -> dict[str, float]:
    """Cross-entropy on the digits' training set of a fresh 64-32-10 ReLU MLP, as initialized and
    with its output layer's weights scaled by ``output_gain``, against :math:`\\log 10`."""
    split = tricks.digits_split()
    loss = losses.SoftmaxCrossEntropy()
    model = layers.mlp([64, 32, 10], rng=np.random.default_rng(seed))
    out = {"log C": float(np.log(10)), "as initialized": 0.0, "small output layer": 0.0}
    out["as initialized"] = float(loss.forward(model.forward(split.train.X), split.train.y))
    model[-1].W.value *= output_gain
    out["small output layer"] = float(loss.forward(model.forward(split.train.X), split.train.y))
    return out


class UpdateRatios(NamedTuple):
    ratios: dict[float, np.ndarray]  # learning rate -> ||step|| / ||W, b|| of layer 0, per update
    val_loss: dict[float, float]  # learning rate -> validation loss after the run


def update_ratios(lrs=(0.01, 0.1, 1.0), *, seed: int = 0, epochs: int = 1) -> UpdateRatios:
    """Train the 64-32-10 ReLU MLP on the digits with plain SGD (batches of 64) at each rate and
    divide every update's step norm in the first layer by that layer's parameter norm at the
    end of the run."""
    ratios, val = {}, {}
    for lr in lrs:
        model, history = _train_on_digits(
            [64, 32, 10],
            optim.gradient_descent(lr),
            seed=seed,
            epochs=epochs,
            batch_size=64,
            track_norms=True,
        )
        first = next(iter(history.step_norm))
        size = np.sqrt(sum(float(np.sum(p.value**2)) for p in model[0].parameters()))
        ratios[lr] = np.array(history.step_norm[first]) / size
        val[lr] = float(history.val_loss[-1])
    return UpdateRatios(ratios, val)
