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
