"""The cyclical modes' schedule against hand-checkable values and a NumPy
restatement; their cosine ramps (`"ramp": "cos"`) update by update against
PyTorch's CosineAnnealingLR, optax's cosine interpolation and NumPy
restatements of the formulas, in every mode and at large update counts."""

import math
from fractions import Fraction

import keras
import numpy as np
import pytest
from conftest import (
    BACKEND,
    COUNTER_MAX,
    reference_rates,
    step_fraction,
    torch_schedule,
)
from policy_references import (
    FAR,
    FLOOR,
    MOMENTUM,
    PEAK,
    RTOL,
    cyclical_height,
    cyclical_rates,
    half_cycle_ends,
    lr_scheduler,
    momenta_of,
    optax_cosine_cycles,
    optax_rates,
    rates_of,
    schedule_values,
)
from scale_functions import inverse_cycle, slow_decay

from clr_optimizers import SGD, Adam
from clr_optimizers._policies.cyclical import step_fractions

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors


def rates(optimizer, steps):
    """The rate Keras reads for the update after each of `steps` updates."""
    out = []
    for n in steps:
        optimizer.iterations.assign(n)
        out.append(
            float(keras.ops.convert_to_numpy(optimizer._get_current_learning_rate()))
        )
    return np.array(out)


def test_hand_values_triangular():
    opt = SGD(learning_rate=1, clr={"max_lr": 5, "step_size": 4})
    assert rates(opt, range(11)).tolist() == [1, 2, 3, 4, 5, 4, 3, 2, 1, 2, 3]


def test_hand_values_triangular2_peaks():
    opt = SGD(learning_rate=1, clr={"max_lr": 5, "step_size": 4, "mode": "triangular2"})
    assert rates(opt, [4, 12, 20, 28]).tolist() == [5, 3, 2, 1.5]


def test_modified_triangular2_peaks_restart_every_three_cycles():
    clr = {"max_lr": 0.03, "step_size": 2, "mode": "modified_triangular2"}
    opt = SGD(learning_rate=0.0075, clr=clr)
    peaks = rates(opt, [2 + 4 * k for k in range(7)])
    expected = [0.03, 0.01875, 0.013125] * 2 + [0.03]
    np.testing.assert_allclose(peaks, expected, rtol=1e-6)


CASES = {
    "triangular": dict(clr={"max_lr": 0.06, "step_size": 20}),
    "triangular_float_step": dict(clr={"max_lr": 0.06, "step_size": 20.0}),
    "fractional_step": dict(clr={"max_lr": 0.06, "step_size": 2.5}),
    "triangular2": dict(clr={"max_lr": 0.06, "step_size": 10, "mode": "triangular2"}),
    "exp_range": dict(
        clr={"max_lr": 0.06, "step_size": 10, "mode": "exp_range", "gamma": 0.99}
    ),
    "modified_triangular2": dict(
        clr={"max_lr": 0.06, "step_size": 5, "mode": "modified_triangular2"}
    ),
    "modified_triangular2_restart_2": dict(
        clr={
            "max_lr": 0.06,
            "step_size": 5,
            "mode": "modified_triangular2",
            "restart_every": 2,
        }
    ),
    "triangular2_restart_4": dict(
        clr={"max_lr": 0.06, "step_size": 3, "mode": "triangular2", "restart_every": 4}
    ),
    "exp_range_restart_2": dict(
        clr={
            "max_lr": 0.06,
            "step_size": 6,
            "mode": "exp_range",
            "gamma": 0.9,
            "restart_every": 2,
        }
    ),
    "decay": dict(clr={"max_lr": 0.06, "step_size": 10}, decay=0.01),
    "decay_triangular2": dict(
        clr={"max_lr": 0.06, "step_size": 10, "mode": "triangular2"}, decay=1e-3
    ),
    "scale_fn_cycle": dict(
        clr={"max_lr": 0.06, "step_size": 5, "scale_fn": "clr_tests>inverse_cycle"},
        reference_scale_fn=lambda c: 1 / c,
    ),
    "scale_fn_iterations": dict(
        clr={
            "max_lr": 0.06,
            "step_size": 5,
            "scale_fn": slow_decay,
            "scale_mode": "iterations",
        },
        reference_scale_fn=lambda n: 0.99**n,
    ),
    "scale_fn_object_with_restart": dict(
        clr={
            "max_lr": 0.06,
            "step_size": 3,
            "scale_fn": inverse_cycle,
            "restart_every": 2,
        },
        reference_scale_fn=lambda c: 1 / c,
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_schedule_matches_numpy_restatement(case):
    spec = CASES[case]
    opt = SGD(learning_rate=0.01, clr=spec["clr"], decay=spec.get("decay"))
    kwargs = {k: v for k, v in spec["clr"].items() if k != "scale_fn"}
    if "reference_scale_fn" in spec:
        kwargs["scale_fn"] = spec["reference_scale_fn"]
    steps = range(0, 130)
    expected = reference_rates(steps, base=0.01, decay=spec.get("decay", 0.0), **kwargs)
    np.testing.assert_allclose(rates(opt, steps), expected, rtol=2e-6, atol=1e-9)


def test_decay_without_clr_is_time_based_decay():
    opt = SGD(learning_rate=0.1, decay=0.5)
    np.testing.assert_allclose(
        rates(opt, [0, 1, 2, 10]), [0.1, 0.1 / 1.5, 0.1 / 2, 0.1 / 6], rtol=1e-6
    )


@pytest.mark.parametrize(
    "clr, period",
    [
        ({"max_lr": 0.06, "step_size": 2000}, 4000),
        ({"max_lr": 0.06, "step_size": 7}, 14),
        ({"max_lr": 0.06, "step_size": 2.5}, 5),
        ({"max_lr": 0.06, "step_size": 2000, "mode": "modified_triangular2"}, 12000),
    ],
)
def test_exact_at_the_end_of_the_counter_range(clr, period):
    """10**12 updates on a 64-bit counter, the last 2**31 on a 32-bit one."""
    opt = SGD(learning_rate=0.01, clr=clr)
    last = min(10**12, COUNTER_MAX - period)
    far = last - last % period
    offsets = list(range(0, period, max(1, period // 97))) + [period - 1]
    first = rates(opt, offsets)
    late = rates(opt, [far + k for k in offsets])
    np.testing.assert_allclose(late, first, rtol=1.2e-7, atol=0)


def test_float32_counter_would_drift():
    """Why the position is computed in integers: the 2017 float32 formula drifts."""
    n = np.arange(10**7, 10**7 + 4000, 7)
    expected = reference_rates(n, base=0.01, max_lr=0.06, step_size=2000)
    n32, s32 = n.astype(np.float32), np.float32(2000)
    cycle = np.floor(1 + n32 / (2 * s32))
    x = np.abs(n32 / s32 - 2 * cycle + 1)
    float32_2017 = 0.01 + (0.06 - 0.01) * np.maximum(0, 1 - x)
    assert np.max(np.abs(float32_2017 - expected)) > 1e-6
    opt = SGD(learning_rate=0.01, clr={"max_lr": 0.06, "step_size": 2000})
    assert np.max(np.abs(rates(opt, n) - expected)) < 1e-7


def compiled_rate_step(opt, traces):
    """A function compiled by the backend's own compiler that returns the rate
    for the optimizer's counter and advances the counter; `traces` gets an
    entry each time it is traced."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def step():
            traces.append(1)
            value = opt._get_current_learning_rate()
            opt.iterations.assign_add(1)
            return value

        return step
    if BACKEND == "jax":
        import jax

        @jax.jit
        def stateless_step(counter):
            # As Keras's JAX trainer does: state goes in and out as arrays.
            traces.append(1)
            with keras.StatelessScope(state_mapping=[(opt.iterations, counter)]):
                value = opt._get_current_learning_rate()
            return value, counter + 1

        def step():
            value, counter = stateless_step(opt.iterations.value)
            opt.iterations.assign(counter)
            return value

        return step
    import torch

    def count_traces(graph_module, example_inputs):
        traces.append(1)
        return graph_module.forward

    @torch.compile(backend=count_traces, fullgraph=True)
    def step():
        value = opt._get_current_learning_rate()
        opt.iterations.assign_add(1)
        return value

    return step


def test_rate_inside_a_compiled_function_follows_the_counter():
    """One trace serves every step: the counter is read, not baked in."""
    opt = SGD(learning_rate=1, clr={"max_lr": 5, "step_size": 4})
    traces = []
    step = compiled_rate_step(opt, traces)
    assert [float(step()) for _ in range(9)] == [1, 2, 3, 4, 5, 4, 3, 2, 1]
    assert len(traces) == 1


LARGE_COUNTS_64 = [(2000, 10**12 + 999), (2.5, 10**12 + 3), (1234567.891, 5 * 10**9)]
LARGE_COUNTS_32 = [
    (2000, 2**31 - 2),
    (2.5, 2**31 - 7),
    (0.001, 2**31 - 2),
    (1234567.891, 2**31 - 2),
    (2**30 + 0.5, 2**31 - 2),
    (2**31 - 0.75, 2**31 - 2),
    (10**12, 2**31 - 2),
]


@pytest.mark.parametrize(
    "step_size, n",
    [(1500.125, 2_999_000)]
    + (LARGE_COUNTS_64 if COUNTER_MAX > 2**31 else LARGE_COUNTS_32),
)
def test_current_lr_and_config_at_large_counts(step_size, n):
    """current_lr evaluates the schedule eagerly: same integers as training.
    On a 32-bit counter no product in the cycle arithmetic may overflow."""
    opt = SGD(learning_rate=0.01, clr={"max_lr": 0.06, "step_size": step_size})
    opt.iterations.assign(n + 1)
    expected = reference_rates([n], base=0.01, max_lr=0.06, step_size=step_size)[0]
    assert opt.current_lr == pytest.approx(expected, rel=2e-6)
    assert opt.get_config()["current_lr"] == opt.current_lr
    assert opt.learning_rates(3)[0] == pytest.approx(0.01)


@pytest.mark.parametrize(
    "clr",
    [
        {"step_size": 0.001, "mode": "modified_triangular2"},
        {"step_size": 3.5, "mode": "triangular2", "restart_every": 10**6},
        {"step_size": 1000 / 3, "mode": "exp_range", "gamma": 0.999999},
        {
            "step_size": 4.5,
            "scale_fn": "clr_tests>slow_decay",
            "scale_mode": "iterations",
        },
    ],
    ids=["tiny-modified", "restart-1e6", "thirds-exp", "scale-fn"],
)
def test_every_mode_near_the_counter_limit(clr):
    """The restart count and scale stay exact where cycle counts overflow."""
    opt = SGD(learning_rate=0.01, clr={"max_lr": 0.06, **clr})
    kwargs = {k: v for k, v in opt.clr.items() if k != "scale_fn"}
    if clr.get("scale_fn"):
        kwargs["scale_fn"] = slow_decay
    steps = [COUNTER_MAX - k for k in (1, 2, 3, 5, 8, 13, 1000, 12345)]
    np.testing.assert_allclose(
        rates(opt, steps),
        reference_rates(steps, base=0.01, **kwargs),
        rtol=2e-5,
        atol=1e-9,
    )


def test_huge_step_size_config():
    opt = SGD(learning_rate=0.01, clr={"max_lr": 0.06, "step_size": 2**31})
    opt.iterations.assign(min(2**31 + 1, COUNTER_MAX))
    assert opt.get_config()["current_lr"] == pytest.approx(0.06, rel=1e-6)


def asymmetric_rate(n, base, max_lr, up, down):
    """The asymmetric triangle in exact fractions, for whole or exactly
    representable half cycles."""
    up, down = Fraction(up), Fraction(down)
    t = Fraction(n) % (up + down)
    return base + (max_lr - base) * float(min(t / up, (up + down - t) / down))


@pytest.mark.parametrize("up, down", [(2000, 6000), (2.5, 7.25), (1, 10**9), (7, 3)])
def test_asymmetric_exact_at_the_end_of_the_counter_range(up, down):
    opt = SGD(
        learning_rate=0.01,
        clr={"max_lr": 0.06, "step_size_up": up, "step_size_down": down},
    )
    for n in (COUNTER_MAX - 1, COUNTER_MAX - 12345, COUNTER_MAX // 3):
        assert float(
            keras.ops.convert_to_numpy(opt.schedule_state.rates(n))
        ) == pytest.approx(asymmetric_rate(n, 0.01, 0.06, up, down), rel=2e-6)


def test_step_fractions_read_both_halves_exactly_when_they_can():
    assert step_fractions(2.5, 7.25, 2**31 - 1) == (10, 29, 4)
    assert step_fractions(2000, 6000, 2**31 - 1) == (2000, 6000, 1)
    assert step_fractions(1 / 3, 1 / 7, 2**63 - 1) == (7, 3, 21)
    # Equal halves: the documented reading of `step_size`.
    rng = np.random.default_rng(0)
    for s in np.exp(rng.uniform(np.log(1e-3), np.log(1e12), 2000)):
        a, b = step_fraction(float(s)).as_integer_ratio()
        assert step_fractions(float(s), float(s), COUNTER_MAX) == (a, a, b)


@pytest.mark.parametrize("counter_max", [2**31 - 1, 2**63 - 1])
def test_step_fractions_keep_every_product_within_the_counter(counter_max):
    rng = np.random.default_rng(1)
    pairs = np.exp(rng.uniform(np.log(1e-3), np.log(1e12), (20000, 2)))
    for up, down in pairs:
        rise, fall, b = step_fractions(float(up), float(down), counter_max)
        assert rise >= 1 and fall >= 1 and b >= 1
        assert b == 1 or (rise + fall - 1) * b <= counter_max
        # Each half is read to within one unit of its denominator.
        assert abs(rise / b - up) <= 1 / b and abs(fall / b - down) <= 1 / b


def test_the_peak_of_a_long_cycle_is_max_lr_and_the_lowest_momentum_exactly():
    # For this half cycle, u * float32(1 / a) rounds to 1 ulp above 1 at the
    # peak: the rate came out above max_lr and a momentum with lowest 0 at
    # -6e-8. The triangle is now the quotient u / a, at most 1.
    s = 226_352_905
    opt = Adam(
        learning_rate=0.001,
        clr={
            "max_lr": 0.01,
            "step_size": s,
            "momentum": (0.0, 0.5),
            "scale_fn": "clr_tests>inverse_cycle",
        },
    )
    for n in (s - 1, s, s + 1):
        opt.iterations.assign(n + 1)  # current_lr: the rate at n applied
        assert np.float32(opt.current_lr) <= np.float32(0.01)
        assert opt.current_momentum >= 0.0
    opt.iterations.assign(s + 1)
    assert np.float32(opt.current_lr) == np.float32(0.01)
    assert opt.current_momentum == 0.0


# Cosine ramps.


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
