"""The rate (and momentum) of given updates of anything that sets a rate, read
on the host from the same functions the training step runs: a `clr` dict, a
CLR optimizer, or any `LearningRateSchedule`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import keras
import numpy as np
from keras import ops

from clr_optimizers._optimizer import CyclicalOptimizer
from clr_optimizers._policies import parse
from clr_optimizers._policies._base import as_step

_Schedule = keras.optimizers.schedules.LearningRateSchedule


@dataclasses.dataclass
class Source:
    """Rates and momentums as functions of an array of applied-update counts."""

    label: str
    rates: Callable[[np.ndarray], np.ndarray]
    momentums: Callable[[np.ndarray], np.ndarray] | None = None


def _numpy(values, steps) -> np.ndarray:
    values = np.asarray(ops.convert_to_numpy(values), dtype=np.float64)
    return np.broadcast_to(values, np.shape(steps)).copy()


def policy_source(clr: Mapping, learning_rate=None, decay=None) -> Source:
    """A `clr` dict with its floor, evaluated by its policy."""
    if learning_rate is None and clr.get("mode") != "one_cycle":
        raise ValueError(
            "`learning_rate` (the bottom of the cycle) is needed to plot a "
            "`clr` dict; or pass an optimizer or a schedule."
        )
    policy, floor = parse(
        dict(clr),
        learning_rate=0.0 if learning_rate is None else learning_rate,
        learning_rate_given=learning_rate is not None,
        decay=decay or 0.0,
    )

    def rates(steps):
        return _numpy(policy(as_step(steps), floor, policy.max_lr)[0], steps)

    def momentums(steps):
        weight = policy(as_step(steps), floor, policy.max_lr)[1]
        return _numpy(policy.momentum_of(weight), steps)

    return Source(
        policy.label(), rates, momentums if policy.momentum is not None else None
    )


def schedule_rates(schedule: Callable, steps: np.ndarray) -> np.ndarray:
    """A schedule's rates at `steps`: in one call where the schedule takes an
    array (this package's do), else one call per step."""
    try:
        values = np.asarray(ops.convert_to_numpy(schedule(as_step(steps))))
        if values.shape == np.shape(steps):
            return values.astype(np.float64)
    except Exception:  # a schedule written for one step at a time
        pass
    return np.array(
        [float(ops.convert_to_numpy(schedule(as_step(int(s))))) for s in steps]
    )


def source_of(obj, learning_rate=None, decay=None) -> Source:
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
    if isinstance(obj, CyclicalOptimizer):
        policy = obj._policy
        label = type(obj).__name__
        if policy is not None and policy.to_clr() is not None:
            label = f"{label}, {policy.label()}"
        momentums = None
        if obj.current_momentum is not None:

            def momentums(steps):
                return _numpy(obj._momentum_at(steps), steps)

        return Source(
            label, lambda steps: _numpy(obj._rate_at(steps), steps), momentums
        )
    raise TypeError(
        "Each schedule must be a `clr` dict, a clr_optimizers optimizer or a "
        "LearningRateSchedule (for a stock optimizer, pass the schedule it "
        f"was given). Received: {obj!r}."
    )
