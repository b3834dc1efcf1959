"""Grid and random search: order, reproducibility, distributions, and the best trial."""

import math

import numpy as np
import pytest

from minidl import tuning

pytestmark = pytest.mark.tuning


def quadratic(lr, decay=0.0):
    return (math.log10(lr) + 1) ** 2 + decay


def test_grid_search_tries_the_product_with_the_last_name_fastest():
    result = tuning.grid_search(quadratic, {"lr": [0.01, 0.1], "decay": [0.0, 1.0, 2.0]})
    params = [t.params for t in result.trials]
    assert params[:3] == [{"lr": 0.01, "decay": d} for d in (0.0, 1.0, 2.0)]
    assert len(params) == 6
    assert result.best.params == {"lr": 0.1, "decay": 0.0}
    assert result.best.score == pytest.approx(0.0)


def test_random_search_draws_in_order_with_one_uniform_call_per_value():
    space = {"lr": tuning.Range(1e-4, 1.0, log=True), "decay": tuning.Range(0.0, 2.0)}
    result = tuning.random_search(quadratic, space, 5, rng=np.random.default_rng(3))
    rng = np.random.default_rng(3)
    for trial in result.trials:
        lr = math.exp(rng.uniform(math.log(1e-4), math.log(1.0)))
        decay = rng.uniform(0.0, 2.0)
        assert trial.params == pytest.approx({"lr": lr, "decay": decay})
        assert trial.score == pytest.approx(quadratic(lr, decay))
    assert result.best == min(result.trials, key=lambda t: t.score)


def test_random_search_log_range_is_uniform_in_the_exponent():
    space = {"lr": tuning.Range(1e-4, 1.0, log=True)}
    result = tuning.random_search(lambda lr: 0.0, space, 4000, rng=np.random.default_rng(0))
    exponents = np.log10([t.params["lr"] for t in result.trials])
    assert exponents.min() >= -4 and exponents.max() <= 0
    assert np.histogram(exponents, bins=4, range=(-4, 0))[0] == pytest.approx([1000] * 4, rel=0.1)
    assert len(set(exponents)) == 4000


def test_diverged_trials_never_win_and_best_so_far_is_monotone():
    scores = iter([math.inf, 3.0, math.nan, 1.0, 2.0])
    result = tuning.random_search(
        lambda x: next(scores), {"x": tuning.Range(0, 1)}, 5, rng=np.random.default_rng(0)
    )
    assert result.best.score == 1.0
    assert list(result.best_so_far()) == [math.inf, 3.0, 3.0, 1.0, 1.0]
    all_bad = tuning.grid_search(lambda x: math.nan, {"x": [1, 2]})
    assert all_bad.best is None


@pytest.mark.parametrize(
    ("space", "message"),
    [({"lr": tuning.Range(0.0, 1.0, log=True)}, "bad range"), ({"lr": tuning.Range(2, 1)}, "bad")],
)
def test_random_search_rejects_bad_ranges(space, message):
    with pytest.raises(ValueError, match=message):
        tuning.random_search(quadratic, space, 3, rng=np.random.default_rng(0))


def test_search_rejects_empty_grids_and_zero_trials():
    with pytest.raises(ValueError, match="grid_search"):
        tuning.grid_search(quadratic, {"lr": []})
    with pytest.raises(ValueError, match="n_trials"):
        tuning.random_search(quadratic, {"lr": tuning.Range(0, 1)}, 0, rng=np.random.default_rng(0))
