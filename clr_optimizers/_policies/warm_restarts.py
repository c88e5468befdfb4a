"""Cosine annealing with warm restarts, SGDR (Loshchilov and Hutter, 2017,
arXiv:1608.03983), as PyTorch's `CosineAnnealingWarmRestarts` and Keras's
`CosineDecayRestarts` define it.

Period `i = 0, 1, 2, ...` lasts `T_i = period * period_mult**i` updates and
begins after `S_i = T_0 + ... + T_(i-1)` of them. After `n` updates, in period
`i`, with `t = n - S_i`:

```
lr(n) = floor + (peak - floor) * peak_mult**i * (1 + cos(pi t / T_i)) / 2
```

Each period falls from its peak towards the floor and restarts at the next
peak. With `cycle_limit = L` the floor holds from the `L`-th restart on. A
cycled momentum is `highest - (highest - lowest) * peak_mult**i * (1 + cos(pi
t / T_i)) / 2`.

The period is found exactly, in integers, at every count the counter holds:
with `period_mult = 1` as the cyclical modes find their cycle; otherwise from
a table of where each period begins, computed once: the count is compared
with every period's first and last count, and the period that holds it
gives its start and length.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from keras import ops

from clr_optimizers._checks import check_int, check_number, check_step_size, int_max
from clr_optimizers._policies._base import REQUIRED, Given, Key, Policy
from clr_optimizers._policies.cyclical import (
    MAX_RESTART_EVERY,
    cycle_position,
    step_fractions,
)
from clr_optimizers._types import Tensor

# The most periods a table may list within the counter's range.
MAX_PERIODS = 10_000
# The most comparisons of counts with periods made at once (many counts on
# the host are taken in chunks).
_MOST_COMPARED = 2**22


@dataclasses.dataclass(frozen=True)
class _Table:
    """Where each period begins: `ends[j]` is the last count before period
    `j` (`-1` for the first, the counter's largest value after the last),
    `starts[j] = whole[j] + part[j]` the exact start and `lengths[j]` the
    length, for the periods that begin within the counter's range."""

    ends: np.ndarray
    whole: np.ndarray
    part: np.ndarray
    lengths: np.ndarray


def _table(period: int | float, mult: float, counter_max: int) -> _Table | None:
    exact = isinstance(period, int) and float(mult).is_integer()
    length: float = int(period) if exact else float(period)
    factor: float = int(mult) if exact else float(mult)
    starts: list[float] = []
    lengths: list[float] = []
    start: float = 0
    while start <= counter_max:
        if len(starts) == MAX_PERIODS:
            return None
        starts.append(start)
        lengths.append(length)
        start, length = start + length, length * factor
    whole = np.floor(np.array(starts, dtype=np.float64))
    if exact:
        whole = np.array(starts, dtype=np.int64)
    # The last count before each period; the counter never passes the last.
    ends = [math.ceil(s) - 1 for s in starts[1:]]
    return _Table(
        ends=np.array([-1, *ends, counter_max], dtype=np.int64),
        whole=np.asarray(whole, dtype=np.int64),
        part=np.array(
            [float(s - w) for s, w in zip(starts, whole.tolist())], dtype=np.float32
        ),
        lengths=np.array(lengths, dtype=np.float32),
    )


@dataclasses.dataclass(frozen=True)
class WarmRestarts(Policy):
    """Mode "warm_restarts", validated, every default filled in."""

    modes = ("warm_restarts",)
    description = "mode 'warm_restarts'"
    keys = (
        Key(
            "period",
            "Updates in the first period (a fraction is read as the nearest "
            "with a denominator of at most 1000).",
            REQUIRED,
        ),
        Key("period_mult", "Each period is this many times the one before.", 1.0),
        Key("peak_mult", "Each peak is this many times the one before.", 1.0),
        Key("cycle_limit", "From this many restarts on, the floor holds."),
    )
    no_decay = (
        "it anneals to its floor every period (see `clr['peak_mult']` to lower "
        "the peaks)"
    )

    max_lr: float
    period: int | float
    period_mult: float = 1.0
    peak_mult: float = 1.0
    cycle_limit: int | None = None
    momentum: tuple[float, float] | None = None
    decay: float = 0.0
    _tables: dict[int, Any] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def mode(self) -> str:
        return "warm_restarts"

    @classmethod
    def from_clr(
        cls, clr: Mapping[str, Any], given: Given
    ) -> tuple[WarmRestarts, float]:
        if "period" not in clr:
            raise ValueError(
                "`clr` is missing the key 'period' (the updates of the first "
                "period) that mode 'warm_restarts' needs. Example: "
                'clr={"mode": "warm_restarts", "max_lr": 0.1, "period": 1000}.'
            )
        period = check_step_size("clr['period']", clr["period"])
        period_mult = check_number(
            "clr['period_mult']", clr.get("period_mult", cls.default("period_mult"))
        )
        if period_mult < 1:
            raise ValueError(
                "`clr['period_mult']` must be at least 1: each period is that "
                f"many times the previous one. Received: period_mult={period_mult}."
            )
        peak_mult = check_number(
            "clr['peak_mult']", clr.get("peak_mult", cls.default("peak_mult"))
        )
        if peak_mult > 1:
            raise ValueError(
                "`clr['peak_mult']` must be in (0, 1]: each peak is that many "
                f"times the previous one. Received: peak_mult={peak_mult}."
            )
        cycle_limit = clr.get("cycle_limit")
        if cycle_limit is not None:
            cycle_limit = check_int(
                "clr['cycle_limit']", cycle_limit, 1, MAX_RESTART_EVERY, "periods"
            )
        policy = cls(
            max_lr=given.max_lr,
            period=period,
            period_mult=period_mult,
            peak_mult=peak_mult,
            cycle_limit=cycle_limit,
            momentum=given.momentum,
        )
        return policy, given.learning_rate

    def __post_init__(self) -> None:
        # Computed here for the 32- and 64-bit counters, not while a compiled
        # step is traced.
        for counter_max in (2**31 - 1, 2**63 - 1):
            if self.table(counter_max) is None:
                raise ValueError(
                    "`clr['period_mult']` is so close to 1 that more than "
                    f"{MAX_PERIODS:,} periods begin within the update counter's "
                    "range; use 1, or a larger multiplier. Received: "
                    f"period_mult={self.period_mult}, period={self.period}."
                )

    def table(self, counter_max: int) -> Any:
        """`step_fractions` of the period (with `period_mult = 1`), or the
        `_Table` of its periods, for a counter of that range."""
        if counter_max not in self._tables:
            if self.period_mult == 1:
                rise, _, b = step_fractions(self.period, self.period, counter_max)
                self._tables[counter_max] = (rise, b)
            else:
                self._tables[counter_max] = _table(
                    self.period, self.period_mult, counter_max
                )
        return self._tables[counter_max]

    def to_clr(self, peak: float | None = None) -> dict[str, Any]:
        return self.clr_dict(
            peak,
            period=self.period,
            period_mult=self.period_mult,
            peak_mult=self.peak_mult,
            cycle_limit=self.cycle_limit,
        )

    def position(self, step: Tensor) -> tuple[Tensor, Tensor]:
        """The period after `step` updates (a float) and the share of it left,
        computed directly so that the rate near the floor keeps its relative
        precision."""
        limit = int_max(step.dtype)
        table = self.table(limit)
        if self.period_mult == 1:
            rise, b = table
            (q, carry), u = cycle_position(step, rise, b, limit)
            index = ops.cast(q, "float32") * float(b) + ops.cast(carry, "float32")
            if rise > limit:  # then u <= limit < rise
                left = ops.cast(limit - u, "float32") + float(rise - limit)
            else:
                left = ops.cast(rise - u, "float32")
            return index, left / float(rise)
        periods = len(table.lengths)
        size = int(np.prod(step.shape))
        if size * periods > _MOST_COMPARED:  # on the host, many counts at once
            flat = ops.reshape(step, (-1,))
            chunk = max(1, _MOST_COMPARED // periods)
            parts = [
                self._period_of(flat[i : i + chunk], table)
                for i in range(0, size, chunk)
            ]
            index, left = (
                ops.reshape(ops.concatenate([p[k] for p in parts]), step.shape)
                for k in (0, 1)
            )
            return index, left
        return self._period_of(step, table)

    @staticmethod
    def _period_of(step: Tensor, table: _Table) -> tuple[Tensor, Tensor]:
        """`position` from the table: the period whose counts hold `step` is
        found by comparing with every period's first and last count (one
        comparison each, exact in integers), and its constants are read by
        summing them where it holds."""
        dtype = step.dtype
        count = ops.expand_dims(step, -1)
        after = ops.convert_to_tensor(table.ends[:-1], dtype=dtype)
        last = ops.convert_to_tensor(table.ends[1:], dtype=dtype)
        here = ops.logical_and(count > after, count <= last)

        def read(values: np.ndarray, dtype: Any = "float32") -> Tensor:
            values = ops.convert_to_tensor(values, dtype=dtype)
            zero = ops.zeros((), dtype=dtype)
            return ops.sum(ops.where(here, values, zero), axis=-1)

        index = read(np.arange(len(table.lengths)))
        into = ops.cast(step - read(table.whole, dtype), "float32") - read(table.part)
        length = read(table.lengths)
        # Exact where the periods are whole numbers of updates. Within the
        # period `into` is in [0, length] up to rounding, which the weight's
        # squared sine tolerates.
        return index, (length - into) / length

    def __call__(
        self, step: Tensor, floor: Tensor, peak: Tensor
    ) -> tuple[Tensor, Tensor]:
        floor = ops.cast(floor, "float32")
        peak = ops.cast(peak, "float32")
        index, left = self.position(step)
        # (1 + cos(pi d)) / 2 with d = 1 - left: exactly 1 at the start of a
        # period, and precise near its end.
        weight = ops.square(ops.sin((0.5 * math.pi) * left))
        if self.peak_mult != 1:
            weight = weight * ops.exp(index * math.log(self.peak_mult))
        if self.cycle_limit is not None:
            weight = ops.where(index < float(self.cycle_limit), weight, 0.0)
        return floor + (peak - floor) * weight, weight
