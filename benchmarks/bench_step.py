"""Time one training step of an MLP in minidl and in PyTorch (CPU), in the same process.

A step is forward, softmax cross-entropy, backward and a plain SGD update. Two networks:

- 64-256-256-10 on scikit-learn's digits (mini-batches of 128 real images);
- 784-512-512-10 on synthetic data, batch 128.

Neither framework computes the gradient with respect to the data (torch's input does not require
grad; minidl's training step passes ``input_grad=False``).

For each network and dtype (float32, float64) it prints the median time per step of minidl and of
PyTorch, their ratio (target: minidl <= 1.1x PyTorch), and the "BLAS bound": the time of the
step's matrix products alone (x W^T forward, g^T x and, above the first layer, g W backward) as a
fraction of minidl's step, i.e. how much of the step is spent where no framework can save time.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_step.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import numpy as np
import torch

from minidl import data, layers, losses, optim

BATCH = 128
LR = 0.01


def minidl_step(sizes, X, y, dtype):
    model = layers.mlp(sizes, rng=np.random.default_rng(0), activation="relu", dtype=dtype)
    loss = losses.SoftmaxCrossEntropy()
    optimizer = optim.Optimizer(optim.sgd(lr=LR), model.parameters())
    X = X.astype(dtype)

    def closure():
        value = loss.forward(model.forward(X), y)
        model.backward(loss.backward(), input_grad=False)
        return value

    return lambda: optimizer.step(closure)


def torch_step(sizes, X, y, dtype):
    torch.manual_seed(0)
    mods = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        mods.append(torch.nn.Linear(n_in, n_out, dtype=dtype))
        if i < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    X, y = torch.from_numpy(X).to(dtype), torch.from_numpy(y)

    def step():
        optimizer.zero_grad(set_to_none=True)
        value = loss_fn(model(X), y)
        value.backward()
        optimizer.step()
        return value

    return step


def matmuls_only(sizes, X, dtype):
    """The step's matrix products and nothing else: the floor for any NumPy implementation.
    Backward skips the product that would give the gradient with respect to the data."""
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((o, i)).astype(dtype) for i, o in itertools.pairwise(sizes)]
    X = X.astype(dtype)

    def step():
        acts = [X]
        for W in Ws:
            acts.append(acts[-1] @ W.T)
        g = acts[-1]
        for depth, (W, a) in enumerate(zip(reversed(Ws), reversed(acts[:-1]), strict=True)):
            _ = g.T @ a
            if depth < len(Ws) - 1:
                g = g @ W

    return step


def median_times(steps, repeats, inner=10, passes=2):
    """Seconds per step of each function: the median over ``repeats`` rounds of ``inner`` steps,
    best of ``passes`` passes. Each function runs in a block of its own: interleaving them step by
    step makes NumPy's and PyTorch's thread pools, which spin for a while after each call, steal
    the cores from one another."""
    best = [float("inf")] * len(steps)
    for _ in range(passes):
        for i, step in enumerate(steps):
            for _ in range(3):
                step()
            rounds = []
            for _ in range(repeats):
                start = time.perf_counter()
                for _ in range(inner):
                    step()
                rounds.append((time.perf_counter() - start) / inner)
            best[i] = min(best[i], statistics.median(rounds))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(2)

    digits = data.digits()
    rng = np.random.default_rng(0)
    pick = rng.choice(len(digits.X), BATCH, replace=False)
    cases = [
        ("64-256-256-10 digits", (64, 256, 256, 10), digits.X[pick] / 16.0, digits.y[pick]),
        (
            "784-512-512-10 synthetic",
            (784, 512, 512, 10),
            rng.standard_normal((BATCH, 784)),
            rng.integers(0, 10, BATCH),
        ),
    ]
    print(
        f"batch {BATCH}, best of 2 medians of {args.repeats} x 10 steps, "
        f"torch {torch.__version__}, numpy {np.__version__}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        f"{'network':26s} {'dtype':8s} {'minidl ms':>10s} {'torch ms':>9s} {'ratio':>6s} "
        f"{'matmul ms':>10s} {'BLAS bound':>10s}"
    )
    for name, sizes, X, y in cases:
        for np_dtype, torch_dtype in ((np.float32, torch.float32), (np.float64, torch.float64)):
            ours, theirs, bound = median_times(
                (
                    minidl_step(sizes, X, y, np_dtype),
                    torch_step(sizes, X, y, torch_dtype),
                    matmuls_only(sizes, X, np_dtype),
                ),
                args.repeats,
            )
            print(
                f"{name:26s} {np.dtype(np_dtype).name:8s} {ours * 1e3:10.3f} {theirs * 1e3:9.3f} "
                f"{ours / theirs:6.2f} {bound * 1e3:10.3f} {bound / ours:10.0%}"
            )


if __name__ == "__main__":
    main()
