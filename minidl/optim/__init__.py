"""Every optimizer of the course as a pure ``init``/``update`` rule (see :mod:`minidl.optim.base`).

=====================  ==========================================================================
module                 rules
=====================  ==========================================================================
``sgd``                gradient_descent, momentum, nesterov, sgd (torch's SGD)
``adaptive``           adagrad, rmsprop, adadelta, adam, adamw, nadam
``rprop``              rprop (Rprop+, Rprop-, iRprop+, iRprop-), simple_rprop
``quickprop``          quickprop
``second_order``       newton, levenberg_marquardt, bfgs, lbfgs
``line_search``        backtracking_armijo, strong_wolfe
``schedules``          constant, linear_decay, quadratic_decay, exponential_decay, step_decay,
                       ReduceOnPlateau
``modifiers``          l2, l1, proximal_l1, gradient_noise, clip_by_norm, chain
``optimizer``          Optimizer: applies a rule to every parameter of a model
=====================  ==========================================================================
"""

from minidl.optim import schedules
from minidl.optim.adaptive import adadelta, adagrad, adam, adamw, nadam, rmsprop
from minidl.optim.base import Rule
from minidl.optim.line_search import backtracking_armijo, strong_wolfe
from minidl.optim.modifiers import (
    Modifier,
    chain,
    clip_by_norm,
    gradient_noise,
    l1,
    l2,
    proximal_l1,
)
from minidl.optim.optimizer import Optimizer
from minidl.optim.quickprop import quickprop
from minidl.optim.rprop import rprop, simple_rprop
from minidl.optim.schedules import (
    ReduceOnPlateau,
    constant,
    exponential_decay,
    linear_decay,
    quadratic_decay,
    step_decay,
)
from minidl.optim.second_order import bfgs, gauss_newton_matrix, lbfgs, levenberg_marquardt, newton
from minidl.optim.sgd import gradient_descent, momentum, nesterov, sgd

__all__ = [
    "Modifier",
    "Optimizer",
    "ReduceOnPlateau",
    "Rule",
    "adadelta",
    "adagrad",
    "adam",
    "adamw",
    "backtracking_armijo",
    "bfgs",
    "chain",
    "clip_by_norm",
    "constant",
    "exponential_decay",
    "gauss_newton_matrix",
    "gradient_descent",
    "gradient_noise",
    "l1",
    "l2",
    "lbfgs",
    "levenberg_marquardt",
    "linear_decay",
    "momentum",
    "nadam",
    "nesterov",
    "newton",
    "proximal_l1",
    "quadratic_decay",
    "quickprop",
    "rmsprop",
    "rprop",
    "schedules",
    "sgd",
    "simple_rprop",
    "step_decay",
    "strong_wolfe",
]
