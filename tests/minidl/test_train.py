"""The training loop: batch modes, schedules, early stopping, divergence, reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pytest

from minidl import data, layers, losses, optim
from minidl.train import EarlyStopping, History, TrainingDiverged, train

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def digits_split():
    split = data.train_val_test_split(*data.digits(), rng=np.random.default_rng(0))
    return data.normalize_split(split, data.ZScoreNormalizer())


def small_problem(n=40, seed=0):
    moons = data.two_moons(n // 2, rng=np.random.default_rng(seed), noise=0.1)
    return moons.X, moons.y


def fit(seed, split, *, epochs=3, batch_size=32):
    rng = np.random.default_rng(seed)
    model = layers.mlp([64, 32, 10], rng=rng)
    return train(
        model,
        losses.SoftmaxCrossEntropy(),
        optim.sgd(lr=0.1),
        split.train,
        val_data=split.val,
        epochs=epochs,
        batch_size=batch_size,
        rng=rng,
    )


def test_minibatch_descent_reaches_95_percent_on_digits(digits_split):
    rng = np.random.default_rng(1)
    model = layers.mlp([64, 128, 10], rng=rng)
    loss = losses.SoftmaxCrossEntropy()
    history = train(
        model,
        loss,
        optim.sgd(lr=0.05),
        digits_split.train,
        val_data=digits_split.val,
        epochs=40,
        batch_size=32,
        rng=rng,
        early_stopping=EarlyStopping(patience=8),
    )
    model.eval()
    test_accuracy = loss.accuracy(model.forward(digits_split.test.X), digits_split.test.y)
    assert test_accuracy > 0.95, history.stop_reason
    assert history.val_accuracy[history.best_epoch] > 0.95


def test_same_seed_gives_identical_history(digits_split):
    first, second = fit(7, digits_split), fit(7, digits_split)
    assert first == second
    assert first.step_loss != fit(8, digits_split).step_loss


@pytest.mark.parametrize(("batch_size", "steps_per_epoch"), [(None, 1), (1, 40), (16, 3)])
def test_batch_stochastic_and_minibatch_take_the_expected_number_of_steps(
    batch_size, steps_per_epoch
):
    X, y = small_problem()
    rng = np.random.default_rng(0)
    model = layers.mlp([2, 8, 2], rng=rng)
    history = train(
        model,
        losses.SoftmaxCrossEntropy(),
        optim.sgd(lr=0.1),
        (X, y),
        epochs=2,
        batch_size=batch_size,
        rng=rng,
    )
    assert history.steps == 2 * steps_per_epoch
    assert history.epochs == 2
    assert set(history.grad_norm) == {"0", "2"}
    assert all(len(norms) == history.steps for norms in history.step_norm.values())


def test_full_batch_descent_decreases_the_loss_monotonically_with_a_small_rate():
    X, y = small_problem()
    model = layers.mlp([2, 8, 2], rng=np.random.default_rng(0), activation="tanh")
    history = train(model, losses.SoftmaxCrossEntropy(), optim.sgd(lr=0.05), (X, y), epochs=30)
    assert all(b < a for a, b in zip(history.train_loss, history.train_loss[1:], strict=False))


def test_step_norms_are_the_norms_of_the_applied_updates():
    X, y = small_problem()
    model = layers.mlp([2, 4, 2], rng=np.random.default_rng(0))
    before = [p.value.copy() for p in model.parameters()]
    history = train(model, losses.SoftmaxCrossEntropy(), optim.sgd(lr=0.1), (X, y), epochs=1)
    after = [p.value for p in model.parameters()]
    first_layer = np.sqrt(
        sum(np.sum((a - b) ** 2) for a, b in zip(after[:2], before[:2], strict=True))
    )
    assert history.step_norm["0"][0] == pytest.approx(first_layer, rel=1e-12)
    assert history.grad_norm["0"][0] == pytest.approx(first_layer / 0.1, rel=1e-12)


def test_the_loop_resolves_the_schedule_and_passes_the_rate_to_the_rule():
    X, y = small_problem()
    model = layers.mlp([2, 4, 2], rng=np.random.default_rng(0))
    history = train(
        model,
        losses.SoftmaxCrossEntropy(),
        optim.sgd(lr=1.0),
        (X, y),
        epochs=3,
        batch_size=20,
        rng=np.random.default_rng(0),
        schedule=lambda k: 0.5 / (k + 1),
    )
    assert history.lr == [0.5 / (k + 1) for k in range(6)]
    assert history.step_norm["0"][-1] < history.step_norm["0"][0]


def test_a_plateau_schedule_observes_the_validation_loss_once_per_epoch():
    class Recorder:
        def __init__(self):
            self.seen = []

        def __call__(self, k):
            return 0.1

        def observe(self, value):
            self.seen.append(value)

    X, y = small_problem()
    schedule = Recorder()
    history = train(
        layers.mlp([2, 4, 2], rng=np.random.default_rng(0)),
        losses.SoftmaxCrossEntropy(),
        optim.sgd(lr=1.0),
        (X, y),
        val_data=(X[:10], y[:10]),
        epochs=4,
        schedule=schedule,
    )
    assert schedule.seen == history.val_loss


def test_divergence_stops_and_says_where_and_with_which_rate():
    X, y = small_problem()
    X = X * 1e3
    model = layers.mlp([2, 16, 2], rng=np.random.default_rng(0))
    diverged = r"diverged at epoch \d+, step \d+.*learning rate 1e\+06"
    with pytest.warns(TrainingDiverged, match=diverged):
        history = train(model, losses.SoftmaxCrossEntropy(), optim.sgd(lr=1e6), (X, y), epochs=50)
    assert history.diverged
    assert history.epochs < 50
    assert "learning rate 1e+06" in history.stop_reason


def test_early_stopping_restores_the_weights_of_the_best_epoch(digits_split):
    rng = np.random.default_rng(3)
    model = layers.mlp([64, 64, 10], rng=rng)
    loss = losses.SoftmaxCrossEntropy()
    # A tiny training set overfits quickly, so the validation loss turns up within the budget.
    small = data.Dataset(digits_split.train.X[:60], digits_split.train.y[:60])
    history = train(
        model,
        loss,
        optim.sgd(lr=0.3),
        small,
        val_data=digits_split.val,
        epochs=300,
        batch_size=10,
        rng=rng,
        early_stopping=EarlyStopping(patience=5),
    )
    assert history.stop_reason.startswith("early stopping")
    assert history.epochs == history.best_epoch + 1 + 5
    model.eval()
    restored = loss.forward(model.forward(digits_split.val.X), digits_split.val.y)
    assert restored == pytest.approx(min(history.val_loss), rel=1e-12)
    assert history.val_loss[history.best_epoch] == min(history.val_loss)


def test_early_stopping_restores_batch_norm_running_statistics():
    X, y = small_problem(80)
    rng = np.random.default_rng(0)
    model = layers.Sequential(
        layers.Linear(2, 8, rng=rng),
        layers.BatchNorm(8),
        layers.ReLU(),
        layers.Linear(8, 2, rng=rng),
    )
    loss = losses.SoftmaxCrossEntropy()
    history = train(
        model,
        loss,
        optim.sgd(lr=0.5),
        (X[:20], y[:20]),
        val_data=(X[20:], y[20:]),
        epochs=200,
        batch_size=5,
        rng=rng,
        early_stopping=EarlyStopping(patience=3),
    )
    model.eval()
    restored = loss.forward(model.forward(X[20:]), y[20:])
    assert restored == pytest.approx(history.val_loss[history.best_epoch], rel=1e-12)


def test_a_callback_can_stop_training():
    X, y = small_problem()
    seen = []

    def stop_after_two(epoch, history, model):
        seen.append(epoch)
        return epoch == 1

    history = train(
        layers.mlp([2, 4, 2], rng=np.random.default_rng(0)),
        losses.SoftmaxCrossEntropy(),
        optim.sgd(lr=0.1),
        (X, y),
        epochs=10,
        callbacks=[stop_after_two],
    )
    assert seen == [0, 1]
    assert history.epochs == 2
    assert "callback" in history.stop_reason


def test_regression_with_mse_records_no_accuracy():
    reg = data.linear_regression(50, 3, rng=np.random.default_rng(0))
    model = layers.Sequential(layers.Linear(3, 1, rng=np.random.default_rng(0)))
    history = train(
        model, losses.MSE(), optim.sgd(lr=0.1), (reg.X, reg.y.reshape(-1, 1)), epochs=100
    )
    assert history.train_accuracy[-1] is None
    assert history.train_loss[-1] < 0.05


def test_an_optimizer_object_and_a_bare_rule_train_identically():
    X, y = small_problem()
    a = layers.mlp([2, 4, 2], rng=np.random.default_rng(0))
    b = layers.mlp([2, 4, 2], rng=np.random.default_rng(0))
    h1 = train(a, losses.SoftmaxCrossEntropy(), optim.adam(lr=0.01), (X, y), epochs=3)
    h2 = train(
        b,
        losses.SoftmaxCrossEntropy(),
        optim.Optimizer(optim.adam(lr=0.01), b.parameters()),
        (X, y),
        epochs=3,
    )
    assert h1 == h2
    assert isinstance(h1, History)
    assert h1.lr == [0.01] * 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train_data": (np.zeros((5, 2)), np.zeros(4, dtype=int))}, "5 inputs but 4 targets"),
        ({"train_data": (np.zeros((0, 2)), np.zeros(0, dtype=int))}, "empty"),
        ({"train_data": np.zeros((5, 2))}, "pair"),
        ({"early_stopping": EarlyStopping(3)}, "needs val_data"),
        ({"epochs": -1}, "epochs"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(kwargs, message):
    X, y = small_problem()
    args = {"train_data": (X, y), "epochs": 1} | kwargs
    model = layers.mlp([2, 4, 2], rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=message):
        train(
            model, losses.SoftmaxCrossEntropy(), optim.sgd(lr=0.1), args.pop("train_data"), **args
        )


def test_early_stopping_validates_its_settings():
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)
    assert math.isfinite(EarlyStopping().min_delta)
