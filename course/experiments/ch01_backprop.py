r"""Chapter 1 (Backpropagation): the experiments behind the chapter's claims.

- :func:`expression_levels`: the depth of every node of an expression tree, to draw it.
- :func:`gradient_check_table`: every layer's and loss's backward against central differences.
- :func:`finite_difference_errors`: one-sided and central differences against the step
  :math:`\epsilon`.
- :func:`caught_bug`: a wrong backward, and what the central-difference and random-direction
  checks make of it.
- :func:`weight_difference_errors`: the lecture's weight-difference method, reading the gradient
  back from one step, on a correct update and on two buggy ones.
- :func:`chain_rule_gradients`: the weight gradients of :math:`h^{(l)} = \sigma(W^{(l)}
  h^{(l-1)})` by the naive chain rule (:math:`O(D^2)` products) or by backpropagation
  (:math:`O(D)`), with the products counted.
- :func:`gradient_norms_per_layer`, :func:`geometric_factor`: vanishing gradients in a deep
  sigmoid network, and not in a ReLU network.
- :func:`spoiler_experiment`: Brady, Raghavan & Slawny (1989): the perceptron rule separates a
  spoiler point that a sigmoid unit trained by gradient descent on the squared error never
  learns.

The three-point solution and the spoiler follow the lecture "Neural Networks: Optimization
Part 1" (CMU 11-785) and M. L. Brady, R. Raghavan, J. Slawny (1989), "Back propagation fails to
separate where perceptrons succeed", *IEEE Trans. Circuits and Systems* 36(5), 665-674.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np

from minidl import data, layers, losses, optim
from minidl.autodiff import Tensor, topological_order
from minidl.gradcheck import (
    check_gradient,
    check_layer,
    numerical_gradient,
    random_direction_check,
    relative_error,
)
from minidl.init import glorot_uniform, he_normal

# ----- expression trees ------------------------------------------------------------------------


def expression_levels(output: Tensor) -> dict[Tensor, int]:
    """The level of every node of ``output``'s graph: 0 for a leaf, else 1 + its parents' maximum.

    Nodes of one level depend only on lower levels, so drawing level by level from left to right
    shows the forward pass flowing to the output, and backpropagation flowing back.
    """
    levels: dict[Tensor, int] = {}
    for node in topological_order(output):
        levels[node] = 1 + max((levels[p] for p in node.parents), default=-1)
    return levels


# ----- gradient checking -----------------------------------------------------------------------


def gradient_check_table(*, rng: np.random.Generator) -> dict[str, dict[str, float]]:
    r"""Relative error of every layer's and loss's analytic gradient against central differences.

    Each layer type of :mod:`minidl.layers` is checked by :func:`minidl.gradcheck.check_layer`
    on a random float64 batch of 5 examples (errors for the input and for each parameter); each
    loss of :mod:`minidl.losses` by :func:`minidl.gradcheck.check_gradient` with respect to its
    predictions. Returns ``{name: {what: error}}``.
    """
    features = 4
    x = rng.standard_normal((5, features))
    checked: list[layers.Layer] = [
        layers.Linear(features, 3, rng=rng),
        layers.Sigmoid(),
        layers.Tanh(),
        layers.ReLU(),
        layers.Softmax(),
        layers.Dropout(0.5, rng=rng),
        layers.BatchNorm(features),
        layers.LayerNorm(features),
        layers.mlp([features, 6, 3], rng=rng, activation="tanh"),
    ]
    table = {type(layer).__name__: check_layer(layer, x, rng=rng) for layer in checked}

    logits = rng.standard_normal((5, 3))
    loss_targets = {
        "MSE": (losses.mse, rng.standard_normal((5, 3))),
        "BinaryCrossEntropy": (losses.binary_cross_entropy, rng.random((5, 3))),
        "SoftmaxCrossEntropy": (losses.softmax_cross_entropy, rng.integers(0, 3, size=5)),
    }
    for name, (loss, target) in loss_targets.items():
        _, grad = loss(logits, target)
        error = check_gradient(lambda z, loss=loss, target=target: loss(z, target)[0], grad, logits)
        table[name] = {"input": error}
    return table


def _small_mlp_loss(rng: np.random.Generator) -> tuple[layers.Sequential, np.ndarray, np.ndarray]:
    """A 3-4-2 tanh MLP, a batch of 8 inputs and their class labels."""
    model = layers.mlp([3, 4, 2], rng=rng, activation="tanh")
    X = rng.standard_normal((8, 3))
    labels = rng.integers(0, 2, size=8)
    return model, X, labels


def _loss_and_grads(model: layers.Sequential, X: np.ndarray, labels: np.ndarray) -> float:
    value, grad = losses.softmax_cross_entropy(model.forward(X), labels)
    model.backward(grad)
    return value


def finite_difference_errors(
    eps_values: np.ndarray, *, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    r"""Relative error of finite differences against backprop, for every step in ``eps_values``.

    On the first weight matrix of a small tanh MLP with a cross-entropy loss, compares the
    backprop gradient with the one-sided quotient :math:`(L(w + \epsilon e_i) - L(w))/\epsilon`
    (truncation error :math:`O(\epsilon)`) and the central quotient
    :math:`(L(w + \epsilon e_i) - L(w - \epsilon e_i))/2\epsilon` (:math:`O(\epsilon^2)`). Both
    lose to rounding, which grows like :math:`10^{-16}/\epsilon`, once :math:`\epsilon` is tiny.
    Returns ``{"eps", "one-sided", "central"}``.
    """
    model, X, labels = _small_mlp_loss(rng)
    _loss_and_grads(model, X, labels)
    W = model[0].W
    analytic = W.grad.copy()

    def loss_at(_: np.ndarray) -> float:
        return losses.softmax_cross_entropy(model.forward(X), labels)[0]

    base = loss_at(W.value)
    one_sided, central = [], []
    for eps in eps_values:
        forward = np.empty_like(analytic)
        for index in np.ndindex(W.shape):
            original = W.value[index]
            W.value[index] = original + eps
            forward[index] = (loss_at(W.value) - base) / eps
            W.value[index] = original
        one_sided.append(np.linalg.norm(forward - analytic) / np.linalg.norm(analytic))
        central.append(check_gradient(loss_at, analytic, W.value, eps=eps))
    return {
        "eps": np.asarray(eps_values, dtype=float),
        "one-sided": np.array(one_sided),
        "central": np.array(central),
    }


class ForgetfulSigmoid(layers.Sigmoid):
    r"""A sigmoid with a classic bug: its backward returns :math:`g\,y` instead of
    :math:`g\,y(1-y)`. The forward pass is right, so training still "runs"."""

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        return grad_y * self._y


def caught_bug(*, rng: np.random.Generator, directions: int = 5) -> dict[str, dict[str, float]]:
    r"""How the two gradient checks judge a correct and a buggy sigmoid network.

    Two copies of one 3-4-2 sigmoid MLP, the second with :class:`ForgetfulSigmoid`. For the first
    weight matrix of each, returns the central-difference error (all entries, :math:`2n` loss
    evaluations) and the largest random-direction error over ``directions`` random directions
    (2 evaluations each), under ``{"correct": {...}, "buggy": {...}}``.
    """
    seed = int(rng.integers(2**32))
    X = rng.standard_normal((8, 3))
    labels = rng.integers(0, 2, size=8)
    results = {}
    for name, activation in [("correct", layers.Sigmoid), ("buggy", ForgetfulSigmoid)]:
        weights = np.random.default_rng(seed)
        model = layers.Sequential(
            layers.Linear(3, 4, rng=weights), activation(), layers.Linear(4, 2, rng=weights)
        )
        _loss_and_grads(model, X, labels)
        W = model[0].W
        grad = W.grad.copy()

        def loss_at(_: np.ndarray, model=model) -> float:
            return losses.softmax_cross_entropy(model.forward(X), labels)[0]

        results[name] = {
            "central differences": check_gradient(loss_at, grad, W.value),
            "random direction": max(
                random_direction_check(loss_at, grad, W.value, rng=rng) for _ in range(directions)
            ),
        }
    return results


def weight_difference_errors(*, rng: np.random.Generator, lr: float = 0.1) -> dict[str, float]:
    r"""The weight-difference method on three updates of a 3-4-2 tanh MLP's parameters.

    Each update takes one step from the same weights; the gradient read back from the first
    layer's weights, :math:`(w_{t-1} - w_t)/\eta`, is compared (:func:`relative_error`) with
    central differences at :math:`w_{t-1}`. ``"gradient descent"`` is the shell's correct step;
    ``"adds the gradient"`` has the sign wrong; ``"skips the first layer"`` updates every
    parameter but that one, the wrong-tensor slip.
    """
    seed = int(rng.integers(2**32))
    X = rng.standard_normal((8, 3))
    labels = rng.integers(0, 2, size=8)

    def correct(params, _closure):
        optim.Optimizer(optim.gradient_descent(lr), params).step(_closure)

    def adds(params, _closure):
        _closure()
        for p in params:
            p.value += lr * p.grad

    def skips(params, _closure):
        _closure()
        for p in params[2:]:  # params[0], params[1] are the first layer's W and b
            p.value -= lr * p.grad

    errors = {}
    for name, update in [
        ("gradient descent", correct),
        ("adds the gradient", adds),
        ("skips the first layer", skips),
    ]:
        model = layers.mlp([3, 4, 2], rng=np.random.default_rng(seed), activation="tanh")
        W = model[0].W

        def closure(model=model) -> float:
            return _loss_and_grads(model, X, labels)

        numerical = numerical_gradient(lambda _: closure(), W.value)
        before = W.value.copy()
        update(model.parameters(), closure)
        errors[name] = relative_error((before - W.value) / lr, numerical)
    return errors


# ----- the cost of the chain rule --------------------------------------------------------------


def deep_chain(depth: int, width: int, *, rng: np.random.Generator) -> list[np.ndarray]:
    """``depth`` Glorot-uniform weight matrices of shape ``(width, width)``, no biases."""
    return [layers.Linear(width, width, rng=rng, bias=False).W.value for _ in range(depth)]


def chain_rule_gradients(
    weights: list[np.ndarray], x: np.ndarray, *, reuse: bool
) -> tuple[list[np.ndarray], int]:
    r"""Gradients of :math:`f = \sum_i h^{(D)}_i` with respect to every :math:`W^{(l)}` of the
    recursion :math:`h^{(0)} = x`, :math:`h^{(l)} = \sigma(z^{(l)})`, :math:`z^{(l)} = W^{(l)}
    h^{(l-1)}`, and the number of products (with a Jacobian factor or an outer product) it took.

    With :math:`\delta^{(l)} = \partial f/\partial z^{(l)}` the chain rule reads

    .. math::
        \delta^{(D)} = \sigma'(z^{(D)}) \odot \mathbf 1, \qquad
        \delta^{(l)} = \sigma'(z^{(l)}) \odot \big(W^{(l+1)\top} \delta^{(l+1)}\big), \qquad
        \frac{\partial f}{\partial W^{(l)}} = \delta^{(l)} h^{(l-1)\top}.

    ``reuse=False`` rebuilds :math:`\delta^{(l)}` from the output for every layer, as writing out
    each derivative separately does: :math:`2(D-l) + 2` products for layer :math:`l`,
    :math:`D^2 + D` in all. ``reuse=True`` is backpropagation: it keeps :math:`\delta^{(l+1)}`
    and needs 2 more products per layer, :math:`3D - 1` in all.
    """
    count = 0

    def product(result: np.ndarray) -> np.ndarray:
        nonlocal count
        count += 1
        return result

    h = [np.asarray(x, dtype=float)]
    slopes = []  # sigma'(z^(l)) = h^(l) (1 - h^(l)), cached by the forward pass
    for W in weights:
        out = layers.sigmoid(W @ h[-1])
        h.append(out)
        slopes.append(out * (1 - out))
    depth = len(weights)
    grads: list[np.ndarray] = [np.empty(0)] * depth
    delta = None
    for l in reversed(range(depth)):
        if reuse and delta is not None:
            delta = product(slopes[l] * product(weights[l + 1].T @ delta))
        else:
            delta = product(slopes[-1] * np.ones_like(h[-1]))
            for k in reversed(range(l, depth - 1)):
                delta = product(slopes[k] * product(weights[k + 1].T @ delta))
        grads[l] = product(np.outer(delta, h[l]))
    return grads, count


# ----- vanishing gradients ---------------------------------------------------------------------


def gradient_norms_per_layer(
    depth: int,
    activation: str,
    *,
    rng: np.random.Generator,
    width: int = 32,
    batch_size: int = 64,
    classes: int = 10,
    gain: float = 1.0,
) -> np.ndarray:
    r""":math:`\lVert \partial L/\partial W^{(l)} \rVert` for :math:`l = 1, \dots, D` after one
    backward pass, at initialization.

    The network is ``layers.mlp([width] * depth + [classes])``: :math:`D` = ``depth`` linear
    layers with the activation between them and the default initialization (Glorot for sigmoid
    and tanh, He for ReLU) multiplied by ``gain``. The loss is the softmax cross-entropy of a
    batch of standard normal inputs with random labels.
    """
    default = he_normal if activation == "relu" else glorot_uniform

    def scaled(shape: tuple[int, ...], *, rng: np.random.Generator, dtype: type) -> np.ndarray:
        return gain * default(shape, rng=rng, dtype=dtype)

    model = layers.mlp([width] * depth + [classes], rng=rng, activation=activation, init=scaled)
    X = rng.standard_normal((batch_size, width))
    labels = rng.integers(0, classes, size=batch_size)
    _loss_and_grads(model, X, labels)
    return np.array(
        [np.linalg.norm(layer.W.grad) for layer in model if isinstance(layer, layers.Linear)]
    )


def geometric_factor(norms: np.ndarray) -> float:
    r"""The factor :math:`q` of the geometric fit :math:`\lVert \partial L/\partial W^{(l)}\rVert
    \approx c\, q^{D - l}`: how much the gradient norm shrinks (:math:`q < 1`) or grows per layer
    on the way back. Least squares on the logarithms."""
    backwards = np.log(np.asarray(norms, dtype=float))[::-1]
    slope = np.polyfit(np.arange(len(backwards)), backwards, 1)[0]
    return float(np.exp(slope))


# ----- does backprop do the right thing? -------------------------------------------------------

Start = Literal["three-point solution", "zero"]


@dataclass(frozen=True)
class SpoilerResult:
    r"""One run of :func:`spoiler_experiment`. Weights are :math:`(w_1, w_2, b)`: the unit
    predicts class 1 where :math:`w_1 x_1 + w_2 x_2 + b > 0`."""

    t: float
    start: np.ndarray
    perceptron: np.ndarray
    perceptron_updates: int
    backprop: np.ndarray
    perceptron_errors: int
    backprop_errors: int
    spoiler_misclassified: bool


def perceptron(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, *, max_epochs: int = 100_000
) -> tuple[np.ndarray, int]:
    r"""Rosenblatt's perceptron rule (1958) from weights ``w`` = :math:`(w_1, \dots, w_d, b)`.

    Sweep the examples in order; on every mistake, :math:`y_n (w^\top x_n + b) \le 0` with
    :math:`y_n = \pm 1`, add :math:`y_n (x_n, 1)` to the weights. Stops after the first sweep
    without a mistake. On separable data this happens after at most :math:`(R/\gamma)^2`
    updates (Novikoff 1962), :math:`R` the largest :math:`\lVert (x_n, 1)\rVert` and
    :math:`\gamma` the margin of a unit-norm separator. Returns the weights and the number of
    updates.
    """
    X1 = np.column_stack([X, np.ones(len(X))])
    signs = np.where(np.asarray(y) > 0, 1.0, -1.0)
    w = np.array(w, dtype=float)
    updates = 0
    for _ in range(max_epochs):
        mistakes = 0
        for x_n, y_n in zip(X1, signs, strict=True):
            if y_n * (x_n @ w) <= 0:
                w += y_n * x_n
                mistakes += 1
        updates += mistakes
        if mistakes == 0:
            return w, updates
    raise ValueError(f"perceptron: no separator after {max_epochs} epochs of {len(X)} points")


def train_sigmoid_unit(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    *,
    loss: Literal["squared error", "cross-entropy"] = "squared error",
    lr: float = 5.0,
    steps: int = 2000,
) -> np.ndarray:
    r"""Full-batch gradient descent, with backprop, on one sigmoid unit
    :math:`\hat y = \sigma(w_1 x_1 + w_2 x_2 + b)` from weights ``w`` = :math:`(w_1, w_2, b)`.

    ``"squared error"`` minimizes :math:`\frac1N \sum_n (\hat y_n - y_n)^2` (the L2 loss of the
    lecture); ``"cross-entropy"`` the binary cross-entropy of :math:`\hat y`. Returns the final
    :math:`(w_1, w_2, b)`.
    """
    linear = layers.Linear(X.shape[1], 1, rng=np.random.default_rng(0))
    linear.W.value[...] = w[:-1]
    linear.b.value[...] = w[-1]
    if loss == "squared error":
        model, objective, target = layers.Sequential(linear, layers.Sigmoid()), losses.MSE(), y
    elif loss == "cross-entropy":
        model, objective, target = layers.Sequential(linear), losses.BinaryCrossEntropy(), y
    else:
        raise ValueError(
            f"train_sigmoid_unit: loss must be 'squared error' or 'cross-entropy', got {loss!r}"
        )
    target = np.asarray(target, dtype=float).reshape(-1, 1)
    optimizer = optim.Optimizer(optim.gradient_descent(lr), model.parameters())

    def closure() -> float:
        value = objective.forward(model.forward(X), target)
        model.backward(objective.backward(), input_grad=False)
        return value

    for _ in range(steps):
        optimizer.step(closure)
    return np.concatenate([linear.W.value.ravel(), linear.b.value])


def three_point_solution(*, lr: float = 5.0, steps: int = 2000) -> np.ndarray:
    """The weights gradient descent on the squared error reaches on the three points alone,
    from zero: what the unit holds when the spoiler arrives."""
    return np.array(_three_point_solution(float(lr), int(steps)))


@functools.cache
def _three_point_solution(lr: float, steps: int) -> tuple[float, ...]:
    X, y = data.brady_points()
    return tuple(train_sigmoid_unit(X, y, np.zeros(3), lr=lr, steps=steps))


def errors(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""Which points :math:`(w_1, w_2, b)` misclassifies (a point on the line counts as wrong)."""
    logits = X @ w[:-1] + w[-1]
    return np.where(np.asarray(y) > 0, logits <= 0, logits >= 0)


def spoiler_gradient(w: np.ndarray, t: float) -> float:
    r"""Size of the spoiler's term in the gradient of :math:`\sum_n (\hat y_n - y_n)^2` at
    :math:`w = (w_1, w_2, b)`:

    .. math::
        2\,\lvert \hat y - 1\rvert\, \sigma'(a)\, \lVert (0, -t, 1) \rVert, \qquad
        a = -t w_2 + b, \quad \sigma'(a) = \hat y (1 - \hat y) \le e^{-\lvert a\rvert}.
    """
    a = -t * w[1] + w[2]
    out = float(layers.sigmoid(a))
    return 2 * abs(out - 1) * out * (1 - out) * float(np.hypot(t, 1))


def spoiler_experiment(
    t: float,
    *,
    start: Start = "three-point solution",
    loss: Literal["squared error", "cross-entropy"] = "squared error",
    lr: float = 5.0,
    steps: int = 2000,
) -> SpoilerResult:
    r"""The perceptron rule and gradient descent on the four points of
    :func:`minidl.data.brady_points` with the spoiler :math:`(0, -t)`, from the same start.

    ``start="three-point solution"`` begins where gradient descent on the first three points
    ends (:func:`three_point_solution`), as when a trained unit meets the spoiler as a new
    example; ``start="zero"`` begins at :math:`w = 0`. Both learners then see all four points.
    """
    if start not in ("three-point solution", "zero"):
        raise ValueError(
            f"spoiler_experiment: start must be 'three-point solution' or 'zero', got {start!r}"
        )
    X, y = data.brady_points(spoiler=t)
    w0 = np.zeros(3) if start == "zero" else three_point_solution(lr=lr, steps=steps)
    w_perceptron, updates = perceptron(X, y, w0)
    w_backprop = train_sigmoid_unit(X, y, w0, loss=loss, lr=lr, steps=steps)
    wrong = errors(w_backprop, X, y)
    return SpoilerResult(
        t=float(t),
        start=w0,
        perceptron=w_perceptron,
        perceptron_updates=updates,
        backprop=w_backprop,
        perceptron_errors=int(errors(w_perceptron, X, y).sum()),
        backprop_errors=int(wrong.sum()),
        spoiler_misclassified=bool(wrong[-1]),
    )
