r"""Central-difference gradient checking.

Every analytic gradient in the course is tested against the two-sided difference quotient

.. math::
    \frac{\partial f}{\partial x_i} \approx
    \frac{f(x + \epsilon e_i) - f(x - \epsilon e_i)}{2\epsilon},

whose truncation error is :math:`O(\epsilon^2)` (one-sided differences give :math:`O(\epsilon)`).
Agreement is measured by the relative error of CS231n's notes ("Gradient checks"),

.. math::
    \operatorname{err}(a, b) =
    \frac{\lVert a - b\rVert}{\max(\lVert a\rVert + \lVert b\rVert,\ \text{tiny})},

which is scale-free, lies in :math:`[0, 1]`, and is 0 (not 0/0) when both gradients vanish.
In float64 with :math:`\epsilon \approx 10^{-6}` a correct gradient gives an error below
:math:`10^{-6}`; a wrong one gives an error of order 1.

Checking all :math:`n` entries costs :math:`2n` evaluations of :math:`f`.
:func:`random_direction_check` is the cheap alternative: one directional derivative along a
random direction, two evaluations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from minidl._checks import check_generator

_TINY = np.finfo(np.float64).tiny


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, *, eps: float = 1e-6
) -> np.ndarray:
    r"""Central-difference estimate of :math:`\nabla f(x)`, one entry of ``x`` at a time.

    ``f`` reads ``x`` itself (usually through a closure over a layer's parameter), so ``x`` is
    perturbed in place; each entry is restored to its exact original value afterwards, even if
    ``f`` raises. The result is float64 with the shape of ``x``.
    """
    _check_perturbable("numerical_gradient", x, eps)
    grad = np.empty(x.shape, dtype=np.float64)
    for index in np.ndindex(x.shape):
        original = x[index]
        try:
            x[index] = original + eps
            f_plus = float(f(x))
            x[index] = original - eps
            f_minus = float(f(x))
        finally:
            x[index] = original
        grad[index] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    r""":math:`\lVert a-b\rVert / \max(\lVert a\rVert + \lVert b\rVert, \text{tiny})`.

    The sum of norms in the denominator (CS231n) keeps the error symmetric and bounded by 1;
    ``tiny`` (the smallest positive float64) makes two zero gradients agree with error 0.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error: shapes differ, {a.shape} and {b.shape}")
    scale = max(float(np.linalg.norm(a) + np.linalg.norm(b)), _TINY)
    return float(np.linalg.norm(a - b)) / scale


def check_gradient(
    f: Callable[[np.ndarray], float], grad: np.ndarray, x: np.ndarray, *, eps: float = 1e-6
) -> float:
    """Relative error between the analytic gradient ``grad`` of ``f`` at ``x`` and
    :func:`numerical_gradient` ``(f, x)``."""
    _check_same_shape("check_gradient", grad, x)
    return relative_error(grad, numerical_gradient(f, x, eps=eps))


def random_direction_check(
    f: Callable[[np.ndarray], float],
    grad: np.ndarray,
    x: np.ndarray,
    *,
    rng: np.random.Generator,
    eps: float = 1e-6,
) -> float:
    r"""Check ``grad`` along one random unit direction :math:`d` with two evaluations of ``f``.

    .. math::
        \frac{f(x + \epsilon d) - f(x - \epsilon d)}{2\epsilon} \approx \nabla f(x) \cdot d

    Returns the relative error of the two sides. A wrong gradient passes only if its error is
    orthogonal to :math:`d`, which a random direction makes unlikely; repeat with other
    directions for more confidence. ``x`` is perturbed in place and restored exactly.
    """
    check_generator("random_direction_check", rng)
    _check_same_shape("random_direction_check", grad, x)
    _check_perturbable("random_direction_check", x, eps)
    direction = rng.standard_normal(x.shape)
    direction /= max(float(np.linalg.norm(direction)), _TINY)
    original = x.copy()
    try:
        x[...] = original + eps * direction
        f_plus = float(f(x))
        x[...] = original - eps * direction
        f_minus = float(f(x))
    finally:
        x[...] = original
    numerical = (f_plus - f_minus) / (2.0 * eps)
    analytic = float(np.sum(np.asarray(grad, dtype=np.float64) * direction))
    return relative_error(np.array(analytic), np.array(numerical))


def check_layer(
    layer: Any, x: np.ndarray, *, rng: np.random.Generator, eps: float = 1e-6
) -> dict[str, float]:
    r"""Gradient-check ``layer.backward`` on :math:`L = \sum \text{layer}(x) \odot r`.

    :math:`r` is a standard normal array drawn from ``rng`` with the output's shape, so
    :math:`\partial L / \partial y = r` and ``layer.backward(r)`` must return
    :math:`\partial L/\partial x` and write each :math:`\partial L/\partial\theta` into
    ``parameter.grad``. Returns the relative error of the input gradient under ``"input"`` and of
    every parameter's gradient under its name.

    The layer is checked in its current mode (``train()`` or ``eval()``). Random layers are made
    deterministic by rewinding: every ``numpy.random.Generator`` attribute of the layer (and of its
    sublayers, for containers such as ``Sequential``) is reset to its state before the first
    forward pass, so every evaluation sees the same dropout mask. Afterwards the layer's array
    buffers (e.g. BatchNorm's running statistics) and generators are restored, so the check
    leaves the layer as it found it.

    A gradient that is exactly zero (e.g. of a bias followed by BatchNorm, which subtracts it
    again) makes the relative error compare rounding noise with zero, so it reports about 1.
    """
    check_generator("check_layer", rng)
    snapshot = _Snapshot(layer)
    try:
        output = layer.forward(x)
        probe = rng.standard_normal(output.shape).astype(output.dtype, copy=False)
        analytic = {"input": np.array(layer.backward(probe), dtype=np.float64)}
        for i, parameter in enumerate(layer.parameters()):
            analytic[parameter.name or f"parameter{i}"] = np.array(parameter.grad, np.float64)

        def projected_output(_: np.ndarray) -> float:
            snapshot.rewind_generators()
            return float(np.sum(layer.forward(x) * probe))

        errors = {"input": check_gradient(projected_output, analytic["input"], x, eps=eps)}
        for i, parameter in enumerate(layer.parameters()):
            name = parameter.name or f"parameter{i}"
            errors[name] = check_gradient(
                projected_output, analytic[name], parameter.value, eps=eps
            )
        return errors
    finally:
        snapshot.restore()


class _Snapshot:
    """The array buffers and generator states of a layer tree, to rewind and restore."""

    def __init__(self, layer: Any):
        self.arrays: list[tuple[Any, str, np.ndarray]] = []
        self.generators: list[tuple[np.random.Generator, dict]] = []
        for node in _layer_tree(layer):
            for name, value in vars(node).items():
                if isinstance(value, np.ndarray):
                    self.arrays.append((node, name, value.copy()))
                elif isinstance(value, np.random.Generator):
                    self.generators.append((value, value.bit_generator.state))

    def rewind_generators(self) -> None:
        for generator, state in self.generators:
            generator.bit_generator.state = state

    def restore(self) -> None:
        self.rewind_generators()
        for node, name, value in self.arrays:
            setattr(node, name, value)


def _layer_tree(layer: Any) -> Iterator[Any]:
    yield layer
    if hasattr(layer, "__iter__"):
        for child in layer:
            yield from _layer_tree(child)


def _check_same_shape(where: str, grad: np.ndarray, x: np.ndarray) -> None:
    grad_shape, x_shape = np.shape(grad), np.shape(x)
    if grad_shape != x_shape:
        raise ValueError(f"{where}: gradient of shape {grad_shape} for x of shape {x_shape}")


def _check_perturbable(where: str, x: np.ndarray, eps: float) -> None:
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        kind = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(
            f"{where}: x must be a floating numpy array (perturbed in place), got {kind}"
        )
    if not eps > 0:
        raise ValueError(f"{where}: eps must be positive, got {eps}")
