"""The chapters' objective functions, labelled datasets, splits, normalizers and mini-batches."""

from minidl.data.batching import batches, num_batches
from minidl.data.datasets import (
    Dataset,
    LinearModelData,
    brady_points,
    digits,
    linear_regression,
    logistic_regression,
    two_moons,
    two_spirals,
)
from minidl.data.preprocessing import (
    Fold,
    MinMaxNormalizer,
    Split,
    ZScoreNormalizer,
    k_fold,
    normalize_split,
    train_val_test_split,
)
from minidl.data.problems import (
    Problem,
    Quadratic,
    double_well,
    monkey_saddle,
    quadratic,
    quartic,
    rosenbrock,
    rotated_quadratic,
)

__all__ = [
    "Dataset",
    "Fold",
    "LinearModelData",
    "MinMaxNormalizer",
    "Problem",
    "Quadratic",
    "Split",
    "ZScoreNormalizer",
    "batches",
    "brady_points",
    "digits",
    "double_well",
    "k_fold",
    "linear_regression",
    "logistic_regression",
    "monkey_saddle",
    "normalize_split",
    "num_batches",
    "quadratic",
    "quartic",
    "rosenbrock",
    "rotated_quadratic",
    "train_val_test_split",
    "two_moons",
    "two_spirals",
]
