"""Chapter 8 (Tricks of the trade): every claim the book's pages make, asserted on the same
experiment functions the pages call (course.experiments.ch08_tricks)."""

import math

import numpy as np
import pytest

from course.experiments import ch08_tricks as tricks
from minidl import layers

pytestmark = pytest.mark.book


# ----- initialization ---------------------------------------------------------------------------


def test_constant_init_leaves_hidden_units_identical_after_training():
    result = tricks.constant_init_symmetry()
    assert tricks.unit_spread(result.W_constant) < 1e-12
    assert not np.allclose(result.W_constant, 0.1)  # the weights did move, all together
    assert tricks.unit_spread(result.W_random) > 1.0
    assert result.accuracy_constant < 0.5 < 0.9 < result.accuracy_random


@pytest.mark.parametrize(("activation", "preserving_gain"), [("tanh", 1.0), ("relu", math.sqrt(2))])
def test_variance_preserving_gain_keeps_activations_at_size(activation, preserving_gain):
    stats = {g: tricks.layer_statistics(g, activation) for g in [0.5, preserving_gain, 2.0]}
    small, right, large = (stats[g].activation_std for g in [0.5, preserving_gain, 2.0])
    assert small[-1] < 0.05 * small[0]  # shrinks geometrically
    assert 0.3 < right[-1] / right[0] < 1.5  # stays within a small factor over 8 layers
    assert large[-1] > 0.7 * large[0]
    assert stats[0.5].gradient_std[0] < 0.05 * stats[0.5].gradient_std[-1]  # vanishing
    if activation == "relu":
        assert large[-1] > 10 * large[0]  # exploding


def test_batch_norm_makes_activation_statistics_independent_of_the_scale():
    for activation in ["tanh", "relu"]:
        stds = [
            tricks.layer_statistics(g, activation, batch_norm=True).activation_std
            for g in [0.25, 1.0, 2.0]
        ]
        assert np.allclose(stds[0], stds[1], rtol=1e-3) and np.allclose(stds[1], stds[2], rtol=1e-3)


# ----- data normalization -----------------------------------------------------------------------

LRS = [0.1, 0.3, 1.0, 3.0]


def test_normalized_inputs_reach_the_target_loss_in_fewer_epochs():
    runs = {
        inputs: tricks.epochs_to_target(inputs, LRS) for inputs in ["raw", "min-max", "z-score"]
    }
    best = {inputs: tricks.fastest(r) for inputs, r in runs.items()}
    assert best["z-score"].epochs_to_target <= 2
    assert best["raw"].epochs_to_target >= 3 * best["z-score"].epochs_to_target
    assert best["raw"].epochs_to_target > best["min-max"].epochs_to_target
    assert best["z-score"].lr > best["raw"].lr  # normalized inputs stand a larger rate
    # the slider's reading: raw inputs fail at rates 1 and 3 (worse than chance, log 10), while
    # z-scored inputs end below the target at every rate
    final = {inputs: {r.lr: r.train_loss[-1] for r in rs} for inputs, rs in runs.items()}
    assert final["raw"][0.1] < 0.2 and final["raw"][0.3] < 1.0
    assert final["raw"][1.0] > math.log(10) and final["raw"][3.0] > math.log(10)
    assert all(loss < 0.2 for loss in final["z-score"].values())


# ----- batch normalization ----------------------------------------------------------------------


def test_batch_norm_trains_at_a_rate_where_the_plain_net_diverges():
    lrs, seeds = [0.3, 2.0], [0, 1, 2]
    final = tricks.batchnorm_learning_rates(lrs, seeds)
    plain, bn = final["plain"], final["batch norm"]
    assert np.all(plain[0] < 0.05) and np.all(bn[0] < 0.05)  # both train at 0.3
    assert np.all(~np.isfinite(plain[1]) | (plain[1] > 2.0))  # plain diverges or stalls at 2.0
    assert np.all(bn[1] < 0.1)  # batch norm trains at 2.0


# ----- hyperparameter search --------------------------------------------------------------------


def test_random_search_finds_a_good_rate_in_fewer_trials_than_grid_search():
    seeds = range(10)
    comparison = tricks.search_comparison(seeds)
    budget = 16
    assert all(len(r.trials) == budget for r in comparison.grid + comparison.random)
    grid = np.array([tricks.trials_to_good(r, comparison.good) for r in comparison.grid])
    rand = np.array([tricks.trials_to_good(r, comparison.good) for r in comparison.random])
    # a miss counts as budget + 1 trials
    grid_mean = np.where(np.isfinite(grid), grid, budget + 1).mean()
    rand_mean = np.where(np.isfinite(rand), rand, budget + 1).mean()
    assert rand_mean < grid_mean - 4
    assert np.isfinite(rand).sum() >= 2 * np.isfinite(grid).sum()
    best_grid = np.array([r.best.score for r in comparison.grid])
    best_rand = np.array([r.best.score for r in comparison.random])
    assert np.sum(best_rand <= best_grid) >= 7 and best_rand.mean() < best_grid.mean()
    # the grid tries 4 distinct rates, random search 16
    assert all(len({t.params["lr"] for t in r.trials}) == 4 for r in comparison.grid)
    assert all(len({t.params["lr"] for t in r.trials}) == budget for r in comparison.random)


def test_seeds_spread_the_result_and_fix_it_exactly():
    scores = tricks.seed_spread([0.3, 1.0], range(8))
    again = tricks.seed_spread([0.3], [3])
    assert again[0, 0] == scores[0, 3]  # one seed, one result, to the last bit
    spread = scores.std(axis=1)
    assert np.all(spread > 0.005)
    # the better rate wins on average, though one seed alone can say more or less than the mean
    assert scores[1].mean() + spread[1] < scores[0].mean()


def test_weight_decay_hardly_matters_and_the_rate_does():
    lrs = [0.01, 2.0]
    scores = np.array([[tricks.search_objective(lr, wd) for wd in [1e-6, 1e-3]] for lr in lrs])
    assert np.all(np.abs(scores[:, 0] - scores[:, 1]) < 0.02)
    assert scores[0, 0] - scores[1, 0] > 1.0


# ----- shuffling and debugging ------------------------------------------------------------------


def test_examples_sorted_by_class_train_worse_than_shuffled_ones():
    curves = tricks.shuffling_comparison()
    shuffled, ordered = curves["shuffled"], curves["sorted by class"]
    assert ordered[0] > 3 * shuffled[0]
    assert all(s < o for s, o in zip(shuffled, ordered, strict=True))


def test_curriculum_on_digits_is_behind_shuffling_at_equal_updates():
    runs = tricks.curriculum_comparison([0, 1, 2])
    shuffled = runs.val_loss["shuffled"].mean(axis=0)
    curriculum = runs.val_loss["curriculum"].mean(axis=0)
    easy_first = tricks.difficulty(*tricks.digits_split().train)
    assert runs.steps["curriculum"][-1] < runs.steps["shuffled"][-1]
    # the score separates typical digits from ones closer to another class's centre
    assert easy_first.min() < 0.5 < 1 < easy_first.max()
    compared = 0
    for k, steps in enumerate(runs.steps["curriculum"]):
        fewer = np.flatnonzero(runs.steps["shuffled"] <= steps)
        if fewer.size:  # shuffling, after no more updates, is ahead by at least 5%
            assert curriculum[k] > 1.05 * shuffled[fewer[-1]]
            compared += 1
    assert compared >= 4


def test_a_correct_net_overfits_a_tiny_subset_and_a_buggy_one_cannot():
    curves = tricks.overfit_tiny_subset()
    assert curves["correct"][-1] < 0.01
    floor = np.log(1 + 9 / np.e)  # softmax of probabilities: at best e / (e + 9) on the class
    assert np.all(curves["softmax before the loss"] >= floor - 1e-12)


# ----- batch norm at inference: a population pass after training ------------------------------


def test_population_pass_sets_each_layer_to_the_statistics_of_its_own_inputs():
    split = tricks.digits_split()
    model = tricks.deep_relu_net(batch_norm=True, seed=0)
    tricks.population_statistics(model, split.train.X)
    h = split.train.X
    for layer in model.layers:
        if isinstance(layer, layers.BatchNorm):
            np.testing.assert_allclose(layer.running_mean, h.mean(axis=0), atol=1e-12)
            np.testing.assert_allclose(layer.running_var, h.var(axis=0, ddof=1), rtol=1e-12)
        h = layer.forward(h)
    assert not model.training


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_population_statistics_beat_running_averages_and_rescue_a_slow_momentum(seed):
    usual = tricks.batchnorm_inference_statistics(seed=seed, momentum=0.1)
    gain = 1 - usual.val_loss["population pass"] / usual.val_loss["running averages"]
    assert 0.05 <= gain <= 0.10  # measured 0.054 to 0.079
    assert usual.train_loss["population pass"] < usual.train_loss["running averages"]
    slow = tricks.batchnorm_inference_statistics(seed=seed, momentum=0.01)
    assert 3 <= slow.val_loss["running averages"] / slow.val_loss["population pass"] <= 5
    assert slow.mean_gap > 0.5 > usual.mean_gap
    # The pass uses the final weights only: the momentum no longer matters.
    assert slow.val_loss["population pass"] == pytest.approx(usual.val_loss["population pass"])


# ----- gradient noise where it helps --------------------------------------------------------------


def test_noise_dominates_every_step_on_the_digits_and_the_network_still_learns():
    run = tricks.gradient_noise_on_digits()
    gradient = np.array(run.noisy.grad_norm["0"])
    assert np.all(run.noise_norm > 1.5 * gradient) and np.median(run.noise_norm / gradient) > 4
    plain, noisy = run.plain.val_accuracy[-1], run.noisy.val_accuracy[-1]
    assert noisy > 0.9 and plain - 0.03 < noisy <= plain  # it learns, and is not helped here


def test_noise_escapes_a_saddle_that_plain_descent_never_leaves():
    escape = tricks.saddle_escape_with_noise()
    assert escape["plain"][-1] < 1e-10 and escape["plain"].min() >= 0.0  # stuck at the saddle
    for run in escape["noisy"]:
        assert np.argmax(run < -0.2) < 100 and run.min() < -0.2
        assert abs(run[-1] + 0.25) < 1e-3
