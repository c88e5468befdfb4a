"""`CyclicalOptimizer`: what turns a Keras optimizer class into a CLR one.

The mixin goes before a stock Keras optimizer class in the bases. It leaves
the update rule alone and changes only where the optimizer reads its learning
rate: during each update, inside the compiled step, Keras reads the
`learning_rate` property (and, for weight decay on PyTorch,
`_get_current_learning_rate()`), and this mixin answers both with the rate
its policy computes from the optimizer's own iteration counter, evaluated
once per update. It keeps only what talks to Keras: the
arguments (`_arguments`), the variables (the floor is the stock learning-rate
variable, the peak `max_lr` one of its own), the update hooks, and the
reporting. The formulas are the policy layer's (`_policies`); a cycled
momentum reaches the stock rule through `_momentum`.
"""

from __future__ import annotations

import numbers
import warnings
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

from clr_optimizers import _arguments, _legacy_layouts, _momentum
from clr_optimizers._checks import FLOAT32_MAX, as_number, check_count, check_number
from clr_optimizers._keras_private import (
    raw_iterations,
    stock_rate,
    track_variable,
    tracked_variables,
)
from clr_optimizers._policies import Chain, Policy, _scale_fn, check_bounds, parse
from clr_optimizers._policies._base import schedule_rates
from clr_optimizers._types import Tensor

_Schedule = keras.optimizers.schedules.LearningRateSchedule
_STOCK_LEARNING_RATE = keras.optimizers.Optimizer.learning_rate

# For `restart`: the `clr` keys that each key excludes.
_EXCLUDED = {
    "step_size": ("step_size_up", "step_size_down"),
    "step_size_up": ("step_size",),
    "step_size_down": ("step_size",),
    "total_steps": ("epochs", "steps_per_epoch"),
    "epochs": ("total_steps",),
    "steps_per_epoch": ("total_steps",),
    "scale_fn": ("mode",),
    "mode": ("scale_fn", "scale_mode"),
}

# Keys that describe the optimizer's state, not its configuration.
STATE_KEYS = ("iterations", "current_lr", "current_momentum", "cycle_start")


def shortest_float(value: Tensor) -> float:
    """A float32 value as the shortest Python float that rounds back to it:
    0.034975, not 0.034974999725818634."""
    return float(str(np.float32(ops.convert_to_numpy(value))))


if TYPE_CHECKING:  # Keras ships no types: to mypy its classes are `Any`
    from keras.optimizers import Optimizer as _OptimizerBase
else:
    _OptimizerBase = object


class CyclicalOptimizer(_OptimizerBase):
    """Adds `clr=`, `lr=` and a working `decay=` to a Keras optimizer class."""

    _policy: Policy | None
    _max_lr: Any
    _cycle_start: Any
    _momentum_argument: str | None
    _momentum_variable: _momentum.CycledValue | None
    _pending_values: list[np.ndarray] | None
    _step_values: tuple[Tensor, Tensor | None] | None
    _restores: int
    _bounds_log: list[tuple[int, float, float | None, int, Policy]]
    _traced: bool
    _keeps_start: bool

    def __init__(
        self,
        *args: Any,
        clr: dict[str, Any] | None = None,
        lr: float | None = None,
        decay: float | None = None,
        **kwargs: Any,
    ) -> None:
        bound = _arguments.bind(
            self,
            CyclicalOptimizer,
            super().__init__,
            args,
            kwargs,
            clr=clr,
            lr=lr,
            decay=decay,
        )
        super().__init__(*bound.args, **bound.kwargs)
        policy = self._policy = bound.policy
        # The top of the cycle, in a variable so that assigning the learning
        # rate can rescale the schedule (see the `learning_rate` setter). It
        # joins `variables` when the optimizer is built, after the stock ones.
        self._max_lr = None
        if policy is not None and policy.max_lr is not None:
            with keras.name_scope(self.name, caller=self):
                max_lr = keras.Variable(
                    policy.max_lr,
                    name="max_learning_rate",
                    dtype=stock_rate(self).dtype,
                    trainable=False,
                    aggregation="only_first_replica",
                )
            object.__setattr__(self, "_max_lr", max_lr)
        # Where the schedule restarted: the count that `restart` noted, from
        # which the policy then counts its updates. A variable tracked after
        # `max_lr` from the first restart on (until then the state has the
        # layout of 0.2.0, and the step does not read it).
        self._cycle_start = None
        self._keeps_start = False
        if self._max_lr is not None:
            with keras.name_scope(self.name, caller=self):
                start = keras.Variable(
                    0,
                    name="cycle_start",
                    dtype=raw_iterations(self).dtype,
                    trainable=False,
                    aggregation="only_first_replica",
                )
            object.__setattr__(self, "_cycle_start", start)
        # (update count, floor, peak, cycle start, policy): what was in use
        # from each count on.
        object.__setattr__(self, "_bounds_log", [])
        self._traced = False
        self._momentum_argument = bound.momentum_argument
        self._momentum_variable = None
        self._pending_values = None
        self._step_values = None
        self._restores = 0  # state loads, which can move the counter
        if self._momentum_argument is not None:
            assert policy is not None and policy.momentum is not None
            _momentum.check_stored(self, self._momentum_argument, policy.momentum[1])
        if policy is not None:
            floor = float(ops.convert_to_numpy(stock_rate(self)))
            policy.check(floor, raw_iterations(self).dtype)
            self._log_bounds()

    # Variables and saved state.

    def build(self, variables: list[Any]) -> None:
        super().build(variables)
        if self._momentum_argument is not None and self._momentum_variable is None:
            assert self._policy is not None and self._policy.momentum is not None
            # Set by every update before the update rule reads it.
            self._momentum_variable = _momentum.variable(
                self, self._momentum_argument, self._policy.momentum[1]
            )
        if self._max_lr is not None and all(
            v is not self._max_lr for v in tracked_variables(self)
        ):
            track_variable(self, self._max_lr)
        if self._keeps_start:
            self._track_start()
        pending, self._pending_values = self._pending_values, None
        if pending is not None:
            self._restore(pending)

    def _track_start(self) -> None:
        """Makes the restart point part of the state, from now on."""
        assert self._cycle_start is not None
        self._keeps_start = True
        start = self._cycle_start
        if self.built and all(v is not start for v in tracked_variables(self)):
            track_variable(self, start)

    def load_own_variables(self, store: Any) -> None:
        # Read now: the store may be a file that closes after this call.
        values = [np.asarray(store[str(i)]) for i in range(len(store.keys()))]
        if not self.built and len(values) > len(self.variables):
            # Keras skips every variable of an optimizer that is not built
            # yet (a pickled or separately saved optimizer). Restore the
            # counter and the base rate now, and the rest once it is built.
            for variable, value in zip(self.variables, values):
                variable.assign(value)
            self._pending_values = values
            return
        self._restore(values)

    def _restore(self, values: list[np.ndarray]) -> None:
        if (
            self._cycle_start is not None
            and not self._keeps_start
            and self.built
            and len(values) == len(self.variables) + 1
        ):
            # State saved after a restart, loaded into an optimizer made from
            # the original arguments (a backup): it holds the restart point.
            self._track_start()
        variables = self.variables
        start = self._cycle_start
        if self._keeps_start and self.built and len(values) == len(variables) - 1:
            # State saved before the first restart: the schedule from update 0.
            start.assign(0)
            variables = [v for v in variables if v is not start]
        variables = _legacy_layouts.variables_for(self, variables, len(values)) or (
            variables
        )
        if len(values) != len(variables):
            warnings.warn(
                f"Skipping variable loading for optimizer '{self.name}', "
                f"because it has {len(variables)} variables whereas the saved "
                f"optimizer has {len(values)} variables.",
                stacklevel=3,
            )
            return
        for variable, value in zip(variables, values):
            variable.assign(value)
        self._restores += 1
        self._log_bounds()

    # The update hooks (see `_keras_private.HOOKS`).

    def _schedule_at(self, step: Any) -> tuple[Tensor, Tensor | None]:
        """The rate of the update that follows `step` applied updates, and the
        weight of a cycled momentum (`None` when it does not cycle)."""
        step = ops.convert_to_tensor(step, dtype=raw_iterations(self).dtype)
        if self._policy is not None:
            if self._keeps_start:
                step = ops.maximum(step - self._cycle_start, 0)
            rate, weight = self._policy(step, stock_rate(self), self._max_lr)
            return rate, weight if self._momentum_argument else None
        if isinstance(stock_rate(self), _Schedule):
            return stock_rate(self)(step), None
        rate = ops.cast(super()._get_current_learning_rate(), "float32")
        return ops.broadcast_to(rate, ops.shape(step)), None

    def _rate_at(self, step: Any) -> Tensor:
        """The rate of the update that follows `step` applied updates (a
        number or an array of them)."""
        return self._schedule_at(step)[0]

    def _momentum_at(self, step: Any) -> Tensor:
        """The momentum of the update that follows `step` applied updates."""
        assert self._policy is not None
        return self._policy.momentum_of(self._schedule_at(step)[1])

    def _backend_apply_gradients(
        self, grads: list[Tensor], trainable_variables: list[Any]
    ) -> Any:
        if self._policy is None:
            return super()._backend_apply_gradients(grads, trainable_variables)
        # The schedule is evaluated once per update, inside the compiled step,
        # for everything that reads it during the update: the rate of the
        # update rule and of weight decay, and a cycled momentum.
        object.__setattr__(self, "_step_values", self._schedule_at(self.iterations))
        self._traced = True
        try:
            return super()._backend_apply_gradients(grads, trainable_variables)
        finally:
            object.__setattr__(self, "_step_values", None)

    def _backend_update_step(
        self, grads: list[Tensor], trainable_variables: list[Any], learning_rate: Tensor
    ) -> Any:
        if self._momentum_argument is None:
            return super()._backend_update_step(
                grads, trainable_variables, learning_rate
            )
        # The stock rule reads its momentum from its attribute: for this
        # update that attribute is the cycled value, computed from the same
        # counter as the rate.
        assert self._step_values is not None and self._policy is not None
        assert self._momentum_variable is not None
        _, weight = self._step_values
        self._momentum_variable.assign(self._policy.momentum_of(weight))
        with _momentum.swapped(self, self._momentum_argument, self._momentum_variable):
            return super()._backend_update_step(
                grads, trainable_variables, learning_rate
            )

    def _get_current_learning_rate(self) -> Tensor:
        if self._policy is None:
            return super()._get_current_learning_rate()
        if self._step_values is not None:  # within an update
            return self._step_values[0]
        # `iterations` counts applied updates, also under gradient accumulation.
        return self._rate_at(self.iterations)

    # Reading and setting the rate.

    @property
    def learning_rate(self) -> Tensor:
        """The floor of the schedule: the rate passed as `learning_rate` (in
        mode "one_cycle" the start), as the 2017 optimizers' `lr` held it.

        With `clr` or `decay`, assigning a positive number `v` sets the floor
        to `v` and scales the rest of the schedule (`max_lr`; in mode
        "one_cycle" the peak and the final rate) by the same factor, so the
        shape of the cycle and where it stands do not change; a cycled
        momentum is unchanged. `ReduceLROnPlateau` and
        `LearningRateScheduler` therefore scale the whole cycle, and
        `opt.learning_rate = opt.learning_rate` changes nothing. During an
        update (where Keras's update rule reads this property) it is the
        rate of that update. Without `clr` and `decay`, it is stock Keras.
        """
        if self._policy is None:
            return _STOCK_LEARNING_RATE.fget(self)
        if self._step_values is not None:  # read by the update rule
            return self._step_values[0]
        # A value, not the variable: assigning the variable directly would
        # move the floor without scaling the rest of the schedule.
        return ops.copy(stock_rate(self))

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        if self._policy is None:
            _STOCK_LEARNING_RATE.fset(self, value)
            return
        if callable(value):
            raise TypeError(
                "With `clr` or `decay` the optimizer computes its own schedule; "
                "assign a number (the floor, which scales the schedule), not a "
                f"schedule or a function. Received: learning_rate={value!r}."
            )
        value = as_number(value)
        floor = float(ops.convert_to_numpy(stock_rate(self)))
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
        self._rescale(value / floor, value)

    @property
    def lr(self) -> Tensor:
        """The old name of `learning_rate`, for reading and assigning."""
        return self.learning_rate

    @lr.setter
    def lr(self, value: Any) -> None:
        self.learning_rate = value

    def _rescale(self, factor: float, value: float) -> None:
        """Multiplies the floor and the peak by `factor`."""
        bounds = [stock_rate(self)]
        if self._max_lr is not None:
            bounds.append(self._max_lr)
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
        self._log_bounds()

    def _log_bounds(self) -> None:
        """Notes the bounds in use from the current update count on, so that
        the rates of past updates can be told on the host (the monitor).

        The notes stay in order of count: a note replaces those at its count
        or later (a later one belongs to a run that a restore rolled back)."""
        if self._policy is None:
            return
        count = int(ops.convert_to_numpy(self.iterations))
        while self._bounds_log and self._bounds_log[-1][0] >= count:
            self._bounds_log.pop()
        floor = float(ops.convert_to_numpy(stock_rate(self)))
        peak = None
        if self._max_lr is not None:
            peak = float(ops.convert_to_numpy(self._max_lr))
        self._bounds_log.append((count, floor, peak, self._start(), self._policy))

    def restart(
        self,
        learning_rate: float | None = None,
        max_lr: float | None = None,
        **clr: Any,
    ) -> None:
        """Restarts the schedule at the current update, as if training began
        here: the next update uses the schedule's first rate.

        Optionally with new bounds (`learning_rate`, the floor, and
        `max_lr`) and new `clr` keys, such as `step_size`. The bounds and
        the restart point are optimizer variables, which a saved model or a
        backup resumes with; the bounds take effect at once, also in a
        compiled training step. A training step compiled before the first
        restart, or before new keys, uses them once it is built anew
        (`model.make_train_function(force=True)`, which the `RestartCycle`
        callback calls; otherwise a warning says so).

        Example:

        ```python
        opt = SGD(learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 4})
        opt.iterations.assign(6)
        opt.restart(max_lr=0.05, step_size=2)
        opt.learning_rates(5)  # from update 7 on: 0.01, 0.03, 0.05, 0.03, 0.01
        ```
        """
        floor, peak, policy = self._restarted(learning_rate, max_lr, clr)
        first = not self._keeps_start
        self._track_start()
        stock_rate(self).assign(floor)
        self._max_lr.assign(peak)
        # A number, not the counter's array: JAX must not see two variables
        # share one buffer.
        self._cycle_start.assign(int(ops.convert_to_numpy(self.iterations)))
        self._use(policy, clr, first)
        self._log_bounds()

    def _restarted(
        self, learning_rate: float | None, max_lr: float | None, clr: dict[str, Any]
    ) -> tuple[float, float, Policy]:
        """The bounds and the policy that `restart` sets, checked."""
        if self._policy is None or self._max_lr is None:
            raise ValueError(
                "`restart` needs a schedule: the optimizer was made without "
                "`clr`, so it has no cycle to restart."
            )
        floor = shortest_float(stock_rate(self))
        if learning_rate is not None:
            floor = as_number(learning_rate)
            floor = check_number("learning_rate", floor, positive=False)
        peak = shortest_float(self._max_lr)
        if max_lr is not None:
            peak = check_number("max_lr", as_number(max_lr))
        check_bounds(floor, peak, "learning_rate", "max_lr")
        if learning_rate is not None and isinstance(self._policy, Chain):
            raise ValueError(
                "`restart(learning_rate=...)`: the pieces of a chain have floors "
                "of their own; give them in `policies`. Received: "
                f"learning_rate={learning_rate}."
            )
        if not clr:
            return floor, peak, self._policy
        for key in ("momentum", "max_lr"):
            if key in clr:
                raise ValueError(
                    "`restart` takes `max_lr` as its own argument and keeps the "
                    f"optimizer's momentum; it cannot change `clr[{key!r}]`."
                )
        config = self.clr
        assert config is not None
        for key in clr:  # a key given replaces those it excludes
            for other in _EXCLUDED.get(key, ()):
                config.pop(other, None)
        policy, _ = parse(
            {**config, **clr, "max_lr": peak}, learning_rate=floor, decay=self.decay
        )
        assert policy is not None
        policy.check(floor, raw_iterations(self).dtype)
        return floor, peak, policy

    def _use(self, policy: Policy, changed: dict[str, Any], first: bool) -> None:
        """Makes `policy` the schedule's configuration (after the first
        restart, `first`, the step also reads the restart point)."""
        if policy == self._policy:
            policy = self._policy  # the same: nothing to rebuild
        if self._traced and (first or policy is not self._policy):
            what = "the first restart" if first else "the new configuration"
            if policy is not self._policy:
                what += f" ({', '.join(sorted(changed))})"
            warnings.warn(
                f"A training step that is already compiled uses {what} once it "
                "is built anew: call `model.make_train_function(force=True)` "
                "(the `RestartCycle` callback does).",
                stacklevel=3,
            )
        self._policy = policy

    # Reporting.

    def _start(self) -> int:
        """The update count at which the schedule (re)started."""
        if not self._keeps_start:
            return 0
        return int(ops.convert_to_numpy(self._cycle_start))

    def learning_rates(self, updates: int) -> np.ndarray:
        """The rate of each of the first `updates` updates, without training.

        Computed by the same function as the training step, from the current
        bounds; entry `k` is the rate of update `k + 1` of the schedule,
        counted from its start (after `restart`, from the restart).
        """
        updates = check_count("updates", updates)
        if self._policy is None and isinstance(stock_rate(self), _Schedule):
            return schedule_rates(stock_rate(self), np.arange(updates))
        rates = self._rate_at(np.arange(updates) + self._start())
        return np.asarray(ops.convert_to_numpy(rates), dtype=np.float64)

    def momentum_values(self, updates: int) -> np.ndarray:
        """The momentum of each of the first `updates` updates, when
        `clr['momentum']` cycles it; entry `k` is that of update `k + 1`."""
        if self._momentum_argument is None:
            raise ValueError(
                "The momentum does not cycle: pass "
                "clr={..., 'momentum': (lowest, highest)}."
            )
        updates = check_count("updates", updates)
        values = self._momentum_at(np.arange(updates) + self._start())
        return np.asarray(ops.convert_to_numpy(values), dtype=np.float64)

    @property
    def clr(self) -> dict[str, Any] | None:
        """The normalised `clr` dict, every default filled in (`None` without)."""
        config = None if self._policy is None else self._policy.to_clr()
        if config is None:
            return None
        # `max_lr` as the training step uses it: an assignment rescales it,
        # and restored state (a backup loaded into an optimizer built from
        # the original arguments) can differ from the arguments.
        used = np.float32(ops.convert_to_numpy(self._max_lr))
        if used != np.float32(config["max_lr"]):
            assert self._policy is not None
            config = self._policy.to_clr(shortest_float(used))  # every bound
            assert config is not None
        return config

    @property
    def decay(self) -> float:
        """Time-based decay of the floor of the cycle (0 for none)."""
        return 0.0 if self._policy is None else self._policy.decay

    @property
    def current_lr(self) -> float:
        """The rate the most recent update used.

        Before any update, and right after `restart`, the rate the next
        update will use.
        """
        # Keras evaluates its own schedules at the raw call count.
        counter = self.iterations if self._policy is not None else raw_iterations(self)
        applied = int(ops.convert_to_numpy(counter))
        return shortest_float(self._rate_at(max(applied - 1, 0)))

    @property
    def current_momentum(self) -> float | None:
        """The momentum the most recent update used, when `clr['momentum']`
        cycles it (before any update, the one the first will use); else `None`.
        """
        if self._momentum_argument is None:
            return None
        applied = int(ops.convert_to_numpy(self.iterations))
        return shortest_float(self._momentum_at(max(applied - 1, 0)))

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        if isinstance(stock_rate(self), keras.Variable):
            config["learning_rate"] = shortest_float(stock_rate(self))
        config.update(
            {
                "clr": self.clr,
                "decay": self.decay,
                "iterations": int(ops.convert_to_numpy(self.iterations)),
                "current_lr": self.current_lr,
            }
        )
        if self._momentum_argument is not None:
            config["current_momentum"] = self.current_momentum
        if self._keeps_start:
            config["cycle_start"] = self._start()
        return config

    @classmethod
    def from_config(
        cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None
    ) -> Any:
        start = config.get("cycle_start")
        config = {k: v for k, v in config.items() if k not in STATE_KEYS}
        # A custom scale function is found among `custom_objects` as well as
        # in Keras's registry and any custom-object scope around the call.
        with _scale_fn.also_found_in(custom_objects):
            optimizer = super().from_config(config, custom_objects=custom_objects)
        if start is not None and optimizer._cycle_start is not None:
            # Restarted: its state holds the restart point, which loading the
            # state restores (a config alone starts the count at 0, and so the
            # schedule).
            optimizer._track_start()
        return optimizer
