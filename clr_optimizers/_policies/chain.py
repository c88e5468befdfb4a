"""Policies in sequence (mode "chain"), each counting its updates from its own
start, as optax's `join_schedules` joins schedules.

With pieces `p_0, ..., p_m` and `boundaries = [B_1, ..., B_m]` (and `B_0 = 0`):

```
lr(n) = p_j(n - B_j)     for B_j <= n < B_(j+1)
```

Each piece is a `clr` dict of its own (any mode, with its own warmup), with
`learning_rate` for its floor (by default the optimizer's) and `max_lr` for
its peak (by default the chain's). The pieces' bounds are kept as multiples
of the chain's `max_lr`, so that assigning the optimizer's learning rate,
which scales the chain's floor and peak, scales every piece alike. A cycled
momentum (the chain's `momentum`) follows each piece's weight.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from keras import ops

from clr_optimizers._checks import MAX_STEP_SIZE, check_int, check_number, int_max
from clr_optimizers._policies._base import (
    REQUIRED,
    Given,
    Key,
    Policy,
    count_like,
    selects_one,
)
from clr_optimizers._types import Tensor


@dataclasses.dataclass(frozen=True)
class Chain(Policy):
    """Mode "chain", validated, every default filled in."""

    modes = ("chain",)
    description = "mode 'chain'"
    keys = (
        Key(
            "policies",
            "The pieces, each a `clr` dict of any mode (with `learning_rate` "
            "for its own floor), each counting its updates from its start.",
            REQUIRED,
        ),
        Key(
            "boundaries",
            "The update counts at which each piece after the first begins.",
            REQUIRED,
        ),
    )
    no_decay = "give each piece the schedule it follows"

    max_lr: float
    # The pieces, each with its floor and its peak as given.
    pieces: tuple[Policy, ...]
    floors: tuple[float, ...]
    peaks: tuple[float, ...]
    boundaries: tuple[int, ...]
    momentum: tuple[float, float] | None = None
    decay: float = 0.0

    @property
    def mode(self) -> str:
        return "chain"

    @classmethod
    def from_clr(cls, clr: Mapping[str, Any], given: Given) -> tuple[Chain, float]:
        from clr_optimizers._policies import parse  # the pieces are `clr` dicts

        for key in ("policies", "boundaries"):
            if key not in clr:
                raise ValueError(
                    f"`clr` is missing the key {key!r} that mode 'chain' needs. "
                    'Example: clr={"mode": "chain", "max_lr": 0.1, "policies": '
                    '[{"step_size": 500}, {"mode": "warm_restarts", "period": '
                    '2000}], "boundaries": [3000]}.'
                )
        policies, boundaries = clr["policies"], clr["boundaries"]
        if not isinstance(policies, Sequence) or isinstance(policies, str):
            raise TypeError(
                "`clr['policies']` must be a list of `clr` dicts. "
                f"Received: policies={policies!r}."
            )
        if not isinstance(boundaries, Sequence) or isinstance(boundaries, str):
            raise TypeError(
                "`clr['boundaries']` must be a list of update counts. "
                f"Received: boundaries={boundaries!r}."
            )
        if len(policies) < 2 or len(boundaries) != len(policies) - 1:
            raise ValueError(
                "`clr['policies']` must list at least two `clr` dicts and "
                "`clr['boundaries']` one update count fewer: where each piece "
                f"after the first begins. Received: {len(policies)} policies, "
                f"{len(boundaries)} boundaries."
            )
        checked: list[int] = []
        for index, boundary in enumerate(boundaries):
            boundary = check_int(
                f"clr['boundaries'][{index}]", boundary, 1, MAX_STEP_SIZE, "updates"
            )
            if checked and boundary <= checked[-1]:
                raise ValueError(
                    "`clr['boundaries']` must increase: each piece begins after "
                    f"the one before. Received: boundaries={list(boundaries)!r}."
                )
            checked.append(boundary)

        pieces, floors, peaks = [], [], []
        for index, piece in enumerate(policies):
            name = f"clr['policies'][{index}]"
            if not isinstance(piece, Mapping):
                raise TypeError(f"`{name}` must be a `clr` dict. Received: {piece!r}.")
            piece = {k: v for k, v in piece.items() if v is not None}
            if "momentum" in piece:
                raise ValueError(
                    f"`{name}['momentum']`: a chain cycles one momentum, given "
                    "as the chain's `clr['momentum']`."
                )
            own = "learning_rate" in piece
            floor = piece.pop("learning_rate", given.learning_rate)
            floor = check_number(f"{name}['learning_rate']", floor, positive=False)
            piece.setdefault("max_lr", given.max_lr)
            try:
                policy, floor = parse(
                    piece,
                    learning_rate=floor,
                    learning_rate_given=own or given.learning_rate_given,
                    strict=given.strict,
                )
            except (ValueError, TypeError) as error:
                # The piece's keys by their full name: clr['policies'][1]['period'].
                message = str(error).replace("`clr[", f"`{name}[")
                raise type(error)(f"In `{name}`: {message}") from error
            assert policy is not None and policy.max_lr is not None
            pieces.append(policy)
            floors.append(floor)
            peaks.append(policy.max_lr)
        policy = cls(
            max_lr=given.max_lr,
            pieces=tuple(pieces),
            floors=tuple(floors),
            peaks=tuple(peaks),
            boundaries=tuple(checked),
            momentum=given.momentum,
        )
        return policy, given.learning_rate

    def to_clr(self, peak: float | None = None) -> dict[str, Any]:
        scale = 1.0 if peak is None else peak / self.max_lr
        policies = []
        for piece, floor, piece_peak in zip(self.pieces, self.floors, self.peaks):
            config = piece.to_clr(None if peak is None else piece_peak * scale)
            assert config is not None
            policies.append({"learning_rate": floor * scale, **config})
        return self.clr_dict(peak, policies=policies, boundaries=list(self.boundaries))

    def label(self) -> str:
        return " -> ".join(piece.label() for piece in self.pieces)

    def check(self, floor: float, dtype: Any) -> None:
        for piece, piece_floor in zip(self.pieces, self.floors):
            piece.check(piece_floor, dtype)

    def __call__(
        self, step: Tensor, floor: Tensor, peak: Tensor
    ) -> tuple[Tensor, Tensor]:
        # The pieces' bounds move with the chain's peak (an assigned learning
        # rate scales it); at the peak given, the scale is exactly 1 (and 1
        # for a peak too small for float32).
        scale: Any = 1.0
        if np.float32(self.max_lr) > 0:
            scale = ops.cast(peak, "float32") / np.float32(self.max_lr)
        limit = int_max(step.dtype)
        starts = [start for start in (0, *self.boundaries) if start <= limit]

        def piece(index: int, own: Tensor) -> tuple[Tensor, Tensor]:
            """The rate and the weight of piece `index` after `own` of its
            updates."""
            policy = self.pieces[index]
            return policy(own, self.floors[index] * scale, self.peaks[index] * scale)

        if len(starts) > 1 and selects_one(step):
            # Only the piece that applies is evaluated.
            index = ops.cast(step >= starts[1], "int32")
            for start in starts[2:]:
                index = index + ops.cast(step >= start, "int32")
            branches = [functools.partial(piece, 0, step)] + [
                functools.partial(piece, i, step - start)
                for i, start in enumerate(starts[1:], 1)
            ]
            rate, weight = ops.switch(index, branches)
            return rate, weight
        rate, weight = piece(0, step)
        for index, start in enumerate(starts[1:], 1):
            piece_rate, piece_weight = piece(
                index, ops.maximum(step - start, count_like(step, 0))
            )
            rate = ops.where(step >= start, piece_rate, rate)
            weight = ops.where(step >= start, piece_weight, weight)
        return rate, weight
