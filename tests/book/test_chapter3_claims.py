"""Chapter 3 (Second-order methods): every claim the book's pages make, asserted on the same
experiment functions the pages call (course.experiments.ch03_second_order)."""

import numpy as np
import pytest

from course.experiments import ch03_second_order as so
from minidl import data, optim

pytestmark = pytest.mark.book


# ----- scaling the axes with A^(-1/2) ----------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_scaling_by_inverse_square_root_makes_the_hessian_the_identity(seed):
    rng = np.random.default_rng(seed)
    problem = data.quadratic([0.5, 20.0], angle=rng.uniform(0, np.pi), b=rng.standard_normal(2))
    scaled, S = so.scaled_quadratic(problem)
    np.testing.assert_allclose(S @ S @ problem.A, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(scaled.A, np.eye(2), atol=1e-12)
    # before: optimal rates 1/lambda_i differ by the condition number; after: all equal to 1
    assert problem.optimal_lrs.max() / problem.optimal_lrs.min() == pytest.approx(40.0)
    np.testing.assert_allclose(scaled.optimal_lrs, [1.0, 1.0])
    # one gradient step of rate 1 in v = A^(1/2) w lands on the minimum; mapped back it is Newton
    w0 = rng.standard_normal(2)
    v0 = np.linalg.solve(S, w0)
    v1 = so.gradient_descent_path(scaled, v0, lr=1.0, steps=1)[1]
    np.testing.assert_allclose(S @ v1, problem.minimizer, atol=1e-12)
    # gradient descent at its optimal rate in the original axes is still far after 10 steps
    path = so.gradient_descent_path(problem, w0, lr=problem.optimal_lr, steps=10)
    assert np.linalg.norm(path[-1] - problem.minimizer) > 0.1 * np.linalg.norm(
        w0 - problem.minimizer
    )


# ----- Newton in one step on any positive-definite quadratic -----------------------------------


def test_newton_solves_random_positive_definite_quadratics_in_one_step():
    errors = so.newton_one_step_errors([2, 5, 20, 100], rng=np.random.default_rng(0))
    assert max(errors.values()) < 1e-9


def test_newton_step_size_contracts_by_one_minus_eta_and_diverges_past_two():
    problem = data.quadratic([1.0, 25.0], angle=0.4)
    w0 = problem.minimizer + np.array([2.0, 1.0])
    e0 = np.linalg.norm(w0 - problem.minimizer)
    for lr in [0.25, 0.5, 1.5, 1.9, 2.1, 2.5]:
        run = so.newton_step_size_errors(problem, w0, lr, steps=8)
        errors = np.linalg.norm(run.path - problem.minimizer, axis=1)
        np.testing.assert_allclose(errors, e0 * abs(1 - lr) ** np.arange(9), rtol=1e-8)
        assert (errors[-1] < e0) == (lr < 2)
    assert (
        np.linalg.norm(so.newton_step_size_errors(problem, w0, 1.0, 1).path[1] - problem.minimizer)
        < 1e-12
    )


# ----- Newton uphill in a non-convex region, damping descends ----------------------------------


def test_undamped_newton_goes_uphill_in_the_non_convex_strip_and_damping_descends():
    problem, w = data.double_well(), so.UPHILL_START
    assert np.linalg.eigvalsh(problem.hessian(w))[0] < 0
    sweep = so.damping_sweep(problem, w, np.array([0.0, 0.3, 0.5, 0.6, 0.8, 1.0, 2.0, 5.0]))
    newton_change, newton_slope = sweep["change"][0], sweep["slope"][0]
    assert newton_slope > 0 and newton_change > 0.03  # Newton's step points uphill and rises
    lam_min = np.linalg.eigvalsh(problem.hessian(w))[0]
    below = sweep["damping"] < -lam_min
    assert np.all(sweep["slope"][below] > 0) and np.all(sweep["slope"][~below] < 0)
    assert np.all(sweep["change"][sweep["damping"] >= 1.0] < 0)
    # just past -lambda_min the direction descends but the step is huge and overshoots; at 0.5
    # an uphill direction leaps over the saddle into the other well and lands lower by luck
    assert sweep["change"][sweep["damping"] == 0.8][0] > 10
    assert sweep["change"][sweep["damping"] == 0.5][0] < 0


def test_iterated_newton_climbs_to_the_saddle_while_adaptive_lm_reaches_a_minimum():
    problem, w = data.double_well(), so.UPHILL_START
    newton = so.run_rule(optim.newton(), problem, w, steps=20)
    lm = so.run_rule(optim.levenberg_marquardt(damping=1.0, adaptive=True), problem, w, 20)
    gd = so.run_rule(optim.gradient_descent(lr=0.5), problem, w, 40)
    np.testing.assert_allclose(gd.path[-1], [1.0, 0.0], atol=1e-3)
    np.testing.assert_allclose(newton.path[-1], [0.0, 0.0], atol=1e-8)
    assert newton.losses[-1] > newton.losses[0]
    assert np.all(np.diff(lm.losses) <= 0)
    np.testing.assert_allclose(lm.path[-1], [1.0, 0.0], atol=1e-6)


def test_at_the_plain_saddle_newton_jumps_onto_it_and_damping_escapes():
    saddle = data.quadratic([1.0, -1.0])
    w = np.array([0.2, 0.5])
    newton = so.damped_step(saddle, w, 0.0)
    np.testing.assert_allclose(w + newton, [0.0, 0.0], atol=1e-12)
    assert saddle.value(w + newton) > saddle.value(w)
    damped = so.damped_step(saddle, w, 2.0)
    assert saddle.value(w + damped) < saddle.value(w)


# ----- the cost of the Hessian -----------------------------------------------------------------


def test_hessian_memory_grows_like_n_squared_and_solving_superlinearly():
    # the least CPU time of 5 runs: one slow run under a loaded machine (seen in a full parallel
    # run) cannot bend the fitted slope
    cost = so.hessian_cost([100, 200, 400, 800, 1200], rng=np.random.default_rng(0), repeats=5)
    np.testing.assert_allclose(cost["memory"], 8.0 * cost["n"] ** 2)
    assert so.growth_exponent(cost["n"], cost["memory"]) == pytest.approx(2.0)
    # timings on a shared machine are noisy: ask for clearly superlinear growth
    big = slice(2, None)
    assert so.growth_exponent(cost["n"][big], cost["solve"][big]) > 1.8
    assert so.growth_exponent(cost["n"][big], cost["form"][big]) > 1.3


# ----- the BFGS update -------------------------------------------------------------------------


def test_bfgs_update_meets_the_secant_condition_and_needs_positive_curvature():
    A = np.array([[4.0, 1.0], [1.0, 0.5]])
    s = np.array([1.0, -1.0])
    for y in [A @ s, -A @ s]:
        M = so.bfgs_update(np.eye(2), s, y)
        np.testing.assert_allclose(M @ y, s, atol=1e-12)
        np.testing.assert_allclose(M, M.T, atol=1e-12)
        smallest = np.linalg.eigvalsh(M)[0]
        assert smallest > 0.1 if y @ s > 0 else smallest < -0.1
    rng = np.random.default_rng(3)
    for _ in range(5):  # random positive-definite starts and positive-curvature pairs
        B = rng.standard_normal((4, 4))
        M0, A4 = B @ B.T + 0.1 * np.eye(4), np.diag(rng.uniform(0.5, 5.0, 4))
        s4 = rng.standard_normal(4)
        assert np.linalg.eigvalsh(so.bfgs_update(M0, s4, A4 @ s4))[0] > 0


# ----- L-BFGS against gradient descent ---------------------------------------------------------


def test_lbfgs_beats_gradient_descent_on_rosenbrock():
    race = so.rosenbrock_race()
    gd, lbfgs = race["gradient descent"], race["lbfgs"]
    reached = np.argmax(lbfgs.losses < 1e-12)
    assert lbfgs.losses[reached] < 1e-12 and reached <= 40 and lbfgs.evaluations[reached] <= 100
    assert 1e-5 < gd.losses[-1] < 1e-4  # 5000 gradient evaluations, still in the valley
    assert len(gd.losses) == 5001
    # plain Newton: six steps, but no line search lets the loss jump up on the way
    newton = race["newton"]
    assert newton.losses[6] < 1e-10 and newton.losses.max() > 1000


def test_gradient_descent_on_rosenbrock_stalls_just_above_its_rate():
    problem = data.rosenbrock()
    assert 2 / np.linalg.eigvalsh(problem.hessian(problem.minimizer))[-1] == pytest.approx(
        2e-3, rel=0.01
    )
    run = so.run_rule(optim.gradient_descent(lr=2.5e-3), problem, so.ROSENBROCK_START, 5000)
    assert run.losses[-1] > 0.1


def test_lbfgs_beats_gradient_descent_on_a_small_network():
    race = so.network_race()
    gd, lbfgs = race["gradient descent"], race["lbfgs"]
    assert gd.evaluations[-1] == 1000
    reached = np.argmax(lbfgs.losses < gd.losses[-1])
    assert lbfgs.losses[reached] < gd.losses[-1] and lbfgs.evaluations[reached] < 100
    assert lbfgs.losses[-1] < 1e-3 * gd.losses[-1]


def test_gradient_descent_rate_ten_is_the_best_of_four_on_the_small_network():
    final = {}
    for lr in [1.0, 3.0, 10.0, 30.0]:
        model, X, y = so.moons_network()
        run = so.train_flat(optim.gradient_descent(lr=lr), model, X, y, 1000)
        final[lr] = run.losses[-1]
        start = run.losses[0]
    assert min(final, key=final.get) == 10.0
    assert final[10.0] < 0.5 * min(final[1.0], final[3.0])
    assert final[30.0] > start  # too large: the loss ends above where it started


# ----- Levenberg-Marquardt on a least-squares fit ----------------------------------------------


def test_levenberg_marquardt_fits_a_decay_and_turns_into_gauss_newton():
    fit = so.decay_fit(8, rng=np.random.default_rng(0))
    assert np.all(np.diff(fit["loss"]) <= 1e-15)
    np.testing.assert_allclose(fit["params"][5], [2.5, 1.3], atol=0.02)
    np.testing.assert_allclose(fit["damping"], 1e-2 * 10.0 ** -np.arange(9))


def test_opening_figure_gradient_descent_is_far_after_twenty_steps_newton_done_in_one():
    problem = data.quadratic([1.0, 20.0], angle=np.pi / 6)
    w0 = np.array([-2.6, 1.6])
    gd = so.gradient_descent_path(problem, w0, lr=problem.optimal_lr, steps=20)
    # the slowest direction contracts by (kappa - 1) / (kappa + 1) = 19 / 21 per step
    assert np.linalg.norm(gd[-1]) / np.linalg.norm(w0) == pytest.approx((19 / 21) ** 20, rel=0.05)
    newton = so.run_rule(optim.newton(), problem, w0, steps=1)
    assert np.linalg.norm(newton.path[1]) < 1e-12
