"""Chapter 7 (Regularization and generalization): every claim the book's pages make, asserted on
the same experiment functions the pages call (course.experiments.ch07_regularization)."""

import numpy as np
import pytest

from course.experiments import ch07_regularization as reg

pytestmark = pytest.mark.book

# The strengths the penalties page compares (similar validation accuracy).
L2_STRENGTH, L1_STRENGTH = 0.01, 0.003


# ----- L1 makes zeros, L2 shrinks everything -------------------------------------------------


def test_l1_zeros_most_weights_while_l2_shrinks_them_all():
    none = reg.train_with_penalty("none", 0.0)
    l2 = reg.train_with_penalty("l2", L2_STRENGTH)
    l1 = reg.train_with_penalty("l1", L1_STRENGTH)
    size = l1.weights.size
    assert size == 2 * 32 + 32 * 32 + 32 * 2  # the weights only, no biases
    # L1: most weights are exactly zero (the proximal step); measured 921 of 1152
    assert reg.count_zeros(l1.weights) >= 0.7 * size
    # L2: no weight is exactly zero and hardly any is near zero (measured 11 of 1152 below 1e-3,
    # about as many as without a penalty) ...
    assert reg.count_zeros(l2.weights) == 0
    assert reg.count_zeros(l2.weights, 1e-3) <= 0.02 * size
    assert reg.count_zeros(l2.weights, 1e-3) <= 3 * max(reg.count_zeros(none.weights, 1e-3), 5)
    # ... but all of them are smaller: the median size falls by a factor above 2 (measured 3.2)
    assert np.median(np.abs(l2.weights)) < 0.5 * np.median(np.abs(none.weights))
    assert np.abs(l2.weights).max() < np.abs(none.weights).max()
    # both still solve the problem
    for run in (l1, l2):
        assert run.history.val_accuracy[-1] >= none.history.val_accuracy[-1] - 0.02


def test_the_strength_slider_under_fits_at_its_right_end():
    # the slider's prose: L2 at 0.1 under-fits (training accuracy 0.83), L1 at 0.03 keeps a
    # handful of weights (7, a straight boundary) and at 0.1 none: one class for every point
    l2_mid, l2_strong = reg.train_with_penalty("l2", 0.01), reg.train_with_penalty("l2", 0.1)
    assert l2_strong.history.train_accuracy[-1] < 0.9
    assert l2_strong.history.train_accuracy[-1] < l2_mid.history.train_accuracy[-1] - 0.05
    assert reg.count_zeros(l2_strong.weights) == 0
    l1_mid, l1_strong = reg.train_with_penalty("l1", 0.03), reg.train_with_penalty("l1", 0.1)
    assert 0 < l1_mid.weights.size - reg.count_zeros(l1_mid.weights) <= 20
    assert l1_mid.history.val_accuracy[-1] >= 0.9  # a straight boundary, still 0.93
    assert reg.count_zeros(l1_strong.weights) == l1_strong.weights.size
    assert l1_strong.history.train_accuracy[-1] == pytest.approx(0.5)


def test_the_l1_subgradient_brings_weights_near_zero_but_never_onto_it():
    run = reg.train_with_penalty("l1_subgradient", L1_STRENGTH)
    band = 0.5 * L1_STRENGTH  # eta * lambda_reg with eta = 0.5
    assert reg.count_zeros(run.weights) == 0
    assert reg.count_zeros(run.weights, band) >= 0.7 * run.weights.size  # measured 900 of 1152


def test_biases_are_not_regularized():
    l1 = reg.train_with_penalty("l1", L1_STRENGTH)
    biases = np.concatenate([p.value for p in l1.model.parameters() if not p.regularize])
    assert reg.count_zeros(biases) < 0.5 * biases.size


def test_l2_is_a_decay_factor_and_l1_walks_to_exactly_zero():
    lr, lam = 0.5, 0.1
    l2 = reg.decay_without_data("l2", lam, lr=lr, steps=60)
    np.testing.assert_allclose(l2, (1 - lr * lam) ** np.arange(61), rtol=1e-12)
    assert l2[-1] > 0
    l1 = reg.decay_without_data("l1", lam, lr=lr, steps=60)
    first_zero = int(np.argmax(l1 == 0))
    assert first_zero == int(np.ceil(1.0 / (lr * lam) - 1e-9)) == 20
    np.testing.assert_allclose(l1[:first_zero], 1 - lr * lam * np.arange(first_zero), atol=1e-12)
    assert np.all(l1[first_zero:] == 0)


# ----- inverted dropout keeps the expected activation ------------------------------------------


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_inverted_dropout_keeps_the_expected_activation(p):
    x = np.linspace(-2, 2, 41)
    result = reg.dropout_mean(p, x, draws=4000)
    z = np.abs(result.mean - x) / np.where(x == 0, 1, result.standard_error)
    # 41 entries: all within 4.5 standard errors (a false alarm has probability < 1e-3)
    assert np.all(z < 4.5), z.max()
    assert np.all(result.mean[x == 0] == 0)
    # without the 1/(1-p) factor the mean is (1-p) x: far more than 4.5 standard errors off
    big = np.abs(x) >= 1
    z_unscaled = np.abs(result.unscaled_mean - x)[big] / result.standard_error[big]
    assert np.all(z_unscaled > 10)


def test_dropout_reduces_overfitting():
    _, plain = reg.train_with_dropout(0.0)
    val = np.array(plain.val_loss)
    # without dropout the validation loss rises far above its minimum (measured 0.16 -> 1.9)
    assert val[-1] > 5 * val.min()
    assert plain.train_loss[-1] < 0.01
    for p in (0.2, 0.4, 0.6):
        _, dropped = reg.train_with_dropout(p)
        assert dropped.val_loss[-1] < 0.6 * val[-1]
        assert dropped.train_loss[-1] > plain.train_loss[-1]
    # but its best validation loss is no lower: dropout does not replace early stopping
    # (measured 0.32 at p = 0.6 against 0.26)
    _, strong = reg.train_with_dropout(0.6)
    assert min(strong.val_loss) > val.min() + 0.03


# ----- early stopping ----------------------------------------------------------------------------


def test_early_stopping_picks_the_lowest_validation_loss_and_restores_it():
    patience = 20
    run = reg.early_stopping_run(patience)
    stopped = run.stopped
    best = stopped.best_epoch
    assert best == int(np.argmin(stopped.val_loss))
    assert stopped.epochs == best + patience + 1  # it waited `patience` epochs, then stopped
    assert best == int(np.argmin(run.full.val_loss))  # the same minimum as the run to the end
    assert run.restored_val_loss == pytest.approx(stopped.val_loss[best], rel=1e-12)
    assert run.last_val_loss > 1.2 * run.restored_val_loss
    assert run.full.val_loss[-1] > 5 * run.restored_val_loss


# ----- bias and variance, cross-validation, over-parametrization ------------------------------


def test_bias_falls_and_variance_rises_with_the_degree():
    bv = reg.bias_variance(range(10))
    total = bv.bias_squared + bv.variance
    assert 3 <= int(np.argmin(total)) <= 5
    assert bv.bias_squared[0] > 50 * bv.bias_squared[3]
    assert bv.variance[9] > 10 * bv.variance[3]


def test_cross_validation_picks_a_strength_that_does_well_on_the_test_set():
    cv = reg.cross_validate([0.0, 0.003, 0.01, 0.03, 0.1])
    assert cv.fold_errors.shape == (5, 5)
    assert cv.best in (0.003, 0.01)
    assert cv.mean[-1] > cv.mean.min() + 0.03  # too strong a penalty under-fits
    assert cv.test_errors[list(cv.strengths).index(cv.best)] <= cv.test_errors.min() + 0.03


def test_wider_networks_fit_the_training_set_and_do_not_test_worse():
    sweep = reg.width_sweep([2, 8, 16, 64, 128])
    train, test = sweep.train_error.mean(axis=1), sweep.test_error.mean(axis=1)
    assert train[0] > 0.05 and np.all(train[2:] == 0)  # from width 16 on it interpolates
    assert sweep.parameters[2] > 3 * sweep.n_train  # with several times more weights than points
    assert test[-1] <= test[2] + 0.01  # and 100 times more weights do not test worse
    assert test[0] > test[-1] + 0.02


# The page's depth-and-data grid takes about 20 s; one group computes it once (functools.cache).
@pytest.mark.xdist_group("ch7-depth")
def test_more_data_lowers_the_run_to_run_variance_and_more_depth_does_not():
    variability = reg.depth_variance()  # the page's: 3, 4, 6, 11 layers; 100 and 1000 points
    few, many = variability.disagreement
    assert np.all(many < 0.65 * few)  # measured 0.28 to 0.55 of it
    assert few[-1] > few[0] and many[-1] > many[0]  # 11 layers vary more than 3
    fit = variability.train_error.mean(axis=2)
    assert fit[0, -1] < fit[0, 0]  # though with 100 points they fit the training set better


def test_disagreement_is_the_pairwise_share_of_the_grid_where_two_runs_differ():
    variability = reg.depth_variance((1,), (100,), runs=3, steps=50)
    votes = variability.prob[0, 0] > 0.5
    pairs = [np.mean(votes[a] != votes[b]) for a, b in [(0, 1), (0, 2), (1, 2)]]
    assert variability.disagreement[0, 0] == pytest.approx(np.mean(pairs), abs=1e-12)


@pytest.mark.xdist_group("ch7-depth")
def test_predict_answers_one_shared_training_set_and_wider_deep_networks():
    shared = reg.depth_variance(sizes=(100,), same_training_set=True).disagreement[0]
    assert np.all(shared < reg.depth_variance().disagreement[0])
    wide = reg.depth_variance((1, 9), (1000,), units_per_layer=32).disagreement[0]
    assert wide[1] > wide[0]
