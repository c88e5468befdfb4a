"""A linear warmup before any policy.

With `warmup_steps = N` and `warmup_factor = f`, and `lr_p(k)` the rate of the
policy after `k` of its own updates:

```
lr(n) = lr_p(0) * (f + (1 - f) n / N)     for n < N
lr(n) = lr_p(n - N)                       for n >= N
```

The warmup rises in a straight line from `f` times the policy's first rate
to that rate, which the first update after the warmup uses: there is no jump
at the boundary, and the policy counts its updates from its own start
(PyTorch's `LinearLR(start_factor=f, total_iters=N)` followed by the policy
under `SequentialLR`, and Keras's `CosineDecay` with `warmup_steps`). A cycled
momentum holds the policy's first value during the warmup.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from keras import ops

from clr_optimizers._checks import MAX_STEP_SIZE, check_int, check_number, int_max
from clr_optimizers._policies._base import Key, Policy, count_like
from clr_optimizers._types import Tensor

KEYS = (
    Key("warmup_steps", "Updates of a linear warmup before the schedule."),
    Key(
        "warmup_factor",
        "The warmup's first rate, as a fraction of the schedule's first rate.",
        0.0,
    ),
)
NAMES = tuple(key.name for key in KEYS)


def split(clr: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The warmup's keys of `clr`, and the rest."""
    warmup = {key: clr[key] for key in NAMES if key in clr}
    return warmup, {key: value for key, value in clr.items() if key not in NAMES}


@dataclasses.dataclass(frozen=True)
class Warmup(Policy):
    """A policy after a linear warmup of `steps` updates."""

    policy: Policy
    steps: int
    factor: float = 0.0

    @classmethod
    def wrap(cls, policy: Policy, warmup: Mapping[str, Any]) -> Policy:
        """`policy` after the warmup that `warmup` (the keys of `KEYS`)
        describes; `policy` itself when there is none."""
        if not warmup:
            return policy
        if "warmup_steps" not in warmup:
            raise ValueError(
                "`clr['warmup_factor']` needs `clr['warmup_steps']`, the updates "
                "of the warmup."
            )
        steps = check_int(
            "clr['warmup_steps']", warmup["warmup_steps"], 1, MAX_STEP_SIZE, "updates"
        )
        factor = warmup.get("warmup_factor", 0.0)
        factor = check_number("clr['warmup_factor']", factor, positive=False)
        if factor > 1:
            raise ValueError(
                "`clr['warmup_factor']` must be in [0, 1]: the warmup's first "
                "rate as a fraction of the policy's first rate. "
                f"Received: warmup_factor={factor}."
            )
        return cls(policy=policy, steps=steps, factor=factor)

    @property
    def max_lr(self) -> float | None:  # type: ignore[override]
        return self.policy.max_lr

    @property
    def momentum(self) -> tuple[float, float] | None:  # type: ignore[override]
        return self.policy.momentum

    @property
    def decay(self) -> float:  # type: ignore[override]
        return self.policy.decay

    @property
    def mode(self) -> Any:
        return getattr(self.policy, "mode", None)

    def to_clr(self, peak: float | None = None) -> dict[str, Any] | None:
        config = self.policy.to_clr(peak)
        assert config is not None
        return {**config, "warmup_steps": self.steps, "warmup_factor": self.factor}

    def label(self) -> str:
        return f"{self.policy.label()}, warmup {self.steps}"

    def check(self, floor: float, dtype: Any) -> None:
        self.policy.check(floor, dtype)

    def __call__(
        self, step: Tensor, floor: Tensor, peak: Tensor
    ) -> tuple[Tensor, Tensor]:
        if self.steps > int_max(step.dtype):  # the counter never leaves it
            first, weight = self.policy(ops.zeros_like(step), floor, peak)
            done = ops.cast(step, "float32") / float(self.steps)
            return first * self._ramp(done), weight
        # One evaluation of the policy, at its own count: 0 throughout the
        # warmup, whose rates are its first scaled by the ramp. After the
        # warmup the ramp is exactly 1 (see `_ramp`), so the rate is the
        # policy's own.
        rate, weight = self.policy(
            ops.maximum(step - self.steps, count_like(step, 0)), floor, peak
        )
        done = ops.cast(
            ops.minimum(step, count_like(step, self.steps)), "float32"
        ) / float(self.steps)
        return rate * self._ramp(done), weight

    def _ramp(self, done: Tensor) -> Tensor:
        """`f + (1 - f) done`, from `f` to 1 as `done` goes from 0 to 1: in
        float32 exactly 1 at the end, as `f` and `1 - f`, each rounded to
        float32, sum to exactly 1 (a test checks this over the range)."""
        if self.factor == 0:
            return done
        return self.factor + (1.0 - self.factor) * done
