"""The first-order rules against torch.optim, step for step; purity; validation; lecture forms."""

from __future__ import annotations

import copy
import inspect
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minidl.optim.adaptive import adadelta, adagrad, adam, adamw, nadam, rmsprop
from minidl.optim.base import Rule
from minidl.optim.sgd import gradient_descent, momentum, nesterov, sgd

pytestmark = pytest.mark.optim

SHAPES = [(3, 4), (5,)]
N_STEPS = 50
RTOL = 1e-10


class Problem:
    """L(w) = ½ wᵀAw + bᵀw + Σ log cosh(3w) over the concatenated arrays: the gradient
    depends on w, non-linearly, and couples the arrays."""

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        n = sum(math.prod(shape) for shape in SHAPES)
        q = rng.normal(size=(n, n))
        self.a = q @ q.T / n + 0.1 * np.eye(n)
        self.b = rng.normal(size=n)
        self.start = [rng.normal(size=shape) for shape in SHAPES]

    def grads(self, values: list[np.ndarray]) -> list[np.ndarray]:
        w = np.concatenate([v.ravel() for v in values])
        g = self.a @ w + self.b + 3.0 * np.tanh(3.0 * w)
        bounds = np.cumsum([0] + [v.size for v in values])
        return [
            g[i:j].reshape(v.shape) for v, i, j in zip(values, bounds[:-1], bounds[1:], strict=True)
        ]


def rate(base: float, t: int, schedule: bool) -> float:
    """A cosine-with-restarts schedule, to check that ``lr=`` acts as a torch scheduler does."""
    return base * (0.55 + 0.45 * math.cos(0.3 * t)) if schedule else base


TORCH_CASES = {
    "gradient_descent": (gradient_descent, torch.optim.SGD, {"lr": 0.05}),
    "sgd": (sgd, torch.optim.SGD, {"lr": 0.05}),
    "sgd-wd": (sgd, torch.optim.SGD, {"lr": 0.05, "weight_decay": 0.1}),
    "sgd-momentum": (sgd, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    "sgd-dampening": (sgd, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    "sgd-nesterov": (sgd, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    "sgd-nesterov-wd": (
        sgd,
        torch.optim.SGD,
        {"lr": 0.05, "momentum": 0.5, "nesterov": True, "weight_decay": 0.1},
    ),
    "adagrad": (adagrad, torch.optim.Adagrad, {"lr": 0.1}),
    "adagrad-lr_decay": (adagrad, torch.optim.Adagrad, {"lr": 0.1, "lr_decay": 0.05}),
    "adagrad-init-wd-eps": (
        adagrad,
        torch.optim.Adagrad,
        {"lr": 0.1, "initial_accumulator_value": 0.5, "weight_decay": 0.1, "eps": 1e-3},
    ),
    "rmsprop": (rmsprop, torch.optim.RMSprop, {"lr": 0.01}),
    "rmsprop-centered": (rmsprop, torch.optim.RMSprop, {"lr": 0.01, "centered": True}),
    "rmsprop-momentum": (rmsprop, torch.optim.RMSprop, {"lr": 0.01, "momentum": 0.9}),
    "rmsprop-centered-momentum-wd": (
        rmsprop,
        torch.optim.RMSprop,
        {
            "lr": 0.01,
            "alpha": 0.9,
            "eps": 1e-4,
            "momentum": 0.5,
            "centered": True,
            "weight_decay": 0.1,
        },
    ),
    "adadelta": (adadelta, torch.optim.Adadelta, {"lr": 1.0}),
    "adadelta-wd": (
        adadelta,
        torch.optim.Adadelta,
        {"lr": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.1},
    ),
    "adam": (adam, torch.optim.Adam, {"lr": 0.01}),
    "adam-wd": (
        adam,
        torch.optim.Adam,
        {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1},
    ),
    "amsgrad": (adam, torch.optim.Adam, {"lr": 0.01, "amsgrad": True}),
    "adamw": (adamw, torch.optim.AdamW, {"lr": 0.01}),
    "adamw-amsgrad": (
        adamw,
        torch.optim.AdamW,
        {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True},
    ),
    "nadam": (nadam, torch.optim.NAdam, {"lr": 2e-3}),
    "nadam-wd": (
        nadam,
        torch.optim.NAdam,
        {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1, "momentum_decay": 0.01},
    ),
}


@pytest.fixture
def float64_scalars():
    """torch keeps NAdam's mu product and the step counts in the default dtype."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def run_both(rule: Rule, torch_optimizer, base_lr: float, schedule: bool, seed: int = 0):
    """Yield (ours, torch's) parameter vectors after each of ``N_STEPS`` steps."""
    problem = Problem(seed)
    ours = [v.copy() for v in problem.start]
    states = [rule.init(v) for v in ours]
    theirs = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in problem.start]
    opt = torch_optimizer(theirs)
    for t in range(N_STEPS):
        lr = rate(base_lr, t, schedule)
        for i, g in enumerate(problem.grads(ours)):
            step, states[i] = rule.update(g, states[i], ours[i], lr=lr)
            ours[i] = ours[i] + step
        for p, g in zip(theirs, problem.grads([p.detach().numpy() for p in theirs]), strict=True):
            p.grad = torch.from_numpy(g)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        yield (
            np.concatenate([v.ravel() for v in ours]),
            np.concatenate([p.detach().numpy().ravel() for p in theirs]),
        )


def relative_error(x: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(x - reference) / np.linalg.norm(reference))


@pytest.mark.torch_oracle
@pytest.mark.usefixtures("float64_scalars")
@pytest.mark.parametrize("schedule", [False, True], ids=["constant-lr", "scheduled-lr"])
@pytest.mark.parametrize(
    ("factory", "torch_class", "kwargs"), TORCH_CASES.values(), ids=TORCH_CASES
)
def test_rule_matches_torch_at_every_step(factory, torch_class, kwargs, schedule):
    runs = run_both(
        factory(**kwargs),
        lambda params: torch_class(params, foreach=False, **kwargs),
        kwargs["lr"],
        schedule,
    )
    for t, (ours, theirs) in enumerate(runs, start=1):
        assert relative_error(ours, theirs) <= RTOL, f"step {t}"


LECTURE_CASES = {
    "momentum": (momentum(lr=0.05, beta=0.9), {"lr": 0.05, "momentum": 0.9}),
    "nesterov": (nesterov(lr=0.05, beta=0.9), {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
}


@pytest.mark.torch_oracle
@pytest.mark.parametrize(("rule", "torch_kwargs"), LECTURE_CASES.values(), ids=LECTURE_CASES)
def test_lecture_forms_match_torch_sgd_at_a_constant_rate(rule, torch_kwargs):
    """v_t = -η b_t when η is constant, so the velocity forms give torch's trajectory."""
    runs = run_both(
        rule, lambda params: torch.optim.SGD(params, foreach=False, **torch_kwargs), 0.05, False
    )
    for t, (ours, theirs) in enumerate(runs, start=1):
        assert relative_error(ours, theirs) <= RTOL, f"step {t}"


TORCH_TWINS = {
    "sgd": (sgd, torch.optim.SGD),
    "adagrad": (adagrad, torch.optim.Adagrad),
    "rmsprop": (rmsprop, torch.optim.RMSprop),
    "adadelta": (adadelta, torch.optim.Adadelta),
    "adam": (adam, torch.optim.Adam),
    "adamw": (adamw, torch.optim.AdamW),
    "nadam": (nadam, torch.optim.NAdam),
}


@pytest.mark.torch_oracle
@pytest.mark.parametrize(("factory", "torch_class"), TORCH_TWINS.values(), ids=TORCH_TWINS)
def test_hyperparameters_have_torch_names_order_and_defaults(factory, torch_class):
    ours = inspect.signature(factory).parameters
    theirs = inspect.signature(torch_class).parameters
    shared = [name for name in theirs if name in ours]
    assert shared == [name for name in ours if name in theirs]  # same order
    assert set(ours) - set(theirs) <= {"bias_correction"}
    for name in shared:
        if (factory, name) == (sgd, "lr"):
            continue  # the course's default rate is 0.1; torch's is 1e-3
        assert ours[name].default == theirs[name].default, name


def sutskever_quadratic(seed: int = 1):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(6, 6))
    a = q @ q.T + 0.5 * np.eye(6)
    b = rng.normal(size=6)
    return (lambda w: a @ w + b), rng.normal(size=6), 0.5 / np.linalg.eigvalsh(a).max()


@pytest.mark.parametrize("schedule", [False, True], ids=["constant-lr", "scheduled-lr"])
def test_nesterov_rule_carries_sutskevers_lookahead_point(schedule):
    """The rule's param is u_t = w_t + β v_{t-1}, where Sutskever's form takes its gradient."""
    grad, w, lr0 = sutskever_quadratic()
    beta = 0.9
    rule = nesterov(lr=lr0, beta=beta)
    u, state = w.copy(), rule.init(w)
    v = np.zeros_like(w)
    for t in range(100):
        lr = rate(lr0, t, schedule)
        v = beta * v - lr * grad(w + beta * v)  # Sutskever et al. (2013), eq. (3)-(4)
        w = w + v
        step, state = rule.update(grad(u), state, u, lr=lr)
        u = u + step
        np.testing.assert_allclose(state.v, v, rtol=1e-12, atol=1e-12 * np.abs(v).max())
        assert relative_error(u, w + beta * v) <= 1e-12
        assert relative_error(u - beta * state.v, w) <= 1e-12


def test_momentum_forms_agree_with_sgd_only_at_a_constant_rate():
    grad, w0, lr0 = sutskever_quadratic()
    for lecture, torch_form in [
        (momentum(lr0, beta=0.9), sgd(lr0, momentum=0.9)),
        (nesterov(lr0, beta=0.9), sgd(lr0, momentum=0.9, nesterov=True)),
    ]:
        gaps = []
        for schedule in (False, True):
            a, b = w0.copy(), w0.copy()
            sa, sb = lecture.init(a), torch_form.init(b)
            for t in range(50):
                lr = rate(lr0, t, schedule)
                step_a, sa = lecture.update(grad(a), sa, a, lr=lr)
                step_b, sb = torch_form.update(grad(b), sb, b, lr=lr)
                a, b = a + step_a, b + step_b
            gaps.append(relative_error(a, b))
        assert gaps[0] <= 1e-12 < 1e-3 < gaps[1]


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.9, 0.9)], ids=["default-betas", "beta2=0.9"])
def test_adam_without_bias_correction_scales_the_first_steps(betas):
    """Step 1 uncorrected is -η(1-β1)g / (√(1-β2)|g| + ε), corrected -ηg / (|g| + ε); for a
    constant g and ε = 0 the ratio at step t is (1 - β1^t) / √(1 - β2^t)."""
    beta1, beta2 = betas
    g = np.array([0.3, -2.0, 1e-3, 5.0, -7e-7])
    lr, eps = 0.01, 1e-8
    on, off = adam(lr, betas, eps), adam(lr, betas, eps, bias_correction=False)
    corrected, _ = on.update(g, on.init(g), np.zeros_like(g))
    uncorrected, _ = off.update(g, off.init(g), np.zeros_like(g))
    np.testing.assert_allclose(corrected, -lr * g / (np.abs(g) + eps), rtol=1e-12)
    np.testing.assert_allclose(
        uncorrected, -lr * (1 - beta1) * g / (math.sqrt(1 - beta2) * np.abs(g) + eps), rtol=1e-12
    )

    on, off = adam(lr, betas, eps=0.0), adam(lr, betas, eps=0.0, bias_correction=False)
    s_on, s_off = on.init(g), off.init(g)
    for t in range(1, 30):
        step_on, s_on = on.update(g, s_on, g)
        step_off, s_off = off.update(g, s_off, g)
        ratio = (1 - beta1**t) / math.sqrt(1 - beta2**t)
        np.testing.assert_allclose(step_off, ratio * step_on, rtol=1e-12)
    first_ratio = (1 - beta1) / math.sqrt(1 - beta2)
    assert first_ratio == pytest.approx(3.1623 if beta2 == 0.999 else 0.31623, rel=1e-4)


RULES = {
    "gradient_descent": gradient_descent(0.1),
    "momentum": momentum(0.1, beta=0.9),
    "nesterov": nesterov(0.1, beta=0.9),
    "sgd-momentum-dampening": sgd(0.1, momentum=0.9, dampening=0.1, weight_decay=0.1),
    "sgd-nesterov": sgd(0.1, momentum=0.9, nesterov=True),
    "adagrad": adagrad(lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.1),
    "rmsprop-centered-momentum": rmsprop(momentum=0.9, centered=True, weight_decay=0.1),
    "adadelta": adadelta(weight_decay=0.1),
    "adam": adam(weight_decay=0.1),
    "amsgrad-uncorrected": adam(amsgrad=True, bias_correction=False),
    "adamw-amsgrad": adamw(amsgrad=True),
    "nadam": nadam(weight_decay=0.1),
}


def arrays_of(state) -> list[np.ndarray]:
    return [x for x in state if isinstance(x, np.ndarray)]


@settings(max_examples=25, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("rule", RULES.values(), ids=RULES)
def test_update_is_pure_and_keeps_shape_and_dtype(rule, data):
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=4))
    elements = st.floats(-10, 10, width=32)
    param = data.draw(hnp.arrays(dtype, shape, elements=elements))
    state = rule.init(param)
    for _ in range(3):
        grad = data.draw(hnp.arrays(dtype, shape, elements=elements))
        inputs = copy.deepcopy((grad, state, param))
        step, new_state = rule.update(grad, state, param, lr=0.05)
        for before, after in zip(
            [inputs[0], *arrays_of(inputs[1]), inputs[2]],
            [grad, *arrays_of(state), param],
            strict=True,
        ):
            np.testing.assert_array_equal(after, before)
        assert step.shape == param.shape and step.dtype == param.dtype
        assert all(x.dtype == param.dtype for x in arrays_of(new_state))
        kept = copy.deepcopy(new_state)
        grad[...] = 1e6  # layers overwrite their gradient arrays: the new state must not alias them
        for before, after in zip(arrays_of(kept), arrays_of(new_state), strict=True):
            np.testing.assert_array_equal(after, before)
        param, state = param + step, new_state


BAD_HYPERPARAMETERS = [
    (gradient_descent, {"lr": -0.1}, "lr", "-0.1"),
    (momentum, {"lr": 0.1, "beta": 1.0}, "beta", "1.0"),
    (nesterov, {"lr": 0.1, "beta": -0.5}, "beta", "-0.5"),
    (sgd, {"lr": float("nan")}, "lr", "nan"),
    (sgd, {"momentum": -0.9}, "momentum", "-0.9"),
    (sgd, {"weight_decay": -1.0}, "weight_decay", "-1.0"),
    (sgd, {"dampening": 1.5}, "dampening", "1.5"),
    (sgd, {"nesterov": True}, "momentum=0.0", "dampening=0.0"),
    (sgd, {"momentum": 0.9, "dampening": 0.5, "nesterov": True}, "momentum=0.9", "dampening=0.5"),
    (adagrad, {"lr_decay": -0.1}, "lr_decay", "-0.1"),
    (adagrad, {"initial_accumulator_value": -1.0}, "initial_accumulator_value", "-1.0"),
    (adagrad, {"eps": -1e-10}, "eps", "-1e-10"),
    (rmsprop, {"alpha": 1.5}, "alpha", "1.5"),
    (rmsprop, {"momentum": -0.1}, "momentum", "-0.1"),
    (adadelta, {"rho": 1.1}, "rho", "1.1"),
    (adadelta, {"lr": -1.0}, "lr", "-1.0"),
    (adam, {"betas": (1.0, 0.999)}, "betas[0]", "1.0"),
    (adam, {"betas": (0.9, -0.1)}, "betas[1]", "-0.1"),
    (adam, {"eps": -1.0}, "eps", "-1.0"),
    (adamw, {"weight_decay": -0.01}, "weight_decay", "-0.01"),
    (nadam, {"momentum_decay": -4e-3}, "momentum_decay", "-0.004"),
    (nadam, {"betas": (0.9, 1.0)}, "betas[1]", "1.0"),
]


@pytest.mark.parametrize(
    ("factory", "kwargs", "name", "value"),
    BAD_HYPERPARAMETERS,
    ids=[
        f.__name__ + "".join(f"-{k}={v}" for k, v in kwargs.items())
        for f, kwargs, *_ in BAD_HYPERPARAMETERS
    ],
)
def test_bad_hyperparameters_raise_naming_rule_and_value(factory, kwargs, name, value):
    with pytest.raises(ValueError, match=f"^{factory.__name__}: ") as error:
        factory(**kwargs)
    assert name in str(error.value) and value in str(error.value)


@pytest.mark.parametrize("rule", RULES.values(), ids=RULES)
def test_gradient_of_the_wrong_shape_raises_with_both_shapes(rule):
    param = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"grad of shape \(2, 3\).*param of shape \(3, 2\)"):
        rule.update(np.zeros((2, 3)), rule.init(param), param)
