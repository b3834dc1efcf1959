"""Chapter 4 (Rprop and Quickprop): every claim the book's pages make, asserted on the same
experiment functions the pages call (course.experiments.ch04_rprop_quickprop)."""

import numpy as np
import pytest

from course.experiments import ch04_rprop_quickprop as rq
from minidl import optim
from minidl.optim.rprop import VARIANTS

pytestmark = pytest.mark.book

RATES = np.geomspace(1e-4, 2.5e-3, 15)


# ----- Rprop on a badly scaled quadratic --------------------------------------------------------


def test_rprop_converges_where_gradient_descent_at_its_best_single_rate_is_slow():
    problem = rq.badly_scaled_quadratic()
    sweep = rq.gradient_descent_sweep(problem, RATES)
    best_rate, best_steps = rq.best_gradient_descent(sweep)
    # the sweep brackets the best rate: the largest rates diverge (past 2 / 1000), the smallest
    # do not get there in 20 000 steps, and the best one is the largest stable rate of the grid
    assert sweep[float(RATES[-1])] is None and sweep[float(RATES[0])] is None
    assert best_rate < problem.max_stable_lr < float(RATES[-1])
    assert 4000 < best_steps < 6000
    for variant in VARIANTS:
        path = rq.trajectory(optim.rprop(lr=0.1, variant=variant), problem, rq.START, 200)
        steps = rq.steps_to_reach(problem, path)
        assert steps is not None and steps <= 60, (variant, steps)
        assert 80 * steps < best_steps  # two orders of magnitude fewer steps
    simple = rq.trajectory(optim.simple_rprop(lr=0.1), problem, rq.START, 200)
    assert rq.steps_to_reach(problem, simple) <= 40


def test_gradient_descent_needs_more_steps_the_worse_the_scaling_and_rprop_does_not():
    rprop_steps, gd_steps = [], []
    for scale in (10.0, 100.0, 1000.0):
        problem = rq.badly_scaled_quadratic(scale)
        path = rq.trajectory(optim.rprop(lr=0.1, variant="rprop+"), problem, rq.START, 300)
        rprop_steps.append(rq.steps_to_reach(problem, path))
        rates = [problem.optimal_lr]
        gd_steps.append(rq.gradient_descent_sweep(problem, rates, max_steps=30_000)[rates[0]])
    assert gd_steps[0] * 50 < gd_steps[2]
    assert max(rprop_steps) < 2 * min(rprop_steps)


def test_a_rotated_valley_takes_rprop_much_longer():
    problem = rq.badly_scaled_quadratic()
    aligned = rq.steps_to_reach(
        problem, rq.trajectory(optim.rprop(lr=0.1, variant="rprop+"), problem, rq.START, 3000)
    )
    rotated = rq.rotated_quadratic(1000.0, angle=0.6)
    path = rq.trajectory(optim.rprop(lr=0.1, variant="rprop+"), rotated, rq.START, 3000)
    assert rq.steps_to_reach(rotated, path) is None  # not within 3000 steps
    assert rotated.value(path[-1]) - rotated.minimum > 1e-4
    gd = rq.trajectory(optim.gradient_descent(lr=rotated.optimal_lr), rotated, rq.START, 3000)
    assert rotated.value(gd[-1]) - rotated.minimum < 1e-4  # gradient descent does better here
    assert aligned < 60


# ----- scaling the loss -------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_scaling_the_loss_by_1000_leaves_rprops_trajectory_exactly_unchanged(variant):
    problem = rq.badly_scaled_quadratic()
    plain, scaled = rq.scaling_experiment(optim.rprop(lr=0.1, variant=variant), problem)
    np.testing.assert_array_equal(plain, scaled)
    assert np.ptp(plain[:, 0]) > 1  # it did move


def test_scaling_the_loss_by_1000_sends_gradient_descent_off():
    problem = rq.badly_scaled_quadratic()
    plain, scaled = rq.scaling_experiment(optim.gradient_descent(lr=1e-3), problem, steps=60)
    assert problem.value(plain[-1]) < problem.value(plain[0])
    assert np.abs(scaled[-1]).max() > 1e100  # diverged: 1000 x the curvature, same rate


# ----- Quickprop on a parabola ------------------------------------------------------------------


def test_the_secant_step_lands_on_the_vertex_of_any_parabola():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, w_star = rng.uniform(0.1, 10), rng.normal()
        w_prev, w = rng.normal(size=2) * 3
        vertex = rq.secant_vertex(w_prev, a * (w_prev - w_star), w, a * (w - w_star))
        assert abs(vertex - w_star) < 1e-9


def test_quickprop_reaches_the_minimum_of_a_parabola_in_one_secant_step():
    path = rq.quickprop_on_parabola(curvature=4.0, minimizer=0.7, w0=3.0, lr=0.375)
    assert path[1] < 0.7  # the first (gradient) step overshoots: lr * a = 1.5
    assert abs(path[2] - 0.7) < 1e-12  # the secant step lands on the minimum
    assert abs(path[1] - 0.7) > 1


def test_a_short_first_step_needs_the_growth_limit_and_fahlmans_gradient_term():
    # lr * a = 0.2: the vertex is 4x the first step away, beyond mu = 1.75, so the jump is
    # capped; the gradient term then overshoots, and the secant step back lands on the minimum
    path = rq.quickprop_on_parabola(curvature=4.0, minimizer=0.7, w0=3.0, lr=0.05, steps=5)
    assert abs(path[2] - path[1]) == pytest.approx(1.75 * abs(path[1] - path[0]) + 0.05 * 4 * 1.84)
    assert abs(path[4] - 0.7) < 1e-12 and abs(path[3] - 0.7) > 0.1
    # without the cap the full secant step (plus the gradient term) is taken: one step fewer
    free = rq.quickprop_on_parabola(4.0, 0.7, w0=3.0, lr=0.05, max_growth=1e9, steps=5)
    assert free[2] == pytest.approx(0.7 - 0.05 * 4 * 1.84)
    assert abs(free[3] - 0.7) < 1e-12 and abs(free[2] - 0.7) > 0.1


# ----- Quickprop on a non-convex well -----------------------------------------------------------


def test_quickprop_with_a_growth_limit_up_to_3_finds_the_well_from_every_start():
    losses = rq.quickprop_growth_sweep([1.25, 1.75, 2.5, 3.0], [2.0, 2.5, 3.0], steps=60)
    assert max(losses.values()) < 1e-12


def test_beyond_a_growth_limit_of_3_the_outcome_depends_on_the_start():
    losses = rq.quickprop_growth_sweep([4.0, 6.0], [2.0, 2.5, 3.0], steps=60)
    tail = {key for key, loss in losses.items() if loss > 0.99}
    found = {key for key, loss in losses.items() if loss < 1e-12}
    assert tail == {(4.0, 2.5), (4.0, 3.0), (6.0, 2.0), (6.0, 3.0)}
    assert found == {(4.0, 2.0), (6.0, 2.5)}


def test_a_large_growth_limit_throws_quickprop_into_the_flat_tails():
    losses = rq.quickprop_growth_sweep([4.0], [2.5, 3.0])
    assert min(losses.values()) > 0.99  # stuck where the gradient vanishes
    path = rq.quickprop_on_well(4.0, w0=2.5)
    assert np.abs(path).max() > 10  # one jump went ten units away
    assert abs(rq.gaussian_well().grad(path[-1:, None])[0, 0]) < 1e-6  # where nothing is left
    assert np.sum(np.abs(path) > 5) >= 50  # it spends most of its time in the flat tails
    assert -6 < path[10] < -5 and path[50] > 12
    gd = rq.trajectory(optim.gradient_descent(lr=rq.WELL_LR), rq.gaussian_well(), [2.5], 300)
    assert rq.gaussian_well().value(gd[-1]) < 1e-12  # gradient descent does not jump
    rprop = rq.trajectory(optim.rprop(lr=0.1, variant="rprop+"), rq.gaussian_well(), [2.5], 100)
    assert rq.steps_to_reach(rq.gaussian_well(), rprop, 1e-12) < 60  # signs do not vanish


def test_the_gaussian_well_has_negative_curvature_outside_the_unit_interval():
    well = rq.gaussian_well()
    assert well.hessian(np.array([0.5]))[0, 0] > 0 > well.hessian(np.array([1.5]))[0, 0]
    w = np.linspace(-3, 3, 13)[:, None]
    numeric = (well.value(w + 1e-6) - well.value(w - 1e-6)) / 2e-6
    np.testing.assert_allclose(well.grad(w)[:, 0], numeric, atol=1e-8)


# ----- the variants -----------------------------------------------------------------------------


def test_on_a_tilted_valley_the_improved_variants_win_and_the_simplified_rprop_stalls():
    problem = rq.tilted_valley()
    gaps = {
        name: problem.value(path[-1]) - problem.minimum
        for name, path in rq.variant_paths(problem, steps=100).items()
    }
    assert max(gaps["irprop+"], gaps["irprop-"]) * 1e4 < gaps["rprop+"]
    assert gaps["rprop-"] * 100 < gaps["rprop+"] < 1e-4
    assert gaps["simplified"] > 1e-2


def test_rprop_variants_differ_only_after_a_sign_change():
    parabola = rq.parabola(2.0, 0.0)  # L = w^2
    first = {
        v: rq.trajectory(optim.rprop(lr=1.5, variant=v), parabola, [1.0], 3)[:, 0] for v in VARIANTS
    }
    np.testing.assert_allclose(first["rprop+"], [1.0, -0.5, 1.0, 0.25])
    np.testing.assert_allclose(first["rprop-"], [1.0, -0.5, 0.25, -0.125])
    np.testing.assert_allclose(first["irprop-"], [1.0, -0.5, -0.5, 0.25])
    np.testing.assert_allclose(first["irprop+"], [1.0, -0.5, -0.5, 0.25])  # the loss fell


def test_slider_settings_change_the_outcome_as_the_page_says():
    problem = rq.tilted_valley()

    def gap(**kwargs):
        path = rq.trajectory(
            optim.rprop(lr=0.1, variant="rprop+", **kwargs), problem, rq.VALLEY_START, 100
        )
        return problem.value(path[-1]) - problem.minimum

    default = gap()
    assert gap(etas=(0.9, 1.2)) > 100 * default  # eta_minus near 1: slow to settle
    assert gap(etas=(0.9, 2.0)) > 1e-2
    assert default < gap(etas=(0.25, 1.2)) < 10 * default
    assert gap(etas=(0.5, 1.05)) < default
    assert gap(step_sizes=(1e-6, 0.05)) > 100 * default  # the ceiling caps the approach
    assert gap(step_sizes=(0.05, 50.0)) > 1e-2  # the floor keeps it from settling
