"""The book's experiments, one module per chapter.

Each function runs one experiment of a chapter and returns its numbers. The book's pages call
these functions to draw their figures and tables, and ``tests/test_chapter*_claims.py`` call the
same functions to assert the claims the pages make, so the text cannot drift from the code.

- :mod:`minidl.experiments.backprop`  Chapter 1: gradient checks, the cost of the chain rule,
  vanishing gradients, and the Brady–Raghavan–Slawny spoiler
- :mod:`minidl.experiments.convergence`  Chapter 2: the three regimes of a quadratic, the
  condition number, linear against sublinear rates, saddles, mini-batch variance, schedules
- :mod:`minidl.experiments.second_order`  Chapter 3: scaling the axes, Newton's method and its
  step size, damping at a saddle, the cost of the Hessian, L-BFGS against gradient descent
- :mod:`minidl.experiments.rprop_quickprop`  Chapter 4: Rprop against a sweep of gradient-descent
  rates, loss scaling, the variants, Quickprop's secant step and its growth limit on a
  non-convex well
- :mod:`minidl.experiments.momentum`  Chapter 5: the ravine, momentum and Nesterov along and
  across it, the heavy-ball and Nesterov iteration matrices and their rate maps
- :mod:`minidl.experiments.adaptive`  Chapter 6: Adagrad's vanishing rate, rare features, Adam's
  bias corrections, and the race of every optimizer of the course
- :mod:`minidl.experiments.regularization`  Chapter 7: L1 and L2 penalties, dropout, early
  stopping, bias and variance, cross-validation, width
- :mod:`minidl.experiments.tricks`  Chapter 8: initialization and symmetry, input and batch
  normalization, shuffling, overfitting a tiny subset, grid against random search
"""
