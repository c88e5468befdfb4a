"""`ScheduleState`: the schedule of one CLR optimizer, in one object.

It holds the policy (the configuration and its formula), the floor (the
stock learning-rate variable), the peak (`max_lr`) and the restart point as
variables, which a saved model or a backup resumes with, and a record of the
bounds in use over time. It answers the rate and the momentum of the update
that follows any count of applied updates, in the compiled step as on the
host, and it rescales, restarts and reconfigures the schedule. The optimizer
owns one and talks to Keras; the monitor, the plots, `RestartCycle` and
loading read the schedule only through it.

The restart point is a variable from construction: the step always computes
`max(count - start, 0)`, two operations, so a restart takes effect in a
compiled step at once, without a rebuild.

Groups of variables with rates of their own (`_groups`) follow the same
policy at the same count: a group with a factor multiplies the optimizer's
rate (one operation), a group with bounds of its own evaluates the policy
with them (variables, which an assignment rescales with the rest).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import keras
import numpy as np
from keras import backend, ops

from clr_optimizers._checks import FLOAT32_MAX, as_number, check_number
from clr_optimizers._groups import Group
from clr_optimizers._policies import (
    Chain,
    Policy,
    check_bounds,
    family_of,
    parse,
    replaced_by,
)
from clr_optimizers._policies._base import as_step, count_like, host_values
from clr_optimizers._types import Tensor

NO_CYCLE = (
    "`restart` needs a schedule: the optimizer was made without `clr`, so it "
    "has no cycle to restart."
)


class Bounds(NamedTuple):
    """What the schedule used from one update count on."""

    #: The count of applied updates from which these were in use.
    since: int
    floor: float
    peak: float | None
    #: The count at which the schedule (re)started.
    start: int
    policy: Policy
    #: The floor and peak of each group with bounds of its own (`None` for
    #: a group with a factor).
    groups: tuple[tuple[float, float] | None, ...] = ()


class Used(NamedTuple):
    """The rates of past updates, as training used them."""

    rates: np.ndarray
    momentums: np.ndarray | None
    #: Each group's rates, by name.
    groups: dict[str, np.ndarray]


def shortest_float(value: Tensor) -> float:
    """A float32 value as the shortest Python float that rounds back to it:
    0.034975, not 0.034974999725818634."""
    return float(str(np.float32(ops.convert_to_numpy(value))))


class ScheduleState:
    """The policy, the bounds and the restart point of one optimizer.

    Args:
        policy: The schedule's configuration and formula.
        floor: The stock learning-rate variable, which holds the floor.
        counter_dtype: The dtype of the optimizer's update counter.
        scope: A context in which to create variables (the optimizer's name
            scope).
        cycled_momentum: Whether the momentum cycles.
        groups: The groups of variables with rates of their own.
    """

    def __init__(
        self,
        policy: Policy,
        floor: Any,
        counter_dtype: Any,
        scope: Callable[[], Any],
        cycled_momentum: bool,
        groups: tuple[Group, ...] = (),
    ) -> None:
        self.policy = policy
        self.groups = groups
        self.floor = floor
        self.counter_dtype = backend.standardize_dtype(counter_dtype)
        self.cycled_momentum = cycled_momentum
        #: State loads, which can move the counter without training.
        self.restores = 0
        self.peak: Any = None
        self.start: Any = None
        if policy.max_lr is not None:
            with scope():
                # The top of the cycle, in a variable so that assigning the
                # learning rate can rescale the schedule.
                self.peak = keras.Variable(
                    policy.max_lr,
                    name="max_learning_rate",
                    dtype=floor.dtype,
                    trainable=False,
                    aggregation="only_first_replica",
                )
                # The count from which the policy counts its updates.
                self.start = keras.Variable(
                    0,
                    name="cycle_start",
                    dtype=self.counter_dtype,
                    trainable=False,
                    aggregation="only_first_replica",
                )
        #: Each group's floor and peak variables (`None` for a factor).
        self.group_bounds: list[tuple[Any, Any] | None] = []
        for group in groups:
            bounds = None
            if group.factor is None:
                with scope():
                    bounds = tuple(
                        keras.Variable(
                            value,
                            name=f"{group.name}_{kind}",
                            dtype=floor.dtype,
                            trainable=False,
                            aggregation="only_first_replica",
                        )
                        for value, kind in (
                            (group.learning_rate, "learning_rate"),
                            (group.max_lr, "max_learning_rate"),
                        )
                    )
            self.group_bounds.append(bounds)
        self._history: list[Bounds] = []
        policy.check(self.floor_value, self.counter_dtype)

    @property
    def variables(self) -> list[Any]:
        """The variables of its own, in saving order, after the stock ones:
        the peak, the restart point, each group's floor and peak."""
        own = [v for v in (self.peak, self.start) if v is not None]
        return own + [v for b in self.group_bounds if b is not None for v in b]

    @property
    def floor_value(self) -> float:
        return float(ops.convert_to_numpy(self.floor))

    @property
    def peak_value(self) -> float | None:
        return None if self.peak is None else float(ops.convert_to_numpy(self.peak))

    @property
    def start_value(self) -> int:
        """The update count at which the schedule (re)started."""
        return 0 if self.start is None else int(ops.convert_to_numpy(self.start))

    # The rate and the momentum.

    def __call__(self, count: Tensor) -> tuple[Tensor, Tensor | None]:
        """The rate of the update that follows `count` applied updates (an
        integer tensor; a count before the restart point is read as the
        restart point), and the weight of a cycled momentum (`None` when it
        does not cycle)."""
        rate, weight = self.policy(self._step(count), self.floor, self.peak)
        return rate, (weight if self.cycled_momentum else None)

    def each(self, count: Tensor) -> tuple[list[Tensor], Tensor | None]:
        """As a call, with the rate of every group: the optimizer's first,
        then each group's in order."""
        step = self._step(count)
        rate, weight = self.policy(step, self.floor, self.peak)
        rates = [rate]
        for group, bounds in zip(self.groups, self.group_bounds):
            rates.append(self._group_rate(group, bounds, step, rate, self.policy))
        return rates, (weight if self.cycled_momentum else None)

    def _step(self, count: Tensor) -> Tensor:
        if self.start is None:
            return count
        # A count before the restart point is read as it.
        return ops.maximum(count - self.start, count_like(count, 0))

    @staticmethod
    def _group_rate(
        group: Group, bounds: Any, step: Tensor, rate: Tensor, policy: Policy
    ) -> Tensor:
        """A group's rate: the optimizer's times its factor, or the policy's
        with its own bounds."""
        if bounds is None:
            return rate * group.factor
        return policy(step, bounds[0], bounds[1])[0]

    def at(self, counts: Any) -> tuple[Tensor, Tensor | None]:
        """As a call, for counts on the host (numbers or arrays); a count
        before the restart point is read as the restart point, and one the
        backend's integers cannot hold is refused."""
        return self(self._host_step(counts))

    def _host_step(self, counts: Any) -> Tensor:
        """Counts on the host as a step, those before the restart point read
        as it."""
        return as_step(np.maximum(np.asarray(counts, dtype=np.int64), self.start_value))

    def momentum_of(self, weight: Tensor) -> Tensor:
        return self.policy.momentum_of(weight)

    def group(self, name: str | None) -> int:
        """The position of the group `name` among the rates of `each` (0 for
        `None`, the optimizer's own)."""
        if name is None:
            return 0
        names = [group.name for group in self.groups]
        if name not in names:
            raise ValueError(
                f"No group is named {name!r}. The groups: {', '.join(names) or 'none'}."
            )
        return names.index(name) + 1

    def rates(self, counts: Any, group: str | None = None) -> np.ndarray:
        """The rates of the updates that follow `counts`, as float64 (with
        `group`, that group's)."""
        which = self.group(group)
        if not which:
            return host_values(self.at(counts)[0], counts)
        return host_values(self.each(self._host_step(counts))[0][which], counts)

    def momentums(self, counts: Any) -> np.ndarray:
        """The cycled momentums of the updates that follow `counts`."""
        weight = self.at(counts)[1]
        assert weight is not None, "the momentum does not cycle"
        return host_values(self.momentum_of(weight), counts)

    # The record of the bounds, for rates of past updates.

    def note(self, count: int) -> None:
        """Notes the bounds in use from `count` on. The notes stay in order
        of count: a note replaces those at its count or later (a later one
        belongs to a run that a restore rolled back)."""
        while self._history and self._history[-1].since >= count:
            self._history.pop()
        self._history.append(self.snapshot(count))

    def snapshot(self, count: int) -> Bounds:
        """The bounds, restart point and policy in use now, from `count` on."""
        return Bounds(
            count,
            self.floor_value,
            self.peak_value,
            self.start_value,
            self.policy,
            self._group_values(),
        )

    def _group_values(self) -> tuple[tuple[float, float] | None, ...]:
        """Each group's floor and peak as the step uses them (`None` for a
        factor)."""
        return tuple(
            None if b is None else (shortest_float(b[0]), shortest_float(b[1]))
            for b in self.group_bounds
        )

    @property
    def history(self) -> tuple[Bounds, ...]:
        return tuple(self._history)

    def used(self, counts: np.ndarray) -> Used:
        """The rates (cycled momentums, groups' rates) of the updates after
        `counts`, with what was in use at each count (the last note at or
        before it)."""
        history = self._history
        rates = np.empty(len(counts))
        momentums = np.empty(len(counts)) if self.cycled_momentum else None
        groups = {group.name: np.empty(len(counts)) for group in self.groups}
        starts = np.array([entry.since for entry in history])
        which = np.maximum(np.searchsorted(starts, counts, side="right") - 1, 0)
        for index in np.unique(which):
            noted = history[index]
            mask = which == index
            step = as_step(counts[mask] - noted.start)  # negative: 0
            rate, weight = noted.policy(step, noted.floor, noted.peak)
            rates[mask] = ops.convert_to_numpy(rate)
            if momentums is not None:  # in float32, as the step computes it
                momentums[mask] = ops.convert_to_numpy(noted.policy.momentum_of(weight))
            for group, bounds in zip(self.groups, noted.groups):
                value = self._group_rate(group, bounds, step, rate, noted.policy)
                groups[group.name][mask] = ops.convert_to_numpy(value)
        return Used(rates, momentums, groups)

    # Changing the schedule.

    def rescale(self, value: Any, count: int) -> None:
        """Sets the floor to `value` and scales the peak by the same factor
        (the optimizer's `learning_rate` setter)."""
        value = as_number(value)
        floor = self.floor_value
        # Compared as the float32 the variable holds: assigning back the value
        # read (or the float it was given) changes nothing, not even by an ulp.
        if isinstance(value, numbers.Real) and np.float32(value) == np.float32(floor):
            return  # also at a floor of 0, which no scaling can change
        value = check_number("learning_rate", value)
        if floor == 0:
            raise ValueError(
                "Assigning the learning rate sets the floor of the schedule and "
                "scales the rest by the same factor, but the floor is 0: no "
                f"factor gives it {value}. Received: learning_rate={value}."
            )
        factor = value / floor
        bounds = [self.floor, *([self.peak] if self.peak is not None else [])]
        bounds += [v for b in self.group_bounds if b is not None for v in b]
        old = [float(ops.convert_to_numpy(bound)) for bound in bounds]
        new = [bound * factor for bound in old]
        for before, after in zip(old, new):
            if after > FLOAT32_MAX or (before > 0 and np.float32(after) == 0):
                raise ValueError(
                    f"Assigning the learning rate {value} multiplies the "
                    f"schedule by {factor:.4g}, which takes its bounds "
                    f"({', '.join(f'{b:.4g}' for b in old)}) outside float32's "
                    f"range. Received: learning_rate={value}."
                )
        for bound, after in zip(bounds, new):
            bound.assign(after)
        self.note(count)

    def plan(
        self, learning_rate: float | None, max_lr: float | None, clr: dict[str, Any]
    ) -> tuple[float, float, Policy]:
        """The bounds and the policy that a restart with these arguments
        sets, checked; nothing changes."""
        if self.peak is None:
            raise ValueError(NO_CYCLE)
        floor = shortest_float(self.floor)
        if learning_rate is not None:
            floor = check_number(
                "learning_rate", as_number(learning_rate), positive=False
            )
        peak = shortest_float(self.peak)
        if max_lr is not None:
            peak = check_number("max_lr", as_number(max_lr))
        check_bounds(floor, peak, "learning_rate", "max_lr")
        if learning_rate is not None and isinstance(self.policy, Chain):
            raise ValueError(
                "`restart(learning_rate=...)`: the pieces of a chain have floors "
                "of their own; give them in `policies`. Received: "
                f"learning_rate={learning_rate}."
            )
        if not clr:
            return floor, peak, self.policy
        for key in ("momentum", "max_lr"):
            if key in clr:
                raise ValueError(
                    "`restart` takes `max_lr` as its own argument and keeps the "
                    f"optimizer's momentum; it cannot change `clr[{key!r}]`."
                )
        config = self.config()
        assert config is not None
        family = family_of(config)
        if "mode" in clr and family_of({**config, **clr}) is not family:
            for key in family.key_names():  # another family: its keys only
                config.pop(key, None)
        for key in clr:  # a key given replaces those it excludes
            for other in replaced_by(key):
                config.pop(other, None)
        policy, _ = parse(
            {**config, **clr, "max_lr": peak},
            learning_rate=floor,
            decay=self.policy.decay,
        )
        assert policy is not None
        policy.check(floor, self.counter_dtype)
        return floor, peak, policy

    def restart(
        self,
        count: int,
        learning_rate: float | None,
        max_lr: float | None,
        clr: dict[str, Any],
        *,
        warn: bool,
    ) -> bool:
        """Restarts the schedule at `count`, with the bounds and keys given;
        returns whether the policy changed, when a compiled step needs a
        rebuild (which `warn` says in a warning)."""
        floor, peak, policy = self.plan(learning_rate, max_lr, clr)
        self.floor.assign(floor)
        self.peak.assign(peak)
        self.start.assign(count)
        changed = self._use(policy, count)
        if changed and warn:
            warnings.warn(
                "A training step that is already compiled uses the new "
                f"configuration ({', '.join(sorted(clr))}) once it is built anew: "
                "call `model.make_train_function(force=True)` (the "
                "`RestartCycle` callback does).",
                stacklevel=3,
            )
        return changed

    def reconfigure(self, clr: dict[str, Any], count: int) -> bool:
        """Uses the keys `clr` from now on, without restarting (a resumed run
        whose restart point and bounds were restored as state); returns
        whether the policy changed."""
        return self._use(self.plan(None, None, clr)[2], count)

    def _use(self, policy: Policy, count: int) -> bool:
        changed = policy != self.policy
        if changed:
            self.policy = policy
        self.note(count)
        return changed

    # Reporting.

    def config(self) -> dict[str, Any] | None:
        """The normalised `clr` dict, with `max_lr` as the step uses it (an
        assignment rescales it, and a restored state can differ from the
        arguments)."""
        config = self.policy.to_clr()
        if config is None or self.peak is None:
            return config
        used = np.float32(ops.convert_to_numpy(self.peak))
        if used != np.float32(config["max_lr"]):
            config = self.policy.to_clr(shortest_float(used))  # every bound
        return config

    def groups_config(self) -> list[dict[str, Any]] | None:
        """The `groups` argument that gives these groups again, with the
        bounds as the step uses them (`None` without groups)."""
        if not self.groups:
            return None
        return [
            group.to_config(values)
            for group, values in zip(self.groups, self._group_values())
        ]
