"""Chapter 2 (Gradient descent and convergence): every claim the book's pages make, asserted on
the same experiment functions the pages call (course.experiments.ch02_gradient_descent)."""

import numpy as np
import pytest

from course.experiments import ch02_gradient_descent as convergence

pytestmark = pytest.mark.book


# ----- the opening figure ---------------------------------------------------------------------


def test_opening_figure_a_factor_of_six_separates_crawling_from_diverging():
    problem = convergence.rotated_quadratic(10.0)
    w0 = problem.minimizer + problem.eigenvectors.sum(axis=1)

    def distance_after_40(multiple: float) -> float:
        path = convergence.gd_path(problem, w0, multiple * problem.optimal_lr, 40)
        return float(np.linalg.norm(path[-1] - problem.minimizer))

    start = float(np.linalg.norm(w0 - problem.minimizer))
    assert 0.1 < distance_after_40(0.2) / start < 0.2  # crawls
    assert distance_after_40(1.0) / start < 1e-3  # converges fast
    assert distance_after_40(1.2) / start > 100  # diverges


# ----- the three regimes on a 1-D quadratic ----------------------------------------------------


@pytest.mark.parametrize("a", [0.5, 2.0, 7.0])
def test_three_regimes_at_0_75_1_5_and_2_1_times_the_optimal_rate(a):
    paths = convergence.three_regimes(a, steps=15)
    assert [convergence.regime(paths[c]) for c in (0.75, 1.5, 2.1)] == [
        "monotone",
        "oscillating",
        "divergent",
    ]
    below, between, beyond = (np.abs(paths[c]) for c in (0.75, 1.5, 2.1))
    assert np.all(np.diff(below) < 0) and np.all(paths[0.75] > 0)
    assert np.all(np.diff(between) < 0)
    assert np.all(np.diff(beyond) > 0)
    # Each error is exactly (1 - c) times the previous one, since eta * a = c.
    for c, path in paths.items():
        np.testing.assert_allclose(path[1:], (1 - c) * path[:-1], rtol=1e-12)


def test_optimal_rate_lands_on_the_minimum_in_one_step_and_twice_it_bounces_forever():
    paths = convergence.three_regimes(3.0, multiples=(1.0, 2.0), w0=1.0, steps=6)
    np.testing.assert_allclose(paths[1.0][1:], 0.0, atol=1e-15)
    np.testing.assert_allclose(np.abs(paths[2.0]), 1.0, rtol=1e-12)


def test_regime_classifier_on_handmade_sequences():
    assert convergence.regime([1.0, 0.5, 0.25]) == "monotone"
    assert convergence.regime([1.0, -0.5, 0.25]) == "oscillating"
    assert convergence.regime([1.0, -1.5, 2.25]) == "divergent"


# ----- the rotated 2-D quadratic ---------------------------------------------------------------


@pytest.mark.parametrize("angle", [0.0, np.pi / 6, 1.0])
def test_each_eigen_coordinate_follows_its_own_one_d_recursion(angle):
    problem = convergence.data.quadratic([1.0, 8.0], angle=angle)
    lr = 0.2
    path = convergence.gd_path(problem, np.array([2.0, -1.0]), lr, 20)
    coords = convergence.eigen_coordinates(problem, path)
    factors = 1 - lr * problem.eigenvalues
    for t in range(1, len(path)):
        np.testing.assert_allclose(coords[t], factors**t * coords[0], rtol=1e-9, atol=1e-12)


def test_two_d_gradient_descent_converges_just_below_two_over_lambda_max_and_not_above():
    problem = convergence.rotated_quadratic(5.0)
    w0 = problem.minimizer + problem.eigenvectors.sum(axis=1)
    threshold = problem.max_stable_lr
    assert threshold == pytest.approx(2 * problem.optimal_lrs.min())
    below = convergence.gd_path(problem, w0, 0.99 * threshold, 2000)
    above = convergence.gd_path(problem, w0, 1.01 * threshold, 2000)
    assert np.linalg.norm(below[-1] - problem.minimizer) < 1e-3
    assert np.linalg.norm(above[-1] - problem.minimizer) > 1e3


# ----- iterations to a tolerance against the condition number ---------------------------------


KAPPAS = [1, 2, 5, 10, 20, 50, 100, 200]


def test_iterations_to_tolerance_grow_monotonically_and_about_linearly_with_kappa():
    counts = [convergence.iterations_to_tolerance(k) for k in KAPPAS]
    assert counts[0] == 1
    assert np.all(np.diff(counts) > 0)
    for kappa, count in zip(KAPPAS, counts, strict=True):
        assert abs(count - convergence.predicted_iterations(kappa)) <= 1
    # ~ (kappa / 2) log(1 / tol): doubling kappa roughly doubles the count.
    assert counts[-1] / counts[-2] == pytest.approx(2.0, rel=0.02)
    assert counts[-1] == pytest.approx(200 / 2 * np.log(1e6), rel=0.01)


@pytest.mark.parametrize("multiple", [0.5, 0.9, 1.01])
def test_away_from_the_optimal_rate_every_condition_number_needs_more_steps(multiple):
    counts = {k: convergence.iterations_to_tolerance(k, multiple=multiple) for k in [2, 10, 50]}
    best = {k: convergence.iterations_to_tolerance(k) for k in counts}
    assert all(counts[k] >= best[k] for k in counts)
    assert counts[50] > best[50]


# ----- linear rate against O(1/k) -------------------------------------------------------------


def test_linear_rate_on_the_quadratic_sublinear_on_quartic_and_logistic():
    runs = convergence.rate_comparison()
    quad = runs["quadratic"]
    ratio = quad.gaps[1:60] / quad.gaps[:59]
    np.testing.assert_allclose(ratio, (1 - quad.lr * 0.4) ** 2, rtol=1e-9)  # constant: linear
    assert quad.gaps[100] < 1e-19

    quartic, logistic = runs["quartic"], runs["logistic"]
    assert convergence.loglog_slope(quartic.gaps, 100, 1001) == pytest.approx(-2.0, abs=0.06)
    assert convergence.loglog_slope(logistic.gaps, 100, 1001) == pytest.approx(-1.0, abs=0.03)
    assert 1000**2 * quartic.gaps[1000] == pytest.approx(1 / (64 * quartic.lr**2), rel=0.03)
    assert 1000 * logistic.gaps[1000] == pytest.approx(1 / logistic.lr, rel=0.03)
    # The per-step ratio of a sublinear rate creeps up to 1.
    for run in (quartic, logistic):
        assert run.gaps[1000] / run.gaps[999] > 0.997


def test_every_run_respects_the_smooth_convex_bound():
    runs = convergence.rate_comparison()
    k = np.arange(1, 1001)
    quartic = runs["quartic"]
    assert quartic.lr <= 1 / quartic.smoothness
    bound = 0.4**2 / (2 * quartic.lr * k)  # ||w_0 - w*||^2 / (2 eta k)
    assert np.all(quartic.gaps[1:] <= bound)
    quad = runs["quadratic"]
    assert np.all(quad.gaps[1:] <= 1.0 / (2 * quad.lr * k))


# ----- saddle points ---------------------------------------------------------------------------


def test_escape_from_the_saddle_takes_log_one_over_x0_over_log_one_plus_eta_steps():
    starts = [1e-2, 1e-4, 1e-6, 1e-8]
    steps = [convergence.saddle_escape_steps(x0) for x0 in starts]
    per_factor_100 = np.log(100) / np.log(1.1)
    np.testing.assert_allclose(np.diff(steps), per_factor_100, atol=1.5)
    assert steps[-1] > 3.5 * steps[0]


# ----- mini-batch gradient variance -----------------------------------------------------------


def test_minibatch_gradient_variance_falls_as_one_over_the_batch_size():
    result = convergence.minibatch_gradient_variance()
    assert result.slope == pytest.approx(-1.0, abs=0.06)
    np.testing.assert_allclose(result.measured / result.predicted, 1.0, atol=0.15)
    # Without the finite-population correction the largest batch is visibly below sigma^2/|B|.
    largest = result.batch_sizes[-1]
    assert result.measured[-1] < 0.9 * result.per_example_variance / largest


def test_gradient_cloud_is_centred_on_the_full_gradient_and_shrinks_with_the_batch():
    small, large = convergence.minibatch_gradient_cloud(2), convergence.minibatch_gradient_cloud(32)
    for cloud in (small, large):
        points, full = cloud[:-1], cloud[-1]
        spread = np.sqrt(np.mean(np.sum((points - full) ** 2, axis=1)))
        assert np.linalg.norm(points.mean(axis=0) - full) < 0.25 * spread
    spread = [np.mean(np.sum((c[:-1] - c[-1]) ** 2, axis=1)) for c in (small, large)]
    # Theory: 16 (N - 2) / (N - 32) = 18 for N = 256; 200 draws per cloud leave a wide margin.
    assert 10 < spread[0] / spread[1] < 32


# ----- schedules on the digits ----------------------------------------------------------------


def test_per_epoch_holds_the_rate_for_a_whole_epoch():
    schedule = convergence.per_epoch(lambda e: 1.0 / (e + 1), 10)
    assert [schedule(k) for k in (0, 9, 10, 19, 20)] == [1.0, 1.0, 0.5, 0.5, 1 / 3]


@pytest.mark.parametrize("seed", [0, 1])
def test_decaying_schedules_calm_the_constant_rate_and_quadratic_decay_stops_short(seed):
    histories = convergence.schedule_comparison(seed=seed)
    final = {name: h.train_loss[-1] for name, h in histories.items()}
    jitter = {name: np.std(h.train_loss[-5:]) for name, h in histories.items()}
    assert not any(h.diverged for h in histories.values())
    for name in ("exponential", "step"):
        assert final[name] < 0.8 * final["constant"]
        assert jitter[name] < 0.1 * jitter["constant"]
    assert final["quadratic"] > 2 * max(final["exponential"], final["step"])
    assert final["quadratic"] == max(final[n] for n in final if n not in ("constant", "plateau"))
    # Exponential and step decay end with the lowest training loss of all six, by a margin.
    others = [final[n] for n in final if n not in ("exponential", "step")]
    assert max(final["exponential"], final["step"]) < 0.8 * min(others)
    if seed == 0:  # the run the page shows: also the best validation accuracy
        accuracy = {name: h.val_accuracy[-1] for name, h in histories.items()}
        assert min(accuracy["exponential"], accuracy["step"]) >= max(
            accuracy[n] for n in accuracy if n not in ("exponential", "step")
        )
    # Within an epoch the rate is constant: the per-epoch decay, not per step.
    lrs = np.array(histories["linear"].lr)
    steps_per_epoch = len(lrs) // histories["linear"].epochs
    assert np.all(lrs[:steps_per_epoch] == 1.0)
    assert lrs[steps_per_epoch] == 0.5


# ----- a rate above 2 eta_opt escapes a narrow local minimum; decay then settles ----------------


def test_shallow_and_deep_minima_and_their_rate_thresholds():
    problem = convergence.shallow_and_deep()
    shallow = convergence.local_minimum(problem, 0.0)
    assert abs(problem.grad([shallow])[0]) < 1e-10
    assert 2 / problem.hessian(np.array([shallow]))[0, 0] < 0.02  # 2 eta_opt of the narrow dent
    assert 2 / problem.hessian(np.array([2.0]))[0, 0] == pytest.approx(1.0)
    assert problem.value([shallow]) > 2.0 > 1e-12 > problem.value([2.0])


def test_a_rate_above_twice_the_optimum_escapes_and_only_a_decayed_one_settles():
    problem = convergence.shallow_and_deep()
    shallow = convergence.local_minimum(problem, 0.0)
    runs = convergence.escape_runs()
    assert abs(runs["small"][-1] - shallow) < 1e-9  # below its 2 eta_opt: stays in the dent
    assert abs(runs["large"][-1]) > 1e6  # above 2 eta_opt of both minima: never settles
    assert abs(runs["large"][2] - shallow) > 1.0  # ... after leaving the dent at once
    decayed = runs["large, decayed"]
    assert abs(decayed[2] - shallow) > 1.0 and abs(decayed[-1] - 2.0) < 1e-9
