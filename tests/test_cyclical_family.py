"""Cosine ramps, warm restarts (SGDR), warmup, chains of policies and one-cycle
by epochs, update by update, against PyTorch's schedulers, Keras's own
schedules, optax and NumPy restatements of the published formulas; at large
update counts, through `get_config`, inside `model.fit`, and on bad input."""

import json
import math
from fractions import Fraction

import keras
import numpy as np
import pytest
import torch
from conftest import BACKEND, COUNTER_MAX, torch_schedule
from keras import ops

from clr_optimizers import SGD, Adam, LearningRateMonitor
from clr_optimizers.schedules import CLRSchedule

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

lr_scheduler = torch.optim.lr_scheduler

FLOOR, PEAK = 0.01, 0.1
MOMENTUM = (0.85, 0.95)
# Float32 against a float64 reference, relative to the value compared.
RTOL = 2e-6
# Against Keras's schedules, which compute in float32 on JAX and PyTorch:
# CosineDecayRestarts takes the share of the period done as n / T_0 less the
# restart index, to within float32 rounding of n / T_0 (at n = 168, T_0 = 10:
# 0.79999924 for 0.8, a rate 5e-6 below the exact one).
KERAS_RTOL = 1e-5
# The largest count compared: 10**12 on TensorFlow's 64-bit counter, the end
# of the 32-bit one on JAX and PyTorch.
FAR = min(10**12, COUNTER_MAX - 1)


def evaluated(updates):
    """The length of the arrays of counts evaluated for `updates` of them: a
    power of two, at least 256 (JAX compiles each operation anew for each
    array length it meets)."""
    return max(256, 1 << (updates - 1).bit_length())


def rates_of(optimizer, updates):
    """`optimizer.learning_rates(updates)`."""
    return optimizer.learning_rates(evaluated(updates))[:updates]


def momenta_of(optimizer, updates):
    """`optimizer.momentum_values(updates)`."""
    return optimizer.momentum_values(evaluated(updates))[:updates]


def schedule_values(learning_rate, clr, steps):
    """`CLRSchedule(learning_rate, clr)` at the update counts `steps`."""
    steps = np.asarray(steps, dtype=np.int64)
    padded = np.resize(steps, evaluated(len(steps)))
    values = CLRSchedule(learning_rate, clr)(padded)
    return np.asarray(ops.convert_to_numpy(values), dtype=np.float64)[: len(steps)]


# NumPy restatements of the formulas, in exact fractions where a count or a
# length enters.


def cyclical_height(
    n,
    up,
    down,
    mode="triangular",
    gamma=1.0,
    restart_every=None,
    scale_fn=None,
    scale_mode="cycle",
    ramp="linear",
):
    """`h * scale` of Smith's cycle (arXiv:1506.01186) after `n` updates, for
    halves of `up` and `down` updates: `h` rises as t / up and falls as
    (up + down - t) / down, t the updates into the cycle; with a cosine ramp
    h becomes (1 - cos(pi h)) / 2. The scale is 1 (triangular), 1 / 2**(c - 1)
    (triangular2, c = 1, 2, ... the cycle), gamma**n (exp_range) or
    scale_fn(c) / scale_fn(n); with restarts every K cycles (modified
    triangular2: K = 3) the scale's argument counts from the last restart."""
    up, down = Fraction(up), Fraction(down)
    period = up + down
    done = math.floor(Fraction(n) / period)  # completed cycles
    t = n - done * period
    h = float(min(t / up, (period - t) / down))
    if ramp == "cos":
        h = (1 - math.cos(math.pi * h)) / 2
    if mode == "modified_triangular2":
        mode, restart_every = "triangular2", restart_every or 3
    run = Fraction(n)
    if restart_every:
        restarted = done - done % restart_every
        done -= restarted
        run -= restarted * period
    if scale_fn is not None:
        scale = scale_fn(done + 1 if scale_mode == "cycle" else float(run))
    elif mode == "triangular":
        scale = 1.0
    elif mode == "triangular2":
        scale = 0.5**done
    else:
        scale = gamma ** float(run)
    return h * scale


def cyclical_rates(updates, floor=FLOOR, peak=PEAK, decay=0.0, **kwargs):
    n = np.arange(updates)
    heights = np.array([cyclical_height(int(k), **kwargs) for k in n])
    floors = floor / (1 + decay * n)
    return floors + (peak - floors) * heights


def sgdr_weight(n, period, period_mult=1, peak_mult=1.0, cycle_limit=None):
    """`peak_mult**i (1 + cos(pi t / T_i)) / 2` of SGDR (Loshchilov and Hutter,
    arXiv:1608.03983) after `n` updates: period i lasts T_i = period *
    period_mult**i updates and begins after S_i = T_0 + ... + T_(i-1); n is
    in the period with S_i <= n < S_(i+1), t = n - S_i. From period
    `cycle_limit` on the weight is 0 (the floor holds)."""
    length, start, index = Fraction(period), Fraction(0), 0
    mult = Fraction(period_mult)
    if mult == 1:
        index = math.floor(Fraction(n) / length)
        start = index * length
    else:
        while start + length <= n:
            start, length, index = start + length, length * mult, index + 1
    if cycle_limit is not None and index >= cycle_limit:
        return 0.0
    return peak_mult**index * (1 + math.cos(math.pi * float((n - start) / length))) / 2


def sgdr_rates(updates, floor=FLOOR, peak=PEAK, **kwargs):
    weights = np.array([sgdr_weight(n, **kwargs) for n in range(updates)])
    return floor + (peak - floor) * weights


def with_warmup(policy, steps, factor):
    """A linear warmup of `steps` updates from `factor * policy[0]` to
    `policy[0]`, then `policy` from its own start."""
    ramp = policy[0] * (factor + (1 - factor) * np.arange(steps) / steps)
    return np.concatenate([ramp, policy])


def joined(pieces, boundaries, updates):
    """optax's `join_schedules`: piece j at n - B_j for B_j <= n < B_(j+1)."""
    starts = [0, *boundaries]
    out = np.empty(updates)
    for n in range(updates):
        j = np.searchsorted(starts, n, side="right") - 1
        out[n] = pieces[j][n - starts[j]]
    return out


# The references' own evaluation.


def keras_rates(schedule, updates):
    """A Keras schedule as an optimizer evaluates it, one count at a time (on
    JAX vectorised with `jax.vmap`, as eager calls there are slow)."""
    if BACKEND == "jax":
        import jax

        steps = np.arange(evaluated(updates))
        values = np.asarray(jax.vmap(schedule)(steps), dtype=np.float64)
        return values[:updates]
    return np.array(
        [float(ops.convert_to_numpy(schedule(step))) for step in range(updates)]
    )


def optax_rates(make_schedule, updates):
    """An optax schedule in float64 (optax computes in float32 unless 64-bit
    types are enabled), one count at a time (vectorised)."""
    optax = pytest.importorskip("optax")
    import jax

    with jax.enable_x64(True):
        schedule = jax.vmap(make_schedule(optax))
        values = schedule(np.arange(evaluated(updates), dtype=np.int64))
        return np.asarray(values, dtype=np.float64)[:updates]


def optax_cosine_cycles(optax, values, boundaries):
    """optax's cosine interpolation between `values` at `boundaries` (the
    first at 0): each half of a cycle as a half cosine."""
    scales = {b: values[k + 1] / values[k] for k, b in enumerate(boundaries[1:])}
    return optax.piecewise_interpolate_schedule("cosine", values[0], scales)


def half_cycle_ends(up, down, cycles, heights):
    """The counts at which the halves end and the rate there: floor, peak of
    cycle 1, floor, peak of cycle 2, ... for peak heights `heights`."""
    bounds, values, start = [0.0], [FLOOR], 0.0
    for c in range(cycles):
        bounds += [start + up, start + up + down]
        values += [FLOOR + (PEAK - FLOOR) * heights(c + 1), FLOOR]
        start += up + down
    return values, bounds


def sgdr_kwargs(period, period_mult, peak_mult, cycles, floor=FLOOR, peak=PEAK):
    """optax `sgdr_schedule` arguments: one cosine decay per period."""
    return [
        {
            "init_value": floor + (peak - floor) * peak_mult**i,
            "peak_value": floor + (peak - floor) * peak_mult**i,
            "warmup_steps": 0,
            "decay_steps": period * period_mult**i,
            "end_value": floor,
        }
        for i in range(cycles)
    ]


# 1. Cosine ramps.


# With equal halves of s updates the cosine ramp is (1 - cos(pi n / s)) / 2 at
# every n: PyTorch's CosineAnnealingLR with T_max = s, started at the floor
# and annealing towards eta_min = the peak, which it follows on, periodically.
@pytest.mark.parametrize("step_size", [1, 5, 1000])
def test_cos_ramp_matches_pytorch_cosine_annealing(step_size):
    updates = 6 * step_size + 3
    expected, _ = torch_schedule(
        lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=step_size, eta_min=PEAK),
        updates,
        FLOOR,
    )
    opt = SGD(
        learning_rate=FLOOR, clr={"max_lr": PEAK, "step_size": step_size, "ramp": "cos"}
    )
    np.testing.assert_allclose(rates_of(opt, updates), expected, rtol=RTOL)


def inverse(cycle):
    return 1 / cycle


# (id, clr without max_lr, up, down, the peak's height in cycle c)
COS_OPTAX = [
    ("triangular 3/7", {"step_size_up": 3, "step_size_down": 7}, 3, 7, lambda c: 1.0),
    ("triangular 2.5/7.25", {"step_size_up": 2.5, "step_size_down": 7.25}, 2.5, 7.25, lambda c: 1.0),
    ("triangular2 5/3", {"step_size_up": 5, "step_size_down": 3, "mode": "triangular2"}, 5, 3, lambda c: 0.5 ** (c - 1)),
    ("modified_triangular2 4/2", {"step_size_up": 4, "step_size_down": 2, "mode": "modified_triangular2"}, 4, 2, lambda c: 0.5 ** ((c - 1) % 3)),
    ("scale_fn 3/1", {"step_size_up": 3, "step_size_down": 1, "scale_fn": "clr_tests>inverse_cycle"}, 3, 1, inverse),
]  # fmt: skip


@pytest.mark.parametrize(
    ("clr", "up", "down", "heights"),
    [case[1:] for case in COS_OPTAX],
    ids=[case[0] for case in COS_OPTAX],
)
def test_cos_ramp_matches_optax_cosine_interpolation(clr, up, down, heights):
    import scale_functions

    assert scale_functions.inverse_cycle  # registers "clr_tests>inverse_cycle"
    cycles = 8
    updates = int(cycles * (up + down))
    values, bounds = half_cycle_ends(up, down, cycles, heights)
    expected = optax_rates(lambda ox: optax_cosine_cycles(ox, values, bounds), updates)
    opt = SGD(learning_rate=FLOOR, clr={"max_lr": PEAK, "ramp": "cos", **clr})
    np.testing.assert_allclose(rates_of(opt, updates), expected, rtol=RTOL)


# (id, clr without max_lr, keyword arguments of `cyclical_height`, decay)
COS_NUMPY = [
    ("triangular 4", {"step_size": 4}, {"up": 4, "down": 4}, 0.0),
    ("triangular 2.5/7.25", {"step_size_up": 2.5, "step_size_down": 7.25}, {"up": 2.5, "down": 7.25}, 0.0),
    ("triangular up only", {"step_size_up": 3}, {"up": 3, "down": 3}, 0.0),
    ("triangular 1500.125", {"step_size": 1500.125}, {"up": 1500.125, "down": 1500.125}, 0.0),
    ("triangular2 5/3", {"step_size_up": 5, "step_size_down": 3, "mode": "triangular2"}, {"up": 5, "down": 3, "mode": "triangular2"}, 0.0),
    ("triangular2 decay", {"step_size": 6, "mode": "triangular2"}, {"up": 6, "down": 6, "mode": "triangular2"}, 0.01),
    ("exp_range 3/9", {"step_size_up": 3, "step_size_down": 9, "mode": "exp_range", "gamma": 0.99}, {"up": 3, "down": 9, "mode": "exp_range", "gamma": 0.99}, 0.0),
    ("exp_range restart_every=2", {"step_size": 5, "mode": "exp_range", "gamma": 0.95, "restart_every": 2}, {"up": 5, "down": 5, "mode": "exp_range", "gamma": 0.95, "restart_every": 2}, 0.0),
    ("modified_triangular2 2/6", {"step_size_up": 2, "step_size_down": 6, "mode": "modified_triangular2"}, {"up": 2, "down": 6, "mode": "modified_triangular2"}, 0.0),
    ("scale_fn cycle 7/2", {"step_size_up": 7, "step_size_down": 2, "scale_fn": "clr_tests>inverse_cycle"}, {"up": 7, "down": 2, "scale_fn": inverse}, 0.0),
    ("scale_fn iterations 3/5", {"step_size_up": 3, "step_size_down": 5, "scale_fn": "clr_tests>slow_decay", "scale_mode": "iterations"}, {"up": 3, "down": 5, "scale_fn": lambda n: 0.99**n, "scale_mode": "iterations"}, 0.0),
]  # fmt: skip


@pytest.mark.parametrize(
    ("clr", "reference", "decay"),
    [case[1:] for case in COS_NUMPY],
    ids=[case[0] for case in COS_NUMPY],
)
def test_cos_ramp_matches_numpy_in_every_mode(clr, reference, decay):
    import scale_functions

    assert scale_functions.slow_decay  # registers the two scale functions
    updates = 300 if reference["up"] < 100 else 6010
    opt = SGD(
        learning_rate=FLOOR,
        decay=decay,
        clr={"max_lr": PEAK, "ramp": "cos", "momentum": MOMENTUM, **clr},
    )
    expected = cyclical_rates(updates, decay=decay, ramp="cos", **reference)
    np.testing.assert_allclose(rates_of(opt, updates), expected, rtol=RTOL)
    heights = np.array(
        [cyclical_height(n, ramp="cos", **reference) for n in range(updates)]
    )
    low, high = MOMENTUM
    np.testing.assert_allclose(
        momenta_of(opt, updates), high - (high - low) * heights, rtol=1e-6
    )
    # The floor and the peaks are those of the straight ramp.
    linear = SGD(learning_rate=FLOOR, decay=decay, clr={"max_lr": PEAK, **clr})
    straight = rates_of(linear, updates)
    ends = [
        n
        for n in range(updates)
        if cyclical_height(n, **{**reference, "scale_fn": lambda c: 1.0}) in (0.0, 1.0)
    ]
    if all(float(reference[half]).is_integer() for half in ("up", "down")):
        assert len(ends) >= 4
    np.testing.assert_allclose(rates_of(opt, updates)[ends], straight[ends], rtol=1e-6)


@pytest.mark.parametrize(
    "halves",
    [
        {"step_size": 2000},
        {"step_size_up": 2.5, "step_size_down": 7.25},
        {"step_size_up": 7, "step_size_down": 3},
    ],
    ids=["2000", "2.5/7.25", "7/3"],
)
def test_cos_ramp_at_large_counts(halves):
    """Over the two cycles before 10**12 (2**31 - 1 on a 32-bit counter) and
    at the end of the counter's range."""
    up = halves.get("step_size", halves.get("step_size_up"))
    down = halves.get("step_size", halves.get("step_size_down"))
    period = Fraction(up) + Fraction(down)
    start = math.ceil(math.floor(FAR / period) * period) - 2 * math.ceil(period)
    steps = [
        start + k
        for k in range(0, 2 * math.ceil(period) + 1, max(1, math.ceil(period) // 50))
    ]
    steps += [COUNTER_MAX - k for k in (1, 2, 3, 5, 8, 13, 1000)]
    clr = {"max_lr": PEAK, "ramp": "cos", **halves}
    heights = [cyclical_height(n, up, down, ramp="cos") for n in steps]
    expected = FLOOR + (PEAK - FLOOR) * np.array(heights)
    np.testing.assert_allclose(
        schedule_values(FLOOR, clr, steps), expected, rtol=RTOL, atol=1e-12
    )


def test_the_linear_ramp_is_the_default():
    clr = {
        "max_lr": PEAK,
        "step_size_up": 3,
        "step_size_down": 5,
        "mode": "triangular2",
    }
    given = SGD(learning_rate=FLOOR, clr={**clr, "ramp": "linear"})
    np.testing.assert_array_equal(
        rates_of(given, 50), rates_of(SGD(learning_rate=FLOOR, clr=clr), 50)
    )
    assert SGD(learning_rate=FLOOR, clr=clr).clr.get("ramp", "linear") == "linear"
    assert SGD(learning_rate=FLOOR, clr={**clr, "ramp": "cos"}).clr["ramp"] == "cos"


# 2. Warm restarts.

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


# 3. Warmup.

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


# 4. Chains.


def cos_cycles_between(optax, low, high):
    """optax's cosine interpolation over cycles of 4 and 6 updates between
    `low` and `high`, the peaks halving (triangular2 with a cosine ramp)."""
    values, bounds = half_cycle_ends(4, 6, 5, lambda c: 0.5 ** (c - 1))
    values = [low + (v - FLOOR) * (high - low) / (PEAK - FLOOR) for v in values]
    return optax_cosine_cycles(optax, values, bounds)


# (id, clr, optax schedule, updates); the optimizer's learning rate is FLOOR.
OPTAX_CHAINS = [
    (
        # A rising half cycle, then one cosine anneal: optax's
        # warmup_cosine_decay_schedule.
        "rise, anneal",
        {
            "mode": "chain",
            "max_lr": PEAK,
            "policies": [
                {"step_size": 30},
                {"mode": "warm_restarts", "period": 100, "cycle_limit": 1, "learning_rate": 0.002},
            ],
            "boundaries": [30],
        },
        lambda optax: optax.warmup_cosine_decay_schedule(FLOOR, PEAK, 30, 130, end_value=0.002),
        160,
    ),
    (
        "restarts, cos cycles, anneal",
        {
            "mode": "chain",
            "max_lr": PEAK,
            "policies": [
                {"mode": "warm_restarts", "period": 5, "period_mult": 2, "peak_mult": 0.5, "learning_rate": 0.005},
                {"step_size_up": 4, "step_size_down": 6, "mode": "triangular2", "ramp": "cos", "learning_rate": 0.02, "max_lr": 0.05},
                {"mode": "warm_restarts", "period": 20, "cycle_limit": 1},
            ],
            "boundaries": [30, 80],
        },
        lambda optax: optax.join_schedules(
            [
                optax.sgdr_schedule(sgdr_kwargs(5, 2, 0.5, 3, floor=0.005)),
                cos_cycles_between(optax, 0.02, 0.05),
                optax.cosine_decay_schedule(PEAK, 20, alpha=FLOOR / PEAK),
            ],
            [30, 80],
        ),
        120,
    ),
    (
        "constant, rise, fractional restarts",
        {
            "mode": "chain",
            "max_lr": PEAK,
            "policies": [
                {"step_size": 1, "learning_rate": 0.02, "max_lr": 0.02},
                {"step_size": 25, "learning_rate": 0.005},
                {"mode": "warm_restarts", "period": 2.5, "period_mult": 2, "peak_mult": 0.9, "cycle_limit": 4},
            ],
            "boundaries": [15, 40],
        },
        lambda optax: optax.join_schedules(
            [
                optax.constant_schedule(0.02),
                optax.linear_schedule(0.005, PEAK, 25),
                optax.sgdr_schedule(sgdr_kwargs(2.5, 2, 0.9, 4)),
            ],
            [15, 40],
        ),
        100,
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("clr", "make", "updates"),
    [case[1:] for case in OPTAX_CHAINS],
    ids=[case[0] for case in OPTAX_CHAINS],
)
def test_chain_matches_optax_join_schedules(clr, make, updates):
    expected = optax_rates(make, updates)
    opt = SGD(learning_rate=FLOOR, clr=clr)
    np.testing.assert_allclose(rates_of(opt, updates), expected, rtol=RTOL)


# (id, PyTorch schedulers of an optimizer `o` whose lr is PEAK, milestones,
# the pieces, updates); the optimizer's learning rate is FLOOR. Every
# scheduler under SequentialLR starts from the optimizer's initial rate, the
# chain's max_lr.
PYTORCH_CHAINS = [
    (
        "restarts, anneal, cyclic",
        lambda o: [
            lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=0.001),
            lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=FLOOR),
            lr_scheduler.CyclicLR(o, base_lr=0.02, max_lr=0.05, step_size_up=4, cycle_momentum=False),
        ],
        [15, 35],
        [
            {"mode": "warm_restarts", "period": 5, "period_mult": 2, "learning_rate": 0.001},
            {"mode": "warm_restarts", "period": 20},
            {"step_size": 4, "learning_rate": 0.02, "max_lr": 0.05},
        ],
        80,
    ),
    (
        "linear, restarts",
        lambda o: [
            lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=10),
            lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=7, T_mult=2, eta_min=FLOOR),
        ],
        [10],
        [
            {"step_size": 10, "learning_rate": 0.1 * PEAK},
            {"mode": "warm_restarts", "period": 7, "period_mult": 2},
        ],
        120,
    ),
    (
        "anneal, restarts, anneal",
        lambda o: [
            lr_scheduler.CosineAnnealingLR(o, T_max=12, eta_min=0.02),
            lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=FLOOR),
            lr_scheduler.CosineAnnealingLR(o, T_max=30, eta_min=0.001),
        ],
        [12, 33],
        [
            {"mode": "warm_restarts", "period": 12, "cycle_limit": 1, "learning_rate": 0.02},
            {"mode": "warm_restarts", "period": 3, "period_mult": 2},
            {"mode": "warm_restarts", "period": 30, "cycle_limit": 1, "learning_rate": 0.001},
        ],
        # CosineAnnealingLR rises again after T_max: compared up to its floor.
        63,
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("schedulers", "milestones", "pieces", "updates"),
    [case[1:] for case in PYTORCH_CHAINS],
    ids=[case[0] for case in PYTORCH_CHAINS],
)
def test_chain_matches_pytorch_sequential_lr(schedulers, milestones, pieces, updates):
    expected, _ = torch_schedule(
        lambda o: lr_scheduler.SequentialLR(o, schedulers(o), milestones=milestones),
        updates,
        PEAK,
    )
    clr = {
        "mode": "chain",
        "max_lr": PEAK,
        "policies": pieces,
        "boundaries": milestones,
    }
    opt = SGD(learning_rate=FLOOR, clr=clr)
    np.testing.assert_allclose(rates_of(opt, updates), expected, rtol=RTOL)


# name: (learning_rate, clr, the rates of each piece from its own start)
CHAINS = {
    "cyclical, restarts": (
        FLOOR,
        {
            "mode": "chain",
            "max_lr": PEAK,
            "policies": [
                {"step_size": 5, "mode": "triangular2"},
                {"mode": "warm_restarts", "period": 7, "period_mult": 1.5, "learning_rate": 0.001},
            ],
            "boundaries": [23],
        },
        [
            lambda u: cyclical_rates(u, up=5, down=5, mode="triangular2"),
            lambda u: sgdr_rates(u, floor=0.001, period=7, period_mult=Fraction(3, 2)),
        ],
    ),
    "warmups in pieces, one_cycle": (
        0.02,
        {
            "mode": "chain",
            "max_lr": 0.2,
            "policies": [
                {"mode": "warm_restarts", "period": 4, "warmup_steps": 3, "warmup_factor": 0.5},
                {"step_size_up": 2.5, "step_size_down": 7.25, "ramp": "cos", "max_lr": 0.1, "learning_rate": 0.05},
                {"mode": "one_cycle", "total_steps": 20, "learning_rate": 0.004},
                {"mode": "warm_restarts", "period": 10, "cycle_limit": 1, "max_lr": 0.05, "warmup_steps": 5},
            ],
            "boundaries": [11, 50, 70],
        },
        [
            lambda u: with_warmup(sgdr_rates(u, floor=0.02, peak=0.2, period=4), 3, 0.5)[:u],
            lambda u: cyclical_rates(u, floor=0.05, peak=0.1, up=2.5, down=7.25, ramp="cos"),
            lambda u: np.concatenate([torch_schedule(lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=20, div_factor=50, cycle_momentum=False), 20)[0], np.full(max(u - 20, 0), 0.004 / 1e4)])[:u],
            lambda u: with_warmup(sgdr_rates(u, floor=0.02, peak=0.05, period=10, cycle_limit=1), 5, 0.0)[:u],
        ],
    ),
    "one-update pieces": (
        FLOOR,
        {
            "mode": "chain",
            "max_lr": PEAK,
            "policies": [
                {"mode": "warm_restarts", "period": 1, "learning_rate": 0.005},
                {"step_size": 1},
                {"mode": "warm_restarts", "period": 3, "period_mult": 2},
            ],
            "boundaries": [1, 2],
        },
        [
            lambda u: sgdr_rates(u, floor=0.005, period=1),
            lambda u: cyclical_rates(u, up=1, down=1),
            lambda u: sgdr_rates(u, period=3, period_mult=2),
        ],
    ),
}  # fmt: skip


@pytest.mark.parametrize("chain", CHAINS)
def test_chain_is_its_pieces_one_by_one(chain):
    learning_rate, clr, references = CHAINS[chain]
    boundaries = clr["boundaries"]
    updates = boundaries[-1] + 40
    pieces = [reference(updates) for reference in references]
    expected = joined(pieces, boundaries, updates)
    opt = SGD(learning_rate=learning_rate, clr={**clr, "momentum": MOMENTUM})
    rates = rates_of(opt, updates)
    np.testing.assert_allclose(rates, expected, rtol=RTOL)
    # Each piece as a policy of its own, from its own start; both sides of
    # every boundary.
    starts = [0, *boundaries, updates]
    for j, piece in enumerate(clr["policies"]):
        piece = {"max_lr": clr["max_lr"], **piece, "momentum": MOMENTUM}
        floor = piece.pop("learning_rate", learning_rate)
        alone = SGD(learning_rate=floor, clr=piece)
        length = starts[j + 1] - starts[j]
        np.testing.assert_allclose(
            rates[starts[j] : starts[j + 1]], rates_of(alone, length), rtol=1e-6
        )
        np.testing.assert_allclose(
            momenta_of(opt, updates)[starts[j] : starts[j + 1]],
            momenta_of(alone, length),
            rtol=1e-6,
        )
    for j, boundary in enumerate(boundaries, start=1):
        for n in (boundary - 1, boundary, boundary + 1):
            if n >= starts[j - 1]:
                own = j if n >= boundary else j - 1
                assert rates[n] == pytest.approx(pieces[own][n - starts[own]], rel=RTOL)


def test_assigning_the_learning_rate_scales_every_piece():
    clr = CHAINS["warmups in pieces, one_cycle"][1]
    opt = SGD(learning_rate=0.02, clr=clr)
    before = rates_of(opt, 100)
    opt.learning_rate = 0.01
    np.testing.assert_allclose(rates_of(opt, 100), before / 2, rtol=1e-6)


def test_chain_at_large_counts():
    """A boundary just inside the 32-bit range and one at 10**12, which a
    32-bit counter never reaches."""
    first = 2**31 - 10
    clr = {
        "mode": "chain",
        "max_lr": PEAK,
        "policies": [
            {"step_size": 7},
            {"mode": "warm_restarts", "period": 5, "period_mult": 2},
            {
                "mode": "warm_restarts",
                "period": 1000,
                "cycle_limit": 1,
                "learning_rate": 0.001,
            },
        ],
        "boundaries": [first, 10**12],
    }
    counts = [first - 1, first, first + 1, COUNTER_MAX - 1]
    if COUNTER_MAX > 2**31:
        counts += [10**12 - 1, 10**12, 10**12 + 1, 10**12 + 999, 10**12 + 10**6]

    def expected(n):
        if n < first:
            return FLOOR + (PEAK - FLOOR) * cyclical_height(n, up=7, down=7)
        if n < 10**12:
            return FLOOR + (PEAK - FLOOR) * sgdr_weight(n - first, 5, 2)
        return 0.001 + (PEAK - 0.001) * sgdr_weight(n - 10**12, 1000, cycle_limit=1)

    got = schedule_values(FLOOR, clr, counts)
    np.testing.assert_allclose(got, [expected(n) for n in counts], rtol=RTOL)


# 5. One cycle by epochs.

# (id, epochs, steps_per_epoch, further OneCycleLR arguments and clr keys)
ONE_CYCLE_EPOCHS = [
    ("4 x 25", 4, 25, {}),
    ("3 x 33 three_phase linear", 3, 33, {"three_phase": True, "anneal_strategy": "linear"}),
    ("10 x 1 pct_start=0.4", 10, 1, {"pct_start": 0.4}),
    ("1 x 200 div_factor=10", 1, 200, {"div_factor": 10.0, "final_div_factor": 100.0}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("epochs", "steps_per_epoch", "kwargs"),
    [case[1:] for case in ONE_CYCLE_EPOCHS],
    ids=[case[0] for case in ONE_CYCLE_EPOCHS],
)
def test_one_cycle_by_epochs_matches_pytorch(epochs, steps_per_epoch, kwargs):
    total = epochs * steps_per_epoch
    expected, momentums = torch_schedule(
        lambda o: lr_scheduler.OneCycleLR(
            o,
            max_lr=PEAK,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            base_momentum=MOMENTUM[0],
            max_momentum=MOMENTUM[1],
            **kwargs,
        ),
        total,
    )
    clr = {
        "mode": "one_cycle",
        "max_lr": PEAK,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "momentum": MOMENTUM,
        **kwargs,
    }
    opt = SGD(clr=clr)
    np.testing.assert_allclose(rates_of(opt, total), expected, rtol=RTOL)
    np.testing.assert_allclose(momenta_of(opt, total), momentums, rtol=1e-6)
    # The same as total_steps = epochs * steps_per_epoch.
    by_total = {k: v for k, v in clr.items() if k not in ("epochs", "steps_per_epoch")}
    same = SGD(clr={**by_total, "total_steps": total})
    np.testing.assert_array_equal(rates_of(opt, total + 5), rates_of(same, total + 5))
    assert opt.clr["epochs"] == epochs and "total_steps" not in opt.clr


# Saving, training, errors.

CONFIGS = {
    "cos ramp": (FLOOR, {"max_lr": PEAK, "step_size_up": 2.5, "step_size_down": 7.25, "mode": "exp_range", "gamma": 0.99, "ramp": "cos"}),
    "warm_restarts": (FLOOR, {"mode": "warm_restarts", "max_lr": PEAK, "period": 2.5, "period_mult": 1.5, "peak_mult": 0.8, "cycle_limit": 6}),
    "warmup": (FLOOR, {"max_lr": PEAK, "step_size": 4, "mode": "triangular2", "warmup_steps": 9, "warmup_factor": 0.2}),
    "chain": CHAINS["warmups in pieces, one_cycle"][:2],
    "one_cycle epochs": (None, {"mode": "one_cycle", "max_lr": PEAK, "epochs": 3, "steps_per_epoch": 17, "three_phase": True}),
}  # fmt: skip


@pytest.mark.parametrize("name", CONFIGS)
def test_config_round_trip(name):
    learning_rate, clr = CONFIGS[name]
    given = {} if learning_rate is None else {"learning_rate": learning_rate}
    opt = Adam(**given, clr={**clr, "momentum": MOMENTUM})
    config = opt.get_config()
    json.dumps(config)  # plain data
    again = Adam.from_config(config)
    assert again.clr == opt.clr
    np.testing.assert_array_equal(rates_of(again, 120), rates_of(opt, 120))
    np.testing.assert_array_equal(momenta_of(again, 120), momenta_of(opt, 120))
    for key, value in clr.items():
        if key != "policies":
            assert opt.clr[key] == value
    plain = SGD(**given, clr=clr)
    again = SGD.from_config(plain.get_config())
    np.testing.assert_array_equal(rates_of(again, 120), rates_of(plain, 120))
    # A schedule object: the optimizer's rates, also after serialization.
    schedule = CLRSchedule(learning_rate, clr)
    restored = keras.optimizers.schedules.deserialize(
        json.loads(json.dumps(keras.optimizers.schedules.serialize(schedule)))
    )
    for each in (schedule, restored):
        np.testing.assert_array_equal(
            np.asarray(ops.convert_to_numpy(each(np.arange(256))), np.float64)[:120],
            rates_of(plain, 120),
        )


UPDATES = 7  # per epoch


class Truth(keras.callbacks.Callback):
    """The rate each update used, read off the weights: with loss w * x and
    x = 1, plain SGD takes w from 0 to minus the rate of the update."""

    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self.model.layers[0].kernel.assign(np.zeros((1, 1), "float32"))

    def on_train_batch_end(self, batch, logs=None):
        self.rates.append(
            -float(ops.convert_to_numpy(self.model.layers[0].kernel)[0, 0])
        )


def mean_prediction(y_true, y_pred):
    return ops.mean(y_pred)


def fit(optimizer, epochs, *callbacks):
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros"),
        ]
    )
    model.compile(optimizer=optimizer, loss=mean_prediction)
    x = np.ones((UPDATES, 1), "float32")
    model.fit(
        x,
        x,
        batch_size=1,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=list(callbacks),
    )


FIT_CHAIN = {
    "mode": "chain",
    "max_lr": 0.5,
    "policies": [
        {"step_size": 3, "mode": "triangular2", "ramp": "cos", "warmup_steps": 4, "warmup_factor": 0.25},
        {"mode": "warm_restarts", "period": 4, "period_mult": 1.5, "peak_mult": 0.8},
    ],
    "boundaries": [13],
}  # fmt: skip


@pytest.mark.parametrize("how", ["optimizer", "schedule"])
def test_fit_uses_the_policies_in_the_compiled_step(how):
    updates = 4 * UPDATES
    pieces = [
        with_warmup(cyclical_rates(updates, floor=0.1, peak=0.5, up=3, down=3, mode="triangular2", ramp="cos"), 4, 0.25),
        sgdr_rates(updates, floor=0.1, peak=0.5, period=4, period_mult=Fraction(3, 2), peak_mult=0.8),
    ]  # fmt: skip
    expected = joined(pieces, [13], updates)
    truth = Truth()
    if how == "optimizer":
        opt = SGD(learning_rate=0.1, clr=FIT_CHAIN)
        monitor = LearningRateMonitor()
        fit(opt, 4, monitor, truth)
        # The monitor evaluates the schedule an epoch at a time. TensorFlow's
        # float32 cos can round the last bit differently for an element
        # depending on the length of the array and its place in it, so the
        # record equals `learning_rates` to float32 rounding, not bit for bit.
        np.testing.assert_allclose(
            monitor.learning_rates, rates_of(opt, updates), rtol=1e-6
        )
        np.testing.assert_allclose(monitor.learning_rates, expected, rtol=RTOL)
    else:
        fit(keras.optimizers.SGD(learning_rate=CLRSchedule(0.1, FIT_CHAIN)), 4, truth)
    np.testing.assert_allclose(truth.rates, expected, rtol=1e-6)


def test_fit_one_cycle_by_epochs_like_pytorch():
    expected, momentums = torch_schedule(
        lambda o: lr_scheduler.OneCycleLR(
            o,
            max_lr=0.5,
            epochs=3,
            steps_per_epoch=UPDATES,
            base_momentum=0.0,
            max_momentum=0.5,
        ),
        3 * UPDATES,
    )
    clr = {
        "mode": "one_cycle",
        "max_lr": 0.5,
        "epochs": 3,
        "steps_per_epoch": UPDATES,
        "momentum": (0.0, 0.5),
    }
    opt = SGD(clr=clr)
    monitor = LearningRateMonitor()
    fit(opt, 3, monitor)
    np.testing.assert_allclose(monitor.learning_rates, expected, rtol=RTOL)
    np.testing.assert_allclose(monitor.momentum_values, momentums, rtol=1e-6, atol=1e-7)
    assert opt.get_config()["iterations"] == 3 * UPDATES


WARM = {"mode": "warm_restarts", "max_lr": PEAK, "period": 10}
CHAIN = {
    "mode": "chain",
    "max_lr": PEAK,
    "policies": [{"step_size": 4}, {"mode": "warm_restarts", "period": 10}],
    "boundaries": [8],
}
ONE = {"mode": "one_cycle", "max_lr": PEAK}
CYCLE = {"max_lr": PEAK, "step_size": 4}

# (id, clr, error, the key the message names)
BAD = [
    ("ramp unknown", {**CYCLE, "ramp": "cosine"}, ValueError, "ramp"),
    ("ramp not a string", {**CYCLE, "ramp": 1}, ValueError, "ramp"),
    ("ramp on warm_restarts", {**WARM, "ramp": "cos"}, ValueError, "ramp"),
    ("ramp on one_cycle", {**ONE, "total_steps": 100, "ramp": "cos"}, ValueError, "ramp"),
    ("period missing", {"mode": "warm_restarts", "max_lr": PEAK}, ValueError, "period"),
    ("period 0", {**WARM, "period": 0}, ValueError, "period"),
    ("period negative", {**WARM, "period": -5}, ValueError, "period"),
    ("period a string", {**WARM, "period": "10"}, TypeError, "period"),
    ("period too long", {**WARM, "period": 10**13}, ValueError, "period"),
    ("period on a cycle", {**CYCLE, "period": 10}, ValueError, "period"),
    ("period_mult below 1", {**WARM, "period_mult": 0.5}, ValueError, "period_mult"),
    ("period_mult a string", {**WARM, "period_mult": "2"}, TypeError, "period_mult"),
    ("period_mult too close to 1", {**WARM, "period_mult": 1 + 1e-9}, ValueError, "period_mult"),
    ("peak_mult above 1", {**WARM, "peak_mult": 1.5}, ValueError, "peak_mult"),
    ("peak_mult 0", {**WARM, "peak_mult": 0}, ValueError, "peak_mult"),
    ("peak_mult negative", {**WARM, "peak_mult": -0.5}, ValueError, "peak_mult"),
    ("cycle_limit 0", {**WARM, "cycle_limit": 0}, ValueError, "cycle_limit"),
    ("cycle_limit a float", {**WARM, "cycle_limit": 2.5}, TypeError, "cycle_limit"),
    ("cycle_limit a bool", {**WARM, "cycle_limit": True}, TypeError, "cycle_limit"),
    ("cycle_limit on a cycle", {**CYCLE, "cycle_limit": 3}, ValueError, "cycle_limit"),
    ("warmup_steps 0", {**CYCLE, "warmup_steps": 0}, ValueError, "warmup_steps"),
    ("warmup_steps negative", {**WARM, "warmup_steps": -3}, ValueError, "warmup_steps"),
    ("warmup_steps a float", {**CYCLE, "warmup_steps": 2.5}, TypeError, "warmup_steps"),
    ("warmup_steps too long", {**CYCLE, "warmup_steps": 10**13}, ValueError, "warmup_steps"),
    ("warmup_factor above 1", {**CYCLE, "warmup_steps": 5, "warmup_factor": 1.5}, ValueError, "warmup_factor"),
    ("warmup_factor negative", {**CYCLE, "warmup_steps": 5, "warmup_factor": -0.1}, ValueError, "warmup_factor"),
    ("warmup_factor a string", {**CYCLE, "warmup_steps": 5, "warmup_factor": "0.1"}, TypeError, "warmup_factor"),
    ("warmup_factor alone", {**CYCLE, "warmup_factor": 0.5}, ValueError, "warmup_steps"),
    ("policies missing", {"mode": "chain", "max_lr": PEAK, "boundaries": [8]}, ValueError, "policies"),
    ("boundaries missing", {"mode": "chain", "max_lr": PEAK, "policies": CHAIN["policies"]}, ValueError, "boundaries"),
    ("policies a dict", {**CHAIN, "policies": {"step_size": 4}}, TypeError, "policies"),
    ("policies a string", {**CHAIN, "policies": "step_size"}, TypeError, "policies"),
    ("one policy", {**CHAIN, "policies": [{"step_size": 4}], "boundaries": []}, ValueError, "policies"),
    ("piece not a dict", {**CHAIN, "policies": [{"step_size": 4}, 10]}, TypeError, "clr['policies'][1]"),
    ("piece with momentum", {**CHAIN, "policies": [{"step_size": 4}, {**WARM, "momentum": MOMENTUM}]}, ValueError, "clr['policies'][1]['momentum']"),
    ("piece with a bad key", {**CHAIN, "policies": [{"step_size": 4}, {"mode": "warm_restarts", "perod": 10}]}, ValueError, "clr['policies'][1]"),
    ("piece with a bad period", {**CHAIN, "policies": [{"step_size": 4}, {"mode": "warm_restarts", "period": 0}]}, ValueError, "clr['policies'][1]"),
    ("piece floor above its peak", {**CHAIN, "policies": [{"step_size": 4, "learning_rate": 0.5}, WARM]}, ValueError, "clr['policies'][0]"),
    ("piece floor a string", {**CHAIN, "policies": [{"step_size": 4, "learning_rate": "0.5"}, WARM]}, TypeError, "clr['policies'][0]['learning_rate']"),
    ("boundaries a number", {**CHAIN, "boundaries": 8}, TypeError, "boundaries"),
    ("boundaries too many", {**CHAIN, "boundaries": [8, 9]}, ValueError, "boundaries"),
    ("boundaries not increasing", {**CHAIN, "policies": [CYCLE, WARM, WARM], "boundaries": [8, 8]}, ValueError, "boundaries"),
    ("boundary 0", {**CHAIN, "boundaries": [0]}, ValueError, "boundaries"),
    ("boundary a float", {**CHAIN, "boundaries": [8.5]}, TypeError, "boundaries"),
    ("epochs alone", {**ONE, "epochs": 3}, ValueError, "steps_per_epoch"),
    ("steps_per_epoch alone", {**ONE, "steps_per_epoch": 30}, ValueError, "epochs"),
    ("epochs with total_steps", {**ONE, "total_steps": 90, "epochs": 3, "steps_per_epoch": 30}, ValueError, "total_steps"),
    ("epochs 0", {**ONE, "epochs": 0, "steps_per_epoch": 30}, ValueError, "epochs"),
    ("epochs a float", {**ONE, "epochs": 2.5, "steps_per_epoch": 30}, TypeError, "epochs"),
    ("steps_per_epoch a string", {**ONE, "epochs": 3, "steps_per_epoch": "30"}, TypeError, "steps_per_epoch"),
    ("one update in all", {**ONE, "epochs": 1, "steps_per_epoch": 1}, ValueError, "steps_per_epoch"),
    ("epochs on a cycle", {**CYCLE, "epochs": 3}, ValueError, "epochs"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("clr", "error", "key"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_bad_input_names_the_key(clr, error, key):
    named = key if "[" in key else f"'{key}'"  # as in clr['period']
    with pytest.raises(error) as raised:
        SGD(learning_rate=FLOOR, clr=clr)
    assert named in str(raised.value)
    with pytest.raises(error) as raised:
        CLRSchedule(FLOOR, clr)
    assert named in str(raised.value)


@pytest.mark.parametrize("clr", [WARM, CHAIN], ids=["warm_restarts", "chain"])
def test_decay_is_refused_where_a_policy_anneals(clr):
    with pytest.raises(ValueError, match="`decay`"):
        SGD(learning_rate=FLOOR, clr=clr, decay=0.01)
