"""References for the tests of the policy families (cosine ramps, warm
restarts, warmup, chains, one-cycle by epochs): tolerances, NumPy restatements
of the published formulas, the references' own evaluation (Keras's schedules,
optax), and the cases and the training through `model.fit` that several test
files share."""

import math
from fractions import Fraction

import keras
import numpy as np
import pytest
import torch
from conftest import BACKEND, COUNTER_MAX, torch_schedule
from keras import ops

from clr_optimizers.schedules import CLRSchedule

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


# Cases that the tests of several families use.

WARM = {"mode": "warm_restarts", "max_lr": PEAK, "period": 10}

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


# Training through `model.fit`: one weight, batches of one.

UPDATES = 7  # per epoch


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
