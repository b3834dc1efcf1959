"""Tests of Rprop in its variants (:mod:`minidl.optim.rprop`) and of Quickprop
(:mod:`minidl.optim.quickprop`): hand-made cases for each branch, invariances, torch."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.data.problems import Problem, quadratic
from minidl.minimize import minimize
from minidl.optim.quickprop import quickprop
from minidl.optim.rprop import VARIANTS, rprop, simple_rprop

pytestmark = pytest.mark.optim

deterministic = settings(derandomize=True, database=None, deadline=None, max_examples=50)


class Bumpy:
    """L(w) = Σ a (w - c)² + b Σ sin(3w): a badly scaled quadratic with ripples, so gradients
    change sign now and then. Elementwise, any shape."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0):
        self.a = np.exp(rng.uniform(-3, 3, size=shape))
        self.c = rng.normal(size=shape)
        self.b = 0.3 * self.a.mean()
        self.scale = scale

    def loss(self, w: np.ndarray) -> float:
        return self.scale * float(
            np.sum(self.a * (w - self.c) ** 2) + self.b * np.sum(np.sin(3 * w))
        )

    def grad(self, w: np.ndarray) -> np.ndarray:
        return self.scale * (2 * self.a * (w - self.c) + 3 * self.b * np.cos(3 * w))


def valley_and_scaled(rng: np.random.Generator, factor: float) -> tuple[Problem, Problem]:
    """A 5-D quadratic with curvatures from 1 to 1000 along random axes (so each coordinate's
    derivative changes sign now and then) and the same function times ``factor``, each
    derivative multiplied by ``factor`` after it is computed (so no sign can differ)."""
    valley = quadratic(np.geomspace(1.0, 1000.0, 5), rng=rng, b=rng.normal(size=5))
    scaled = Problem(
        "scaled valley",
        5,
        value=lambda w: factor * valley.value(w),
        grad=lambda w: factor * valley.grad(w),
        hessian=lambda w: factor * valley.hessian(w),
        minimizer=valley.minimizer,
        minimum=factor * valley.minimum,
    )
    return valley, scaled


PARABOLA = quadratic([2.0])
"""L(w) = w² (minimum at 0); w₀ = 1 with Δ₀ = 1.5 jumps over the minimum at once."""


def run(rule, problem: Problem, w0, steps: int) -> np.ndarray:
    """The trajectory w_0, ..., w_steps (shape (steps + 1, d))."""
    return minimize(rule, problem, w0, steps).path


# --- Rprop ----------------------------------------------------------------------------------


@pytest.mark.torch_oracle
def test_irprop_minus_matches_torch_rprop_step_for_step():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    problem = Bumpy(rng, (3, 4))
    w = rng.normal(size=(3, 4))
    lr, etas, step_sizes = 0.05, (0.4, 1.3), (1e-4, 0.7)
    rule = rprop(lr=lr, etas=etas, step_sizes=step_sizes, variant="irprop-")
    state = rule.init(w)
    tw = torch.tensor(w.copy(), requires_grad=True)
    optimizer = torch.optim.Rprop([tw], lr=lr, etas=etas, step_sizes=step_sizes)
    sign_changes = 0
    for _ in range(50):
        g = problem.grad(w)
        step, state = rule.update(g, state, w)
        w = w + step
        tw.grad = torch.tensor(g)
        optimizer.step()
        np.testing.assert_allclose(w, tw.detach().numpy(), rtol=0, atol=1e-10)
        np.testing.assert_allclose(
            state.step_size, optimizer.state[tw]["step_size"].numpy(), rtol=0, atol=1e-10
        )
        sign_changes += int(np.sum(step == 0))
    assert sign_changes > 0  # the comparison covered the sign-change branch


@pytest.mark.parametrize("variant", VARIANTS)
def test_rprop_trajectory_is_unchanged_when_the_loss_is_scaled(variant):
    rng = np.random.default_rng(1)
    problem, scaled = valley_and_scaled(rng, 1000.0)
    w0 = rng.normal(size=5)
    rule = rprop(variant=variant)
    path = run(rule, problem, w0, 60)
    np.testing.assert_array_equal(path, run(rule, scaled, w0, 60))
    assert np.any(np.diff(np.sign(np.diff(path, axis=0)), axis=0) != 0)  # signs did change


def test_simple_rprop_trajectory_is_unchanged_when_the_loss_is_scaled():
    rng = np.random.default_rng(2)
    problem, scaled = valley_and_scaled(rng, 1000.0)
    w0 = rng.normal(size=5)
    rule = simple_rprop()
    np.testing.assert_array_equal(run(rule, problem, w0, 60), run(rule, scaled, w0, 60))


def test_rprop_plus_backtracks_on_a_sign_change():
    trajectory = run(rprop(lr=1.5, variant="rprop+"), PARABOLA, [1.0], 3)
    # -1.5 jumps over the minimum; the sign change undoes it (back to 1.0, Δ = 0.75) and
    # forgets the gradient, so the next step uses Δ = 0.75 unchanged
    np.testing.assert_allclose(trajectory[:, 0], [1.0, -0.5, 1.0, 0.25])


def test_rprop_minus_steps_back_with_the_reduced_step_size():
    trajectory = run(rprop(lr=1.5, variant="rprop-"), PARABOLA, [1.0], 3)
    # after the sign change it steps -sign(g) Δ with Δ = 0.75 (to 0.25), and compares the
    # next gradient with this one: another sign change, Δ = 0.375
    np.testing.assert_allclose(trajectory[:, 0], [1.0, -0.5, 0.25, -0.125])


def test_irprop_minus_pauses_after_a_sign_change():
    trajectory = run(rprop(lr=1.5, variant="irprop-"), PARABOLA, [1.0], 3)
    np.testing.assert_allclose(trajectory[:, 0], [1.0, -0.5, -0.5, 0.25])


def test_irprop_plus_backtracks_only_when_the_loss_rose():
    rule = rprop(lr=1.5, variant="irprop+")
    assert rule.needs == {"loss"}
    w0 = np.array([1.0, 2.0])
    step0, state = rule.update(np.array([2.0, 4.0]), rule.init(w0), w0, loss=10.0)
    np.testing.assert_allclose(step0, [-1.5, -1.5])
    w1 = w0 + step0  # (-0.5, 0.5): the first coordinate's gradient changes sign
    g1 = np.array([-1.0, 1.0])
    rose, rose_state = rule.update(g1, state, w1, loss=11.0)
    fell, fell_state = rule.update(g1, state, w1, loss=9.0)
    same, _ = rule.update(g1, state, w1, loss=10.0)
    np.testing.assert_allclose(rose, [1.5, -1.8])  # undo in the first, grow in the second
    np.testing.assert_allclose(fell, [0.0, -1.8])  # keep the point in the first
    np.testing.assert_array_equal(same, fell)  # only a strict rise backtracks
    for new_state in (rose_state, fell_state):
        np.testing.assert_allclose(new_state.prev_grad, [0.0, 1.0])
        np.testing.assert_allclose(new_state.step_size, [0.75, 1.8])
    assert rose_state.prev_loss == 11.0 and fell_state.prev_loss == 9.0


def test_rprop_needs_the_loss_only_for_irprop_plus():
    for variant in VARIANTS:
        assert rprop(variant=variant).needs == (
            frozenset({"loss"}) if variant == "irprop+" else frozenset()
        )
    rule = rprop(variant="irprop+")
    w = np.zeros(2)
    with pytest.raises(TypeError, match=r"rprop\(irprop\+\): missing the keyword input loss="):
        rule.update(np.ones(2), rule.init(w), w)


def test_rprop_rejects_unknown_variants_and_bad_hyperparameters():
    with pytest.raises(ValueError, match="rprop\\+, rprop-, irprop\\+, irprop-; got 'rprop'"):
        rprop(variant="rprop")
    with pytest.raises(ValueError, match=r"etas must satisfy .* got \(1.2, 0.5\)"):
        rprop(etas=(1.2, 0.5))
    with pytest.raises(ValueError, match=r"step_sizes must satisfy .* got \(1.0, 0.1\)"):
        rprop(step_sizes=(1.0, 0.1))
    with pytest.raises(ValueError, match=r"lr .* must be > 0, got 0"):
        rprop(lr=0)
    rule = rprop()
    with pytest.raises(ValueError, match=r"grad of shape \(3,\) does not match param of shape"):
        rule.update(np.ones(3), rule.init(np.zeros(2)), np.zeros(2))


@deterministic
@given(
    st.sampled_from([*VARIANTS, "simple"]),
    st.integers(0, 2**32 - 1),
    st.sampled_from([1e-3, 0.1, 0.5]),
)
def test_rprop_step_sizes_stay_within_their_bounds(variant, seed, lr):
    rng = np.random.default_rng(seed)
    bounds = (1e-3, 0.5)
    rule = (
        simple_rprop(lr=lr, step_sizes=bounds)
        if variant == "simple"
        else rprop(lr=lr, step_sizes=bounds, variant=variant)
    )
    w = np.zeros(6)
    state = rule.init(w)
    for _ in range(40):  # random gradients: signs flip at random
        step, state = rule.update(rng.normal(size=6), state, w, loss=rng.normal())
        assert np.all((state.step_size >= bounds[0]) & (state.step_size <= bounds[1]))
        w = w + step


def test_simple_rprop_steps_back_and_forward_in_one_call():
    trajectory = run(simple_rprop(lr=1.5), PARABOLA, [1.0], 5)
    # -1.5 overshoots to -0.5 (sign flip): back to 1.0 and forward by Δ = 0.75 -> 0.25 in one
    # step; same sign there, so 0.25 is accepted and Δ grows to 0.9 -> -0.65 overshoots again:
    # back to 0.25 and forward by 0.45 -> -0.2, rejected again: forward by 0.225 -> 0.025
    np.testing.assert_allclose(trajectory[:, 0], [1.0, -0.5, 0.25, -0.65, -0.2, 0.025], atol=1e-12)


def test_simple_rprop_approaches_a_one_dimensional_minimum_from_one_side():
    trajectory = run(simple_rprop(lr=0.3), PARABOLA, [5.0], 80)
    accepted = [w for w in trajectory[:, 0] if w >= 0]
    assert abs(trajectory[-1][0]) < 1e-4
    assert all(np.diff(accepted) <= 0)  # accepted points never pass the minimum


# --- Quickprop ------------------------------------------------------------------------------


@deterministic
@given(
    curvature=st.floats(0.1, 10.0),
    rate_times_curvature=st.floats(1.0, 3.0),
    w0=st.floats(-5.0, 5.0),
    minimum=st.floats(-5.0, 5.0),
)
def test_quickprop_jumps_to_the_vertex_of_a_parabola_after_one_gradient_step(
    curvature, rate_times_curvature, w0, minimum
):
    """L = c/2 (w - w*)²: the first step is -ε g; once it lands on or past the minimum
    (εc ≥ 1, so no gradient term joins) the secant step goes exactly to w*."""
    parabola = quadratic([curvature], b=[-curvature * minimum])
    path = run(quickprop(lr=rate_times_curvature / curvature), parabola, [w0], 2)
    np.testing.assert_allclose(path[-1], [minimum], atol=1e-9 * (1 + abs(w0 - minimum)))


def test_quickprop_first_step_and_steps_after_a_zero_step_are_gradient_steps():
    rule = quickprop(lr=0.1)
    w, g = np.array([1.0, -2.0, 3.0]), np.array([0.5, -1.0, 2.0])
    step, _ = rule.update(g, rule.init(w), w)
    np.testing.assert_allclose(step, -0.1 * g)
    # only the coordinate whose previous step was exactly 0 falls back
    state = rule.init(w)._replace(
        prev_grad=np.array([1.0, 1.0, 4.0]), prev_step=np.array([0.0, -0.1, -0.2])
    )
    step, _ = rule.update(g, state, w)
    assert step[0] == pytest.approx(-0.1 * 0.5)
    assert step[1] == pytest.approx(-0.1 * -1.0 / (1.0 + 1.0))  # slope flipped: secant only
    assert step[2] == pytest.approx(-0.2 * 2.0 / (4.0 - 2.0) - 0.1 * 2.0)  # secant + gradient


def test_quickprop_grows_by_the_maximum_factor_on_a_linear_slope():
    """A constant slope gives no parabola (the secant's denominator is 0): every step is
    μ times the previous one plus the gradient term."""
    rule = quickprop(lr=0.1, max_growth=1.75)
    w = np.array([0.0])
    state, steps = rule.init(w), []
    for _ in range(4):
        step, state = rule.update(np.array([2.0]), state, w)
        steps.append(step[0])
        w = w + step
    expected = [-0.2]
    for _ in range(3):
        expected.append(1.75 * expected[-1] - 0.2)
    np.testing.assert_allclose(steps, expected)


def test_quickprop_leaves_out_the_gradient_term_after_the_slope_changed_sign():
    rule = quickprop(lr=0.5)
    w = np.array([0.0])
    state = rule.init(w)._replace(prev_grad=np.array([3.0]), prev_step=np.array([-1.0]))
    step, _ = rule.update(np.array([-1.0]), state, w)
    assert step[0] == pytest.approx(-1.0 * -1.0 / (3.0 + 1.0))  # back a quarter of the way


@deterministic
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([1.2, 1.75, 3.0]),
    st.sampled_from([0.0, 1e-2]),
)
def test_quickprop_secant_part_never_exceeds_the_maximum_growth(seed, max_growth, decay):
    """On random rippled functions |Δw_t - gradient term| ≤ μ |Δw_{t-1}| at every step."""
    rng = np.random.default_rng(seed)
    problem = Bumpy(rng, (8,))
    lr = float(rng.uniform(1e-3, 0.2))
    rule = quickprop(lr=lr, max_growth=max_growth, weight_decay=decay)
    w = rng.normal(size=8) * 2
    state = rule.init(w)
    for _ in range(30):
        slope = problem.grad(w) + decay * w
        step, new_state = rule.update(problem.grad(w), state, w)
        previous = state.prev_step
        still_downhill = (previous == 0) | (np.sign(slope) == -np.sign(previous))
        secant_part = step - np.where(still_downhill, -lr * slope, 0.0)
        assert np.all(np.abs(secant_part) <= max_growth * np.abs(previous) * (1 + 1e-12) + 1e-300)
        np.testing.assert_array_equal(new_state.prev_grad, slope)
        state, w = new_state, w + step


def test_quickprop_checks_its_hyperparameters_and_shapes():
    with pytest.raises(ValueError, match="quickprop: max_growth must be > 0, got 0"):
        quickprop(max_growth=0)
    with pytest.raises(ValueError, match=r"lr=-1, weight_decay=0\.0"):
        quickprop(lr=-1)
    rule = quickprop()
    with pytest.raises(ValueError, match=r"quickprop: grad of shape \(2, 1\) does not match"):
        rule.update(np.ones((2, 1)), rule.init(np.zeros(2)), np.zeros(2))


# --- purity and dtype -----------------------------------------------------------------------


def all_rules():
    rules = {variant: rprop(variant=variant) for variant in VARIANTS}
    rules["simple"] = simple_rprop()
    rules["quickprop"] = quickprop(lr=0.05, weight_decay=1e-3)
    return rules


@pytest.mark.parametrize("name", list(all_rules()))
def test_rules_do_not_mutate_their_inputs_and_keep_the_dtype(name):
    rule = all_rules()[name]
    rng = np.random.default_rng(3)
    problem = Bumpy(rng, (2, 3))
    for dtype in (np.float64, np.float32):
        w = rng.normal(size=(2, 3)).astype(dtype)
        state = rule.init(w)
        for _ in range(3):
            g = problem.grad(w).astype(dtype)
            copies = (g.copy(), w.copy())
            state_copies = [a.copy() for a in state if isinstance(a, np.ndarray)]
            step, new_state = rule.update(g, state, w, loss=problem.loss(w))
            np.testing.assert_array_equal(copies[0], g)
            np.testing.assert_array_equal(copies[1], w)
            for before, after in zip(
                state_copies, [a for a in state if isinstance(a, np.ndarray)], strict=True
            ):
                np.testing.assert_array_equal(before, after)
            assert step.dtype == dtype
            assert all(a.dtype == dtype for a in new_state if isinstance(a, np.ndarray))
            kept = [a.copy() for a in new_state if isinstance(a, np.ndarray)]
            g[...] = 0.0  # the shell's backward overwrites grads in place: no aliasing
            for before, after in zip(
                kept, [a for a in new_state if isinstance(a, np.ndarray)], strict=True
            ):
                np.testing.assert_array_equal(before, after)
            state, w = new_state, w + step
