"""The book's experiments, one module per chapter.

Each function runs one experiment of a chapter and returns its numbers. The book's pages call
these functions to draw their figures and tables, and ``tests/test_chapter*_claims.py`` call the
same functions to assert the claims the pages make, so the text cannot drift from the code.

- :mod:`minidl.experiments.backprop`  Chapter 1: gradient checks, the cost of the chain rule,
  vanishing gradients, and the Brady–Raghavan–Slawny spoiler
- :mod:`minidl.experiments.tricks`  Chapter 8: initialization and symmetry, input and batch
  normalization, shuffling, overfitting a tiny subset, grid against random search
"""
