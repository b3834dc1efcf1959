r"""Weight initializers, each drawing from an explicit ``numpy.random.Generator``.

A weight of shape ``(fan_out, fan_in)`` maps ``fan_in`` inputs to ``fan_out`` outputs (torch's
and the book's :math:`Wx` convention, see :func:`fans`). The variance-preserving schemes choose
the spread so that activations (forward) and gradients (backward) keep their scale from layer to
layer:

- Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural
  networks": :math:`\operatorname{Var}(W) = \text{gain}^2 \cdot 2/(\text{fan\_in} +
  \text{fan\_out})`, for tanh/sigmoid networks.
- He, Zhang, Ren & Sun (2015), "Delving deep into rectifiers": :math:`\operatorname{Var}(W) =
  2/\text{fan\_in}`, for ReLU networks (ReLU halves the second moment).

A uniform distribution on :math:`[-a, a]` has variance :math:`a^2/3`, hence the
:math:`\sqrt{6/\cdot}` limits of the uniform variants. Samples are drawn in float64 and then
cast, so a float32 initialization is the rounded float64 one for the same seed.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import DTypeLike

from minidl._checks import check_generator

Shape = int | tuple[int, ...]


def fans(shape: Shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape ``(fan_out, fan_in, *receptive_field)``.

    Same convention as ``torch.nn.init._calculate_fan_in_and_fan_out``: both fans are multiplied
    by the receptive-field size (the product of the trailing dimensions) of convolution kernels.
    """
    shape = _as_shape("fans", shape)
    if len(shape) < 2:
        raise ValueError(f"fans: need a weight with at least 2 dimensions, got shape {shape}")
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def zeros(shape: Shape, *, dtype: DTypeLike = np.float64) -> np.ndarray:
    """All zeros (the usual initialization of biases)."""
    return np.zeros(_as_shape("zeros", shape), dtype=_float_dtype("zeros", dtype))


def constant(shape: Shape, value: float, *, dtype: DTypeLike = np.float64) -> np.ndarray:
    """Every entry equal to ``value``."""
    return np.full(_as_shape("constant", shape), value, dtype=_float_dtype("constant", dtype))


def normal(
    shape: Shape,
    *,
    rng: np.random.Generator,
    mean: float = 0.0,
    std: float = 0.01,
    dtype: DTypeLike = np.float64,
) -> np.ndarray:
    r""":math:`W_{ij} \sim \mathcal{N}(\text{mean}, \text{std}^2)`."""
    return _normal("normal", shape, rng, mean, std, dtype)


def uniform(
    shape: Shape,
    *,
    rng: np.random.Generator,
    low: float = -0.05,
    high: float = 0.05,
    dtype: DTypeLike = np.float64,
) -> np.ndarray:
    r""":math:`W_{ij} \sim \mathcal{U}[\text{low}, \text{high})`."""
    return _uniform("uniform", shape, rng, low, high, dtype)


def glorot_uniform(
    shape: Shape, *, rng: np.random.Generator, gain: float = 1.0, dtype: DTypeLike = np.float64
) -> np.ndarray:
    r""":math:`\mathcal{U}[-a, a]` with :math:`a = \text{gain}\sqrt{6/(\text{fan\_in} +
    \text{fan\_out})}` (Glorot & Bengio, 2010; torch's ``xavier_uniform_``)."""
    fan_in, fan_out = _nonzero_fans("glorot_uniform", shape)
    limit = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _uniform("glorot_uniform", shape, rng, -limit, limit, dtype)


def glorot_normal(
    shape: Shape, *, rng: np.random.Generator, gain: float = 1.0, dtype: DTypeLike = np.float64
) -> np.ndarray:
    r""":math:`\mathcal{N}(0, \sigma^2)` with :math:`\sigma = \text{gain}\sqrt{2/(\text{fan\_in} +
    \text{fan\_out})}` (Glorot & Bengio, 2010; torch's ``xavier_normal_``)."""
    fan_in, fan_out = _nonzero_fans("glorot_normal", shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _normal("glorot_normal", shape, rng, 0.0, std, dtype)


def he_normal(
    shape: Shape, *, rng: np.random.Generator, dtype: DTypeLike = np.float64
) -> np.ndarray:
    r""":math:`\mathcal{N}(0, \sigma^2)` with :math:`\sigma = \sqrt{2/\text{fan\_in}}`
    (He et al., 2015; torch's ``kaiming_normal_`` with its defaults for ReLU)."""
    fan_in, _ = _nonzero_fans("he_normal", shape)
    return _normal("he_normal", shape, rng, 0.0, math.sqrt(2.0 / fan_in), dtype)


def he_uniform(
    shape: Shape, *, rng: np.random.Generator, dtype: DTypeLike = np.float64
) -> np.ndarray:
    r""":math:`\mathcal{U}[-a, a]` with :math:`a = \sqrt{6/\text{fan\_in}}`
    (He et al., 2015; torch's ``kaiming_uniform_`` for ReLU)."""
    fan_in, _ = _nonzero_fans("he_uniform", shape)
    limit = math.sqrt(6.0 / fan_in)
    return _uniform("he_uniform", shape, rng, -limit, limit, dtype)


def _nonzero_fans(where: str, shape: Shape) -> tuple[int, int]:
    fan_in, fan_out = fans(shape)
    if fan_in == 0 or fan_out == 0:
        raise ValueError(f"{where}: fans must be positive, got fan_in={fan_in}, fan_out={fan_out}")
    return fan_in, fan_out


def _normal(
    where: str, shape: Shape, rng: np.random.Generator, mean: float, std: float, dtype: DTypeLike
) -> np.ndarray:
    check_generator(where, rng)
    shape, dtype = _as_shape(where, shape), _float_dtype(where, dtype)
    if not std >= 0:
        raise ValueError(f"{where}: std must be non-negative, got {std}")
    sample = rng.standard_normal(shape)
    sample *= std
    sample += mean
    return sample.astype(dtype, copy=False)


def _uniform(
    where: str, shape: Shape, rng: np.random.Generator, low: float, high: float, dtype: DTypeLike
) -> np.ndarray:
    check_generator(where, rng)
    shape, dtype = _as_shape(where, shape), _float_dtype(where, dtype)
    if not low <= high:
        raise ValueError(f"{where}: need low <= high, got low={low}, high={high}")
    return rng.uniform(low, high, size=shape).astype(dtype, copy=False)


def _as_shape(where: str, shape: Shape) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
    if any(not isinstance(n, int | np.integer) or n < 0 for n in shape):
        raise ValueError(f"{where}: shape must be non-negative integers, got {shape}")
    return tuple(int(n) for n in shape)


def _float_dtype(where: str, dtype: DTypeLike) -> np.dtype:
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"{where}: dtype must be a floating type, got {dtype}")
    return dtype
