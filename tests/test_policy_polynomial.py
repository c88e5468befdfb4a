"""Mode "polynomial", update by update: against Keras's `PolynomialDecay`
(with and without `cycle`) and PyTorch's `PolynomialLR`, as an optimizer's
mode, after a warmup, in a chain and as a `CLRSchedule`; at the counter's
far end; and inside the compiled step of `model.fit`."""

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
    rates_of,
    schedule_values,
)
from rounding import UNIT_ROUNDOFF

from clr_optimizers import SGD

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

U32 = UNIT_ROUNDOFF["float32"]
PEAK = 0.1


def close_to_float32(got, want, peak, roundings):
    """Float32 rates against a reference that rounds at most `roundings`
    times, each off by the unit roundoff of the peak, the largest value any
    intermediate result takes."""
    np.testing.assert_allclose(got, want, rtol=0, atol=roundings * U32 * peak)


def restated(updates, floor, steps, power, cycle):
    """The formula in float64, with the span's multiple `max(ceil(n / D), 1)`
    counted in integers."""
    n = np.arange(updates)
    span = np.full(updates, steps)
    if cycle:
        span = steps * np.maximum(-(-n // steps), 1)
    left = (span - np.minimum(n, span)) / span
    return floor + (PEAK - floor) * left**power


@pytest.mark.parametrize("floor", [0.0, 0.004])
@pytest.mark.parametrize("power", [1.0, 0.5, 2.0])
@pytest.mark.parametrize("cycle", [False, True])
def test_matches_keras_polynomial_decay(cycle, power, floor):
    steps, updates = 7, 40
    reference = keras.optimizers.schedules.PolynomialDecay(
        PEAK, steps, end_learning_rate=floor, power=power, cycle=cycle
    )
    clr = {"mode": "polynomial", "max_lr": PEAK, "decay_steps": steps}
    clr.update(power=power, cycle=cycle)
    got = rates_of(SGD(learning_rate=floor, clr=clr), updates)
    np.testing.assert_array_equal(schedule_values(floor, clr, range(updates)), got)
    # These round the share, the power, the difference, the product and the
    # sum; the restatement is exact to float64.
    close_to_float32(got, restated(updates, floor, steps, power, cycle), PEAK, 5)
    # Keras rounds n / D, 1 - p, the power, the difference of the bounds, the
    # product and the sum. With `cycle`, at a multiple of D its float32
    # `ceil(n / D)` can round up to the next span (XLA divides by
    # multiplying with the reciprocal: 21 * float32(1 / 7) = 3.0000002), and
    # it gives the rate a quarter into a longer span instead of the floor:
    # there it is compared with the restatement only.
    want = keras_rates(reference, updates)
    n = np.arange(updates)
    missed = cycle & (n > 0) & (n % steps == 0) & ~np.isclose(want, floor)
    close_to_float32(got[~missed], want[~missed], PEAK, 11)


@pytest.mark.parametrize("power", [1.0, 2.0, 0.7])
def test_matches_pytorch_polynomial_lr(power):
    steps, updates = 13, 30
    want, _ = torch_schedule(
        lambda o: lr_scheduler.PolynomialLR(o, total_iters=steps, power=power),
        updates,
        learning_rate=PEAK,
    )
    clr = {"mode": "polynomial", "max_lr": PEAK, "decay_steps": steps, "power": power}
    # Float64 against float32: the share, the power, the product.
    close_to_float32(rates_of(SGD(learning_rate=0.0, clr=clr), updates), want, PEAK, 3)


def test_linear_warmup_then_linear_decay_to_zero():
    """The transformer fine-tuning schedule: PyTorch's `LinearLR` warmup, then
    `PolynomialLR(power=1)`, under `SequentialLR`."""
    warmup, steps, updates = 5, 20, 32
    want, _ = torch_schedule(
        lambda o: lr_scheduler.SequentialLR(
            o,
            [
                lr_scheduler.LinearLR(o, start_factor=1e-8, total_iters=warmup),
                lr_scheduler.PolynomialLR(o, total_iters=steps, power=1.0),
            ],
            milestones=[warmup],
        ),
        updates,
        learning_rate=PEAK,
    )
    clr = {"mode": "polynomial", "max_lr": PEAK, "decay_steps": steps}
    clr.update(warmup_steps=warmup, warmup_factor=1e-8)
    got = rates_of(SGD(learning_rate=0.0, clr=clr), updates)
    close_to_float32(got, want, PEAK, 6)
    assert got[warmup] == np.float32(PEAK)  # the peak, exactly, after the warmup
    assert got[warmup + steps :].max() == 0.0


def test_in_a_chain_each_piece_counts_from_its_start():
    first = {"mode": "polynomial", "decay_steps": 6, "power": 2.0}
    second = {"mode": "polynomial", "decay_steps": 4, "cycle": True}
    clr = {
        "mode": "chain",
        "max_lr": PEAK,
        "policies": [first, second],
        "boundaries": [9],
    }
    got = rates_of(SGD(learning_rate=0.01, clr=clr), 30)
    pieces = [
        keras_rates(keras.optimizers.schedules.PolynomialDecay(PEAK, 6, 0.01, power=2.0), 9),
        keras_rates(keras.optimizers.schedules.PolynomialDecay(PEAK, 4, 0.01, cycle=True), 21),
    ]  # fmt: skip
    close_to_float32(got, np.concatenate(pieces), PEAK, 11)
    np.testing.assert_array_equal(schedule_values(0.01, clr, range(30)), got)


@pytest.mark.parametrize("cycle", [False, True])
def test_exact_at_the_far_end_of_the_counter(cycle):
    steps = 10**9 + 7
    opt = SGD(
        learning_rate=0.0,
        clr={
            "mode": "polynomial",
            "max_lr": PEAK,
            "decay_steps": steps,
            "cycle": cycle,
        },
    )
    far = np.array([FAR - 3, FAR - 2, FAR - 1])
    got = opt.schedule_state.rates(far)
    if cycle:
        spans = np.ceil(far / steps)
        want = PEAK * (spans * steps - far) / (spans * steps)
    else:
        want = PEAK * np.maximum(steps - far, 0) / steps
    close_to_float32(got, want, PEAK, 3)


def test_fit_uses_it_in_the_compiled_step():
    truth = Truth()
    clr = {"mode": "polynomial", "max_lr": PEAK, "decay_steps": 9, "power": 2.0}
    fit(SGD(learning_rate=0.01, clr=clr), 2, truth)
    reference = keras.optimizers.schedules.PolynomialDecay(PEAK, 9, 0.01, power=2.0)
    # Each rate is read off a weight that one SGD update moved: one more
    # rounding, of the weight.
    close_to_float32(truth.rates, keras_rates(reference, 14), PEAK, 12)


@pytest.mark.parametrize("floatx", ["float16", "float64"])
def test_computed_in_float32_whatever_keras_floatx(floatx):
    """The rate is computed in float32; only the bounds, the optimizer's
    variables, take Keras's floatx."""
    clr = {"mode": "polynomial", "max_lr": PEAK, "decay_steps": 100003, "cycle": True}
    keras.config.set_floatx(floatx)
    try:
        got = rates_of(SGD(learning_rate=0.0, clr=clr), 8)
    finally:
        keras.config.set_floatx("float32")
    peak = float(np.dtype(floatx).type(PEAK))  # as the variable holds it
    want = peak * (100003 - np.arange(8)) / 100003
    close_to_float32(got, want, peak, 3)
