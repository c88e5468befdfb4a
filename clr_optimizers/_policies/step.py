"""A piecewise-constant rate (mode "step"), in two forms.

With `drop_at = [B_1, ..., B_m]` (update counts) the rate holds in pieces:
piece `j` runs from `B_j` applied updates to `B_(j+1)` (with `B_0 = 0`), at

```
lr(n) = floor + (peak - floor) * f_j
```

where `f_j = factors[j]`, or `gamma**j` without `factors` (PyTorch's
`MultiStepLR(milestones=drop_at, gamma)`; Keras's
`PiecewiseConstantDecay(boundaries=[B - 1 for B in drop_at], values)`, whose
boundaries are the last count of each piece). With `drop_every = N` the
drops are periodic, `f = gamma**floor(n / N)`: PyTorch's
`StepLR(step_size=N, gamma)` and Keras's
`ExponentialDecay(decay_steps=N, decay_rate=gamma, staircase=True)`. A cycled
momentum is `highest - (highest - lowest) * f`.

(`drop_every` counts updates between drops; `step_size`, in the cyclical
modes, is half a cycle.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from keras import ops

from clr_optimizers._checks import MAX_STEP_SIZE, check_int, check_number, int_max
from clr_optimizers._policies._base import Given, Key, Policy, quotient
from clr_optimizers._policies.cyclical import power_of
from clr_optimizers._types import Tensor


def _listed(values: Any) -> Any:
    """A NumPy array as a list; anything else as it is."""
    return values.tolist() if isinstance(values, np.ndarray) else values


def _counts(name: str, values: Any) -> tuple[int, ...]:
    values = _listed(values)
    if not isinstance(values, Sequence) or isinstance(values, str) or not values:
        raise TypeError(
            f"`{name}` must be a non-empty list of update counts. Received: {values!r}."
        )
    checked: list[int] = []
    for index, value in enumerate(values):
        value = check_int(f"{name}[{index}]", value, 1, MAX_STEP_SIZE, "updates")
        if checked and value <= checked[-1]:
            raise ValueError(
                f"`{name}` must increase: each drop comes after the one "
                f"before. Received: {list(values)!r}."
            )
        checked.append(value)
    return tuple(checked)


def _fraction(name: str, value: Any) -> float:
    share = check_number(name, value, positive=False)
    if share > 1:
        raise ValueError(
            f"`{name}` must be in [0, 1]: a share of the way from the floor to "
            f"`max_lr`. Received: {share}."
        )
    return share


@dataclasses.dataclass(frozen=True)
class Step(Policy):
    """Mode "step", validated, every default filled in."""

    modes = ("step",)
    description = "mode 'step'"
    keys = (
        Key(
            "drop_at",
            "The update counts at which the rate drops (from each on, the next piece).",
            replaces=("drop_every",),
        ),
        Key(
            "factors",
            "With `drop_at`, the rate of each piece (one more than the drops) "
            "as a share of the way from the floor to `max_lr`, in [0, 1].",
            replaces=("gamma",),
        ),
        Key(
            "drop_every",
            "Updates between periodic drops, instead of `drop_at`.",
            replaces=("drop_at", "factors"),
        ),
        Key(
            "gamma",
            "Without `factors`, what each drop multiplies the rate above the "
            "floor by, in (0, 1].",
            0.1,
            replaces=("factors",),
        ),
    )
    no_decay = "its drops set the rate"

    max_lr: float
    drop_at: tuple[int, ...] | None = None
    factors: tuple[float, ...] | None = None
    drop_every: int | None = None
    gamma: float = 0.1
    momentum: tuple[float, float] | None = None
    decay: float = 0.0

    @property
    def mode(self) -> str:
        return "step"

    @classmethod
    def from_clr(cls, clr: Mapping[str, Any], given: Given) -> tuple[Step, float]:
        explicit, periodic = "drop_at" in clr, "drop_every" in clr
        if explicit and periodic:
            raise ValueError(
                "`clr['drop_at']` and `clr['drop_every']` exclude each other: give "
                "the update counts of the drops, or the updates between them."
            )
        if not explicit and not periodic:
            raise ValueError(
                "Mode 'step' needs either `clr['drop_at']` (the update counts of "
                "the drops) or `clr['drop_every']` (updates between drops). "
                'Example: clr={"mode": "step", "max_lr": 0.1, "drop_at": [3000, '
                "6000]}."
            )
        if "factors" in clr and "gamma" in clr:
            raise ValueError(
                "`clr['factors']` and `clr['gamma']` exclude each other: give the "
                "rate of each piece, or the factor of each drop."
            )
        if "factors" in clr and not explicit:
            raise ValueError(
                "`clr['factors']` needs `clr['drop_at']`: one factor for each "
                "piece between the drops."
            )
        gamma = check_number("clr['gamma']", clr.get("gamma", cls.default("gamma")))
        if gamma > 1:
            raise ValueError(f"`clr['gamma']` must be in (0, 1]. Received: {gamma}.")
        drop_at = factors = drop_every = None
        if explicit:
            drop_at = _counts("clr['drop_at']", clr["drop_at"])
            if "factors" in clr:
                given_factors = _listed(clr["factors"])
                if not isinstance(given_factors, Sequence) or len(given_factors) != (
                    len(drop_at) + 1
                ):
                    raise ValueError(
                        "`clr['factors']` must list one factor more than "
                        f"`clr['drop_at']` has drops ({len(drop_at) + 1}). "
                        f"Received: factors={given_factors!r}."
                    )
                factors = tuple(
                    _fraction(f"clr['factors'][{i}]", value)
                    for i, value in enumerate(given_factors)
                )
        else:
            drop_every = check_int(
                "clr['drop_every']", clr["drop_every"], 1, MAX_STEP_SIZE, "updates"
            )
        policy = cls(
            max_lr=given.max_lr,
            drop_at=drop_at,
            factors=factors,
            drop_every=drop_every,
            gamma=gamma,
            momentum=given.momentum,
        )
        return policy, given.learning_rate

    def to_clr(self, peak: float | None = None) -> dict[str, Any]:
        return self.clr_dict(
            peak,
            drop_at=None if self.drop_at is None else list(self.drop_at),
            factors=None if self.factors is None else list(self.factors),
            drop_every=self.drop_every,
            gamma=None if self.factors is not None else self.gamma,
        )

    def __call__(
        self, step: Tensor, floor: Tensor, peak: Tensor
    ) -> tuple[Tensor, Tensor]:
        floor = ops.cast(floor, "float32")
        peak = ops.cast(peak, "float32")
        limit = int_max(step.dtype)
        if self.drop_every is not None:
            if self.drop_every > limit:  # the counter never gets there
                drops = ops.zeros_like(step)
            else:
                drops = quotient(step, self.drop_every)
        else:
            assert self.drop_at is not None
            drops = ops.zeros_like(step)
            for count in self.drop_at:
                if count <= limit:
                    drops = drops + ops.cast(step >= count, step.dtype)
        if self.factors is not None:
            table = ops.convert_to_tensor(np.array(self.factors, dtype=np.float32))
            weight = ops.take(table, drops)
        else:
            weight = power_of(self.gamma, ops.cast(drops, "float32"))
        return floor + (peak - floor) * weight, weight
