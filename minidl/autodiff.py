r"""Expression-tree automatic differentiation over NumPy arrays.

An *expression tree* (computation graph) records how a value was computed. Every
:class:`Tensor` made by an operation remembers the tensors it was computed from (its
``parents``) and the operation's name (``op``). For

.. math::

    h = \tanh(x W + b), \qquad L = \operatorname{mean}\big((h - y)^2\big)

the leaves are :math:`x, W, b, y` and there is one node per operation: ``matmul``, ``+``,
``tanh``, ``-``, ``**2``, ``mean``. :func:`topological_order` lists the nodes so that a book
can print or draw the tree.

Reverse mode (backpropagation) applies the chain rule from the output back to the leaves.
Write :math:`\bar v = \partial L / \partial v` for the *adjoint* of a node :math:`v`. Start
with :math:`\bar L = 1`, visit the nodes in reverse topological order (a node after every node
that uses it), and let each node :math:`v = f(u_1, \dots, u_k)` pass its adjoint to its parents
through its local derivative:

.. math::

    \bar u_i \mathrel{+}= \bar v \, \frac{\partial f}{\partial u_i}
    \qquad \text{(a vector-Jacobian product).}

The ``+=`` is the multivariate chain rule: a node that feeds several others receives the sum
of the adjoints along all paths. One backward pass costs a small constant times the forward
pass, however many inputs there are, which is why training uses reverse mode.

Each operation defines its forward value and, right next to it, its local chain rule (a
closure ``chain_rule(grad_out)``), as in micrograd's ``engine.py``. Operations broadcast like
NumPy; :func:`unbroadcast` sums a gradient back to its operand's shape.

Gradient semantics: ``out.backward()`` first sets the ``grad`` of every node of ``out``'s
graph to zero, then accumulates within that one call. So each call computes fresh gradients
(nothing accumulates across calls), and a node used twice gets the sum over both uses
(:math:`d(x \cdot x)/dx = 2x`). A leaf shared by two graphs keeps the gradient of the last
``backward`` that reached it.

Data types: ``float32`` and ``float64`` arrays keep their dtype; Python numbers and lists
become ``float64`` (a Python number combined with a tensor takes the tensor's dtype, as in
NumPy); non-floating arrays are rejected.

References:
    D. E. Rumelhart, G. E. Hinton, R. J. Williams (1986). Learning representations by
    back-propagating errors. *Nature* 323, 533-536.

    A. G. Baydin, B. A. Pearlmutter, A. A. Radul, J. M. Siskind (2018). Automatic
    differentiation in machine learning: a survey. *JMLR* 18(153), 1-43.

    A. Karpathy, micrograd, ``micrograd/engine.py``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple
from numpy.typing import ArrayLike

from minidl import functional

__all__ = [
    "Tensor",
    "exp",
    "log",
    "log_softmax",
    "mse",
    "relu",
    "sigmoid",
    "softmax_cross_entropy",
    "tanh",
    "topological_order",
    "unbroadcast",
]

ChainRule = Callable[[np.ndarray], None]


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    r"""Sum ``grad`` back to ``shape``, undoing NumPy broadcasting.

    If an operand of shape ``shape`` was broadcast to ``grad.shape`` in the forward, each of its
    elements was used once per copy, so its gradient is the sum over the copies: over the
    leading axes broadcasting added and over the axes where ``shape`` has size 1.
    """
    grad = np.asarray(grad)
    added = grad.ndim - len(shape)
    if added:
        grad = grad.sum(axis=tuple(range(added)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _float_array(data: ArrayLike, where: str) -> np.ndarray:
    if isinstance(data, np.ndarray | np.generic):
        if not np.issubdtype(data.dtype, np.floating):
            raise ValueError(
                f"{where}: data must be a floating array, got dtype {data.dtype} "
                f"of shape {np.shape(data)}"
            )
        return np.asarray(data)
    try:
        array = np.asarray(data)
    except ValueError as err:
        raise ValueError(f"{where}: cannot convert {type(data).__name__} to an array") from err
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"{where}: expected numbers, got {type(data).__name__} of dtype {array.dtype}"
        )
    return array.astype(np.float64)


def _axes(where: str, axis: int | tuple[int, ...] | None, shape: tuple[int, ...]) -> tuple:
    if axis is None:
        return tuple(range(len(shape)))
    try:
        return normalize_axis_tuple(axis, len(shape))
    except (np.exceptions.AxisError, ValueError) as err:
        raise ValueError(f"{where}: bad axis {axis} for shape {shape}") from err


def _unreduce(grad: np.ndarray, shape: tuple[int, ...], axes: tuple, keepdims: bool) -> np.ndarray:
    """Spread the gradient of a reduction over ``axes`` back to the input ``shape``."""
    if not keepdims:
        grad = np.expand_dims(grad, axes)
    return np.broadcast_to(grad, shape)


class Tensor:
    """A node of the expression tree: an array ``data``, its gradient ``grad``, how it was made.

    Leaves are made by the user, ``Tensor(x, label="x")``; every other node by an operation,
    which records ``parents`` (its operand tensors), ``op`` (its name) and its local chain rule.
    ``grad`` is ``None`` until a ``backward`` call reaches the node, then an array with the
    shape and dtype of ``data``.
    """

    __slots__ = ("_chain_rule", "data", "grad", "label", "op", "parents")
    # Makes ``ndarray + Tensor`` return NotImplemented, so Python calls ``Tensor.__radd__``.
    __array_ufunc__ = None

    def __init__(self, data: ArrayLike, label: str = ""):
        self.data = _float_array(data, "Tensor")
        self.grad: np.ndarray | None = None
        self.parents: tuple[Tensor, ...] = ()
        self.op = ""
        self.label = label
        self._chain_rule: ChainRule | None = None

    @staticmethod
    def _node(data: np.ndarray, parents: tuple[Tensor, ...], op: str, chain_rule: ChainRule):
        out = Tensor(data)
        out.parents, out.op, out._chain_rule = parents, op, chain_rule
        return out

    def _operand(self, other: Tensor | ArrayLike) -> Tensor:
        """``other`` as a Tensor; a Python number takes this tensor's dtype."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, int | float):
            return Tensor(np.asarray(other, dtype=self.dtype))
        return Tensor(other)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def __repr__(self) -> str:
        if self.data.size <= 6:
            text = np.array2string(self.data, precision=4, separator=", ")
            parts = [" ".join(text.split())]
        else:
            parts = [f"shape={self.shape}"]
        if self.dtype != np.float64:
            parts.append(f"dtype={self.dtype}")
        if self.op:
            parts.append(f"op={self.op!r}")
        if self.label:
            parts.append(f"label={self.label!r}")
        return f"Tensor({', '.join(parts)})"

    # ----- elementwise arithmetic, with broadcasting -------------------------------------

    def _broadcast_with(self, other: Tensor | ArrayLike, op: str) -> Tensor:
        other = self._operand(other)
        try:
            np.broadcast_shapes(self.shape, other.shape)
        except ValueError:
            raise ValueError(
                f"Tensor {op}: shapes {self.shape} and {other.shape} do not broadcast"
            ) from None
        return other

    def __add__(self, other: Tensor | ArrayLike) -> Tensor:
        a, b = self, self._broadcast_with(other, "+")

        def chain_rule(g: np.ndarray) -> None:
            a.grad += unbroadcast(g, a.shape)
            b.grad += unbroadcast(g, b.shape)

        return Tensor._node(a.data + b.data, (a, b), "+", chain_rule)

    def __sub__(self, other: Tensor | ArrayLike) -> Tensor:
        a, b = self, self._broadcast_with(other, "-")

        def chain_rule(g: np.ndarray) -> None:
            a.grad += unbroadcast(g, a.shape)
            b.grad -= unbroadcast(g, b.shape)

        return Tensor._node(a.data - b.data, (a, b), "-", chain_rule)

    def __mul__(self, other: Tensor | ArrayLike) -> Tensor:
        a, b = self, self._broadcast_with(other, "*")

        def chain_rule(g: np.ndarray) -> None:
            a.grad += unbroadcast(g * b.data, a.shape)
            b.grad += unbroadcast(g * a.data, b.shape)

        return Tensor._node(a.data * b.data, (a, b), "*", chain_rule)

    def __truediv__(self, other: Tensor | ArrayLike) -> Tensor:
        a, b = self, self._broadcast_with(other, "/")
        quotient = a.data / b.data

        def chain_rule(g: np.ndarray) -> None:
            a.grad += unbroadcast(g / b.data, a.shape)
            b.grad -= unbroadcast(g * quotient / b.data, b.shape)

        return Tensor._node(quotient, (a, b), "/", chain_rule)

    def __radd__(self, other: ArrayLike) -> Tensor:
        return self._operand(other) + self

    def __rsub__(self, other: ArrayLike) -> Tensor:
        return self._operand(other) - self

    def __rmul__(self, other: ArrayLike) -> Tensor:
        return self._operand(other) * self

    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        return self._operand(other) / self

    def __neg__(self) -> Tensor:
        a = self

        def chain_rule(g: np.ndarray) -> None:
            a.grad -= g

        return Tensor._node(-a.data, (a,), "neg", chain_rule)

    def __pow__(self, exponent: float) -> Tensor:
        r""":math:`x^p` for a constant number :math:`p`; :math:`\partial/\partial x = p x^{p-1}`."""
        if not isinstance(exponent, numbers.Real):
            raise ValueError(
                f"Tensor **: exponent must be a constant number, got {type(exponent).__name__}"
            )
        a, p = self, float(exponent)

        def chain_rule(g: np.ndarray) -> None:
            a.grad += g * p * a.data ** (p - 1)

        return Tensor._node(a.data**p, (a,), f"**{exponent}", chain_rule)

    # ----- matrix product ----------------------------------------------------------------

    def __matmul__(self, other: Tensor | ArrayLike) -> Tensor:
        r"""Matrix product as ``np.matmul``: 2-D, batched (broadcast over leading axes), 1-D.

        For :math:`C = AB`: :math:`\bar A = \bar C B^\top` and :math:`\bar B = A^\top \bar C`.
        """
        a, b = self, self._operand(other)
        try:
            product = np.matmul(a.data, b.data)
        except ValueError:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are incompatible") from None
        # A 1-D operand is a row (left) or column (right) vector whose axis matmul drops.
        a2 = a.data[None, :] if a.ndim == 1 else a.data
        b2 = b.data[:, None] if b.ndim == 1 else b.data

        def chain_rule(g: np.ndarray) -> None:
            if b.ndim == 1:
                g = np.expand_dims(g, -1)
            if a.ndim == 1:
                g = np.expand_dims(g, -2)
            grad_a = unbroadcast(g @ np.swapaxes(b2, -1, -2), a2.shape)
            grad_b = unbroadcast(np.swapaxes(a2, -1, -2) @ g, b2.shape)
            a.grad += grad_a.reshape(a.shape)
            b.grad += grad_b.reshape(b.shape)

        return Tensor._node(product, (a, b), "matmul", chain_rule)

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        return self._operand(other) @ self

    # ----- reductions and shape changes --------------------------------------------------

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (all axes if ``None``); each input element gets the output's grad."""
        a, axes = self, _axes("sum", axis, self.shape)

        def chain_rule(g: np.ndarray) -> None:
            a.grad += _unreduce(g, a.shape, axes, keepdims)

        return Tensor._node(a.data.sum(axis=axes, keepdims=keepdims), (a,), "sum", chain_rule)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        r"""Mean over ``axis`` (all axes if ``None``); :math:`\partial/\partial x_i = 1/n`."""
        a, axes = self, _axes("mean", axis, self.shape)
        count = int(np.prod([a.shape[i] for i in axes]))

        def chain_rule(g: np.ndarray) -> None:
            a.grad += _unreduce(g, a.shape, axes, keepdims) / count

        return Tensor._node(a.data.mean(axis=axes, keepdims=keepdims), (a,), "mean", chain_rule)

    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        """``t.reshape(2, 6)`` or ``t.reshape((2, 6))``; the gradient is reshaped back."""
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        a = self
        try:
            reshaped = a.data.reshape(shape)
        except (TypeError, ValueError):
            raise ValueError(f"reshape: cannot reshape {a.shape} into {shape}") from None

        def chain_rule(g: np.ndarray) -> None:
            a.grad += g.reshape(a.shape)

        return Tensor._node(reshaped, (a,), "reshape", chain_rule)

    def transpose(self, *axes: int | tuple[int, ...]) -> Tensor:
        """Permute the axes (reverse them if none are given); the gradient is permuted back."""
        if len(axes) == 1 and isinstance(axes[0], tuple | list):
            axes = tuple(axes[0])
        a = self
        if not axes:
            axes = tuple(reversed(range(a.ndim)))
        try:
            perm = normalize_axis_tuple(axes, a.ndim)
        except (np.exceptions.AxisError, ValueError):
            perm = ()
        if len(perm) != a.ndim:
            raise ValueError(f"transpose: axes {axes} are not a permutation for shape {a.shape}")
        inverse = tuple(int(i) for i in np.argsort(perm))

        def chain_rule(g: np.ndarray) -> None:
            a.grad += g.transpose(inverse)

        return Tensor._node(a.data.transpose(perm), (a,), "transpose", chain_rule)

    @property
    def T(self) -> Tensor:
        """The transpose with all axes reversed."""
        return self.transpose()

    # ----- elementwise functions ---------------------------------------------------------

    def exp(self) -> Tensor:
        r""":math:`e^x`; :math:`\partial/\partial x = e^x`."""
        a, out = self, np.exp(self.data)

        def chain_rule(g: np.ndarray) -> None:
            a.grad += g * out

        return Tensor._node(out, (a,), "exp", chain_rule)

    def log(self) -> Tensor:
        r""":math:`\ln x`; :math:`\partial/\partial x = 1/x`."""
        a = self

        def chain_rule(g: np.ndarray) -> None:
            a.grad += g / a.data

        return Tensor._node(np.log(a.data), (a,), "log", chain_rule)

    def tanh(self) -> Tensor:
        r""":math:`\tanh x`; :math:`\partial/\partial x = 1 - \tanh^2 x`."""
        a, out = self, np.tanh(self.data)

        def chain_rule(g: np.ndarray) -> None:
            a.grad += g * (1 - out**2)

        return Tensor._node(out, (a,), "tanh", chain_rule)

    def sigmoid(self) -> Tensor:
        r""":math:`\sigma(x) = 1/(1 + e^{-x})`; :math:`\partial/\partial x = \sigma(1 - \sigma)`.

        Computed stably by :func:`minidl.functional.sigmoid`.
        """
        a = self
        out = functional.sigmoid(a.data)

        def chain_rule(g: np.ndarray) -> None:
            a.grad += g * out * (1 - out)

        return Tensor._node(out, (a,), "sigmoid", chain_rule)

    def relu(self) -> Tensor:
        r""":math:`\max(x, 0)`; :math:`\partial/\partial x = [x > 0]` (0 at the kink)."""
        a = self

        def chain_rule(g: np.ndarray) -> None:
            a.grad += g * (a.data > 0)

        return Tensor._node(np.maximum(a.data, 0), (a,), "relu", chain_rule)

    def log_softmax(self, axis: int = -1) -> Tensor:
        r"""Log-probabilities :math:`x_i - \log \sum_j e^{x_j}` along ``axis``.

        Computed as :math:`s_i - \log \sum_j e^{s_j}` with :math:`s = x - \max_j x_j`, so no
        exponential overflows. Backward:
        :math:`\bar x_i = \bar y_i - \operatorname{softmax}(x)_i \sum_j \bar y_j`.
        """
        a = self
        try:
            axis = normalize_axis_index(axis, a.ndim)
        except np.exceptions.AxisError:
            raise ValueError(f"log_softmax: bad axis {axis} for shape {a.shape}") from None
        shifted = a.data - a.data.max(axis=axis, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

        def chain_rule(g: np.ndarray) -> None:
            a.grad += g - np.exp(out) * g.sum(axis=axis, keepdims=True)

        return Tensor._node(out, (a,), "log_softmax", chain_rule)

    # ----- reverse mode ------------------------------------------------------------------

    def backward(self, grad: ArrayLike | None = None) -> None:
        """Fill ``grad`` of every node of this tensor's graph with d(self)/d(node).

        The seed is ``grad`` (this tensor's shape) or 1 for a scalar output. All gradients of
        the graph are reset first, so calling ``backward`` twice gives the same gradients;
        within one call the contributions of all paths to a node add up.
        """
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward: output of shape {self.shape} is not a scalar; "
                    f"pass grad of shape {self.shape}"
                )
            seed = np.ones_like(self.data)
        else:
            seed = np.array(grad, dtype=self.dtype)
            if seed.shape != self.shape:
                raise ValueError(
                    f"backward: grad of shape {seed.shape} does not match output of shape "
                    f"{self.shape}"
                )
        order = topological_order(self)
        for node in order:
            node.grad = np.zeros_like(node.data)
        self.grad = seed
        for node in reversed(order):
            if node._chain_rule is not None:
                node._chain_rule(node.grad)


def topological_order(t: Tensor) -> list[Tensor]:
    """Every node of ``t``'s graph once, each after all its parents; ``t`` comes last.

    An iterative depth-first search, so graphs deeper than Python's recursion limit work.
    """
    order: list[Tensor] = []
    visited: set[Tensor] = set()
    stack: list[tuple[Tensor, bool]] = [(t, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif node not in visited:
            visited.add(node)
            stack.append((node, True))
            stack.extend((p, False) for p in node.parents if p not in visited)
    return order


def exp(t: Tensor) -> Tensor:
    """Elementwise :math:`e^t`; see :meth:`Tensor.exp`."""
    return t.exp()


def log(t: Tensor) -> Tensor:
    """Elementwise natural logarithm; see :meth:`Tensor.log`."""
    return t.log()


def tanh(t: Tensor) -> Tensor:
    """Elementwise hyperbolic tangent; see :meth:`Tensor.tanh`."""
    return t.tanh()


def sigmoid(t: Tensor) -> Tensor:
    """Elementwise logistic sigmoid, stable for large :math:`|t|`; see :meth:`Tensor.sigmoid`."""
    return t.sigmoid()


def relu(t: Tensor) -> Tensor:
    """Elementwise :math:`\\max(t, 0)`; see :meth:`Tensor.relu`."""
    return t.relu()


def log_softmax(t: Tensor, axis: int = -1) -> Tensor:
    """Stable log-softmax along ``axis``; see :meth:`Tensor.log_softmax`."""
    return t.log_softmax(axis)


def softmax_cross_entropy(logits: Tensor, labels: ArrayLike) -> Tensor:
    r"""Mean cross-entropy of softmax(logits) against integer class labels.

    .. math::

        L = -\frac{1}{N} \sum_{n=1}^{N} \log \operatorname{softmax}(z_n)_{y_n}

    for logits :math:`z` of shape ``(N, C)`` and labels :math:`y_n \in \{0, \dots, C-1\}`.
    Built by composing operations, so the graph shows each step: the labels become a constant
    one-hot mask that picks :math:`\log \operatorname{softmax}(z_n)_{y_n}` out of
    :func:`log_softmax`. Backpropagating through the composition yields the familiar
    :math:`\bar z = (\operatorname{softmax}(z) - \operatorname{onehot}(y)) / N`.
    """
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise ValueError(
            f"softmax_cross_entropy: expected logits of shape (N, C) with N >= 1, "
            f"got {logits.shape}"
        )
    n, classes = logits.shape
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"softmax_cross_entropy: labels must be integers, got dtype {labels.dtype}"
        )
    if labels.shape != (n,):
        raise ValueError(
            f"softmax_cross_entropy: expected labels of shape ({n},) for logits of shape "
            f"{logits.shape}, got {labels.shape}"
        )
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(
            f"softmax_cross_entropy: labels must lie in [0, {classes}) for logits of shape "
            f"{logits.shape}, got values from {labels.min()} to {labels.max()}"
        )
    one_hot = np.zeros_like(logits.data)
    one_hot[np.arange(n), labels] = 1
    picked = log_softmax(logits, axis=-1) * Tensor(one_hot, label="one_hot(labels)")
    return -picked.sum() / n


def mse(pred: Tensor, target: Tensor | ArrayLike) -> Tensor:
    r"""Mean squared error over all elements, :math:`\frac{1}{n} \sum_i (p_i - t_i)^2`.

    ``pred`` and ``target`` must have the same shape: broadcasting ``(N, 1)`` against ``(N,)``
    would silently average over an ``(N, N)`` matrix.
    """
    target = pred._operand(target)
    if pred.shape != target.shape:
        raise ValueError(f"mse: pred shape {pred.shape} and target shape {target.shape} differ")
    return ((pred - target) ** 2).mean()
