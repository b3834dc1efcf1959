"""Losses: gradients against central differences and torch, stability on logits of ±1e4, the
training-loop classes, accuracy, and the error messages."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.gradcheck import check_gradient, numerical_gradient
from minidl.losses import (
    MSE,
    BinaryCrossEntropy,
    SoftmaxCrossEntropy,
    binary_cross_entropy,
    mse,
    softmax_cross_entropy,
)

pytestmark = pytest.mark.losses

TOLERANCE = 1e-6


def probability_rows(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    rows = rng.random((n, k)) + 0.1
    return rows / rows.sum(axis=1, keepdims=True)


def cases(rng: np.random.Generator) -> dict[str, tuple]:
    """name -> (loss function, first argument, second argument)."""
    normal, labels = rng.standard_normal, rng.integers
    return {
        "mse": (mse, normal((6, 3)), normal((6, 3))),
        "bce-hard": (binary_cross_entropy, 3 * normal((6, 2)), labels(0, 2, (6, 2))),
        "bce-soft": (binary_cross_entropy, normal((6, 2)), rng.random((6, 2))),
        "bce-column": (binary_cross_entropy, normal((6, 1)), labels(0, 2, 6)),
        "ce-labels": (softmax_cross_entropy, 2 * normal((6, 4)), labels(0, 4, 6)),
        "ce-rows": (softmax_cross_entropy, normal((6, 4)), probability_rows(rng, 6, 4)),
    }


CASE_NAMES = list(cases(np.random.default_rng(0)))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_gradient_matches_central_differences(name):
    loss_fn, first, second = cases(np.random.default_rng(0))[name]
    loss, grad = loss_fn(first, second)
    assert isinstance(loss, float)
    assert grad.shape == first.shape
    assert check_gradient(lambda z: loss_fn(z, second)[0], grad, first) < TOLERANCE


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 8), k=st.integers(2, 6), seed=st.integers(0, 2**16))
def test_softmax_cross_entropy_properties(n, k, seed):
    rng = np.random.default_rng(seed)
    logits = 3 * rng.standard_normal((n, k))
    labels = rng.integers(0, k, n)
    loss, grad = softmax_cross_entropy(logits, labels)
    assert loss >= 0
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-15)  # softmax - one-hot
    # Where the loss is ~1e-6 the gradient is too, and a relative check of central differences
    # would measure rounding noise: compare with an absolute floor instead.
    numerical = numerical_gradient(lambda z: softmax_cross_entropy(z, labels)[0], logits)
    np.testing.assert_allclose(grad, numerical, rtol=1e-6, atol=1e-9)
    one_hot = np.eye(k)[labels]
    assert softmax_cross_entropy(logits, one_hot)[0] == pytest.approx(loss, rel=1e-12)
    shifted_loss, _ = softmax_cross_entropy(logits + 100.0, labels)
    assert shifted_loss == pytest.approx(loss, rel=1e-9)


def test_values_by_hand():
    assert mse(np.array([[1.0, 2.0]]), np.array([[0.0, 4.0]]))[0] == pytest.approx(2.5)
    assert binary_cross_entropy(np.zeros((2, 1)), np.array([0, 1]))[0] == pytest.approx(np.log(2))
    loss, grad = softmax_cross_entropy(np.zeros((2, 4)), np.array([1, 3]))
    assert loss == pytest.approx(np.log(4))
    np.testing.assert_allclose(grad, (np.full((2, 4), 0.25) - np.eye(4)[[1, 3]]) / 2)


# ---------------------------------------------------------------- torch as an oracle


@pytest.mark.torch_oracle
@pytest.mark.parametrize("name", CASE_NAMES)
def test_loss_and_gradient_match_torch(name):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    loss_fn, first, second = cases(np.random.default_rng(1))[name]
    loss, grad = loss_fn(first, second)

    t_first = torch.tensor(first, requires_grad=True)
    if loss_fn is mse:
        reference = functional.mse_loss(t_first, torch.tensor(second))
    elif loss_fn is binary_cross_entropy:
        target = torch.tensor(second, dtype=torch.float64).reshape(t_first.shape)
        reference = functional.binary_cross_entropy_with_logits(t_first, target)
    else:
        target = torch.tensor(second)
        reference = functional.cross_entropy(t_first, target)
    reference.backward()
    assert loss == pytest.approx(reference.item(), rel=1e-12)
    np.testing.assert_allclose(grad, t_first.grad.numpy(), rtol=1e-10, atol=1e-15)


# ---------------------------------------------------------------- stability and dtypes


@pytest.mark.parametrize(
    ("loss_fn", "logits", "target", "expected"),
    [
        (softmax_cross_entropy, [[1e4, -1e4], [-1e4, 1e4]], [0, 0], 1e4),
        (softmax_cross_entropy, [[1e4, 1e4, -1e4]], [[0.5, 0.5, 0.0]], np.log(2)),
        (binary_cross_entropy, [[1e4], [-1e4]], [1, 0], 0.0),
        (binary_cross_entropy, [[1e4], [-1e4]], [0, 1], 1e4),
    ],
)
def test_stable_for_huge_logits(loss_fn, logits, target, expected):
    logits = np.array(logits)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grad = loss_fn(logits, np.array(target))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(expected, abs=1e-12)
    assert np.max(np.abs(grad)) <= 1.0


@pytest.mark.parametrize("name", CASE_NAMES)
def test_float32_logits_give_a_float32_gradient(name):
    loss_fn, first, second = cases(np.random.default_rng(0))[name]
    loss, grad = loss_fn(first.astype(np.float32), second)
    assert grad.dtype == np.float32
    assert loss == pytest.approx(loss_fn(first, second)[0], rel=1e-5)


# ---------------------------------------------------------------- classes for a training loop


@pytest.mark.parametrize(
    ("loss_class", "name"),
    [(MSE, "mse"), (BinaryCrossEntropy, "bce-soft"), (SoftmaxCrossEntropy, "ce-labels")],
)
def test_classes_wrap_the_functions(loss_class, name):
    loss_fn, output, target = cases(np.random.default_rng(0))[name]
    loss = loss_class()
    with pytest.raises(RuntimeError, match=rf"{loss_class.__name__}\(\): backward called before"):
        loss.backward()
    value = loss(output, target)
    expected_value, expected_grad = loss_fn(output, target)
    assert value == expected_value and loss.forward(output, target) == expected_value
    np.testing.assert_array_equal(loss.backward(), expected_grad)


def test_accuracy():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0], [5.0, 0.0, 1.0], [0.0, 2.0, 1.0]])
    ce = SoftmaxCrossEntropy()
    assert ce.accuracy(logits, np.array([0, 2, 1, 1])) == 0.75
    assert ce.accuracy(logits, np.eye(3)[[0, 2, 1, 1]]) == 0.75
    bce = BinaryCrossEntropy()
    assert bce.accuracy(np.array([[3.0], [-1.0], [0.5]]), np.array([1, 1, 0])) == pytest.approx(
        1 / 3
    )
    assert bce.accuracy(np.array([[3.0, -2.0]]), np.array([[0.9, 0.2]])) == 1.0
    assert MSE().accuracy(logits, logits) is None


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mse(np.zeros((4, 2)), np.zeros((4, 3))),
         r"mse: pred has shape \(4, 2\) but target has shape \(4, 3\)"),
        (lambda: binary_cross_entropy(np.zeros((4, 2)), np.zeros(4)),
         r"binary_cross_entropy: logits have shape \(4, 2\) but targets have shape \(4,\)"),
        (lambda: binary_cross_entropy(np.zeros((2, 1)), np.array([0.0, 1.5])),
         r"binary_cross_entropy: targets must lie in \[0, 1\], got values in \[0.0, 1.5\]"),
        (lambda: softmax_cross_entropy(np.zeros((4, 3)), np.zeros(5, dtype=int)),
         r"softmax_cross_entropy: expected 4 labels of shape \(4,\) for logits of shape \(4, 3\), "
         r"got labels of shape \(5,\)"),
        (lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3])),
         r"labels must be in \[0, 3\) for logits of shape \(2, 3\), got values in \[0, 3\]"),
        (lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([-1, 0])),
         r"labels must be in \[0, 3\)"),
        (lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.5])),
         "softmax_cross_entropy: labels must be integer class indices, got dtype float64"),
        (lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, np.nan])),
         "softmax_cross_entropy: labels must be integer class indices"),
        (lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([True, False])),
         "softmax_cross_entropy: labels must be integer class indices, got dtype bool"),
        (lambda: softmax_cross_entropy(np.zeros(3), np.array([0])),
         r"softmax_cross_entropy: expected logits of shape \(N, K\), got \(3,\)"),
        (lambda: softmax_cross_entropy(np.zeros((2, 3)), np.full((2, 2), 0.5)),
         r"probability rows of shape \(2, 2\) for logits of shape \(2, 3\)"),
        (lambda: softmax_cross_entropy(np.zeros((2, 2)), np.array([[0.5, 0.6], [0.5, 0.5]])),
         r"rows of labels \(shape \(2, 2\)\) must be probabilities"),
        (lambda: SoftmaxCrossEntropy().accuracy(np.zeros((3, 2)), np.array([0, 1])),
         r"SoftmaxCrossEntropy.accuracy: expected 3 labels of shape \(3,\)"),
    ],
)  # fmt: skip
def test_bad_input_names_the_loss_and_both_shapes(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_integral_float_labels_are_accepted():
    logits = np.random.default_rng(0).standard_normal((3, 4))
    labels = np.array([0, 3, 1])
    assert softmax_cross_entropy(logits, labels.astype(float))[0] == pytest.approx(
        softmax_cross_entropy(logits, labels)[0], rel=1e-15
    )
