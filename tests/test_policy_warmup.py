"""`warmup_steps` and `warmup_factor`, a linear warmup before any policy,
update by update: against PyTorch's LinearLR under SequentialLR, Keras's
CosineDecay warmup, optax's warmup_cosine_decay_schedule and join_schedules,
and a NumPy restatement with no jump at the warmup's end; and at large update
counts."""

from fractions import Fraction

import keras
import numpy as np
import pytest
from conftest import COUNTER_MAX, torch_schedule
from policy_references import (
    FLOOR,
    KERAS_RTOL,
    MOMENTUM,
    PEAK,
    RTOL,
    WARM,
    cyclical_height,
    half_cycle_ends,
    keras_rates,
    lr_scheduler,
    momenta_of,
    optax_cosine_cycles,
    optax_rates,
    rates_of,
    schedule_values,
    sgdr_kwargs,
    sgdr_weight,
    with_warmup,
)

from clr_optimizers import SGD

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

# (id, warmup_factor, warmup_steps, T_0, T_mult)
WARMUP_PYTORCH = [
    ("f=0.1 N=5 T_0=10", 0.1, 5, 10, 1),
    ("f=0.5 N=20 T_0=4 x2", 0.5, 20, 4, 2),
    ("f=0.25 N=1 T_0=3 x3", 0.25, 1, 3, 3),
]


@pytest.mark.parametrize(
    ("factor", "steps", "period", "period_mult"),
    [case[1:] for case in WARMUP_PYTORCH],
    ids=[case[0] for case in WARMUP_PYTORCH],
)
def test_warmup_then_restarts_match_pytorch_sequential_lr(
    factor, steps, period, period_mult
):
    def scheduler(o):
        return lr_scheduler.SequentialLR(
            o,
            [
                lr_scheduler.LinearLR(o, start_factor=factor, total_iters=steps),
                lr_scheduler.CosineAnnealingWarmRestarts(
                    o, T_0=period, T_mult=period_mult, eta_min=FLOOR
                ),
            ],
            milestones=[steps],
        )

    expected, _ = torch_schedule(scheduler, 200, PEAK)
    clr = {
        "mode": "warm_restarts",
        "max_lr": PEAK,
        "period": period,
        "period_mult": period_mult,
        "warmup_steps": steps,
        "warmup_factor": factor,
    }
    opt = SGD(learning_rate=FLOOR, clr=clr)
    np.testing.assert_allclose(rates_of(opt, 200), expected, rtol=RTOL)


def test_warmup_then_one_anneal_matches_pytorch_cosine_annealing_lr():
    # CosineAnnealingLR rises again after T_max: compared up to its floor.
    steps, anneal = 8, 50

    def scheduler(o):
        return lr_scheduler.SequentialLR(
            o,
            [
                lr_scheduler.LinearLR(o, start_factor=0.3, total_iters=steps),
                lr_scheduler.CosineAnnealingLR(o, T_max=anneal, eta_min=FLOOR),
            ],
            milestones=[steps],
        )

    expected, _ = torch_schedule(scheduler, steps + anneal + 1, PEAK)
    clr = {
        "mode": "warm_restarts",
        "max_lr": PEAK,
        "period": anneal,
        "cycle_limit": 1,
        "warmup_steps": steps,
        "warmup_factor": 0.3,
    }
    opt = SGD(learning_rate=FLOOR, clr=clr)
    np.testing.assert_allclose(rates_of(opt, steps + anneal + 1), expected, rtol=RTOL)


@pytest.mark.parametrize("three_phase", [False, True])
def test_warmup_before_cyclic_and_one_cycle_matches_pytorch_sequential_lr(three_phase):
    """A cyclical policy starts at its floor, one-cycle at its start rate: the
    warmup rises to that first rate."""

    def cyclic(o):
        return lr_scheduler.SequentialLR(
            o,
            [
                lr_scheduler.LinearLR(o, start_factor=0.2, total_iters=6),
                lr_scheduler.CyclicLR(
                    o,
                    base_lr=FLOOR,
                    max_lr=PEAK,
                    step_size_up=3,
                    step_size_down=5,
                    cycle_momentum=False,
                ),
            ],
            milestones=[6],
        )

    expected, _ = torch_schedule(cyclic, 60, FLOOR)
    clr = {
        "max_lr": PEAK,
        "step_size_up": 3,
        "step_size_down": 5,
        "warmup_steps": 6,
        "warmup_factor": 0.2,
    }
    np.testing.assert_allclose(
        rates_of(SGD(learning_rate=FLOOR, clr=clr), 60), expected, rtol=RTOL
    )

    def one_cycle(o):
        return lr_scheduler.SequentialLR(
            o,
            [
                lr_scheduler.LinearLR(o, start_factor=0.5, total_iters=10),
                lr_scheduler.OneCycleLR(
                    o,
                    max_lr=PEAK,
                    total_steps=40,
                    three_phase=three_phase,
                    cycle_momentum=False,
                ),
            ],
            milestones=[10],
        )

    expected, _ = torch_schedule(one_cycle, 50, PEAK / 25)
    clr = {
        "mode": "one_cycle",
        "max_lr": PEAK,
        "total_steps": 40,
        "three_phase": three_phase,
        "warmup_steps": 10,
        "warmup_factor": 0.5,
    }
    np.testing.assert_allclose(rates_of(SGD(clr=clr), 50), expected, rtol=RTOL)


# (id, initial_learning_rate, warmup_target, warmup_steps, decay_steps, alpha)
WARMUP_KERAS = [
    ("from 0", 0.0, 0.1, 10, 50, 0.1),
    ("from a fifth", 0.02, 0.1, 50, 1000, 0.01),
    ("one step", 0.05, 0.2, 1, 7, 0.25),
    ("N=25 D=200", 0.001, 0.05, 25, 200, 0.02),
]


@pytest.mark.parametrize(
    ("initial", "target", "steps", "decay_steps", "alpha"),
    [case[1:] for case in WARMUP_KERAS],
    ids=[case[0] for case in WARMUP_KERAS],
)
def test_warmup_matches_keras_cosine_decay(initial, target, steps, decay_steps, alpha):
    updates = steps + decay_steps + 20
    schedule = keras.optimizers.schedules.CosineDecay(
        np.float64(initial),
        decay_steps,
        alpha=alpha,
        warmup_target=np.float64(target),
        warmup_steps=steps,
    )
    expected = keras_rates(schedule, updates)
    clr = {
        "mode": "warm_restarts",
        "max_lr": target,
        "period": decay_steps,
        "cycle_limit": 1,
        "warmup_steps": steps,
        "warmup_factor": initial / target,
    }
    opt = SGD(learning_rate=alpha * target, clr=clr)
    np.testing.assert_allclose(
        rates_of(opt, updates), expected, rtol=KERAS_RTOL, atol=1e-9
    )


@pytest.mark.parametrize(
    ("init", "steps", "decay_steps", "end"),
    [(0.0, 10, 100, 0.001), (0.03, 1, 30, 0.01), (0.05, 100, 900, 0.0)],
)
def test_warmup_matches_optax_warmup_cosine_decay(init, steps, decay_steps, end):
    updates = steps + decay_steps + 10
    expected = optax_rates(
        lambda optax: optax.warmup_cosine_decay_schedule(
            init, PEAK, steps, steps + decay_steps, end_value=end
        ),
        updates,
    )
    clr = {
        "mode": "warm_restarts",
        "max_lr": PEAK,
        "period": decay_steps,
        "cycle_limit": 1,
        "warmup_steps": steps,
        "warmup_factor": init / PEAK,
    }
    opt = SGD(learning_rate=end, clr=clr)
    # Towards a floor of 0 the float32 rate is exact to the rounding of the
    # peak (about 1e-8 here), not of the rate: the weight comes from the share
    # of the period done, cos(pi/2 d)**2, whose argument is rounded near pi/2.
    np.testing.assert_allclose(rates_of(opt, updates), expected, rtol=RTOL, atol=1e-8)


def test_warmup_before_restarts_and_cos_cycles_matches_optax_join_schedules():
    kwargs = sgdr_kwargs(5, 2, 0.8, 5)
    expected = optax_rates(
        lambda optax: optax.join_schedules(
            [optax.linear_schedule(0.4 * PEAK, PEAK, 12), optax.sgdr_schedule(kwargs)],
            [12],
        ),
        200,
    )
    clr = {
        "mode": "warm_restarts",
        "max_lr": PEAK,
        "period": 5,
        "period_mult": 2,
        "peak_mult": 0.8,
        "cycle_limit": 5,
        "warmup_steps": 12,
        "warmup_factor": 0.4,
    }
    np.testing.assert_allclose(
        rates_of(SGD(learning_rate=FLOOR, clr=clr), 200), expected, rtol=RTOL
    )
    # A warmup to the floor, then cosine cycles of 3 and 7 updates.
    values, bounds = half_cycle_ends(3, 7, 10, lambda c: 0.5 ** (c - 1))
    expected = optax_rates(
        lambda optax: optax.join_schedules(
            [
                optax.linear_schedule(0.0, FLOOR, 9),
                optax_cosine_cycles(optax, values, bounds),
            ],
            [9],
        ),
        100,
    )
    clr = {
        "max_lr": PEAK,
        "step_size_up": 3,
        "step_size_down": 7,
        "mode": "triangular2",
        "ramp": "cos",
        "warmup_steps": 9,
    }
    np.testing.assert_allclose(
        rates_of(SGD(learning_rate=FLOOR, clr=clr), 100), expected, rtol=RTOL
    )


# name: (learning_rate, clr without the warmup, the policy's weights)
POLICIES = {
    "triangular": (
        FLOOR,
        {"max_lr": PEAK, "step_size": 4},
        lambda u: [cyclical_height(n, up=4, down=4) for n in range(u)],
    ),
    "exp_range cos": (
        FLOOR,
        {"max_lr": PEAK, "step_size_up": 2, "step_size_down": 5, "mode": "exp_range", "gamma": 0.97, "ramp": "cos"},
        lambda u: [cyclical_height(n, up=2, down=5, mode="exp_range", gamma=0.97, ramp="cos") for n in range(u)],
    ),
    "warm_restarts": (
        FLOOR,
        {"mode": "warm_restarts", "max_lr": PEAK, "period": 6, "period_mult": 2, "peak_mult": 0.5},
        lambda u: [sgdr_weight(n, 6, 2, 0.5) for n in range(u)],
    ),
}  # fmt: skip


@pytest.mark.parametrize("factor", [0.0, 0.3])
@pytest.mark.parametrize("steps", [1, 7, 100])
@pytest.mark.parametrize("policy", POLICIES)
def test_warmup_matches_numpy_with_no_jump_at_its_end(policy, steps, factor):
    floor, clr, heights = POLICIES[policy]
    updates = 150
    clr = {**clr, "warmup_steps": steps, "warmup_factor": factor, "momentum": MOMENTUM}
    opt = SGD(learning_rate=floor, clr=clr)
    weights = np.array(heights(updates))
    policy_rates = floor + (PEAK - floor) * weights
    expected = with_warmup(policy_rates, steps, factor)[:updates]
    rates = rates_of(opt, updates)
    np.testing.assert_allclose(rates, expected, rtol=RTOL, atol=1e-12)
    first = policy_rates[0]
    # Both sides of the warmup's end: the ramp reaches the policy's first
    # rate at N, and moves by one step of the ramp before it.
    if steps > 1:
        assert rates[steps - 1] == pytest.approx(
            first * (factor + (1 - factor) * (steps - 1) / steps), rel=1e-6
        )
        assert abs(rates[steps] - rates[steps - 1]) <= first * (1 - factor) / steps * (
            1 + 1e-5
        )
    assert rates[steps] == pytest.approx(first, rel=1e-6)
    assert rates[steps + 1] == pytest.approx(policy_rates[1], rel=1e-6)
    # A cycled momentum holds the policy's first value during the warmup.
    low, high = MOMENTUM
    momentum = high - (high - low) * weights
    np.testing.assert_allclose(
        momenta_of(opt, updates),
        np.concatenate([np.full(steps, momentum[0]), momentum])[:updates],
        rtol=1e-6,
    )


@pytest.mark.parametrize("factor", [0.0, 0.1, 0.3, 0.7, 1 / 3, 0.999])
def test_after_the_warmup_the_rates_are_the_policys_own_exactly(factor):
    # The warmup evaluates the policy once, at its own count, and scales it
    # by a ramp that ends at exactly 1.
    clr = {"max_lr": PEAK, "mode": "one_cycle", "total_steps": 60, "momentum": MOMENTUM}
    plain = SGD(learning_rate=FLOOR, clr=clr)
    warmed = SGD(
        learning_rate=FLOOR, clr={**clr, "warmup_steps": 9, "warmup_factor": factor}
    )
    np.testing.assert_array_equal(rates_of(warmed, 70)[9:], rates_of(plain, 61))
    np.testing.assert_array_equal(momenta_of(warmed, 70)[9:], momenta_of(plain, 61))


def test_the_ramp_ends_at_exactly_one_for_every_factor():
    # f + (1 - f), each rounded to float32 as the step rounds them, is 1.
    rng = np.random.default_rng(0)
    factors = np.concatenate([np.linspace(0, 1, 100_001), rng.random(100_000)])
    ends = np.float32(factors) + np.float32(1.0 - factors)
    np.testing.assert_array_equal(ends, np.float32(1))


def test_a_warmup_factor_of_one_holds_the_first_rate():
    # PyTorch's LinearLR accepts start_factor = 1: a constant rate for
    # total_iters updates.
    expected, _ = torch_schedule(
        lambda o: lr_scheduler.SequentialLR(
            o,
            [
                lr_scheduler.LinearLR(o, start_factor=1.0, total_iters=5),
                lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=10, eta_min=FLOOR),
            ],
            milestones=[5],
        ),
        40,
        PEAK,
    )
    clr = {**WARM, "warmup_steps": 5, "warmup_factor": 1.0}
    opt = SGD(learning_rate=FLOOR, clr=clr)
    np.testing.assert_allclose(rates_of(opt, 40), expected, rtol=RTOL)


@pytest.mark.parametrize("steps", [10**6, 3 * 10**9, 10**12])
def test_warmup_at_large_counts(steps):
    """Both sides of the warmup's end where the counter reaches it, and the
    end of the counter's range (still warming up where the warmup is longer
    than a 32-bit counter)."""
    clr = {
        "mode": "warm_restarts",
        "max_lr": PEAK,
        "period": 2000,
        "warmup_steps": steps,
        "warmup_factor": 0.1,
    }
    counts = [n for n in (steps - 1, steps, steps + 1, steps + 1000) if n < COUNTER_MAX]
    counts += [COUNTER_MAX - 1]
    expected = [
        PEAK * (0.1 + 0.9 * Fraction(n, steps)) if n < steps
        else FLOOR + (PEAK - FLOOR) * sgdr_weight(n - steps, 2000)
        for n in counts
    ]  # fmt: skip
    got = schedule_values(FLOOR, clr, counts)
    np.testing.assert_allclose(got, np.array(expected, dtype=np.float64), rtol=RTOL)
