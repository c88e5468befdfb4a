"""`CyclicalOptimizer`: what turns a Keras optimizer class into a CLR one.

The mixin goes before a stock Keras optimizer class in the bases and leaves
the update rule alone (on PyTorch, it may run the rule as `_torch_rules`
restates it). Inside the compiled step Keras reads the rate through
the `learning_rate` property (and `_get_current_learning_rate()`); the mixin
answers with the rate its schedule computes from the optimizer's own counter,
once per update. With groups (`_groups`), each group's variables are
updated, and weight-decayed, at the group's rate: the rule runs once per
group. It keeps what talks to Keras: construction (`_arguments`),
the hooks, the variables (`_layouts`) and the config. The schedule is a
`ScheduleState` (`_state`), its formulas the policy layer's (`_policies`).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

from clr_optimizers import (
    _arguments,
    _docs,
    _groups,
    _keras_private,
    _layouts,
    _momentum,
)
from clr_optimizers._checks import check_count
from clr_optimizers._keras_private import (
    moved_in_keras_3_10,
    per_call_state,
    raw_iterations,
    stock_rate,
    track_variable,
    tracked_variables,
)
from clr_optimizers._policies import _scale_fn
from clr_optimizers._policies._base import schedule_rates
from clr_optimizers._state import NO_CYCLE, ScheduleState, shortest_float
from clr_optimizers._types import Tensor

_Schedule = keras.optimizers.schedules.LearningRateSchedule
_STOCK_LEARNING_RATE = keras.optimizers.Optimizer.learning_rate


def _from_keras(module: str) -> bool:
    """Whether `module` is Keras's own (its saving reads every attribute)."""
    return module == "keras" or module.startswith("keras.")


# Keys that describe the optimizer's state, not its configuration.
STATE_KEYS = ("iterations", "current_lr", "current_momentum", "cycle_start")

if TYPE_CHECKING:  # Keras ships no types: to mypy its classes are `Any`
    from keras.optimizers import Optimizer as _OptimizerBase
else:
    _OptimizerBase = object


class CyclicalOptimizer(_OptimizerBase):
    """Adds `clr=`, `groups=`, `lr=` and a working `decay=` to a Keras
    optimizer class."""

    _state: ScheduleState | None
    _momentum_argument: str | None
    _momentum_variable: _momentum.CycledValue | None
    _pending_values: _layouts.Saved | None
    _step_values: tuple[Tensor, Tensor | None] | None
    # Within an update with groups: each group's rate, the optimizer's first.
    _step_rates: list[Tensor] | None
    # The group of each variable the optimizer updates, by its index.
    _group_of: list[int] | None
    _traced: bool
    # On PyTorch, `cyclical()` sets this to the restatement of the base
    # class's fused rule that reads nothing on the host (`_torch_rules`),
    # where Keras's does; it then runs instead of Keras's.
    _tensor_rule: Any = None

    def __init__(
        self,
        *args: Any,
        clr: dict[str, Any] | None = None,
        groups: list[dict[str, Any]] | None = None,
        lr: float | None = None,
        decay: float | None = None,
        **kwargs: Any,
    ) -> None:
        extra = {"clr": clr, "groups": groups, "lr": lr, "decay": decay}
        bound = _arguments.bind(
            self, CyclicalOptimizer, super().__init__, args, kwargs, extra
        )
        super().__init__(*bound.args, **bound.kwargs)
        self._momentum_argument = bound.momentum_argument
        self._momentum_variable = None
        self._pending_values = None
        self._step_values = None
        self._step_rates = None
        self._group_of = None
        self._traced = False
        state = None
        if bound.policy is not None:
            _momentum.check_stored(self, self._momentum_argument, bound.policy)
            state = ScheduleState(
                bound.policy,
                stock_rate(self),
                raw_iterations(self).dtype,
                scope=lambda: keras.name_scope(self.name, caller=self),
                cycled_momentum=self._momentum_argument is not None,
                groups=bound.groups,
            )
            state.note(self._count())
        # Not an attribute Keras tracks: its variables join the optimizer's
        # when it is built, after the stock ones.
        object.__setattr__(self, "_state", state)

    @property
    def schedule_state(self) -> ScheduleState | None:
        """The schedule's state (`None` without `clr` and `decay`)."""
        return self._state

    def _count(self) -> int:
        """Updates applied so far (under gradient accumulation, not calls)."""
        return int(ops.convert_to_numpy(self.iterations))

    # Variables and saved state.

    def build(self, variables: list[Any]) -> None:
        state = self._state
        if state is not None and state.groups:
            # Checked first: a selection that fails leaves it unbuilt. In the
            # order of Keras's variable index.
            paths = [variable.path for variable in variables]
            self._group_of = _groups.assign(state.groups, paths)
        super().build(variables)
        if self._momentum_argument is not None and self._momentum_variable is None:
            assert state is not None and state.policy.momentum is not None
            # Set by every update before the update rule reads it.
            self._momentum_variable = _momentum.variable(
                self, self._momentum_argument, state.policy.momentum[1]
            )
        if state is not None:
            for variable in state.variables:
                if all(v is not variable for v in tracked_variables(self)):
                    track_variable(self, variable)
        pending, self._pending_values = self._pending_values, None
        if pending is not None:  # read and assigned now, not in a trace
            with _keras_private.eagerly():
                self._restore(pending)

    def save_own_variables(self, store: Any) -> None:
        super().save_own_variables(store)
        if self._state is not None:
            _layouts.write_version(store)

    def load_own_variables(self, store: Any) -> None:
        # Read now: the store may be a file that closes after this call.
        saved = _layouts.read(store)
        if not self.built and len(saved.values) > len(self.variables):
            # Keras skips every variable of an optimizer that is not built
            # yet (a pickled or separately saved optimizer). Restore the
            # counter and the base rate now, and the rest once it is built.
            for variable, value in zip(self.variables, saved.values):
                variable.assign(value)
            self._pending_values = saved
            return
        self._restore(saved)

    def _restore(self, saved: _layouts.Saved) -> None:
        state = self._state
        own = [] if state is None else state.variables
        momentum = self._momentum_variable
        restored = _layouts.restore(
            saved, self.variables, self.name, own, momentum, self._moved()
        )
        if restored and state is not None:
            state.restores += 1
            state.note(self._count())

    def _moved(self) -> _layouts.Moved | None:
        """Nadam's `u_product`, which Keras 3.10 moved after the slot
        variables (`_layouts.keras_order`), with the value it holds after
        `n` updates: the product of `beta_1 * (1 - 0.5 * 0.96**t)` over
        t = 1 ... n, with the cycled momentum where it cycles."""
        found = moved_in_keras_3_10(self)
        if found is None:
            return None
        counter = id(raw_iterations(self))

        def expected(paired: list[tuple[Any, Any]]) -> float:
            n = next(int(np.asarray(v)) for var, v in paired if id(var) == counter)
            steps = np.arange(1, n + 1)
            state = self._state
            cycled = None if state is None else state.used(steps - 1).momentums
            betas = (
                np.full(n, float(ops.convert_to_numpy(self.beta_1)))
                if cycled is None
                else cycled
            )
            return float(np.prod(betas * (1 - 0.5 * 0.96**steps)))

        return (*found, expected)

    # The update hooks (see `_keras_private.HOOKS`).

    def _backend_apply_gradients(
        self, grads: list[Tensor], trainable_variables: list[Any]
    ) -> Any:
        if self._state is None:
            return super()._backend_apply_gradients(grads, trainable_variables)
        # The schedule is evaluated once per update, inside the compiled step,
        # for everything that reads it during the update: the rate of the
        # update rule and of weight decay, and a cycled momentum.
        rates, weight = self._state.each(self.iterations)
        momentum = None if weight is None else self._state.momentum_of(weight)
        object.__setattr__(self, "_step_values", (rates[0], momentum))
        object.__setattr__(self, "_step_rates", rates if len(rates) > 1 else None)
        self._traced = True
        try:
            return super()._backend_apply_gradients(grads, trainable_variables)
        finally:
            object.__setattr__(self, "_step_values", None)
            object.__setattr__(self, "_step_rates", None)

    def _by_group(
        self, variables: list[Any], *others: list[Any]
    ) -> Iterator[tuple[Tensor | None, list[Any], tuple[list[Any], ...]]]:
        """`variables` (and the lists `others` in step with them) split by
        group, each with its group's rate, which the update reads meanwhile
        (as `learning_rate`); without groups, all at once with `None`."""
        rates, group_of = self._step_rates, self._group_of
        if rates is None or group_of is None:
            yield None, variables, others
            return
        positions: dict[int, list[int]] = {}
        for position, variable in enumerate(variables):
            group = group_of[self._get_variable_index(variable)]
            positions.setdefault(group, []).append(position)
        assert self._step_values is not None
        base = self._step_values
        try:
            for group, chosen in sorted(positions.items()):
                rate = rates[group]
                object.__setattr__(self, "_step_values", (rate, base[1]))
                subsets = tuple([values[p] for p in chosen] for values in others)
                yield rate, [variables[p] for p in chosen], subsets
        finally:
            object.__setattr__(self, "_step_values", base)

    def _apply_weight_decay(self, variables: list[Any]) -> Any:
        for _, chosen, _ in self._by_group(variables):
            super()._apply_weight_decay(chosen)

    def _backend_update_step(
        self, grads: list[Tensor], trainable_variables: list[Any], learning_rate: Tensor
    ) -> Any:
        # The stock rule reads its momentum from its attribute: for this
        # update, the cycled value (when it cycles).
        momentum = None if self._step_values is None else self._step_values[1]
        name, variable = self._momentum_argument, self._momentum_variable
        with _momentum.swapped(self, name, variable, momentum):
            # The rule runs once per group; what it advances once per call
            # (Nadam's product of momentum factors) starts each call from its
            # value before the update, so that every group sees the same.
            advanced = [] if self._step_rates is None else per_call_state(self)
            before = [ops.copy(state.value) for state in advanced]
            groups = self._by_group(trainable_variables, grads)
            for index, (rate, chosen, (chosen_grads,)) in enumerate(groups):
                for state, value in zip(advanced, before if index else ()):
                    state.assign(value)
                rate = learning_rate if rate is None else rate
                if self._tensor_rule is not None:
                    self._tensor_rule(chosen_grads, chosen, rate)
                else:
                    super()._backend_update_step(chosen_grads, chosen, rate)

    def _get_current_learning_rate(self) -> Tensor:
        if self._state is None:
            return super()._get_current_learning_rate()
        if self._step_values is not None:  # within an update
            return self._step_values[0]
        # `iterations` counts applied updates, also under gradient accumulation.
        return self._state(self.iterations)[0]

    # Reading and setting the rate.

    @property
    def learning_rate(self) -> Tensor:
        """The floor of the schedule, the rate passed as `learning_rate` (in
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
        if self._state is None or self._step_values is not None:
            # Stock, or read by the update rule: `_get_current_learning_rate`.
            return _STOCK_LEARNING_RATE.fget(self)
        # A value, not the variable: assigning the variable directly would
        # move the floor without scaling the rest of the schedule.
        return ops.copy(self._state.floor)

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        if self._state is None:
            _STOCK_LEARNING_RATE.fset(self, value)
            return
        if callable(value):
            raise TypeError(
                "With `clr` or `decay` the optimizer computes its own schedule; "
                "assign a number (the floor, which scales the schedule), not a "
                f"schedule or a function. Received: learning_rate={value!r}."
            )
        self._state.rescale(value, self._count())

    @property
    def lr(self) -> Tensor:
        """The old name of `learning_rate`, for reading and assigning.

        With `clr` or `decay`, the first read outside an update warns once
        (a `UserWarning`): code ported from the 2017 callback reads `lr` to
        log the rate, and gets the floor, not the rate of the last update
        (`current_lr`, or `LearningRateMonitor`)."""
        if (
            self._state is not None
            and self._step_values is None
            and not getattr(self, "_lr_read", False)
            # Keras's saving reads every attribute; the warning is for users.
            and not _from_keras(sys._getframe(1).f_globals.get("__name__", ""))
        ):
            self._lr_read = True
            warnings.warn(
                f"{type(self).__name__}.lr is the floor of the schedule (the "
                "rate passed as `learning_rate`), not the rate of the last "
                "update: to log the rate the optimizer uses, read `current_lr` "
                "or record it with clr_optimizers.LearningRateMonitor. (To read "
                "or scale the floor, `learning_rate` does it without this "
                "warning.)",
                UserWarning,
                stacklevel=2,
            )
        return self.learning_rate

    @lr.setter
    def lr(self, value: Any) -> None:
        self.learning_rate = value

    def restart(
        self,
        learning_rate: float | None = None,
        max_lr: float | None = None,
        **clr: Any,
    ) -> None:
        """Restarts the schedule at the current update, as if training began
        here: the next update uses the schedule's first rate.

        Optionally with new bounds (`learning_rate`, the floor, and `max_lr`)
        and new `clr` keys, such as `step_size`. The bounds and the restart
        point are variables: they take effect at once, also in a compiled
        step, from any callback (through `self.model.optimizer`, which on JAX
        brings the optimizer's state up to date first), and a saved model or
        backup resumes with them. A step compiled before new keys uses them
        once built anew, `model.make_train_function(force=True)`
        (`RestartCycle` calls it; otherwise a warning says so).

        Example:

        ```python
        opt = SGD(learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 4})
        opt.iterations.assign(6)
        opt.restart(max_lr=0.05, step_size=2)
        opt.learning_rates(5)  # from update 7 on: 0.01, 0.03, 0.05, 0.03, 0.01
        ```
        """
        state = self._state
        if state is None:
            raise ValueError(NO_CYCLE)
        state.restart(self._count(), learning_rate, max_lr, clr, warn=self._traced)

    # Reporting.

    def learning_rates(self, updates: int, group: str | None = None) -> np.ndarray:
        """The rate of each of the first `updates` updates, without training.

        Computed by the same function as the training step, from the current
        bounds; entry `k` is the rate of update `k + 1` of the schedule,
        counted from its start (after `restart`, from the restart). The
        rates of the optimizer's own bounds (the variables that no group
        selects), or with `group`, of the group of that name.
        """
        updates = check_count("updates", updates)
        if self._state is not None:
            counts = self._state.start_value + np.arange(updates)
            return self._state.rates(counts, group)
        if group is not None:
            raise ValueError(f"No group is named {group!r}: there are no groups.")
        if isinstance(stock_rate(self), _Schedule):
            return schedule_rates(stock_rate(self), np.arange(updates))
        return np.full(updates, self.current_lr)

    def momentum_values(self, updates: int) -> np.ndarray:
        """The momentum of each of the first `updates` updates, when
        `clr['momentum']` cycles it; entry `k` is that of update `k + 1`."""
        updates = check_count("updates", updates)
        if self._state is None or not self._state.cycled_momentum:
            raise ValueError(
                "The momentum does not cycle: pass "
                "clr={..., 'momentum': (lowest, highest)}."
            )
        return self._state.momentums(self._state.start_value + np.arange(updates))

    @property
    def clr(self) -> dict[str, Any] | None:
        """The normalised `clr` dict, every default filled in (`None` without)."""
        return None if self._state is None else self._state.config()

    @property
    def decay(self) -> float:
        """Time-based decay of the floor of the cycle (0 for none)."""
        return 0.0 if self._state is None else self._state.policy.decay

    @property
    def current_lr(self) -> float:
        """The rate the most recent update used (with groups, the rate of the
        optimizer's own bounds: of the variables that no group selects).

        Before any update, and right after `restart`, the rate the next
        update will use.
        """
        if self._state is not None:
            return shortest_float(self._state.rates(max(self._count() - 1, 0)))
        rate = stock_rate(self)
        if isinstance(rate, _Schedule):  # evaluated at the raw call count
            count = int(ops.convert_to_numpy(raw_iterations(self)))
            return shortest_float(
                schedule_rates(rate, np.array([max(count - 1, 0)]))[0]
            )
        return shortest_float(ops.cast(super()._get_current_learning_rate(), "float32"))

    @property
    def current_momentum(self) -> float | None:
        """The momentum the most recent update used, when `clr['momentum']`
        cycles it (before any update, the one the first will use); else `None`.
        """
        if self._state is None or not self._state.cycled_momentum:
            return None
        return shortest_float(self._state.momentums(max(self._count() - 1, 0)))

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        if isinstance(stock_rate(self), keras.Variable):
            config["learning_rate"] = shortest_float(stock_rate(self))
        config.update(clr=self.clr, decay=self.decay, iterations=self._count())
        config["current_lr"] = self.current_lr
        momentum = self.current_momentum
        if momentum is not None:
            config["current_momentum"] = momentum
        if self._state is not None and self._state.start_value:
            config["cycle_start"] = self._state.start_value
        if self._state is not None and self._state.groups:
            config["groups"] = self._state.groups_config()
        return config

    @classmethod
    def from_config(
        cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None
    ) -> Any:
        # The state keys describe a run, which loading the state restores. A
        # custom scale function is also found among `custom_objects`.
        config = {k: v for k, v in config.items() if k not in STATE_KEYS}
        with _scale_fn.also_found_in(custom_objects):
            return super().from_config(config, custom_objects=custom_objects)


_keras_private.patch_loss_scale_loading(
    lambda inner: isinstance(inner, CyclicalOptimizer)
)
CyclicalOptimizer.__doc__ = f"""{CyclicalOptimizer.__doc__}

{_docs.ARGUMENTS}"""
