"""Tests of the learning-rate schedules (:mod:`minidl.optim.schedules`) and the gradient
modifiers and their composition with rules (:mod:`minidl.optim.modifiers`)."""

import math

import numpy as np
import pytest

from minidl.optim import Optimizer
from minidl.optim.base import Rule
from minidl.optim.modifiers import (
    ChainState,
    Modifier,
    chain,
    clip_by_norm,
    gradient_noise,
    l1,
    l2,
    proximal_l1,
)
from minidl.optim.schedules import (
    ReduceOnPlateau,
    constant,
    cosine_decay,
    exponential_decay,
    linear_decay,
    one_cycle,
    quadratic_decay,
    step_decay,
    warmup,
)
from minidl.parameter import Parameter

pytestmark = pytest.mark.optim


# --- schedules ------------------------------------------------------------------------------


def test_schedules_follow_their_formulas():
    ks = range(7)
    assert [constant(0.3)(k) for k in ks] == [0.3] * 7
    np.testing.assert_allclose([linear_decay(0.6)(k) for k in ks], [0.6 / (k + 1) for k in ks])
    np.testing.assert_allclose(
        [quadratic_decay(0.6)(k) for k in ks], [0.6 / (k + 1) ** 2 for k in ks]
    )
    np.testing.assert_allclose(
        [exponential_decay(0.5, alpha=0.2)(k) for k in ks], [0.5 * math.exp(-0.2 * k) for k in ks]
    )
    assert [step_decay(1.0, factor=0.5, every=3)(k) for k in ks] == [
        1.0,
        1.0,
        1.0,
        0.5,
        0.5,
        0.5,
        0.25,
    ]
    assert linear_decay(1.0)(0) == quadratic_decay(1.0)(0) == exponential_decay(1.0, 3.0)(0) == 1.0


def test_schedules_reject_bad_arguments():
    with pytest.raises(ValueError, match=r"linear_decay: lr must be >= 0, got -0\.1"):
        linear_decay(-0.1)
    with pytest.raises(ValueError, match="exponential_decay: alpha must be >= 0, got -1"):
        exponential_decay(0.1, alpha=-1)
    with pytest.raises(ValueError, match=r"step_decay: .* got factor=0\.5, every=0"):
        step_decay(0.1, factor=0.5, every=0)
    with pytest.raises(ValueError, match="constant: the step index k must be >= 0, got -1"):
        constant(0.1)(-1)


def test_reduce_on_plateau_waits_patience_bad_epochs_then_reduces():
    plateau = ReduceOnPlateau(1.0, factor=0.5, patience=2)
    assert plateau(0) == plateau(123) == 1.0
    assert plateau.observe(10.0) == 1.0  # the first epoch sets the baseline
    assert plateau.observe(9.0) == 1.0  # improved
    assert plateau.observe(9.5) == 1.0  # bad epoch 1
    assert plateau.observe(9.0) == 1.0  # bad epoch 2 (equal is not better)
    assert plateau.observe(9.2) == 0.5  # bad epoch 3 > patience: reduce, count restarts
    assert plateau(7) == plateau.lr == 0.5
    assert plateau.observe(9.1) == 0.5 and plateau.observe(9.1) == 0.5
    assert plateau.observe(8.0) == 0.5  # an improvement resets the count
    assert [plateau.observe(8.0) for _ in range(3)] == [0.5, 0.5, 0.25]


def test_reduce_on_plateau_uses_a_relative_threshold_and_respects_min_lr():
    plateau = ReduceOnPlateau(1.0, factor=0.1, patience=0, threshold=0.01, min_lr=0.05)
    plateau.observe(100.0)
    assert plateau.observe(99.5) == pytest.approx(0.1)  # less than 1 % better: a bad epoch
    assert plateau.observe(98.0) == pytest.approx(0.1)  # 1.5 % better than 100: improves
    assert plateau.observe(98.0) == pytest.approx(0.05)  # 0.01 floored at min_lr
    assert plateau.observe(98.0) == pytest.approx(0.05)
    with pytest.raises(ValueError, match=r"ReduceOnPlateau: factor must be in \(0, 1\), got 1\.5"):
        ReduceOnPlateau(0.1, factor=1.5)


@pytest.mark.torch_oracle
def test_reduce_on_plateau_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    losses = 1 + np.exp(-np.arange(120) / 10) + 0.1 * rng.random(120)  # noisy, flattening out
    settings = dict(factor=0.3, patience=4, threshold=1e-3, min_lr=1e-3)
    plateau = ReduceOnPlateau(0.5, **settings)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **settings)
    for loss in losses:
        reference.step(float(loss))
        assert plateau.observe(loss) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-12)
    assert plateau.lr < 0.5 * 0.3**2  # the sequence did trigger reductions


# --- modifiers ------------------------------------------------------------------------------


def gradient_descent(lr: float = 0.1) -> Rule:
    """A minimal rule for composing with modifiers: step = -lr g."""

    def update(grad, state, param, *, lr=None, **extras):
        return -(default if lr is None else lr) * grad, state

    default = lr
    return Rule(lambda param: (), update)


def test_l2_and_l1_add_their_penalty_gradients():
    w, g = np.array([1.5, -2.0, 0.0]), np.array([0.1, 0.2, 0.3])
    grad, state = l2(0.1).update(g, l2(0.1).init(w), w)
    np.testing.assert_allclose(grad, g + 0.1 * w)
    grad, _ = l1(0.5).update(g, state, w)
    np.testing.assert_allclose(grad, g + 0.5 * np.array([1.0, -1.0, 0.0]))


def test_chain_applies_the_modifiers_in_order_then_the_rule():
    w, g = np.array([3.0, 4.0]), np.array([3.0, 4.0])
    clip_then_l2 = chain(clip_by_norm(1.0), l2(1.0), gradient_descent(1.0))
    l2_then_clip = chain(l2(1.0), clip_by_norm(1.0), gradient_descent(1.0))
    step, state = clip_then_l2.update(g, clip_then_l2.init(w), w)
    np.testing.assert_allclose(step, -(g / 5 + w))
    assert isinstance(state, ChainState) and len(state.modifier_states) == 2
    step, _ = l2_then_clip.update(g, l2_then_clip.init(w), w)
    np.testing.assert_allclose(step, -(2 * g) / 10)
    step, _ = clip_then_l2.update(g, clip_then_l2.init(w), w, lr=0.5)  # lr reaches the rule
    np.testing.assert_allclose(step, -0.5 * (g / 5 + w))


def test_chain_keeps_the_rules_needs_and_flatness_and_passes_extras():
    seen = {}

    def update(grad, state, param, *, lr=None, **extras):
        seen.update(extras)
        return -grad, state

    rule = Rule(lambda p: (), update, needs=frozenset({"hess"}), flat=True)
    chained = chain(l2(0.0), rule)
    assert chained.needs == {"hess"} and chained.flat
    chained.update(np.ones(2), chained.init(np.zeros(2)), np.zeros(2), hess="H")
    assert seen == {"hess": "H"}


def test_chain_checks_its_arguments():
    with pytest.raises(ValueError, match="chain: the last argument must be a Rule, got Modifier"):
        chain(l2(0.1), l1(0.1))
    with pytest.raises(ValueError, match="chain: every argument before the rule must be a Mod"):
        chain(gradient_descent(), gradient_descent())
    assert isinstance(l2(0.1), Modifier)


def test_clip_by_norm_rescales_only_long_gradients():
    clip = clip_by_norm(2.0)
    w = np.zeros((2, 2))
    long = np.array([[3.0, 0.0], [0.0, 4.0]])
    clipped, _ = clip.update(long, clip.init(w), w)
    assert np.linalg.norm(clipped) == pytest.approx(2.0)
    np.testing.assert_allclose(clipped, long * 2.0 / 5.0)
    short = long / 10
    np.testing.assert_array_equal(clip.update(short, clip.init(w), w)[0], short)
    with pytest.raises(ValueError, match="clip_by_norm: max_norm must be > 0, got 0"):
        clip_by_norm(0)


@pytest.mark.torch_oracle
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])
def test_clipping_matches_torch_clip_grad_norm(max_norm):
    """The shell's global clipping and ``clip_by_norm`` on one array against
    ``torch.nn.utils.clip_grad_norm_``, which divides by ``norm + 1e-6``: the same map once that
    guard is put back in."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    norm = math.sqrt(sum(float(np.sum(g**2)) for g in grads))
    guard = norm / (norm + 1e-6) if norm > max_norm else 1.0
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(tensors, grads, strict=True):
        t.grad = torch.from_numpy(g.copy())
    torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    params = [Parameter(np.zeros_like(g)) for g in grads]

    def closure():
        for p, g in zip(params, grads, strict=True):
            p.grad = g.copy()
        return 0.0

    Optimizer(gradient_descent(1.0), params, max_grad_norm=max_norm).step(closure)
    for p, t in zip(params, tensors, strict=True):
        np.testing.assert_allclose(-p.value * guard, t.grad.numpy(), rtol=1e-12, atol=1e-15)
    # one array: clip_by_norm against clip_grad_norm_ on a single tensor
    single = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    single.grad = torch.from_numpy(grads[1].copy())
    torch.nn.utils.clip_grad_norm_([single], max_norm)
    one = np.linalg.norm(grads[1])
    clip = clip_by_norm(max_norm)
    ours, _ = clip.update(grads[1], clip.init(grads[1]), grads[1])
    factor = one / (one + 1e-6) if one > max_norm else 1.0
    np.testing.assert_allclose(ours * factor, single.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_proximal_l1_lands_exactly_on_the_soft_threshold():
    rule = proximal_l1(gradient_descent(0.1), strength=2.0, lr=0.1)
    w = np.array([0.5, -0.1, 0.15, -3.0])
    g = np.array([1.0, -0.5, 0.0, 0.0])
    step, _ = rule.update(g, rule.init(w), w)
    u = w - 0.1 * g  # (0.4, -0.05, 0.15, -3.0); the threshold is eta * lambda = 0.2
    np.testing.assert_allclose(w + step, [0.2, 0.0, 0.0, -2.8])
    assert (w + step)[1] == 0.0 and (w + step)[2] == 0.0  # exact zeros
    np.testing.assert_allclose(w + step, np.sign(u) * np.maximum(np.abs(u) - 0.2, 0.0))
    step, _ = rule.update(g, rule.init(w), w, lr=0.5)  # the override sets both eta's
    u = w - 0.5 * g
    np.testing.assert_allclose(w + step, np.sign(u) * np.maximum(np.abs(u) - 1.0, 0.0))


def test_proximal_l1_makes_sparse_solutions_where_the_subgradient_only_oscillates():
    """Lasso on a quadratic with minimizer (1, 0.05): the L1 penalty 0.5 |w| zeroes the
    second weight. The proximal iterates hit 0 exactly; the subgradient ones never do."""
    target = np.array([1.0, 0.05])

    def grad(w):
        return w - target

    proximal = proximal_l1(gradient_descent(0.1), strength=0.5, lr=0.1)
    subgradient = chain(l1(0.5), gradient_descent(0.1))
    w_prox, w_sub = np.array([2.0, 2.0]), np.array([2.0, 2.0])
    s_prox, s_sub = proximal.init(w_prox), subgradient.init(w_sub)
    for _ in range(300):
        step, s_prox = proximal.update(grad(w_prox), s_prox, w_prox)
        w_prox = w_prox + step
        step, s_sub = subgradient.update(grad(w_sub), s_sub, w_sub)
        w_sub = w_sub + step
    np.testing.assert_allclose(w_prox, [0.5, 0.0], atol=1e-9)
    assert w_prox[1] == 0.0 and w_sub[1] != 0.0


def test_gradient_noise_is_reproducible_and_its_variance_follows_the_schedule():
    w = np.zeros(200_000)
    zero = np.zeros_like(w)
    noise = gradient_noise(eta=0.3, gamma=0.55, seed=7)
    state = noise.init(w)
    for t in range(4):
        noisy, new_state = noise.update(zero, state, w)
        assert new_state.t == t + 1
        again, _ = noise.update(zero, state, w)
        np.testing.assert_array_equal(noisy, again)  # pure: same state, same draw
        expected = 0.3 / (1 + t) ** 0.55
        assert np.var(noisy) == pytest.approx(expected, rel=0.02)  # 200k draws: ~0.3 % error
        assert abs(np.mean(noisy)) < 5 * math.sqrt(expected / w.size)
        state = new_state
    other, _ = gradient_noise(eta=0.3, seed=8).update(zero, noise.init(w), w)
    first, _ = noise.update(zero, noise.init(w), w)
    assert not np.allclose(other, first)
    g = np.ones(3, dtype=np.float32)
    noisy, _ = noise.update(g, noise.init(g), g)
    assert noisy.dtype == np.float32 and not np.array_equal(noisy, g)
    with pytest.raises(ValueError, match="gradient_noise: seed must be an integer >= 0, got -1"):
        gradient_noise(seed=-1)


@pytest.mark.parametrize(
    "modifier",
    [l2(0.1), l1(0.1), clip_by_norm(0.5), gradient_noise(seed=0)],
    ids=["l2", "l1", "clip_by_norm", "gradient_noise"],
)
def test_modifiers_do_not_mutate_and_check_shapes(modifier):
    w, g = np.array([1.0, -2.0]), np.array([3.0, 4.0])
    w_copy, g_copy = w.copy(), g.copy()
    modifier.update(g, modifier.init(w), w)
    np.testing.assert_array_equal(w, w_copy)
    np.testing.assert_array_equal(g, g_copy)
    with pytest.raises(ValueError, match=r"grad of shape \(3,\) does not match param of shape"):
        modifier.update(np.ones(3), modifier.init(w), w)


# --- modern schedules against torch.optim.lr_scheduler ----------------------------------------


def _torch_rates(make_scheduler, lr: float, steps: int) -> list[float]:
    """The rate torch's scheduler gives before each of ``steps`` optimizer steps."""
    torch = pytest.importorskip("torch")
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(torch.optim.lr_scheduler, optimizer)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.torch_oracle
def test_cosine_decay_matches_torch_cosine_annealing():
    reference = _torch_rates(lambda s, o: s.CosineAnnealingLR(o, T_max=40, eta_min=0.01), 0.5, 41)
    ours = cosine_decay(0.5, 40, min_lr=0.01)
    np.testing.assert_allclose([ours(k) for k in range(41)], reference, rtol=1e-12, atol=1e-15)
    assert ours(40) == ours(100) == pytest.approx(0.01)  # holds the floor after the end


@pytest.mark.torch_oracle
def test_warmup_then_cosine_matches_torch_sequential_lr():
    def make(s, o):
        ramp = s.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5)
        return s.SequentialLR(o, [ramp, s.CosineAnnealingLR(o, T_max=20)], milestones=[5])

    ours = warmup(cosine_decay(0.4, 20), 5, start_factor=0.1)
    np.testing.assert_allclose(
        [ours(k) for k in range(25)], _torch_rates(make, 0.4, 25), rtol=1e-12
    )


@pytest.mark.torch_oracle
@pytest.mark.parametrize("steps, pct_start", [(100, 0.3), (37, 0.25), (10, 0.5)])
def test_one_cycle_matches_torch(steps, pct_start):
    settings = dict(pct_start=pct_start, div_factor=20.0, final_div_factor=100.0)
    reference = _torch_rates(
        lambda s, o: s.OneCycleLR(
            o, max_lr=0.8, total_steps=steps, cycle_momentum=False, **settings
        ),
        0.8,
        steps,
    )
    ours = one_cycle(0.8, steps, **settings)
    np.testing.assert_allclose([ours(k) for k in range(steps)], reference, rtol=1e-12)


def test_warmup_and_cosine_shapes_and_errors():
    ramp = warmup(constant(1.0), 4)
    assert [ramp(k) for k in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    cycle = one_cycle(1.0, 10)
    assert cycle(0) == pytest.approx(1 / 25) and max(cycle(k) for k in range(10)) == 1.0
    with pytest.raises(ValueError, match="cosine_decay: steps must be an integer >= 1, got 0"):
        cosine_decay(0.1, 0)
    with pytest.raises(ValueError, match=r"warmup: start_factor must be in \[0, 1\], got 2"):
        warmup(constant(0.1), 3, start_factor=2)
    with pytest.raises(ValueError, match="one_cycle: need 0 < pct_start < 1"):
        one_cycle(0.1, 10, pct_start=1.0)
