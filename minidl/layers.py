r"""Modular layers: each box computes its output (fprop) and, given
:math:`\partial L/\partial y`, the gradient with respect to its input (bprop).

A layer :math:`y = f(x; \theta)` caches in ``forward`` what ``backward`` needs, and ``backward``
applies the chain rule locally:

.. math::
    \frac{\partial L}{\partial x} = \Big(\frac{\partial y}{\partial x}\Big)^{\top}
    \frac{\partial L}{\partial y}, \qquad
    \frac{\partial L}{\partial \theta} = \Big(\frac{\partial y}{\partial \theta}\Big)^{\top}
    \frac{\partial L}{\partial y}.

``backward`` returns the first and writes the second into each :class:`~minidl.Parameter`'s
``grad`` (a new array every call: gradients are overwritten, never accumulated). Inputs are
batches: the first axis indexes examples and no layer loops over them in Python. Layers with
parameters cast their input to the parameters' dtype, so a float32 network stays float32.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Self

import numpy as np
from numpy.typing import DTypeLike

from minidl._checks import as_floating, check_generator, positive_int
from minidl.functional import sigmoid, softmax
from minidl.init import glorot_uniform, he_normal, zeros
from minidl.parameter import Parameter

Initializer = Callable[..., np.ndarray]


class Layer:
    """Base class: ``forward(x) -> y``, ``backward(grad_y) -> grad_x``, ``parameters()``.

    ``training`` selects the behaviour of layers that differ between training and inference
    (:class:`Dropout`, :class:`BatchNorm`); ``train()`` and ``eval()`` set it and return the layer.
    """

    def __init__(self) -> None:
        self.training = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def parameters(self) -> list[Parameter]:
        return []

    def train(self, mode: bool = True) -> Self:
        self.training = bool(mode)
        return self

    def eval(self) -> Self:
        return self.train(False)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _checked_grad(self, grad_y: np.ndarray, output_shape: tuple[int, ...] | None) -> np.ndarray:
        """``grad_y`` as an array after checking it matches the cached output shape."""
        if output_shape is None:
            raise RuntimeError(f"{self!r}: backward called before forward")
        grad_y = np.asarray(grad_y)
        if grad_y.shape != output_shape:
            raise ValueError(
                f"{self!r}: expected a gradient of the output's shape {output_shape}, "
                f"got {grad_y.shape}"
            )
        return grad_y


class Linear(Layer):
    r"""Affine map :math:`y = x W^{\top} + b` on a batch :math:`x` of shape ``(N, in_features)``.

    ``W`` has shape ``(out_features, in_features)`` (torch's and the book's :math:`Wx`
    convention) and is drawn by ``init(shape, rng=rng, dtype=dtype)``; ``b`` starts at zero and is
    not regularized. Backward:

    .. math::
        \frac{\partial L}{\partial x} = G W, \quad
        \frac{\partial L}{\partial W} = G^{\top} x, \quad
        \frac{\partial L}{\partial b} = \textstyle\sum_n G_n, \qquad G = \partial L/\partial y.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rng: np.random.Generator,
        init: Initializer = glorot_uniform,
        bias: bool = True,
        dtype: DTypeLike = np.float64,
    ):
        super().__init__()
        self.in_features = positive_int("Linear", "in_features", in_features)
        self.out_features = positive_int("Linear", "out_features", out_features)
        self.W = Parameter(init((self.out_features, self.in_features), rng=rng, dtype=dtype), "W")
        self.b = (
            Parameter(zeros((self.out_features,), dtype=dtype), "b", regularize=False)
            if bias
            else None
        )
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.in_features}), got {x.shape}"
            )
        weight = self.W.value
        x = x.astype(weight.dtype, copy=False)
        y = x @ weight.T
        if self.b is not None:
            y += self.b.value
        self._x = x
        return y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        return self.backward_parameters(grad_y) @ self.W.value

    def backward_parameters(self, grad_y: np.ndarray) -> np.ndarray:
        """Write the gradients of ``W`` and ``b`` only; return ``grad_y`` as checked."""
        x = self._x
        output_shape = None if x is None else (x.shape[0], self.out_features)
        grad_y = self._checked_grad(grad_y, output_shape).astype(self.W.value.dtype, copy=False)
        self.W.grad = grad_y.T @ x
        if self.b is not None:
            self.b.grad = grad_y.sum(axis=0)
        return grad_y

    def parameters(self) -> list[Parameter]:
        return [self.W] if self.b is None else [self.W, self.b]

    def __repr__(self) -> str:
        no_bias = "" if self.b is not None else ", bias=False"
        return f"Linear({self.in_features}->{self.out_features}{no_bias})"


class Sigmoid(Layer):
    r""":math:`y = \sigma(x)` (see :func:`sigmoid`); backward :math:`g\, y (1-y)`."""

    def __init__(self) -> None:
        super().__init__()
        self._y: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = sigmoid(x)
        return self._y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        y = self._y
        grad_y = self._checked_grad(grad_y, None if y is None else y.shape)
        return grad_y.astype(y.dtype, copy=False) * y * (1 - y)


class Tanh(Layer):
    r""":math:`y = \tanh(x)`; backward :math:`g\,(1-y^2)`."""

    def __init__(self) -> None:
        super().__init__()
        self._y: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = np.tanh(x)
        return self._y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        y = self._y
        grad_y = self._checked_grad(grad_y, None if y is None else y.shape)
        return grad_y.astype(y.dtype, copy=False) * (1 - y * y)


class ReLU(Layer):
    r""":math:`y = \max(x, 0)`; backward :math:`g \cdot [x > 0]` (the subgradient 0 at 0)."""

    def __init__(self) -> None:
        super().__init__()
        self._positive: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        self._positive = x > 0
        return np.maximum(x, 0)

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        positive = self._positive
        grad_y = self._checked_grad(grad_y, None if positive is None else positive.shape)
        return grad_y * positive


class Softmax(Layer):
    r""":math:`y = \operatorname{softmax}(x)` along ``axis`` (see :func:`softmax`).

    Backward is the Jacobian-vector product with :math:`\partial y_i/\partial x_j =
    y_i(\delta_{ij} - y_j)`, without forming the Jacobian:
    :math:`\partial L/\partial x = y \odot (g - \sum_j g_j y_j)`.
    For classification prefer :class:`minidl.losses.SoftmaxCrossEntropy` on logits, which fuses
    the two and is stable.
    """

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis
        self._y: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if not -x.ndim <= self.axis < x.ndim:
            raise ValueError(f"{self!r}: axis {self.axis} out of range for input shape {x.shape}")
        self._y = softmax(x, axis=self.axis)
        return self._y

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        y = self._y
        grad_y = self._checked_grad(grad_y, None if y is None else y.shape)
        return y * (grad_y - np.sum(grad_y * y, axis=self.axis, keepdims=True))

    def __repr__(self) -> str:
        return f"Softmax(axis={self.axis})"


class Dropout(Layer):
    r"""Inverted dropout (Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov, 2014).

    In training each entry is kept with probability :math:`1-p` and scaled by :math:`1/(1-p)`:
    :math:`y = x \odot m / (1-p)`, :math:`m_i \sim \text{Bernoulli}(1-p)`, so
    :math:`\mathbb{E}[y] = x` and evaluation is the identity. Backward multiplies by the same
    mask. The mask comes from ``rng``; re-seed (or rewind) it to reproduce a mask.
    """

    def __init__(self, p: float, *, rng: np.random.Generator) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        check_generator("Dropout", rng)
        self.p = float(p)
        self.rng = rng
        self._mask: np.ndarray | None = None
        self._shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_floating(x)
        self._shape = x.shape
        if not self.training or self.p == 0:
            self._mask = None
            return x
        uniform_dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
        keep = self.rng.random(x.shape, dtype=uniform_dtype) >= self.p
        self._mask = keep.astype(x.dtype)
        self._mask *= 1 / (1 - self.p)
        return x * self._mask

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        grad_y = self._checked_grad(grad_y, self._shape)
        return grad_y if self._mask is None else grad_y * self._mask

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


class BatchNorm(Layer):
    r"""Batch normalization over the batch axis of an ``(N, D)`` input (Ioffe & Szegedy, 2015).

    .. math::
        \hat x = \frac{x - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}, \qquad y = \gamma \odot \hat x + b

    (the shift :math:`b` is the attribute ``beta``, the paper's :math:`\beta`). Training uses the
    batch mean :math:`\mu_B` and biased variance :math:`\sigma_B^2`, and updates the running
    estimates as torch does (unbiased variance there), with :math:`\tau` = ``momentum``:

    .. math::
        \mu_{\mathrm{run}} \leftarrow (1-\tau)\mu_{\mathrm{run}} + \tau\mu_B, \qquad
        \sigma^2_{\mathrm{run}} \leftarrow (1-\tau)\sigma^2_{\mathrm{run}} + \tau\sigma_B^2 N/(N-1).

    Evaluation normalizes with the running estimates. The training backward, in compact form,

    .. math::
        \frac{\partial L}{\partial x} = \frac{\gamma}{N\sqrt{\sigma_B^2+\epsilon}}
        \Big(N g - \sum_n g_n - \hat x \odot \sum_n g_n \odot \hat x_n\Big),

    reuses :math:`\partial L/\partial b = \sum_n g_n` and
    :math:`\partial L/\partial\gamma = \sum_n g_n \odot \hat x_n`.
    """

    def __init__(
        self,
        num_features: int,
        *,
        momentum: float = 0.1,
        eps: float = 1e-5,
        dtype: DTypeLike = np.float64,
    ):
        super().__init__()
        num_features = positive_int("BatchNorm", "num_features", num_features)
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm: momentum must be in [0, 1], got {momentum}")
        if not eps > 0:
            raise ValueError(f"BatchNorm: eps must be positive, got {eps}")
        self.num_features = num_features
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.gamma = Parameter(np.ones(num_features, dtype=dtype), "gamma", regularize=False)
        self.beta = Parameter(np.zeros(num_features, dtype=dtype), "beta", regularize=False)
        self.running_mean = np.zeros(num_features, dtype=dtype)
        self.running_var = np.ones(num_features, dtype=dtype)
        self._x_hat: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None
        self._batch_statistics = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.num_features}), got {x.shape}"
            )
        x = x.astype(self.gamma.value.dtype, copy=False)
        if self.training:
            n = x.shape[0]
            if n < 2:
                raise ValueError(f"{self!r}: training needs a batch of at least 2, got {x.shape}")
            mean = x.mean(axis=0)
            centered = x - mean
            var = np.einsum("nd,nd->d", centered, centered) / n
            self.running_mean *= 1 - self.momentum
            self.running_mean += self.momentum * mean
            self.running_var *= 1 - self.momentum
            self.running_var += (self.momentum * n / (n - 1)) * var
        else:
            centered = x - self.running_mean
            var = self.running_var
        inv_std = 1 / np.sqrt(var + self.eps)
        x_hat = np.multiply(centered, inv_std, out=centered)
        self._x_hat, self._inv_std, self._batch_statistics = x_hat, inv_std, self.training
        return x_hat * self.gamma.value + self.beta.value

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x_hat = self._x_hat
        gamma = self.gamma.value
        grad_y = self._checked_grad(grad_y, None if x_hat is None else x_hat.shape)
        grad_y = grad_y.astype(gamma.dtype, copy=False)
        self.beta.grad = grad_y.sum(axis=0)
        self.gamma.grad = np.einsum("nd,nd->d", grad_y, x_hat)
        scale = gamma * self._inv_std
        if not self._batch_statistics:
            return grad_y * scale
        n = grad_y.shape[0]
        return scale / n * (n * grad_y - self.beta.grad - x_hat * self.gamma.grad)

    def parameters(self) -> list[Parameter]:
        return [self.gamma, self.beta]

    def __repr__(self) -> str:
        return f"BatchNorm({self.num_features})"


class LayerNorm(Layer):
    r"""Layer normalization over the last axis (Ba, Kiros & Hinton, 2016).

    .. math::
        \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad y = \gamma \odot \hat x + \beta,

    with the mean and biased variance of each example's ``num_features`` entries, in training and
    evaluation alike. Backward, with :math:`h = g \odot \gamma` and :math:`D` features:

    .. math::
        \frac{\partial L}{\partial x} = \frac{1}{D\sqrt{\sigma^2+\epsilon}}
        \Big(D h - \sum_d h_d - \hat x \sum_d h_d \hat x_d\Big).
    """

    def __init__(self, num_features: int, *, eps: float = 1e-5, dtype: DTypeLike = np.float64):
        super().__init__()
        num_features = positive_int("LayerNorm", "num_features", num_features)
        if not eps > 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps}")
        self.num_features = num_features
        self.eps = float(eps)
        self.gamma = Parameter(np.ones(num_features, dtype=dtype), "gamma", regularize=False)
        self.beta = Parameter(np.zeros(num_features, dtype=dtype), "beta", regularize=False)
        self._x_hat: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim < 1 or x.shape[-1] != self.num_features:
            raise ValueError(
                f"{self!r}: expected input of shape (..., {self.num_features}), got {x.shape}"
            )
        x = x.astype(self.gamma.value.dtype, copy=False)
        centered = x - x.mean(axis=-1, keepdims=True)
        var = np.mean(centered * centered, axis=-1, keepdims=True)
        self._inv_std = 1 / np.sqrt(var + self.eps)
        self._x_hat = np.multiply(centered, self._inv_std, out=centered)
        return self._x_hat * self.gamma.value + self.beta.value

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        x_hat = self._x_hat
        grad_y = self._checked_grad(grad_y, None if x_hat is None else x_hat.shape)
        grad_y = grad_y.astype(self.gamma.value.dtype, copy=False)
        d = self.num_features
        self.beta.grad = grad_y.reshape(-1, d).sum(axis=0)
        self.gamma.grad = (grad_y * x_hat).reshape(-1, d).sum(axis=0)
        h = grad_y * self.gamma.value
        sum_h = np.sum(h, axis=-1, keepdims=True)
        sum_h_x_hat = np.sum(h * x_hat, axis=-1, keepdims=True)
        return self._inv_std / d * (d * h - sum_h - x_hat * sum_h_x_hat)

    def parameters(self) -> list[Parameter]:
        return [self.gamma, self.beta]

    def __repr__(self) -> str:
        return f"LayerNorm({self.num_features})"


class Sequential(Layer):
    """A chain of layers: ``forward`` runs them in order, ``backward`` in reverse.

    At construction each child's parameter names get the child's index as a prefix ("0.W",
    "0.b", "2.W", ...), so statistics can be grouped per layer. ``train()``/``eval()`` propagate
    to every child. Indexing returns a child (a tuple of children for a slice).
    """

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not a Layer")
            for parameter in layer.parameters():
                parameter.name = f"{i}.{parameter.name}"
        self.layers: tuple[Layer, ...] = layers

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_y: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate through every layer. With ``input_grad=False`` (what training needs)
        a first :class:`Linear` layer computes only its parameters' gradients and ``None`` is
        returned: the gradient with respect to the data is never used, and skipping its
        matrix product saves a fifth of a step of a wide first layer (torch skips it too)."""
        first, *rest = self.layers
        for layer in reversed(rest):
            grad_y = layer.backward(grad_y)
        if not input_grad and isinstance(first, Linear):
            first.backward_parameters(grad_y)
            return None
        return first.backward(grad_y)

    def parameters(self) -> list[Parameter]:
        return [parameter for layer in self.layers for parameter in layer.parameters()]

    def train(self, mode: bool = True) -> Self:
        super().train(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int | slice) -> Layer | tuple[Layer, ...]:
        return self.layers[index]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __repr__(self) -> str:
        children = [
            f"  ({i}): " + repr(layer).replace("\n", "\n  ") for i, layer in enumerate(self.layers)
        ]
        return "\n".join(["Sequential(", *children, ")"])


_ACTIVATIONS: dict[str, type[Layer]] = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}


def mlp(
    sizes: Iterable[int],
    *,
    rng: np.random.Generator,
    activation: str = "relu",
    dtype: DTypeLike = np.float64,
    init: Initializer | None = None,
) -> Sequential:
    """A multilayer perceptron ``Linear(sizes[0]->sizes[1])``, activation, ...,
    ``Linear(sizes[-2]->sizes[-1])``, with no activation after the last layer (it outputs logits).

    ``init`` defaults to :func:`~minidl.init.he_normal` for ReLU and
    :func:`~minidl.init.glorot_uniform` for tanh and sigmoid.
    """
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"mlp: need at least an input and an output size, got sizes={sizes}")
    if activation not in _ACTIVATIONS:
        raise ValueError(
            f"mlp: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
        )
    if init is None:
        init = he_normal if activation == "relu" else glorot_uniform
    layers: list[Layer] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        if i > 0:
            layers.append(_ACTIVATIONS[activation]())
        layers.append(Linear(n_in, n_out, rng=rng, init=init, dtype=dtype))
    return Sequential(*layers)
