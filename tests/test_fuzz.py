"""Property-based tests: random valid configurations give finite rates within
their bounds at any update count the counter holds; random invalid ones fail
with a ValueError or TypeError whose message names the key.

The example counts are fixed (`derandomize=True`), so every run checks the
same cases: VALID_EXAMPLES valid configurations and INVALID_EXAMPLES invalid
ones, on each backend.
"""

import math

import numpy as np
import pytest
import scale_functions  # noqa: F401  (registers the named scale functions)
from conftest import COUNTER_MAX
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clr_optimizers import SGD, Adam
from clr_optimizers._policies import KEYS

VALID_EXAMPLES = 300
INVALID_EXAMPLES = 500
SETTINGS = dict(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

rates = st.floats(1e-6, 10.0)
counts = st.integers(0, COUNTER_MAX)
whole_steps = st.integers(1, 10**12)
fractional_steps = st.floats(0.001, 1e6)
steps = st.one_of(whole_steps, fractional_steps)
momentums = st.one_of(
    st.none(),
    st.tuples(st.floats(0.0, 0.999), st.floats(0.0, 0.999)).map(sorted).map(tuple),
)


@st.composite
def cyclical(draw):
    clr = {"momentum": draw(momentums)}
    if draw(st.booleans()):
        clr["step_size"] = draw(steps)
    else:
        clr["step_size_up"] = draw(steps)
        clr["step_size_down"] = draw(steps)
    scale_fn = draw(st.sampled_from([None, "inverse_cycle", "slow_decay"]))
    if scale_fn is None:
        mode = draw(st.sampled_from(["triangular", "triangular2", "exp_range"]))
        mode = draw(st.sampled_from([mode, "modified_triangular2"]))
        clr["mode"] = mode
        if mode == "exp_range":
            clr["gamma"] = draw(st.floats(1e-6, 1.0))
    else:
        clr["scale_fn"] = f"clr_tests>{scale_fn}"
        clr["scale_mode"] = "cycle" if scale_fn == "inverse_cycle" else "iterations"
    if draw(st.booleans()):
        clr["restart_every"] = draw(st.integers(1, 10**6))
    clr["ramp"] = draw(st.sampled_from(["linear", "cos"]))
    return clr


@st.composite
def warm_restarts(draw):
    clr = {
        "mode": "warm_restarts",
        "period": draw(steps),
        "momentum": draw(momentums),
        "peak_mult": draw(st.floats(1e-3, 1.0)),
    }
    if draw(st.booleans()):  # long enough that the periods are few
        clr["period_mult"] = draw(st.floats(1.01, 10.0))
    if draw(st.booleans()):
        clr["cycle_limit"] = draw(st.integers(1, 10**6))
    return clr


@st.composite
def polynomial(draw):
    return {
        "mode": "polynomial",
        "decay_steps": draw(st.integers(1, 10**12)),
        "power": draw(st.floats(0.01, 10.0)),
        "cycle": draw(st.booleans()),
        "momentum": draw(momentums),
    }


@st.composite
def step(draw):
    clr = {"mode": "step", "momentum": draw(momentums)}
    if draw(st.booleans()):
        clr["drop_every"] = draw(st.integers(1, 10**12))
        clr["gamma"] = draw(st.floats(1e-6, 1.0))
        return clr
    drops = sorted(draw(st.sets(st.integers(1, 10**12), min_size=1, max_size=5)))
    clr["drop_at"] = drops
    if draw(st.booleans()):
        size = len(drops) + 1
        clr["factors"] = draw(
            st.lists(st.floats(0.0, 1.0), min_size=size, max_size=size)
        )
    else:
        clr["gamma"] = draw(st.floats(1e-6, 1.0))
    return clr


@st.composite
def chain(draw):
    pieces = draw(
        st.lists(
            st.one_of(cyclical(), warm_restarts(), polynomial(), step()),
            min_size=2,
            max_size=3,
        )
    )
    for piece in pieces:
        del piece["momentum"]  # the chain's own
    starts = sorted(
        draw(
            st.sets(
                st.integers(1, 10**12),
                min_size=len(pieces) - 1,
                max_size=len(pieces) - 1,
            )
        )
    )
    return {
        "mode": "chain",
        "policies": pieces,
        "boundaries": starts,
        "momentum": draw(momentums),
    }


@st.composite
def one_cycle(draw):
    total_steps = draw(st.integers(3, 10**12))
    three_phase = draw(st.booleans())
    # The warm-up must exceed one update (and, with three phases, twice it
    # must end before the last update).
    low = 1.0 / total_steps
    high = (total_steps + 1) / (2 * total_steps) if three_phase else 1.0
    pct_start = draw(st.floats(low, high, exclude_min=True, exclude_max=True))
    clr = {
        "mode": "one_cycle",
        "total_steps": total_steps,
        "pct_start": pct_start,
        "three_phase": three_phase,
        "anneal_strategy": draw(st.sampled_from(["cos", "linear"])),
        "final_div_factor": draw(st.floats(1.0, 1e6)),
        "momentum": draw(momentums),
    }
    if draw(st.booleans()):  # sized by epochs, as PyTorch allows
        epochs = draw(st.integers(1, 1000))
        if total_steps // epochs >= 1:
            del clr["total_steps"]
            clr["epochs"], clr["steps_per_epoch"] = epochs, total_steps // epochs
            clr["pct_start"] = 0.4  # within the bounds for any total of 3 or more
            clr["total_steps_used"] = epochs * (total_steps // epochs)
    return clr


@st.composite
def valid(draw):
    learning_rate = draw(st.floats(0.0, 1.0))
    max_lr = learning_rate * draw(st.floats(1.0, 1e3)) or draw(rates)
    family = st.one_of(
        cyclical(), one_cycle(), warm_restarts(), polynomial(), step(), chain()
    )
    clr = {"max_lr": max_lr, **draw(family)}
    if draw(st.integers(0, 3)) == 0:
        clr["warmup_steps"] = draw(st.integers(1, 10**12))
        clr["warmup_factor"] = draw(st.floats(0.0, 1.0))
    total = clr.pop("total_steps_used", None) or clr.get("total_steps")
    if clr.get("mode") == "one_cycle":  # where rounding put pct_start on a bound
        warm_up_end = clr["pct_start"] * total - 1
        if (
            warm_up_end <= 0
            or clr["pct_start"] >= 1
            or (clr["three_phase"] and 2 * warm_up_end >= total - 1)
        ):
            clr["pct_start"] = 0.4
    decay = 0.0
    if clr.get("mode") in (
        None,
        "triangular",
        "triangular2",
        "exp_range",
        "modified_triangular2",
    ) and draw(st.booleans()):
        decay = draw(st.floats(0.0, 1.0))
    return learning_rate, clr, decay, draw(counts)


def within(value, low, high, rel=1e-5):
    return low * (1 - rel) - 1e-30 <= value <= high * (1 + rel)


@pytest.mark.slow
@settings(max_examples=VALID_EXAMPLES, **SETTINGS)
@given(valid())
def test_valid_configurations_give_finite_rates_within_bounds(case):
    learning_rate, clr, decay, n = case
    opt = Adam(learning_rate=learning_rate, clr=clr, decay=decay)
    opt.iterations.assign(n)
    rate = opt.current_lr  # the rate of update n, at n - 1 applied updates
    assert math.isfinite(rate)
    applied = max(n - 1, 0)
    if clr.get("mode") == "one_cycle":
        floor = learning_rate / clr["final_div_factor"]
    else:
        floor = learning_rate / (1 + decay * applied)
    if clr.get("warmup_factor") is not None and applied < clr["warmup_steps"]:
        floor = 0.0  # the warmup starts from a fraction of the first rate
    assert within(rate, np.float32(floor), np.float32(clr["max_lr"])), (rate, floor)
    if clr["momentum"] is not None:
        low, high = clr["momentum"]
        momentum = opt.current_momentum
        assert within(momentum, np.float32(low), np.float32(high)), momentum


# Values that are wrong for a key of each kind.
BAD_NUMBERS = [math.nan, math.inf, -math.inf, -1.0, 0.0, 1e300, "1", [0.1], True]
BAD_INTEGERS = [2.5, "3", -1, 0, True, 10**13, math.nan]
BAD_VALUES = {
    "max_lr": BAD_NUMBERS,
    "step_size": BAD_NUMBERS,
    "step_size_up": BAD_NUMBERS,
    "step_size_down": BAD_NUMBERS,
    "gamma": BAD_NUMBERS,
    "pct_start": BAD_NUMBERS,
    "div_factor": BAD_NUMBERS,
    "final_div_factor": BAD_NUMBERS,
    "restart_every": BAD_INTEGERS,
    "total_steps": BAD_INTEGERS,
    "mode": ["cosine", 3, "", "Triangular", ["triangular"]],
    "scale_mode": ["epochs", 1, "Cycle"],
    "anneal_strategy": ["cosine", 1, "COS"],
    "three_phase": ["yes", 1, 0.0],
    "momentum": [
        (0.9, 0.8),
        (1.0, 1.0),
        0.9,
        "0.9",
        (math.nan, 0.9),
        (0.1, 0.2, 0.3),
        (-0.1, 0.5),
        (0.5, math.inf),
    ],
    "scale_fn": ["no>such_function", 3, "clr_tests>unregistered"],
    "ramp": ["cosine", "Linear", 1, 3.0],
    "epochs": BAD_INTEGERS,
    "steps_per_epoch": BAD_INTEGERS,
    "period": BAD_NUMBERS,
    "period_mult": [*BAD_NUMBERS, 0.5],
    "peak_mult": [*BAD_NUMBERS, 1.5],
    "cycle_limit": BAD_INTEGERS,
    "warmup_steps": BAD_INTEGERS,
    "warmup_factor": [math.nan, -0.1, 1.5, "0.5", [0.5], True],
    "policies": [[], [{"step_size": 1}], "triangular", [{"step_size": 0}, {}], 3],
    "boundaries": [[], [0], [-1], [2.5], "10", [10, 10], 10],
    "decay_steps": BAD_INTEGERS,
    "power": BAD_NUMBERS,
    "cycle": ["yes", 1, 0.0],
    "drop_at": [[], [0], [-1], [2.5], "10", [10, 10], 10],
    "factors": [[], "1", [1.5, 0.5], [math.nan, 0.5], 3, [-0.5, 0.5]],
    "drop_every": BAD_INTEGERS,
}
assert set(BAD_VALUES) | {"max_lr"} == set(KEYS)


@st.composite
def invalid(draw):
    learning_rate, clr, _, _ = draw(valid())
    clr = {key: value for key, value in clr.items() if value is not None}
    if draw(st.integers(0, 9)) == 0:  # an unknown key
        key = draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in KEYS))
        clr[key] = draw(st.floats(0, 1))
        return learning_rate, clr, repr(key)  # the message quotes it
    key = draw(st.sampled_from(sorted(BAD_VALUES)))
    clr[key] = draw(st.sampled_from(BAD_VALUES[key]))
    return learning_rate, clr, key


@pytest.mark.slow
@settings(max_examples=INVALID_EXAMPLES, **SETTINGS)
@given(invalid())
def test_invalid_configurations_fail_naming_the_key(case):
    learning_rate, clr, key = case
    with pytest.raises((ValueError, TypeError)) as info:
        SGD(learning_rate=learning_rate, clr=clr)
    assert key in str(info.value), (key, str(info.value))


@settings(max_examples=100, **SETTINGS)
@given(
    st.sampled_from(["learning_rate", "decay"]),
    st.sampled_from([math.nan, math.inf, -1.0, 1e300, "0.1", [0.1], True]),
)
def test_invalid_arguments_fail_naming_them(argument, value):
    with pytest.raises((ValueError, TypeError)) as info:
        SGD(clr={"max_lr": 0.1, "step_size": 10}, **{argument: value})
    assert argument in str(info.value)
