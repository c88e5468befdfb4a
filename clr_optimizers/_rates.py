"""The rate (and momentum) of given updates of anything that sets a rate, read
on the host from the same functions the training step runs: a `clr` dict, a
CLR optimizer, or any `LearningRateSchedule`."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np

from clr_optimizers._optimizer import CyclicalOptimizer
from clr_optimizers._policies import check_floor_derivable, parse
from clr_optimizers._policies._base import as_step, host_values, schedule_rates
from clr_optimizers._policies._scale_fn import UnsavedScaleFunction
from clr_optimizers._state import ScheduleState

_Schedule = keras.optimizers.schedules.LearningRateSchedule


@dataclasses.dataclass
class Source:
    """Rates and momentums as functions of an array of applied-update counts."""

    label: str
    rates: Callable[[np.ndarray], np.ndarray]
    momentums: Callable[[np.ndarray], np.ndarray] | None = None


def policy_source(
    clr: Mapping[str, Any],
    learning_rate: float | None = None,
    decay: float | None = None,
) -> Source:
    """A `clr` dict with its floor, evaluated by its policy."""
    if learning_rate is None:
        check_floor_derivable(clr)
    with warnings.catch_warnings():  # a plot saves nothing
        warnings.simplefilter("ignore", UnsavedScaleFunction)
        policy, floor = parse(
            dict(clr),
            learning_rate=0.0 if learning_rate is None else learning_rate,
            learning_rate_given=learning_rate is not None,
            decay=decay or 0.0,
            strict=False,
        )
    if policy is None:  # neither clr nor decay: a dict always has a policy
        raise ValueError("A `clr` dict describes a schedule.")
    peak = policy.max_lr

    def rates(steps: np.ndarray) -> np.ndarray:
        return host_values(policy(as_step(steps), floor, peak)[0], steps)

    def momentums(steps: np.ndarray) -> np.ndarray:
        weight = policy(as_step(steps), floor, peak)[1]
        return host_values(policy.momentum_of(weight), steps)

    return Source(
        policy.label(), rates, momentums if policy.momentum is not None else None
    )


def source_of(
    obj: Any, learning_rate: float | None = None, decay: float | None = None
) -> Source:
    """The `Source` of a `clr` dict, a CLR optimizer (also wrapped by a
    `LossScaleOptimizer`) or a `LearningRateSchedule`."""
    if isinstance(obj, Mapping):
        return policy_source(obj, learning_rate, decay)
    if isinstance(obj, _Schedule):
        return Source(
            getattr(obj, "name", None) or type(obj).__name__,
            lambda steps: schedule_rates(obj, steps),
        )
    if isinstance(obj, keras.optimizers.LossScaleOptimizer):
        obj = obj.inner_optimizer
    state: ScheduleState | None = getattr(obj, "schedule_state", None)
    if isinstance(obj, CyclicalOptimizer) and state is not None:
        label = type(obj).__name__
        if state.policy.to_clr() is not None:
            label = f"{label}, {state.policy.label()}"
        start = state.start_value  # after `restart`, from the restart
        momentums = None
        if state.cycled_momentum:

            def momentums(steps: np.ndarray) -> np.ndarray:
                return state.momentums(steps + start)

        return Source(label, lambda steps: state.rates(steps + start), momentums)
    if isinstance(obj, CyclicalOptimizer):  # the stock rate or schedule

        def stock(steps: np.ndarray) -> np.ndarray:
            rates = obj.learning_rates(int(np.max(steps, initial=-1)) + 1)
            return np.asarray(rates[steps])

        return Source(type(obj).__name__, stock)
    raise TypeError(
        "Each schedule must be a `clr` dict, a clr_optimizers optimizer or a "
        "LearningRateSchedule (for a stock optimizer, pass the schedule it "
        f"was given). Received: {obj!r}."
    )


def sources_of(
    obj: Any, learning_rate: float | None = None, decay: float | None = None
) -> list[Source]:
    """`source_of(obj)`, then for an optimizer with groups, each group's
    rates (the cycled momentum is the same for all)."""
    source = source_of(obj, learning_rate, decay)
    if isinstance(obj, keras.optimizers.LossScaleOptimizer):
        obj = obj.inner_optimizer
    state: ScheduleState | None = getattr(obj, "schedule_state", None)
    if not isinstance(obj, CyclicalOptimizer) or state is None:
        return [source]
    start = state.start_value

    def group_source(name: str) -> Source:
        return Source(
            f"{source.label}: group {name}",
            lambda steps: state.rates(steps + start, name),
        )

    return [source, *(group_source(group.name) for group in state.groups)]
