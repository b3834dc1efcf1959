"""minidl: the small NumPy framework under the course 'Training neural networks'.

Modules, each with one job:

- :mod:`minidl.autodiff`  expression-tree automatic differentiation (the "graph" view)
- :mod:`minidl.layers`    modular layers with fprop/bprop (the "modules" view)
- :mod:`minidl.functional` the stable sigmoid and softmax the modules share
- :mod:`minidl.losses`    numerically stable losses on logits
- :mod:`minidl.init`      weight initializers driven by an explicit ``numpy.random.Generator``
- :mod:`minidl.data`      the chapters' problems, a real dataset, splits, normalizers, batches
- :mod:`minidl.gradcheck` central-difference gradient checking
- :mod:`minidl.optim`     every optimizer of the course as a pure ``init``/``update`` rule
- :mod:`minidl.minimize`  the loop that runs a rule on a problem and records the run
- :mod:`minidl.train`     one training loop for batch, stochastic and mini-batch descent
- :mod:`minidl.tuning`    grid search and random search over hyperparameters
"""

from minidl import (
    autodiff,
    data,
    gradcheck,
    init,
    layers,
    losses,
    minimize,
    optim,
    train,
    tuning,
)
from minidl.parameter import Parameter

__all__ = [
    "Parameter",
    "autodiff",
    "data",
    "gradcheck",
    "init",
    "layers",
    "losses",
    "minimize",
    "optim",
    "train",
    "tuning",
]
__version__ = "0.1.0"
