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

from collections.abc import Callable

from keras import ops

from clr_optimizers._config import CyclicalConfig


def _divmod(x, y: int):
    return ops.floor_divide(x, y), ops.mod(x, y)


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
):
    """The learning rate of the update that follows `step` applied updates.

    Args:
        step: Integer tensor: the updates applied so far.
        base_lr: The learning rate at the bottom of the cycle (before decay).
        clr: The validated cycle configuration.
        scale_fn: The function `clr.scale_fn` names, if any.
        decay: Time-based decay of the floor of the cycle.

    Returns:
        A float32 scalar tensor.
    """
    base_n = decayed_rate(step, base_lr, decay)

    # With s = a / b, n / s = n b / a: work in units of 1/b of an update, in
    # which one full cycle is the integer 2a. The position in the cycle `u`
    # and the cycle number are then exact integers at any step count.
    a, b = clr.step_fraction
    full_cycles, offset = _divmod(step, 2 * a)
    if b == 1:
        cycle, u = full_cycles + 1, offset
    else:
        carry, u = _divmod(offset * b, 2 * a)
        cycle = full_cycles * b + carry + 1
    # 1 - x = 1 - |u / a - 1| = min(u, 2a - u) / a, in [0, 1] since 0 <= u < 2a.
    triangle = ops.cast(ops.minimum(u, 2 * a - u), "float32") * (1.0 / a)
    if clr.mode == "triangular":
        return base_n + (clr.max_lr - base_n) * triangle

    if clr.restart_every is not None:
        cycle_in_run = ops.mod(cycle - 1, clr.restart_every)
        cycle = cycle_in_run + 1
        # Updates since the last restart, in units of 1/b of an update.
        step_in_run_b = cycle_in_run * (2 * a) + u
        step_in_run = ops.cast(step_in_run_b, "float32") / float(b)
    else:
        step_in_run = ops.cast(step, "float32")

    if scale_fn is not None:
        if clr.scale_mode == "cycle":
            argument = ops.cast(cycle, "float32")
        else:
            argument = step_in_run
        scale = ops.cast(scale_fn(argument), "float32")
    elif clr.mode in ("triangular2", "modified_triangular2"):
        scale = ops.power(0.5, ops.cast(cycle - 1, "float32"))
    else:  # exp_range
        scale = ops.power(clr.gamma, step_in_run)

    return base_n + (clr.max_lr - base_n) * triangle * scale
