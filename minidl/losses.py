r"""Losses, averaged over the batch, with their gradients.

Each function returns ``(loss, grad)`` where ``grad`` is :math:`\partial\,\text{loss} /
\partial\,\text{first argument}` with the first argument's shape and dtype. Losses on
probabilities take logits :math:`z` and fuse the squashing into the loss, which is both simpler
and stable: the gradient of the cross-entropy with respect to the logits is prediction minus
target, and no ``exp`` can overflow, even for logits of :math:`\pm 10^4`.

The classes (:class:`MSE`, :class:`BinaryCrossEntropy`, :class:`SoftmaxCrossEntropy`) wrap the
functions for a training loop: ``forward(output, target)`` returns the loss and caches the
gradient that ``backward()`` returns; ``accuracy(output, target)`` is the fraction of correct
predictions (``None`` for regression).
"""

from __future__ import annotations

import numpy as np

from minidl._checks import as_floating
from minidl.functional import sigmoid


def mse(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Mean squared error over all :math:`M` entries (torch's ``MSELoss``):

    .. math::
        L = \frac{1}{M}\sum_i (p_i - t_i)^2, \qquad
        \frac{\partial L}{\partial p} = \frac{2}{M}(p - t).
    """
    pred = as_floating(pred)
    target = np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"mse: pred has shape {pred.shape} but target has shape {target.shape}")
    residual = pred - target.astype(pred.dtype, copy=False)
    return float(np.mean(residual * residual)), 2 / max(residual.size, 1) * residual


def binary_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Binary cross-entropy of :math:`\sigma(z)` against targets :math:`t \in [0, 1]`, from logits:

    .. math::
        L = \frac{1}{M}\sum_i \big[\max(z_i, 0) - z_i t_i + \log(1 + e^{-|z_i|})\big], \qquad
        \frac{\partial L}{\partial z} = \frac{1}{M}\big(\sigma(z) - t\big),

    the stable form of :math:`-t\log\sigma(z) - (1-t)\log(1-\sigma(z))` (torch's
    ``BCEWithLogitsLoss``), averaged over all :math:`M` entries. ``targets`` has the shape of
    ``logits``; for logits of shape ``(N, 1)`` targets of shape ``(N,)`` are accepted too.
    """
    logits = as_floating(logits)
    targets = _binary_targets("binary_cross_entropy", logits, targets)
    per_entry = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    grad = (sigmoid(logits) - targets) / max(logits.size, 1)
    return float(np.mean(per_entry)), grad


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Cross-entropy of :math:`\operatorname{softmax}(z)` against labels, from logits ``(N, K)``:

    .. math::
        L = -\frac{1}{N}\sum_n \sum_k t_{nk} \log\operatorname{softmax}(z_n)_k, \qquad
        \frac{\partial L}{\partial z} = \frac{1}{N}\big(\operatorname{softmax}(z) - t\big),

    with :math:`\log\operatorname{softmax}(z)_k = z_k - m - \log\sum_j e^{z_j - m}`,
    :math:`m = \max_j z_j` (log-sum-exp). ``labels`` are integer class indices of shape ``(N,)``
    (:math:`t` one-hot; integral floats are accepted) or probability rows of shape ``(N, K)``.
    """
    logits = as_floating(logits)
    labels = _check_classification("softmax_cross_entropy", logits, labels)
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp_shifted = np.exp(shifted)
    sum_exp = exp_shifted.sum(axis=1, keepdims=True)
    log_probs = shifted - np.log(sum_exp)
    probs = exp_shifted / sum_exp
    if labels.ndim == 1:
        rows = np.arange(n)
        loss = -float(np.sum(log_probs[rows, labels])) / n
        probs[rows, labels] -= 1  # softmax(z) - t for one-hot t
        return loss, probs / n
    targets = labels.astype(logits.dtype, copy=False)
    return -float(np.sum(targets * log_probs)) / n, (probs - targets) / n


class Loss:
    """A loss for a training loop: ``forward(output, target) -> float`` caches the gradient with
    respect to ``output`` that ``backward()`` returns."""

    def __init__(self) -> None:
        self._grad: np.ndarray | None = None

    def forward(self, output: np.ndarray, target: np.ndarray) -> float:
        loss, self._grad = self._loss_and_grad(output, target)
        return loss

    def backward(self) -> np.ndarray:
        if self._grad is None:
            raise RuntimeError(f"{self!r}: backward called before forward")
        return self._grad

    def __call__(self, output: np.ndarray, target: np.ndarray) -> float:
        return self.forward(output, target)

    def accuracy(self, output: np.ndarray, target: np.ndarray) -> float | None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _loss_and_grad(self, output: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError


class MSE(Loss):
    """:func:`mse` for a training loop; ``accuracy`` is ``None`` (regression)."""

    def _loss_and_grad(self, output: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        return mse(output, target)


class BinaryCrossEntropy(Loss):
    r""":func:`binary_cross_entropy` on logits; a prediction is positive when its logit is
    positive (:math:`\sigma(z) > 1/2`) and a target when it is at least 1/2."""

    def _loss_and_grad(self, output: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        return binary_cross_entropy(output, target)

    def accuracy(self, output: np.ndarray, target: np.ndarray) -> float:
        output = as_floating(output)
        target = _binary_targets("BinaryCrossEntropy.accuracy", output, target)
        return float(np.mean((output > 0) == (target >= 0.5)))


class SoftmaxCrossEntropy(Loss):
    """:func:`softmax_cross_entropy` on logits; the prediction is the arg-max logit and the
    target the label (the arg-max of a probability row)."""

    def _loss_and_grad(self, output: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        return softmax_cross_entropy(output, target)

    def accuracy(self, output: np.ndarray, target: np.ndarray) -> float:
        output = as_floating(output)
        labels = _check_classification("SoftmaxCrossEntropy.accuracy", output, target)
        if labels.ndim == 2:
            labels = labels.argmax(axis=1)
        return float(np.mean(output.argmax(axis=1) == labels))


def _binary_targets(where: str, logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``targets`` checked to lie in [0, 1], reshaped like ``logits`` and cast to their dtype."""
    targets = np.asarray(targets)
    if targets.shape != logits.shape:
        if logits.ndim == 2 and logits.shape[1] == 1 and targets.shape == logits.shape[:1]:
            targets = targets.reshape(logits.shape)
        else:
            raise ValueError(
                f"{where}: logits have shape {logits.shape} but targets have shape {targets.shape}"
            )
    if not (np.issubdtype(targets.dtype, np.number) or targets.dtype == np.bool_):
        raise ValueError(f"{where}: targets must be numeric, got dtype {targets.dtype}")
    if targets.size and not (targets.min() >= 0 and targets.max() <= 1):
        raise ValueError(
            f"{where}: targets must lie in [0, 1], got values in "
            f"[{targets.min()}, {targets.max()}] (shape {targets.shape})"
        )
    return targets.astype(logits.dtype, copy=False)


def _check_classification(where: str, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``labels`` as integer indices ``(N,)`` or probability rows ``(N, K)`` matching ``logits``."""
    labels = np.asarray(labels)
    if logits.ndim != 2:
        raise ValueError(f"{where}: expected logits of shape (N, K), got {logits.shape}")
    n, k = logits.shape
    if labels.ndim == 2:
        if labels.shape != logits.shape:
            raise ValueError(
                f"{where}: probability rows of shape {labels.shape} for logits of shape "
                f"{logits.shape}"
            )
        tolerance = np.sqrt(np.finfo(logits.dtype).eps)
        if labels.size and (
            labels.min() < 0 or not np.allclose(labels.sum(axis=1), 1, atol=tolerance)
        ):
            raise ValueError(
                f"{where}: rows of labels (shape {labels.shape}) must be probabilities: "
                "non-negative and summing to 1"
            )
        return labels
    if labels.shape != (n,):
        raise ValueError(
            f"{where}: expected {n} labels of shape ({n},) for logits of shape {logits.shape}, "
            f"got labels of shape {labels.shape}"
        )
    integral_floats = np.issubdtype(labels.dtype, np.floating) and bool(
        np.all(np.isfinite(labels) & (labels == np.round(labels)))
    )
    if not (np.issubdtype(labels.dtype, np.integer) or integral_floats):
        raise ValueError(
            f"{where}: labels must be integer class indices, got dtype {labels.dtype} "
            f"with values such as {labels[:3]}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(
            f"{where}: labels must be in [0, {k}) for logits of shape {logits.shape}, got values "
            f"in [{labels.min()}, {labels.max()}]"
        )
    return labels.astype(np.intp, copy=False)
