"""Shared references for the tests: the SPEC formulas restated in NumPy."""

import math
from fractions import Fraction

import numpy as np

# SPEC.md, "The reference notebook": (iterations, current_lr) after each epoch.
SPEC_TABLE = [
    (1000, 0.034975),
    (2000, 0.059975),
    (3000, 0.035025),
    (4000, 0.010025),
    (5000, 0.034975),
    (6000, 0.059975),
    (7000, 0.035025),
    (8000, 0.010025),
    (9000, 0.034975),
    (10000, 0.059975),
]


def reference_rate(
    n,
    base,
    max_lr,
    step_size,
    mode="triangular",
    gamma=1.0,
    restart_every=None,
    scale_fn=None,
    scale_mode="cycle",
    decay=0.0,
):
    """SPEC.md's schedule for one update count `n`, in float64 Python."""
    if mode == "modified_triangular2":
        mode, restart_every = "triangular2", restart_every or 3
    base_n = base / (1 + decay * n)
    # Exact rational arithmetic, so that the reference itself does not drift.
    position = Fraction(n) / Fraction(step_size)
    cycle = math.floor(1 + position / 2)
    x = float(abs(position - 2 * cycle + 1))
    if restart_every:
        restarts = (cycle - 1) // restart_every
        cycle -= restarts * restart_every
        n -= restarts * restart_every * 2 * step_size
    if scale_fn is not None:
        scale = scale_fn(cycle if scale_mode == "cycle" else n)
    elif mode == "triangular":
        scale = 1.0
    elif mode == "triangular2":
        scale = 1 / 2 ** (cycle - 1)
    else:
        scale = gamma**n
    return base_n + (max_lr - base_n) * max(0.0, 1 - x) * scale


def reference_rates(steps, **kwargs):
    return np.array([reference_rate(int(n), **kwargs) for n in steps])
