"""Chapter 6 (Adaptive learning rates): every claim the book's pages make, asserted on the same
experiment functions the pages call (course.experiments.ch06_adaptive)."""

import numpy as np
import pytest

from course.experiments import ch06_adaptive as adaptive
from minidl import data, optim

pytestmark = pytest.mark.book


# ----- Adagrad's rate vanishes, RMSprop's does not ---------------------------------------------


@pytest.fixture(scope="module")
def rates():
    return adaptive.effective_rates(10_000, rng=np.random.default_rng(0))


def test_adagrad_rate_decays_like_one_over_sqrt_t(rates):
    adagrad = rates["adagrad"]
    # after 10 000 steps both coordinates' rates are below 1/50 of eta = 0.1 ...
    assert np.all(adagrad[-1] < 0.1 / 50)
    # ... and over the last decade of steps they still drop by 3.1x and 2.3x (1/sqrt(t): 3.16)
    drop = adagrad[999] / adagrad[-1]
    assert 2.8 < drop[0] < 3.4 and 2.0 < drop[1] < 2.7
    # the second coordinate starts ten times lower (its first gradients are ten times larger)
    assert 5 < adagrad[0, 0] / adagrad[0, 1] < 20
    assert np.all(np.diff(adagrad, axis=0) <= 0)  # G_t only grows


def test_rmsprop_rate_settles_and_stays_far_above_adagrads(rates):
    rmsprop, adagrad = rates["rmsprop"], rates["adagrad"]
    late = rmsprop[1000:]
    assert late.min() > 0.06 and late.max() < 0.13  # the page: between 0.07 and 0.12
    assert np.all(late.min(axis=0) > 0.5 * late.mean(axis=0))
    assert np.all(late.max(axis=0) < 2.0 * late.mean(axis=0))
    assert np.all(rmsprop[-1] > 50 * adagrad[-1])


def test_rmsprop_keeps_jittering_while_adagrad_freezes_at_the_noisy_minimum(rates):
    # the price of a rate that does not vanish: the noise-driven loss stays higher
    assert rates["loss_adagrad"][-2000:].mean() < rates["loss_rmsprop"][-2000:].mean()


# ----- rare features ---------------------------------------------------------------------------

FREQUENCIES = [0.5, 0.5, 0.05, 0.05, 0.01, 0.01]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rare_features_get_larger_adagrad_updates(seed):
    u = adaptive.sparse_feature_updates(FREQUENCIES, rng=np.random.default_rng(seed))
    frequent, medium, rare = u.adagrad[:2].mean(), u.adagrad[2:4].mean(), u.adagrad[4:].mean()
    assert frequent < medium < rare
    ratio = rare / frequent
    assert 3.5 < ratio < 14  # sqrt(0.5 / 0.01) = 7.1
    sgd_ratio = u.sgd[4:].mean() / u.sgd[:2].mean()
    assert 0.7 < sgd_ratio < 1.3


# ----- Adam's bias correction ------------------------------------------------------------------


def test_adam_steps_match_the_framework_with_and_without_correction():
    rng = np.random.default_rng(3)
    grads = rng.standard_normal((30, 4))
    for corrected in (True, False):
        rule = optim.adam(lr=0.01, bias_correction=corrected)
        w = np.zeros(4)
        state = rule.init(w)
        expected = []
        for g in grads:
            step, state = rule.update(g, state, w)
            expected.append(step)
        got = adaptive.adam_steps(grads, lr=0.01, correct_first=corrected, correct_second=corrected)
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_without_correcting_m_the_first_steps_are_far_too_small():
    ratios = adaptive.bias_correction_ratios(50)
    m_only = ratios["m not corrected"]
    np.testing.assert_allclose(m_only, 1 - 0.9 ** np.arange(1, 51), rtol=1e-6)
    assert m_only[0] == pytest.approx(0.1, rel=1e-6)
    assert np.all(m_only[:6] < 0.5)  # at least twice too small for six steps
    assert m_only[21] > 0.9  # and within 10% after 22 steps
    np.testing.assert_allclose(ratios["both corrected (Adam)"], 1.0)


def test_without_any_correction_default_betas_make_the_first_step_too_large():
    ratios = adaptive.bias_correction_ratios(5000)
    neither, s_only = ratios["neither corrected"], ratios["s not corrected"]
    assert neither[0] == pytest.approx(0.1 / np.sqrt(0.001), rel=1e-6)  # 3.16
    assert s_only[0] == pytest.approx(1 / np.sqrt(0.001), rel=1e-6)  # 31.6
    assert neither.argmax() == 11 and neither.max() > 6.5  # 6.6x too large at step 12
    assert np.all(neither[:500] > 1.5)
    assert neither[-1] == pytest.approx(1.0, abs=0.01)


def test_with_beta2_equal_to_beta1_the_uncorrected_steps_are_too_small():
    neither = adaptive.bias_correction_ratios(50, betas=(0.9, 0.9))["neither corrected"]
    assert neither[0] == pytest.approx(np.sqrt(0.1), rel=1e-6)  # 0.32
    assert np.all(neither < 1) and np.all(np.diff(neither) > 0)


# ----- the slider and the race -----------------------------------------------------------------


SLIDER = [(b1, b2) for b1 in [0.0, 0.5, 0.9, 0.99] for b2 in [0.9, 0.999]]


def test_slider_statements_about_beta1_beta2_and_the_rate():
    problem = adaptive.RACE_SURFACES["quadratic"].problem
    final = {
        (b1, b2, lr): problem.value(adaptive.adam_path(b1, b2, lr)[-1])
        for b1, b2 in SLIDER
        for lr in [0.01, 0.1, 0.3]
    }
    assert all(final[b1, b2, 0.01] > 10 for b1, b2 in SLIDER)  # eta = 0.01 crawls
    assert all(final[0.99, b2, 0.1] > 1 for b2 in [0.9, 0.999])  # beta1 = 0.99 overshoots
    assert final[0.9, 0.999, 0.1] < 0.05 and final[0.9, 0.999, 0.3] < 1e-3
    for b1, b2 in SLIDER:
        for lr in [0.01, 0.1, 0.3]:
            first = np.linalg.norm(np.diff(adaptive.adam_path(b1, b2, lr, steps=1), axis=0))
            assert first == pytest.approx(np.sqrt(2) * lr, rel=1e-6)


def test_race_outcomes_the_page_describes():
    gaps = {
        surface: {
            name: adaptive.gap_to_minimum(surface, path)
            for name, path in adaptive.race(surface).items()
        }
        for surface in adaptive.RACE_SURFACES
    }
    assert set(gaps["quadratic"]) == set(optim_names := list(adaptive.race_rules("quadratic")))
    assert len(optim_names) == 11
    # Newton solves the quadratic in one step; L-BFGS within a few
    assert gaps["quadratic"]["newton"][1] < 1e-20
    assert len(adaptive.race("quadratic")["lbfgs"]) <= 5
    assert gaps["quadratic"]["gradient descent"][-1] < 1e-15
    # on Rosenbrock only Newton and L-BFGS reach the minimum within the budget
    for name, gap in gaps["rosenbrock"].items():
        assert (gap[-1] < 1e-8) == (name in {"newton", "lbfgs"}), name
    rosenbrock = {name: gap[-1] for name, gap in gaps["rosenbrock"].items()}
    assert rosenbrock["quickprop"] < 0.1 and rosenbrock["rprop"] < 0.1
    for name in ["gradient descent", "adagrad", "rmsprop", "adadelta"]:
        assert rosenbrock[name] > 1, name
    for name in ["momentum", "nesterov", "adam"]:
        assert 0.1 < rosenbrock[name] < 1, name
    # next to the saddle Newton converges to the saddle; every first-order method escapes
    saddle = gaps["saddle"]
    assert saddle["newton"][-1] == pytest.approx(0.25, abs=1e-6)
    for name, gap in saddle.items():
        assert (gap[-1] < 1e-4) == (name not in {"newton", "adadelta"}), name
    # the adaptive rates escape far sooner than gradient descent
    assert saddle["adagrad"][20] < 1e-2 < saddle["gradient descent"][20]
    assert saddle["rprop"][20] < 1e-2


def test_adadelta_starts_at_sqrt_eps_and_grows_slowly():
    course = adaptive.RACE_SURFACES["quadratic"]
    path = adaptive.trajectory(optim.adadelta(), course.problem, course.start, 200)
    lengths = np.linalg.norm(np.diff(path, axis=0), axis=1)
    # first step: sqrt(eps / (1 - rho)) per coordinate, two coordinates
    assert lengths[0] == pytest.approx(np.sqrt(2 * 1e-6 / 0.1), rel=1e-3)  # 0.0045
    assert lengths[199] == pytest.approx(0.0055, abs=0.0002)
    assert lengths.max() < 2 * lengths[0]


def test_per_coordinate_rates_beat_the_best_single_rate_on_an_axis_aligned_ravine():
    ravine = data.quadratic([1.0, 50.0])
    gd = adaptive.trajectory(optim.gradient_descent(lr=ravine.optimal_lr), ravine, (-2, 1), 60)
    adagrad = adaptive.trajectory(optim.adagrad(lr=0.5), ravine, (-2, 1), 60)
    assert ravine.value(adagrad[-1]) < 1e-6
    assert ravine.value(gd[-1]) > 0.1
    # rotated by 30 degrees (the race's quadratic), the advantage is gone
    race = adaptive.race("quadratic")
    gaps = {n: adaptive.gap_to_minimum("quadratic", race[n])[-1] for n in race}
    assert gaps["gradient descent"] < 1e-3 * gaps["adagrad"]
