"""Every rule of the course trains a real network: an MLP on scikit-learn's 8x8 digits.

Through the whole stack (layers, loss, the Optimizer shell, the training loop). First-order rules
train with mini-batches; the batch methods (Rprop, Quickprop, the second-order rules) see the full
batch, as their authors meant. Levenberg–Marquardt builds the Hessian by finite
differences, so it trains a smaller network on a subset. Each row states the validation accuracy
the rule must reach within its epoch budget. Plain Newton is the exception that proves the rule:
the Hessian of a softmax MLP is singular (tested), so Newton trains a logistic unit instead.
"""

from __future__ import annotations

import numpy as np
import pytest

from minidl import data, layers, losses, optim
from minidl.train import train

pytestmark = [pytest.mark.optim, pytest.mark.train]

MINI_BATCH = {
    "gradient_descent": (optim.gradient_descent(lr=0.1), 15, 0.93),
    "momentum": (optim.momentum(lr=0.02, beta=0.9), 15, 0.93),
    "nesterov": (optim.nesterov(lr=0.02, beta=0.9), 15, 0.93),
    "sgd (torch, nesterov, weight decay)": (
        optim.sgd(lr=0.02, momentum=0.9, nesterov=True, weight_decay=1e-4),
        15,
        0.93,
    ),
    "adagrad": (optim.adagrad(lr=0.05), 15, 0.93),
    "rmsprop": (optim.rmsprop(lr=1e-3), 15, 0.93),
    "rmsprop (centered, momentum)": (optim.rmsprop(lr=5e-4, centered=True, momentum=0.5), 15, 0.93),
    "adadelta": (optim.adadelta(lr=1.0), 15, 0.93),
    "adam": (optim.adam(lr=1e-3), 15, 0.93),
    "adam (amsgrad)": (optim.adam(lr=1e-3, amsgrad=True), 15, 0.93),
    "adamw": (optim.adamw(lr=1e-3, weight_decay=1e-2), 15, 0.93),
    "nadam": (optim.nadam(lr=1e-3), 15, 0.93),
}

FULL_BATCH = {
    "rprop+": (optim.rprop(lr=0.01, variant="rprop+"), 60, 0.90),
    "rprop-": (optim.rprop(lr=0.01, variant="rprop-"), 60, 0.90),
    "irprop+": (optim.rprop(lr=0.01, variant="irprop+"), 60, 0.90),
    "irprop-": (optim.rprop(lr=0.01, variant="irprop-"), 60, 0.90),
    "quickprop": (optim.quickprop(lr=0.5), 60, 0.90),
    "bfgs": (optim.bfgs(), 25, 0.90),
    "lbfgs": (optim.lbfgs(history_size=10), 40, 0.90),
    "lbfgs (armijo)": (optim.lbfgs(history_size=10, line_search="armijo"), 40, 0.90),
}

HESSIAN = {
    "levenberg_marquardt": (optim.levenberg_marquardt(damping=0.3), 20, 0.84),
    "levenberg_marquardt (adaptive)": (
        optim.levenberg_marquardt(damping=1.0, adaptive=True),
        12,
        0.79,
    ),
}


@pytest.fixture(scope="module")
def split():
    split = data.train_val_test_split(*data.digits(), rng=np.random.default_rng(0))
    return data.normalize_split(split, data.ZScoreNormalizer())


def accuracy_after(rule, train_data, val_data, *, sizes, epochs, batch_size, seed=0):
    rng = np.random.default_rng(seed)
    model = layers.mlp(sizes, rng=rng, activation="tanh")
    loss = losses.SoftmaxCrossEntropy()
    history = train(
        model,
        loss,
        rule,
        train_data,
        val_data=val_data,
        epochs=epochs,
        batch_size=batch_size,
        rng=rng,
    )
    assert not history.diverged, history.stop_reason
    return max(history.val_accuracy)


@pytest.mark.parametrize("name", MINI_BATCH)
def test_first_order_rules_train_the_digits_mlp(name, split):
    rule, epochs, target = MINI_BATCH[name]
    reached = accuracy_after(
        rule, split.train, split.val, sizes=[64, 32, 10], epochs=epochs, batch_size=32
    )
    assert reached >= target


@pytest.mark.parametrize("name", FULL_BATCH)
def test_batch_rules_train_the_digits_mlp(name, split):
    rule, epochs, target = FULL_BATCH[name]
    reached = accuracy_after(
        rule, split.train, split.val, sizes=[64, 32, 10], epochs=epochs, batch_size=None
    )
    assert reached >= target


@pytest.fixture(scope="module")
def informative(split):
    """300 training images and the pixels that vary among them. A pixel that is 0 in every image
    gives its weights a zero gradient and zero curvature: a zero row in the Hessian."""
    X, y = split.train.X[:300], split.train.y[:300]
    keep = X.std(axis=0) > 0
    return data.Dataset(X[:, keep], y), data.Dataset(split.val.X[:, keep], split.val.y)


@pytest.mark.slow
@pytest.mark.parametrize("name", HESSIAN)
def test_damped_newton_trains_a_small_digits_mlp(name, informative):
    rule, epochs, target = HESSIAN[name]
    train_data, val_data = informative
    reached = accuracy_after(
        rule,
        train_data,
        val_data,
        sizes=[train_data.X.shape[1], 6, 10],
        epochs=epochs,
        batch_size=None,
    )
    assert reached >= target


def test_the_hessian_of_a_softmax_mlp_is_singular_so_plain_newton_is_ill_posed(informative):
    """Adding one constant to every output bias leaves softmax unchanged: the loss is flat along
    that direction and the Hessian the shell hands to a second-order rule is singular, so the
    Newton system has no unique solution and damping is needed (chapter 3)."""
    (X, y), _ = informative
    model = layers.mlp([X.shape[1], 6, 10], rng=np.random.default_rng(0), activation="tanh")
    loss = losses.SoftmaxCrossEntropy()
    seen = {}

    def record(grad, state, param, *, hess, **_):
        seen["hess"] = hess
        return np.zeros_like(param), state

    probe = optim.Rule(lambda w: (), record, needs=frozenset({"hess"}), flat=True)
    optimizer = optim.Optimizer(probe, model.parameters())

    def closure():
        value = loss.forward(model.forward(X), y)
        model.backward(loss.backward())
        return value

    optimizer.step(closure)
    hess = seen["hess"]
    shift = np.zeros(len(hess))
    shift[-10:] = 1 / np.sqrt(10)  # the output biases come last
    assert np.linalg.norm(hess @ shift) < 1e-6 * np.linalg.norm(hess, 2)


def test_newton_fits_a_logistic_unit_on_digits_in_two_steps(informative):
    """On a convex, non-degenerate problem (one logistic unit: "is it a 3?") Newton needs only
    a couple of steps."""
    (X, y), (X_val, y_val) = informative
    rng = np.random.default_rng(0)
    model = layers.mlp([X.shape[1], 1], rng=rng)
    history = train(
        model,
        losses.BinaryCrossEntropy(),
        optim.newton(),
        (X, (y == 3) * 1.0),
        val_data=(X_val, (y_val == 3) * 1.0),
        epochs=2,
    )
    assert history.val_accuracy[-1] >= 0.93
