"""The one-cycle policy (Smith and Topin, 2017, arXiv:1708.07120), phase by
phase as PyTorch's `OneCycleLR` defines it.

Over `T = total_steps` updates (or `epochs * steps_per_epoch`) the rate
rises from `start` (the learning rate) to `peak` (`max_lr`) and falls to
`final = start / final_div_factor`.
With `p = pct_start` the phases end after the updates

```
two phases:    e1 = p T - 1,  e2 = T - 1
three phases:  e1 = p T - 1,  e2 = 2 e1,  e3 = T - 1
```

and within a phase from `a` to `b`, ending at `e` and begun at the previous
end `e0`, the rate after `n` updates is

```
d = (n - e0) / (e - e0)                         # the share of the phase done
linear:  a + (b - a) d
cos:     a + (b - a) (1 - cos(pi d)) / 2
```

Two phases go start -> peak -> final; three go start -> peak -> start ->
final. A cycled momentum goes the opposite way, from its highest to its
lowest value at the peak and back, and stays at its highest in the third
phase. From `T - 1` updates on the final rate holds (PyTorch raises there).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from keras import ops

from clr_optimizers._checks import (
    MAX_STEP_SIZE,
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_number,
    int_max,
)
from clr_optimizers._policies._base import REQUIRED, Given, Key, Policy, count_like
from clr_optimizers._types import Tensor

ANNEAL_STRATEGIES = ("cos", "linear")
# PyTorch's `OneCycleLR` defaults.
DEFAULTS: dict[str, Any] = {
    "pct_start": 0.3,
    "div_factor": 25.0,
    "final_div_factor": 1e4,
    "anneal_strategy": "cos",
    "three_phase": False,
}


@dataclasses.dataclass(frozen=True)
class OneCycle(Policy):
    """Mode "one_cycle", validated, every default filled in."""

    modes = ("one_cycle",)
    description = "mode 'one_cycle'"
    keys = (
        Key(
            "total_steps",
            "Updates in the cycle; past them the final rate holds.",
            REQUIRED,
            replaces=("epochs", "steps_per_epoch"),
        ),
        Key(
            "epochs",
            "With `steps_per_epoch`, instead of `total_steps` (their product).",
            replaces=("total_steps",),
        ),
        Key(
            "steps_per_epoch",
            "Updates per epoch, with `epochs`.",
            replaces=("total_steps",),
        ),
        Key("pct_start", "The share of the cycle spent rising.", DEFAULTS["pct_start"]),
        Key(
            "div_factor",
            "Sets the start, `learning_rate`, to `max_lr / div_factor` "
            "(instead of giving `learning_rate`).",
            DEFAULTS["div_factor"],
        ),
        Key(
            "final_div_factor",
            "The final rate is `learning_rate / final_div_factor`.",
            DEFAULTS["final_div_factor"],
        ),
        Key(
            "anneal_strategy",
            '`"cos"` or `"linear"`: the shape of each phase.',
            DEFAULTS["anneal_strategy"],
        ),
        Key(
            "three_phase",
            "Rise, fall back to the start, then anneal to the final rate.",
            DEFAULTS["three_phase"],
        ),
    )
    no_decay = "it anneals to its own final rate (see `clr['final_div_factor']`)"
    derived_floor = "`max_lr / div_factor` (by default `max_lr / 25`)"

    max_lr: float
    total_steps: int
    pct_start: float = 0.3
    final_div_factor: float = 1e4
    anneal_strategy: str = "cos"
    three_phase: bool = False
    momentum: tuple[float, float] | None = None
    decay: float = 0.0
    # As given, in place of `total_steps` (their product).
    epochs: int | None = None
    steps_per_epoch: int | None = None

    @property
    def mode(self) -> str:
        return "one_cycle"

    @classmethod
    def from_clr(cls, clr: Mapping[str, Any], given: Given) -> tuple[OneCycle, float]:
        learning_rate = given.learning_rate
        values = {**DEFAULTS, **clr}
        epochs = steps_per_epoch = None
        by_epochs = [key for key in ("epochs", "steps_per_epoch") if key in clr]
        if by_epochs and "total_steps" in clr:
            raise ValueError(
                f"`clr[{by_epochs[0]!r}]` and `clr['total_steps']` exclude each "
                "other: give `total_steps`, or `epochs` and `steps_per_epoch` "
                "(whose product it is)."
            )
        if len(by_epochs) == 1:
            missing = {"epochs": "steps_per_epoch", "steps_per_epoch": "epochs"}
            raise ValueError(
                f"`clr[{by_epochs[0]!r}]` needs `clr[{missing[by_epochs[0]]!r}]`: "
                "mode 'one_cycle' lasts epochs * steps_per_epoch updates."
            )
        if by_epochs:
            epochs = check_int(
                "clr['epochs']", clr["epochs"], 1, MAX_STEP_SIZE, "epochs"
            )
            steps_per_epoch = check_int(
                "clr['steps_per_epoch']",
                clr["steps_per_epoch"],
                1,
                MAX_STEP_SIZE,
                "updates",
            )
            total_steps = epochs * steps_per_epoch
            if not 2 <= total_steps <= MAX_STEP_SIZE:
                raise ValueError(
                    "`clr['epochs']` * `clr['steps_per_epoch']` must be between 2 "
                    f"and {MAX_STEP_SIZE:,} updates. Received: epochs={epochs}, "
                    f"steps_per_epoch={steps_per_epoch}."
                )
        elif "total_steps" in clr:
            total_steps = check_int(
                "clr['total_steps']", clr["total_steps"], 2, MAX_STEP_SIZE, "updates"
            )
        else:
            raise ValueError(
                "`clr` is missing the key 'total_steps' (or 'epochs' and "
                "'steps_per_epoch') that mode 'one_cycle' needs. Example: "
                'clr={"mode": "one_cycle", "max_lr": 0.1, "total_steps": 10000}.'
            )
        pct_start = check_fraction("clr['pct_start']", values["pct_start"], zero=False)
        three_phase = check_bool("clr['three_phase']", values["three_phase"])
        warm_up_end = pct_start * total_steps - 1
        if warm_up_end <= 0:
            raise ValueError(
                "`clr['pct_start']` * `clr['total_steps']` must exceed 1 update "
                f"(the warm-up). Received: pct_start={pct_start}, "
                f"total_steps={total_steps}."
            )
        if three_phase and 2 * warm_up_end >= total_steps - 1:
            raise ValueError(
                "With `three_phase`, the warm-up and the matching descent must "
                "end before the last update: 2 * pct_start * total_steps must be "
                f"less than total_steps + 1. Received: pct_start={pct_start}, "
                f"total_steps={total_steps}."
            )
        anneal = check_choice(
            "clr['anneal_strategy']", values["anneal_strategy"], ANNEAL_STRATEGIES
        )
        final_div_factor = check_number(
            "clr['final_div_factor']", values["final_div_factor"]
        )
        if final_div_factor < 1:
            raise ValueError(
                "`clr['final_div_factor']` must be at least 1: the final rate is "
                "the learning rate divided by it. "
                f"Received: final_div_factor={final_div_factor}."
            )

        if "div_factor" in clr:
            if given.learning_rate_given:
                raise ValueError(
                    "Pass either `learning_rate` or `clr['div_factor']` (which "
                    "sets it to max_lr / div_factor), not both. Received: "
                    f"learning_rate={learning_rate}, div_factor={clr['div_factor']!r}."
                )
            div_factor = check_number("clr['div_factor']", clr["div_factor"])
            if div_factor < 1:
                raise ValueError(
                    "`clr['div_factor']` must be at least 1: the starting rate is "
                    f"max_lr / div_factor. Received: div_factor={div_factor}."
                )
            learning_rate = given.max_lr / div_factor
        elif not given.learning_rate_given:
            learning_rate = given.max_lr / DEFAULTS["div_factor"]

        policy = cls(
            max_lr=given.max_lr,
            total_steps=total_steps,
            pct_start=pct_start,
            final_div_factor=final_div_factor,
            anneal_strategy=anneal,
            three_phase=three_phase,
            momentum=given.momentum,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
        )
        return policy, learning_rate

    def to_clr(self, peak: float | None = None) -> dict[str, Any]:
        by_epochs = self.epochs is not None
        return self.clr_dict(
            peak,
            total_steps=None if by_epochs else self.total_steps,
            epochs=self.epochs,
            steps_per_epoch=self.steps_per_epoch,
            pct_start=self.pct_start,
            final_div_factor=self.final_div_factor,
            anneal_strategy=self.anneal_strategy,
            three_phase=self.three_phase,
        )

    def __call__(
        self, step: Tensor, floor: Tensor, peak: Tensor
    ) -> tuple[Tensor, Tensor]:
        last = self.total_steps - 1
        if last <= int_max(step.dtype):
            step = ops.minimum(step, count_like(step, last))
        n = ops.cast(step, "float32")
        peak = ops.cast(peak, "float32")
        start = ops.cast(floor, "float32")
        final = start / self.final_div_factor
        # Only the phase that applies is evaluated: its constants and bounds
        # are selected first. Each phase is (its first count, its last, its
        # low rate, its high rate, whether it rises).
        warm_up_end = self.pct_start * self.total_steps - 1
        middle = 2 * warm_up_end
        if self.three_phase:
            phases = [
                (0.0, warm_up_end, start, peak, True),
                (warm_up_end, middle, start, peak, False),
                (middle, last, final, start, False),
            ]
        else:
            phases = [
                (0.0, warm_up_end, start, peak, True),
                (warm_up_end, last, final, peak, False),
            ]
        # The share `w` of the way from the low rate to the high one is
        # `(n - origin) / length`, measured from the phase's low end: from
        # its first count while it rises, from its last (with the length
        # negative) while it falls. Computed directly, so that a rate near
        # the low end keeps its relative precision; a correctly rounded
        # quotient of |n - origin| <= |length| is at most 1. A phase applies
        # after its first count, compared in integers: a first count just
        # below a whole number, which float32 would round up to it, does not
        # take that number's update into the phase before.
        selected: list[Any] = []
        in_third = None
        for index, (first, last_count, low, high, rises) in enumerate(phases):
            # The ends in float32, as the counts are; the length as float32
            # subtracts them.
            first32, last32 = np.float32(first), np.float32(last_count)
            # A phase that float32 cannot resolve (its ends round to the
            # same count) holds only that count, at its low end if it falls.
            span = np.float32(last32 - first32) or np.float32(1)
            values = [first32 if rises else last32, span if rises else -span]
            values += [low, high]
            if not selected:
                selected = values
                continue
            if math.floor(first) >= int_max(step.dtype):
                break  # the counter never gets there
            later = ops.greater(step, count_like(step, math.floor(first)))
            selected = [
                old if new is old else ops.where(later, new, old)
                for new, old in zip(values, selected, strict=True)
            ]
            if index == 2:
                in_third = later
        origin, length, low, high = selected
        share = (n - origin) / length
        if self.anneal_strategy == "cos":  # (1 - cos(pi w)) / 2, exact at 0
            share = ops.square(ops.sin((0.5 * math.pi) * share))
        # Rounding can take `low + (high - low)` one float32 step past `high`.
        rate = ops.minimum(low + (high - low) * share, high)
        # A cycled momentum's weight, 0 at the start rate and 1 at the peak,
        # is the share in the first two phases and 0 in the third.
        weight = share if in_third is None else ops.where(in_third, 0.0, share)
        return rate, weight
