"""Time-based decay without a cycle: what `decay=d` meant in the Keras
optimizers before Keras 3, which ignore it.

```
lr(n) = learning_rate / (1 + d n)
```

With `d = 0` the rate is constant: a schedule object then equals a plain
float rate.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from keras import ops

from clr_optimizers._policies._base import Policy, decayed
from clr_optimizers._types import Tensor


@dataclasses.dataclass(frozen=True)
class TimeDecay(Policy):
    """`decay` without `clr`."""

    decay: float = 0.0
    max_lr: ClassVar[None] = None  # type: ignore[misc]
    momentum: ClassVar[None] = None  # type: ignore[misc]

    def to_clr(self, peak: float | None = None) -> None:
        return None

    def label(self) -> str:
        return f"decay {self.decay:g}" if self.decay else "constant"

    def __call__(
        self, step: Tensor, floor: Tensor, peak: Tensor
    ) -> tuple[Tensor, None]:
        rate = decayed(step, floor, self.decay)
        if not self.decay:  # as many rates as counts
            rate = ops.broadcast_to(rate, ops.shape(step))
        return rate, None
