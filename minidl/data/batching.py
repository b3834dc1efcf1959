r"""Mini-batches for one epoch of batch, stochastic or mini-batch gradient descent.

An epoch visits every sample once. With ``shuffle`` the visiting order is a fresh random
permutation for each epoch, drawn from the caller's generator: each epoch differs, and the whole
sequence of epochs is reproducible from the seed. Mini-batch gradients estimate the full
gradient :math:`\frac1N \sum_{n=1}^N \nabla \ell_n` with a variance that falls as :math:`1/|B|`
(Bottou, Curtis & Nocedal, "Optimization Methods for Large-Scale Machine Learning", 2018).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import ArrayLike

from minidl._checks import positive_int


def batches(
    X: ArrayLike,
    y: ArrayLike,
    batch_size: int | None,
    *,
    rng: np.random.Generator | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(X_batch, y_batch)`` pairs covering the ``N`` samples once (one epoch).

    ``batch_size=None`` gives one batch of all ``N`` samples (batch gradient descent), ``1`` one
    sample at a time (stochastic gradient descent); otherwise every batch has ``batch_size``
    samples except a smaller last one, which ``drop_last`` leaves out. A ``batch_size`` above
    ``N`` is an error, not silently clamped. ``shuffle`` (the default) needs ``rng``; without it
    the samples come in their stored order. Batches are copies, so changing one leaves ``X``
    and ``y`` alone. Arguments are checked when ``batches`` is called, not at the first batch.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0 or len(X) != len(y):
        raise ValueError(
            f"batches: X and y must hold the same number of samples, got X of shape {X.shape} "
            f"and y of shape {y.shape}"
        )
    size = _batch_size("batches", len(y), batch_size)
    if shuffle and rng is None:
        raise ValueError("batches: shuffle=True needs rng, a numpy.random.Generator")
    order = rng.permutation(len(y)) if shuffle else np.arange(len(y))
    stop = len(y) - len(y) % size if drop_last else len(y)
    return ((X[order[i : i + size]], y[order[i : i + size]]) for i in range(0, stop, size))


def num_batches(n: int, batch_size: int | None, drop_last: bool = False) -> int:
    """The number of batches :func:`batches` yields for ``n`` samples."""
    n = positive_int("num_batches", "n", n)
    size = _batch_size("num_batches", n, batch_size)
    return n // size if drop_last else -(-n // size)


def _batch_size(caller: str, n: int, batch_size: int | None) -> int:
    if n == 0:
        raise ValueError(f"{caller}: got an empty dataset")
    if batch_size is None:
        return n
    size = positive_int(caller, "batch_size", batch_size)
    if size > n:
        raise ValueError(f"{caller}: batch_size must be at most the {n} samples, got {size}")
    return size
