"""The cyclical learning-rate formula: the one place it is written.

Let `n` be the number of updates already applied, `base` the learning rate,
`max` the `max_lr` and `s` the `step_size` (updates per half cycle):

```
base_n = base / (1 + decay * n)
cycle  = floor(1 + n / (2 s))
x      = | n / s - 2 cycle + 1 |
lr(n)  = base_n + (max - base_n) * max(0, 1 - x) * scale
```

`scale` is 1 (`triangular`), `1 / 2**(cycle - 1)` (`triangular2`),
`gamma**n` (`exp_range`) or a registered function of the cycle or of `n`. With
`restart_every = K`, the scale is evaluated as if counting started afresh every
K cycles (`modified_triangular2` is `triangular2` with K = 3).

The cycle position is computed in integer arithmetic from the optimizer's
integer counter, so it does not drift however long training runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np
from keras import backend, ops

from clr_optimizers._config import MAX_STEP_DENOMINATOR, CyclicalConfig


def step_fraction(step_size, int_max: int) -> tuple[int, int]:
    """`step_size` as `(a, b)`, `s = a / b` in lowest terms, with `2 a b`
    within a counter whose largest value is `int_max`.

    The denominator is at most 1000. On a 32-bit counter a fractional step size
    above 1073 updates gets a smaller one, so that every product below stays
    within 32 bits; integer step sizes are always exact.
    """
    limit = math.isqrt(int(int_max // (2 * step_size)))
    fraction = Fraction(step_size).limit_denominator(
        max(1, min(MAX_STEP_DENOMINATOR, limit))
    )
    return fraction.numerator, fraction.denominator


def cycle_position(step, a: int, b: int, int_max: int, with_cycles: bool = True):
    """Where `step` updates fall in the cycle, exactly, for `s = a / b`.

    In units of 1/b of an update one cycle is the integer `2a`. Returns
    `(cycles, u)`: the completed cycles as `(q, carry)`, meaning `q b + carry`
    (an integer that may not fit the counter's type; `None` unless
    `with_cycles`), and the position `0 <= u < 2a` in the current cycle. No
    intermediate value exceeds `int_max`.

    Python operators rather than `keras.ops` calls: the same on every backend,
    and much cheaper per call where each operation runs eagerly (PyTorch).
    """
    period = 2 * a  # b cycles span exactly `period` updates.
    if period > int_max:  # every count the counter can hold is in the first
        q, offset = 0, step
    else:
        q, offset = (step // period if with_cycles else None), step % period
    if b == 1:
        return (q, 0), offset
    # offset * b < 2 a b <= int_max, by the choice of `b` in `step_fraction`.
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


def cyclical_rate(
    step,
    base_lr,
    clr: CyclicalConfig,
    scale_fn: Callable | None = None,
    decay: float = 0.0,
    fraction: tuple[int, int] | None = None,
):
    """The learning rate of the update that follows `step` applied updates.

    Args:
        step: Integer tensor: the updates applied so far.
        base_lr: The learning rate at the bottom of the cycle (before decay).
        clr: The validated cycle configuration.
        scale_fn: The function `clr.scale_fn` names, if any.
        decay: Time-based decay of the floor of the cycle.
        fraction: `step_fraction(clr.step_size, int_max(step.dtype))`, if
            already known (computing it is plain Python, best kept out of a
            traced step).

    Returns:
        A float32 scalar tensor.
    """
    base_n = decayed_rate(step, base_lr, decay)

    limit = int_max(step.dtype)
    a, b = fraction or step_fraction(clr.step_size, limit)
    triangular = clr.mode == "triangular"
    (q, carry), u = cycle_position(step, a, b, limit, with_cycles=not triangular)
    # 1 - x = 1 - |u / a - 1| = (a - |u - a|) / a, in [0, 1] since 0 <= u < 2a.
    if a > limit:  # then u <= int_max < a
        triangle = ops.cast(u, "float32") * (1.0 / a)
    else:
        triangle = ops.cast(a - abs(u - a), "float32") * (1.0 / a)
    if triangular:
        return base_n + (clr.max_lr - base_n) * triangle

    # Completed cycles, as a float (the scale's argument) and, for restarts,
    # modulo `restart_every` in integers that stay small.
    cycles = ops.cast(q, "float32") * float(b) + ops.cast(carry, "float32")
    if clr.restart_every is not None:
        k = clr.restart_every
        cycles_in_run = ((q % k) * (b % k) + carry) % k
        cycles = ops.cast(cycles_in_run, "float32")
        # Updates since the last restart.
        step_in_run = (cycles * (2.0 * a) + ops.cast(u, "float32")) / float(b)
    else:
        step_in_run = ops.cast(step, "float32")

    if scale_fn is not None:
        argument = cycles + 1.0 if clr.scale_mode == "cycle" else step_in_run
        scale = ops.cast(scale_fn(argument), "float32")
    elif clr.mode in ("triangular2", "modified_triangular2"):
        scale = ops.power(0.5, cycles)
    else:  # exp_range
        scale = ops.power(clr.gamma, step_in_run)

    return base_n + (clr.max_lr - base_n) * triangle * scale
