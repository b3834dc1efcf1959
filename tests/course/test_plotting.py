"""The visual language's helpers: what they draw, read back from the axes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from course.plotting import new_figure, semilogy_floored

pytestmark = pytest.mark.widgets


def test_semilogy_floored_draws_zeros_at_the_floor_and_says_so() -> None:
    """Gradient descent at eta_opt: one error, then exact zeros; none may vanish (NaN)."""
    fig, (ax,) = new_figure()
    errors = np.array([1.5, 0.0, 0.0, 0.0])
    semilogy_floored(ax, errors, floor=1e-6, marker="o", color="C0")
    line, zeros = ax.get_lines()
    np.testing.assert_array_equal(line.get_ydata(), [1.5, 1e-6, 1e-6, 1e-6])
    np.testing.assert_array_equal(zeros.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(zeros.get_ydata(), [1e-6] * 3)
    assert zeros.get_marker() == "v" and zeros.get_markerfacecolor() == "none"
    assert ax.get_yscale() == "log" and ax.get_ylim()[0] == pytest.approx(1e-6)
    assert [t.get_text() for t in ax.texts] == ["\u25bd below 1e-06 (0 exactly, or nearly)"]
    semilogy_floored(ax, np.array([1.0, 0.0]), floor=1e-6)  # a second line: one note only
    assert len(ax.texts) == 1
    plt.close(fig)


def test_semilogy_floored_leaves_positive_values_alone() -> None:
    fig, (ax,) = new_figure()
    semilogy_floored(ax, [1.0, 0.1, 0.01], x=[1, 10, 100], floor=1e-9)
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [1, 10, 100])
    np.testing.assert_array_equal(line.get_ydata(), [1.0, 0.1, 0.01])
    assert len(ax.texts) == 0
    plt.close(fig)
