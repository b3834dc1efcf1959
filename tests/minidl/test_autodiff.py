"""Tests of the expression-tree engine :mod:`minidl.autodiff`.

Each op is checked twice against a plain NumPy reference: its forward value, and its backward
against central differences of the reference (so a wrong forward cannot hide behind a
backward that is consistent with it).
"""

import re
import sys
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes
from scipy.special import expit
from scipy.special import log_softmax as np_log_softmax

import minidl.autodiff as ad
from minidl.autodiff import Tensor, topological_order, unbroadcast

pytestmark = pytest.mark.autodiff

EPS = 1e-6
TOL = 1e-6
deterministic = settings(derandomize=True, database=None, deadline=None, max_examples=60)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def central_difference(f: Callable[[], float], x: np.ndarray, eps: float = EPS) -> np.ndarray:
    """d f / d x by (f(x + eps e_i) - f(x - eps e_i)) / (2 eps), perturbing ``x`` in place."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + eps
        up = f()
        x[i] = saved - eps
        down = f()
        x[i] = saved
        grad[i] = (up - down) / (2 * eps)
    return grad


def check_op(op: Callable, reference: Callable, *arrays: np.ndarray, seed: int = 0) -> None:
    """``op`` on Tensors agrees with ``reference`` on arrays, forward and backward.

    A random seed gradient ``w`` turns the output into the scalar ``sum(w * out)``, so every
    entry of the Jacobian takes part in the check.
    """
    tensors = [Tensor(a.copy()) for a in arrays]
    out = op(*tensors)
    expected = reference(*arrays)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    w = np.random.default_rng(seed).normal(size=np.shape(expected))
    out.backward(w)
    for t, a in zip(tensors, arrays, strict=True):
        numeric = central_difference(lambda: float(np.sum(w * reference(*arrays))), a)
        assert t.grad.shape == a.shape
        assert relative_error(t.grad, numeric) < TOL, (t.grad, numeric)


def positive(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 2.0, size=shape)


def normal(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape)


# ----- elementwise arithmetic with broadcasting ---------------------------------------------

BINARY_OPS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
}
BROADCAST_PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((4,), (3, 4)),
    ((3, 1), (1, 4)),
    ((3, 4), ()),
    ((), (3, 4)),
    ((2, 3, 4), (3, 1)),
    ((2, 1, 4), (3, 1)),
]


@pytest.mark.parametrize("name", BINARY_OPS)
@pytest.mark.parametrize(("shape_a", "shape_b"), BROADCAST_PAIRS)
def test_binary_op_gradient(name, shape_a, shape_b):
    op = BINARY_OPS[name]
    check_op(op, op, positive(*shape_a, seed=1), positive(*shape_b, seed=2))


CONSTANT_OPS = {
    "t + 2.5": lambda t: t + 2.5,
    "2.5 + t": lambda t: 2.5 + t,
    "t - 3": lambda t: t - 3,
    "3 - t": lambda t: 3 - t,
    "t * 1.5": lambda t: t * 1.5,
    "-2 * t": lambda t: -2 * t,
    "t / 4": lambda t: t / 4,
    "1.5 / t": lambda t: 1.5 / t,
    "array + t": lambda t: np.arange(4.0) + t,
    "array - t": lambda t: np.arange(4.0) - t,
    "array * t": lambda t: np.linspace(1, 2, 12).reshape(3, 4) * t,
    "array / t": lambda t: np.arange(4.0) / t,
    "t - array": lambda t: t - np.arange(4.0),
    "-t": lambda t: -t,
}


@pytest.mark.parametrize("name", CONSTANT_OPS)
def test_op_with_constant_gradient(name):
    op = CONSTANT_OPS[name]
    check_op(op, op, positive(3, 4))


@pytest.mark.parametrize("p", [2, 3, 1, 0.5, 1 / 3, -1, -2.5, np.float64(1.5)])
def test_pow_gradient(p):
    check_op(lambda t: t**p, lambda a: a**p, positive(3, 4))


# ----- elementwise functions -----------------------------------------------------------------

UNARY_FUNCTIONS = {
    "exp": (ad.exp, np.exp, normal(3, 4)),
    "log": (ad.log, np.log, positive(3, 4)),
    "tanh": (ad.tanh, np.tanh, normal(3, 4)),
    "sigmoid": (ad.sigmoid, expit, 3 * normal(3, 4)),
    # relu's kink at 0 is kept away from the data so central differences see one side only
    "relu": (ad.relu, lambda a: np.maximum(a, 0), np.sign(normal(3, 4)) * positive(3, 4)),
}


@pytest.mark.parametrize("name", UNARY_FUNCTIONS)
def test_unary_function_gradient(name):
    fn, reference, x = UNARY_FUNCTIONS[name]
    check_op(fn, reference, x)


def test_relu_gradient_is_zero_at_the_kink():
    x = Tensor(np.array([-1.0, 0.0, 2.0]))
    ad.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


@pytest.mark.parametrize("name", UNARY_FUNCTIONS)
def test_method_and_function_forms_agree(name):
    fn, _, x = UNARY_FUNCTIONS[name]
    method = getattr(Tensor(x), name)()
    np.testing.assert_array_equal(method.data, fn(Tensor(x)).data)
    assert method.op == name


@pytest.mark.parametrize(
    ("shape", "axis"), [((4, 5), -1), ((4, 5), 0), ((4, 5), 1), ((2, 3, 4), 1)]
)
def test_log_softmax_gradient(shape, axis):
    check_op(
        lambda t: ad.log_softmax(t, axis=axis),
        lambda a: np_log_softmax(a, axis=axis),
        3 * normal(*shape),
    )


# ----- reductions and shape changes ----------------------------------------------------------

AXES = [None, 0, 1, 2, -1, (0, 2), (0, 1, 2)]


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction_gradient(reduction, axis, keepdims):
    def op(x):
        return getattr(x, reduction)(axis=axis, keepdims=keepdims)

    check_op(op, op, normal(2, 3, 4))


@pytest.mark.parametrize("shape", [(6, 4), (4, -1), (24,), (2, 3, 2, 2)])
def test_reshape_gradient(shape):
    check_op(lambda t: t.reshape(*shape), lambda a: a.reshape(shape), normal(2, 3, 4))


def test_reshape_accepts_a_tuple():
    assert Tensor(normal(2, 3)).reshape((3, 2)).shape == (3, 2)


@pytest.mark.parametrize("axes", [(), (1, 0, 2), (2, 0, 1), (-1, 0, 1)])
def test_transpose_gradient(axes):
    check_op(lambda t: t.transpose(*axes), lambda a: a.transpose(*axes), normal(2, 3, 4))


def test_T_gradient():
    check_op(lambda t: t.T, lambda a: a.T, normal(3, 4))


MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((1, 4), (4, 1)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((1, 3, 4), (2, 4, 5)),
    ((4,), (4, 5)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((4,), (2, 4, 5)),
]


@pytest.mark.parametrize(("shape_a", "shape_b"), MATMUL_SHAPES)
def test_matmul_gradient(shape_a, shape_b):
    check_op(lambda a, b: a @ b, np.matmul, normal(*shape_a, seed=1), normal(*shape_b, seed=2))


def test_matmul_with_constant_on_either_side():
    w = normal(4, 5, seed=3)
    check_op(lambda t: t @ w, lambda a: a @ w, normal(3, 4))
    check_op(lambda t: w.T @ t, lambda a: w.T @ a, normal(4, 2))


# ----- losses ----------------------------------------------------------------------------------

LABELS = np.array([0, 3, 1, 3, 2])


def reference_cross_entropy(z: np.ndarray) -> float:
    return -np.mean(np_log_softmax(z, axis=1)[np.arange(len(z)), LABELS])


def test_cross_entropy_gradient():
    check_op(lambda z: ad.softmax_cross_entropy(z, LABELS), reference_cross_entropy, normal(5, 4))


def test_cross_entropy_gradient_is_softmax_minus_one_hot():
    z = Tensor(normal(5, 4))
    ad.softmax_cross_entropy(z, LABELS).backward()
    expected = (np.exp(np_log_softmax(z.data, axis=1)) - np.eye(4)[LABELS]) / 5
    np.testing.assert_allclose(z.grad, expected, rtol=1e-12, atol=1e-15)


def test_mse_gradient():
    target = normal(3, 4, seed=5)
    check_op(lambda p: ad.mse(p, target), lambda p: np.mean((p - target) ** 2), normal(3, 4))
    check_op(ad.mse, lambda p, t: np.mean((p - t) ** 2), normal(3, 4), target)


def test_two_layer_mlp_gradient():
    x, labels = normal(6, 3, seed=1), np.array([0, 1, 2, 1, 0, 2])

    def mlp(w1, b1, w2, b2):
        return ad.softmax_cross_entropy(ad.tanh(x @ w1 + b1) @ w2 + b2, labels)

    def reference(w1, b1, w2, b2):
        z = np.tanh(x @ w1 + b1) @ w2 + b2
        return -np.mean(np_log_softmax(z, axis=1)[np.arange(6), labels])

    check_op(
        mlp,
        reference,
        normal(3, 5, seed=2),
        normal(5, seed=3),
        normal(5, 3, seed=4),
        normal(3, seed=5),
    )


# ----- properties ------------------------------------------------------------------------------


@deterministic
@given(
    shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
    seed=st.integers(0, 2**32 - 1),
)
def test_unbroadcast_is_the_adjoint_of_broadcasting(shapes, seed):
    """<g, broadcast(x)> = <unbroadcast(g), x> for every x and g: the defining property."""
    (shape, _), target = shapes.input_shapes, shapes.result_shape
    rng = np.random.default_rng(seed)
    x, g = rng.normal(size=shape), rng.normal(size=target)
    reduced = unbroadcast(g, shape)
    assert reduced.shape == shape
    np.testing.assert_allclose(
        np.sum(g * np.broadcast_to(x, target)), np.sum(reduced * x), rtol=1e-10, atol=1e-10
    )


@deterministic
@given(
    shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
    seed=st.integers(0, 2**32 - 1),
)
def test_gradient_of_sum_of_product_is_the_other_factor_unbroadcast(shapes, seed):
    shape_a, shape_b = shapes.input_shapes
    rng = np.random.default_rng(seed)
    a, b = Tensor(rng.normal(size=shape_a)), Tensor(rng.normal(size=shape_b))
    (a * b).sum().backward()
    result = shapes.result_shape
    np.testing.assert_allclose(a.grad, unbroadcast(np.broadcast_to(b.data, result), shape_a))
    np.testing.assert_allclose(b.grad, unbroadcast(np.broadcast_to(a.data, result), shape_b))


@deterministic
@given(
    rows=st.integers(1, 4),
    cols=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    alpha=st.floats(-3, 3),
    beta=st.floats(-3, 3),
)
def test_backward_is_linear_in_the_seed(rows, cols, seed, alpha, beta):
    """backward computes a vector-Jacobian product, so it is linear in the seed gradient."""
    rng = np.random.default_rng(seed)
    x, w = Tensor(rng.normal(size=(rows, cols))), Tensor(rng.normal(size=(cols, 3)))
    out = ad.sigmoid(ad.tanh(x @ w) * x.sum(axis=1, keepdims=True)).log_softmax(axis=0)
    g1, g2 = rng.normal(size=out.shape), rng.normal(size=out.shape)

    def grads(seed_grad):
        out.backward(seed_grad)
        return x.grad.copy(), w.grad.copy()

    (x1, w1), (x2, w2), (x12, w12) = grads(g1), grads(g2), grads(alpha * g1 + beta * g2)
    np.testing.assert_allclose(x12, alpha * x1 + beta * x2, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(w12, alpha * w1 + beta * w2, rtol=1e-9, atol=1e-12)


# ----- graph semantics -------------------------------------------------------------------------


def test_node_used_twice_accumulates():
    x = Tensor(np.array([-1.5, 0.5, 2.0]))
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)


def test_diamond_graph_sums_both_paths():
    def op(t):
        y = t.tanh()
        return y * 2 + y.exp() * y

    def reference(a):
        y = np.tanh(a)
        return y * 2 + np.exp(y) * y

    check_op(op, reference, normal(3, 4))


def test_backward_twice_gives_fresh_gradients():
    x = Tensor(normal(3))
    loss = (x.tanh() * x).sum()
    loss.backward()
    first = x.grad.copy()
    loss.backward()
    np.testing.assert_array_equal(x.grad, first)


def test_every_node_gets_a_gradient():
    x, w = Tensor(normal(2, 3)), Tensor(normal(3, 2))
    loss = ad.mse(x @ w, np.zeros((2, 2)))
    assert all(node.grad is None for node in topological_order(loss))
    loss.backward()
    for node in topological_order(loss):
        assert node.grad.shape == node.shape
    assert loss.grad == 1.0


def test_deep_chain_does_not_hit_the_recursion_limit():
    depth = 5000
    assert depth > sys.getrecursionlimit()
    x = Tensor(np.array(0.3))
    y, derivative, value = x, 1.0, 0.3
    for _ in range(depth):
        y = y.tanh()
        value = np.tanh(value)
        derivative *= 1 - value**2
    y.backward()
    assert len(topological_order(y)) == depth + 1
    np.testing.assert_allclose(x.grad, derivative, rtol=1e-10)


def test_topological_order_puts_parents_first_and_output_last():
    x, w = Tensor(normal(2, 3), label="x"), Tensor(normal(3, 2), label="W")
    h = (x @ w).tanh()
    loss = (h * h + h).mean()
    order = topological_order(loss)
    assert order[-1] is loss
    assert len(order) == len(set(map(id, order))) == 7
    position = {id(node): i for i, node in enumerate(order)}
    for node in order:
        assert all(position[id(p)] < position[id(node)] for p in node.parents)
    assert [node.op for node in order if node.parents] == ["matmul", "tanh", "*", "+", "mean"]


def test_parents_op_and_label():
    x, w = Tensor(normal(2, 3), label="x"), Tensor(normal(3, 2), label="W")
    y = x @ w
    assert y.parents == (x, w)
    assert y.op == "matmul"
    assert x.op == "" and x.parents == ()
    assert x.label == "x"


def test_repr_is_readable():
    assert repr(Tensor(np.array([1.0, 2.0]), label="b")) == "Tensor([1., 2.], label='b')"
    assert repr(Tensor(np.ones((2, 2))) * 2) == "Tensor([[2., 2.], [2., 2.]], op='*')"
    big = Tensor(np.ones((3, 4), dtype=np.float32), label="W")
    assert repr(big) == "Tensor(shape=(3, 4), dtype=float32, label='W')"


def test_ndarray_on_the_left_gives_a_tensor():
    t = Tensor(normal(3, 4))
    assert isinstance(np.ones(4) + t, Tensor)
    assert isinstance(np.ones((2, 3)) @ t, Tensor)


# ----- dtypes ----------------------------------------------------------------------------------


def test_float32_is_kept_through_ops_constants_and_gradients():
    x = Tensor(normal(3, 4).astype(np.float32))
    w = Tensor(normal(4, 2).astype(np.float32))
    out = ad.sigmoid(2.0 * (x @ w) + 1).log_softmax() ** 2 / 3
    loss = ad.softmax_cross_entropy(out, np.array([0, 1, 1])) + ad.mse(x, np.zeros_like(x.data))
    loss.backward()
    assert all(node.dtype == np.float32 for node in topological_order(loss))
    assert x.grad.dtype == w.grad.dtype == np.float32


@pytest.mark.parametrize("data", [3, 2.5, [1, 2, 3], [[1.0, 2.0]], True])
def test_python_numbers_and_lists_become_float64(data):
    assert Tensor(data).dtype == np.float64


@pytest.mark.parametrize(
    "data", [np.arange(3), np.array([True]), np.array(["a"]), "abc", None, [1, [2, 3]], 1j]
)
def test_non_float_data_is_rejected(data):
    with pytest.raises(ValueError, match="Tensor"):
        Tensor(data)


# ----- numerical stability ---------------------------------------------------------------------

BIG_LOGITS = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0], [0.0, 0.0, -1e4]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_softmax_and_cross_entropy_are_stable_for_huge_logits(dtype):
    z = Tensor(BIG_LOGITS.astype(dtype))
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        log_p = ad.log_softmax(z)
        loss = ad.softmax_cross_entropy(z, np.array([1, 1, 2]))
        loss.backward()
    assert np.all(np.isfinite(log_p.data))
    np.testing.assert_allclose(log_p.data[0], [0.0, -2e4, -1e4], rtol=1e-6)
    np.testing.assert_allclose(loss.data, (2e4 + 0 + (1e4 + np.log(2))) / 3, rtol=1e-6)
    assert np.all(np.isfinite(z.grad))
    np.testing.assert_allclose(z.grad.sum(axis=1), 0, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_is_stable_for_huge_inputs(dtype):
    x = Tensor(np.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=dtype))
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        y = ad.sigmoid(x)
        y.sum().backward()
    np.testing.assert_allclose(y.data, expit(x.data.astype(np.float64)), rtol=1e-6, atol=0)
    assert y.data[0] == 0.0 and y.data[-1] == 1.0 and y.data[2] == 0.5
    assert np.all(np.isfinite(x.grad))


# ----- errors ----------------------------------------------------------------------------------


def raises_naming(*parts: str):
    return pytest.raises(ValueError, match=".*".join(re.escape(p) for p in parts))


def test_matmul_shape_mismatch_names_both_shapes():
    with raises_naming("matmul", "(3, 4)", "(5, 2)"):
        Tensor(normal(3, 4)) @ Tensor(normal(5, 2))
    with raises_naming("matmul", "(2, 3, 4)", "(3, 4, 5)"):
        Tensor(normal(2, 3, 4)) @ normal(3, 4, 5)


@pytest.mark.parametrize("name", BINARY_OPS)
def test_broadcast_mismatch_names_both_shapes(name):
    with raises_naming(name, "(3, 4)", "(5,)"):
        BINARY_OPS[name](Tensor(normal(3, 4)), Tensor(normal(5)))


def test_cross_entropy_label_count_names_both_shapes():
    with raises_naming("softmax_cross_entropy", "(5,)", "(5, 4)", "(3,)"):
        ad.softmax_cross_entropy(Tensor(normal(5, 4)), np.array([0, 1, 2]))


@pytest.mark.parametrize("labels", [[0, 1, 4], [0, -1, 2]])
def test_cross_entropy_labels_out_of_range(labels):
    with raises_naming("softmax_cross_entropy", "[0, 4)", "(3, 4)"):
        ad.softmax_cross_entropy(Tensor(normal(3, 4)), np.array(labels))


def test_cross_entropy_rejects_float_labels_and_non_matrix_logits():
    with raises_naming("softmax_cross_entropy", "float64"):
        ad.softmax_cross_entropy(Tensor(normal(3, 4)), np.array([0.0, 1.0, 2.0]))
    with raises_naming("softmax_cross_entropy", "(4,)"):
        ad.softmax_cross_entropy(Tensor(normal(4)), np.array([0]))


def test_mse_shape_mismatch_names_both_shapes():
    with raises_naming("mse", "(4, 1)", "(4,)"):
        ad.mse(Tensor(normal(4, 1)), normal(4))


def test_backward_of_non_scalar_needs_a_seed_of_its_shape():
    y = Tensor(normal(3, 4)).tanh()
    with raises_naming("backward", "(3, 4)"):
        y.backward()
    with raises_naming("backward", "(4, 3)", "(3, 4)"):
        y.backward(np.ones((4, 3)))


def test_shape_changes_and_reductions_with_bad_arguments():
    t = Tensor(normal(3, 4))
    with raises_naming("reshape", "(3, 4)", "(5, 2)"):
        t.reshape(5, 2)
    with raises_naming("transpose", "(0, 0)", "(3, 4)"):
        t.transpose(0, 0)
    with raises_naming("sum", "2", "(3, 4)"):
        t.sum(axis=2)
    with raises_naming("mean", "(0, 0)", "(3, 4)"):
        t.mean(axis=(0, 0))
    with raises_naming("log_softmax", "-3", "(3, 4)"):
        ad.log_softmax(t, axis=-3)


def test_pow_needs_a_constant_exponent():
    with raises_naming("**", "Tensor"):
        Tensor(positive(3)) ** Tensor(np.array(2.0))


# ----- torch as an oracle ----------------------------------------------------------------------


@pytest.mark.torch_oracle
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_two_layer_mlp_matches_torch(activation, loss):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.normal(size=(16, 5))
    params = {
        "W1": rng.normal(size=(5, 8)) / np.sqrt(5),
        "b1": rng.normal(size=8),
        "W2": rng.normal(size=(8, 3)) / np.sqrt(8),
        "b2": rng.normal(size=3),
    }
    labels = rng.integers(0, 3, size=16)
    targets = rng.normal(size=(16, 3))

    ours = {k: Tensor(v, label=k) for k, v in params.items()}
    xs = Tensor(x, label="x")
    h = getattr(ad, activation)(xs @ ours["W1"] + ours["b1"])
    out = h @ ours["W2"] + ours["b2"]
    our_loss = (
        ad.softmax_cross_entropy(out, labels) if loss == "cross_entropy" else ad.mse(out, targets)
    )
    our_loss.backward()

    theirs = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()
    }
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ht = getattr(torch, activation)(xt @ theirs["W1"] + theirs["b1"])
    outt = ht @ theirs["W2"] + theirs["b2"]
    if loss == "cross_entropy":
        their_loss = torch.nn.functional.cross_entropy(outt, torch.tensor(labels))
    else:
        their_loss = torch.nn.functional.mse_loss(outt, torch.tensor(targets))
    their_loss.backward()

    assert abs(our_loss.data - their_loss.item()) <= 1e-12 * abs(their_loss.item())
    for k in params:
        expected = theirs[k].grad.numpy()
        assert np.linalg.norm(ours[k].grad - expected) <= 1e-10 * np.linalg.norm(expected), k
    expected = xt.grad.numpy()
    assert np.linalg.norm(xs.grad - expected) <= 1e-10 * np.linalg.norm(expected)
