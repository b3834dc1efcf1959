r"""Chapter 8 (Tricks of the trade): the experiments behind the chapter's claims.

All of them train small networks on scikit-learn's 8x8 digits (:func:`digits_split`).

- :func:`constant_init_symmetry`: constant weights keep every hidden unit identical through
  training (the symmetry argument of Glorot & Bengio, 2010; LeCun et al., 1998).
- :func:`layer_statistics`: the spread of activations and gradients per layer against the
  initialization's scale, with and without batch normalization.
- :func:`epochs_to_target`: the same network reaches a target loss in fewer epochs on
  normalized inputs (LeCun, Bottou, Orr & Müller, 1998, Sec. 4.3).
- :func:`batchnorm_learning_rates`: batch normalization trains at rates where the plain
  network diverges (Ioffe & Szegedy, 2015).
- :func:`seed_spread`: the spread of one setting's result over seeds.
- :func:`search_comparison`: random search finds a good rate in fewer trials than grid search of
  the same budget when one of two hyperparameters matters (Bergstra & Bengio, 2012).
- :func:`shuffling_comparison`: visiting the examples sorted by class instead of shuffled.
- :func:`curriculum_comparison`: easy examples first (Bengio et al., 2009) against shuffling.
- :func:`gradient_noise_on_digits`: annealed gradient noise (Neelakantan et al., 2015) on a
  tanh network, against the same run without it.
- :func:`saddle_escape_with_noise`: the same noise leaves a saddle that the gradient never leaves.
- :func:`overfit_tiny_subset`: a correct network memorizes 20 examples; a classic bug does not.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np

from minidl import data, init, layers, losses, optim, train, tuning

Inputs = Literal["raw", "min-max", "z-score"]


@functools.cache
def _split(seed: int) -> data.Split:
    d = data.digits()
    return data.train_val_test_split(d.X, d.y, rng=np.random.default_rng(seed))


def digits_split(inputs: Inputs = "z-score", *, seed: int = 0) -> data.Split:
    """The digits split 60/20/20 at random, with raw grey levels ``0..16`` or normalized by a
    normalizer fitted on the training set only (:func:`minidl.data.normalize_split`)."""
    split = _split(seed)
    if inputs == "raw":
        return split
    normalizer = {"min-max": data.MinMaxNormalizer, "z-score": data.ZScoreNormalizer}[inputs]()
    return data.normalize_split(split, normalizer)


def _fit(model, rule, train_data, *, epochs, batch_size=64, seed=1, val_data=None):
    """``train.train`` with the cross-entropy, quietly: a diverged run is a result here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", train.TrainingDiverged)
        return train.train(
            model,
            losses.SoftmaxCrossEntropy(),
            rule,
            train_data,
            epochs=epochs,
            batch_size=batch_size,
            rng=np.random.default_rng(seed),
            val_data=val_data,
            track_norms=False,
        )


def _final_loss(history: train.History) -> float:
    return math.inf if history.diverged or not history.train_loss else history.train_loss[-1]


# ----- initialization ---------------------------------------------------------------------------


class Symmetry(NamedTuple):
    """First-layer weights after training from constant and from random weights."""

    W_constant: np.ndarray
    W_random: np.ndarray
    accuracy_constant: float
    accuracy_random: float


def unit_spread(W: np.ndarray) -> float:
    r"""How different the hidden units are: :math:`\max_i \lVert W_{i,:} - W_{1,:}\rVert`."""
    return float(np.max(np.linalg.norm(W - W[0], axis=1)))


def constant_init_symmetry(*, value: float = 0.1, hidden: int = 16, epochs: int = 10) -> Symmetry:
    """Train a 64-``hidden``-10 tanh MLP on digits from constant weights ``value`` and from
    Glorot-uniform weights, same data order; return both first-layer weight matrices."""
    split = digits_split()

    def constant(shape, *, rng, dtype):
        return init.constant(shape, value, dtype=dtype)

    results = []
    for weights in (constant, init.glorot_uniform):
        model = layers.mlp(
            [64, hidden, 10], rng=np.random.default_rng(0), activation="tanh", init=weights
        )
        history = _fit(model, optim.gradient_descent(0.1), split.train, epochs=epochs)
        results.append((model[0].W.value.copy(), history.train_accuracy[-1]))
    (W_c, acc_c), (W_r, acc_r) = results
    return Symmetry(W_c, W_r, acc_c, acc_r)


class LayerStatistics(NamedTuple):
    """Per hidden layer: the standard deviation of the activations and of the gradients
    :math:`\\partial L / \\partial z^{(l)}` at the layer's pre-activation."""

    activation_std: np.ndarray
    gradient_std: np.ndarray


class _Probe(layers.Layer):
    """An identity layer that records the spread of what passes through it, both ways."""

    def forward(self, x):
        self.forward_std = float(np.std(x))
        return x

    def backward(self, grad_y):
        self.backward_std = float(np.std(grad_y))
        return grad_y


def layer_statistics(
    gain: float,
    activation: Literal["tanh", "relu"],
    *,
    batch_norm: bool = False,
    depth: int = 8,
    width: int = 64,
    seed: int = 0,
) -> LayerStatistics:
    r"""One forward and backward pass of a ``depth``-layer MLP on 256 z-scored digits, with
    weights :math:`W_{ij} \sim \mathcal N(0, \text{gain}^2/\text{fan\_in})`.

    ``gain = 1`` is Glorot's variance for square tanh layers, ``gain = sqrt(2)`` He's for ReLU.
    With ``batch_norm`` a :class:`~minidl.layers.BatchNorm` (training mode) follows every hidden
    linear layer. Returns the standard deviation of each hidden layer's activation
    :math:`h^{(l)}` and of the gradient with respect to its pre-activation :math:`z^{(l)}`.
    """
    rng = np.random.default_rng(seed)
    split = digits_split()
    X, y = split.train.X[:256], split.train.y[:256]

    def scaled(shape, *, rng, dtype):
        return init.normal(shape, rng=rng, std=gain / math.sqrt(shape[1]), dtype=dtype)

    act = {"tanh": layers.Tanh, "relu": layers.ReLU}[activation]
    stack, z_probes, h_probes, fan_in = [], [], [], X.shape[1]
    for _ in range(depth):
        stack.append(layers.Linear(fan_in, width, rng=rng, init=scaled))
        if batch_norm:
            stack.append(layers.BatchNorm(width))
        z_probes.append(_Probe())
        h_probes.append(_Probe())
        stack += [z_probes[-1], act(), h_probes[-1]]
        fan_in = width
    stack.append(layers.Linear(fan_in, 10, rng=rng, init=scaled))
    model = layers.Sequential(*stack)
    loss = losses.SoftmaxCrossEntropy()
    with np.errstate(over="ignore", invalid="ignore"):
        loss.forward(model.forward(X), y)
        model.backward(loss.backward())
    return LayerStatistics(
        np.array([p.forward_std for p in h_probes]), np.array([p.backward_std for p in z_probes])
    )


# ----- data normalization -----------------------------------------------------------------------


class TargetRun(NamedTuple):
    """Training losses per epoch of one run, and the first epoch at or below the target."""

    lr: float
    train_loss: list[float]
    epochs_to_target: float  # inf when the target is never reached


def epochs_to_target(
    inputs: Inputs,
    lrs: Sequence[float],
    *,
    target: float = 0.2,
    epochs: int = 12,
    seed: int = 0,
) -> list[TargetRun]:
    """The same 64-32-10 tanh MLP (same initial weights, same batches of 64) trained by SGD on
    digits with ``inputs`` raw or normalized, once per rate in ``lrs``."""
    split = digits_split(inputs)
    runs = []
    for lr in lrs:
        model = layers.mlp([64, 32, 10], rng=np.random.default_rng(seed), activation="tanh")
        history = _fit(model, optim.gradient_descent(lr), split.train, epochs=epochs, seed=seed)
        curve = history.train_loss if not history.diverged else [math.inf]
        reached = [e + 1 for e, value in enumerate(curve) if value <= target]
        runs.append(TargetRun(lr, curve, reached[0] if reached else math.inf))
    return runs


def fastest(runs: Sequence[TargetRun]) -> TargetRun:
    """The run that reaches the target in the fewest epochs (the best-tuned rate)."""
    return min(runs, key=lambda r: (r.epochs_to_target, r.train_loss[-1]))


# ----- batch normalization ----------------------------------------------------------------------


def deep_relu_net(*, batch_norm: bool, seed: int, depth: int = 4, width: int = 64):
    """A 64-(``width`` x ``depth``)-10 ReLU MLP with He weights, optionally with a
    :class:`~minidl.layers.BatchNorm` between every hidden linear layer and its ReLU."""
    rng = np.random.default_rng(seed)
    stack, fan_in = [], 64
    for _ in range(depth):
        stack.append(layers.Linear(fan_in, width, rng=rng, init=init.he_normal))
        if batch_norm:
            stack.append(layers.BatchNorm(width))
        stack.append(layers.ReLU())
        fan_in = width
    stack.append(layers.Linear(fan_in, 10, rng=rng))
    return layers.Sequential(*stack)


def batchnorm_learning_rates(
    lrs: Sequence[float], seeds: Sequence[int], *, epochs: int = 8
) -> dict[str, np.ndarray]:
    """Final training loss (``inf`` if it diverged) of the deep ReLU net with and without batch
    norm, trained by SGD (batches of 64) on z-scored digits: ``{"plain"|"batch norm": (lrs,
    seeds)}``."""
    split = digits_split()
    out = {}
    for name, bn in [("plain", False), ("batch norm", True)]:
        out[name] = np.array(
            [
                [
                    _final_loss(
                        _fit(
                            deep_relu_net(batch_norm=bn, seed=seed),
                            optim.gradient_descent(lr),
                            split.train,
                            epochs=epochs,
                            seed=seed,
                        )
                    )
                    for seed in seeds
                ]
                for lr in lrs
            ]
        )
    return out


# ----- hyperparameter search --------------------------------------------------------------------

LR_RANGE = tuning.Range(1e-3, 30.0, log=True)
DECAY_RANGE = tuning.Range(1e-6, 1e-3, log=True)


def search_objective(lr: float, weight_decay: float, *, seed: int = 0) -> float:
    """Validation loss of a 64-16-10 tanh MLP after 2 epochs of SGD (batches of 50) on 500
    z-scored digits, with L2 weight decay. The rate matters a lot; the decay, over
    ``DECAY_RANGE``, hardly at all. ``seed`` draws the initial weights, ``seed + 1`` the order
    of the batches. A diverged run scores ``inf``."""
    split = digits_split()
    model = layers.mlp([64, 16, 10], rng=np.random.default_rng(seed), activation="tanh")
    rule = optim.chain(optim.l2(weight_decay), optim.gradient_descent(lr))
    train_data = (split.train.X[:500], split.train.y[:500])
    history = _fit(
        model, rule, train_data, epochs=2, batch_size=50, seed=seed + 1, val_data=split.val
    )
    return math.inf if history.diverged else float(history.val_loss[-1])


def seed_spread(lrs: Sequence[float], seeds: Sequence[int]) -> np.ndarray:
    """:func:`search_objective` (smallest decay) for every rate and seed: shape ``(rates,
    seeds)``. The spread along the seeds is what one run cannot show."""
    return np.array(
        [[search_objective(lr, DECAY_RANGE.low, seed=seed) for seed in seeds] for lr in lrs]
    )


def shifted_grid(r: tuning.Range, n: int, *, rng: np.random.Generator) -> list[float]:
    """``n`` points at the centres of ``n`` equal cells of ``r`` (in log scale if ``r.log``),
    all shifted by one random offset of at most half a cell, so nobody places them by hand."""
    lo, hi = (math.log(r.low), math.log(r.high)) if r.log else (r.low, r.high)
    cell = (hi - lo) / n
    points = lo + cell * (np.arange(n) + 0.5 + rng.uniform(-0.5, 0.5))
    return [float(math.exp(p) if r.log else p) for p in points]


class SearchComparison(NamedTuple):
    """Per seed, the grid's and random search's trials; the threshold of a "good" rate."""

    grid: list[tuning.SearchResult]
    random: list[tuning.SearchResult]
    good: float


def trials_to_good(result: tuning.SearchResult, good: float) -> float:
    """The first trial (1-based) whose score is at most ``good``; ``inf`` if none is."""
    hits = np.flatnonzero(result.best_so_far() <= good)
    return float(hits[0] + 1) if hits.size else math.inf


def lr_scan(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """:func:`search_objective` on ``n`` log-spaced rates of ``LR_RANGE`` (smallest decay)."""
    lrs = np.geomspace(LR_RANGE.low, LR_RANGE.high, n)
    return lrs, np.array([search_objective(lr, DECAY_RANGE.low) for lr in lrs])


def search_comparison(
    seeds: Sequence[int], *, per_axis: int = 4, tolerance: float = 1.15
) -> SearchComparison:
    """Grid search (``per_axis`` rates x ``per_axis`` decays, a shifted grid per seed, rates
    varying fastest, the order most generous to the grid) against random search with the same
    budget ``per_axis**2``, per seed. A score within ``tolerance`` of the best of a fine rate scan
    is "good"."""
    _, scan = lr_scan()
    good = tolerance * float(scan.min())
    grids, randoms = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        grid = {
            "weight_decay": shifted_grid(DECAY_RANGE, per_axis, rng=rng),
            "lr": shifted_grid(LR_RANGE, per_axis, rng=rng),
        }
        grids.append(tuning.grid_search(search_objective, grid))
        space = {"lr": LR_RANGE, "weight_decay": DECAY_RANGE}
        randoms.append(tuning.random_search(search_objective, space, per_axis**2, rng=rng))
    return SearchComparison(grids, randoms, good)


# ----- shuffling and debugging ------------------------------------------------------------------


def shuffling_comparison(*, epochs: int = 5, lr: float = 1.0) -> dict[str, list[float]]:
    """Validation loss per epoch of the 64-32-10 tanh MLP trained by SGD on z-scored digits with
    the batches reshuffled every epoch, or in a fixed order sorted by class."""
    split = digits_split()
    order = np.argsort(split.train.y, kind="stable")
    sorted_data = (split.train.X[order], split.train.y[order])
    out = {}
    for name, shuffle in [("shuffled", True), ("sorted by class", False)]:
        model = layers.mlp([64, 32, 10], rng=np.random.default_rng(0), activation="tanh")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", train.TrainingDiverged)
            history = train.train(
                model,
                losses.SoftmaxCrossEntropy(),
                optim.gradient_descent(lr),
                sorted_data,
                epochs=epochs,
                batch_size=64,
                rng=np.random.default_rng(1) if shuffle else None,
                val_data=split.val,
                track_norms=False,
            )
        out[name] = history.val_loss
    return out


def overfit_tiny_subset(*, n: int = 20, steps: int = 300, lr: float = 0.5) -> dict[str, list]:
    """Full-batch gradient descent of a 64-32-10 tanh MLP on ``n`` training digits: the correct
    network, and one with the classic bug of a softmax before a loss that expects logits.
    Returns the training loss per step of each."""
    split = digits_split()
    X, y = split.train.X[:n], split.train.y[:n]
    out = {}
    for name in ["correct", "softmax before the loss"]:
        model = layers.mlp([64, 32, 10], rng=np.random.default_rng(0), activation="tanh")
        if name != "correct":
            model = layers.Sequential(*model, layers.Softmax())
        history = _fit(model, optim.gradient_descent(lr), (X, y), epochs=steps, batch_size=None)
        out[name] = history.step_loss
    return out


def difficulty(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""Curriculum score of every example: the distance to the centre of its own class over the
    distance to the nearest other centre, :math:`s_n = \lVert x_n - c_{y_n}\rVert /
    \min_{k \ne y_n} \lVert x_n - c_k\rVert` (small = easy)."""
    centres = np.stack([X[y == k].mean(axis=0) for k in range(int(y.max()) + 1)])
    distance = np.linalg.norm(X[:, None, :] - centres[None], axis=2)
    own = distance[np.arange(len(y)), y].copy()
    distance[np.arange(len(y)), y] = np.inf
    return own / distance.min(axis=1)


class CurriculumRuns(NamedTuple):
    """Per schedule: the cumulative number of updates after every epoch (shape ``(epochs,)``) and
    the validation loss there (shape ``(seeds, epochs)``)."""

    steps: dict[str, np.ndarray]
    val_loss: dict[str, np.ndarray]


def curriculum_comparison(
    seeds: Sequence[int], *, epochs: int = 6, f0: float = 0.25, ramp: int = 4, lr: float = 1.0
) -> CurriculumRuns:
    r"""The 64-32-10 tanh MLP trained by SGD (batches of 64) on z-scored digits, on the whole
    training set reshuffled every epoch, or with a curriculum (Bengio et al., 2009): in epoch
    ``e = 0, 1, ...`` only the fraction :math:`f_e = \min(1, f_0 + e (1 - f_0)/\text{ramp})` of
    easiest examples by :func:`difficulty`, reshuffled. Same initial weights (``seed``) and
    shuffling generator (``seed + 100``) for both; the curriculum's early epochs are shorter."""
    split = digits_split()
    X, y = split.train
    order = np.argsort(difficulty(X, y), kind="stable")
    sizes = {
        "shuffled": [len(y)] * epochs,
        "curriculum": [
            math.ceil(min(1.0, f0 + e * (1 - f0) / ramp) * len(y)) for e in range(epochs)
        ],
    }
    val_loss = {name: [] for name in sizes}
    for seed in seeds:
        for name, ns in sizes.items():
            model = layers.mlp([64, 32, 10], rng=np.random.default_rng(seed), activation="tanh")
            rng, curve = np.random.default_rng(seed + 100), []
            for n in ns:
                subset = order[:n]
                history = train.train(
                    model,
                    losses.SoftmaxCrossEntropy(),
                    optim.gradient_descent(lr),
                    (X[subset], y[subset]),
                    epochs=1,
                    batch_size=64,
                    rng=rng,
                    val_data=split.val,
                    track_norms=False,
                )
                curve.append(history.val_loss[-1])
            val_loss[name].append(curve)
    steps = {name: np.cumsum([math.ceil(n / 64) for n in ns]) for name, ns in sizes.items()}
    return CurriculumRuns(steps, {name: np.array(c) for name, c in val_loss.items()})


# ----- batch norm at inference: running averages against a population pass ---------------------


def population_statistics(model: layers.Sequential, X: np.ndarray) -> None:
    r"""Replace every :class:`~minidl.layers.BatchNorm`'s running averages by the statistics of
    its input over all of ``X`` under the final weights (Ioffe & Szegedy 2015, Alg. 2): layer by
    layer, so that each layer sees the inputs that the already fixed layers before it produce.
    The variance is the unbiased one, as in the running average. Leaves the model in
    evaluation mode."""
    model.eval()
    h = np.asarray(X, dtype=np.float64)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNorm):
            layer.running_mean = h.mean(axis=0)
            layer.running_var = h.var(axis=0, ddof=1)
        h = layer.forward(h)


class InferenceStatistics(NamedTuple):
    """Evaluation of one trained batch-norm network with two kinds of frozen statistics."""

    val_loss: dict[str, float]  # "running averages" | "population pass" -> validation loss
    train_loss: dict[str, float]  # the same on the training set
    mean_gap: float  # largest |running mean - population mean| / population std, over layers


def batchnorm_inference_statistics(
    *, lr: float = 1.0, epochs: int = 3, seed: int = 0, momentum: float = 0.1
) -> InferenceStatistics:
    """Train the deep batch-norm ReLU net as the page does, then evaluate it with the running
    averages it kept and again after :func:`population_statistics` on the training set."""
    split = digits_split()
    model = deep_relu_net(batch_norm=True, seed=seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNorm):
            layer.momentum = momentum
    _fit(model, optim.gradient_descent(lr), split.train, epochs=epochs, seed=seed + 1)
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNorm)]
    running = [(n.running_mean.copy(), n.running_var.copy()) for n in norms]
    loss = losses.SoftmaxCrossEntropy()

    def evaluate(d: data.Dataset) -> float:
        model.eval()
        return float(loss.forward(model.forward(d.X), d.y))

    val, train_ = {"running averages": evaluate(split.val)}, {}
    train_["running averages"] = evaluate(split.train)
    population_statistics(model, split.train.X)
    val["population pass"], train_["population pass"] = evaluate(split.val), evaluate(split.train)
    gap = max(
        float(np.max(np.abs(mean - n.running_mean) / np.sqrt(n.running_var)))
        for (mean, _), n in zip(running, norms, strict=True)
    )
    return InferenceStatistics(val, train_, gap)


# ----- gradient noise where it helps: a start on a saddle's attracting axis ---------------------


class NoiseRun(NamedTuple):
    plain: train.History
    noisy: train.History
    noise_norm: np.ndarray  # sigma_t * sqrt(entries of layer 1): the norm of its noise, per step


def gradient_noise_on_digits(
    eta_noise: float = 0.01, gamma: float = 0.55, *, lr: float = 0.3, epochs: int = 20
) -> NoiseRun:
    r"""A 64-32-10 tanh MLP on the digits (batches of 64, gradient descent at ``lr``), plain and
    with annealed gradient noise :math:`\sigma_t^2 = \eta_{\text{noise}}/(1+t)^\gamma`
    (:func:`minidl.optim.gradient_noise`), from the same initialization and batch order."""
    split = digits_split()
    rules = {
        "plain": optim.gradient_descent(lr),
        "noisy": optim.chain(
            optim.gradient_noise(eta_noise, gamma, seed=0), optim.gradient_descent(lr)
        ),
    }
    runs = {}
    for name, rule in rules.items():
        model = layers.mlp([64, 32, 10], rng=np.random.default_rng(0), activation="tanh")
        runs[name] = train.train(
            model,
            losses.SoftmaxCrossEntropy(),
            rule,
            split.train,
            epochs=epochs,
            batch_size=64,
            rng=np.random.default_rng(1),
            val_data=split.val,
        )
    entries = model[0].W.size + model[0].b.size
    sigma = np.sqrt(eta_noise / (1 + np.arange(runs["noisy"].steps)) ** gamma)
    return NoiseRun(runs["plain"], runs["noisy"], sigma * np.sqrt(entries))


def saddle_escape_with_noise(
    *, seeds=range(5), steps: int = 150, lr: float = 0.1, noise: float = 0.01
) -> dict[str, np.ndarray]:
    r"""Gradient descent on :func:`minidl.data.double_well` from :math:`(0, 1)`, exactly on the
    saddle's attracting axis, plain and with annealed gradient noise
    (:func:`minidl.optim.gradient_noise`, :math:`\eta_{\text{noise}}` = ``noise``) for each seed:
    ``{"plain": L_0..L_T, "noisy": (seeds, T + 1)}`` of losses. Without noise the gradient's
    :math:`x`-component is exactly 0 at every step, so the iterate can only reach the saddle."""
    well = data.double_well()

    def losses_of(rule) -> np.ndarray:
        w = np.array([0.0, 1.0])
        state = rule.init(w)
        values = [well.value(w)]
        for _ in range(steps):
            step, state = rule.update(well.grad(w), state, w)
            w = w + step
            values.append(well.value(w))
        return np.array(values)

    plain = losses_of(optim.gradient_descent(lr))
    noisy = [
        losses_of(optim.chain(optim.gradient_noise(noise, seed=seed), optim.gradient_descent(lr)))
        for seed in seeds
    ]
    return {"plain": plain, "noisy": np.array(noisy)}
