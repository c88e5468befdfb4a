"""Mode "step", update by update: explicit drops against Keras's
`PiecewiseConstantDecay` and PyTorch's `MultiStepLR`, periodic drops against
PyTorch's `StepLR` and Keras's `ExponentialDecay(staircase=True)`; as an
optimizer's mode, after a warmup, in a chain and as a `CLRSchedule`; at the
counter's far end; inside the compiled step of `model.fit`; and with a
cycled momentum."""

import math

import keras
import numpy as np
import pytest
from conftest import torch_schedule
from policy_references import (
    FAR,
    Truth,
    fit,
    keras_rates,
    lr_scheduler,
    momenta_of,
    rates_of,
    schedule_values,
)
from rounding import UNIT_ROUNDOFF

from clr_optimizers import SGD

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

U32 = UNIT_ROUNDOFF["float32"]
PEAK = 0.1


def assert_relative(got, want, rtol):
    """`|got - want| <= rtol |want|`, with a tolerance for each element."""
    got, want = np.asarray(got), np.asarray(want)
    error = np.abs(got - want) / np.abs(want)
    wrong = error > rtol
    assert not wrong.any(), (np.flatnonzero(wrong), got[wrong], want[wrong])


def powers_rtol(gamma, drops, roundings):
    """`gamma**k` computed here in float32 as `exp(k log(gamma))`, against an
    exact reference: the exponent `k log(gamma)` is off by two roundings
    (of `log(gamma)` and of the product) relative to `k |log(gamma)|`, which
    carry into the result as a relative error; each further operation
    rounds once."""
    return (2 * np.asarray(drops) * abs(math.log(gamma)) + roundings) * U32


def keras_powers_rtol(drops):
    """Keras's `gamma**k` in float32: `gamma` rounded once, its relative
    error multiplied by `k`, and the power and the product rounded."""
    return (np.asarray(drops) + 3) * U32


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.93])
def test_explicit_drops_match_pytorch_multistep_lr(gamma):
    drop_at, updates = [3, 7, 8, 20], 30
    want = torch_schedule(
        lambda o: lr_scheduler.MultiStepLR(o, milestones=drop_at, gamma=gamma),
        updates,
        learning_rate=PEAK,
    )[0]
    clr = {"mode": "step", "max_lr": PEAK, "drop_at": drop_at, "gamma": gamma}
    got = rates_of(SGD(learning_rate=0.0, clr=clr), updates)
    drops = np.searchsorted(drop_at, np.arange(updates), side="right")
    assert_relative(got, want, powers_rtol(gamma, drops, 4))
    np.testing.assert_array_equal(schedule_values(0.0, clr, range(updates)), got)


@pytest.mark.parametrize("floor", [0.0, 0.002])
def test_explicit_factors_match_keras_piecewise_constant_decay(floor):
    drop_at, factors, updates = [4, 5, 11], [1.0, 0.6, 0.25, 0.0], 16
    values = [floor + (PEAK - floor) * f for f in factors]
    # Keras's boundaries are the last count of each piece.
    reference = keras.optimizers.schedules.PiecewiseConstantDecay(
        [b - 1 for b in drop_at], values
    )
    clr = {"mode": "step", "max_lr": PEAK, "drop_at": drop_at, "factors": factors}
    got = rates_of(SGD(learning_rate=floor, clr=clr), updates)
    # Keras holds each value rounded once; these round the difference, the
    # product and the sum.
    np.testing.assert_allclose(got, keras_rates(reference, updates), rtol=4 * U32)
    np.testing.assert_array_equal(schedule_values(floor, clr, range(updates)), got)


@pytest.mark.parametrize("every, gamma", [(1, 0.9), (3, 0.5), (10, 0.1)])
def test_periodic_drops_match_pytorch_step_lr(every, gamma):
    updates = 40
    want = torch_schedule(
        lambda o: lr_scheduler.StepLR(o, step_size=every, gamma=gamma),
        updates,
        learning_rate=PEAK,
    )[0]
    clr = {"mode": "step", "max_lr": PEAK, "drop_every": every, "gamma": gamma}
    got = rates_of(SGD(learning_rate=0.0, clr=clr), updates)
    drops = np.arange(updates) // every
    # PyTorch multiplies in float64 once per drop: exact to float32.
    assert_relative(got, want, powers_rtol(gamma, drops, 4))


@pytest.mark.parametrize("every, gamma", [(2, 0.96), (5, 0.5)])
def test_periodic_drops_match_keras_exponential_decay_with_staircase(every, gamma):
    updates = 60
    reference = keras.optimizers.schedules.ExponentialDecay(
        PEAK, every, gamma, staircase=True
    )
    clr = {"mode": "step", "max_lr": PEAK, "drop_every": every, "gamma": gamma}
    got = rates_of(SGD(learning_rate=0.0, clr=clr), updates)
    drops = np.arange(updates) // every
    # Both sides compute gamma**k in float32, each with its own rounding.
    rtol = powers_rtol(gamma, drops, 4) + keras_powers_rtol(drops)
    assert_relative(got, keras_rates(reference, updates), rtol)


def test_after_a_warmup_and_in_a_chain():
    """A linear warmup, then drops (PyTorch's `LinearLR` then `MultiStepLR`
    under `SequentialLR`), and the same drops as a chain's second piece."""
    warmup, updates = 4, 20
    want = torch_schedule(
        lambda o: lr_scheduler.SequentialLR(
            o,
            [
                lr_scheduler.LinearLR(o, start_factor=0.25, total_iters=warmup),
                lr_scheduler.MultiStepLR(o, milestones=[5, 9], gamma=0.5),
            ],
            milestones=[warmup],
        ),
        updates,
        learning_rate=PEAK,
    )[0]
    drops = {"mode": "step", "drop_at": [5, 9], "gamma": 0.5}
    warm = {**drops, "max_lr": PEAK, "warmup_steps": warmup, "warmup_factor": 0.25}
    got = rates_of(SGD(learning_rate=0.0, clr=warm), updates)
    assert_relative(got, want, powers_rtol(0.5, 2, 6))
    chain = {
        "mode": "chain",
        "max_lr": PEAK,
        "policies": [{"mode": "polynomial", "decay_steps": warmup}, drops],
        "boundaries": [warmup],
    }
    chained = rates_of(SGD(learning_rate=0.0, clr=chain), updates)
    np.testing.assert_array_equal(chained[warmup:], got[warmup:])
    np.testing.assert_array_equal(schedule_values(0.0, chain, range(updates)), chained)


def test_drops_at_the_far_end_of_the_counter_and_past_it():
    """A drop at the last counts the counter holds comes; one past them (on
    JAX and PyTorch, past 32 bits) never does."""
    far = np.array([FAR - 2, FAR - 1])
    explicit = SGD(
        learning_rate=0.0,
        clr={
            "mode": "step",
            "max_lr": PEAK,
            "drop_at": [5, FAR - 1, 10**12],
            "gamma": 0.5,
        },
    )
    drops = np.array([1, 2])
    assert_relative(
        explicit.schedule_state.rates(far),
        PEAK * 0.5**drops,
        powers_rtol(0.5, drops, 4),
    )
    periodic = SGD(
        learning_rate=0.0,
        clr={"mode": "step", "max_lr": PEAK, "drop_every": FAR - 1, "gamma": 0.5},
    )
    assert_relative(
        periodic.schedule_state.rates(far),
        PEAK * 0.5 ** (far // (FAR - 1)),
        powers_rtol(0.5, 1, 4),
    )
    never = SGD(
        learning_rate=0.0,
        clr={"mode": "step", "max_lr": PEAK, "drop_every": 10**12, "gamma": 0.5},
    )
    np.testing.assert_array_equal(never.schedule_state.rates(far), np.float32(PEAK))


def test_a_cycled_momentum_rises_as_the_rate_drops():
    clr = {"mode": "step", "max_lr": PEAK, "drop_at": [2, 4], "factors": [1, 0.5, 0]}
    opt = SGD(learning_rate=0.0, clr={**clr, "momentum": (0.85, 0.95)})
    np.testing.assert_allclose(
        momenta_of(opt, 6), [0.85, 0.85, 0.9, 0.9, 0.95, 0.95], rtol=2 * U32
    )


def test_fit_uses_it_in_the_compiled_step():
    truth = Truth()
    clr = {"mode": "step", "max_lr": PEAK, "drop_every": 3, "gamma": 0.5}
    fit(SGD(learning_rate=0.0, clr=clr), 2, truth)
    want = torch_schedule(
        lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 14, learning_rate=PEAK
    )[0]
    # Read off a weight that one SGD update moved: one more rounding.
    assert_relative(truth.rates, want, powers_rtol(0.5, 4, 5))
