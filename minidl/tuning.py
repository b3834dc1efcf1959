r"""Hyperparameter search: grid search and random search (Bergstra & Bengio, 2012).

Both drivers minimize a score ``objective(**params)`` (a validation loss, say) and return every
trial in the order it was run. Grid search tries the Cartesian product of a few values per
hyperparameter; random search draws each trial independently,

.. math::
    \theta_k \sim \mathcal{U}[a, b] \quad\text{or}\quad
    \log \theta_k \sim \mathcal{U}[\log a, \log b], \qquad k = 1, \ldots, n,

so with :math:`n` trials it tries :math:`n` distinct values of *every* hyperparameter, where a grid
of the same budget over :math:`d` hyperparameters tries only :math:`n^{1/d}` values of each.
When only a few hyperparameters matter, random search therefore explores the important ones far
more densely (J. Bergstra and Y. Bengio, "Random search for hyper-parameter optimization",
JMLR 13, 2012).

A non-finite score (a diverged run) never counts as the best.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from minidl._checks import check_generator, positive_int


class Range(NamedTuple):
    """The interval ``[low, high]`` random search draws a hyperparameter from, uniformly, or
    uniformly in :math:`\\log` when ``log`` is true (for rates and strengths spanning decades)."""

    low: float
    high: float
    log: bool = False


class Trial(NamedTuple):
    """One evaluated setting: the hyperparameters and the objective's score."""

    params: dict[str, Any]
    score: float


class SearchResult(NamedTuple):
    """Every trial in the order it was run, and the best one (``None`` if none was finite)."""

    trials: list[Trial]
    best: Trial | None

    def best_so_far(self) -> np.ndarray:
        """The lowest finite score among trials ``1..k``, for ``k = 1..n`` (``inf`` before any)."""
        scores = np.array([t.score for t in self.trials], dtype=float)
        return np.minimum.accumulate(np.where(np.isfinite(scores), scores, np.inf))


Objective = Callable[..., float]


def grid_search(objective: Objective, grid: Mapping[str, Sequence[Any]]) -> SearchResult:
    """Evaluate ``objective`` on every combination of ``grid``'s values.

    Combinations come in ``itertools.product`` order: the last name varies fastest.
    """
    if not grid or any(len(values) == 0 for values in grid.values()):
        raise ValueError(f"grid_search: every hyperparameter needs at least one value, got {grid}")
    names = list(grid)
    trials = [
        _evaluate(objective, dict(zip(names, values, strict=True)))
        for values in itertools.product(*grid.values())
    ]
    return SearchResult(trials, _best(trials))


def random_search(
    objective: Objective,
    space: Mapping[str, Range],
    n_trials: int,
    *,
    rng: np.random.Generator,
) -> SearchResult:
    """Evaluate ``objective`` on ``n_trials`` independent draws from ``space``.

    Trial by trial, each hyperparameter is drawn in the order of ``space`` with one call
    ``rng.uniform(low, high)`` (of the logarithms when ``Range.log``, then exponentiated), so the
    trials are a function of the seed only.
    """
    n_trials = positive_int("random_search", "n_trials", n_trials)
    check_generator("random_search", rng)
    for name, r in space.items():
        if not r.low <= r.high or (r.log and not r.low > 0):
            raise ValueError(f"random_search: bad range for {name!r}: {r}")
    trials = [
        _evaluate(objective, {name: _draw(r, rng) for name, r in space.items()})
        for _ in range(n_trials)
    ]
    return SearchResult(trials, _best(trials))


def _draw(r: Range, rng: np.random.Generator) -> float:
    if r.log:
        return math.exp(rng.uniform(math.log(r.low), math.log(r.high)))
    return float(rng.uniform(r.low, r.high))


def _evaluate(objective: Objective, params: dict[str, Any]) -> Trial:
    return Trial(params, float(objective(**params)))


def _best(trials: list[Trial]) -> Trial | None:
    finite = [t for t in trials if math.isfinite(t.score)]
    return min(finite, key=lambda t: t.score) if finite else None
