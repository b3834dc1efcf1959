r"""Chapter 7 (Regularization and generalization): the experiments behind the chapter's claims.

- :func:`moons_split`: small noisy two-moons problems, split into training, validation and test.
- :func:`train_with_penalty`: a 2-32-32-2 MLP trained with no penalty, L2 (weight decay) or L1
  (proximal, exact zeros) on its weights, never on its biases; :func:`count_zeros` counts the
  weights at (or near) zero.
- :func:`decay_without_data`: one weight whose data gradient is zero under L2 (it shrinks by the
  factor :math:`1 - \eta\lambda_{\mathrm{reg}}` per step) and L1 (it walks to exactly 0).
- :func:`dropout_mean`: the average activation of inverted dropout over many masks, with its
  standard error, against the unscaled mask.
- :func:`train_with_dropout`, :func:`early_stopping_run`: an over-fitting 2-128-128-2 network,
  its training and validation curves with dropout, and early stopping restoring the best epoch.
- :func:`bias_variance`: bias² and variance of polynomial fits of growing degree.
- :func:`cross_validate`: k-fold cross-validation of the L2 strength.
- :func:`width_sweep`: test error against the width of the network (over-parametrization).

Small matrices run faster on one BLAS thread than on several competing ones, so training runs
under ``threadpool_limits(1)``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
from threadpoolctl import threadpool_limits

from minidl import data, layers, losses, optim, train
from minidl.init import he_normal
from minidl.parameter import Parameter

Penalty = Literal["none", "l1", "l2", "l1_subgradient"]


@functools.cache
def moons_split(
    n_per_class: int = 100,
    noise: float = 0.25,
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> data.Split:
    """Two moons with Gaussian noise, split at random (stratified) into train/val/test."""
    rng = np.random.default_rng(seed)
    moons = data.two_moons(n_per_class, rng=rng, noise=noise)
    return data.train_val_test_split(
        *moons, rng=rng, val_fraction=val_fraction, test_fraction=test_fraction
    )


def overfit_split() -> data.Split:
    """150 noisy points per class, only 60 of them for training: a wide network over-fits."""
    return moons_split(150, 0.3, val_fraction=0.4, test_fraction=0.4)


# ----- L1 and L2 penalties -----------------------------------------------------------------------


@dataclass(frozen=True)
class PenaltyRun:
    """A trained model, its history, and all its weights (biases excluded) as one vector."""

    model: layers.Sequential
    history: train.History
    weights: np.ndarray


def penalized_optimizer(
    kind: Penalty, strength: float, params: list, *, lr: float
) -> optim.Optimizer:
    r"""Gradient descent on :math:`L(w) + \lambda_{\mathrm{reg}} R(w)` for the weights only.

    ``"l2"``: :math:`R = \tfrac12\|w\|^2`, the gradient gains :math:`\lambda_{\mathrm{reg}} w`.
    ``"l1"``: :math:`R = \|w\|_1` by the proximal step (soft threshold), which makes exact zeros;
    ``"l1_subgradient"``: the same penalty by its subgradient :math:`\lambda_{\mathrm{reg}}
    \operatorname{sign}(w)`, which only brings weights near zero. Biases (``regularize=False``)
    get plain gradient descent.
    """
    base = optim.gradient_descent(lr)
    if kind == "l2":
        rule = optim.chain(optim.l2(strength), base)
    elif kind == "l1":
        rule = optim.proximal_l1(base, strength)
    elif kind == "l1_subgradient":
        rule = optim.chain(optim.l1(strength), base)
    elif kind == "none":
        rule = base
    else:
        raise ValueError(
            f"penalized_optimizer: kind must be none, l1, l1_subgradient or l2, got {kind!r}"
        )
    return optim.Optimizer(rule, params, unregularized_rule=base)


@functools.cache
def train_with_penalty(
    kind: Penalty,
    strength: float,
    *,
    epochs: int = 300,
    lr: float = 0.5,
    width: int = 32,
    seed: int = 1,
) -> PenaltyRun:
    """Full-batch gradient descent on the two-moons training set with one penalty."""
    split = moons_split()
    model = layers.mlp([2, width, width, 2], rng=np.random.default_rng(seed))
    opt = penalized_optimizer(kind, strength, model.parameters(), lr=lr)
    with threadpool_limits(1):
        history = train.train(
            model,
            losses.SoftmaxCrossEntropy(),
            opt,
            split.train,
            val_data=split.val,
            epochs=epochs,
            track_norms=False,
        )
    weights = np.concatenate([p.value.ravel() for p in model.parameters() if p.regularize])
    return PenaltyRun(model, history, weights)


def count_zeros(weights: np.ndarray, tol: float = 0.0) -> int:
    """How many weights have :math:`|w| \\le` ``tol`` (``tol = 0``: exactly zero)."""
    return int(np.sum(np.abs(weights) <= tol))


def decay_without_data(
    kind: Penalty, strength: float, *, lr: float, w0: float = 1.0, steps: int = 60
) -> np.ndarray:
    r"""The iterates :math:`w_0, \dots, w_T` of one weight whose data gradient is zero.

    Under L2 each step multiplies it by :math:`1 - \eta\lambda_{\mathrm{reg}}`; under proximal L1
    it moves :math:`\eta\lambda_{\mathrm{reg}}` towards 0 per step and then stays at exactly 0.
    """
    param = Parameter(np.array([w0]), "w")
    opt = penalized_optimizer(kind, strength, [param], lr=lr)
    path = [w0]
    for _ in range(steps):

        def closure() -> float:
            param.grad = np.zeros(1)
            return 0.0

        opt.step(closure)
        path.append(float(param.value[0]))
    return np.array(path)


def decision_grid(
    model: layers.Sequential, xlim=(-1.6, 2.6), ylim=(-1.3, 1.8), resolution: int = 120
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The probability of class 1 on a grid, for drawing a decision boundary."""
    xs, ys = np.meshgrid(np.linspace(*xlim, resolution), np.linspace(*ylim, resolution))
    model.eval()
    logits = model.forward(np.column_stack([xs.ravel(), ys.ravel()]))
    prob = layers.softmax(logits)[:, 1].reshape(xs.shape)
    return xs, ys, prob


# ----- dropout -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DropoutMean:
    """Mean of ``draws`` dropout outputs of ``x``; its standard error; the unscaled mean."""

    x: np.ndarray
    mean: np.ndarray
    standard_error: np.ndarray
    unscaled_mean: np.ndarray


def dropout_mean(p: float, x: np.ndarray, *, draws: int, seed: int = 0) -> DropoutMean:
    r"""Average ``draws`` outputs of :class:`minidl.layers.Dropout` (training mode) on ``x``.

    Each output entry is :math:`x\,m/(1-p)` with :math:`m \sim \text{Bernoulli}(1-p)`, whose
    variance is :math:`x^2 p/(1-p)`; so the mean of ``draws`` outputs has the standard error
    :math:`|x| \sqrt{p/(1-p)} / \sqrt{\text{draws}}`. The unscaled mask (no :math:`1/(1-p)`)
    averages to :math:`(1-p)\,x` instead of :math:`x`.
    """
    x = np.asarray(x, dtype=np.float64)
    layer = layers.Dropout(p, rng=np.random.default_rng(seed)).train()
    total = np.zeros_like(x)
    for _ in range(draws):
        total += layer.forward(x)
    mean = total / draws
    standard_error = np.abs(x) * np.sqrt(p / (1 - p)) / np.sqrt(draws)
    return DropoutMean(x, mean, standard_error, mean * (1 - p))


def dropout_network(p: float, *, width: int = 128, seed: int = 1) -> layers.Sequential:
    """2-width-width-2 ReLU network with dropout of rate ``p`` after each hidden layer."""
    rng = np.random.default_rng(seed)
    hidden: list[layers.Layer] = []
    for n_in in (2, width):
        hidden += [layers.Linear(n_in, width, rng=rng, init=he_normal), layers.ReLU()]
        if p > 0:
            hidden.append(layers.Dropout(p, rng=rng))
    return layers.Sequential(*hidden, layers.Linear(width, 2, rng=rng))


@functools.cache
def train_with_dropout(
    p: float, *, epochs: int = 250, lr: float = 0.01, patience: int | None = None, seed: int = 1
) -> tuple[layers.Sequential, train.History]:
    """Adam on the over-fitting split; with ``patience``, early stopping on the validation loss."""
    split = overfit_split()
    model = dropout_network(p, seed=seed)
    stopping = None if patience is None else train.EarlyStopping(patience=patience)
    with threadpool_limits(1):
        history = train.train(
            model,
            losses.SoftmaxCrossEntropy(),
            optim.adam(lr),
            split.train,
            val_data=split.val,
            epochs=epochs,
            early_stopping=stopping,
            track_norms=False,
        )
    return model, history


@dataclass(frozen=True)
class EarlyStoppingRun:
    """The full validation curve, the early-stopped run, and the restored model's losses."""

    full: train.History
    stopped: train.History
    restored_val_loss: float
    last_val_loss: float


def early_stopping_run(patience: int = 20, *, epochs: int = 250) -> EarlyStoppingRun:
    """Train without dropout, once to the end and once with early stopping (same seed).

    ``restored_val_loss`` is the validation loss of the model early stopping hands back,
    ``last_val_loss`` that of the last epoch it trained.
    """
    _, full = train_with_dropout(0.0, epochs=epochs)
    model, stopped = train_with_dropout(0.0, epochs=epochs, patience=patience)
    split = overfit_split()
    model.eval()
    restored = float(losses.SoftmaxCrossEntropy().forward(model.forward(split.val.X), split.val.y))
    return EarlyStoppingRun(full, stopped, restored, stopped.val_loss[-1])


# ----- bias and variance, cross-validation, width ----------------------------------------------


@dataclass(frozen=True)
class BiasVariance:
    degrees: np.ndarray
    bias_squared: np.ndarray
    variance: np.ndarray
    noise: float


def bias_variance(
    degrees, *, n_train: int = 30, n_sets: int = 200, noise: float = 0.3, seed: int = 0
) -> BiasVariance:
    r"""Bias² and variance of least-squares polynomial fits of each degree in ``degrees``.

    The data are :math:`y = \sin(2\pi x) + \varepsilon`, :math:`x \sim U[0, 1]`,
    :math:`\varepsilon \sim \mathcal N(0, \text{noise}^2)`. For each degree, ``n_sets`` training
    sets of ``n_train`` points give ``n_sets`` fits :math:`\hat f`; on a grid of test inputs
    :math:`\text{bias}^2 = \overline{(\mathbb{E}\hat f - f)^2}` and
    :math:`\text{variance} = \overline{\mathbb{E}(\hat f - \mathbb{E}\hat f)^2}`, averaged over
    the grid. The expected test error is their sum plus the noise variance (Geman, Bienenstock
    & Doursat 1992).
    """
    rng = np.random.default_rng(seed)
    grid = np.linspace(0.05, 0.95, 50)
    truth = np.sin(2 * np.pi * grid)
    degrees = np.asarray(degrees)
    bias2, variance = [], []
    xs = rng.random((n_sets, n_train))
    ys = np.sin(2 * np.pi * xs) + noise * rng.standard_normal((n_sets, n_train))
    for degree in degrees:
        fits = np.empty((n_sets, grid.size))
        for s in range(n_sets):
            design = np.vander(xs[s] - 0.5, degree + 1)
            coef, *_ = np.linalg.lstsq(design, ys[s], rcond=None)
            fits[s] = np.vander(grid - 0.5, degree + 1) @ coef
        mean_fit = fits.mean(axis=0)
        bias2.append(np.mean((mean_fit - truth) ** 2))
        variance.append(np.mean(fits.var(axis=0)))
    return BiasVariance(degrees, np.array(bias2), np.array(variance), noise)


@dataclass(frozen=True)
class CrossValidation:
    strengths: np.ndarray
    fold_errors: np.ndarray  # (strengths, k) validation error of each fold
    test_errors: np.ndarray  # test error after training on all training data

    @property
    def mean(self) -> np.ndarray:
        return self.fold_errors.mean(axis=1)

    @property
    def best(self) -> float:
        return float(self.strengths[int(np.argmin(self.mean))])


def cross_validate(
    strengths, *, k: int = 5, epochs: int = 200, lr: float = 0.5, seed: int = 0
) -> CrossValidation:
    """Choose the L2 strength by stratified k-fold cross-validation on the training data.

    The training and validation sets of :func:`moons_split` are pooled (the test set is never
    touched); each strength is trained ``k`` times, on ``k - 1`` folds, and scored by the
    classification error on the held-out fold. Each strength is then trained on all the pooled
    data and scored on the test set, to compare.
    """
    split = moons_split()
    X = np.concatenate([split.train.X, split.val.X])
    y = np.concatenate([split.train.y, split.val.y])
    folds = data.k_fold(y, k, rng=np.random.default_rng(seed), stratify=True)
    strengths = np.asarray(strengths, dtype=float)
    fold_errors = np.empty((len(strengths), k))
    test_errors = np.empty(len(strengths))

    def fit(lam: float, X_fit: np.ndarray, y_fit: np.ndarray) -> layers.Sequential:
        model = layers.mlp([2, 16, 16, 2], rng=np.random.default_rng(1))
        opt = penalized_optimizer("l2", lam, model.parameters(), lr=lr)
        with threadpool_limits(1):
            train.train(
                model,
                losses.SoftmaxCrossEntropy(),
                opt,
                (X_fit, y_fit),
                epochs=epochs,
                track_norms=False,
            )
        return model

    def error(model: layers.Sequential, X_eval: np.ndarray, y_eval: np.ndarray) -> float:
        return float(np.mean(model.forward(X_eval).argmax(axis=1) != y_eval))

    for i, lam in enumerate(strengths):
        for j, fold in enumerate(folds):
            model = fit(lam, X[fold.train], y[fold.train])
            fold_errors[i, j] = error(model, X[fold.val], y[fold.val])
        test_errors[i] = error(fit(lam, X, y), split.test.X, split.test.y)
    return CrossValidation(strengths, fold_errors, test_errors)


@dataclass(frozen=True)
class WidthSweep:
    widths: np.ndarray
    parameters: np.ndarray
    train_error: np.ndarray  # (widths, seeds)
    test_error: np.ndarray  # (widths, seeds)
    n_train: int


def width_sweep(widths, *, seeds: int = 2, epochs: int = 300) -> WidthSweep:
    """Train 2-w-w-2 networks of growing width ``w`` on 100 noisy points; test on 300 others.

    No penalty, no dropout, no early stopping: Adam runs to the end.
    """
    split = moons_split(200, 0.3, val_fraction=0.0, test_fraction=0.75)
    widths = np.asarray(widths)
    train_error = np.empty((len(widths), seeds))
    test_error = np.empty((len(widths), seeds))
    counts = []
    for i, width in enumerate(widths):
        for seed in range(seeds):
            model = layers.mlp([2, int(width), int(width), 2], rng=np.random.default_rng(seed))
            with threadpool_limits(1):
                history = train.train(
                    model,
                    losses.SoftmaxCrossEntropy(),
                    optim.adam(0.01),
                    split.train,
                    epochs=epochs,
                    track_norms=False,
                )
            train_error[i, seed] = 1 - history.train_accuracy[-1]
            predicted = model.forward(split.test.X).argmax(axis=1)
            test_error[i, seed] = np.mean(predicted != split.test.y)
        counts.append(sum(p.size for p in model.parameters()))
    return WidthSweep(widths, np.array(counts), train_error, test_error, len(split.train.y))


@dataclass(frozen=True)
class DepthVariance:
    depths: np.ndarray  # hidden layers; a network has depth + 2 layers of units
    sizes: np.ndarray  # training points per run
    xs: np.ndarray  # the grid the boundaries are drawn on
    ys: np.ndarray
    prob: np.ndarray  # (sizes, depths, runs, *grid) probability of class 1
    train_error: np.ndarray  # (sizes, depths, runs)

    @property
    def disagreement(self) -> np.ndarray:
        """(sizes, depths): the share of the grid on which two runs classify differently,
        averaged over every pair of runs."""
        votes = (self.prob > 0.5).reshape(*self.prob.shape[:3], -1).mean(axis=2)
        runs = self.prob.shape[2]
        return (2 * votes * (1 - votes)).mean(axis=-1) * runs / (runs - 1)


@functools.cache
def depth_variance(
    depths=(1, 2, 4, 9),
    sizes=(100, 1000),
    *,
    runs: int = 6,
    hidden: int = 144,
    units_per_layer: int | None = None,
    same_training_set: bool = False,
    steps: int = 400,
) -> DepthVariance:
    r"""How much the decision boundary varies from run to run, against depth and data.

    Each run draws its own noisy two-moons training set of the given size (all runs share one
    if ``same_training_set``) and its own initialization, and trains a ReLU network with
    ``depth`` hidden layers of ``hidden // depth`` units (the same number of hidden units at
    every depth), or of ``units_per_layer`` units if given, by full-batch Adam for ``steps``
    updates. For two runs, the disagreement is the share of a grid over the
    data on which they predict different classes; with :math:`p(x)` the share of runs that
    predict class 1 at :math:`x`, its average over all pairs is
    :math:`\frac{R}{R-1}\,\overline{2p(1-p)}`, the variance term of a 0–1 classifier.
    """
    depths, sizes = np.asarray(depths), np.asarray(sizes)
    xs, ys = np.meshgrid(np.linspace(-1.6, 2.6, 84), np.linspace(-1.2, 1.7, 58))
    grid = np.column_stack([xs.ravel(), ys.ravel()])
    prob = np.empty((sizes.size, depths.size, runs, *xs.shape))
    train_error = np.empty((sizes.size, depths.size, runs))
    for i, n in enumerate(sizes):
        for j, depth in enumerate(depths):
            width = units_per_layer or hidden // int(depth)
            for r in range(runs):
                rng = np.random.default_rng([int(n), 0 if same_training_set else r])
                X, y = data.two_moons(int(n) // 2, rng=rng, noise=0.3)
                model = layers.mlp(
                    [2] + [width] * int(depth) + [2], rng=np.random.default_rng([int(depth), r])
                )
                with threadpool_limits(1):
                    history = train.train(
                        model,
                        losses.SoftmaxCrossEntropy(),
                        optim.adam(0.01),
                        (X, y),
                        epochs=steps,
                        track_norms=False,
                    )
                train_error[i, j, r] = 1 - history.train_accuracy[-1]
                model.eval()
                prob[i, j, r] = layers.softmax(model.forward(grid))[:, 1].reshape(xs.shape)
    return DepthVariance(depths, sizes, xs, ys, prob, train_error)
