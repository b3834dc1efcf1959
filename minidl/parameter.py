"""A trainable array together with the gradient of the loss with respect to it."""

from __future__ import annotations

import numpy as np


class Parameter:
    """A named trainable array ``value`` and its gradient ``grad`` (same shape and dtype).

    Layers own their parameters; ``backward`` overwrites ``grad``. The optimizer wrapper
    (:class:`minidl.optim.Optimizer`) adds a step to ``value`` in place, so every reference a
    layer holds stays valid. ``regularize`` is ``False`` for biases and normalization shifts,
    which weight decay and L1/L2 penalties leave alone.
    """

    __slots__ = ("grad", "name", "regularize", "value")

    def __init__(self, value: np.ndarray, name: str = "", *, regularize: bool = True):
        value = np.asarray(value)
        if not np.issubdtype(value.dtype, np.floating):
            raise ValueError(
                f"Parameter {name!r}: value must be a floating array, got {value.dtype}"
            )
        self.value = value
        self.grad = np.zeros_like(value)
        self.name = name
        self.regularize = regularize

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def size(self) -> int:
        return self.value.size

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, shape={self.value.shape}, dtype={self.value.dtype})"
