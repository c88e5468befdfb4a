"""Bad input fails at construction with a message naming the key."""

import math

import numpy as np
import pytest
from scale_functions import unregistered

from clr_optimizers import OPTIMIZERS, SGD, Adam

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

GOOD = {"max_lr": 0.06, "step_size": 2000}
UP_DOWN = {"max_lr": 0.06, "step_size_up": 500, "step_size_down": 1500}
ONE = {"max_lr": 0.1, "mode": "one_cycle", "total_steps": 100}

BAD_CLR = [
    # (clr, exception, words the message must contain)
    ({"step_size": 2000}, ValueError, ["'max_lr'", "missing"]),
    ({"max_lr": 0.06}, ValueError, ["'step_size'", "missing"]),
    ({"max_lr": None, "step_size": 10}, ValueError, ["'max_lr'"]),
    ({"max_lr": "0.06", "step_size": 10}, TypeError, ["max_lr", "number"]),
    ({"max_lr": 0.06, "step_size": "10"}, TypeError, ["step_size", "number"]),
    ({"max_lr": True, "step_size": 10}, TypeError, ["max_lr"]),
    ({"max_lr": [0.06], "step_size": 10}, TypeError, ["max_lr"]),
    ({"max_lr": math.nan, "step_size": 10}, ValueError, ["max_lr", "finite"]),
    ({"max_lr": math.inf, "step_size": 10}, ValueError, ["max_lr", "finite"]),
    ({"max_lr": 0.06, "step_size": math.inf}, ValueError, ["step_size", "finite"]),
    ({"max_lr": 0.06, "step_size": math.nan}, ValueError, ["step_size", "finite"]),
    ({"max_lr": 1e39, "step_size": 10}, ValueError, ["max_lr", "float32"]),
    ({"max_lr": 0, "step_size": 10}, ValueError, ["max_lr", "greater than 0"]),
    ({"max_lr": -0.1, "step_size": 10}, ValueError, ["max_lr", "greater than 0"]),
    ({"max_lr": 0.06, "step_size": 0}, ValueError, ["step_size", "greater than 0"]),
    ({"max_lr": 0.06, "step_size": -5}, ValueError, ["step_size", "greater than 0"]),
    ({"max_lr": 0.06, "step_size": 1e-9}, ValueError, ["step_size", "1/1000"]),
    ({"max_lr": 0.06, "step_size": 1e300}, ValueError, ["step_size", "at most"]),
    ({"max_lr": 0.001, "step_size": 10}, ValueError, ["max_lr", "learning rate"]),
    (
        {**GOOD, "mode": "cosine"},
        ValueError,
        ["mode", "'triangular'", "'exp_range'", "'modified_triangular2'", "'cosine'"],
    ),
    ({**GOOD, "mode": 2}, ValueError, ["mode", "'triangular2'"]),
    (
        {**GOOD, "mode": "exp_range", "gamma": 0},
        ValueError,
        ["gamma", "greater than 0"],
    ),
    ({**GOOD, "mode": "exp_range", "gamma": 1.5}, ValueError, ["gamma", "(0, 1]"]),
    ({**GOOD, "mode": "exp_range", "gamma": -0.5}, ValueError, ["gamma"]),
    ({**GOOD, "mode": "exp_range", "gamma": math.nan}, ValueError, ["gamma", "finite"]),
    ({**GOOD, "gamma": 0.9}, ValueError, ["gamma", "exp_range"]),
    ({**GOOD, "restart_every": 0}, ValueError, ["restart_every", "between 1"]),
    ({**GOOD, "restart_every": -3}, ValueError, ["restart_every", "between 1"]),
    ({**GOOD, "restart_every": 10**6 + 1}, ValueError, ["restart_every", "1,000,000"]),
    ({**GOOD, "restart_every": 2.5}, TypeError, ["restart_every", "int"]),
    ({**GOOD, "restart_every": "3"}, TypeError, ["restart_every", "int"]),
    (
        {**GOOD, "scale_fn": "clr_tests>inverse_cycle", "scale_mode": "epochs"},
        ValueError,
        ["scale_mode", "'cycle'", "'iterations'"],
    ),
    ({**GOOD, "scale_mode": "iterations"}, ValueError, ["scale_mode", "scale_fn"]),
    ({**GOOD, "maxlr": 0.1}, ValueError, ["'maxlr'", "Did you mean 'max_lr'"]),
    ({**GOOD, "stepsize": 3}, ValueError, ["'stepsize'", "Did you mean 'step_size'"]),
    ({**GOOD, "base_lr": 0.001}, ValueError, ["'base_lr'", "Valid keys"]),
    (
        {**GOOD, "scale_fn": lambda x: 1.0},
        ValueError,
        ["scale_fn", "lambda", "register"],
    ),
    ({**GOOD, "scale_fn": unregistered}, ValueError, ["scale_fn", "not registered"]),
    (
        {**GOOD, "scale_fn": "clr_tests>nothing"},
        ValueError,
        ["scale_fn", "'clr_tests>nothing'", "register_keras_serializable"],
    ),
    ({**GOOD, "scale_fn": 3}, TypeError, ["scale_fn"]),
    (
        {**GOOD, "scale_fn": "clr_tests>inverse_cycle", "mode": "triangular2"},
        ValueError,
        ["mode", "scale_fn"],
    ),
    # Asymmetric half cycles.
    ({**GOOD, "step_size_up": 5}, ValueError, ["'step_size'", "'step_size_up'"]),
    ({**GOOD, "step_size_down": 5}, ValueError, ["'step_size'", "'step_size_down'"]),
    (
        {"max_lr": 0.06, "step_size_down": 5},
        ValueError,
        ["'step_size_down'", "needs", "'step_size_up'"],
    ),
    ({**UP_DOWN, "step_size_up": 0}, ValueError, ["step_size_up", "greater than 0"]),
    ({**UP_DOWN, "step_size_down": -2}, ValueError, ["step_size_down", "greater"]),
    ({**UP_DOWN, "step_size_down": 1e-9}, ValueError, ["step_size_down", "1/1000"]),
    ({**UP_DOWN, "step_size_up": "4"}, TypeError, ["step_size_up", "number"]),
    ({**UP_DOWN, "step_size_up": 1e13}, ValueError, ["step_size_up", "at most"]),
    ({**UP_DOWN, "step_size_down": math.nan}, ValueError, ["step_size_down", "finite"]),
    # Momentum cycling.
    ({**GOOD, "momentum": 0.9}, TypeError, ["momentum", "pair"]),
    ({**GOOD, "momentum": "0.9"}, TypeError, ["momentum", "pair"]),
    ({**GOOD, "momentum": (0.8, 0.9, 0.95)}, ValueError, ["momentum", "pair"]),
    ({**GOOD, "momentum": (0.95, 0.85)}, ValueError, ["momentum", "must not exceed"]),
    ({**GOOD, "momentum": (0.85, 1.0)}, ValueError, ["momentum", "[0, 1)"]),
    ({**GOOD, "momentum": (-0.1, 0.9)}, ValueError, ["momentum", "0 or greater"]),
    ({**GOOD, "momentum": (math.nan, 0.9)}, ValueError, ["momentum", "finite"]),
    ({**GOOD, "momentum": ("a", 0.9)}, TypeError, ["momentum", "number"]),
    # One cycle.
    ({"max_lr": 0.1, "mode": "one_cycle"}, ValueError, ["'total_steps'", "missing"]),
    ({**ONE, "total_steps": 100.0}, TypeError, ["total_steps", "int"]),
    ({**ONE, "total_steps": True}, TypeError, ["total_steps", "int"]),
    ({**ONE, "total_steps": 1}, ValueError, ["total_steps", "between 2"]),
    ({**ONE, "total_steps": 10**13}, ValueError, ["total_steps", "between 2"]),
    ({**ONE, "pct_start": 0}, ValueError, ["pct_start", "(0, 1)"]),
    ({**ONE, "pct_start": 1}, ValueError, ["pct_start", "(0, 1)"]),
    ({**ONE, "pct_start": math.inf}, ValueError, ["pct_start", "finite"]),
    ({**ONE, "pct_start": 0.01}, ValueError, ["pct_start", "exceed 1 update"]),
    (
        {**ONE, "pct_start": 0.6, "three_phase": True},
        ValueError,
        ["three_phase", "less than total_steps + 1"],
    ),
    ({**ONE, "three_phase": "yes"}, TypeError, ["three_phase", "True or False"]),
    ({**ONE, "anneal_strategy": "cosine"}, ValueError, ["anneal_strategy", "'cos'"]),
    ({**ONE, "final_div_factor": 0.5}, ValueError, ["final_div_factor", "at least 1"]),
    ({**ONE, "final_div_factor": 0}, ValueError, ["final_div_factor", "greater"]),
    (
        {**ONE, "div_factor": 25},
        ValueError,
        ["learning_rate", "div_factor", "not both"],
    ),
    ({**ONE, "step_size": 10}, ValueError, ["'step_size'", "not used", "one_cycle"]),
    ({**ONE, "gamma": 0.9}, ValueError, ["'gamma'", "not used", "one_cycle"]),
    ({**GOOD, "total_steps": 100}, ValueError, ["'total_steps'", "'one_cycle'"]),
    ({**GOOD, "pct_start": 0.3}, ValueError, ["'pct_start'", "'one_cycle'"]),
]


def case_id(clr):
    """A stable test id: functions by name, not by address."""
    return ",".join(f"{k}={getattr(v, '__name__', v)}" for k, v in clr.items())


@pytest.mark.parametrize(
    "clr, error, words", BAD_CLR, ids=[case_id(c) for c, _, _ in BAD_CLR]
)
def test_bad_clr_raises_naming_the_key(clr, error, words):
    import scale_functions  # noqa: F401  (registers the named functions)

    with pytest.raises(error) as info:
        SGD(learning_rate=0.01, clr=clr)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


@pytest.mark.parametrize("clr", [[0.06, 2000], "triangular", 0.06, (("max_lr", 1),)])
def test_clr_that_is_not_a_dict(clr):
    with pytest.raises(TypeError, match="`clr` must be None or a dict"):
        Adam(clr=clr)


def test_lr_and_learning_rate_together():
    with pytest.raises(
        ValueError, match="either `learning_rate` or its old spelling `lr`"
    ):
        SGD(lr=0.01, learning_rate=0.01, clr=GOOD)
    with pytest.raises(ValueError, match="`lr`"):
        SGD(0.01, lr=0.01)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"decay": -1e-4}, ValueError, ["decay", "0 or greater"]),
        ({"decay": math.nan}, ValueError, ["decay", "finite"]),
        ({"decay": 1e300}, ValueError, ["decay", "float32"]),
        ({"decay": "1e-4"}, TypeError, ["decay", "number"]),
        ({"learning_rate": -0.01}, ValueError, ["learning_rate", "0 or greater"]),
        ({"learning_rate": math.inf}, ValueError, ["learning_rate", "finite"]),
        ({"learning_rate": "0.01"}, TypeError, ["learning_rate", "number"]),
        ({"lr": None, "learning_rate": None}, TypeError, ["learning_rate", "number"]),
        ({"momentum_typo": 0.9}, ValueError, ["SGD", "'momentum_typo'", "'momentum'"]),
        ({"clipnrom": 1.0}, ValueError, ["'clipnrom'", "Did you mean 'clipnorm'"]),
    ],
)
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        SGD(clr=GOOD, **kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_schedule_learning_rate_cannot_carry_a_cycle():
    import keras

    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, 100, 0.9)
    with pytest.raises(TypeError, match="plain number"):
        SGD(learning_rate=schedule, clr=GOOD)
    with pytest.raises(TypeError, match="plain number"):
        SGD(learning_rate=schedule, decay=0.1)


def test_scale_fn_that_fails_is_caught_at_construction():
    import keras

    @keras.saving.register_keras_serializable(package="clr_tests")
    def not_a_tensor_function(x):
        return float(np.asarray(x)) + "oops"

    with pytest.raises(ValueError, match=r"not_a_tensor_function.*failed"):
        SGD(clr={**GOOD, "scale_fn": not_a_tensor_function})

    @keras.saving.register_keras_serializable(package="clr_tests")
    def infinite(x):
        return x / 0.0

    with pytest.raises(ValueError, match=r"infinite.*finite"):
        SGD(clr={**GOOD, "scale_fn": infinite})


@pytest.mark.parametrize("Opt", OPTIMIZERS, ids=lambda o: o.__name__)
def test_every_optimizer_validates(Opt):
    with pytest.raises(ValueError, match="max_lr"):
        Opt(clr={"step_size": 10})


def test_valid_edge_values_are_accepted():
    SGD(learning_rate=1, clr={"max_lr": 1, "step_size": 1})
    SGD(
        learning_rate=np.float32(0.1),
        clr={"max_lr": np.float64(0.1), "step_size": np.int64(3)},
    )
    SGD(clr={**GOOD, "mode": "exp_range", "gamma": 1})
    SGD(clr={**GOOD, "restart_every": 1}, decay=0)
    SGD(clr={**GOOD, "mode": "exp_range", "scale_mode": "iterations"})


def test_momentum_as_an_array_and_long_cycles_with_a_scale_fn():
    opt = SGD(learning_rate=0.01, clr={**GOOD, "momentum": np.array([0.8, 0.9])})
    assert opt.clr["momentum"] == [0.8, 0.9]
    # The scale function is checked at a count the counter can hold.
    SGD(clr={**GOOD, "step_size": 2**31, "scale_fn": "clr_tests>inverse_cycle"})


def test_one_cycle_keys_with_a_custom_scale_fn_name_it():
    import scale_functions  # noqa: F401

    clr = {**GOOD, "scale_fn": "clr_tests>inverse_cycle", "total_steps": 10}
    with pytest.raises(ValueError, match="not used by a custom `scale_fn`"):
        SGD(clr=clr)


def test_one_cycle_start_rate_from_div_factor_or_learning_rate():
    assert float(SGD(clr=ONE).learning_rate) == pytest.approx(0.1 / 25)
    assert float(SGD(clr={**ONE, "div_factor": 10}).learning_rate) == pytest.approx(
        0.01
    )
    assert float(SGD(learning_rate=0.02, clr=ONE).learning_rate) == pytest.approx(0.02)
    with pytest.raises(ValueError, match=r"div_factor.*at least 1"):
        SGD(clr={**ONE, "div_factor": 0.5})
    with pytest.raises(ValueError, match=r"max_lr.*at least the learning rate"):
        SGD(learning_rate=0.2, clr=ONE)
    with pytest.raises(ValueError, match="`decay` does not apply to mode 'one_cycle'"):
        SGD(clr=ONE, decay=1e-3)
