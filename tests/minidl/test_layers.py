"""Layers: every backward against central differences, the normalization layers against torch,
dropout's expectation, numerical stability, dtypes, the container and the error messages."""

import functools
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import init
from minidl.gradcheck import check_layer
from minidl.layers import (
    BatchNorm,
    Dropout,
    Layer,
    LayerNorm,
    Linear,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    mlp,
    sigmoid,
    softmax,
)

pytestmark = pytest.mark.layers

TOLERANCE = 1e-6  # float64 central differences, eps = 1e-6


def randomized_affine(layer: BatchNorm | LayerNorm, rng: np.random.Generator):
    """The layer with gamma and beta moved away from (1, 0) so their gradients are exercised."""
    layer.gamma.value[...] = rng.uniform(0.5, 2.0, layer.num_features)
    layer.beta.value[...] = rng.standard_normal(layer.num_features)
    return layer


def warmed_up_batchnorm(rng: np.random.Generator, dtype=np.float64) -> BatchNorm:
    """A BatchNorm whose running statistics are far from their initial (0, 1)."""
    layer = randomized_affine(BatchNorm(4, momentum=0.5, dtype=dtype), rng)
    for _ in range(3):
        layer.forward(3.0 + 2.0 * rng.standard_normal((16, 4)))
    return layer


# name -> (factory(rng, dtype), input shape)
LAYERS: dict[str, tuple[Callable[..., Layer], tuple[int, ...]]] = {
    "linear": (lambda rng, dtype: Linear(4, 3, rng=rng, dtype=dtype), (5, 4)),
    "linear-no-bias": (lambda rng, dtype: Linear(4, 3, rng=rng, bias=False, dtype=dtype), (5, 4)),
    "sigmoid": (lambda rng, dtype: Sigmoid(), (5, 4)),
    "tanh": (lambda rng, dtype: Tanh(), (5, 4)),
    "relu": (lambda rng, dtype: ReLU(), (5, 4)),
    "softmax": (lambda rng, dtype: Softmax(), (5, 4)),
    "softmax-axis0": (lambda rng, dtype: Softmax(axis=0), (5, 4)),
    "dropout": (lambda rng, dtype: Dropout(0.4, rng=rng), (5, 4)),
    "batchnorm": (lambda rng, dtype: warmed_up_batchnorm(rng, dtype), (6, 4)),
    "batchnorm-fresh": (lambda rng, dtype: BatchNorm(4, dtype=dtype), (6, 4)),
    "layernorm": (lambda rng, dtype: randomized_affine(LayerNorm(4, dtype=dtype), rng), (5, 4)),
    "layernorm-3d": (
        lambda rng, dtype: randomized_affine(LayerNorm(4, dtype=dtype), rng),
        (2, 3, 4),
    ),
    "mlp-relu": (lambda rng, dtype: mlp([4, 6, 5, 3], rng=rng, dtype=dtype), (5, 4)),
    "mlp-tanh": (
        lambda rng, dtype: mlp([4, 6, 3], rng=rng, activation="tanh", dtype=dtype),
        (5, 4),
    ),
    "mlp-sigmoid": (
        lambda rng, dtype: mlp([4, 6, 3], rng=rng, activation="sigmoid", dtype=dtype),
        (5, 4),
    ),
    "sequential-norm-dropout": (
        lambda rng, dtype: Sequential(
            Linear(4, 6, rng=rng, bias=False, dtype=dtype),
            randomized_affine(BatchNorm(6, dtype=dtype), rng),
            Tanh(),
            Dropout(0.3, rng=rng),
            Linear(6, 3, rng=rng, dtype=dtype),
            randomized_affine(LayerNorm(3, dtype=dtype), rng),
            Softmax(),
        ),
        (8, 4),
    ),
}


def make(name: str, seed: int = 0, dtype=np.float64) -> tuple[Layer, np.ndarray]:
    rng = np.random.default_rng(seed)
    factory, shape = LAYERS[name]
    return factory(rng, dtype), rng.standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------- gradient checks


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", LAYERS)
def test_backward_matches_central_differences(name, mode):
    layer, x = make(name)
    layer.train(mode == "train")
    errors = check_layer(layer, x, rng=np.random.default_rng(1))
    assert set(errors) == {"input"} | {p.name for p in layer.parameters()}
    assert max(errors.values()) < TOLERANCE, errors


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 6),
    in_features=st.integers(1, 6),
    out_features=st.integers(1, 6),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_linear_gradients_for_random_shapes(n, in_features, out_features, bias, seed):
    rng = np.random.default_rng(seed)
    layer = Linear(in_features, out_features, rng=rng, bias=bias, init=init.glorot_normal)
    errors = check_layer(layer, rng.standard_normal((n, in_features)), rng=rng)
    assert max(errors.values()) < TOLERANCE, errors


@settings(max_examples=25, deadline=None)
@given(
    leading=st.lists(st.integers(1, 4), min_size=1, max_size=2),
    num_features=st.integers(3, 7),  # with 1 or 2 features the normalized output is ±1 or 0
    seed=st.integers(0, 2**16),
)
def test_layernorm_gradients_for_random_shapes(leading, num_features, seed):
    rng = np.random.default_rng(seed)
    layer = randomized_affine(LayerNorm(num_features), rng)
    x = rng.standard_normal((*leading, num_features))
    errors = check_layer(layer, x, rng=rng)
    assert max(errors.values()) < TOLERANCE, errors


@settings(max_examples=15, deadline=None)
@given(n=st.integers(4, 9), num_features=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_batchnorm_gradients_for_random_shapes(n, num_features, seed):
    rng = np.random.default_rng(seed)
    layer = randomized_affine(BatchNorm(num_features), rng)
    errors = check_layer(layer, rng.standard_normal((n, num_features)), rng=rng)
    assert max(errors.values()) < TOLERANCE, errors


# ---------------------------------------------------------------- torch as an oracle


def torch_module():
    return pytest.importorskip("torch")


@pytest.mark.torch_oracle
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias):
    torch = torch_module()
    rng = np.random.default_rng(0)
    layer = Linear(5, 3, rng=rng, bias=bias)
    layer.parameters()[-1].value[...] = rng.standard_normal(layer.parameters()[-1].shape)
    x, grad_y = rng.standard_normal((7, 5)), rng.standard_normal((7, 3))

    y, grad_x = layer.forward(x), layer.backward(grad_y)

    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(layer.W.value, requires_grad=True)
    tb = torch.tensor(layer.b.value, requires_grad=True) if bias else None
    ty = torch.nn.functional.linear(tx, tw, tb)
    ty.backward(torch.tensor(grad_y))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_x, tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.W.grad, tw.grad.numpy(), rtol=1e-12, atol=1e-12)
    if bias:
        np.testing.assert_allclose(layer.b.grad, tb.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.torch_oracle
@pytest.mark.parametrize("momentum", [0.1, 0.7])
def test_batchnorm_matches_torch_including_running_statistics(momentum):
    torch = torch_module()
    rng = np.random.default_rng(0)
    layer = randomized_affine(BatchNorm(5, momentum=momentum, eps=1e-3), rng)
    reference = torch.nn.BatchNorm1d(5, momentum=momentum, eps=1e-3, dtype=torch.float64)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(layer.gamma.value))
        reference.bias.copy_(torch.tensor(layer.beta.value))

    def compare(x: np.ndarray, grad_y: np.ndarray) -> None:
        reference.zero_grad()
        tx = torch.tensor(x, requires_grad=True)
        ty = reference(tx)
        ty.backward(torch.tensor(grad_y))
        y, grad_x = layer.forward(x), layer.backward(grad_y)
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grad_x, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.gamma.grad, reference.weight.grad, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.beta.grad, reference.bias.grad, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.running_mean, reference.running_mean, rtol=1e-12)
        np.testing.assert_allclose(layer.running_var, reference.running_var, rtol=1e-12)

    for step in range(4):
        x = 2.0 + (step + 1) * rng.standard_normal((8 + step, 5))
        compare(x, rng.standard_normal(x.shape))
    layer.eval()
    reference.eval()
    compare(rng.standard_normal((3, 5)), rng.standard_normal((3, 5)))


@pytest.mark.torch_oracle
def test_layernorm_matches_torch():
    torch = torch_module()
    rng = np.random.default_rng(0)
    layer = randomized_affine(LayerNorm(6, eps=1e-4), rng)
    reference = torch.nn.LayerNorm(6, eps=1e-4, dtype=torch.float64)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(layer.gamma.value))
        reference.bias.copy_(torch.tensor(layer.beta.value))
    x, grad_y = rng.standard_normal((2, 3, 6)), rng.standard_normal((2, 3, 6))

    y, grad_x = layer.forward(x), layer.backward(grad_y)

    tx = torch.tensor(x, requires_grad=True)
    ty = reference(tx)
    ty.backward(torch.tensor(grad_y))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad_x, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.gamma.grad, reference.weight.grad, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.beta.grad, reference.bias.grad, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- layer behaviour


def test_linear_computes_x_wt_plus_b_with_torch_shapes():
    rng = np.random.default_rng(0)
    layer = Linear(4, 3, rng=rng)
    assert [(p.name, p.shape, p.regularize) for p in layer.parameters()] == [
        ("W", (3, 4), True),
        ("b", (3,), False),
    ]
    np.testing.assert_array_equal(layer.b.value, np.zeros(3))
    layer.b.value[...] = [1.0, -2.0, 0.5]
    x = rng.standard_normal((5, 4))
    np.testing.assert_allclose(layer(x), x @ layer.W.value.T + layer.b.value, rtol=1e-14)
    assert Linear(4, 3, rng=rng, bias=False).parameters()[0].name == "W"


def test_linear_init_is_pluggable_and_seeded():
    a = Linear(50, 40, rng=np.random.default_rng(1), init=functools.partial(init.normal, std=0.3))
    b = Linear(50, 40, rng=np.random.default_rng(1), init=functools.partial(init.normal, std=0.3))
    np.testing.assert_array_equal(a.W.value, b.W.value)
    assert np.std(a.W.value) == pytest.approx(0.3, rel=0.05)


def test_backward_overwrites_parameter_gradients():
    rng = np.random.default_rng(0)
    layer = Linear(3, 2, rng=rng)
    x = rng.standard_normal((4, 3))
    layer.forward(x)
    layer.backward(rng.standard_normal((4, 2)))
    second = rng.standard_normal((4, 2))
    layer.backward(second)
    np.testing.assert_allclose(layer.W.grad, second.T @ x, rtol=1e-14)
    np.testing.assert_allclose(layer.b.grad, second.sum(axis=0), rtol=1e-14)


def test_relu_forward_and_subgradient_at_zero():
    layer = ReLU()
    x = np.array([[-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(layer(x), [[0.0, 0.0, 2.0]])
    np.testing.assert_array_equal(layer.backward(np.ones((1, 3))), [[0.0, 0.0, 1.0]])


def test_sigmoid_is_stable_and_precise():
    x = np.array([-1e4, -745.0, -30.0, -1.0, 0.0, 1.0, 30.0, 1e4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = sigmoid(x)
        grad = Sigmoid().forward(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y, grad)
    assert y[0] == 0.0 and y[-1] == 1.0 and y[4] == 0.5
    exact_tail = np.exp(-30.0) / (1 + np.exp(-30.0))
    assert y[2] == pytest.approx(exact_tail, rel=1e-14)  # 1 - sigma(30) would lose all digits
    np.testing.assert_allclose(y[3:6], 1 / (1 + np.exp(-x[3:6])), rtol=1e-15)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_is_a_distribution_along_its_axis(axis):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4)) * 3
    y = Softmax(axis=axis).forward(x)
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-14)
    assert np.all(y > 0)
    expected = np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(y, expected, rtol=1e-13)


def test_softmax_is_stable_for_huge_logits():
    x = np.array([[1e4, -1e4, 0.0], [1e4, 1e4, -1e4], [-1e4, -1e4, -1e4]])
    layer = Softmax()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = layer.forward(x)
        grad_x = layer.backward(np.ones_like(x))
    np.testing.assert_allclose(y, [[1, 0, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-15)
    assert np.all(np.isfinite(grad_x))
    np.testing.assert_allclose(softmax(x), y)


def test_dropout_keeps_the_expected_activation():
    p, masks = 0.3, 400
    rng = np.random.default_rng(0)
    layer = Dropout(p, rng=rng)
    x = rng.standard_normal((20, 30))
    outputs = np.stack([layer.forward(x) for _ in range(masks)])
    # each output is x * Bernoulli(1-p) / (1-p): mean x, standard deviation |x| sqrt(p / (1-p))
    standard_error = np.abs(x) * np.sqrt(p / (1 - p) / masks)
    z_scores = (outputs.mean(axis=0) - x) / standard_error
    assert np.max(np.abs(z_scores)) < 5
    assert abs(np.mean(z_scores)) < 5 / np.sqrt(x.size)
    dropped = np.mean(outputs == 0)
    assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / outputs.size)
    np.testing.assert_allclose(np.unique(np.round(outputs / x, 12)), [0.0, 1 / (1 - p)])


def test_dropout_backward_uses_the_forward_mask():
    rng = np.random.default_rng(0)
    layer = Dropout(0.5, rng=rng)
    x = rng.standard_normal((6, 7))
    y = layer.forward(x)
    grad_y = rng.standard_normal(x.shape)
    np.testing.assert_allclose(layer.backward(grad_y), grad_y * y / x, rtol=1e-14)


def test_dropout_eval_and_p0_are_the_identity():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5))
    layer = Dropout(0.5, rng=rng).eval()
    state = layer.rng.bit_generator.state
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(2 * x), 2 * x)
    assert layer.rng.bit_generator.state == state
    np.testing.assert_array_equal(Dropout(0.0, rng=rng).forward(x), x)


def test_dropout_mask_is_fixed_by_the_seed():
    x = np.ones((8, 8))
    a = Dropout(0.5, rng=np.random.default_rng(42)).forward(x)
    b = Dropout(0.5, rng=np.random.default_rng(42)).forward(x)
    np.testing.assert_array_equal(a, b)


def test_batchnorm_training_normalizes_with_batch_statistics():
    rng = np.random.default_rng(0)
    layer = BatchNorm(3)
    assert [(p.name, p.regularize) for p in layer.parameters()] == [
        ("gamma", False),
        ("beta", False),
    ]
    x = 5.0 + 3.0 * rng.standard_normal((50, 3))
    y = layer.forward(x)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), x.var(axis=0) / (x.var(axis=0) + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(layer.running_mean, 0.1 * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, 0.9 + 0.1 * x.var(axis=0, ddof=1), rtol=1e-12)


def test_batchnorm_eval_uses_running_statistics_and_leaves_them_alone():
    rng = np.random.default_rng(0)
    layer = warmed_up_batchnorm(rng)
    mean, var = layer.running_mean.copy(), layer.running_var.copy()
    layer.eval()
    x = rng.standard_normal((2, 4))
    expected = (x - mean) / np.sqrt(var + layer.eps) * layer.gamma.value + layer.beta.value
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12)
    np.testing.assert_allclose(layer.forward(x[:1]), expected[:1], rtol=1e-12)  # a batch of 1
    np.testing.assert_array_equal(layer.running_mean, mean)
    np.testing.assert_array_equal(layer.running_var, var)


def test_layernorm_normalizes_each_example_in_both_modes():
    rng = np.random.default_rng(0)
    layer = LayerNorm(8)
    x = 4.0 + 2.0 * rng.standard_normal((3, 8))
    y = layer.forward(x)
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=-1), 1.0, rtol=1e-4)
    np.testing.assert_array_equal(layer.eval().forward(x), y)


# ---------------------------------------------------------------- containers and modes


def test_sequential_prefixes_names_and_chains():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(3, 4, rng=rng), ReLU(), Linear(4, 2, rng=rng), BatchNorm(2))
    assert [p.name for p in model.parameters()] == ["0.W", "0.b", "2.W", "2.b", "3.gamma", "3.beta"]
    assert [p for layer in model for p in layer.parameters()] == model.parameters()
    assert len(model) == 4 and isinstance(model[1], ReLU) and len(model[1:3]) == 2

    x, grad_y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    h = x
    for layer in model:
        h = layer.forward(h)
    np.testing.assert_array_equal(model.forward(x), h)
    g = grad_y
    for layer in reversed(list(model)):
        g = layer.backward(g)
    np.testing.assert_array_equal(model.backward(grad_y), g)


def test_nested_sequential_names_and_modes():
    rng = np.random.default_rng(0)
    inner = Sequential(Linear(2, 2, rng=rng), Dropout(0.5, rng=rng))
    model = Sequential(Tanh(), inner)
    assert [p.name for p in model.parameters()] == ["1.0.W", "1.0.b"]
    assert model.eval() is model
    assert not any(layer.training for layer in (model, inner, inner[0], inner[1]))
    assert model.train() is model
    assert all(layer.training for layer in (model, inner, inner[0], inner[1]))
    assert model.train(False) is model and not inner[1].training


def test_call_is_forward_and_repr_is_readable():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3))
    layer = Linear(3, 2, rng=rng)
    np.testing.assert_array_equal(layer(x), layer.forward(x))
    assert repr(layer) == "Linear(3->2)"
    assert repr(Linear(3, 2, rng=rng, bias=False)) == "Linear(3->2, bias=False)"
    assert repr(Dropout(0.25, rng=rng)) == "Dropout(p=0.25)"
    assert repr(mlp([3, 4, 2], rng=rng)) == (
        "Sequential(\n  (0): Linear(3->4)\n  (1): ReLU()\n  (2): Linear(4->2)\n)"
    )


@pytest.mark.parametrize(
    ("activation", "activation_type"), [("relu", ReLU), ("tanh", Tanh), ("sigmoid", Sigmoid)]
)
def test_mlp_structure(activation, activation_type):
    model = mlp([5, 4, 3, 2], rng=np.random.default_rng(0), activation=activation)
    assert [type(layer) for layer in model] == [
        Linear,
        activation_type,
        Linear,
        activation_type,
        Linear,
    ]
    assert [(layer.in_features, layer.out_features) for layer in model[::2]] == [
        (5, 4),
        (4, 3),
        (3, 2),
    ]
    assert [p.name for p in model.parameters()] == ["0.W", "0.b", "2.W", "2.b", "4.W", "4.b"]


def test_mlp_default_initializers():
    relu = mlp([600, 400, 2], rng=np.random.default_rng(0))
    assert np.std(relu[0].W.value) == pytest.approx(np.sqrt(2 / 600), rel=0.02)
    tanh = mlp([600, 400, 2], rng=np.random.default_rng(0), activation="tanh")
    limit = np.sqrt(6 / 1000)
    assert np.max(np.abs(tanh[0].W.value)) <= limit
    assert np.std(tanh[0].W.value) == pytest.approx(limit / np.sqrt(3), rel=0.02)
    custom = mlp([600, 400, 2], rng=np.random.default_rng(0), init=init.he_uniform)
    assert np.max(np.abs(custom[0].W.value)) <= np.sqrt(6 / 600)


def test_mlp_is_reproducible():
    a = mlp([4, 8, 3], rng=np.random.default_rng(7))
    b = mlp([4, 8, 3], rng=np.random.default_rng(7))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(pa.value, pb.value)


# ---------------------------------------------------------------- dtypes


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", LAYERS)
def test_float32_in_float32_out(name, mode):
    layer, x = make(name, dtype=np.float32)
    layer.train(mode == "train")
    y = layer.forward(x)
    grad_x = layer.backward(np.ones_like(y))
    assert y.dtype == np.float32 and grad_x.dtype == np.float32
    for p in layer.parameters():
        assert p.value.dtype == np.float32 and p.grad.dtype == np.float32, p.name


def test_parameter_layers_cast_input_to_their_dtype():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(3, 4, rng=rng, dtype=np.float32), BatchNorm(4, dtype=np.float32))
    y = model.forward(rng.standard_normal((5, 3)))
    assert y.dtype == np.float32
    assert model.backward(np.ones((5, 4))).dtype == np.float32


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("layer", "x", "message"),
    [
        (Linear(64, 32, rng=np.random.default_rng(0)), np.zeros((10, 63)),
         r"Linear\(64->32\): expected input of shape \(N, 64\), got \(10, 63\)"),
        (Linear(64, 32, rng=np.random.default_rng(0)), np.zeros(64),
         r"Linear\(64->32\): expected input of shape \(N, 64\), got \(64,\)"),
        (BatchNorm(4), np.zeros((3, 5)),
         r"BatchNorm\(4\): expected input of shape \(N, 4\), got \(3, 5\)"),
        (BatchNorm(4), np.zeros((3, 2, 4)),
         r"BatchNorm\(4\): expected input of shape \(N, 4\), got \(3, 2, 4\)"),
        (BatchNorm(4), np.zeros((1, 4)),
         r"BatchNorm\(4\): training needs a batch of at least 2, got \(1, 4\)"),
        (LayerNorm(4), np.zeros((3, 5)),
         r"LayerNorm\(4\): expected input of shape \(\.\.\., 4\), got \(3, 5\)"),
        (Softmax(axis=2), np.zeros((3, 5)),
         r"Softmax\(axis=2\): axis 2 out of range for input shape \(3, 5\)"),
    ],
)  # fmt: skip
def test_bad_input_names_the_layer_and_both_shapes(layer, x, message):
    with pytest.raises(ValueError, match=message):
        layer.forward(x)


@pytest.mark.parametrize("name", [n for n in LAYERS if n != "batchnorm"])  # warmed up
def test_backward_before_forward_is_an_error(name):
    layer, _ = make(name)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.ones((5, 3)))


@pytest.mark.parametrize("name", [n for n in LAYERS if not n.startswith(("mlp", "sequential"))])
def test_backward_with_a_wrongly_shaped_gradient_names_both_shapes(name):
    layer, x = make(name)
    y = layer.forward(x)
    wrong = (y.shape[0] + 1, *y.shape[1:])
    pattern = rf"{layer!r}: expected a gradient of the output's shape {y.shape}, got {wrong}"
    with pytest.raises(ValueError, match=pattern.replace("(", r"\(").replace(")", r"\)")):
        layer.backward(np.ones(wrong))


def test_bad_hyperparameters_are_rejected():
    rng = np.random.default_rng(0)
    cases = [
        (lambda: Linear(0, 3, rng=rng), "Linear: in_features must be a positive integer, got 0"),
        (lambda: Linear(3, 2.5, rng=rng), "Linear: out_features must be a positive integer"),
        (lambda: Dropout(1.0, rng=rng), r"Dropout: p must be in \[0, 1\), got 1.0"),
        (lambda: Dropout(-0.1, rng=rng), r"Dropout: p must be in \[0, 1\), got -0.1"),
        (lambda: BatchNorm(3, momentum=1.5), r"BatchNorm: momentum must be in \[0, 1\], got 1.5"),
        (lambda: BatchNorm(0), "BatchNorm: num_features must be a positive integer, got 0"),
        (lambda: LayerNorm(3, eps=0.0), "LayerNorm: eps must be positive, got 0.0"),
        (
            lambda: mlp([3], rng=rng),
            r"mlp: need at least an input and an output size, got sizes=\[3\]",
        ),
        (lambda: mlp([3, 2], rng=rng, activation="gelu"), "mlp: activation must be one of"),
    ]
    for build, message in cases:
        with pytest.raises(ValueError, match=message):
            build()


def test_type_errors():
    with pytest.raises(TypeError, match=r"Dropout: rng must be a numpy\.random\.Generator"):
        Dropout(0.5, rng=np.random.RandomState(0))
    with pytest.raises(TypeError, match=r"glorot_uniform: rng must be a numpy\.random\.Generator"):
        Linear(2, 2, rng=None)
    with pytest.raises(TypeError, match="Sequential: item 1 is a ufunc, not a Layer"):
        Sequential(ReLU(), np.tanh)


def test_sequential_can_skip_the_gradient_with_respect_to_the_data():
    rng = np.random.default_rng(0)
    model = mlp([5, 4, 3], rng=rng)
    x, g = rng.standard_normal((6, 5)), rng.standard_normal((6, 3))
    model.forward(x)
    grad_x = model.backward(g)
    full = [p.grad.copy() for p in model.parameters()]
    model.forward(x)
    assert model.backward(g, input_grad=False) is None
    for p, expected in zip(model.parameters(), full, strict=True):
        np.testing.assert_array_equal(p.grad, expected)
    assert grad_x.shape == x.shape
