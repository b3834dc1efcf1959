"""Time a slider redraw of :func:`course.widgets.slider_figure` on the book's kinds of figure.

Two representative figures, drawn from scratch for every slider position as the chapters do:

- *gradient norms*: per-layer gradient norms of an MLP on a log scale, one line per activation
  (a slider over the depth);
- *trajectory*: contours of an ill-conditioned quadratic and 40 gradient-descent iterates
  (a slider over the learning rate).

Live mode (a Jupyter kernel): *first* is the time until the sliders and their first frame are
sent to the front end (target: <= 2 s), *ready* the time until every frame is rendered (the
cell finishes then; slider moves wait until it does), *frame* the median time to draw and encode
one frame (what a slider move would cost if frames were drawn on demand), and *redraw* the
median time from a slider move until the image holds the new frame, over a drag to the end and
back (target: <= 50 ms). Static mode (the book build): the time to render every frame
into the page, and its size.

Run: ``.venv/bin/python benchmarks/bench_widgets.py``.
"""

from __future__ import annotations

import os
import statistics
import time

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.figure import Figure

from course.plotting import COLORS, contour, new_figure, trajectory
from course.widgets import BOOK_BUILD_ENV, slider_figure
from minidl import data

DEPTHS = list(range(2, 22, 2))
RATES = [0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.14, 0.16, 0.18]
RAVINE = data.problems.quadratic([1.0, 10.0], angle=0.4)


def gradient_norms(depth: int) -> Figure:
    """Per-layer gradient norms: sigmoid shrinks by ~1/4 per layer, ReLU roughly keeps them."""
    fig, (ax,) = new_figure()
    layers = np.arange(1, depth + 1)
    for name, factor in (("sigmoid", 0.25), ("tanh", 0.6), ("relu", 0.95)):
        ax.semilogy(layers, factor ** (depth - layers), marker="o", color=COLORS[name], label=name)
    ax.set_xlabel("layer $l$")
    ax.set_ylabel(r"$\|\partial L / \partial W_l\|$")
    ax.legend()
    return fig


def descent_path(lr: float) -> np.ndarray:
    w = np.array([-2.0, 1.5])
    path = [w]
    for _ in range(40):
        w = w - lr * RAVINE.grad(w)
        path.append(w)
    return np.array(path)


def descent_on_contours(lr: float) -> Figure:
    fig, (ax,) = new_figure()
    contour(ax, RAVINE, xlim=(-2.5, 2.5), ylim=(-2.5, 2.5), resolution=120)
    trajectory(ax, descent_path(lr), label="gradient descent")
    ax.set_title(rf"$\eta = {lr:.2f}$")
    return fig


FIGURES = {
    "gradient norms": (gradient_norms, "depth", DEPTHS),
    "trajectory": (descent_on_contours, "lr", RATES),
}


def timed_moves(view, name: str, values: list) -> list[float]:
    """Seconds per slider move through ``values``, as the slider's observer runs it."""
    slider = view.sliders[name]
    times = []
    for value in values:
        start = time.perf_counter()
        slider.value = value  # the observer: frame -> Image.value
        times.append(time.perf_counter() - start)
    return times


def live(draw, name: str, values: list) -> tuple[float, float, list[float], list[float]]:
    """Seconds until the first frame is shown and until every frame is ready, per frame drawn,
    and per move of a drag there and back."""
    os.environ.pop(BOOK_BUILD_ENV, None)
    start = time.perf_counter()
    view = slider_figure(draw, alt="benchmark", **{name: values})
    first = time.perf_counter() - start  # what _ipython_display_ sends before drawing the rest
    view.render_all()
    ready = time.perf_counter() - start
    frames = []
    for value in values:
        start = time.perf_counter()
        view.spec.render_png({name: value}, compress_level=1)
        frames.append(time.perf_counter() - start)
    return first, ready, frames, timed_moves(view, name, values[1:] + values[-2::-1])


def static_render(draw, name: str, values: list) -> tuple[float, int]:
    os.environ[BOOK_BUILD_ENV] = "1"
    start = time.perf_counter()
    html = slider_figure(draw, alt="benchmark figure", **{name: values})._repr_html_()
    return time.perf_counter() - start, len(html)


def main() -> None:
    live(gradient_norms, "depth", DEPTHS[:3])  # warm up fonts and caches
    print(
        f"{'figure':<15} {'frames':>6} {'first':>7} {'ready':>7} {'frame':>9} {'redraw':>9}"
        "   static build"
    )
    for label, (draw, name, values) in FIGURES.items():
        first, ready, frames, moves = live(draw, name, values)
        seconds, size = static_render(draw, name, values)
        frame, move = 1e3 * statistics.median(frames), 1e3 * statistics.median(moves)
        print(
            f"{label:<15} {len(values):>6} {first:>5.2f} s {ready:>5.2f} s {frame:>6.1f} ms "
            f"{move:>6.2f} ms"
            f"   {seconds:.2f} s, {size / 1e3:.0f} kB HTML"
        )
    print("live: first = sliders and first frame shown, ready = every frame rendered,")
    print("frame = median draw + encode, redraw = median move;")
    print("targets: first <= 2 s, redraw <= 50 ms")


if __name__ == "__main__":
    main()
