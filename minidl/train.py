"""One training loop for batch, stochastic and mini-batch gradient descent.

The loop of the lectures, written once::

    for epoch in 1..E:
        shuffle the training set
        for each mini-batch B:                  |B| = N (batch), 1 (stochastic), else mini-batch
            eta_k  = schedule(k)                  the loop, not the rule, resolves the schedule
            g_k    = (1/|B|) sum_{n in B} grad loss(f(x_n; w_k), y_n)     forward + backward
            w_k+1  = w_k + rule.update(g_k, state, w_k, lr=eta_k)          any rule of minidl.optim
        evaluate training and validation loss and accuracy
        keep the weights of the lowest validation loss;
        stop after `patience` epochs without progress

Everything it sees goes into a :class:`History`: per epoch the training and validation loss and
accuracy, per step the mini-batch loss, the learning rate and the gradient and step norms of each
layer. A non-finite loss stops training and says where it diverged and with which rate.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from minidl.data import batches
from minidl.optim.base import Rule
from minidl.optim.optimizer import Optimizer


class TrainingDiverged(UserWarning):
    """The loss became non-finite: the learning rate is too large for this problem."""


@dataclass
class EarlyStopping:
    """Stop when the validation loss has not improved by ``min_delta`` for ``patience`` epochs.

    A callback of :func:`train` (``early_stopping=`` puts it first among the callbacks):
    ``stopper(epoch, history, model)`` reads ``history.val_loss[-1]``; an epoch improves if it
    lies below the best loss so far by more than ``min_delta``, and then its epoch goes into
    ``history.best_epoch`` and a copy of the weights (and of the running statistics of
    normalization layers) is kept. It returns ``True`` once ``patience`` epochs in a row have
    not improved; :meth:`restore` writes the kept copy back, so the model is the one of lowest
    validation loss. Epoch 0 starts a new run.
    """

    patience: int = 10
    min_delta: float = 0.0
    best_loss: float = field(default=np.inf, init=False, compare=False)
    best_epoch: int | None = field(default=None, init=False, compare=False)
    wait: int = field(default=0, init=False, compare=False)
    _best: dict[str, list[np.ndarray]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise ValueError(f"EarlyStopping: patience must be >= 1, got {self.patience}")
        if self.min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {self.min_delta}")

    def __call__(self, epoch: int, history: History, model: Any) -> bool:
        if epoch == 0:
            self.best_loss, self.best_epoch, self.wait, self._best = np.inf, None, 0, None
        loss = history.val_loss[-1]
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.wait = loss, epoch, 0
            self._best = _snapshot(model)
            history.best_epoch = epoch
            return False
        self.wait += 1
        return self.wait >= self.patience

    def restore(self, model: Any) -> None:
        """Write the weights (and running statistics) of the best epoch back into ``model``."""
        if self._best is not None:
            _restore(model, self._best)

    @property
    def stop_reason(self) -> str:
        return (
            f"early stopping: no improvement for {self.wait} epochs; "
            f"restored the weights of epoch {self.best_epoch}"
        )


@dataclass
class History:
    """What the loop saw. Epoch lists have one entry per epoch, step lists one per update."""

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float | None] = field(default_factory=list)
    val_loss: list[float | None] = field(default_factory=list)
    val_accuracy: list[float | None] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: dict[str, list[float]] = field(default_factory=dict)
    step_norm: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int | None = None
    diverged: bool = False
    stop_reason: str = "finished"

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def steps(self) -> int:
        return len(self.step_loss)


def train(
    model: Any,
    loss: Any,
    optimizer: Optimizer | Rule,
    train_data: tuple[np.ndarray, np.ndarray],
    *,
    epochs: int,
    batch_size: int | None = None,
    rng: np.random.Generator | None = None,
    val_data: tuple[np.ndarray, np.ndarray] | None = None,
    schedule: Callable[[int], float] | None = None,
    early_stopping: EarlyStopping | None = None,
    callbacks: Sequence[Callable[[int, History, Any], bool | None]] = (),
    track_norms: bool = True,
) -> History:
    """Train ``model`` on ``train_data`` and return the :class:`History`.

    Args:
        model: a :class:`minidl.layers.Sequential` (``forward``, ``backward(grad,
            input_grad=False)``, ``parameters``, ``train``/``eval``).
        loss: a :mod:`minidl.losses` object (``forward(output, target)``, ``backward()``,
            ``accuracy(output, target)``).
        optimizer: an :class:`~minidl.optim.Optimizer`, or a bare rule, which is then applied to
            all of ``model.parameters()``.
        train_data, val_data: ``(X, y)`` pairs (a :class:`minidl.data.Dataset` is one).
        epochs: passes over the training set.
        batch_size: ``None`` for batch gradient descent, ``1`` for stochastic, else mini-batch.
        rng: shuffles the training set each epoch; ``None`` keeps the order fixed.
        schedule: ``k -> eta_k`` for update ``k = 0, 1, ...``; if it also has ``observe(loss)``
            (reduce-on-plateau), it is told the validation loss (else the training loss) after
            each epoch. ``None`` keeps the optimizer's own rate.
        early_stopping: stop on a validation-loss plateau and restore the best weights; an
            :class:`EarlyStopping`, called like the callbacks, before them.
        callbacks: ``callback(epoch, history, model)`` after every epoch; returning ``True``
            stops training.
        track_norms: record per-layer gradient and step norms at every update.
    """
    X, y = _as_pair(train_data, "train_data")
    if val_data is not None:
        X_val, y_val = _as_pair(val_data, "val_data")
    if early_stopping is not None and val_data is None:
        raise ValueError("train: early_stopping needs val_data to watch the validation loss")
    if epochs < 0:
        raise ValueError(f"train: epochs must be >= 0, got {epochs}")
    if isinstance(optimizer, Rule):
        optimizer = Optimizer(optimizer, model.parameters())
    params = optimizer.params
    groups = _layer_groups(params)
    history = History()
    stoppers = [*([] if early_stopping is None else [early_stopping]), *callbacks]

    step = 0
    for epoch in range(epochs):
        model.train()
        for X_batch, y_batch in batches(X, y, batch_size, rng=rng, shuffle=rng is not None):
            lr = None if schedule is None else float(schedule(step))

            def closure(X_batch=X_batch, y_batch=y_batch) -> float:
                value = loss.forward(model.forward(X_batch), y_batch)
                model.backward(loss.backward(), input_grad=False)
                return value

            with np.errstate(over="ignore", invalid="ignore"):
                batch_loss = float(optimizer.step(closure, lr=lr))
            history.step_loss.append(batch_loss)
            history.lr.append(_current_lr(optimizer, lr))
            if track_norms:
                _record_norms(history, groups, [p.grad for p in params], optimizer.last_steps)
            if not np.isfinite(batch_loss) or not _all_finite(params):
                return _diverged(history, epoch, step, batch_loss)
            step += 1

        model.eval()
        train_loss, train_acc = _evaluate(model, loss, X, y)
        history.train_loss.append(train_loss)
        history.train_accuracy.append(train_acc)
        monitored = train_loss
        if val_data is None:
            history.val_loss.append(None)
            history.val_accuracy.append(None)
        else:
            val_loss, val_acc = _evaluate(model, loss, X_val, y_val)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_acc)
            monitored = val_loss
        if not np.isfinite(monitored):
            return _diverged(history, epoch, step - 1, monitored)
        if schedule is not None and hasattr(schedule, "observe"):
            schedule.observe(monitored)

        stopper = next((s for s in stoppers if s(epoch, history, model)), None)
        if stopper is not None and stopper is early_stopping:
            early_stopping.restore(model)
            history.stop_reason = early_stopping.stop_reason
            return history
        if stopper is not None:
            history.stop_reason = f"stopped by a callback after epoch {epoch}"
            return history

    if early_stopping is not None:
        early_stopping.restore(model)
    elif history.train_loss:
        history.best_epoch = int(np.argmin(history.val_loss if val_data else history.train_loss))
    return history


def _as_pair(data: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        X, y = data
    except (TypeError, ValueError):
        raise ValueError(
            f"train: {name} must be a pair (X, y), got {type(data).__name__}"
        ) from None
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(
            f"train: {name} has {len(X)} inputs but {len(y)} targets "
            f"(X shape {X.shape}, y shape {y.shape})"
        )
    if len(X) == 0:
        raise ValueError(f"train: {name} is empty (X shape {X.shape})")
    return X, y


def _evaluate(model: Any, loss: Any, X: np.ndarray, y: np.ndarray) -> tuple[float, float | None]:
    with np.errstate(over="ignore", invalid="ignore"):
        output = model.forward(X)
        value = float(loss.forward(output, y))
    return value, loss.accuracy(output, y)


def _layer_groups(params: Sequence[Any]) -> dict[str, list[int]]:
    """Group parameter indices by layer (``Sequential`` names its parameters
    ``"<layer>.<name>"``)."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(params):
        layer = p.name.split(".", 1)[0] if "." in p.name else (p.name or str(i))
        groups.setdefault(layer, []).append(i)
    return groups


def _record_norms(
    history: History,
    groups: dict[str, list[int]],
    grads: Sequence[np.ndarray],
    steps: Sequence[np.ndarray],
) -> None:
    for layer, indices in groups.items():
        history.grad_norm.setdefault(layer, []).append(_norm(grads[i] for i in indices))
        history.step_norm.setdefault(layer, []).append(_norm(steps[i] for i in indices))


def _norm(arrays: Any) -> float:
    return float(np.sqrt(sum(float(np.vdot(a, a)) for a in arrays)))


def _all_finite(params: Sequence[Any]) -> bool:
    return all(np.isfinite(p.value).all() for p in params)


def _current_lr(optimizer: Optimizer, lr: float | None) -> float:
    if lr is not None:
        return lr
    return float(optimizer.rule.hyperparams.get("lr", np.nan))


def _diverged(history: History, epoch: int, step: int, value: float) -> History:
    rate = history.lr[-1] if history.lr else float("nan")
    history.diverged = True
    history.stop_reason = (
        f"training diverged at epoch {epoch}, step {step}: the loss became {value} "
        f"with learning rate {rate:g}; try a smaller learning rate"
    )
    warnings.warn(history.stop_reason, TrainingDiverged, stacklevel=3)
    return history


_BUFFERS = ("running_mean", "running_var")


def _snapshot(model: Any) -> dict[str, list[np.ndarray]]:
    """Copies of the weights and of every normalization layer's running statistics."""
    layers = list(model) if hasattr(model, "__iter__") else [model]
    buffers = [getattr(layer, b).copy() for layer in layers for b in _BUFFERS if hasattr(layer, b)]
    return {"params": [p.value.copy() for p in model.parameters()], "buffers": buffers}


def _restore(model: Any, state: dict[str, list[np.ndarray]]) -> None:
    for p, value in zip(model.parameters(), state["params"], strict=True):
        p.value[...] = value
    layers = list(model) if hasattr(model, "__iter__") else [model]
    saved = iter(state["buffers"])
    for layer in layers:
        for b in _BUFFERS:
            if hasattr(layer, b):
                getattr(layer, b)[...] = next(saved)
