"""The learning-rate schedules: the one place they are written.

Let `n` be the number of updates already applied, `base` the learning rate,
`max` the `max_lr`, and `s_up`, `s_down` the updates in the rising and the
falling half of a cycle (both `step_size` unless given apart):

```
base_n = base / (1 + decay * n)
cycle  = floor(1 + n / (s_up + s_down))
t      = n - (cycle - 1) (s_up + s_down)        # updates into the cycle
h      = min(t / s_up, (s_up + s_down - t) / s_down)
lr(n)  = base_n + (max - base_n) * h * scale
```

With equal halves `h = max(0, 1 - x)`, `x = |n / s - 2 cycle + 1|`, the
paper's form. `scale` is 1 (`triangular`), `1 / 2**(cycle - 1)`
(`triangular2`), `gamma**n` (`exp_range`) or a registered function of the cycle
or of `n`. With `restart_every = K`, the scale is evaluated as if counting
started afresh every K cycles (`modified_triangular2` is `triangular2` with
K = 3). A cycled momentum is `highest - (highest - lowest) * h * scale`.

The cycle position is computed in integer arithmetic from the optimizer's
integer counter, so it does not drift however long training runs.

Mode `one_cycle` follows PyTorch's `OneCycleLR`: over `total_steps` updates
the rate rises from `base` to `max` (the first `pct_start` of them) and falls
to `base / final_div_factor`, each phase annealed by a half cosine or linearly,
while a cycled momentum falls and rises the opposite way; with `three_phase`
it falls back to `base` first and then to the final rate, at the highest
momentum.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np
from keras import backend, ops

from clr_optimizers._config import MAX_STEP_DENOMINATOR, CyclicalConfig


def step_fractions(up, down, int_max: int) -> tuple[int, int, int]:
    """The half cycles `up` and `down` (in updates) as `(U, D, b)`, meaning
    `U / b` and `D / b`, with `(U + D - 1) b` (the largest product
    `cycle_position` forms) within a counter whose largest value is `int_max`.

    Each half is the nearest fraction with a denominator of at most 1000; when
    the two need different denominators whose least common multiple is larger,
    both are rounded to that largest common denominator. On a 32-bit counter a
    fractional cycle longer than 2147 updates gets a smaller denominator, so
    that every product below stays within 32 bits; whole numbers of updates
    are always exact.
    """
    limit = min(MAX_STEP_DENOMINATOR, math.isqrt(int(int_max // (up + down))))
    while True:
        limit = max(1, limit)
        near_up = Fraction(up).limit_denominator(limit)
        near_down = Fraction(down).limit_denominator(limit)
        b = math.lcm(near_up.denominator, near_down.denominator)
        if b <= limit and near_up and near_down:
            rise, fall = int(near_up * b), int(near_down * b)
        else:
            b = limit
            rise = max(1, round(Fraction(up) * b))
            fall = max(1, round(Fraction(down) * b))
            common = math.gcd(rise, fall, b)
            rise, fall, b = rise // common, fall // common, b // common
        if b == 1 or (rise + fall - 1) * b <= int_max:
            return rise, fall, b
        limit -= 1


def cycle_position(step, period: int, b: int, int_max: int, with_cycles=True):
    """Where `step` updates fall in the cycle, exactly, for a cycle of
    `period / b` updates.

    In units of 1/b of an update one cycle is the integer `period`. Returns
    `(cycles, u)`: the completed cycles as `(q, carry)`, meaning `q b + carry`
    (an integer that may not fit the counter's type; `None` unless
    `with_cycles`), and the position `0 <= u < period` in the current cycle.
    No intermediate value exceeds `int_max`.

    Python operators rather than `keras.ops` calls: the same on every backend,
    and much cheaper per call where each operation runs eagerly (PyTorch).
    """
    # b cycles span exactly `period` updates.
    if period > int_max:  # every count the counter can hold is in the first
        q, offset = 0, step
    else:
        q, offset = (step // period if with_cycles else None), step % period
    if b == 1:
        return (q, 0), offset
    # offset * b < period * b, within int_max by the choice of `b` in
    # `step_fractions`.
    scaled = offset * b
    return (q, scaled // period if with_cycles else None), scaled % period


def int_max(dtype) -> int:
    """The largest value of an integer dtype."""
    return int(np.iinfo(backend.standardize_dtype(dtype)).max)


def decayed_rate(step, base_lr, decay: float):
    """`base_lr / (1 + decay * step)`: time-based decay, before any cycle."""
    base_lr = ops.cast(base_lr, "float32")
    if not decay:
        return base_lr
    return base_lr / (1.0 + decay * ops.cast(step, "float32"))


def schedule(
    step,
    base_lr,
    clr: CyclicalConfig,
    scale_fn: Callable | None = None,
    decay: float = 0.0,
    fraction: tuple[int, int, int] | None = None,
    max_lr=None,
):
    """The learning rate of the update that follows `step` applied updates,
    and where that update stands between the cycle's floor and its peak.

    Args:
        step: Integer tensor: the updates applied so far.
        base_lr: The learning rate at the bottom of the cycle (before decay).
        clr: The validated cycle configuration.
        scale_fn: The function `clr.scale_fn` names, if any.
        decay: Time-based decay of the floor of the cycle.
        fraction: `step_fractions(*clr.half_cycles, int_max(step.dtype))`, if
            already known (computing it is plain Python, best kept out of a
            traced step).
        max_lr: The top of the cycle, if not `clr.max_lr` (a float32 tensor
            or variable: the optimizer keeps it in one, so that assigning its
            learning rate can rescale the cycle).

    Returns:
        Two float32 tensors: the rate, and the weight `w` in [0, 1] that sets
        a cycled momentum to `highest - (highest - lowest) * w`.
    """
    peak = clr.max_lr if max_lr is None else ops.cast(max_lr, "float32")
    if clr.mode == "one_cycle":
        return _one_cycle(step, base_lr, peak, clr)
    base_n = decayed_rate(step, base_lr, decay)

    limit = int_max(step.dtype)
    rise, fall, b = fraction or step_fractions(*clr.half_cycles, limit)
    period = rise + fall
    triangular = clr.mode == "triangular"
    (q, carry), u = cycle_position(step, period, b, limit, with_cycles=not triangular)
    # 1 - x of the paper: u / rise while rising, (period - u) / fall after.
    # Divided, not multiplied by a reciprocal: a correctly rounded quotient of
    # two float32 values x <= a is at most 1, so the rate never passes max_lr.
    if rise == fall and period <= limit:  # (a - |u - a|) / a, cheaper
        triangle = ops.cast(rise - abs(u - rise), "float32") / float(rise)
    else:
        if period > limit:  # then u <= limit < period
            left = ops.cast(limit - u, "float32") + float(period - limit)
        else:
            left = ops.cast(period - u, "float32")
        rising = ops.cast(u, "float32") / float(rise)
        triangle = ops.minimum(rising, left / float(fall))
    if triangular:
        return base_n + (peak - base_n) * triangle, triangle

    # Completed cycles, as a float (the scale's argument) and, for restarts,
    # modulo `restart_every` in integers that stay small.
    cycles = ops.cast(q, "float32") * float(b) + ops.cast(carry, "float32")
    if clr.restart_every is not None:
        k = clr.restart_every
        cycles_in_run = ((q % k) * (b % k) + carry) % k
        cycles = ops.cast(cycles_in_run, "float32")
        # Updates since the last restart.
        step_in_run = (cycles * float(period) + ops.cast(u, "float32")) / float(b)
    else:
        step_in_run = ops.cast(step, "float32")

    if scale_fn is not None:
        argument = cycles + 1.0 if clr.scale_mode == "cycle" else step_in_run
        scale = ops.cast(scale_fn(argument), "float32")
    elif clr.mode in ("triangular2", "modified_triangular2"):
        scale = ops.power(0.5, cycles)
    else:  # exp_range: gamma**n, with log(gamma) rounded once, not gamma
        scale = ops.exp(step_in_run * math.log(clr.gamma))
    height = triangle * scale
    return base_n + (peak - base_n) * height, height


def _one_cycle(step, base_lr, peak, clr: CyclicalConfig):
    """Mode "one_cycle", phase by phase as PyTorch's `OneCycleLR` defines it;
    from `total_steps - 1` updates on, the final rate holds."""
    last = clr.total_steps - 1
    if last <= int_max(step.dtype):
        step = ops.minimum(step, last)
    n = ops.cast(step, "float32")
    start = ops.cast(base_lr, "float32")
    final = start / clr.final_div_factor
    warm_up_end = clr.pct_start * clr.total_steps - 1
    # (last update of the phase, rate from, rate to, weight from, weight to)
    if clr.three_phase:
        phases = [
            (warm_up_end, start, peak, 0.0, 1.0),
            (2 * warm_up_end, peak, start, 1.0, 0.0),
            (last, start, final, 0.0, 0.0),
        ]
    else:
        phases = [(warm_up_end, start, peak, 0.0, 1.0), (last, peak, final, 1.0, 0.0)]

    rate = weight = None
    begin = 0.0
    for end, rate_from, rate_to, weight_from, weight_to in phases:
        end = float(end)  # a Python int past 32 bits would not convert
        # The shares of the phase done and left, each computed directly so
        # that the rate near either end keeps its relative precision.
        length = 1.0 / (end - begin)
        # Clipped: rounding the phase's ends to float32 could take a very
        # short phase's shares a little past [0, 1].
        done = ops.clip((n - begin) * length, 0.0, 1.0)
        left = ops.clip((end - n) * length, 0.0, 1.0)
        if clr.anneal_strategy == "cos":  # (1 -+ cos(pi done)) / 2
            done = ops.square(ops.sin((0.5 * math.pi) * done))
            left = ops.square(ops.sin((0.5 * math.pi) * left))
        # The two shares sum to 1 up to rounding, which for a phase shorter
        # than float32 resolves at its update count is not negligible: make
        # them sum to 1, so that the rate stays between the phase's ends.
        whole = done + left
        done, left = done / whole, left / whole
        phase_rate = rate_from * left + rate_to * done
        phase_weight = weight_from * left + weight_to * done
        if rate is None:
            rate, weight = phase_rate, phase_weight
        else:
            rate = ops.where(n > begin, phase_rate, rate)
            weight = ops.where(n > begin, phase_weight, weight)
        begin = end
    return rate, weight
