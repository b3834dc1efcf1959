"""Appendix "In practice today": every claim the page makes, asserted on the same experiment
functions it calls (course.experiments.practice)."""

import numpy as np
import pytest

from course.experiments import practice

pytestmark = pytest.mark.book


def test_clipping_bounds_the_step_off_the_cliff_where_plain_descent_is_thrown_away():
    surface = practice.cliff()
    runs = practice.cliff_runs(lr=0.5, max_norm=1.0)
    plain, clipped = runs["plain"], runs["clipped"]
    plateau = surface.value([plain[0]])
    assert plain[3] > 15 and surface.value([plain[3]]) > plateau
    assert np.max(np.abs(np.diff(clipped))) <= 0.5 + 1e-12
    assert np.all(np.diff(surface.value(clipped[:, None])) <= 1e-12)
    assert abs(plain[-1] - 4.0) < 0.01 and abs(clipped[-1] - 4.0) < 0.01


def test_schedule_curves_start_peak_and_end_as_drawn():
    curves = practice.schedule_curves(lr=1.0, steps=100, warm=10)
    assert curves["step decay"][0] == 1.0 and curves["step decay"][-1] == pytest.approx(0.01)
    assert curves["cosine"][0] == 1.0 and curves["cosine"][-1] < 1e-3
    warm = curves["warm-up + cosine"]
    assert warm[0] == 0.0 and np.argmax(warm) == 10 and np.all(np.diff(warm[:11]) > 0)
    cycle = curves["one-cycle"]
    assert cycle[0] == pytest.approx(0.04) and np.argmax(cycle) == 29 and cycle[-1] < 1e-5


def test_initial_loss_is_log_c_once_the_output_layer_is_small():
    start = practice.initial_losses()
    assert start["as initialized"] > start["log C"] + 0.3
    assert abs(start["small output layer"] - start["log C"]) < 0.01


def test_update_to_weight_ratio_grows_with_the_rate():
    gauge = practice.update_ratios((0.01, 0.1, 1.0))
    medians = [np.median(gauge.ratios[lr]) for lr in (0.01, 0.1, 1.0)]
    growth = np.array(medians[1:]) / np.array(medians[:-1])
    assert np.all((growth > 3) & (growth < 15))
    assert min(gauge.val_loss, key=gauge.val_loss.get) == 1.0
    assert 0.02 < medians[-1] < 0.2  # the best rate moves the first layer by several percent


def test_warmup_rescues_no_rate_that_is_too_large_for_this_network_and_only_delays_blow_ups():
    runs = practice.warmup_runs((0.05, 0.1, 0.2), warm=50)
    assert all(run.trained for run in runs[0.05, 0])
    assert sum(not run.trained for run in runs[0.05, 50]) == 2  # warm-up even costs two runs
    assert not any(run.trained for lr in (0.1, 0.2) for w in (0, 50) for run in runs[lr, w])
    # at 0.1 the constant rate blows up after the warm-up would have ended: not in the first steps
    late = [run.blew_up_at for run in runs[0.1, 0] if run.blew_up_at is not None]
    assert len(late) >= 3 and min(late) > 50
    # at 0.2 warm-up postpones the blow-up of every seed that blows up both ways
    pairs = [(c.blew_up_at, w.blew_up_at) for c, w in zip(runs[0.2, 0], runs[0.2, 50], strict=True)]
    both = [(c, w) for c, w in pairs if c is not None and w is not None]
    assert len(both) >= 3 and all(w > c for c, w in both)


def test_a_warmup_run_is_trained_only_if_it_stayed_finite_and_beat_chance():
    finite = practice.WarmupRun(np.ones(3), None, 0.9)
    chance = practice.WarmupRun(np.ones(3), None, 0.1)
    blown = practice.WarmupRun(np.array([1.0, np.inf]), 1, 0.0)
    assert finite.trained and not chance.trained and not blown.trained


def test_the_linear_scaling_rule_holds_up_to_batch_256_and_breaks_at_512():
    scaling = practice.linear_scaling()
    base = scaling.val_loss[8, "scaled"]
    for batch in (16, 32, 64, 128, 256):
        assert np.all(np.abs(scaling.val_loss[batch, "scaled"] / base - 1) < 0.25)
    assert np.all(scaling.val_loss[512, "scaled"] > np.log(10))  # rate 3.2: past the ceiling
    assert np.all(scaling.val_loss[128, "unscaled"] > 3 * base)  # the rate not scaled


def test_on_the_digits_the_schedules_end_alike_and_the_constant_rate_trains_furthest():
    runs = practice.schedule_runs()
    val = [final.val_loss.mean() for final in runs.values()]
    assert max(val) - min(val) < 0.02
    assert all(np.all(final.val_accuracy >= 0.95) for final in runs.values())
    assert min(runs, key=lambda name: runs[name].train_loss.mean()) == "constant"


def test_on_the_digits_sgd_adam_and_adamw_generalize_alike_and_adam_trains_slower():
    runs = practice.optimizer_runs()
    accuracy = [final.val_accuracy.mean() for final in runs.values()]
    assert max(accuracy) - min(accuracy) < 0.01
    assert runs["Adam"].train_loss.mean() > 10 * runs["SGD + momentum"].train_loss.mean()
    assert abs(runs["AdamW"].val_loss.mean() - runs["Adam"].val_loss.mean()) < 0.002
