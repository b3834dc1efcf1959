"""Initializers: the spreads of Glorot & Bengio (2010) and He et al. (2015), torch's fan
convention, reproducibility from an explicit Generator, and no global random state."""

import math

import numpy as np
import pytest

from minidl import init

pytestmark = pytest.mark.init

SHAPE = (400, 600)  # (fan_out, fan_in): 240k samples, so the std is estimated to ~0.15%
FAN_IN, FAN_OUT = 600, 400

RANDOM_INITS = {
    "normal": lambda shape, **kw: init.normal(shape, **kw),
    "uniform": lambda shape, **kw: init.uniform(shape, **kw),
    "glorot_uniform": lambda shape, **kw: init.glorot_uniform(shape, **kw),
    "glorot_normal": lambda shape, **kw: init.glorot_normal(shape, **kw),
    "he_normal": lambda shape, **kw: init.he_normal(shape, **kw),
    "he_uniform": lambda shape, **kw: init.he_uniform(shape, **kw),
}


def sample(name: str, seed: int = 0, **kwargs) -> np.ndarray:
    return RANDOM_INITS[name](SHAPE, rng=np.random.default_rng(seed), **kwargs)


def test_fans_follow_torch_convention():
    assert init.fans((32, 64)) == (64, 32)
    assert init.fans((8, 3, 5, 5)) == (75, 200)
    assert init.fans([7, 2]) == (2, 7)


@pytest.mark.torch_oracle
@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 2, 3), (6, 3, 2, 2)])
def test_fans_agree_with_torch(shape):
    torch = pytest.importorskip("torch")
    assert init.fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


@pytest.mark.parametrize("shape", [(5,), ()])
def test_fans_need_two_dimensions(shape):
    with pytest.raises(ValueError, match=rf"fans:.*{re_shape(shape)}"):
        init.fans(shape)


def re_shape(shape: tuple[int, ...]) -> str:
    return str(shape).replace("(", r"\(").replace(")", r"\)")


@pytest.mark.parametrize(
    ("name", "kwargs", "expected_std"),
    [
        ("normal", {}, 0.01),
        ("normal", {"mean": 1.0, "std": 0.5}, 0.5),
        ("glorot_normal", {}, math.sqrt(2 / (FAN_IN + FAN_OUT))),
        ("glorot_normal", {"gain": 2.0}, 2 * math.sqrt(2 / (FAN_IN + FAN_OUT))),
        ("he_normal", {}, math.sqrt(2 / FAN_IN)),
    ],
)
def test_normal_initializers_have_the_formula_std(name, kwargs, expected_std):
    w = sample(name, **kwargs)
    assert w.shape == SHAPE
    assert np.std(w) == pytest.approx(expected_std, rel=0.01)
    standard_error = expected_std / math.sqrt(w.size)
    assert abs(np.mean(w) - kwargs.get("mean", 0.0)) < 5 * standard_error


@pytest.mark.parametrize(
    ("name", "kwargs", "low", "high"),
    [
        ("uniform", {}, -0.05, 0.05),
        ("uniform", {"low": 0.0, "high": 3.0}, 0.0, 3.0),
        ("glorot_uniform", {}, -math.sqrt(6 / 1000), math.sqrt(6 / 1000)),
        ("glorot_uniform", {"gain": 0.5}, -0.5 * math.sqrt(6 / 1000), 0.5 * math.sqrt(6 / 1000)),
        ("he_uniform", {}, -math.sqrt(6 / FAN_IN), math.sqrt(6 / FAN_IN)),
    ],
)
def test_uniform_initializers_fill_the_formula_interval(name, kwargs, low, high):
    w = sample(name, **kwargs)
    width = high - low
    assert low <= w.min() < low + 1e-3 * width
    assert high - 1e-3 * width < w.max() <= high
    assert np.std(w) == pytest.approx(width / math.sqrt(12), rel=0.01)


def test_glorot_and_he_uniform_match_their_normal_variance():
    assert np.var(sample("glorot_uniform")) == pytest.approx(np.var(sample("glorot_normal")), 0.02)
    assert np.var(sample("he_uniform")) == pytest.approx(np.var(sample("he_normal")), 0.02)


@pytest.mark.parametrize("name", RANDOM_INITS)
def test_same_seed_same_weights_other_seed_other_weights(name):
    np.testing.assert_array_equal(sample(name, seed=3), sample(name, seed=3))
    assert not np.array_equal(sample(name, seed=3), sample(name, seed=4))


@pytest.mark.parametrize("name", RANDOM_INITS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_dtype_is_honoured(name, dtype):
    w = sample(name, dtype=dtype)
    assert w.dtype == dtype
    np.testing.assert_array_equal(w, sample(name).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zeros_and_constant(dtype):
    z = init.zeros((2, 3), dtype=dtype)
    c = init.constant(4, 0.25, dtype=dtype)
    assert z.dtype == dtype and c.dtype == dtype
    np.testing.assert_array_equal(z, np.zeros((2, 3)))
    np.testing.assert_array_equal(c, np.full(4, 0.25))


@pytest.mark.parametrize("name", RANDOM_INITS)
def test_global_random_state_is_untouched(name):
    before = np.random.get_state()  # noqa: NPY002 (the legacy global state is the subject)
    sample(name)
    after = np.random.get_state()  # noqa: NPY002
    assert before[0] == after[0]
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2:] == after[2:]


@pytest.mark.parametrize("name", RANDOM_INITS)
@pytest.mark.parametrize("rng", [None, 0, np.random.RandomState(0)], ids=["None", "int", "legacy"])
def test_rng_must_be_a_generator(name, rng):
    with pytest.raises(TypeError, match=rf"{name}: rng must be a numpy.random.Generator"):
        RANDOM_INITS[name]((3, 2), rng=rng)


@pytest.mark.parametrize("dtype", [np.int32, bool])
def test_non_floating_dtype_is_rejected(dtype):
    with pytest.raises(ValueError, match="he_normal: dtype must be a floating type"):
        init.he_normal((3, 2), rng=np.random.default_rng(0), dtype=dtype)
    with pytest.raises(ValueError, match="zeros: dtype must be a floating type"):
        init.zeros(3, dtype=dtype)


def test_bad_hyperparameters_are_rejected():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="normal: std must be non-negative, got -1"):
        init.normal((2, 2), rng=rng, std=-1.0)
    with pytest.raises(ValueError, match=r"uniform: need low <= high, got low=1.0, high=0.0"):
        init.uniform((2, 2), rng=rng, low=1.0, high=0.0)
    with pytest.raises(ValueError, match="he_uniform: fans must be positive"):
        init.he_uniform((3, 0), rng=rng)
    with pytest.raises(ValueError, match=r"shape must be non-negative integers, got \(2, -1\)"):
        init.zeros((2, -1))
