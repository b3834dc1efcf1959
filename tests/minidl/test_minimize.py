"""Tests of :func:`minidl.minimize.minimize`, the loop that runs a rule on a problem."""

from typing import NamedTuple

import numpy as np
import pytest

from minidl.data.problems import quadratic, rosenbrock
from minidl.minimize import minimize
from minidl.optim.base import Rule
from minidl.optim.second_order import lbfgs, newton
from minidl.optim.sgd import gradient_descent

pytestmark = pytest.mark.optim

VALLEY = quadratic([1.0, 10.0], angle=0.4, b=[1.0, -2.0])


class Velocity(NamedTuple):
    v: np.ndarray


def heavy_ball(rate: float, beta: float) -> Rule:
    """A stateful rule written out here, so the test does not lean on minidl.optim."""

    def init(param):
        return Velocity(np.zeros_like(param))

    def update(grad, state, param, *, lr=None, **extras):
        v = beta * state.v - (rate if lr is None else lr) * grad
        return v, Velocity(v)

    return Rule(init, update)


def test_the_iterates_follow_the_rule_from_one_initial_state():
    w0 = np.array([2.0, -1.0])
    run = minimize(heavy_ball(0.05, 0.8), VALLEY, w0, 25)
    w, v, expected = w0.copy(), np.zeros(2), [w0.copy()]
    for _ in range(25):
        v = 0.8 * v - 0.05 * (VALLEY.A @ w + VALLEY.b)
        w = w + v
        expected.append(w)
    np.testing.assert_allclose(run.path, expected, rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(w0, [2.0, -1.0])  # the start is copied
    np.testing.assert_array_equal(run.losses, [VALLEY.value(p) for p in run.path])
    np.testing.assert_array_equal(run.evaluations, np.arange(26))
    assert run.steps == 25 and len(run.states) == 26
    np.testing.assert_array_equal(run.states[0].v, [0.0, 0.0])
    np.testing.assert_allclose(run.states[-1].v, run.path[-1] - run.path[-2])
    assert not run.converged and not run.diverged


def test_the_record_is_read_only():
    run = minimize(gradient_descent(0.1), VALLEY, [1.0, 1.0], 3)
    for array in (run.path, run.losses, run.evaluations):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0.0
    with pytest.raises(AttributeError):
        run.path = None


def test_a_schedule_sets_the_rate_of_each_step():
    schedule = lambda t: 0.1 / (t + 1)  # noqa: E731
    run = minimize(gradient_descent(lr=123.0), VALLEY, [1.0, 1.0], 5, schedule=schedule)
    w = np.array([1.0, 1.0])
    for t in range(5):
        w = w - schedule(t) * VALLEY.grad(w)
    np.testing.assert_allclose(run.path[-1], w, rtol=1e-15)


def test_a_rule_gets_the_loss_the_exact_hessian_and_a_counted_loss_function():
    seen = []

    def update(grad, state, param, *, lr=None, loss, hess, loss_fn):
        seen.append((param.copy(), loss, hess))
        for _ in range(2):  # two trial points, as a line search would
            loss_fn(param + 0.1)
        return -0.1 * grad, state

    rule = Rule(lambda p: (), update, needs=frozenset({"loss", "hess", "loss_fn"}), flat=True)
    problem = rosenbrock()
    run = minimize(rule, problem, [-1.2, 1.0], 3)
    np.testing.assert_array_equal(run.evaluations, [0, 3, 6, 9])  # 1 gradient + 2 trials a step
    for (param, loss, hess), w, recorded in zip(seen, run.path, run.losses, strict=False):
        np.testing.assert_array_equal(param, w)
        assert loss == recorded == problem.value(w)
        np.testing.assert_array_equal(hess, problem.hessian(w))


def test_newton_reaches_the_minimizer_of_a_quadratic_in_one_step():
    run = minimize(newton(), VALLEY, [5.0, 5.0], 1)
    np.testing.assert_allclose(run.path[1], VALLEY.minimizer, atol=1e-12)


def test_a_diverging_run_ends_at_its_last_finite_iterate_without_a_warning():
    rate = 2.5 / VALLEY.eigenvalues[-1]  # beyond 2 / lambda_max: |1 - 2.5| = 1.5 per step
    run = minimize(gradient_descent(rate), VALLEY, [1.0, 1.0], 5000)
    assert run.diverged and not run.converged
    assert np.isfinite(run.path).all() and 100 < run.steps < 5000
    assert np.abs(run.path[-1]).max() > 1e300
    np.testing.assert_array_equal(run.losses[-1], np.inf)  # the loss overflows first


def test_until_stops_at_the_first_iterate_that_passes_it():
    def near(w):
        return np.linalg.norm(w - VALLEY.minimizer) <= 1e-6

    run = minimize(gradient_descent(VALLEY.optimal_lr), VALLEY, [3.0, 3.0], 1000, until=near)
    assert run.converged and near(run.path[-1]) and not near(run.path[-2])
    exact = minimize(gradient_descent(VALLEY.optimal_lr), VALLEY, [3.0, 3.0], run.steps, until=near)
    assert exact.converged and exact.steps == run.steps  # met on the last step allowed
    short = minimize(
        gradient_descent(VALLEY.optimal_lr), VALLEY, [3.0, 3.0], run.steps - 1, until=near
    )
    assert not short.converged and short.steps == run.steps - 1
    at_start = minimize(gradient_descent(0.1), VALLEY, VALLEY.minimizer, 10, until=near)
    assert at_start.converged and at_start.steps == 0


def test_lbfgs_stays_put_once_the_gradient_vanishes():
    run = minimize(lbfgs(), VALLEY, [3.0, 3.0], 30)
    np.testing.assert_allclose(run.path[-1], VALLEY.minimizer, atol=1e-10)
    assert np.all(np.diff(run.losses) <= 1e-15)


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match=r"w0 must be one point of shape \(2,\) for quadratic"):
        minimize(gradient_descent(0.1), VALLEY, [1.0, 2.0, 3.0], 3)
    with pytest.raises(ValueError, match=r"w0 must be one point .* got shape \(4, 2\)"):
        minimize(gradient_descent(0.1), VALLEY, np.zeros((4, 2)), 3)
    for steps in (-1, 2.5, True):
        with pytest.raises(ValueError, match=f"steps must be an integer >= 0, got {steps!r}"):
            minimize(gradient_descent(0.1), VALLEY, [1.0, 2.0], steps)
    odd = Rule(lambda p: (), lambda g, s, p, **kw: (g, s), needs=frozenset({"batch"}))
    with pytest.raises(ValueError, match=r"needs \['batch'\]; a problem supplies only"):
        minimize(odd, VALLEY, [1.0, 2.0], 3)
