"""`CyclicalOptimizer`: what turns a Keras optimizer class into a CLR one.

The mixin goes before a stock Keras optimizer class in the bases. It leaves
the update rule alone and changes only where the optimizer reads its learning
rate: Keras asks `_get_current_learning_rate()` during each update, inside the
compiled step, and this mixin answers with the rate computed from the
optimizer's own iteration counter. A cycled momentum reaches the same stock
rule through its `momentum` or `beta_1` attribute, which holds the cycled
value while the rule runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import numbers
import operator
import warnings

import keras
import numpy as np
from keras import ops

from clr_optimizers._config import FLOAT32_MAX, check_number, normalize_clr
from clr_optimizers._schedule import decayed_rate, int_max, schedule, step_fractions

_Schedule = keras.optimizers.schedules.LearningRateSchedule

_STOCK_LEARNING_RATE = keras.optimizers.Optimizer.learning_rate

# Keys that describe the optimizer's state, not its configuration.
STATE_KEYS = ("iterations", "current_lr", "current_momentum")
# The argument of a stock optimizer that a cycled momentum replaces, in order
# of preference: SGD's and RMSprop's `momentum`, the Adam family's `beta_1`.
MOMENTUM_ARGUMENTS = ("momentum", "beta_1")


def _shortest_float(value) -> float:
    """A float32 value as the shortest Python float that rounds back to it:
    0.034975, not 0.034974999725818634."""
    return float(str(np.float32(ops.convert_to_numpy(value))))


def _init_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The named arguments `cls(...)` accepts, following `**kwargs` up the MRO
    (a subclass that passes `**kwargs` on accepts its parent's arguments)."""
    params: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if klass is CyclicalOptimizer or "__init__" not in vars(klass):
            continue
        passes_on = False
        signature = inspect.signature(vars(klass)["__init__"])
        for name, param in list(signature.parameters.items())[1:]:
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                passes_on = True
            elif param.kind is not inspect.Parameter.VAR_POSITIONAL:
                params.setdefault(name, param)
        if not passes_on:
            break
    return params


def _reject_unknown_arguments(class_name, params, kwargs):
    """Names an unknown keyword argument, with the closest valid one."""
    unknown = [name for name in kwargs if name not in params]
    if not unknown:
        return
    valid = [*params, "clr", "lr", "decay"]
    name = unknown[0]
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"{class_name} got an unknown argument {name!r}={kwargs[name]!r}.{hint} "
        f"Valid arguments: {', '.join(valid)}."
    )


class _CycledValue(keras.Variable):
    """A hyperparameter that changes with every update (a cycled momentum),
    put in the place of the stock optimizer's float attribute while it
    updates.

    Stock update rules read that attribute both as a number and in Python
    tests such as `if self.momentum != 0:`, which decide whether momentum is
    used at all. Compared with a Python number, this variable answers as its
    largest value (momentum is in use); in every other use it is its current
    value.
    """

    def __init__(self, *args, largest: float, **kwargs):
        super().__init__(*args, **kwargs)
        self._largest = largest

    def _compare(self, other, python, tensor):
        if isinstance(other, numbers.Real):
            return python(self._largest, other)
        return tensor(other)

    def __eq__(self, other):
        return self._compare(other, operator.eq, super().__eq__)

    def __ne__(self, other):
        return self._compare(other, operator.ne, super().__ne__)

    def __lt__(self, other):
        return self._compare(other, operator.lt, super().__lt__)

    def __le__(self, other):
        return self._compare(other, operator.le, super().__le__)

    def __gt__(self, other):
        return self._compare(other, operator.gt, super().__gt__)

    def __ge__(self, other):
        return self._compare(other, operator.ge, super().__ge__)


class CyclicalOptimizer:
    """Adds `clr=`, `lr=` and a working `decay=` to a Keras optimizer class."""

    def __init__(self, *args, clr=None, lr=None, decay=None, **kwargs):
        signature = inspect.signature(super().__init__)
        try:
            bound = signature.bind_partial(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{type(self).__name__}: {error}") from None
        # Every argument by name, so that `learning_rate` is found also when a
        # subclass takes it through `**kwargs`.
        args, kwargs = (), {}
        for name, value in bound.arguments.items():
            kind = signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                kwargs.update(value)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                args = value
            else:
                kwargs[name] = value
        params = _init_parameters(type(self))
        _reject_unknown_arguments(type(self).__name__, params, kwargs)
        learning_rate_given = "learning_rate" in kwargs or lr is not None
        if lr is not None:
            if "learning_rate" in kwargs:
                raise ValueError(
                    "Pass either `learning_rate` or its old spelling `lr`, not "
                    f"both. Received: learning_rate={kwargs['learning_rate']!r}, "
                    f"lr={lr!r}."
                )
            kwargs["learning_rate"] = lr
        learning_rate = kwargs.get("learning_rate", params["learning_rate"].default)
        decay = 0.0 if decay is None else check_number("decay", decay, positive=False)

        if isinstance(learning_rate, _Schedule) or (
            callable(learning_rate) and not isinstance(learning_rate, keras.Variable)
        ):
            if clr is not None or decay:
                raise TypeError(
                    "With `clr` or `decay`, `learning_rate` must be a plain number "
                    "(the bottom of the cycle). Received: "
                    f"learning_rate={learning_rate!r}."
                )
        else:
            learning_rate = check_number("learning_rate", learning_rate, positive=False)
        clr_config, scale_fn, learning_rate = normalize_clr(
            clr, learning_rate, learning_rate_given
        )
        one_cycle = clr_config is not None and clr_config.mode == "one_cycle"
        if one_cycle and decay:
            raise ValueError(
                "`decay` does not apply to mode 'one_cycle', which anneals to its "
                f"own final rate (see `clr['final_div_factor']`). Received: "
                f"decay={decay}."
            )
        momentum_argument = None
        if clr_config is not None and clr_config.momentum is not None:
            momentum_argument = next(
                (name for name in MOMENTUM_ARGUMENTS if name in params), None
            )
            if momentum_argument is None:
                raise ValueError(
                    f"`clr['momentum']`: {type(self).__name__} has no momentum to "
                    f"cycle (it takes none of the arguments "
                    f"{', '.join(MOMENTUM_ARGUMENTS)})."
                )
            # The stock argument is the top of the cycle: the stock code then
            # builds its momentum slots, and the config stays truthful.
            highest = clr_config.momentum[1]
            given = kwargs.get(momentum_argument, highest)
            if not isinstance(given, numbers.Real) or float(given) != highest:
                raise ValueError(
                    f"`{momentum_argument}` and `clr['momentum']` disagree: while "
                    f"the momentum cycles, `{momentum_argument}` is its highest "
                    f"value. Leave `{momentum_argument}` out. Received: "
                    f"{momentum_argument}={given!r}, "
                    f"clr['momentum']={list(clr_config.momentum)}."
                )
            kwargs[momentum_argument] = highest

        kwargs["learning_rate"] = learning_rate
        super().__init__(*args, **kwargs)
        self._clr_config = clr_config
        # The top of the cycle, in a variable so that assigning the learning
        # rate can rescale the schedule (see the `learning_rate` setter). It
        # joins `variables` when the optimizer is built, after the variables
        # of 0.1.0's layout, which had none.
        self._max_lr = None
        if clr_config is not None:
            with keras.name_scope(self.name, caller=self):
                max_lr = keras.Variable(
                    clr_config.max_lr,
                    name="max_learning_rate",
                    dtype=self._learning_rate.dtype,
                    trainable=False,
                    aggregation="only_first_replica",
                )
            object.__setattr__(self, "_max_lr", max_lr)
        self._fraction = None
        if clr_config is not None and not one_cycle:
            counter_max = int_max(self._iterations.dtype)
            self._fraction = step_fractions(*clr_config.half_cycles, counter_max)
        self._scale_fn = scale_fn
        self._decay = decay
        self._momentum_argument = momentum_argument
        self._momentum_variable = None
        self._pending_values = None
        self._step_values = None
        if momentum_argument is not None:
            stored = vars(self).get(momentum_argument)
            if not isinstance(stored, numbers.Real) or float(stored) != highest:
                raise ValueError(
                    f"`clr['momentum']`: {type(self).__name__} takes "
                    f"`{momentum_argument}` but does not keep it as the attribute "
                    f"`self.{momentum_argument}` that its update rule reads, so "
                    "it cannot be cycled."
                )
        if scale_fn is not None:
            self._check_scale_fn()

    def load_own_variables(self, store):
        values = [store[str(i)] for i in range(len(store.keys()))]
        if not self.built and len(values) > len(self.variables):
            # Keras skips every variable of an optimizer that is not built
            # yet (a pickled or separately saved optimizer). Restore the
            # counter and the base rate now, and the rest once it is built.
            for variable, value in zip(self.variables, values):
                variable.assign(value)
            self._pending_values = values
            return
        self._restore(values)

    def _restore(self, values):
        variables = self.variables
        if (
            self._max_lr is not None
            and self._momentum_variable is None
            and self.built
            and len(values) == len(variables) - 1
        ):
            # The stock layout, without `max_lr`: saved by 0.1.0 (which kept
            # `max_lr` only in the config, which has already set it here) or
            # by the stock class. 0.1.0 had no cycled momentum.
            variables = [v for v in variables if v is not self._max_lr]
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

    def build(self, variables):
        super().build(variables)
        if self._momentum_argument is not None and self._momentum_variable is None:
            with keras.name_scope(self.name, caller=self):
                # Set by every update before the update rule reads it.
                self._momentum_variable = _CycledValue(
                    initializer=keras.initializers.Constant(
                        self._clr_config.momentum[1]
                    ),
                    shape=(),
                    dtype="float32",
                    trainable=False,
                    aggregation="only_first_replica",
                    name=f"cycled_{self._momentum_argument}",
                    largest=self._clr_config.momentum[1],
                )
        if self._max_lr is not None and all(
            v is not self._max_lr for v in self._variables
        ):
            self._track_variable(self._max_lr)
        pending, self._pending_values = self._pending_values, None
        if pending is not None:
            self._restore(pending)

    def _check_scale_fn(self):
        counter_max = int_max(self._iterations.dtype)
        for step in (0, 1, min(int(sum(self._clr_config.half_cycles)), counter_max)):
            try:
                rate = float(ops.convert_to_numpy(self._rate_at(int(step))))
            except Exception as error:
                raise ValueError(
                    f"`clr['scale_fn']` {self._clr_config.scale_fn!r} failed on a "
                    "float tensor argument; it must compute with `keras.ops`. "
                    f"Error: {error}"
                ) from error
            if not math.isfinite(rate):
                raise ValueError(
                    f"`clr['scale_fn']` {self._clr_config.scale_fn!r} gave a rate "
                    f"of {rate} at update {int(step)}; the scale must be finite."
                )

    @property
    def _has_own_schedule(self):
        return self._clr_config is not None or bool(self._decay)

    def _schedule_at(self, step):
        """The rate of the update that follows `step` applied updates, and the
        weight of a cycled momentum (`None` when it does not cycle)."""
        step = ops.convert_to_tensor(step, dtype=self._iterations.dtype)
        if self._clr_config is not None:
            rate, weight = schedule(
                step,
                self._learning_rate,
                self._clr_config,
                self._scale_fn,
                self._decay,
                self._fraction,
                self._max_lr,
            )
            return rate, weight if self._momentum_argument else None
        if self._decay:
            return decayed_rate(step, self._learning_rate, self._decay), None
        if isinstance(self._learning_rate, _Schedule):
            return self._learning_rate(step), None
        rate = ops.cast(super()._get_current_learning_rate(), "float32")
        return ops.broadcast_to(rate, ops.shape(step)), None

    def _rate_at(self, step):
        """The rate of the update that follows `step` applied updates (a
        number or an array of them)."""
        return self._schedule_at(step)[0]

    def _momentum_from_weight(self, weight):
        lowest, highest = self._clr_config.momentum
        return highest - (highest - lowest) * weight

    def _momentum_at(self, step):
        """The momentum of the update that follows `step` applied updates."""
        return self._momentum_from_weight(self._schedule_at(step)[1])

    def _backend_apply_gradients(self, grads, trainable_variables):
        if not self._has_own_schedule:
            return super()._backend_apply_gradients(grads, trainable_variables)
        # The schedule is evaluated once per update, inside the compiled step,
        # for everything that reads it during the update: the rate of the
        # update rule and of weight decay, and a cycled momentum.
        object.__setattr__(self, "_step_values", self._schedule_at(self.iterations))
        try:
            return super()._backend_apply_gradients(grads, trainable_variables)
        finally:
            object.__setattr__(self, "_step_values", None)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if self._momentum_argument is None:
            return super()._backend_update_step(
                grads, trainable_variables, learning_rate
            )
        # The stock rule reads its momentum from its attribute: for this
        # update that attribute is the cycled value, computed from the same
        # counter as the rate.
        _, weight = self._step_values or self._schedule_at(self.iterations)
        self._momentum_variable.assign(self._momentum_from_weight(weight))
        name = self._momentum_argument
        stock = getattr(self, name)
        object.__setattr__(self, name, self._momentum_variable)
        try:
            return super()._backend_update_step(
                grads, trainable_variables, learning_rate
            )
        finally:
            object.__setattr__(self, name, stock)

    def _get_current_learning_rate(self):
        if not self._has_own_schedule:
            return super()._get_current_learning_rate()
        if self._step_values is not None:  # within an update
            return self._step_values[0]
        # `iterations` counts applied updates, also under gradient accumulation.
        return self._rate_at(self.iterations)

    @property
    def learning_rate(self):
        """The rate of the next update.

        With `clr` or `decay`, assigning a positive number `v` rescales the
        whole schedule (the floor and `max_lr`; in mode "one_cycle" the start,
        peak and final rate) by `v / learning_rate`, so that the next update
        uses `v`; the position in the cycle and the momentum are unchanged.
        This is what `ReduceLROnPlateau` and `LearningRateScheduler` do.
        Assign between updates (as callbacks do), not inside a compiled
        function: the setter reads the counter.
        """
        return _STOCK_LEARNING_RATE.fget(self)

    @learning_rate.setter
    def learning_rate(self, value):
        if not self._has_own_schedule:
            _STOCK_LEARNING_RATE.fset(self, value)
            return
        if callable(value):
            raise TypeError(
                "With `clr` or `decay` the optimizer computes its own schedule; "
                "assign a number (it rescales the schedule), not a schedule or "
                f"a function. Received: learning_rate={value!r}."
            )
        if (ops.is_tensor(value) or isinstance(value, np.ndarray)) and not len(
            ops.shape(value)
        ):
            value = float(ops.convert_to_numpy(value))
        current = float(ops.convert_to_numpy(self._rate_at(self.iterations)))
        if isinstance(value, numbers.Real) and value == current:
            return  # also at a rate of 0, which no rescaling can change
        value = check_number("learning_rate", value)
        if current == 0:
            raise ValueError(
                "Assigning the learning rate rescales the schedule so that the "
                "next update uses the new rate, but the next update's rate is 0 "
                "(the floor of the cycle is 0, and the cycle is at it): no "
                f"rescaling gives it {value}. Received: learning_rate={value}."
            )
        factor = value / current
        bounds = [self._learning_rate]
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
        if self._clr_config is None:
            return
        # Reported, like the floor, as the shortest float of the value used.
        max_lr = _shortest_float(self._max_lr)
        self._clr_config = dataclasses.replace(self._clr_config, max_lr=max_lr)

    def learning_rates(self, updates: int) -> np.ndarray:
        """The rate of each of the first `updates` updates, without training.

        Computed by the same function as the training step, from the current
        base rate; entry `k` is the rate of update `k + 1`.
        """
        if isinstance(updates, bool) or not isinstance(updates, numbers.Integral):
            raise TypeError(f"`updates` must be an int. Received: {updates!r}.")
        if updates < 1:
            raise ValueError(f"`updates` must be at least 1. Received: {updates}.")
        rates = self._rate_at(np.arange(int(updates)))
        return np.asarray(ops.convert_to_numpy(rates), dtype=np.float64)

    def momentum_values(self, updates: int) -> np.ndarray:
        """The momentum of each of the first `updates` updates, when
        `clr['momentum']` cycles it; entry `k` is that of update `k + 1`."""
        if self._momentum_argument is None:
            raise ValueError(
                "The momentum does not cycle: pass "
                "clr={..., 'momentum': (lowest, highest)}."
            )
        if isinstance(updates, bool) or not isinstance(updates, numbers.Integral):
            raise TypeError(f"`updates` must be an int. Received: {updates!r}.")
        if updates < 1:
            raise ValueError(f"`updates` must be at least 1. Received: {updates}.")
        values = self._momentum_at(np.arange(int(updates)))
        return np.asarray(ops.convert_to_numpy(values), dtype=np.float64)

    @property
    def clr(self) -> dict | None:
        """The normalised `clr` dict, every default filled in (`None` without)."""
        if self._clr_config is None:
            return None
        config = self._clr_config.to_dict()
        # `max_lr` as the training step uses it: an assignment rescales it,
        # and restored state (a backup loaded into an optimizer built from
        # the original arguments) can differ from the arguments.
        used = np.float32(ops.convert_to_numpy(self._max_lr))
        if used != np.float32(config["max_lr"]):
            config["max_lr"] = _shortest_float(used)
        return config

    @property
    def decay(self) -> float:
        """Time-based decay of the floor of the cycle (0 for none)."""
        return self._decay

    @property
    def current_lr(self) -> float:
        """The rate the most recent update used.

        Before any update, the rate the first update will use.
        """
        # Keras evaluates its own schedules at the raw call count.
        counter = self.iterations if self._has_own_schedule else self._iterations
        applied = int(ops.convert_to_numpy(counter))
        return _shortest_float(self._rate_at(max(applied - 1, 0)))

    @property
    def current_momentum(self) -> float | None:
        """The momentum the most recent update used, when `clr['momentum']`
        cycles it (before any update, the one the first will use); else `None`.
        """
        if self._momentum_argument is None:
            return None
        applied = int(ops.convert_to_numpy(self.iterations))
        return _shortest_float(self._momentum_at(max(applied - 1, 0)))

    def get_config(self):
        config = super().get_config()
        if isinstance(self._learning_rate, keras.Variable):
            config["learning_rate"] = _shortest_float(self._learning_rate)
        config.update(
            {
                "clr": self.clr,
                "decay": self._decay,
                "iterations": int(ops.convert_to_numpy(self.iterations)),
                "current_lr": self.current_lr,
            }
        )
        if self._momentum_argument is not None:
            config["current_momentum"] = self.current_momentum
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = {k: v for k, v in config.items() if k not in STATE_KEYS}
        with keras.saving.custom_object_scope(custom_objects or {}):
            return super().from_config(config, custom_objects=custom_objects)


_ARGS_DOC = """
    Args:
        clr: `None` (the stock optimizer) or a dict describing the schedule.
            `learning_rate` is the bottom of a cycle, or where one cycle
            starts. For the cyclical modes:
            `max_lr` (required; the top of the cycle, at least
            `learning_rate`), `step_size` (updates per half cycle), or
            `step_size_up` and `step_size_down` (updates in the rising and the
            falling half; `step_size_down` defaults to `step_size_up`),
            `mode` (`"triangular"`, `"triangular2"`, `"exp_range"` or
            `"modified_triangular2"`; defaults to `"triangular"`), `gamma`
            (for `"exp_range"`, in (0, 1]; defaults to `1.0`),
            `restart_every` (cycles after which the amplitude scale starts
            over; defaults to `3` for `"modified_triangular2"`, else `None`),
            `scale_fn` (the registered name of a custom scale function,
            instead of `mode`) and `scale_mode` (`"cycle"` or `"iterations"`:
            what `scale_fn` receives; defaults to `"cycle"`).
            For `mode="one_cycle"`: `max_lr`, `total_steps` (required),
            `pct_start` (the share of warm-up; defaults to `0.3`),
            `div_factor` (instead of `learning_rate`, which it sets to
            `max_lr / div_factor`; defaults to `25` when neither is given),
            `final_div_factor` (the final rate is `learning_rate /
            final_div_factor`; defaults to `1e4`), `anneal_strategy`
            (`"cos"` or `"linear"`; defaults to `"cos"`) and `three_phase`
            (defaults to `False`); past `total_steps` the final rate holds.
            Any mode: `momentum`, a pair `(lowest, highest)` that cycles the
            optimizer's momentum (`momentum` or `beta_1`) opposite to the
            rate. Defaults to `None`.
        lr: The old spelling of `learning_rate`. Defaults to `None`.
        decay: Time-based decay applied before the cycle:
            `learning_rate / (1 + decay * n)` after `n` updates, which lowers
            the floor of the cycle and never its peak. Not for
            `"one_cycle"`. Defaults to `None`.
        *args, **kwargs: Every argument of `{path}`, with the same defaults.
            Rates may be any plain number. While `clr['momentum']` cycles,
            the momentum argument is its highest value.

    Example:

    ```python
    opt = {name}(learning_rate=0.01, clr={{"max_lr": 0.06, "step_size": 2000}})
    ```
"""

_CLASSES: dict[tuple[type, str, str], type] = {}


def cyclical(
    optimizer_class: type, *, name: str | None = None, package: str = "clr_optimizers"
) -> type:
    """A Keras optimizer class with a cyclical learning rate.

    Returns a subclass of `optimizer_class` (any `keras.optimizers.Optimizer`
    subclass: a stock one such as `keras.optimizers.AdamW` or your own) with
    the same arguments and update rule, that also takes `clr=`, `lr=` and
    `decay=`, reports `clr`, `decay`, `iterations` and `current_lr` (and
    `current_momentum` when `clr` cycles the momentum) in
    `get_config()`, and is registered with Keras as `"{package}>{name}"`, so
    that a model saved with it loads wherever this call has run. The seven
    classes this package exports are made by this function.

    Args:
        optimizer_class: The Keras optimizer class to extend.
        name: The new class's name; defaults to `optimizer_class.__name__`.
            Assign the class to a module-level variable of this name, so that
            pickle finds it.
        package: The prefix of its registered name.

    On the PyTorch backend, a stock optimizer that Keras runs with a fused
    update rule keeps that rule.

    Example:

    ```python
    AdamW = clr_optimizers.cyclical(keras.optimizers.AdamW)
    opt = AdamW(learning_rate=1e-4, clr={"max_lr": 1e-3, "step_size": 2000})
    ```
    """
    if not (
        isinstance(optimizer_class, type)
        and issubclass(optimizer_class, keras.optimizers.Optimizer)
    ):
        raise TypeError(
            "`optimizer_class` must be a Keras optimizer class (a subclass of "
            f"`keras.optimizers.Optimizer`). Received: {optimizer_class!r}."
        )
    if issubclass(optimizer_class, keras.optimizers.LossScaleOptimizer):
        raise TypeError(
            "A LossScaleOptimizer takes its rate from the optimizer it wraps: "
            "wrap a CLR optimizer instead, "
            "`keras.optimizers.LossScaleOptimizer(Adam(clr=...))`."
        )
    if issubclass(optimizer_class, CyclicalOptimizer):
        raise TypeError(
            f"{optimizer_class.__name__} already has a cyclical learning rate."
        )
    name = optimizer_class.__name__ if name is None else name
    for argument, value in (("name", name), ("package", package)):
        if not isinstance(value, str) or not value.isidentifier():
            raise ValueError(
                f"`{argument}` must be a Python identifier. Received: {value!r}."
            )
    if "learning_rate" not in _init_parameters(optimizer_class):
        raise TypeError(
            f"{optimizer_class.__name__} takes no `learning_rate` argument, so it "
            "has no rate to cycle."
        )
    key = (optimizer_class, name, package)
    if key not in _CLASSES:
        # On PyTorch, Keras swaps a stock class for its fused variant in
        # `__new__`; subclassing that variant keeps the fused update rule.
        base = type(optimizer_class.__new__(optimizer_class))
        path = f"{optimizer_class.__module__}.{optimizer_class.__qualname__}"
        if optimizer_class.__module__.startswith("keras"):
            path = f"keras.optimizers.{optimizer_class.__name__}"
        cls = type(
            name,
            (CyclicalOptimizer, base),
            {
                "__doc__": f"`{path}` with a cyclical learning rate.\n"
                + _ARGS_DOC.format(path=path, name=name),
                "__module__": _caller_module(),
                "__qualname__": name,
            },
        )
        _CLASSES[key] = keras.saving.register_keras_serializable(package=package)(cls)
    return _CLASSES[key]


def _caller_module() -> str:
    """The module that called `cyclical`, so that pickle finds the class."""
    frame = inspect.currentframe()
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return "__main__" if frame is None else frame.f_globals.get("__name__", "__main__")
