"""Tests of Newton, Levenberg–Marquardt, BFGS, L-BFGS (:mod:`minidl.optim.second_order`) and
of the line searches (:mod:`minidl.optim.line_search`) on quadratics with known answers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.data.problems import Quadratic as MinidlQuadratic
from minidl.data.problems import rosenbrock as rosenbrock_problem
from minidl.minimize import minimize
from minidl.optim.line_search import backtracking_armijo, strong_wolfe
from minidl.optim.second_order import (
    bfgs,
    gauss_newton_matrix,
    lbfgs,
    levenberg_marquardt,
    newton,
)

pytestmark = pytest.mark.optim

deterministic = settings(derandomize=True, database=None, deadline=None, max_examples=60)


def random_spd(rng: np.random.Generator, n: int, condition: float = 100.0) -> np.ndarray:
    """A symmetric positive-definite matrix Q diag(λ) Qᵀ with a random rotation Q and
    eigenvalues spread log-uniformly over [1, condition]."""
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    eigenvalues = np.geomspace(1.0, condition, n) if n > 1 else np.array([condition])
    return (q * eigenvalues) @ q.T


class Quadratic:
    """L(w) = ½ wᵀAw + bᵀw, with gradient Aw + b, Hessian A and minimizer -A⁻¹b."""

    def __init__(self, a: np.ndarray, b: np.ndarray):
        self.a, self.b = a, b
        self.minimizer = np.linalg.solve(a, -b)

    def loss(self, w: np.ndarray) -> float:
        return float(0.5 * w @ self.a @ w + self.b @ w)

    def grad(self, w: np.ndarray) -> np.ndarray:
        return self.a @ w + self.b

    def loss_and_grad(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        return self.loss(w), self.grad(w)


def random_quadratic(rng: np.random.Generator, n: int, condition: float = 100.0) -> Quadratic:
    return Quadratic(random_spd(rng, n, condition), rng.normal(size=n))


def exact_line_search_step(rule, quad: Quadratic, w: np.ndarray, state):
    """One step of ``rule`` (built with ``line_search=None``) with the exact step length
    α* = -gᵀp / pᵀAp along its direction p. Rules are pure, so the direction is read off a
    trial update with lr=1 and the real update is then made with lr=α*."""
    g = quad.grad(w)
    direction, _ = rule.update(g, state, w, lr=1.0)
    alpha = -(g @ direction) / (direction @ quad.a @ direction)
    step, state = rule.update(g, state, w, lr=alpha)
    return step, state, direction


# --- Newton ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 12])
def test_newton_solves_a_positive_definite_quadratic_in_one_step(n):
    quad = random_quadratic(np.random.default_rng(n), n, condition=1e4)
    w = np.random.default_rng(100 + n).normal(size=n)
    rule = newton()
    step, _ = rule.update(quad.grad(w), rule.init(w), w, hess=quad.a)
    np.testing.assert_allclose(w + step, quad.minimizer, rtol=1e-9, atol=1e-9)


def test_newton_step_scales_with_lr_and_the_lr_override():
    quad = random_quadratic(np.random.default_rng(0), 3)
    w = np.ones(3)
    full, _ = newton().update(quad.grad(w), (), w, hess=quad.a)
    half, _ = newton(lr=0.5).update(quad.grad(w), (), w, hess=quad.a)
    override, _ = newton(lr=0.5).update(quad.grad(w), (), w, hess=quad.a, lr=0.25)
    np.testing.assert_allclose(half, 0.5 * full, rtol=1e-12)
    np.testing.assert_allclose(override, 0.25 * full, rtol=1e-12)


def test_newton_declares_its_needs_and_rejects_bad_inputs():
    rule = newton()
    assert rule.needs == {"hess"} and rule.flat
    w = np.zeros(2)
    with pytest.raises(TypeError, match="newton: missing the keyword input hess="):
        rule.update(np.ones(2), rule.init(w), w)
    with pytest.raises(np.linalg.LinAlgError, match=r"newton: .*singular"):
        rule.update(np.ones(2), rule.init(w), w, hess=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"newton: expected hess of shape \(2, 2\), got \(3, 3\)"):
        rule.update(np.ones(2), rule.init(w), w, hess=np.eye(3))
    with pytest.raises(ValueError, match=r"newton: .*got param \(2, 2\) and grad \(2, 2\)"):
        rule.update(np.ones((2, 2)), (), np.zeros((2, 2)), hess=np.eye(4))
    with pytest.raises(ValueError, match="newton: lr must be >= 0, got -1"):
        newton(lr=-1)


def saddle(w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """L(x, y) = x² + y⁴/4 - y²/2: minima at (0, ±1), a saddle at the origin."""
    x, y = w
    loss = x * x + y**4 / 4 - y * y / 2
    grad = np.array([2 * x, y**3 - y])
    hess = np.array([[2.0, 0.0], [0.0, 3 * y * y - 1]])
    return loss, grad, hess


def test_undamped_newton_goes_uphill_where_the_hessian_is_indefinite_and_damping_does_not():
    w = np.array([0.0, 0.3])  # the y-curvature 3y² - 1 is negative here
    loss, grad, hess = saddle(w)
    newton_step, _ = newton().update(grad, (), w, hess=hess)
    lm = levenberg_marquardt(damping=2.0)
    lm_step, _ = lm.update(grad, lm.init(w), w, hess=hess)
    assert saddle(w + newton_step)[0] > loss
    assert saddle(w + lm_step)[0] < loss


# --- Levenberg–Marquardt --------------------------------------------------------------------


def test_levenberg_marquardt_with_large_damping_is_a_small_gradient_step():
    quad = random_quadratic(np.random.default_rng(1), 4)
    w = np.random.default_rng(2).normal(size=4)
    g = quad.grad(w)
    lam, eta = 1e6, 0.7
    rule = levenberg_marquardt(lr=eta, damping=lam)
    step, _ = rule.update(g, rule.init(w), w, hess=quad.a)

    # (A + λI)⁻¹ = I/λ - A/λ² + O(1/λ³): the relative error is about ||A|| / λ = 1e-4, and
    # the next term of the series brings it to about (||A|| / λ)² = 1e-8
    def relative_error(expected):
        return np.linalg.norm(step - expected) / np.linalg.norm(expected)

    assert relative_error(-(eta / lam) * g) < 2e-4
    assert relative_error(-(eta / lam) * (g - quad.a @ g / lam)) < 2e-8


def test_levenberg_marquardt_without_damping_is_newton():
    quad = random_quadratic(np.random.default_rng(3), 3)
    w = np.ones(3)
    rule = levenberg_marquardt(damping=0.0)
    lm_step, state = rule.update(quad.grad(w), rule.init(w), w, hess=quad.a)
    newton_step, _ = newton().update(quad.grad(w), (), w, hess=quad.a)
    np.testing.assert_allclose(lm_step, newton_step, rtol=1e-12)
    assert state.damping == 0.0 and rule.needs == {"hess"}


def test_adaptive_levenberg_marquardt_refuses_a_step_that_would_raise_the_loss():
    rule = levenberg_marquardt(damping=1e-2, adaptive=True)
    assert rule.needs == {"hess", "loss", "loss_fn"}
    quad = random_quadratic(np.random.default_rng(4), 2)
    w0 = np.array([1.0, -1.0])
    tried = []

    def loss_fn(w):
        tried.append(w.copy())
        # pretend the first two trial points are worse than where we stand
        value = quad.loss(w0) + 1.0 if len(tried) <= 2 else quad.loss(w)
        return value, quad.grad(w)

    step, state = rule.update(
        quad.grad(w0), rule.init(w0), w0, hess=quad.a, loss=quad.loss(w0), loss_fn=loss_fn
    )
    assert len(tried) == 3  # lambda = 0.01 and 0.1 refused, 1.0 accepted
    expected = -np.linalg.solve(quad.a + 1.0 * np.eye(2), quad.grad(w0))
    np.testing.assert_allclose(step, expected, rtol=1e-12)
    assert state.damping == pytest.approx(0.1)  # an accepted step lets the damping fall tenfold


def test_adaptive_levenberg_marquardt_stays_put_when_every_try_fails():
    rule = levenberg_marquardt(damping=1.0, adaptive=True, max_tries=3)
    w0 = np.array([1.0, 2.0])
    step, state = rule.update(
        np.ones(2), rule.init(w0), w0, hess=np.eye(2), loss=0.0, loss_fn=lambda w: (1.0, np.ones(2))
    )
    np.testing.assert_array_equal(step, np.zeros(2))
    assert state.damping == pytest.approx(1000.0)


def test_adaptive_levenberg_marquardt_never_raises_the_loss_on_rosenbrock():
    rule = levenberg_marquardt(damping=1.0, adaptive=True)
    losses = minimize(rule, rosenbrock_problem(), [-1.2, 1.0], 30).losses
    assert np.all(np.diff(losses) <= 0)
    assert losses[-1] < 1e-6


def test_adaptive_levenberg_marquardt_needs_the_loss_and_positive_damping():
    rule = levenberg_marquardt(adaptive=True)
    w = np.zeros(2)
    with pytest.raises(TypeError, match="levenberg_marquardt: missing the keyword input loss="):
        rule.update(np.ones(2), rule.init(w), w, hess=np.eye(2))
    with pytest.raises(ValueError, match=r"damping=0\.0, adaptive=True"):
        levenberg_marquardt(damping=0.0, adaptive=True)
    with pytest.raises(ValueError, match="damping=-1"):
        levenberg_marquardt(damping=-1)


def test_gauss_newton_solves_linear_least_squares_in_one_step():
    rng = np.random.default_rng(5)
    jacobian, target = rng.normal(size=(20, 3)), rng.normal(size=20)
    w = rng.normal(size=3)
    residual = jacobian @ w - target
    hess = gauss_newton_matrix(jacobian)
    np.testing.assert_allclose(hess, jacobian.T @ jacobian)
    rule = levenberg_marquardt(damping=0.0)
    step, _ = rule.update(jacobian.T @ residual, rule.init(w), w, hess=hess)
    solution, *_ = np.linalg.lstsq(jacobian, target, rcond=None)
    np.testing.assert_allclose(w + step, solution, rtol=1e-10)
    with pytest.raises(ValueError, match=r"gauss_newton_matrix: .*got \(3,\)"):
        gauss_newton_matrix(np.ones(3))


# --- BFGS and L-BFGS ------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 5, 8])
def test_bfgs_with_exact_line_searches_recovers_the_inverse_hessian(n):
    """On an n-dimensional quadratic the n steps are A-conjugate, and the hereditary property
    H yᵢ = sᵢ for all of them makes Hₙ = A⁻¹; the n-th pair is folded in
    at call n + 1, where the gradient is (nearly) zero."""
    rng = np.random.default_rng(10 + n)
    quad = random_quadratic(rng, n, condition=50.0)
    rule = bfgs(line_search=None)
    w, state = rng.normal(size=n), rule.init(np.zeros(n))
    for _ in range(n):
        step, state, _ = exact_line_search_step(rule, quad, w, state)
        w = w + step
    np.testing.assert_allclose(w, quad.minimizer, atol=1e-8)
    _, state = rule.update(quad.grad(w), state, w, lr=1.0)
    np.testing.assert_allclose(state.inv_hess, np.linalg.inv(quad.a), atol=1e-8)


@pytest.mark.parametrize("n", [3, 6])
def test_lbfgs_with_enough_history_moves_like_bfgs_on_a_quadratic(n):
    """With exact line searches both generate the conjugate-gradient iterates: their directions
    are parallel at every step and the iterates coincide."""
    rng = np.random.default_rng(20 + n)
    quad = random_quadratic(rng, n, condition=30.0)
    w0 = rng.normal(size=n)
    full, limited = bfgs(line_search=None), lbfgs(history_size=n, line_search=None)
    w_full, w_limited = w0.copy(), w0.copy()
    s_full, s_limited = full.init(w0), limited.init(w0)
    for _ in range(n):
        step_full, s_full, d_full = exact_line_search_step(full, quad, w_full, s_full)
        step_limited, s_limited, d_limited = exact_line_search_step(
            limited, quad, w_limited, s_limited
        )
        cosine = d_full @ d_limited / (np.linalg.norm(d_full) * np.linalg.norm(d_limited))
        assert cosine == pytest.approx(1.0, abs=1e-10)
        w_full, w_limited = w_full + step_full, w_limited + step_limited
        np.testing.assert_allclose(w_limited, w_full, atol=1e-9)
    assert len(s_limited.s_history) == n - 1  # the n-th pair comes with the next gradient


def test_lbfgs_keeps_an_immutable_history_of_the_last_pairs():
    rng = np.random.default_rng(6)
    quad = random_quadratic(rng, 4)
    rule = lbfgs(lr=0.01, history_size=2, line_search=None)
    w, state = rng.normal(size=4), rule.init(np.zeros(4))
    steps = []
    for _ in range(5):
        step, state = rule.update(quad.grad(w), state, w)
        steps.append(step)
        w = w + step
    assert isinstance(state.s_history, tuple) and len(state.s_history) == 2
    np.testing.assert_array_equal(state.s_history[-1], steps[-2])
    np.testing.assert_array_equal(state.s_history[0], steps[-3])
    # the first direction is steepest descent, scaled by lr
    rule = lbfgs(lr=0.01, line_search=None)
    w = np.ones(4)
    first, _ = rule.update(quad.grad(w), rule.init(w), w)
    np.testing.assert_allclose(first, -0.01 * quad.grad(w))


@pytest.mark.parametrize("factory", [bfgs, lbfgs])
@pytest.mark.parametrize("line_search", ["wolfe", "armijo"])
def test_quasi_newton_with_a_line_search_minimizes_a_quadratic(factory, line_search):
    rng = np.random.default_rng(7)
    quad = random_quadratic(rng, 6, condition=100.0)
    rule = factory(line_search=line_search)
    assert rule.needs == {"loss", "loss_fn"} and rule.flat
    run = minimize(rule, MinidlQuadratic(quad.a, quad.b), rng.normal(size=6), 40)
    assert np.all(np.diff(run.losses) <= 0)  # a line search never goes uphill
    np.testing.assert_allclose(run.path[-1], quad.minimizer, atol=1e-8)


def test_bfgs_skips_a_pair_without_positive_curvature():
    rule = bfgs(line_search=None)
    w = np.array([1.0, 2.0])
    # y = g - prev_grad = (-1, 0) against s = (1, 0): yᵀs < 0
    state = rule.init(w)._replace(prev_grad=np.array([2.0, 1.0]), prev_step=np.array([1.0, 0.0]))
    step, new_state = rule.update(np.array([1.0, 1.0]), state, w)
    assert new_state.inv_hess is None
    np.testing.assert_allclose(step, [-1.0, -1.0])


def test_quasi_newton_falls_back_to_steepest_descent_when_the_direction_goes_uphill():
    w, g = np.zeros(2), np.array([1.0, -2.0])
    rule = bfgs(line_search=None, lr=0.5)
    state = rule.init(w)._replace(inv_hess=-np.eye(2))  # not positive definite
    step, new_state = rule.update(g, state, w)
    np.testing.assert_allclose(step, -0.5 * g)
    assert new_state.inv_hess is None
    rule = lbfgs(line_search=None, lr=0.5)
    s, y = np.array([1.0, 0.0]), np.array([-1.0, 0.0])  # a pair with yᵀs < 0, forced in
    step, new_state = rule.update(g, rule.init(w)._replace(s_history=(s,), y_history=(y,)), w)
    np.testing.assert_allclose(step, -0.5 * g)
    assert new_state.s_history == ()


@pytest.mark.parametrize("factory", [bfgs, lbfgs])
def test_quasi_newton_stays_put_at_a_zero_gradient_and_checks_its_inputs(factory):
    rule = factory()
    w = np.ones(3)
    step, _ = rule.update(np.zeros(3), rule.init(w), w, loss=0.0, loss_fn=None)
    np.testing.assert_array_equal(step, np.zeros(3))
    name = factory.__name__
    with pytest.raises(TypeError, match=f"{name}: missing the keyword input loss_fn="):
        rule.update(np.ones(3), rule.init(w), w, loss=1.0)
    with pytest.raises(ValueError, match=f"{name}: line_search must be .* got 'exact'"):
        factory(line_search="exact")


def test_lbfgs_rejects_a_bad_history_size():
    with pytest.raises(ValueError, match="lbfgs: history_size must be an integer >= 1, got 0"):
        lbfgs(history_size=0)


def make_rules():
    return {
        "newton": newton(),
        "levenberg_marquardt": levenberg_marquardt(damping=0.1, adaptive=True),
        "bfgs": bfgs(),
        "lbfgs": lbfgs(history_size=3),
    }


@pytest.mark.parametrize("name", list(make_rules()))
def test_second_order_rules_do_not_mutate_their_inputs_and_keep_the_dtype(name):
    rule = make_rules()[name]
    rng = np.random.default_rng(8)
    quad = random_quadratic(rng, 3)
    w = rng.normal(size=3)
    state = rule.init(w)
    for _ in range(3):  # reach a state with history
        loss, grad = quad.loss_and_grad(w)
        step, state = rule.update(
            grad, state, w, hess=quad.a, loss=loss, loss_fn=quad.loss_and_grad
        )
        w = w + step
    loss, grad = quad.loss_and_grad(w)
    copies = [np.copy(a) for a in (grad, w, quad.a)]
    state_arrays = [np.copy(a) for a in state if isinstance(a, np.ndarray)]
    _, new_state = rule.update(grad, state, w, hess=quad.a, loss=loss, loss_fn=quad.loss_and_grad)
    for before, after in zip(copies, (grad, w, quad.a), strict=True):
        np.testing.assert_array_equal(before, after)
    for before, after in zip(
        state_arrays, [a for a in state if isinstance(a, np.ndarray)], strict=True
    ):
        np.testing.assert_array_equal(before, after)
    kept = [np.copy(a) for a in new_state if isinstance(a, np.ndarray)]
    grad[...] = 0.0  # the shell's backward overwrites grads in place: no aliasing
    for before, after in zip(
        kept, [a for a in new_state if isinstance(a, np.ndarray)], strict=True
    ):
        np.testing.assert_array_equal(before, after)
    w32 = w.astype(np.float32)
    step, _ = rule.update(
        grad.astype(np.float32),
        rule.init(w32),
        w32,
        hess=quad.a.astype(np.float32),
        loss=loss,
        loss_fn=quad.loss_and_grad,
    )
    assert step.dtype == np.float32


# --- line searches --------------------------------------------------------------------------


@st.composite
def line_search_problems(draw):
    """A random quadratic, point, descent direction p = -M g (M positive definite) and trial
    step, all from one drawn seed."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(1, 6))
    condition = draw(st.sampled_from([1.0, 10.0, 1e3]))
    lr = draw(st.sampled_from([1e-3, 0.1, 1.0, 10.0, 1e3]))
    rng = np.random.default_rng(seed)
    quad = random_quadratic(rng, n, condition)
    w = rng.normal(size=n) * 3
    direction = -random_spd(rng, n, condition=draw(st.sampled_from([1.0, 100.0]))) @ quad.grad(w)
    return quad, w, direction, lr


@deterministic
@given(line_search_problems(), st.sampled_from([1e-4, 0.3]), st.sampled_from([0.5, 0.1]))
def test_backtracking_armijo_returns_the_largest_trial_step_with_sufficient_decrease(
    problem, c1, shrink
):
    quad, w, direction, lr = problem
    loss, grad = quad.loss_and_grad(w)
    result = backtracking_armijo(
        quad.loss_and_grad, w, direction, loss=loss, grad=grad, lr=lr, c1=c1, shrink=shrink
    )
    alpha = result.step_size
    slope = grad @ direction
    assert result.loss <= loss + c1 * alpha * slope
    assert result.loss == pytest.approx(quad.loss(w + alpha * direction))
    np.testing.assert_allclose(result.grad, quad.grad(w + alpha * direction))
    k = round(np.log(alpha / lr) / np.log(shrink))
    assert alpha == pytest.approx(lr * shrink**k, rel=1e-12) and k >= 0
    if k > 0:  # the previous trial failed the Armijo condition
        assert quad.loss(w + alpha / shrink * direction) > loss + c1 * alpha / shrink * slope


@deterministic
@given(line_search_problems(), st.sampled_from([(1e-4, 0.9), (1e-4, 0.1), (0.3, 0.5)]))
def test_strong_wolfe_returns_a_step_that_satisfies_both_conditions(problem, constants):
    quad, w, direction, lr = problem
    c1, c2 = constants
    loss, grad = quad.loss_and_grad(w)
    result = strong_wolfe(
        quad.loss_and_grad, w, direction, loss=loss, grad=grad, lr=lr, c1=c1, c2=c2
    )
    alpha, slope = result.step_size, grad @ direction
    assert alpha > 0
    assert result.loss <= loss + c1 * alpha * slope
    assert abs(result.grad @ direction) <= c2 * abs(slope) + 1e-12 * abs(slope)
    assert result.loss == pytest.approx(quad.loss(w + alpha * direction))


def rosenbrock(w: np.ndarray) -> tuple[float, np.ndarray]:
    x, y = w
    loss = (1 - x) ** 2 + 100 * (y - x * x) ** 2
    return loss, np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


@pytest.mark.parametrize("start", [(-1.2, 1.0), (0.0, 0.0), (2.0, 2.0), (-0.5, 1.5)])
def test_strong_wolfe_on_rosenbrock_along_steepest_descent(start):
    w = np.array(start)
    loss, grad = rosenbrock(w)
    result = strong_wolfe(rosenbrock, w, -grad, loss=loss, grad=grad)
    slope = -grad @ grad
    assert result.loss <= loss + 1e-4 * result.step_size * slope
    assert abs(result.grad @ -grad) <= 0.9 * abs(slope)


@pytest.mark.parametrize("search", [backtracking_armijo, strong_wolfe])
def test_line_searches_reject_a_direction_that_is_not_downhill(search):
    quad = random_quadratic(np.random.default_rng(9), 2)
    w = np.ones(2)
    loss, grad = quad.loss_and_grad(w)
    with pytest.raises(ValueError, match=f"{search.__name__}: direction is not a descent"):
        search(quad.loss_and_grad, w, grad, loss=loss, grad=grad)
    with pytest.raises(ValueError, match=r"must have one shape, got \(2,\), \(3,\) and \(2,\)"):
        search(quad.loss_and_grad, w, np.ones(3), loss=loss, grad=grad)


def test_line_searches_stay_put_when_nothing_decreases_the_loss():
    """A loss that only rises along p (rounding near a minimum looks like this): Armijo gives
    up after max_iter trials and returns α = 0 with the inputs."""
    calls = []

    def rising(v):
        calls.append(v)
        return 1.0 + float(np.sum(v * v)), 2 * v

    w, grad = np.zeros(2), np.array([1.0, 0.0])
    result = backtracking_armijo(rising, w, -grad, loss=1.0, grad=grad, max_iter=7)
    assert result.step_size == 0.0 and result.loss == 1.0 and len(calls) == 7
    result = strong_wolfe(rising, w, -grad, loss=1.0, grad=grad, max_iter=7)
    assert result.step_size == 0.0 and result.loss == 1.0


def test_line_searches_check_their_constants():
    quad = random_quadratic(np.random.default_rng(0), 2)
    w = np.ones(2)
    loss, grad = quad.loss_and_grad(w)
    with pytest.raises(
        ValueError, match=r"strong_wolfe: need 0 < c1 < c2 < 1, got c1=0\.5, c2=0\.1"
    ):
        strong_wolfe(quad.loss_and_grad, w, -grad, loss=loss, grad=grad, c1=0.5, c2=0.1)
    with pytest.raises(ValueError, match=r"backtracking_armijo: .* shrink=1\.5"):
        backtracking_armijo(quad.loss_and_grad, w, -grad, loss=loss, grad=grad, shrink=1.5)
