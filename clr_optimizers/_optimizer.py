"""`CyclicalOptimizer`: what turns a Keras optimizer class into a CLR one.

The mixin goes before a stock Keras optimizer class in the bases. It leaves
the update rule alone and changes only where the optimizer reads its learning
rate: Keras asks `_get_current_learning_rate()` once per update, inside the
compiled step, and this mixin answers with the cyclical rate computed from the
optimizer's own iteration counter.
"""

from __future__ import annotations

import difflib
import inspect
import math
import numbers

import keras
import numpy as np
from keras import ops

from clr_optimizers._config import check_number, normalize_clr
from clr_optimizers._schedule import cyclical_rate, decayed_rate

_Schedule = keras.optimizers.schedules.LearningRateSchedule

_STOCK_LEARNING_RATE = keras.optimizers.Optimizer.learning_rate

# Keys that describe the optimizer's state, not its configuration.
STATE_KEYS = ("iterations", "current_lr")


def _shortest_float(value) -> float:
    """A float32 value as the shortest Python float that rounds back to it:
    0.034975, not 0.034974999725818634."""
    return float(str(np.float32(ops.convert_to_numpy(value))))


def _reject_unknown_arguments(class_name, signature, bound):
    """Names an unknown keyword argument, with the closest valid one."""
    extra = [
        (name, value)
        for param in signature.parameters.values()
        if param.kind is inspect.Parameter.VAR_KEYWORD
        for name, value in bound.arguments.get(param.name, {}).items()
    ]
    if not extra:
        return
    valid = [
        name
        for name, param in signature.parameters.items()
        if param.kind is not inspect.Parameter.VAR_KEYWORD
    ] + ["clr", "lr", "decay"]
    name, value = extra[0]
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"{class_name} got an unknown argument {name!r}={value!r}.{hint} "
        f"Valid arguments: {', '.join(valid)}."
    )


class CyclicalOptimizer:
    """Adds `clr=`, `lr=` and a working `decay=` to a Keras optimizer class."""

    def __init__(self, *args, clr=None, lr=None, decay=None, **kwargs):
        signature = inspect.signature(super().__init__)
        try:
            bound = signature.bind_partial(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{type(self).__name__}: {error}") from None
        _reject_unknown_arguments(type(self).__name__, signature, bound)
        if lr is not None:
            if "learning_rate" in bound.arguments:
                given = bound.arguments["learning_rate"]
                raise ValueError(
                    "Pass either `learning_rate` or its old spelling `lr`, not "
                    f"both. Received: learning_rate={given!r}, lr={lr!r}."
                )
            bound.arguments["learning_rate"] = lr
        learning_rate = bound.arguments.get(
            "learning_rate", signature.parameters["learning_rate"].default
        )
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
        clr_config, scale_fn = normalize_clr(clr, learning_rate)

        bound.arguments["learning_rate"] = learning_rate
        super().__init__(*bound.args, **bound.kwargs)
        self._clr_config = clr_config
        self._scale_fn = scale_fn
        self._decay = decay
        self._pending_values = None
        if scale_fn is not None:
            self._check_scale_fn()

    def load_own_variables(self, store):
        # Keras skips every variable of an optimizer that is not built yet
        # (a pickled or separately saved optimizer). Restore the counter and
        # the base rate now, and the slot variables once it is built.
        if self.built or len(store.keys()) <= len(self.variables):
            return super().load_own_variables(store)
        values = [store[str(i)] for i in range(len(store.keys()))]
        for variable, value in zip(self.variables, values):
            variable.assign(value)
        self._pending_values = values

    def build(self, variables):
        super().build(variables)
        pending, self._pending_values = self._pending_values, None
        if pending is not None and len(pending) == len(self.variables):
            for variable, value in zip(self.variables, pending):
                variable.assign(value)

    def _check_scale_fn(self):
        for step in (0, 1, 2 * self._clr_config.step_size):
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

    def _rate_at(self, step):
        """The rate of the update that follows `step` applied updates (a
        number or an array of them)."""
        step = ops.convert_to_tensor(step, dtype=self._iterations.dtype)
        if self._clr_config is not None:
            return cyclical_rate(
                step, self._learning_rate, self._clr_config, self._scale_fn, self._decay
            )
        if self._decay:
            return decayed_rate(step, self._learning_rate, self._decay)
        if isinstance(self._learning_rate, _Schedule):
            return self._learning_rate(step)
        rate = ops.cast(super()._get_current_learning_rate(), "float32")
        return ops.broadcast_to(rate, ops.shape(step))

    def _get_current_learning_rate(self):
        if not self._has_own_schedule:
            return super()._get_current_learning_rate()
        # `iterations` counts applied updates, also under gradient accumulation.
        return self._rate_at(self.iterations)

    @property
    def learning_rate(self):
        """The rate of the next update. Assigning a number sets the base rate
        (the floor of the cycle), which must stay between 0 and `max_lr`."""
        return _STOCK_LEARNING_RATE.fget(self)

    @learning_rate.setter
    def learning_rate(self, value):
        if self._clr_config is not None and not callable(value):
            value = check_number("learning_rate", value, positive=False)
            if np.float32(value) > np.float32(self._clr_config.max_lr):
                raise ValueError(
                    "`learning_rate` is the floor of the cycle and must not exceed "
                    f"`clr['max_lr']`={self._clr_config.max_lr}. Received: {value}."
                )
        _STOCK_LEARNING_RATE.fset(self, value)

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

    @property
    def clr(self) -> dict | None:
        """The normalised `clr` dict, every default filled in (`None` without)."""
        return None if self._clr_config is None else self._clr_config.to_dict()

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
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = {k: v for k, v in config.items() if k not in STATE_KEYS}
        with keras.saving.custom_object_scope(custom_objects or {}):
            return super().from_config(config, custom_objects=custom_objects)


def registered(cls: type) -> type:
    """Registers a CLR optimizer class with Keras under this package's name."""
    return keras.saving.register_keras_serializable(package="clr_optimizers")(cls)
