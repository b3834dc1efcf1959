r"""The squashing functions, computed stably: the logistic sigmoid and the softmax.

The one place they are written; :mod:`minidl.layers` (``Sigmoid``, ``Softmax``, where they are
also importable), :mod:`minidl.losses`, :mod:`minidl.autodiff` and :mod:`minidl.data` use them.
"""

from __future__ import annotations

import numpy as np

from minidl._checks import as_floating


def sigmoid(x: np.ndarray) -> np.ndarray:
    r""":math:`\sigma(x) = 1/(1+e^{-x})`, evaluated as :math:`1/(1+e^{-|x|})` for :math:`x \ge 0`
    and :math:`e^{-|x|}/(1+e^{-|x|})` otherwise, so ``exp`` never overflows and tiny values keep
    their relative precision."""
    x = np.asarray(x)
    exp_neg_abs = np.exp(-np.abs(x))
    denominator = 1 + exp_neg_abs
    return np.where(x >= 0, 1 / denominator, exp_neg_abs / denominator)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    r""":math:`\operatorname{softmax}(x)_i = e^{x_i - m} / \sum_j e^{x_j - m}` with
    :math:`m = \max_j x_j`; the shift leaves the result unchanged and keeps ``exp`` finite."""
    x = as_floating(x)
    exp_shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return exp_shifted / exp_shifted.sum(axis=axis, keepdims=True)
