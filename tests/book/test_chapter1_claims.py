"""Chapter 1 (Backpropagation): every claim the book's pages make, asserted on the same
experiment functions the pages call (course.experiments.ch01_backprop)."""

import numpy as np
import pytest

from course.experiments import ch01_backprop as backprop
from minidl import layers
from minidl.autodiff import Tensor

pytestmark = pytest.mark.book


# ----- expression trees ------------------------------------------------------------------------


def test_expression_levels_put_every_node_after_its_operands():
    a, b = Tensor(2.0, label="a"), Tensor(3.0, label="b")
    out = (a * b + a).tanh()
    levels = backprop.expression_levels(out)
    assert levels[a] == levels[b] == 0
    assert levels[out] == 3
    assert all(levels[p] < levels[node] for node in levels for p in node.parents)


def test_a_derivative_written_as_a_graph_differentiates_again():
    u = Tensor(0.7)
    first = 1 - u.tanh() ** 2
    first.backward()
    assert first.data == pytest.approx(1 - np.tanh(0.7) ** 2, rel=1e-14)
    assert u.grad == pytest.approx(-2 * np.tanh(0.7) * (1 - np.tanh(0.7) ** 2), rel=1e-12)


# ----- (a) every backward matches central differences ------------------------------------------


def test_every_layer_and_loss_matches_central_differences():
    table = backprop.gradient_check_table(rng=np.random.default_rng(0))
    expected = {
        "Linear",
        "Sigmoid",
        "Tanh",
        "ReLU",
        "Softmax",
        "Dropout",
        "BatchNorm",
        "LayerNorm",
        "Sequential",
        "MSE",
        "BinaryCrossEntropy",
        "SoftmaxCrossEntropy",
    }
    assert set(table) == expected
    assert set(table["Linear"]) == {"input", "W", "b"}
    worst = max(error for checks in table.values() for error in checks.values())
    assert worst < 1e-7


def test_central_differences_beat_one_sided_and_fail_at_tiny_steps():
    eps = np.logspace(-12, -1, 12)
    errors = backprop.finite_difference_errors(eps, rng=np.random.default_rng(0))
    central, one_sided = errors["central"], errors["one-sided"]
    assert central.min() < 1e-9 < one_sided.min()
    assert central[eps == 1e-6][0] < 1e-8  # the default step of minidl.gradcheck
    # truncation: one decade of eps gives one decade (one-sided) and two decades (central)
    big = eps >= 1e-3
    assert np.allclose(np.diff(np.log10(one_sided[big])), 1, atol=0.1)
    assert np.allclose(np.diff(np.log10(central[big])), 2, atol=0.1)
    assert central[0] > 1e-6  # rounding dominates at eps = 1e-12


def test_both_checks_catch_the_forgetful_sigmoid():
    verdicts = backprop.caught_bug(rng=np.random.default_rng(1))
    assert max(verdicts["correct"].values()) < 1e-7
    assert min(verdicts["buggy"].values()) > 0.1


def test_the_weight_difference_reads_the_gradient_back_and_catches_a_wrong_update():
    errors = backprop.weight_difference_errors(rng=np.random.default_rng(2))
    assert errors["gradient descent"] < 1e-7
    assert errors["adds the gradient"] == pytest.approx(1.0, abs=1e-9)  # reads back -g
    assert errors["skips the first layer"] == pytest.approx(1.0, abs=1e-9)  # reads back 0


# ----- O(D^2) against O(D) ---------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 2, 5, 12])
def test_backprop_counts_3d_minus_1_products_and_naive_d_squared_plus_d(depth):
    rng = np.random.default_rng(depth)
    weights = backprop.deep_chain(depth, 4, rng=rng)
    x = rng.standard_normal(4)
    naive, naive_count = backprop.chain_rule_gradients(weights, x, reuse=False)
    reused, reuse_count = backprop.chain_rule_gradients(weights, x, reuse=True)
    assert naive_count == depth**2 + depth
    assert reuse_count == 3 * depth - 1
    for a, b in zip(naive, reused, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_chain_rule_gradients_match_the_layers_backward():
    rng = np.random.default_rng(0)
    weights = backprop.deep_chain(4, 3, rng=rng)
    x = rng.standard_normal(3)
    grads, _ = backprop.chain_rule_gradients(weights, x, reuse=True)
    boxes = []
    for W in weights:
        linear = layers.Linear(3, 3, rng=rng, bias=False)
        linear.W.value[...] = W
        boxes += [linear, layers.Sigmoid()]
    model = layers.Sequential(*boxes)
    out = model.forward(x[None, :])
    model.backward(np.ones_like(out))
    for grad, linear in zip(grads, model[::2], strict=True):
        np.testing.assert_allclose(grad, linear.W.grad, rtol=1e-12)


# ----- (b) vanishing gradients ----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_sigmoid_gradients_shrink_geometrically_and_relu_gradients_do_not(seed):
    sigmoid = backprop.gradient_norms_per_layer(10, "sigmoid", rng=np.random.default_rng(seed))
    relu = backprop.gradient_norms_per_layer(10, "relu", rng=np.random.default_rng(seed))
    assert sigmoid.shape == relu.shape == (10,)
    # sigma' <= 1/4 and Glorot weights keep a vector's length: about 4^-9 over nine layers
    assert sigmoid[0] / sigmoid[-1] < 1e-3
    assert backprop.geometric_factor(sigmoid) < 0.3
    assert np.all(np.diff(np.log(sigmoid)) > 0)  # every layer closer to the output gets more
    assert 0.1 < relu[0] / relu[-1] < 10


def test_gain_scales_relu_gradients_exponentially_in_depth():
    norms = {
        gain: backprop.gradient_norms_per_layer(10, "relu", rng=np.random.default_rng(0), gain=gain)
        for gain in (0.5, 1.0, 2.0)
    }
    assert norms[2.0].mean() > 100 * norms[1.0].mean() > 100 * 100 * norms[0.5].mean()


def test_geometric_factor_recovers_a_geometric_sequence():
    assert backprop.geometric_factor(3.0 * 0.25 ** np.arange(8)[::-1]) == pytest.approx(0.25)


# ----- (c) Brady, Raghavan & Slawny ------------------------------------------------------------


def test_three_point_solution_fits_the_three_points():
    w = backprop.three_point_solution()
    X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    assert not backprop.errors(w, X, np.array([1, 1, 0])).any()
    assert w[1] > 3  # the diagonal line: far below, the spoiler is deep on the wrong side


def test_far_spoiler_traps_backprop_but_not_the_perceptron():
    run = backprop.spoiler_experiment(10)
    assert run.perceptron_errors == 0
    assert run.backprop_errors == 1 and run.spoiler_misclassified
    # backprop stays near the three-point solution
    assert np.linalg.norm(run.backprop - run.start) < 0.1 * np.linalg.norm(run.start)
    # because the spoiler's gradient term has vanished
    assert backprop.spoiler_gradient(run.backprop, 10) < 1e-15


def test_near_spoiler_is_learned_by_both():
    run = backprop.spoiler_experiment(1)
    assert run.perceptron_errors == 0
    assert run.backprop_errors == 0


def test_from_zero_backprop_separates_the_far_spoiler():
    run = backprop.spoiler_experiment(10, start="zero")
    assert run.backprop_errors == 0 and run.perceptron_errors == 0


def test_cross_entropy_escapes_the_three_point_solution():
    run = backprop.spoiler_experiment(10, loss="cross-entropy")
    assert run.backprop_errors == 0


def test_perceptron_rule_on_a_small_separable_set():
    X = np.array([[2.0, 0.0], [-2.0, 0.0]])
    w, updates = backprop.perceptron(X, np.array([1, 0]), np.zeros(3))
    assert updates >= 1
    assert not backprop.errors(w, X, np.array([1, 0])).any()


def test_spoiler_experiment_rejects_an_unknown_start():
    with pytest.raises(ValueError, match=r"spoiler_experiment.*'nowhere'"):
        backprop.spoiler_experiment(10, start="nowhere")
