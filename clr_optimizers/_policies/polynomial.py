"""Polynomial decay from the peak to the floor (mode "polynomial"), as
Keras's `PolynomialDecay` and PyTorch's `PolynomialLR` define it.

Over `D = decay_steps` updates, after `n` of them:

```
lr(n) = floor + (peak - floor) * (1 - min(n, D) / D)**power
```

From `D` updates on the floor holds. With `cycle=True` the decay starts
over, each time over a longer span: `D` is multiplied by `ceil(n / D)` (1 at
`n = 0`), as in `PolynomialDecay(cycle=True)`. With `power=1` after a
linear warmup (`warmup_steps`) it is the "linear warmup, linear decay"
schedule of transformer fine-tuning. A cycled momentum is
`highest - (highest - lowest) * (1 - min(n, D) / D)**power`.

The share of the span left is formed in integers from the integer counter:
it does not drift however long training runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from keras import ops

from clr_optimizers._checks import (
    MAX_STEP_SIZE,
    check_bool,
    check_int,
    check_number,
    int_max,
)
from clr_optimizers._policies._base import (
    REQUIRED,
    Given,
    Key,
    Policy,
    count_like,
    quotient,
    remainder,
)
from clr_optimizers._types import Tensor


@dataclasses.dataclass(frozen=True)
class Polynomial(Policy):
    """Mode "polynomial", validated, every default filled in."""

    modes = ("polynomial",)
    description = "mode 'polynomial'"
    keys = (
        Key("decay_steps", "Updates over which the rate falls to the floor.", REQUIRED),
        Key("power", "The power of the share of the span left.", 1.0),
        Key(
            "cycle",
            "Start the decay over once it ends, over a span `ceil(n / "
            "decay_steps)` times as long.",
            False,
        ),
    )
    no_decay = "it decays to its floor itself"

    max_lr: float
    decay_steps: int
    power: float = 1.0
    cycle: bool = False
    momentum: tuple[float, float] | None = None
    decay: float = 0.0

    @property
    def mode(self) -> str:
        return "polynomial"

    @classmethod
    def from_clr(cls, clr: Mapping[str, Any], given: Given) -> tuple[Polynomial, float]:
        if "decay_steps" not in clr:
            raise ValueError(
                "`clr` is missing the key 'decay_steps' (the updates of the "
                "decay) that mode 'polynomial' needs. Example: "
                'clr={"mode": "polynomial", "max_lr": 0.1, "decay_steps": 1000}.'
            )
        steps = check_int(
            "clr['decay_steps']", clr["decay_steps"], 1, MAX_STEP_SIZE, "updates"
        )
        policy = cls(
            max_lr=given.max_lr,
            decay_steps=steps,
            power=check_number("clr['power']", clr.get("power", cls.default("power"))),
            cycle=check_bool("clr['cycle']", clr.get("cycle", cls.default("cycle"))),
            momentum=given.momentum,
        )
        return policy, given.learning_rate

    def to_clr(self, peak: float | None = None) -> dict[str, Any]:
        return self.clr_dict(
            peak, decay_steps=self.decay_steps, power=self.power, cycle=self.cycle
        )

    def __call__(
        self, step: Tensor, floor: Tensor, peak: Tensor
    ) -> tuple[Tensor, Tensor]:
        floor = ops.cast(floor, "float32")
        peak = ops.cast(peak, "float32")
        span = self.decay_steps
        if span > int_max(step.dtype):  # the counter never gets to the end
            share = (float(span) - ops.cast(step, "float32")) / float(span)
        elif self.cycle:
            # The span is `m D`, m = max(ceil(n / D), 1); what is left of it,
            # `m D - n`, is D - n % D, or 0 at a multiple of D past 0.
            into = remainder(step, span)
            spans = ops.maximum(
                quotient(step, span) + ops.cast(into > 0, step.dtype), 1
            )
            # In integers: Python floats would take Keras's floatx.
            at_end = ops.where(
                step > 0, ops.zeros_like(step), ops.full_like(step, span)
            )
            left = ops.where(into > 0, span - into, at_end)
            share = ops.cast(left, "float32") / (
                ops.cast(spans, "float32") * float(span)
            )
        else:
            share = ops.cast(
                span - ops.minimum(step, count_like(step, span)), "float32"
            ) / float(span)
        weight = share if self.power == 1 else ops.power(share, self.power)
        return floor + (peak - floor) * weight, weight
