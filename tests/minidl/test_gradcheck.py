"""Tests of the gradient checker itself: it must accept right gradients, reject wrong ones, and
leave the checked arrays and layers exactly as it found them."""

import numpy as np
import pytest

from minidl import layers
from minidl.gradcheck import (
    check_gradient,
    check_layer,
    numerical_gradient,
    random_direction_check,
    relative_error,
)

pytestmark = pytest.mark.gradcheck


def cubic(x: np.ndarray) -> float:
    return float(np.sum(x**3 + np.sin(x)))


def cubic_grad(x: np.ndarray) -> np.ndarray:
    return 3 * x**2 + np.cos(x)


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((4, 3))


def test_numerical_gradient_matches_the_analytic_one(x):
    np.testing.assert_allclose(numerical_gradient(cubic, x), cubic_grad(x), rtol=1e-8, atol=1e-8)


def test_numerical_gradient_handles_non_contiguous_views():
    base = np.random.default_rng(1).standard_normal((6, 5))
    view = base[::2, 1::2]
    np.testing.assert_allclose(numerical_gradient(cubic, view), cubic_grad(view), rtol=1e-8)


def test_numerical_gradient_restores_x_bit_for_bit(x):
    original = x.copy()
    numerical_gradient(cubic, x, eps=1e-3)
    np.testing.assert_array_equal(x, original)


def test_numerical_gradient_restores_x_when_f_raises(x):
    original = x.copy()
    calls = 0

    def failing(v: np.ndarray) -> float:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise ArithmeticError("boom")
        return cubic(v)

    with pytest.raises(ArithmeticError, match="boom"):
        numerical_gradient(failing, x)
    np.testing.assert_array_equal(x, original)


@pytest.mark.parametrize("bad", [np.arange(3), [1.0, 2.0]])
def test_numerical_gradient_needs_a_floating_array(bad):
    with pytest.raises(ValueError, match="numerical_gradient"):
        numerical_gradient(cubic, bad)


def test_numerical_gradient_needs_positive_eps(x):
    with pytest.raises(ValueError, match="eps must be positive, got 0"):
        numerical_gradient(cubic, x, eps=0.0)


def test_relative_error_properties():
    a = np.array([1.0, -2.0, 3.0])
    b = np.array([1.5, -2.0, 2.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(a, b) == relative_error(b, a)
    assert relative_error(a, -a) == pytest.approx(1.0)
    assert relative_error(a, np.zeros(3)) == pytest.approx(1.0)
    expected = np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b))
    assert relative_error(a, b) == pytest.approx(expected)


def test_relative_error_is_scale_free():
    a = np.array([1.0, 2.0])
    b = np.array([1.0, 2.1])
    assert relative_error(1e-8 * a, 1e-8 * b) == pytest.approx(relative_error(a, b))


def test_relative_error_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"relative_error.*\(3,\).*\(2,\)"):
        relative_error(np.zeros(3), np.zeros(2))


def test_check_gradient_accepts_the_right_gradient(x):
    assert check_gradient(cubic, cubic_grad(x), x) < 1e-8


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda g: 1.1 * g,
        lambda g: g + np.eye(*g.shape),
        lambda g: g[::-1].copy(),
        lambda g: np.zeros_like(g),
    ],
    ids=["scaled", "one-entry-off", "permuted", "zero"],
)
def test_check_gradient_detects_a_wrong_gradient(x, corrupt):
    assert check_gradient(cubic, corrupt(cubic_grad(x)), x) > 1e-2


def test_check_gradient_shape_mismatch_names_both_shapes(x):
    with pytest.raises(ValueError, match=r"check_gradient.*\(3, 4\).*\(4, 3\)"):
        check_gradient(cubic, np.zeros((3, 4)), x)


def test_random_direction_check(x):
    rng = np.random.default_rng(2)
    original = x.copy()
    assert random_direction_check(cubic, cubic_grad(x), x, rng=rng) < 1e-8
    np.testing.assert_array_equal(x, original)
    wrong = cubic_grad(x) + rng.standard_normal(x.shape)
    assert random_direction_check(cubic, wrong, x, rng=rng) > 1e-3


def test_random_direction_check_calls_f_twice(x):
    calls = []
    random_direction_check(
        lambda v: calls.append(1) or cubic(v), cubic_grad(x), x, rng=np.random.default_rng(0)
    )
    assert len(calls) == 2


def test_random_direction_check_validates_its_arguments(x):
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator"):
        random_direction_check(cubic, cubic_grad(x), x, rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match=r"random_direction_check.*\(2,\).*\(4, 3\)"):
        random_direction_check(cubic, np.zeros(2), x, rng=np.random.default_rng(0))


def test_check_layer_reports_the_input_and_every_parameter():
    rng = np.random.default_rng(3)
    layer = layers.Linear(3, 2, rng=rng)
    errors = check_layer(layer, rng.standard_normal((4, 3)), rng=rng)
    assert set(errors) == {"input", "W", "b"}
    assert max(errors.values()) < 1e-6


class _WrongInputGrad(layers.Linear):
    def backward(self, grad_y):
        return 1.01 * super().backward(grad_y)


class _WrongWeightGrad(layers.Linear):
    def backward(self, grad_y):
        grad_x = super().backward(grad_y)
        self.W.grad = self.W.grad.T.reshape(self.W.shape)
        return grad_x


def test_check_layer_detects_a_wrong_input_gradient():
    rng = np.random.default_rng(4)
    errors = check_layer(_WrongInputGrad(3, 3, rng=rng), rng.standard_normal((5, 3)), rng=rng)
    assert errors["input"] > 1e-3
    assert errors["W"] < 1e-6


def test_check_layer_detects_a_wrong_parameter_gradient():
    rng = np.random.default_rng(5)
    errors = check_layer(_WrongWeightGrad(3, 3, rng=rng), rng.standard_normal((5, 3)), rng=rng)
    assert errors["W"] > 1e-2
    assert errors["input"] < 1e-6


def test_check_layer_leaves_the_layer_and_the_input_as_it_found_them():
    rng = np.random.default_rng(6)
    model = layers.Sequential(
        # no bias: BatchNorm removes it, so its gradient is 0 and the relative error meaningless
        layers.Linear(3, 4, rng=rng, bias=False),
        layers.BatchNorm(4),
        layers.Dropout(0.5, rng=rng),
    )
    x = rng.standard_normal((6, 3))
    x_before = x.copy()
    weights_before = [p.value.copy() for p in model.parameters()]
    batchnorm, dropout = model[1], model[2]
    running_before = (batchnorm.running_mean.copy(), batchnorm.running_var.copy())
    rng_state_before = dropout.rng.bit_generator.state

    errors = check_layer(model, x, rng=np.random.default_rng(7))

    assert max(errors.values()) < 1e-6
    np.testing.assert_array_equal(x, x_before)
    for p, before in zip(model.parameters(), weights_before, strict=True):
        np.testing.assert_array_equal(p.value, before)
    np.testing.assert_array_equal(batchnorm.running_mean, running_before[0])
    np.testing.assert_array_equal(batchnorm.running_var, running_before[1])
    assert dropout.rng.bit_generator.state == rng_state_before


def test_check_layer_needs_a_generator():
    with pytest.raises(TypeError, match=r"check_layer: rng must be a numpy\.random\.Generator"):
        check_layer(layers.ReLU(), np.ones((2, 2)), rng=0)
