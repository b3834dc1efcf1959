"""minidl.data: the generators and splitters have the properties their docstrings claim."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from minidl.data import (
    Dataset,
    MinMaxNormalizer,
    Quadratic,
    Split,
    ZScoreNormalizer,
    batches,
    brady_points,
    digits,
    double_well,
    k_fold,
    linear_regression,
    logistic_regression,
    monkey_saddle,
    normalize_split,
    num_batches,
    quadratic,
    quartic,
    rosenbrock,
    rotated_quadratic,
    train_val_test_split,
    two_moons,
    two_spirals,
)

pytestmark = pytest.mark.data

EPS = 1e-6


def central_gradient(f, w: np.ndarray) -> np.ndarray:
    """Central differences of a scalar function f (or, row by row, of a vector function)."""
    columns = []
    for i in range(w.size):
        step = np.zeros_like(w)
        step[i] = EPS
        columns.append((np.asarray(f(w + step)) - np.asarray(f(w - step))) / (2 * EPS))
    return np.stack(columns, axis=-1)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def is_linearly_separable(X: np.ndarray, y01: np.ndarray) -> bool:
    """Feasibility of the LP s_n (w^T x_n + b) >= 1 with s_n = +-1."""
    signs = 2.0 * y01 - 1.0
    A_ub = -signs[:, None] * np.column_stack([X, np.ones(len(X))])
    result = linprog(
        np.zeros(X.shape[1] + 1), A_ub=A_ub, b_ub=-np.ones(len(X)), bounds=(None, None)
    )
    assert result.status in (0, 2), result.message
    return result.status == 0


# ----------------------------------------------------------------------------- problems


PROBLEMS = {
    "quadratic-2d-rotated": lambda: quadratic([1.0, 10.0], angle=0.4, b=[1.0, -2.0]),
    "quadratic-5d-random": lambda: quadratic(
        [0.5, 1.0, 2.0, 4.0, 8.0], rng=np.random.default_rng(1), b=np.arange(5.0)
    ),
    "quadratic-indefinite": lambda: quadratic([2.0, -1.0], angle=1.0),
    "rosenbrock": rosenbrock,
    "rosenbrock-a-b": lambda: rosenbrock(a=-0.5, b=10.0),
    "quartic": lambda: quartic(3),
    "double_well": double_well,
    "monkey_saddle": monkey_saddle,
}


@pytest.fixture(params=sorted(PROBLEMS))
def problem(request):
    return PROBLEMS[request.param]()


def test_gradient_matches_central_differences(problem):
    rng = np.random.default_rng(0)
    for w in rng.uniform(-2, 2, size=(5, problem.dim)):
        numeric = central_gradient(problem.value, w)
        assert relative_error(problem.grad(w), numeric) < 1e-6


def test_hessian_matches_central_differences_of_gradient(problem):
    rng = np.random.default_rng(1)
    for w in rng.uniform(-2, 2, size=(5, problem.dim)):
        numeric = central_gradient(problem.grad, w)
        assert relative_error(problem.hessian(w), numeric) < 1e-6
        np.testing.assert_array_equal(problem.hessian(w), problem.hessian(w).T)


def test_minimizer_is_stationary_and_attains_the_minimum(problem):
    if problem.minimizer is None:
        assert problem.minimum == -np.inf
        return
    np.testing.assert_allclose(problem.grad(problem.minimizer), 0.0, atol=1e-12)
    assert problem.value(problem.minimizer) == pytest.approx(problem.minimum, abs=1e-12)
    samples = np.random.default_rng(2).uniform(-3, 3, size=(1000, problem.dim))
    assert np.all(problem.value(samples) >= problem.minimum)


def test_unbounded_problems_go_below_any_level():
    saddle = quadratic([2.0, -1.0], angle=1.0)
    assert saddle.value(1e4 * saddle.eigenvectors[:, 0]) < -1e7
    assert monkey_saddle().value([-1e3, 0.0]) < -1e8


def test_value_and_grad_are_vectorised_over_leading_axes(problem):
    points = np.random.default_rng(3).normal(size=(4, 3, problem.dim))
    values = problem.value(points)
    grads = problem.grad(points)
    assert values.shape == (4, 3)
    assert grads.shape == (4, 3, problem.dim)
    for index in np.ndindex(4, 3):
        single = problem.value(points[index])
        assert isinstance(single, float)
        assert values[index] == pytest.approx(single, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(grads[index], problem.grad(points[index]), rtol=1e-12)


def test_value_grid_matches_pointwise_values():
    problem = rosenbrock()
    X, Y = np.meshgrid(np.linspace(-2, 2, 7), np.linspace(-1, 3, 5))
    Z = problem.value_grid(X, Y)
    assert Z.shape == X.shape
    for i, j in np.ndindex(*X.shape):
        assert Z[i, j] == problem.value([X[i, j], Y[i, j]])
    with pytest.raises(ValueError, match=r"quartic\.value_grid.*dim=3"):
        quartic(3).value_grid(X, Y)
    with pytest.raises(ValueError, match=r"\(5, 7\) and \(7, 5\)"):
        problem.value_grid(X, Y.T)


def test_wrong_point_shape_names_problem_and_both_shapes(problem):
    wrong = np.zeros(problem.dim + 1)
    pattern = rf"{problem.name}.*\({problem.dim},\).*\({problem.dim + 1},\)"
    for method in (problem.value, problem.grad, problem.hessian):
        with pytest.raises(ValueError, match=pattern):
            method(wrong)
    with pytest.raises(ValueError, match=problem.name):
        problem.value(1.0)
    with pytest.raises(ValueError, match=r"hessian.*\(3, " + str(problem.dim)):
        problem.hessian(np.zeros((3, problem.dim)))


@pytest.mark.parametrize("angle", [0.0, 0.3, np.pi / 4, 2.0, -1.2])
@pytest.mark.parametrize("eigenvalues", [(1.0, 10.0), (50.0, 0.5), (3.0, 3.0), (1e-3, 10.0)])
def test_rotated_2d_quadratic_has_the_requested_spectrum(eigenvalues, angle):
    q = quadratic(eigenvalues, angle=angle)
    np.testing.assert_allclose(q.eigenvalues, sorted(eigenvalues), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.eigvalsh(q.A), sorted(eigenvalues), rtol=1e-12)
    assert q.condition_number == pytest.approx(max(eigenvalues) / min(eigenvalues), rel=1e-12)
    # The eigenvector of eigenvalues[0] is the first axis rotated by angle.
    direction = np.array([np.cos(angle), np.sin(angle)])
    np.testing.assert_allclose(q.A @ direction, eigenvalues[0] * direction, atol=1e-12 * 50)


@pytest.mark.parametrize("kappa", [1.0, 5.0, 1000.0])
def test_rotated_quadratic_is_the_valley_of_eigenvalues_1_and_kappa_turned_by_the_angle(kappa):
    q = rotated_quadratic(kappa)  # 30 degrees unless told
    np.testing.assert_array_equal(q.A, quadratic([1.0, kappa], angle=np.pi / 6).A)
    assert q.condition_number == pytest.approx(kappa, rel=1e-12)
    np.testing.assert_array_equal(q.minimizer, [0.0, 0.0])
    floor = np.array([np.cos(0.6), np.sin(0.6)])  # the eigenvector of 1
    np.testing.assert_allclose(rotated_quadratic(kappa, 0.6).A @ floor, floor, atol=1e-12 * kappa)


def test_axis_aligned_quadratic_is_exactly_diagonal():
    q = quadratic([3.0, 1.0, 7.0])
    np.testing.assert_array_equal(q.A, np.diag([3.0, 1.0, 7.0]))
    np.testing.assert_array_equal(q.eigenvalues, [1.0, 3.0, 7.0])
    assert q.condition_number == 7.0


@pytest.mark.parametrize("seed", range(5))
def test_random_rotation_quadratic_has_the_requested_spectrum(seed):
    eigenvalues = np.random.default_rng(100 + seed).uniform(0.1, 100.0, size=8)
    q = quadratic(eigenvalues, rng=np.random.default_rng(seed))
    np.testing.assert_allclose(q.eigenvalues, np.sort(eigenvalues), rtol=1e-12)
    np.testing.assert_allclose(
        q.condition_number, eigenvalues.max() / eigenvalues.min(), rtol=1e-12
    )
    np.testing.assert_allclose(q.eigenvectors.T @ q.eigenvectors, np.eye(8), atol=1e-12)
    off_diagonal = q.A - np.diag(np.diag(q.A))
    assert np.abs(off_diagonal).max() > 1.0, "A should be rotated, not axis-aligned"


def test_random_rotation_is_seeded():
    a = quadratic([1.0, 2.0, 3.0], rng=np.random.default_rng(7))
    b = quadratic([1.0, 2.0, 3.0], rng=np.random.default_rng(7))
    c = quadratic([1.0, 2.0, 3.0], rng=np.random.default_rng(8))
    np.testing.assert_array_equal(a.A, b.A)
    assert not np.allclose(a.A, c.A)


def test_random_rotations_are_uniform_over_directions():
    # Under the Haar measure the first column of Q is uniform on the sphere: E[q q^T] = I/d.
    rng = np.random.default_rng(0)
    outer = np.zeros((3, 3))
    for _ in range(2000):
        q = quadratic([1.0, 2.0, 3.0], rng=rng).eigenvectors[:, 0]
        outer += np.outer(q, q) / 2000
    np.testing.assert_allclose(outer, np.eye(3) / 3, atol=0.03)


def test_quadratic_learning_rates():
    q = quadratic([2.0, 8.0], angle=0.7, b=[1.0, 1.0])
    assert q.optimal_lr == pytest.approx(2 / 10)
    np.testing.assert_allclose(q.optimal_lrs, [1 / 2, 1 / 8])
    assert q.max_stable_lr == pytest.approx(2 / 8)
    np.testing.assert_allclose(q.minimizer, -np.linalg.solve(q.A, q.b), rtol=1e-12)


@pytest.mark.parametrize("a", [0.1, 1.0, 25.0])
def test_optimal_lr_of_a_1d_quadratic_reaches_the_minimum_in_one_step(a):
    q = quadratic([a], b=[3.0])
    w = np.array([5.0])
    w = w - q.optimal_lr * q.grad(w)
    np.testing.assert_allclose(w, q.minimizer, rtol=1e-12)
    assert q.optimal_lrs[0] == q.optimal_lr == pytest.approx(1 / a)


def test_gradient_descent_is_stable_exactly_below_max_stable_lr():
    q = quadratic([1.0, 10.0], angle=0.5)
    for factor, converges in [(0.99, True), (1.01, False)]:
        w = np.array([1.0, 1.0])
        for _ in range(2000):
            w = w - factor * q.max_stable_lr * q.grad(w)
        assert (np.linalg.norm(w) < 1e-3) == converges


def test_quadratic_that_is_not_positive_definite():
    indefinite = quadratic([1.0, -1.0])
    assert indefinite.condition_number == np.inf
    assert indefinite.minimizer is None and indefinite.minimum == -np.inf
    for name in ("optimal_lr", "optimal_lrs", "max_stable_lr"):
        with pytest.raises(ValueError, match=rf"{name}.*positive definite.*-1"):
            getattr(indefinite, name)
    # Singular and consistent: minimum-norm minimizer; singular and inconsistent: unbounded.
    flat = Quadratic(np.diag([2.0, 0.0]), b=[-2.0, 0.0], c=1.0)
    assert flat.condition_number == np.inf
    np.testing.assert_allclose(flat.minimizer, [1.0, 0.0])
    assert flat.minimum == pytest.approx(0.0)
    tilted = Quadratic(np.diag([2.0, 0.0]), b=[0.0, 1.0])
    assert tilted.minimizer is None and tilted.minimum == -np.inf


def test_quadratic_attributes_are_read_only():
    q = quadratic([1.0, 4.0], angle=0.2)
    for array in (q.A, q.b, q.eigenvalues, q.eigenvectors, q.minimizer):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 99.0
    hessian = q.hessian(np.zeros(2))
    hessian[0, 0] = 99.0
    assert q.A[0, 0] != 99.0


def test_quadratic_rejects_bad_input():
    with pytest.raises(ValueError, match="symmetric"):
        Quadratic([[1.0, 2.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"square.*\(2, 3\)"):
        Quadratic(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"b must have shape \(2,\).*\(3,\)"):
        Quadratic(np.eye(2), b=np.ones(3))
    with pytest.raises(ValueError, match=r"angle.*3 eigenvalues"):
        quadratic([1.0, 2.0, 3.0], angle=0.5)
    with pytest.raises(ValueError, match="not both"):
        quadratic([1.0, 2.0], angle=0.5, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        quadratic([])


def test_rosenbrock_minimizer_and_its_ill_conditioned_valley():
    problem = rosenbrock(a=2.0, b=50.0)
    np.testing.assert_array_equal(problem.minimizer, [2.0, 4.0])
    classic = rosenbrock()
    eigenvalues = np.linalg.eigvalsh(classic.hessian(classic.minimizer))
    assert eigenvalues[0] > 0
    assert 2000 < eigenvalues[1] / eigenvalues[0] < 3000
    with pytest.raises(ValueError, match="b must be positive"):
        rosenbrock(b=0.0)


def test_quartic_is_convex_but_not_strongly_convex():
    problem = quartic(4)
    for w in np.random.default_rng(0).normal(size=(20, 4)):
        assert np.linalg.eigvalsh(problem.hessian(w)).min() >= 0
    np.testing.assert_array_equal(problem.hessian(problem.minimizer), np.zeros((4, 4)))
    # Sublinear: gradient descent at a fixed step gains far less than a constant factor.
    w = np.full(4, 0.5)
    values = []
    for _ in range(1000):
        w = w - 0.1 * problem.grad(w)
        values.append(problem.value(w))
    assert values[-1] / values[499] > 0.2


def test_double_well_newton_step_goes_uphill_where_the_hessian_is_indefinite():
    problem = double_well()
    np.testing.assert_allclose(problem.grad([-1.0, 0.0]), 0.0)
    assert problem.value([-1.0, 0.0]) == problem.minimum
    np.testing.assert_allclose(problem.grad([0.0, 0.0]), 0.0)
    w = np.array([0.3, 0.0])
    hessian = problem.hessian(w)
    eigenvalues = np.linalg.eigvalsh(hessian)
    assert eigenvalues[0] < 0 < eigenvalues[1]
    newton = w - np.linalg.solve(hessian, problem.grad(w))
    assert problem.value(newton) > problem.value(w)
    assert problem.value(w - 0.1 * problem.grad(w)) < problem.value(w)


def test_monkey_saddle_is_a_degenerate_critical_point():
    problem = monkey_saddle()
    np.testing.assert_array_equal(problem.grad(np.zeros(2)), 0.0)
    np.testing.assert_array_equal(problem.hessian(np.zeros(2)), 0.0)
    # Three valleys: directions at angles pi/3, pi and 5pi/3 descend.
    for angle in (np.pi / 3, np.pi, 5 * np.pi / 3):
        assert problem.value([np.cos(angle), np.sin(angle)]) == pytest.approx(-1.0)


# ----------------------------------------------------------------------------- datasets


def test_brady_points_without_and_with_spoiler():
    X, y = brady_points()
    np.testing.assert_array_equal(X, [[1, 0], [0, 1], [-1, 0]])
    np.testing.assert_array_equal(y, [1, 1, 0])
    assert X.dtype == np.float64 and y.dtype == np.int64
    assert is_linearly_separable(X, y)
    for t in (0.5, 5.0, 1000.0):
        X, y = brady_points(spoiler=t)
        np.testing.assert_array_equal(X[-1], [0.0, -t])
        assert y[-1] == 1
        assert is_linearly_separable(X, y)
        X_signed, y_signed = brady_points(spoiler=t, signed=True)
        np.testing.assert_array_equal(y_signed, [1, 1, -1, 1])
        np.testing.assert_array_equal(X_signed, X)
    with pytest.raises(ValueError, match=r"spoiler.*-1"):
        brady_points(spoiler=-1.0)


@pytest.mark.parametrize("generator", [two_moons, two_spirals])
@pytest.mark.parametrize("n", [1, 7, 100])
def test_two_class_generators_are_balanced_shuffled_and_seeded(generator, n):
    X, y = generator(n, rng=np.random.default_rng(0), noise=0.05)
    assert X.shape == (2 * n, 2) and X.dtype == np.float64
    assert y.shape == (2 * n,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y, minlength=2), [n, n])
    if n == 100:
        assert 20 < np.sum(y[:100]) < 80, "classes should be interleaved, not in blocks"
    again = generator(n, rng=np.random.default_rng(0), noise=0.05)
    other = generator(n, rng=np.random.default_rng(1), noise=0.05)
    np.testing.assert_array_equal(X, again.X)
    assert not np.array_equal(X, other.X)


def test_noise_free_moons_lie_on_their_circles_and_are_not_separable():
    X, y = two_moons(50, rng=np.random.default_rng(0), noise=0.0)
    np.testing.assert_allclose(np.hypot(*X[y == 0].T), 1.0)
    np.testing.assert_allclose(np.hypot(X[y == 1, 0] - 1, X[y == 1, 1] - 0.5), 1.0)
    assert np.all(X[y == 0, 1] >= 0) and np.all(X[y == 1, 1] <= 0.5), "upper and lower halves"
    assert not is_linearly_separable(X, y)


def test_spirals_are_symmetric_and_need_a_nonlinear_classifier():
    X, y = two_spirals(200, rng=np.random.default_rng(0))
    sort = lambda points: points[np.lexsort(points.T)]  # noqa: E731
    np.testing.assert_allclose(sort(-X[y == 0]), sort(X[y == 1]))
    assert not is_linearly_separable(X, y)
    train_X, train_y = two_spirals(200, rng=np.random.default_rng(1), noise=0.02)
    test_X, test_y = two_spirals(200, rng=np.random.default_rng(2), noise=0.02)
    linear = LogisticRegression().fit(train_X, train_y)
    assert linear.score(test_X, test_y) < 0.75
    nearest = KNeighborsClassifier(n_neighbors=3).fit(train_X, train_y)
    assert nearest.score(test_X, test_y) > 0.95


def test_generators_reject_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"two_moons: n_per_class.*0"):
        two_moons(0, rng=rng)
    with pytest.raises(ValueError, match=r"two_spirals: n_per_class.*2.5"):
        two_spirals(2.5, rng=rng)
    with pytest.raises(ValueError, match=r"two_moons: noise.*-0.1"):
        two_moons(5, rng=rng, noise=-0.1)
    with pytest.raises(ValueError, match="two_spirals: turns"):
        two_spirals(5, rng=rng, turns=0.0)
    with pytest.raises(ValueError, match=r"linear_regression: w must have shape \(3,\).*\(2,\)"):
        linear_regression(10, 3, rng=rng, w=[1.0, 2.0])
    with pytest.raises(ValueError, match="logistic_regression: dim"):
        logistic_regression(10, True, rng=rng)


def test_linear_regression_samples_the_linear_model():
    rng = np.random.default_rng(0)
    X, y, w_true, bias = linear_regression(50, 3, rng=rng, noise=0.0, w=[1.0, -2.0, 0.5], bias=3)
    assert X.shape == (50, 3) and y.shape == (50,) and y.dtype == np.float64
    np.testing.assert_allclose(y, X @ w_true + 3.0, rtol=1e-12)
    assert bias == 3.0
    X, y, w_true, bias = linear_regression(20_000, 4, rng=rng, noise=0.5, bias=-1.0)
    design = np.column_stack([X, np.ones(len(X))])
    fitted, *_ = np.linalg.lstsq(design, y)
    np.testing.assert_allclose(fitted, [*w_true, -1.0], atol=0.02)
    assert np.std(y - design @ fitted) == pytest.approx(0.5, rel=0.03)


def test_logistic_regression_labels_follow_the_sigmoid():
    rng = np.random.default_rng(0)
    X, y, w_true, bias = logistic_regression(20_000, 3, rng=rng, w=[1.5, -1.0, 0.5], bias=0.3)
    assert bias == 0.3
    assert y.dtype == np.int64 and set(np.unique(y)) == {0, 1}
    fit = LogisticRegression(C=1e6).fit(X, y)
    np.testing.assert_allclose(fit.coef_[0], w_true, atol=0.1)
    assert fit.intercept_[0] == pytest.approx(bias, abs=0.1)
    assert not is_linearly_separable(X, y)


def test_separable_logistic_regression_is_split_by_the_true_hyperplane():
    X, y, w_true, bias = logistic_regression(
        500, 3, rng=np.random.default_rng(0), bias=0.2, separable=True
    )
    np.testing.assert_array_equal(y, (X @ w_true + bias > 0).astype(np.int64))
    assert is_linearly_separable(X, y)


def test_digits_shape_dtype_and_range():
    X, y = digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 16.0
    np.testing.assert_array_equal(X, np.round(X))
    np.testing.assert_array_equal(np.unique(y), np.arange(10))


def test_digits_cache_cannot_be_corrupted_by_callers():
    first = digits()
    reference = first.X.copy(), first.y.copy()
    first.X[:] = -1.0
    first.y[:] = 99
    second = digits()
    np.testing.assert_array_equal(second.X, reference[0])
    np.testing.assert_array_equal(second.y, reference[1])
    assert second.X.flags.writeable


# ----------------------------------------------------------------------------- splits


def labelled_indices(class_sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """X holds each sample's own index, so a split can be traced back to the samples."""
    y = np.repeat(np.arange(len(class_sizes)), class_sizes)
    return np.arange(len(y), dtype=np.float64)[:, None], y


@settings(max_examples=60, deadline=None)
@given(
    class_sizes=st.lists(st.integers(1, 60), min_size=1, max_size=5),
    val_fraction=st.floats(0.0, 0.45),
    test_fraction=st.floats(0.0, 0.45),
    stratify=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_split_is_disjoint_complete_and_stratified(
    class_sizes, val_fraction, test_fraction, stratify, seed
):
    X, y = labelled_indices(class_sizes)
    split = train_val_test_split(
        X,
        y,
        rng=np.random.default_rng(seed),
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        stratify=stratify,
    )
    ids = [part.X[:, 0].astype(int) for part in split]
    np.testing.assert_array_equal(np.sort(np.concatenate(ids)), np.arange(len(y)))
    for part, part_ids in zip(split, ids, strict=True):
        np.testing.assert_array_equal(part.y, y[part_ids])
    # Training and test counts are rounded to the nearest integer, validation takes the rest.
    fractions = (1 - val_fraction - test_fraction, val_fraction, test_fraction)
    tolerances = (0.5 + 1e-9, 1.0, 0.5 + 1e-9)
    groups = [y == c for c in range(len(class_sizes))] if stratify else [np.ones_like(y, bool)]
    for group in groups:
        for part_ids, fraction, tolerance in zip(ids, fractions, tolerances, strict=True):
            assert abs(np.sum(group[part_ids]) - fraction * np.sum(group)) <= tolerance


def test_split_is_seeded_and_shuffled():
    X, y = labelled_indices([40, 60])
    a = train_val_test_split(X, y, rng=np.random.default_rng(3))
    b = train_val_test_split(X, y, rng=np.random.default_rng(3))
    c = train_val_test_split(X, y, rng=np.random.default_rng(4))
    for part_a, part_b in zip(a, b, strict=True):
        np.testing.assert_array_equal(part_a.X, part_b.X)
    assert not np.array_equal(a.test.X, c.test.X)
    assert len(a.train.y) == 60 and len(a.val.y) == 20 and len(a.test.y) == 20
    assert not np.all(np.diff(a.train.X[:, 0]) > 0), "parts should come in a random order"
    assert isinstance(a, Split) and isinstance(a.train, Dataset)


def test_split_of_regression_targets_needs_stratify_false():
    X, y, *_ = linear_regression(30, 2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="stratify=False"):
        train_val_test_split(X, y, rng=np.random.default_rng(0))
    split = train_val_test_split(X, y, rng=np.random.default_rng(0), stratify=False)
    assert [len(part.y) for part in split] == [18, 6, 6]


def test_split_rejects_bad_input():
    X, y = labelled_indices([10, 10])
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"\(20, 1\).*\(19,\)"):
        train_val_test_split(X, y[:-1], rng=rng)
    for val, test in [(-0.1, 0.2), (0.2, -0.1), (0.5, 0.5), (0.7, 0.4)]:
        with pytest.raises(ValueError, match=rf"val_fraction={val} and test_fraction={test}"):
            train_val_test_split(X, y, rng=rng, val_fraction=val, test_fraction=test)


# ----------------------------------------------------------------------------- k-fold folds


@settings(max_examples=60, deadline=None)
@given(
    class_sizes=st.lists(st.integers(1, 30), min_size=1, max_size=4),
    k=st.integers(2, 7),
    stratify=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_k_fold_validation_sets_partition_the_samples_and_never_leak(
    class_sizes, k, stratify, seed
):
    _, y = labelled_indices(class_sizes)
    n = len(y)
    assume(n >= 2)
    k = min(k, n)
    folds = k_fold(y, k, rng=np.random.default_rng(seed), stratify=stratify)
    assert len(folds) == k
    vals = [fold.val for fold in folds]
    np.testing.assert_array_equal(np.sort(np.concatenate(vals)), np.arange(n))
    sizes = [len(v) for v in vals]
    assert max(sizes) - min(sizes) <= 1
    for fold in folds:
        assert len(np.intersect1d(fold.train, fold.val)) == 0
        np.testing.assert_array_equal(np.sort(np.concatenate([fold.train, fold.val])), np.arange(n))
    if stratify:
        for c, size in enumerate(class_sizes):
            per_fold = [np.sum(y[v] == c) for v in vals]
            assert max(per_fold) - min(per_fold) <= 1
            assert sum(per_fold) == size


def test_k_fold_is_seeded_and_shuffled():
    y = np.repeat([0, 1], [30, 10])
    a = k_fold(y, 4, rng=np.random.default_rng(1), stratify=True)
    b = k_fold(y, 4, rng=np.random.default_rng(1), stratify=True)
    c = k_fold(y, 4, rng=np.random.default_rng(2), stratify=True)
    for fold_a, fold_b in zip(a, b, strict=True):
        np.testing.assert_array_equal(fold_a.val, fold_b.val)
    assert not all(np.array_equal(fa.val, fc.val) for fa, fc in zip(a, c, strict=True))
    assert sorted(int(np.sum(y[f.val] == 1)) for f in a) == [2, 2, 3, 3]
    # without stratification the classes of a validation set vary with the shuffle
    unstratified = [np.sum(y[f.val] == 1) for f in k_fold(y, 4, rng=np.random.default_rng(5))]
    assert sum(unstratified) == 10
    assert not np.all(np.diff(a[0].val) > 0), "folds should be in a random order"


def test_k_fold_rejects_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="2 <= k <= N = 5"):
        k_fold(np.arange(5), 6, rng=rng)
    with pytest.raises(ValueError, match="2 <= k"):
        k_fold(np.arange(5), 1, rng=rng)
    with pytest.raises(ValueError, match="stratify=True needs 1-D integer"):
        k_fold(np.linspace(0, 1, 10), 2, rng=rng, stratify=True)


# ----------------------------------------------------------------------------- normalizers


@pytest.fixture
def digit_split() -> Split:
    X, y = digits()
    return train_val_test_split(X, y, rng=np.random.default_rng(0))


def test_normalizer_statistics_are_those_of_the_training_set(digit_split):
    train = digit_split.train.X
    minmax = MinMaxNormalizer().fit(train)
    np.testing.assert_array_equal(minmax.min_, train.min(axis=0))
    np.testing.assert_array_equal(minmax.max_, train.max(axis=0))
    zscore = ZScoreNormalizer().fit(train)
    np.testing.assert_allclose(zscore.mean_, train.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(zscore.std_, train.std(axis=0), rtol=1e-15)


def test_normalized_training_features_have_the_promised_range_and_moments(digit_split):
    train = digit_split.train.X
    varying = train.std(axis=0) > 0
    assert not varying.all(), "the digits have constant pixels, which must map to 0"
    Z = ZScoreNormalizer().fit_transform(train)
    np.testing.assert_allclose(Z[:, varying].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z[:, varying].std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(Z[:, ~varying], 0.0)
    Z = MinMaxNormalizer(feature_range=(-1.0, 1.0)).fit_transform(train)
    np.testing.assert_array_equal(Z[:, varying].min(axis=0), -1.0)
    np.testing.assert_allclose(Z[:, varying].max(axis=0), 1.0, rtol=1e-15)
    np.testing.assert_array_equal(Z[:, ~varying], -1.0)


@pytest.mark.parametrize("normalizer", [MinMaxNormalizer, ZScoreNormalizer])
def test_inverse_transform_undoes_transform(normalizer, digit_split):
    fitted = normalizer().fit(digit_split.train.X)
    for part in digit_split:
        restored = fitted.inverse_transform(fitted.transform(part.X))
        np.testing.assert_allclose(restored, part.X, atol=1e-12)


@pytest.mark.parametrize("normalizer", [MinMaxNormalizer, ZScoreNormalizer])
def test_normalize_split_never_looks_at_validation_or_test_data(normalizer, digit_split):
    reference = normalizer()
    normalized = normalize_split(digit_split, reference)
    poisoned_split = Split(
        digit_split.train,
        Dataset(np.full_like(digit_split.val.X, 1e6), digit_split.val.y),
        Dataset(np.full_like(digit_split.test.X, np.nan), digit_split.test.y),
    )
    poisoned = normalizer()
    poisoned_normalized = normalize_split(poisoned_split, poisoned)
    for stat in ("_shift", "_scale"):
        np.testing.assert_array_equal(getattr(poisoned, stat), getattr(reference, stat))
    np.testing.assert_array_equal(poisoned_normalized.train.X, normalized.train.X)
    assert np.isnan(poisoned_normalized.test.X).all()
    # Held-out sets use the training statistics.
    np.testing.assert_array_equal(normalized.val.X, reference.transform(digit_split.val.X))
    np.testing.assert_array_equal(normalized.test.y, digit_split.test.y)


def test_normalize_split_leaves_its_input_alone(digit_split):
    before = [part.X.copy() for part in digit_split]
    normalize_split(digit_split, ZScoreNormalizer())
    for part, X in zip(digit_split, before, strict=True):
        np.testing.assert_array_equal(part.X, X)


@pytest.mark.parametrize("normalizer", [MinMaxNormalizer, ZScoreNormalizer])
def test_normalizers_reject_misuse(normalizer):
    name = normalizer.__name__
    with pytest.raises(RuntimeError, match=rf"{name}.transform.*fit"):
        normalizer().transform(np.ones((3, 2)))
    with pytest.raises(RuntimeError, match=rf"{name}.inverse_transform"):
        normalizer().inverse_transform(np.ones((3, 2)))
    fitted = normalizer().fit(np.arange(12.0).reshape(4, 3))
    with pytest.raises(ValueError, match=rf"{name}.transform: fitted on 3.*\(N, 3\).*\(4, 2\)"):
        fitted.transform(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"\(N, d\).*\(5,\)"):
        normalizer().fit(np.ones(5))
    with pytest.raises(ValueError, match="NaN"):
        normalizer().fit([[1.0], [np.nan]])


def test_min_max_rejects_an_empty_range():
    with pytest.raises(ValueError, match=r"lo < hi.*\(1, 1\)"):
        MinMaxNormalizer(feature_range=(1, 1))


# ----------------------------------------------------------------------------- batches


def indexed(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(n, dtype=np.float64)[:, None] * np.ones(3), np.arange(n)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 300),
    data=st.data(),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_an_epoch_visits_every_sample_once(n, data, drop_last, seed):
    batch_size = data.draw(st.integers(1, n))
    X, y = indexed(n)
    epoch = list(batches(X, y, batch_size, rng=np.random.default_rng(seed), drop_last=drop_last))
    assert len(epoch) == num_batches(n, batch_size, drop_last=drop_last)
    for X_batch, y_batch in epoch:
        np.testing.assert_array_equal(X_batch[:, 0], y_batch)
    sizes = [len(y_batch) for _, y_batch in epoch]
    seen = np.concatenate([y_batch for _, y_batch in epoch])
    assert len(np.unique(seen)) == len(seen)
    if drop_last:
        assert sizes == [batch_size] * (n // batch_size)
    else:
        assert all(size == batch_size for size in sizes[:-1]) and 0 < sizes[-1] <= batch_size
        np.testing.assert_array_equal(np.sort(seen), np.arange(n))


def test_epochs_differ_but_the_sequence_is_reproducible():
    X, y = indexed(50)

    def three_epochs(seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [np.concatenate([b for _, b in batches(X, y, 8, rng=rng)]) for _ in range(3)]

    first, again, other = three_epochs(0), three_epochs(0), three_epochs(1)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[1], first[2])
    assert not np.array_equal(first[0], other[0])


def test_full_batch_stochastic_and_unshuffled():
    X, y = indexed(10)
    (full,) = batches(X, y, None, shuffle=False)
    np.testing.assert_array_equal(full[0], X)
    np.testing.assert_array_equal(full[1], y)
    (shuffled_full,) = batches(X, y, None, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(np.sort(shuffled_full[1]), y)
    stochastic = list(batches(X, y, 1, rng=np.random.default_rng(0)))
    assert len(stochastic) == 10 and all(len(b) == 1 for _, b in stochastic)
    in_order = np.concatenate([b for _, b in batches(X, y, 3, shuffle=False)])
    np.testing.assert_array_equal(in_order, y)


def test_batches_are_copies():
    X, y = indexed(6)
    for X_batch, y_batch in batches(X, y, 2, shuffle=False):
        X_batch[:] = -1
        y_batch[:] = -1
    np.testing.assert_array_equal(y, np.arange(6))
    assert X.min() == 0


def test_num_batches():
    assert num_batches(10, 3) == 4
    assert num_batches(10, 3, drop_last=True) == 3
    assert num_batches(9, 3) == num_batches(9, 3, drop_last=True) == 3
    assert num_batches(10, None) == 1 and num_batches(10, 1) == 10


def test_batches_reject_bad_arguments_when_called():
    X, y = indexed(10)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="shuffle=True needs rng"):
        batches(X, y, 2)
    with pytest.raises(ValueError, match=r"batches: batch_size.*0"):
        batches(X, y, 0, rng=rng)
    with pytest.raises(ValueError, match=r"at most the 10 samples, got 11"):
        batches(X, y, 11, rng=rng)
    for bad in (-2, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            batches(X, y, bad, rng=rng)
    with pytest.raises(ValueError, match=r"\(10, 3\).*\(9,\)"):
        batches(X, y[:-1], 2, rng=rng)
    with pytest.raises(ValueError, match="num_batches: batch_size"):
        num_batches(10, 20)
