"""The course on top of the framework: what the book shows and the homework checks.

- :mod:`course.experiments`  each chapter's experiments (``ch01_backprop`` … ``ch08_tricks``),
  called by the book's pages to draw their figures *and* by the tests to assert their claims
- :mod:`course.plotting`     the visual language: one colour per optimizer, the figure style,
  contour, trajectory and loss helpers
- :mod:`course.widgets`      ``slider_figure``: ipywidgets sliders in Jupyter, range inputs in
  the book
- :mod:`course.checks`       the homework's checks (``check_array``): messages with hints

:mod:`minidl` never imports this package: the framework needs NumPy alone.
"""
