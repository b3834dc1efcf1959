"""The stateful shell: same trajectory as the rule by hand, in place, flat rules, clipping."""

from __future__ import annotations

import inspect
from types import MappingProxyType

import numpy as np
import pytest

from minidl import optim
from minidl.optim.adaptive import adam, rmsprop
from minidl.optim.base import Rule
from minidl.optim.modifiers import Modifier, chain, clip_by_norm, l2, proximal_l1
from minidl.optim.optimizer import Optimizer
from minidl.optim.sgd import gradient_descent, sgd
from minidl.parameter import Parameter

pytestmark = pytest.mark.optim

SHAPES = [(3, 2), (4,)]


class Model:
    """L(w) = ½ wᵀAw + bᵀw + c Σ log cosh(w) on its two parameter arrays, concatenated."""

    def __init__(self, seed: int = 0, *, c: float = 1.0):
        rng = np.random.default_rng(seed)
        n = sum(int(np.prod(shape)) for shape in SHAPES)
        q = rng.normal(size=(n, n))
        self.a = q @ q.T / n + 0.5 * np.eye(n)
        self.b = rng.normal(size=n)
        self.c = c
        self.params = [Parameter(rng.normal(size=s), f"p{i}") for i, s in enumerate(SHAPES)]
        self.calls = 0

    def loss_and_grad(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        loss = 0.5 * w @ self.a @ w + self.b @ w + self.c * np.sum(np.log(np.cosh(w)))
        return float(loss), self.a @ w + self.b + self.c * np.tanh(w)

    def closure(self) -> float:
        self.calls += 1
        w = np.concatenate([p.value.ravel() for p in self.params])
        loss, grad = self.loss_and_grad(w)
        sizes = np.cumsum([p.size for p in self.params])[:-1]
        for p, g in zip(self.params, np.split(grad, sizes), strict=True):
            p.grad = g.reshape(p.shape)
        return loss


RULES = {
    "adam": adam(lr=0.05),
    "sgd-nesterov": sgd(lr=0.05, momentum=0.9, nesterov=True),
    "rmsprop-centered": rmsprop(lr=0.01, centered=True, momentum=0.5),
}


@pytest.mark.parametrize("rule", RULES.values(), ids=RULES)
def test_shell_follows_the_rule_stepped_by_hand(rule):
    model, by_hand = Model(), Model()
    opt = Optimizer(rule, model.params)
    values = [p.value.copy() for p in by_hand.params]
    states = [rule.init(v) for v in values]
    for t in range(20):
        lr = 0.05 / (1 + 0.1 * t)
        for p, v in zip(by_hand.params, values, strict=True):
            p.value = v
        expected_loss = by_hand.closure()
        steps = []
        for i, p in enumerate(by_hand.params):
            step, states[i] = rule.update(p.grad, states[i], values[i], lr=lr)
            values[i] = values[i] + step
            steps.append(step)
        assert opt.step(model.closure, lr=lr) == expected_loss
        for p, v, step, taken in zip(model.params, values, steps, opt.last_steps, strict=True):
            np.testing.assert_array_equal(p.value, v)
            np.testing.assert_array_equal(taken, step)
    for ours, theirs in zip(opt.state, states, strict=True):
        for x, y in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(x, y)
    assert model.calls == 20


def test_step_updates_the_arrays_in_place():
    model = Model()
    held = [p.value for p in model.params]  # what a layer keeps a reference to
    before = [v.copy() for v in held]
    Optimizer(gradient_descent(0.1), model.params).step(model.closure)
    for p, array, old in zip(model.params, held, before, strict=True):
        assert p.value is array
        np.testing.assert_allclose(array, old - 0.1 * p.grad, rtol=1e-15)


def test_float32_parameters_stay_float32():
    model = Model()
    for p in model.params:
        p.value = p.value.astype(np.float32)
    opt = Optimizer(adam(lr=0.01), model.params)
    opt.step(model.closure)
    assert all(p.value.dtype == np.float32 for p in model.params)


def test_unregularized_rule_steps_the_biases_without_the_penalty():
    from minidl import layers

    rng = np.random.default_rng(0)
    model = layers.mlp([3, 4, 2], rng=rng)
    for p in model.parameters():
        p.value[...] = rng.normal(size=p.shape)
        p.grad = rng.normal(size=p.shape)
    before = [p.value.copy() for p in model.parameters()]
    lr, decay = 0.1, 0.5
    opt = Optimizer(
        chain(l2(decay), gradient_descent(lr)),
        model.parameters(),
        unregularized_rule=gradient_descent(lr),
    )
    opt.step(lambda: 0.0)
    names = [p.name for p in model.parameters()]
    assert names == ["0.W", "0.b", "2.W", "2.b"]
    for p, old in zip(model.parameters(), before, strict=True):
        # weights: w <- (1 - eta lambda) w - eta g; biases: b <- b - eta g
        factor = 1 - lr * decay if p.regularize else 1.0
        np.testing.assert_allclose(p.value, factor * old - lr * p.grad, rtol=1e-14)
    assert [p.regularize for p in model.parameters()] == [True, False, True, False]
    # without unregularized_rule every array gets the penalty, as before
    opt = Optimizer(chain(l2(decay), gradient_descent(lr)), model.parameters())
    bias = model.parameters()[1]
    old = bias.value.copy()
    opt.step(lambda: 0.0)
    np.testing.assert_allclose(bias.value, (1 - lr * decay) * old - lr * bias.grad, rtol=1e-14)


def test_unregularized_rule_with_proximal_l1_leaves_biases_non_zero():
    from minidl import layers

    rng = np.random.default_rng(1)
    model = layers.mlp([3, 4, 2], rng=rng)
    for p in model.parameters():
        p.value[...] = 0.01 * rng.normal(size=p.shape)
        p.grad = np.zeros(p.shape)
    rule = gradient_descent(0.1)
    Optimizer(proximal_l1(rule, 1.0), model.parameters(), unregularized_rule=rule).step(lambda: 0.0)
    for p in model.parameters():
        assert np.all(p.value == 0) if p.regularize else np.all(p.value != 0)


def test_unregularized_rule_refuses_flat_rules():
    model = Model()
    with pytest.raises(ValueError, match="unregularized_rule needs per-array rules"):
        Optimizer(newton_rule([]), model.params, unregularized_rule=gradient_descent(0.1))


def newton_rule(seen: list[np.ndarray]) -> Rule:
    """A bare Newton step -H⁻¹g that records the Hessians it is given."""

    def update(grad, state, param, *, lr=None, hess, **_extras):
        seen.append(hess)
        return -np.linalg.solve(hess, grad), state

    return Rule(lambda param: (), update, needs=frozenset({"hess"}), flat=True)


def test_flat_rule_gets_the_hessian_and_newton_solves_a_quadratic_in_one_step():
    model, hessians = Model(c=0.0), []
    w0 = np.concatenate([p.value.ravel() for p in model.params])
    opt = Optimizer(newton_rule(hessians), model.params)
    loss = opt.step(model.closure)

    n = w0.size
    assert loss == model.loss_and_grad(w0)[0]
    assert model.calls == 2 * n + 1
    (hess,) = hessians
    np.testing.assert_array_equal(hess, hess.T)
    np.testing.assert_allclose(hess, model.a, rtol=1e-8, atol=1e-8)
    w = np.concatenate([p.value.ravel() for p in model.params])
    np.testing.assert_allclose(w, np.linalg.solve(model.a, -model.b), rtol=1e-8)
    for p, step in zip(model.params, opt.last_steps, strict=True):
        assert step.shape == p.shape
    np.testing.assert_allclose(
        np.concatenate([np.ravel(p.grad) for p in model.params]),
        model.loss_and_grad(w0)[1],  # the last closure call was at w0, after the differences
        rtol=1e-15,
    )


def test_flat_rule_gets_a_loss_fn_that_evaluates_any_point():
    model = Model()
    w0 = np.concatenate([p.value.ravel() for p in model.params])
    trial = w0 - 0.3

    def update(grad, state, param, *, lr=None, loss, loss_fn, **_extras):
        assert loss == model.loss_and_grad(w0)[0]
        np.testing.assert_array_equal(param, w0)
        trial_loss, trial_grad = loss_fn(trial)
        expected_loss, expected_grad = model.loss_and_grad(trial)
        assert trial_loss == expected_loss
        np.testing.assert_array_equal(trial_grad, expected_grad)
        return -0.5 * grad, state

    rule = Rule(lambda param: (), update, needs=frozenset({"loss", "loss_fn"}), flat=True)
    Optimizer(rule, model.params).step(model.closure)
    w = np.concatenate([p.value.ravel() for p in model.params])
    np.testing.assert_allclose(w, w0 - 0.5 * model.loss_and_grad(w0)[1], rtol=1e-15)


@pytest.mark.parametrize("max_grad_norm", [None, 0.5, 1e3])
def test_flat_and_per_array_paths_agree_for_a_coordinatewise_rule(max_grad_norm):
    rule = adam(lr=0.05)
    flat = Rule(rule.init, rule.update, flat=True)
    per_array, whole = Model(), Model()
    opt_a = Optimizer(rule, per_array.params, max_grad_norm=max_grad_norm)
    opt_b = Optimizer(flat, whole.params, max_grad_norm=max_grad_norm)
    for _ in range(20):
        assert opt_a.step(per_array.closure) == pytest.approx(opt_b.step(whole.closure), 1e-13)
    for p, q in zip(per_array.params, whole.params, strict=True):
        np.testing.assert_allclose(p.value, q.value, rtol=1e-13)


def test_global_clipping_scales_all_gradients_by_one_factor():
    model = Model()
    opt = Optimizer(gradient_descent(1.0), model.params, max_grad_norm=0.5)
    opt.step(model.closure)
    raw = np.concatenate([p.grad.ravel() for p in model.params])
    assert np.linalg.norm(raw) > 0.5  # p.grad keeps the unclipped gradient
    taken = np.concatenate([s.ravel() for s in opt.last_steps])
    np.testing.assert_allclose(taken, -raw * 0.5 / np.linalg.norm(raw), rtol=1e-14)
    assert np.linalg.norm(taken) == pytest.approx(0.5, rel=1e-14)


def test_gradients_under_the_bound_are_not_clipped():
    model = Model()
    opt = Optimizer(gradient_descent(1.0), model.params, max_grad_norm=1e6)
    opt.step(model.closure)
    for p, step in zip(model.params, opt.last_steps, strict=True):
        np.testing.assert_array_equal(step, -p.grad)


def test_bad_construction_raises():
    model = Model()
    with pytest.raises(ValueError, match="empty parameter list"):
        Optimizer(adam(), [])
    with pytest.raises(ValueError, match="max_grad_norm must be > 0, got 0"):
        Optimizer(adam(), model.params, max_grad_norm=0)
    per_array_newton = newton_rule([])._replace(flat=False)
    with pytest.raises(ValueError, match=r"newton_rule needs \['hess'\].*flat=True"):
        Optimizer(per_array_newton, model.params)


# Every argument of every factory, each different from its default (but see KEPT_DEFAULTS).
GIVEN_ARGS = {
    "gradient_descent": {"lr": 0.3},
    "momentum": {"lr": 0.3, "beta": 0.5},
    "nesterov": {"lr": 0.3, "beta": 0.5},
    "sgd": {"lr": 0.3, "momentum": 0.5, "dampening": 0.0, "weight_decay": 1e-3, "nesterov": True},
    "adagrad": {
        "lr": 0.3,
        "lr_decay": 0.1,
        "weight_decay": 1e-3,
        "initial_accumulator_value": 0.1,
        "eps": 1e-6,
    },
    "rmsprop": {
        "lr": 0.3,
        "alpha": 0.9,
        "eps": 1e-6,
        "weight_decay": 1e-3,
        "momentum": 0.5,
        "centered": True,
    },
    "adadelta": {"lr": 0.5, "rho": 0.8, "eps": 1e-5, "weight_decay": 1e-3},
    "adam": {
        "lr": 0.3,
        "betas": (0.8, 0.99),
        "eps": 1e-6,
        "weight_decay": 1e-3,
        "amsgrad": True,
        "bias_correction": False,
    },
    "adamw": {
        "lr": 0.3,
        "betas": (0.8, 0.99),
        "eps": 1e-6,
        "weight_decay": 1e-3,
        "amsgrad": True,
        "bias_correction": False,
    },
    "nadam": {
        "lr": 0.3,
        "betas": (0.8, 0.99),
        "eps": 1e-6,
        "weight_decay": 1e-3,
        "momentum_decay": 1e-2,
    },
    "rprop": {"lr": 0.3, "etas": (0.4, 1.3), "step_sizes": (1e-5, 10.0), "variant": "irprop+"},
    "simple_rprop": {"lr": 0.3, "etas": (0.4, 1.3), "step_sizes": (1e-5, 10.0)},
    "quickprop": {"lr": 0.3, "max_growth": 1.5, "weight_decay": 1e-4},
    "newton": {"lr": 0.5},
    "levenberg_marquardt": {"lr": 0.5, "damping": 0.1, "adaptive": True, "max_tries": 3},
    "bfgs": {"lr": 0.5, "line_search": "armijo"},
    "lbfgs": {"lr": 0.5, "history_size": 3, "line_search": None},
    "l2": {"weight_decay": 0.01},
    "l1": {"strength": 0.1},
    "gradient_noise": {"eta": 0.3, "gamma": 0.5, "seed": 3},
    "clip_by_norm": {"max_norm": 2.0},
}
KEPT_DEFAULTS = {("sgd", "dampening")}  # nesterov=True needs dampening=0, the default
WRAPPERS = {"chain", "proximal_l1"}  # built from other rules; tested on their own below
FACTORIES = {  # every function minidl.optim exports that builds a Rule or a Modifier
    name: f
    for name in optim.__all__
    if inspect.isfunction(f := getattr(optim, name))
    and inspect.signature(f, eval_str=True).return_annotation in (Rule, Modifier)
}


def test_these_tests_know_every_factory():
    assert set(FACTORIES) == set(GIVEN_ARGS) | WRAPPERS


@pytest.mark.parametrize("name", GIVEN_ARGS)
def test_a_factory_with_its_defaults_records_its_name_and_every_argument(name):
    parameters = inspect.signature(FACTORIES[name]).parameters
    defaults = {k: p.default for k, p in parameters.items() if p.default is not p.empty}
    required = {k: v for k, v in GIVEN_ARGS[name].items() if k not in defaults}
    built = FACTORIES[name](**required)
    assert isinstance(built.hyperparams, MappingProxyType)
    assert dict(built.hyperparams) == {"name": name, **defaults, **required}
    assert list(built.hyperparams) == ["name", *parameters]


@pytest.mark.parametrize("name", GIVEN_ARGS)
def test_a_factory_records_the_arguments_it_was_given(name):
    given = GIVEN_ARGS[name]
    parameters = inspect.signature(FACTORIES[name]).parameters
    assert set(given) == set(parameters)
    assert all(
        given[k] != p.default for k, p in parameters.items() if (name, k) not in KEPT_DEFAULTS
    )
    assert dict(FACTORIES[name](**given).hyperparams) == {"name": name, **given}


def test_hyperparams_are_read_only():
    with pytest.raises(TypeError):
        adam().hyperparams["lr"] = 1.0


def test_chain_keeps_the_rule_s_hyperparams_and_lists_the_modifiers_in_order():
    inner = chain(clip_by_norm(1.0), sgd(lr=0.1, momentum=0.9))
    rule = chain(l2(1e-4), inner)
    assert {k: v for k, v in rule.hyperparams.items() if k != "modifiers"} == dict(
        sgd(lr=0.1, momentum=0.9).hyperparams
    )
    assert [dict(m) for m in rule.hyperparams["modifiers"]] == [
        {"name": "l2", "weight_decay": 1e-4},
        {"name": "clip_by_norm", "max_norm": 1.0},
    ]


def test_proximal_l1_thresholds_with_the_rule_s_rate_unless_given_another():
    grad, param = np.array([0.5, -0.2, 0.0]), np.array([0.3, -1.0, 0.05])
    rule = gradient_descent(0.1)

    def step(proximal):
        return proximal.update(grad, proximal.init(param), param)[0]

    by_default = proximal_l1(rule, strength=2.0)
    np.testing.assert_array_equal(step(by_default), step(proximal_l1(rule, 2.0, lr=0.1)))
    assert by_default.hyperparams["lr"] == 0.1
    assert dict(by_default.hyperparams["proximal_l1"]) == {
        "name": "proximal_l1",
        "strength": 2.0,
        "lr": 0.1,
    }
    overridden = proximal_l1(rule, strength=2.0, lr=0.01)
    assert overridden.hyperparams["proximal_l1"]["lr"] == 0.01
    assert not np.array_equal(step(overridden), step(by_default))
    with pytest.raises(ValueError, match=r"proximal_l1: the rule records no lr .*pass lr="):
        proximal_l1(Rule(rule.init, rule.update), strength=2.0)


def test_repr_shows_the_factory_call():
    assert repr(adam()) == (
        "adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, amsgrad=False, "
        "bias_correction=True)"
    )
    assert repr(chain(l2(0.01), gradient_descent(0.1))) == (
        "gradient_descent(lr=0.1, modifiers=(l2(weight_decay=0.01),))"
    )
    assert repr(Rule(lambda param: (), lambda grad, state, param: (grad, state))) == "Rule(...)"
    assert repr(clip_by_norm(2.0)) == "clip_by_norm(max_norm=2.0)"
    assert adam()._replace(flat=True).flat  # still a NamedTuple
