"""Chapter 5 (Momentum and Nesterov): every claim the book's pages make, asserted on the same
experiment functions the pages call (course.experiments.ch05_momentum)."""

import numpy as np
import pytest

from course.experiments import ch05_momentum as mom
from minidl import data, optim
from minidl.optim.sgd import MomentumState

pytestmark = pytest.mark.book


# ----- the ravine: along and across ------------------------------------------------------------


def test_momentum_accelerates_along_the_ravine_and_damps_the_zigzag_across_it():
    runs = mom.ravine_directions(lr=0.0038, beta=0.9, steps=60)
    gd, gd_fast, momentum = (
        runs["gradient descent"],
        runs["gradient descent, rate / (1 - beta)"],
        runs["momentum"],
    )
    # along the floor: momentum leaves a 25th of what gradient descent with the same rate leaves,
    # and a third of what gradient descent with the 10x larger rate leaves
    assert momentum.along_left < gd.along_left / 20
    assert momentum.along_left < gd_fast.along_left / 3
    # across the walls: gradient descent at the 10x rate reverses at every step, momentum 8 times
    assert gd_fast.reversals == 59 and momentum.reversals <= 10
    assert momentum.across_path < gd_fast.across_path / 3
    # gradient descent at the small rate slides straight down the wall: no zig-zag, no progress
    assert gd.reversals == 0 and gd.along_left > 0.75
    assert runs["nesterov"].across_path < momentum.across_path


def test_directions_measure_the_eigenbasis():
    problem = data.quadratic([1.0, 9.0], angle=0.3)
    q = problem.eigenvectors
    path = np.array([4 * q[:, 0] + q[:, 1], 2 * q[:, 0] - q[:, 1], q[:, 0] + 0.5 * q[:, 1]])
    d = mom.directions(path, problem)
    assert d.along_left == pytest.approx(0.25)
    assert d.across_path == pytest.approx(3.5)
    assert d.reversals == 1


# ----- Nesterov against classical momentum -----------------------------------------------------


def test_nesterov_needs_fewer_iterations_with_high_momentum_on_an_ill_conditioned_quadratic():
    counts = mom.nesterov_vs_momentum([0.5, 0.9, 0.95, 0.99], kappa=100.0)
    hb, nag = counts["momentum"], counts["nesterov"]
    assert np.all(nag[1:] < 0.75 * hb[1:]), (hb, nag)
    assert nag[-1] < 0.4 * hb[-1]
    # with little momentum the two are within a few percent of each other
    assert abs(nag[0] / hb[0] - 1) < 0.05


# ----- the analysis on a quadratic -------------------------------------------------------------


@pytest.mark.parametrize("method", ["momentum", "nesterov"])
def test_iteration_matrix_reproduces_the_rule_on_one_eigenvalue(method):
    lam, lr, beta = 3.0, 0.2, 0.7
    problem = data.quadratic([lam])
    path = mom.run(getattr(optim, method)(lr, beta), problem, [1.0], 6)[:, 0]
    # the Nesterov rule's iterate is the look-ahead point, a fixed combination of w_t and
    # w_{t-1}: it obeys the same recursion
    T = mom.iteration_matrix(lr, beta, lam, method)
    state = np.array([path[1], path[0]])
    for t in range(1, 6):
        state = T @ state
        assert state[0] == pytest.approx(path[t + 1], rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("method", ["momentum", "nesterov"])
def test_rate_map_agrees_with_measured_rates(method):
    problems = [mom.ravine(), mom.ill_conditioned_quadratic(30.0, 6, seed=3)]
    lrs = np.linspace(0.002, 0.08, 9)
    betas = [0.0, 0.3, 0.6, 0.8, 0.9, 0.95]
    rng = np.random.default_rng(0)
    checked = 0
    for problem in problems:
        rates = mom.rate_map(problem.eigenvalues, lrs / problem.eigenvalues[-1] * 50, betas, method)
        w0 = rng.standard_normal(problem.dim)
        for i, beta in enumerate(betas):
            for j, lr in enumerate(lrs / problem.eigenvalues[-1] * 50):
                predicted = rates[i, j]
                measured = mom.measured_rate(getattr(optim, method)(lr, beta), problem, w0, 600)
                if predicted > 1.01:
                    assert measured > 1.0, (beta, lr, predicted, measured)
                elif predicted < 0.99:
                    assert measured == pytest.approx(predicted, abs=0.01), (beta, lr)
                checked += 1
    assert checked == 2 * len(lrs) * len(betas)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99])
def test_stability_limits(beta):
    lam = 50.0
    hb_edge = (2 + 2 * beta) / lam
    nag_edge = (2 + 2 * beta) / (1 + 2 * beta) / lam
    for method, edge in [("momentum", hb_edge), ("nesterov", nag_edge)]:
        inside = mom.convergence_rate(edge * (1 - 1e-3), beta, [1.0, lam], method)
        outside = mom.convergence_rate(edge * (1 + 1e-3), beta, [1.0, lam], method)
        assert inside < 1 < outside, (method, inside, outside)


@pytest.mark.parametrize("kappa", [10.0, 50.0, 400.0])
def test_the_best_point_of_each_map_is_the_formula(kappa):
    lrs = np.linspace(1e-4, 4.2, 1201) / kappa
    betas = np.linspace(0.0, 0.999, 1000)
    eta, beta, rate = mom.optimal_heavy_ball(1.0, kappa)
    assert mom.convergence_rate(eta, beta, [1.0, kappa], "momentum") == pytest.approx(rate)
    assert rate == pytest.approx(np.sqrt(beta))
    hb = mom.rate_map([1.0, kappa], lrs, betas, "momentum")
    assert hb.min() == pytest.approx(rate, abs=2e-3)
    assert hb.min() >= rate - 1e-9
    eta_n, beta_n, rate_n = mom.optimal_nesterov(1.0, kappa)
    assert mom.convergence_rate(eta_n, beta_n, [1.0, kappa], "nesterov") == pytest.approx(rate_n)
    nag = mom.rate_map([1.0, kappa], lrs, betas, "nesterov")
    assert nag.min() == pytest.approx(rate_n, abs=2e-3)
    assert nag.min() >= rate_n - 1e-9
    # tuned for a quadratic, heavy ball beats Nesterov
    assert rate < rate_n


def test_optimal_heavy_ball_converges_at_its_predicted_rate():
    problem = mom.ill_conditioned_quadratic(100.0, 8, seed=1)
    lam = problem.eigenvalues
    eta, beta, rate = mom.optimal_heavy_ball(lam[0], lam[-1])
    w0 = np.random.default_rng(2).standard_normal(8)
    measured = mom.measured_rate(optim.momentum(eta, beta), problem, w0, 600)
    assert measured == pytest.approx(rate, abs=0.01)
    assert measured < mom.measured_rate(optim.gradient_descent(problem.optimal_lr), problem, w0)


# ----- the training loop -----------------------------------------------------------------------


def test_momentum_and_nesterov_train_the_digits_mlp_faster():
    curves = mom.digits_race()
    gd = curves["gradient descent"][0]
    for name in ["momentum", "nesterov"]:
        loss, accuracy = curves[name]
        assert loss[-1] < 0.3 * gd[-1]
        assert loss[2] < gd[-1]  # after 3 epochs, below gradient descent's loss after all
        assert accuracy[-1] > 0.93


def test_velocity_on_a_constant_and_on_an_alternating_gradient():
    lr, beta = 0.1, 0.9
    rule = optim.momentum(lr, beta)
    state = rule.init(np.zeros(2))
    for t in range(200):
        step, state = rule.update(np.array([1.0, (-1.0) ** t]), state, np.zeros(2))
    assert step[0] == pytest.approx(-lr / (1 - beta))
    assert abs(step[1]) == pytest.approx(lr / (1 + beta))


def test_where_both_converge_the_two_maps_differ_little_and_agree_at_small_rates():
    lam = mom.ravine().eigenvalues
    lrs = np.linspace(0.0, 4.2, 211)[1:] / lam[-1]
    betas = np.linspace(0.0, 0.99, 100)
    hb = mom.rate_map(lam, lrs, betas, "momentum")
    nag = mom.rate_map(lam, lrs, betas, "nesterov")
    both = (hb < 1) & (nag < 1) & (betas[:, None] >= 0.8)
    assert 0.01 < (hb - nag)[both].max() < 0.015
    eta_lam = np.broadcast_to(lrs[None, :] * lam[-1], hb.shape)
    worse = both & (nag > hb + 1e-3)
    assert worse.any()
    assert np.all((eta_lam[worse] <= 0.6) | (eta_lam[worse] >= 1.3))
    low = (lrs[None, :] * lam[-1] < 0.3) & (betas[:, None] < 0.5)
    assert np.abs(hb - nag)[low].max() < 1e-3


def test_in_the_complex_band_nesterov_spirals_in_faster_than_heavy_ball():
    beta = 0.9
    for x in np.linspace(0.01, 0.9, 20):
        hb = np.abs(np.linalg.eigvals(mom.iteration_matrix(x, beta, 1.0, "momentum")))
        nag = np.abs(np.linalg.eigvals(mom.iteration_matrix(x, beta, 1.0, "nesterov")))
        if (1 - np.sqrt(beta)) ** 2 < x < (1 + np.sqrt(beta)) ** 2:
            assert hb == pytest.approx([np.sqrt(beta)] * 2)
        if (1 + beta) ** 2 * (1 - x) ** 2 < 4 * beta * (1 - x):
            assert nag == pytest.approx([np.sqrt(beta * (1 - x))] * 2)
            assert nag.max() < hb.max()


def test_one_step_from_the_wall_momentum_overshoots_and_nesterov_brakes():
    ravine, lr, beta = mom.ravine(), 0.012, 0.9
    w, v = np.array([-6.0, 0.5]), np.array([0.5, -0.8])
    step, _ = optim.momentum(lr, beta).update(ravine.grad(w), MomentumState(v), w)
    heavy_ball = w + step
    nesterov = w + beta * v - lr * ravine.grad(w + beta * v)
    assert heavy_ball[1] == pytest.approx(-0.52)
    assert nesterov[1] == pytest.approx(-0.088)
    assert abs(nesterov[1]) < abs(heavy_ball[1]) / 5


def test_the_rate_map_sliders_marked_points_reach_each_optimum():
    # analysis.md's slider: (eta lambda_max, beta) = (3.07, 0.566) and (1.325, 0.72)
    lam = mom.ravine().eigenvalues
    rate_hb = mom.optimal_heavy_ball(lam[0], lam[-1])[2]
    rate_nag = mom.optimal_nesterov(lam[0], lam[-1])[2]
    assert round(float(rate_hb), 3) == 0.752 and round(float(rate_nag), 3) == 0.837
    hb_point, nag_point = (3.07 / lam[-1], 0.566), (1.325 / lam[-1], 0.72)
    assert abs(mom.convergence_rate(*hb_point, lam, "momentum") - rate_hb) < 5e-4
    assert mom.convergence_rate(*hb_point, lam, "nesterov") > 1
    assert abs(mom.convergence_rate(*nag_point, lam, "nesterov") - rate_nag) < 1e-3
    assert mom.convergence_rate(1.32 / lam[-1], 0.72, lam, "nesterov") > rate_nag + 0.005
