"""Mode "warm_restarts" (SGDR) update by update, against PyTorch's
CosineAnnealingWarmRestarts, Keras's CosineDecayRestarts (also where Keras
misses a restart), optax's sgdr_schedule and cosine_decay_schedule, and a NumPy
restatement of the published formula with a cycled momentum; and at large
update counts."""

import math
from fractions import Fraction

import keras
import numpy as np
import pytest
from conftest import COUNTER_MAX, torch_schedule
from policy_references import (
    FAR,
    FLOOR,
    KERAS_RTOL,
    MOMENTUM,
    PEAK,
    RTOL,
    keras_rates,
    lr_scheduler,
    momenta_of,
    optax_rates,
    rates_of,
    schedule_values,
    sgdr_kwargs,
    sgdr_weight,
)

from clr_optimizers import SGD, Adam

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

# (id, T_0, T_mult, eta_min, updates)
SGDR_PYTORCH = [
    ("T_0=10", 10, 1, 0.01, 200),
    ("T_0=5 T_mult=2", 5, 2, 0.001, 400),
    ("T_0=3 T_mult=3", 3, 3, 0.01, 400),
    ("T_0=1 T_mult=2 eta_min=0", 1, 2, 0.0, 300),
]


@pytest.mark.parametrize(
    ("period", "period_mult", "floor", "updates"),
    [case[1:] for case in SGDR_PYTORCH],
    ids=[case[0] for case in SGDR_PYTORCH],
)
def test_warm_restarts_match_pytorch(period, period_mult, floor, updates):
    expected, _ = torch_schedule(
        lambda o: lr_scheduler.CosineAnnealingWarmRestarts(
            o, T_0=period, T_mult=period_mult, eta_min=floor
        ),
        updates,
        PEAK,
    )
    clr = {
        "mode": "warm_restarts",
        "max_lr": PEAK,
        "period": period,
        "period_mult": period_mult,
    }
    opt = SGD(learning_rate=floor, clr=clr)
    np.testing.assert_allclose(rates_of(opt, updates), expected, rtol=RTOL, atol=1e-9)


# Keras's CosineDecayRestarts finds the period as i = floor(log(1 -
# n / T_0 * (1 - t_mul)) / log(t_mul)) in floating point. At the first update
# of period i the quotient is i in exact arithmetic; where it rounds below i,
# Keras takes period i - 1 with completed_fraction 1 and gives alpha * P, the
# floor, instead of the peak of period i. In float64, with correctly rounded
# logarithms, log(243) / log(3) = 4.999999999999999: with
# CosineDecayRestarts(0.1, 10, t_mul=3, m_mul=0.8, alpha=0.1) Keras gives 0.01
# at n = 1210, where period 5 begins at 0.01 + 0.09 * 0.8**5 = 0.0394912
# (TensorFlow, float64, one count at a time). TensorFlow's float64 log of an
# array is one ulp low at 3 (1.0986122886681096 for 1.0986122886681098), so
# evaluated on an array of counts Keras also gives the floor at n = 10, 40 and
# 400. In float32 on PyTorch log(1.5) is one ulp high (0.40546513 for
# 0.4054651), so log(2.25) / log(1.5) < 2: with first_decay_steps = 6 and
# t_mul = 1.5 Keras gives the floor at n = 15. PyTorch's
# CosineAnnealingWarmRestarts counts the periods in integers (T_mult = 3
# above), and the cases below are exact in Keras on every backend.
# (id, first_decay_steps, t_mul, m_mul, alpha, updates)
SGDR_KERAS = [
    ("t_mul=1", 10, 1.0, 1.0, 0.1, 300),
    ("t_mul=2 m_mul=0.8", 10, 2.0, 0.8, 0.1, 700),
    ("t_mul=1.5 m_mul=0.9", 7, 1.5, 0.9, 0.2, 500),
    ("t_mul=4 m_mul=0.5", 4, 4.0, 0.5, 0.05, 400),
]


@pytest.mark.parametrize(
    ("period", "t_mul", "m_mul", "alpha", "updates"),
    [case[1:] for case in SGDR_KERAS],
    ids=[case[0] for case in SGDR_KERAS],
)
def test_warm_restarts_match_keras_cosine_decay_restarts(
    period, t_mul, m_mul, alpha, updates
):
    schedule = keras.optimizers.schedules.CosineDecayRestarts(
        np.float64(PEAK), period, t_mul=t_mul, m_mul=m_mul, alpha=alpha
    )
    expected = keras_rates(schedule, updates)
    clr = {
        "mode": "warm_restarts",
        "max_lr": PEAK,
        "period": period,
        "period_mult": t_mul,
        "peak_mult": m_mul,
    }
    opt = SGD(learning_rate=alpha * PEAK, clr=clr)
    np.testing.assert_allclose(rates_of(opt, updates), expected, rtol=KERAS_RTOL)


@pytest.mark.parametrize(
    ("period", "period_mult", "restarts"),
    [(10, 3, [10, 40, 130, 400, 1210]), (6, 1.5, [6, 15, 29])],
    ids=["10 x3", "6 x1.5"],
)
def test_each_period_begins_at_its_peak_where_keras_misses_the_restart(
    period, period_mult, restarts
):
    clr = {
        "mode": "warm_restarts",
        "max_lr": PEAK,
        "period": period,
        "period_mult": period_mult,
        "peak_mult": 0.8,
    }
    rates = rates_of(SGD(learning_rate=FLOOR, clr=clr), 1300)
    for n in restarts:
        for k in (n - 1, n, n + 1):
            weight = sgdr_weight(k, period, period_mult, 0.8)
            assert rates[k] == pytest.approx(FLOOR + (PEAK - FLOOR) * weight, rel=RTOL)
        assert rates[n] > rates[n - 1]
    if period_mult == 3:
        assert rates[1210] == pytest.approx(0.01 + 0.09 * 0.8**5, rel=RTOL)


# (id, period, period_mult, peak_mult, cycle_limit, updates)
SGDR_OPTAX = [
    ("period=10 cycle_limit=5", 10, 1, 1.0, 5, 70),
    ("period=4 x2 peak x0.7", 4, 2, 0.7, 6, 300),
    ("period=2.5 x1.5 peak x0.9", 2.5, 1.5, 0.9, 9, 200),
    ("period=7.25 x1.25", 7.25, 1.25, 1.0, 7, 120),
]


@pytest.mark.parametrize(
    ("period", "period_mult", "peak_mult", "cycle_limit", "updates"),
    [case[1:] for case in SGDR_OPTAX],
    ids=[case[0] for case in SGDR_OPTAX],
)
def test_warm_restarts_match_optax_sgdr(
    period, period_mult, peak_mult, cycle_limit, updates
):
    kwargs = sgdr_kwargs(period, period_mult, peak_mult, cycle_limit)
    expected = optax_rates(lambda optax: optax.sgdr_schedule(kwargs), updates)
    clr = {
        "mode": "warm_restarts",
        "max_lr": PEAK,
        "period": period,
        "period_mult": period_mult,
        "peak_mult": peak_mult,
        "cycle_limit": cycle_limit,
    }
    opt = SGD(learning_rate=FLOOR, clr=clr)
    np.testing.assert_allclose(rates_of(opt, updates), expected, rtol=RTOL)
    # optax's last cosine decay holds its end value: the floor, here reached.
    assert sum(k["decay_steps"] for k in kwargs) < updates


@pytest.mark.parametrize("decay_steps", [1, 50, 999])
def test_one_anneal_matches_optax_cosine_decay(decay_steps):
    updates = decay_steps + 20
    expected = optax_rates(
        lambda optax: optax.cosine_decay_schedule(
            PEAK, decay_steps, alpha=FLOOR / PEAK
        ),
        updates,
    )
    clr = {
        "mode": "warm_restarts",
        "max_lr": PEAK,
        "period": decay_steps,
        "cycle_limit": 1,
    }
    opt = SGD(learning_rate=FLOOR, clr=clr)
    np.testing.assert_allclose(rates_of(opt, updates), expected, rtol=RTOL)


# (id, clr without mode and max_lr, keyword arguments of `sgdr_weight`)
SGDR_NUMPY = [
    ("period=6", {"period": 6}, {"period": 6}),
    ("period=2.5", {"period": 2.5}, {"period": 2.5}),
    ("period=3 x3 peak x0.5", {"period": 3, "period_mult": 3, "peak_mult": 0.5}, {"period": 3, "period_mult": 3, "peak_mult": 0.5}),
    ("period=10 x3", {"period": 10, "period_mult": 3}, {"period": 10, "period_mult": 3}),
    ("period=1 x1.1", {"period": 1, "period_mult": 1.1}, {"period": 1, "period_mult": Fraction(11, 10)}),
    ("period=5 x2.5 cycle_limit=3", {"period": 5, "period_mult": 2.5, "cycle_limit": 3}, {"period": 5, "period_mult": 2.5, "cycle_limit": 3}),
    ("period=0.75 cycle_limit=40", {"period": 0.75, "cycle_limit": 40}, {"period": 0.75, "cycle_limit": 40}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("clr", "reference"),
    [case[1:] for case in SGDR_NUMPY],
    ids=[case[0] for case in SGDR_NUMPY],
)
def test_warm_restarts_and_momentum_match_numpy(clr, reference):
    updates = 400
    opt = Adam(
        learning_rate=FLOOR,
        clr={"mode": "warm_restarts", "max_lr": PEAK, "momentum": MOMENTUM, **clr},
    )
    weights = np.array([sgdr_weight(n, **reference) for n in range(updates)])
    rates = rates_of(opt, updates)
    np.testing.assert_allclose(rates, FLOOR + (PEAK - FLOOR) * weights, rtol=RTOL)
    low, high = MOMENTUM
    np.testing.assert_allclose(
        momenta_of(opt, updates), high - (high - low) * weights, rtol=1e-6
    )
    # Each period begins at its peak.
    starts = [n for n in range(1, updates) if weights[n] > weights[n - 1]]
    assert starts and np.all(rates[starts] >= rates[[s - 1 for s in starts]])
    peaks = np.float32(FLOOR + (PEAK - FLOOR) * weights[starts])
    np.testing.assert_allclose(rates[starts], peaks, rtol=1e-6)


def restart_counts(period, period_mult, last):
    """The counts of the first update of each period that begins by `last`."""
    length, start, counts = Fraction(period), Fraction(0), []
    while start <= last:
        counts.append(math.ceil(start))
        start, length = start + length, length * Fraction(period_mult)
    return counts


@pytest.mark.parametrize(
    "clr",
    [
        {"period": 2000},
        {"period": 7, "peak_mult": 0.999},
        {"period": 2.5},
        {"period": 10, "period_mult": 2, "peak_mult": 0.9},
        {"period": 3, "period_mult": 3},
        {"period": 2.5, "period_mult": 1.5},
        {"period": 3, "cycle_limit": 1000},
    ],
    ids=["2000", "7 peak x0.999", "2.5", "10 x2", "3 x3", "2.5 x1.5", "limit"],
)
def test_warm_restarts_at_large_counts(clr):
    """Both sides of the last restarts before 10**12 (2**31 - 1 on a 32-bit
    counter) and the end of the counter's range."""
    mult = clr.get("period_mult", 1)
    if mult == 1:
        period = Fraction(clr["period"])
        last = math.ceil(math.floor(FAR / period) * period)
        restarts = [last, math.ceil(last - period)]
    else:
        restarts = restart_counts(clr["period"], mult, FAR)[-2:]
    steps = sorted(
        {r + d for r in restarts for d in (-1, 0, 1, 2) if r + d <= COUNTER_MAX}
        | {COUNTER_MAX - 1, COUNTER_MAX // 3}
    )
    weights = np.array([sgdr_weight(n, **clr) for n in steps])
    got = schedule_values(
        FLOOR, {"mode": "warm_restarts", "max_lr": PEAK, **clr}, steps
    )
    np.testing.assert_allclose(got, FLOOR + (PEAK - FLOOR) * weights, rtol=RTOL)
    # The optimizer's own counter gives the same.
    opt = SGD(learning_rate=FLOOR, clr={"mode": "warm_restarts", "max_lr": PEAK, **clr})
    opt.iterations.assign(steps[1] + 1)
    assert opt.current_lr == pytest.approx(got[1], rel=1e-6)


def test_many_counts_at_once_are_read_in_chunks_with_the_same_rates(monkeypatch):
    # On the host, many counts are compared with the periods' bounds a chunk
    # at a time, to bound the memory: the rates do not depend on the chunks.
    from clr_optimizers._policies import warm_restarts

    clr = {"mode": "warm_restarts", "max_lr": 0.1, "period": 3, "period_mult": 1.5}
    opt = SGD(learning_rate=0.01, clr=clr, momentum=0.9)
    whole = opt.learning_rates(700)
    monkeypatch.setattr(warm_restarts, "_MOST_COMPARED", 7 * 64)
    np.testing.assert_array_equal(opt.learning_rates(700), whole)
    counts = np.array([[5, 17], [40, 2**20]])
    np.testing.assert_array_equal(
        opt.schedule_state.rates(counts),
        opt.schedule_state.rates(counts.ravel()).reshape(2, 2),
    )
