"""The expression-tree engine and the modular layers are two views of one chain rule."""

from __future__ import annotations

import numpy as np
import pytest

from minidl import autodiff, layers, losses

pytestmark = [pytest.mark.autodiff, pytest.mark.layers]


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_autodiff_and_layers_give_the_same_gradients_on_the_same_mlp(activation):
    rng = np.random.default_rng(0)
    model = layers.mlp([5, 7, 6, 3], rng=rng, activation=activation)
    X, y = rng.standard_normal((8, 5)), rng.integers(0, 3, 8)

    loss = losses.SoftmaxCrossEntropy()
    modular_loss = loss.forward(model.forward(X), y)
    model.backward(loss.backward())

    weights = [autodiff.Tensor(p.value.copy()) for p in model.parameters()]
    h = autodiff.Tensor(X)
    for i in range(0, len(weights), 2):
        h = h @ weights[i].T + weights[i + 1]
        if i + 2 < len(weights):
            h = getattr(h, activation)()
    graph_loss = autodiff.softmax_cross_entropy(h, y)
    graph_loss.backward()

    assert graph_loss.data == pytest.approx(modular_loss, rel=1e-14)
    for p, w in zip(model.parameters(), weights, strict=True):
        np.testing.assert_allclose(w.grad, p.grad, rtol=1e-12, atol=1e-14, err_msg=p.name)
