"""The course's one visual language: a colour per optimizer and per recurring idea, and the
figure helpers every chapter uses (loss curves on a log scale, trajectories on contour plots).

Colours come from the Okabe–Ito palette, which stays distinguishable for the common forms of
colour blindness; line styles double the distinction where colours alone would carry it.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

OPTIMIZER_COLORS: dict[str, str] = {
    "gradient descent": "#000000",
    "momentum": "#E69F00",
    "nesterov": "#D55E00",
    "newton": "#0072B2",
    "lbfgs": "#56B4E9",
    "rprop": "#009E73",
    "quickprop": "#CC79A7",
    "adagrad": "#8C564B",
    "rmsprop": "#7F7F7F",
    "adadelta": "#BCBD22",
    "adam": "#9467BD",
}
"""One colour per optimizer, the same on every page of the book."""

COLORS: dict[str, str] = {
    **OPTIMIZER_COLORS,
    "sigmoid": "#0072B2",
    "tanh": "#009E73",
    "relu": "#D55E00",
    "train": "#0072B2",
    "validation": "#D55E00",
    "test": "#009E73",
    "class 0": "#0072B2",
    "class 1": "#D55E00",
    "no penalty": "#7F7F7F",
    "L2": "#0072B2",
    "L1": "#CC79A7",
    "start": "#000000",
    "minimum": "#D55E00",
}
"""Colours for everything else that recurs: activations, data splits, the two classes, the
penalties."""


def use_style() -> None:
    """Matplotlib settings shared by every figure of the book."""
    plt.rcParams.update(
        {
            "figure.figsize": (6.4, 4.0),
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.titlesize": "medium",
            "legend.frameon": False,
            "font.size": 10,
        }
    )


def loss_curve(
    ax: Axes, values: Sequence[float], *, label: str, color: str | None = None, log: bool = True
) -> None:
    """A loss against the step index, on a log scale when it spans decades."""
    values = np.asarray(values, dtype=float)
    ax.plot(np.arange(len(values)), values, label=label, color=color)
    positive = values[np.isfinite(values) & (values > 0)]
    if log and positive.size and positive.max() / positive.min() > 100:
        ax.set_yscale("log")
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"loss $L(w_t)$")


def semilogy_floored(
    ax: Axes, y: Sequence[float], *, floor: float, x: Sequence[float] | None = None, **style
) -> None:
    r"""``y`` against ``x`` (default: the index) on a log axis that starts at ``floor``.

    An error that reaches exactly 0 (Newton on a quadratic, gradient descent at
    :math:`\eta_{\mathrm{opt}}`) has no place on a log axis: dropped (NaN) it vanishes, clamped
    to a tiny number it poses as a value. Here every value below ``floor`` is drawn *at* the
    floor as a hollow downward triangle, and the panel says once what the triangles mean.
    """
    y = np.asarray(y, dtype=float)
    x = np.arange(len(y)) if x is None else np.asarray(x, dtype=float)
    below = y < floor
    ax.semilogy(x, np.where(below, floor, y), **style)
    if below.any():
        color = ax.get_lines()[-1].get_color()
        ax.plot(
            x[below],
            np.full(below.sum(), floor),
            linestyle="none",
            marker="v",
            markersize=7,
            markerfacecolor="none",
            markeredgecolor=color,
            clip_on=False,
        )
        if not getattr(ax, "_floor_noted", False):
            ax.text(
                0.99,
                0.02,
                f"\u25bd below {floor:.0e} (0 exactly, or nearly)",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize="small",
            )
            ax._floor_noted = True
    ax.set_ylim(bottom=floor)


def contour(
    ax: Axes,
    problem,
    *,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    levels: int = 30,
    resolution: int = 200,
) -> None:
    """Contours of a 2-D :class:`minidl.data.Problem` on log-spaced levels, minimum marked."""
    xs, ys = np.linspace(*xlim, resolution), np.linspace(*ylim, resolution)
    X, Y = np.meshgrid(xs, ys)
    Z = problem.value_grid(X, Y)
    low = problem.minimum if np.isfinite(problem.minimum) else Z.min()
    shifted = Z - low + 1e-12
    ax.contour(
        X,
        Y,
        shifted,
        levels=np.geomspace(max(shifted.min(), 1e-6), shifted.max(), levels),
        colors="#999999",
        linewidths=0.6,
    )
    if problem.minimizer is not None:
        ax.plot(
            *problem.minimizer,
            marker="*",
            markersize=12,
            color=COLORS["minimum"],
            linestyle="none",
            label="minimum",
        )
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")


def trajectory(ax: Axes, path: np.ndarray, *, label: str, color: str | None = None) -> None:
    """The iterates :math:`w_0, w_1, \\ldots` of an optimizer on a 2-D problem, start marked."""
    path = np.asarray(path)
    color = color or OPTIMIZER_COLORS.get(label.lower())
    ax.plot(
        path[:, 0], path[:, 1], marker=".", markersize=3, linewidth=1.2, label=label, color=color
    )
    ax.plot(*path[0], marker="o", color=COLORS["start"], linestyle="none")


def new_figure(
    ncols: int = 1, *, nrows: int = 1, width: float = 6.4, height: float = 4.0
) -> tuple[Figure, list]:
    """A figure with ``nrows`` rows of ``ncols`` axes, in the course style; the axes row by row."""
    use_style()
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, height), squeeze=False, layout="constrained"
    )
    return fig, list(axes.ravel())
