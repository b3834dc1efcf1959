r"""Labelled datasets: the lectures' toy problems, synthetic benchmarks and real handwritten digits.

Every dataset is a :class:`Dataset` ``(X, y)`` with float64 features ``X`` of shape ``(N, d)``
and labels ``y`` of shape ``(N,)``: int64 class labels ``0, 1, ...`` for classification, float64
targets for regression. The random generators take an explicit ``numpy.random.Generator`` and
return the samples in a random order, so slicing never sees one class only.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from minidl._checks import positive_int
from minidl.functional import sigmoid


class Dataset(NamedTuple):
    """Features ``X`` of shape ``(N, d)`` and labels or targets ``y`` of shape ``(N,)``."""

    X: np.ndarray
    y: np.ndarray


class LinearModelData(NamedTuple):
    r"""Samples ``X, y`` of a linear model together with its true parameters :math:`w, b`."""

    X: np.ndarray
    y: np.ndarray
    w_true: np.ndarray
    bias_true: float


def brady_points(spoiler: float | None = None, *, signed: bool = False) -> Dataset:
    r"""The example of Brady, Raghavan & Slawny (1989) where backpropagation fails to separate.

    The three points :math:`(1, 0) \mapsto +1`, :math:`(0, 1) \mapsto +1`,
    :math:`(-1, 0) \mapsto -1`, plus, when ``spoiler=t`` is given, the spoiler
    :math:`(0, -t) \mapsto +1`. Both sets are linearly separable (with a bias, e.g.
    :math:`x > -\tfrac12`; the spoiler set not through the origin). For large :math:`t` the
    perceptron rule finds a separator, while a sigmoid unit trained by gradient descent on the
    squared error stays near the 3-point solution and misclassifies the spoiler.

    Labels are ``{0, 1}`` with class 1 meaning :math:`+1`, or :math:`\pm 1` with
    ``signed=True``; both int64.

    Reference: M. L. Brady, R. Raghavan and J. Slawny, "Back propagation fails to separate
    where perceptrons succeed", *IEEE Trans. Circuits and Systems* 36(5):665-674, 1989.
    """
    X = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]
    y = [1, 1, 0]
    if spoiler is not None:
        if not (np.isfinite(spoiler) and spoiler > 0):
            raise ValueError(f"brady_points: spoiler distance t must be positive, got {spoiler}")
        X.append([0.0, -float(spoiler)])
        y.append(1)
    y = np.array(y, dtype=np.int64)
    return Dataset(np.array(X), 2 * y - 1 if signed else y)


def two_moons(n_per_class: int, *, rng: np.random.Generator, noise: float = 0.1) -> Dataset:
    r"""Two interleaved half circles, not linearly separable.

    Class 0 lies on the upper unit half circle :math:`(\cos\theta, \sin\theta)`, class 1 on
    :math:`(1 - \cos\theta, \tfrac12 - \sin\theta)`, :math:`\theta \in [0, \pi]` evenly spaced;
    ``noise`` is the standard deviation of Gaussian noise added to each coordinate. The tip
    :math:`(0, \tfrac12)` of class 1 lies inside the convex hull of class 0. Same construction as
    ``sklearn.datasets.make_moons``.
    """
    n = positive_int("two_moons", "n_per_class", n_per_class)
    _check_noise("two_moons", noise)
    theta = np.linspace(0.0, np.pi, n)
    upper = np.column_stack([np.cos(theta), np.sin(theta)])
    lower = np.column_stack([1.0 - np.cos(theta), 0.5 - np.sin(theta)])
    X = np.concatenate([upper, lower]) + noise * rng.standard_normal((2 * n, 2))
    return _shuffled(X, np.repeat(np.array([0, 1]), n), rng)


def two_spirals(
    n_per_class: int, *, rng: np.random.Generator, noise: float = 0.0, turns: float = 1.5
) -> Dataset:
    r"""Two interleaved spirals, the classic hard benchmark of Lang & Witbrock (1988).

    Class 0 is the spiral :math:`r(\cos\phi, \sin\phi)` with :math:`\phi = 2\pi\,\text{turns}\,s`
    and radius :math:`r = 0.1 + 0.9 s`, :math:`s \in [0, 1]` evenly spaced; class 1 is class 0
    rotated by :math:`\pi`, i.e. :math:`-x`. ``noise`` is the standard deviation of Gaussian
    noise added to each coordinate.

    Reference: K. J. Lang and M. J. Witbrock, "Learning to tell two spirals apart",
    Proc. 1988 Connectionist Models Summer School, 52-59.
    """
    n = positive_int("two_spirals", "n_per_class", n_per_class)
    _check_noise("two_spirals", noise)
    if not turns > 0:
        raise ValueError(f"two_spirals: turns must be positive, got {turns}")
    s = np.linspace(0.0, 1.0, n)
    phi = 2 * np.pi * turns * s
    spiral = (0.1 + 0.9 * s)[:, None] * np.column_stack([np.cos(phi), np.sin(phi)])
    X = np.concatenate([spiral, -spiral]) + noise * rng.standard_normal((2 * n, 2))
    return _shuffled(X, np.repeat(np.array([0, 1]), n), rng)


def linear_regression(
    n: int,
    dim: int,
    *,
    rng: np.random.Generator,
    noise: float = 0.1,
    w: ArrayLike | None = None,
    bias: float = 0.0,
) -> LinearModelData:
    r"""Samples of :math:`y = w^\top x + b + \varepsilon`, :math:`x \sim \mathcal{N}(0, I_d)`,
    :math:`\varepsilon \sim \mathcal{N}(0, \text{noise}^2)`.

    ``w`` defaults to a draw from :math:`\mathcal{N}(0, I_d)`; the targets ``y`` are float64.
    """
    n = positive_int("linear_regression", "n", n)
    dim = positive_int("linear_regression", "dim", dim)
    _check_noise("linear_regression", noise)
    w = _true_weights("linear_regression", w, dim, rng)
    X = rng.standard_normal((n, dim))
    y = X @ w + bias + noise * rng.standard_normal(n)
    return LinearModelData(X, y, w, float(bias))


def logistic_regression(
    n: int,
    dim: int,
    *,
    rng: np.random.Generator,
    w: ArrayLike | None = None,
    bias: float = 0.0,
    separable: bool = False,
) -> LinearModelData:
    r"""Samples of the logistic model :math:`P(y = 1 \mid x) = \sigma(w^\top x + b)`,
    :math:`x \sim \mathcal{N}(0, I_d)`.

    The int64 labels are drawn from the Bernoulli distribution above, or, with
    ``separable=True``, set to :math:`[w^\top x + b > 0]` so the classes are linearly separable
    by the true hyperplane. ``w`` defaults to a draw from :math:`\mathcal{N}(0, I_d)`.
    """
    n = positive_int("logistic_regression", "n", n)
    dim = positive_int("logistic_regression", "dim", dim)
    w = _true_weights("logistic_regression", w, dim, rng)
    X = rng.standard_normal((n, dim))
    logits = X @ w + bias
    if separable:
        y = logits > 0
    else:
        y = rng.uniform(size=n) < sigmoid(logits)
    return LinearModelData(X, y.astype(np.int64), w, float(bias))


def digits() -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (the UCI optical digits test set).

    ``X`` is float64 of shape ``(1797, 64)``, the row-major 8x8 images with raw grey levels
    ``0..16`` (not normalized); ``y`` is int64 in ``0..9``. Loaded from the copy shipped with
    scikit-learn (nothing is downloaded), once per process; every call returns fresh copies.

    Reference: E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten Digits",
    UCI Machine Learning Repository, 1998.
    """
    X, y = _cached_digits()
    return Dataset(X.copy(), y.copy())


@functools.cache
def _cached_digits() -> Dataset:
    from sklearn.datasets import load_digits  # imported lazily: slow, and only needed here

    bunch = load_digits()
    X = bunch.data.astype(np.float64)
    y = bunch.target.astype(np.int64)
    X.setflags(write=False)
    y.setflags(write=False)
    return Dataset(X, y)


def _shuffled(X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Dataset:
    order = rng.permutation(len(y))
    return Dataset(X[order], y[order].astype(np.int64))


def _true_weights(
    caller: str, w: ArrayLike | None, dim: int, rng: np.random.Generator
) -> np.ndarray:
    if w is None:
        return rng.standard_normal(dim)
    w = np.array(w, dtype=np.float64)
    if w.shape != (dim,):
        raise ValueError(f"{caller}: w must have shape ({dim},) to match dim={dim}, got {w.shape}")
    return w


def _check_noise(caller: str, noise: float) -> None:
    if not noise >= 0:
        raise ValueError(f"{caller}: noise must be a non-negative standard deviation, got {noise}")
