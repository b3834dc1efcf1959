"""The book's experiments, one module per chapter.

Each function runs one experiment of a chapter and returns its numbers. The book's pages call
these functions to draw their figures and tables, and ``tests/book/test_chapter*_claims.py``
call the same functions to assert the claims the pages make, so the text cannot drift from the
code.

- ``ch01_backprop``  Chapter 1: gradient checks, the cost of the chain rule, vanishing gradients,
  and the Brady–Raghavan–Slawny spoiler
- ``ch02_gradient_descent``  Chapter 2: the three regimes of a quadratic, the condition number,
  linear against sublinear rates, saddles, mini-batch variance, schedules
- ``ch03_second_order``  Chapter 3: scaling the axes, Newton's method and its step size, damping at
  a saddle, the cost of the Hessian, L-BFGS against gradient descent
- ``ch04_rprop_quickprop``  Chapter 4: Rprop against a sweep of gradient-descent rates, loss
  scaling, the variants, Quickprop's secant step and its growth limit on a non-convex well
- ``ch05_momentum``  Chapter 5: the ravine, momentum and Nesterov along and across it, the heavy-
  ball and Nesterov iteration matrices and their rate maps
- ``ch06_adaptive``  Chapter 6: Adagrad's vanishing rate, rare features, Adam's bias corrections,
  and the race of every optimizer of the course
- ``ch07_regularization``  Chapter 7: L1 and L2 penalties, dropout, early stopping, bias and
  variance, cross-validation, width
- ``ch08_tricks``  Chapter 8: initialization and symmetry, input and batch normalization, shuffling,
  overfitting a tiny subset, grid against random search
"""
