r"""Train/validation/test splits, k-fold cross-validation folds, and feature normalizers fitted
on the training set only.

A normalizer learns its statistics from the training features and applies the same affine map
to validation and test features: statistics taken from all the data would leak information
about the held-out sets into training and make their scores optimistic. :func:`normalize_split`
does exactly this (LeCun, Bottou, Orr & Müller, "Efficient BackProp", 1998, Sec. 4.3, on why
normalized inputs speed up training).
"""

from __future__ import annotations

from typing import NamedTuple, Self

import numpy as np
from numpy.typing import ArrayLike

from minidl.data.datasets import Dataset


class Split(NamedTuple):
    """Disjoint training, validation and test sets."""

    train: Dataset
    val: Dataset
    test: Dataset


def train_val_test_split(
    X: ArrayLike,
    y: ArrayLike,
    *,
    rng: np.random.Generator,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    stratify: bool = True,
) -> Split:
    """Split the samples at random into disjoint training, validation and test sets.

    Every sample lands in exactly one set; each set is in a random order. With ``stratify``
    (which needs 1-D integer class labels) every class is split separately, so each set holds
    ``round(fraction * n_class)`` samples of a class with ``n_class`` samples, up to one sample:
    class proportions are those of the whole data. Without it the whole data is split the same
    way as one class. The split is a function of the data and the state of ``rng`` only.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0 or len(X) != len(y):
        raise ValueError(
            "train_val_test_split: X and y must hold the same number of samples, "
            f"got X of shape {X.shape} and y of shape {y.shape}"
        )
    if not (val_fraction >= 0 and test_fraction >= 0 and val_fraction + test_fraction < 1):
        raise ValueError(
            "train_val_test_split: need val_fraction >= 0, test_fraction >= 0 and their sum < 1, "
            f"got val_fraction={val_fraction} and test_fraction={test_fraction}"
        )
    if stratify and not (y.ndim == 1 and (y.dtype == bool or np.issubdtype(y.dtype, np.integer))):
        raise ValueError(
            "train_val_test_split: stratify=True needs 1-D integer class labels, got y of shape "
            f"{y.shape} and dtype {y.dtype}; pass stratify=False for regression targets"
        )
    n = len(y)
    _, group, group_size = np.unique(
        y if stratify else np.zeros(n, dtype=np.int64), return_inverse=True, return_counts=True
    )
    # Rank the samples of each group in a random order; the quantile (rank + 1/2) / group size
    # sends the lowest ranks to the test set, the next to validation and the rest to training.
    order = rng.permutation(n)
    by_group = order[np.argsort(group[order], kind="stable")]
    group_start = np.cumsum(group_size) - group_size
    rank = np.empty(n)
    rank[by_group] = np.arange(n) - np.repeat(group_start, group_size)
    quantile = (rank + 0.5) / group_size[group]
    part = np.where(
        quantile < test_fraction, 2, np.where(quantile < test_fraction + val_fraction, 1, 0)
    )
    train, val, test = (order[part[order] == k] for k in range(3))
    return Split(Dataset(X[train], y[train]), Dataset(X[val], y[val]), Dataset(X[test], y[test]))


class Fold(NamedTuple):
    """Indices of one cross-validation fold: train on ``train``, validate on ``val``."""

    train: np.ndarray
    val: np.ndarray


def k_fold(y: ArrayLike, k: int, *, rng: np.random.Generator, stratify: bool = False) -> list[Fold]:
    """The ``k`` folds of k-fold cross-validation of the samples ``0, ..., N-1`` of ``y``.

    The samples are shuffled and dealt into ``k`` disjoint validation sets that together hold
    every sample once; their sizes differ by at most one. Fold ``i`` validates on set ``i`` and
    trains on the other ``k - 1`` (its complement), so no sample is ever in both halves of a
    fold. With ``stratify`` (1-D integer class labels) each class is dealt separately, one
    sample per set in turn, so every validation set holds ``n_class / k`` samples of a class
    of ``n_class`` samples, up to one. Only ``len(y)`` matters without it.
    (Stone, "Cross-validatory choice and assessment of statistical predictions", 1974.)
    """
    y = np.asarray(y)
    if y.ndim == 0:
        raise ValueError(f"k_fold: y must hold one entry per sample, got shape {y.shape}")
    n = len(y)
    if not (isinstance(k, int | np.integer) and 2 <= k <= n):
        raise ValueError(f"k_fold: need an integer k with 2 <= k <= N = {n}, got k={k!r}")
    if stratify and not (y.ndim == 1 and (y.dtype == bool or np.issubdtype(y.dtype, np.integer))):
        raise ValueError(
            f"k_fold: stratify=True needs 1-D integer class labels, got y of shape {y.shape} "
            f"and dtype {y.dtype}"
        )
    order = rng.permutation(n)
    if stratify:
        # Class by class, each class in a random order; dealing position i to set i mod k gives
        # every set the same share of every class and sets of sizes within one of each other.
        order = order[np.argsort(y[order], kind="stable")]
    which = np.empty(n, dtype=np.int64)
    which[order] = np.arange(n) % k
    folds = []
    for i in range(k):
        val = order[which[order] == i]
        train = order[which[order] != i]
        folds.append(Fold(train, val))
    return folds


class _AffineNormalizer:
    r"""The per-feature map :math:`z = (x - \text{shift}) \cdot \text{scale} + \text{offset}`.

    Subclasses compute shift and scale from the array given to ``fit``, and nothing else.
    """

    def __init__(self) -> None:
        self._shift: np.ndarray | None = None
        self._scale: np.ndarray | None = None
        self._offset = 0.0

    def fit(self, X: ArrayLike) -> Self:
        """Learn the per-feature statistics of ``X`` of shape ``(N, d)`` (the training features)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(
                f"{type(self).__name__}.fit: expected X of shape (N, d) with N >= 1, got {X.shape}"
            )
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{type(self).__name__}.fit: X contains NaN or infinite values")
        self._fit(X)
        return self

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Normalize ``X`` of shape ``(N, d)`` with the statistics learnt by ``fit``."""
        X = self._check_fitted("transform", X)
        return (X - self._shift) * self._scale + self._offset

    def fit_transform(self, X: ArrayLike) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, Z: ArrayLike) -> np.ndarray:
        """Map normalized features back to the original units."""
        Z = self._check_fitted("inverse_transform", Z)
        return (Z - self._offset) / self._scale + self._shift

    def _fit(self, X: np.ndarray) -> None:
        raise NotImplementedError

    def _check_fitted(self, method: str, X: ArrayLike) -> np.ndarray:
        name = type(self).__name__
        if self._shift is None:
            raise RuntimeError(f"{name}.{method}: call fit(X_train) first")
        X = np.asarray(X, dtype=np.float64)
        d = len(self._shift)
        if X.ndim != 2 or X.shape[1] != d:
            raise ValueError(
                f"{name}.{method}: fitted on {d} features, expected X of shape (N, {d}), "
                f"got {X.shape}"
            )
        return X


def _reciprocal_or_one(spread: np.ndarray) -> np.ndarray:
    """``1 / spread``, and 1 where the spread is 0 so that constant features map to the offset."""
    return 1.0 / np.where(spread > 0, spread, 1.0)


class MinMaxNormalizer(_AffineNormalizer):
    r"""Min-max scaling :math:`z = \text{lo} + (\text{hi} - \text{lo})\,(x - \min) / (\max - \min)`.

    Maps each training feature onto ``feature_range = (lo, hi)``; validation or test values
    outside the training range land outside it. A constant training feature
    (:math:`\max = \min`) maps to ``lo`` (0 by default) instead of dividing by zero.
    Attributes after ``fit``: ``min_`` and ``max_``, per feature.
    """

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0)):
        super().__init__()
        lo, hi = feature_range
        if not lo < hi:
            raise ValueError(f"MinMaxNormalizer: feature_range needs lo < hi, got {feature_range}")
        self.feature_range = (float(lo), float(hi))
        self.min_: np.ndarray | None = None
        self.max_: np.ndarray | None = None

    def _fit(self, X: np.ndarray) -> None:
        lo, hi = self.feature_range
        self.min_, self.max_ = X.min(axis=0), X.max(axis=0)
        self._shift = self.min_
        self._scale = (hi - lo) * _reciprocal_or_one(self.max_ - self.min_)
        self._offset = lo


class ZScoreNormalizer(_AffineNormalizer):
    r"""Standardization :math:`z = (x - \mu) / \sigma` with the training mean and std.

    :math:`\sigma` is the population standard deviation (``ddof=0``). A constant training
    feature (:math:`\sigma = 0`) maps to 0 instead of dividing by zero.
    Attributes after ``fit``: ``mean_`` and ``std_``, per feature.
    """

    def __init__(self) -> None:
        super().__init__()
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def _fit(self, X: np.ndarray) -> None:
        self.mean_, self.std_ = X.mean(axis=0), X.std(axis=0)
        self._shift = self.mean_
        self._scale = _reciprocal_or_one(self.std_)


def normalize_split(split: Split, normalizer: MinMaxNormalizer | ZScoreNormalizer) -> Split:
    """Fit ``normalizer`` on ``split.train.X`` only and transform the features of all three sets."""
    normalizer.fit(split.train.X)
    return Split(*(Dataset(normalizer.transform(part.X), part.y) for part in split))
