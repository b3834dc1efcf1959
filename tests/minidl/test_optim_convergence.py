# ruff: noqa: E501  (the table of cases below is wider than 100 columns on purpose)
r"""Every rule of the course reaches the minimum of two standard problems within a stated budget.

The problems (from :mod:`minidl.data.problems`):

- an ill-conditioned quadratic, eigenvalues 1 and 100 (:math:`\kappa = 100`), eigenvectors
  rotated by 30°, minimizer 0, started at (3, -2);
- Rosenbrock's function, minimizer (1, 1), started at the classic (-1.2, 1).

A rule *converges* when :math:`\|w_k - w^*\| \le` ``TOL`` at some step :math:`k \le` budget.
Each row of ``CASES`` fixes the rule's hyperparameters for one problem (and a learning-rate
schedule where the rule needs one) and the budget. Budgets are honest: the column ``measured``
is the number of steps the rule takes with these settings, and the budget adds about 30 %
(at least 2 steps), so a change that makes a rule markedly slower fails here. Rules are
driven by :func:`minidl.minimize.minimize`, without the training shell; a rule that needs the
loss, Hessian or a line search's ``loss_fn`` gets them exactly.

Choices that are not defaults, and why:

- rates below the stability limit :math:`2/\lambda_{\max}` of gradient descent
  (:math:`\lambda_{\max} = 100` on the quadratic, about 1000 at Rosenbrock's minimizer);
  heavy-ball momentum with Polyak's optimal :math:`\eta = 4/(\sqrt{\lambda_{\max}} + \sqrt{\lambda_{\min}})^2`,
  :math:`\beta = ((\sqrt\kappa - 1)/(\sqrt\kappa + 1))^2` on the quadratic;
- RMSprop with a constant rate ends in a cycle of size about :math:`\eta` around the minimum
  (its normalized step does not shrink with the gradient), so it gets an exponential decay;
  Adadelta on Rosenbrock, which with a constant rate cycles at a distance of about
  :math:`10^{-3}`, too; AdamW keeps its default decoupled decay on the quadratic
  (minimizer 0, where the decay pulls anyway) and none on Rosenbrock, whose minimizer it
  would move;
- Rprop on Rosenbrock needs :math:`\Delta_{\min}` below the valley's width: with torch's
  :math:`10^{-6}` the sign steps cross the narrow valley and cycle at a distance of about
  :math:`10^{-3}`;
- L-BFGS with the Armijo search is slow on Rosenbrock: without the curvature condition many
  pairs have :math:`y^\top s \le 0` in the non-convex part and are skipped;
- the lecture's simplified Rprop never reverses a coordinate's direction, so it stalls on both
  problems; it has its own tests below (converges on an axis-aligned quadratic, stalls on the
  rotated one).
"""

import math
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import numpy as np
import pytest

from minidl.data.problems import Problem, quadratic, rosenbrock, rotated_quadratic
from minidl.minimize import minimize
from minidl.optim.adaptive import adadelta, adagrad, adam, adamw, nadam, rmsprop
from minidl.optim.base import Rule
from minidl.optim.quickprop import quickprop
from minidl.optim.rprop import rprop, simple_rprop
from minidl.optim.schedules import Schedule, exponential_decay
from minidl.optim.second_order import bfgs, lbfgs, levenberg_marquardt, newton
from minidl.optim.sgd import gradient_descent, momentum, nesterov, sgd

pytestmark = pytest.mark.optim

TOL = 1e-4
PROBLEMS: dict[str, tuple[Problem, np.ndarray]] = {
    "quadratic": (rotated_quadratic(100.0), np.array([3.0, -2.0])),
    "rosenbrock": (rosenbrock(), np.array([-1.2, 1.0])),
}
# optimal constants for the quadratic's eigenvalues 1 and 100 (Polyak 1964; Nesterov 2004)
KAPPA = 100.0
POLYAK_LR = 4 / (math.sqrt(100.0) + math.sqrt(1.0)) ** 2
POLYAK_BETA = ((math.sqrt(KAPPA) - 1) / (math.sqrt(KAPPA) + 1)) ** 2
NESTEROV_BETA = (math.sqrt(KAPPA) - 1) / (math.sqrt(KAPPA) + 1)


class Case(NamedTuple):
    name: str
    problem: str
    measured: int
    budget: int
    make: Callable[[], Rule]
    schedule: Schedule | None = None


def rprop_rosenbrock(variant: str) -> Callable[[], Rule]:
    return partial(rprop, variant=variant, step_sizes=(1e-9, 50.0))


# fmt: off
CASES = [
    # name, problem, measured, budget, rule with its hyperparameters (, schedule)
    Case("gradient_descent",   "quadratic",  521,   678,   partial(gradient_descent, lr=0.0198)),
    Case("gradient_descent",   "rosenbrock", 11381, 14796, partial(gradient_descent, lr=0.002)),
    Case("momentum",           "quadratic",  77,    101,   partial(momentum, lr=POLYAK_LR, beta=POLYAK_BETA)),
    Case("momentum",           "rosenbrock", 2133,  2773,  partial(momentum, lr=1e-3, beta=0.9)),
    Case("nesterov",           "quadratic",  116,   151,   partial(nesterov, lr=0.01, beta=NESTEROV_BETA)),
    Case("nesterov",           "rosenbrock", 2176,  2829,  partial(nesterov, lr=1e-3, beta=0.9)),
    Case("sgd",                "quadratic",  116,   151,   partial(sgd, lr=0.01, momentum=NESTEROV_BETA, nesterov=True)),
    Case("sgd",                "rosenbrock", 2133,  2773,  partial(sgd, lr=1e-3, momentum=0.9)),
    Case("adagrad",            "quadratic",  2143,  2786,  partial(adagrad, lr=1.0)),
    Case("adagrad",            "rosenbrock", 11856, 15413, partial(adagrad, lr=0.5)),
    Case("rmsprop",            "quadratic",  1609,  2092,  partial(rmsprop, lr=0.01), exponential_decay(0.01, 1e-3)),
    Case("rmsprop",            "rosenbrock", 8207,  10670, partial(rmsprop, lr=0.01), exponential_decay(0.01, 1e-3)),
    Case("adadelta",           "quadratic",  1203,  1564,  partial(adadelta, lr=0.015, eps=1e-2)),
    Case("adadelta",           "rosenbrock", 17484, 22730, partial(adadelta, lr=0.03), exponential_decay(0.03, 1e-4)),
    Case("adam",               "quadratic",  1465,  1905,  partial(adam, lr=0.1)),
    Case("adam",               "rosenbrock", 1001,  1302,  partial(adam, lr=0.2)),
    Case("adamw",              "quadratic",  1325,  1723,  partial(adamw, lr=0.1)),
    Case("adamw",              "rosenbrock", 1001,  1302,  partial(adamw, lr=0.2, weight_decay=0.0)),
    Case("nadam",              "quadratic",  1022,  1329,  partial(nadam, lr=0.03, betas=(0.9, 0.99))),
    Case("nadam",              "rosenbrock", 8426,  10954, partial(nadam, lr=3e-3)),
    Case("rprop+",             "quadratic",  804,   1046,  partial(rprop, variant="rprop+")),
    Case("rprop+",             "rosenbrock", 14814, 19259, rprop_rosenbrock("rprop+")),
    Case("rprop-",             "quadratic",  529,   688,   partial(rprop, variant="rprop-")),
    Case("rprop-",             "rosenbrock", 15294, 19883, rprop_rosenbrock("rprop-")),
    Case("irprop+",            "quadratic",  255,   332,   partial(rprop, variant="irprop+")),
    Case("irprop+",            "rosenbrock", 5272,  6854,  rprop_rosenbrock("irprop+")),
    Case("irprop-",            "quadratic",  247,   322,   partial(rprop, variant="irprop-")),
    Case("irprop-",            "rosenbrock", 5310,  6903,  rprop_rosenbrock("irprop-")),
    Case("quickprop",          "quadratic",  118,   154,   partial(quickprop, lr=0.01)),
    Case("quickprop",          "rosenbrock", 2168,  2819,  partial(quickprop, lr=1e-3)),
    Case("newton",             "quadratic",  1,     3,     newton),
    Case("newton",             "rosenbrock", 5,     7,     newton),
    Case("levenberg_marquardt","quadratic",  2,     4,     partial(levenberg_marquardt, damping=1e-3)),
    Case("levenberg_marquardt","rosenbrock", 6,     8,     partial(levenberg_marquardt, damping=1e-3)),
    Case("lm_adaptive",        "quadratic",  4,     6,     partial(levenberg_marquardt, damping=1.0, adaptive=True)),
    Case("lm_adaptive",        "rosenbrock", 23,    30,    partial(levenberg_marquardt, damping=1.0, adaptive=True)),
    Case("bfgs_wolfe",         "quadratic",  3,     5,     bfgs),
    Case("bfgs_wolfe",         "rosenbrock", 32,    42,    bfgs),
    Case("bfgs_armijo",        "quadratic",  5,     7,     partial(bfgs, line_search="armijo")),
    Case("bfgs_armijo",        "rosenbrock", 35,    46,    partial(bfgs, line_search="armijo")),
    Case("lbfgs_wolfe",        "quadratic",  3,     5,     lbfgs),
    Case("lbfgs_wolfe",        "rosenbrock", 32,    42,    lbfgs),
    Case("lbfgs_armijo",       "quadratic",  4,     6,     partial(lbfgs, line_search="armijo")),
    Case("lbfgs_armijo",       "rosenbrock", 670,   871,   partial(lbfgs, line_search="armijo")),
]
# fmt: on


def steps_to_converge(
    rule: Rule, problem: Problem, start: np.ndarray, budget: int, schedule: Schedule | None = None
) -> int | None:
    """The first step k <= budget with ||w_k - w*|| <= TOL, or None."""
    run = minimize(
        rule,
        problem,
        start,
        budget,
        schedule=schedule,
        until=lambda w: np.linalg.norm(w - problem.minimizer) <= TOL,
    )
    return run.steps if run.converged else None


@pytest.mark.parametrize("case", CASES, ids=[f"{c.name}-{c.problem}" for c in CASES])
def test_rule_converges_within_its_budget(case):
    problem, start = PROBLEMS[case.problem]
    steps = steps_to_converge(case.make(), problem, start, case.budget, case.schedule)
    assert steps is not None, f"{case.name} did not reach {TOL} in {case.budget} steps"


def test_every_rule_of_the_course_is_in_the_table_on_both_problems():
    names = {
        "gradient_descent", "momentum", "nesterov", "sgd", "adagrad", "rmsprop", "adadelta",
        "adam", "adamw", "nadam", "rprop+", "rprop-", "irprop+", "irprop-", "quickprop",
        "newton", "levenberg_marquardt", "lm_adaptive", "bfgs_wolfe", "bfgs_armijo",
        "lbfgs_wolfe", "lbfgs_armijo",
    }  # fmt: skip
    assert {(c.name, c.problem) for c in CASES} == {(n, p) for n in names for p in PROBLEMS}
    for case in CASES:
        assert case.budget == max(case.measured + 2, math.ceil(1.3 * case.measured))


def test_simple_rprop_converges_when_the_axes_are_not_rotated_and_stalls_when_they_are():
    aligned = quadratic([1.0, 100.0])
    start = np.array([3.0, -2.0])
    assert steps_to_converge(simple_rprop(), aligned, start, budget=36) is not None  # 27 steps
    rotated, start = PROBLEMS["quadratic"]
    assert steps_to_converge(simple_rprop(), rotated, start, budget=2000) is None
