"""The private parts of Keras this package relies on, each named here once.

Keras may rename or change any of them in any release. `HOOKS` are the
methods the `CyclicalOptimizer` mixin overrides (with the arguments Keras
calls them with); `ATTRIBUTES` are the attributes it reads, through the
functions below. `LOSS_SCALE_LOAD` is the one method of a Keras class it replaces.
`tests/test_keras_private.py` checks every entry against
the installed Keras, and that the package uses no other private name of a
Keras optimizer, so that an upgrade that breaks one fails at that test, with
a message that says where the package uses it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import keras

from clr_optimizers._types import Optimizer

# Method -> (its arguments after `self`, where and why the package uses it).
HOOKS: dict[str, tuple[tuple[str, ...], str]] = {
    "_get_current_learning_rate": (
        (),
        "CyclicalOptimizer._get_current_learning_rate: the rate Keras reads "
        "for each update (and for weight decay), inside the compiled step",
    ),
    "_backend_apply_gradients": (
        ("grads", "trainable_variables"),
        "CyclicalOptimizer._backend_apply_gradients: evaluates the schedule "
        "once per update, for the rate and a cycled momentum",
    ),
    "_backend_update_step": (
        ("grads", "trainable_variables", "learning_rate"),
        "CyclicalOptimizer._backend_update_step: puts the cycled momentum in "
        "the place of the stock attribute while the stock rule runs (on "
        "PyTorch, _torch_rules' restatement of it where there is one), once "
        "per group of variables with a rate of their own",
    ),
    "_apply_weight_decay": (
        ("variables",),
        "CyclicalOptimizer._apply_weight_decay: decays each group of "
        "variables at its group's rate",
    ),
    "_track_variable": (
        ("variable",),
        "CyclicalOptimizer.build: tracks max_lr and the restart point (the "
        "schedule state's variables) as optimizer variables, so that they are "
        "saved and restored",
    ),
}

# Attribute of an optimizer instance -> where and why the package reads it.
ATTRIBUTES: dict[str, str] = {
    "_iterations": (
        "the raw update counter (before gradient accumulation), which Keras "
        "passes to a LearningRateSchedule; read by current_lr and the monitor"
    ),
    "_learning_rate": (
        "the stock rate: a variable (the floor of the cycle, rescaled by an "
        "assignment), a LearningRateSchedule or a callable"
    ),
    "_get_variable_index": (
        "the method that finds a trainable variable's slot variables: the "
        "PyTorch rules of _torch_rules read each slot as Keras's rules do, "
        "and CyclicalOptimizer finds each variable's group"
    ),
    "_variables": (
        "the tracked optimizer variables, in saving order: CyclicalOptimizer "
        "finds whether the schedule's variables are tracked yet; the "
        "LossScaleOptimizer loading replacement counts its own"
    ),
}


def raw_iterations(optimizer: Optimizer) -> Any:
    """The counter variable of calls to `apply`, which Keras passes to a
    `LearningRateSchedule` (under gradient accumulation, micro-batches)."""
    return optimizer._iterations


def stock_rate(optimizer: Optimizer) -> Any:
    """The stock rate: a `keras.Variable`, a schedule or a callable."""
    return optimizer._learning_rate


def tracked_variables(optimizer: Optimizer) -> list[Any]:
    return list(optimizer._variables)


def track_variable(optimizer: Optimizer, variable: Any) -> None:
    optimizer._track_variable(variable)


# Class -> the variable its update rule advances once per call of
# `_backend_update_step`, not once per model variable, which a built
# optimizer has: with groups, each group's call starts from its value before
# the update (`per_call_state`).
PER_CALL_STATE = {"Nadam": "_u_product"}


def per_call_state(optimizer: Optimizer) -> list[Any]:
    """The variables of `PER_CALL_STATE` that `optimizer` has."""
    found = (getattr(optimizer, name, None) for name in PER_CALL_STATE.values())
    return [state for state in found if state is not None]


# Class -> (a variable, the slot lists): Keras before 3.10 created the
# variable right before the slot variables, and saved it there; Keras 3.10
# creates it after them (`Nadam.build`). State saved in the older order
# loads in that order where the newer one does not fit (`_layouts`).
MOVED_IN_KERAS_3_10 = {"Nadam": ("_u_product", ("_momentums", "_velocities"))}


def moved_in_keras_3_10(optimizer: Optimizer) -> tuple[Any, Any] | None:
    """The variable of `MOVED_IN_KERAS_3_10` that `optimizer` has, and the
    first slot variable it was created before, or `None`."""
    for name, slot_lists in MOVED_IN_KERAS_3_10.values():
        moved = getattr(optimizer, name, None)
        if moved is not None:
            order = {id(v): i for i, v in enumerate(optimizer.variables)}
            slots = [
                v
                for lists in slot_lists
                for v in getattr(optimizer, lists, None) or []
                if v is not None and id(v) in order
            ]
            first = min(slots, key=lambda v: order[id(v)], default=None)
            return None if first is None else (moved, first)
    return None


# `LossScaleOptimizer.load_own_variables`, replaced so that the state of a
# CLR optimizer it wraps loads in any layout `_layouts` knows. Keras saves a
# loss-scale optimizer's variables as its own followed by those of the
# optimizer it wraps, and loads them only when the counts agree: state that
# an earlier version saved, with fewer variables, would be skipped, losing
# the loss scale. The replacement restores the loss-scale optimizer's own
# variables and hands the rest to the wrapped optimizer's
# `load_own_variables`; for any other wrapped optimizer it is Keras's.
LOSS_SCALE_LOAD = (
    "load_own_variables",
    "the loss scale's own variables, then the wrapped CLR optimizer's state "
    "in any layout _layouts knows",
)


class _Offset:
    """The values of a store from `offset` on, renumbered from 0."""

    def __init__(self, store: Any, offset: int) -> None:
        self.store, self.offset = store, offset

    def keys(self) -> list[str]:
        keys = [key for key in self.store.keys() if not key.isdigit()]  # noqa: SIM118
        count = sum(key.isdigit() for key in self.store.keys()) - self.offset  # noqa: SIM118
        return [str(i) for i in range(count)] + keys

    def __getitem__(self, key: str) -> Any:
        if key.isdigit():
            return self.store[str(int(key) + self.offset)]
        return self.store[key]


def _wrapping_load(
    stock: Callable[[Any, Any], None], takes: Callable[[Any], bool]
) -> Callable[[Any, Any], None]:
    def load_own_variables(self: Any, store: Any) -> None:
        own = list(self._variables)
        count = sum(key.isdigit() for key in store.keys())  # noqa: SIM118
        # Not built, its own variables are not all there yet: Keras's (which
        # skips the state with a warning; the wrapped optimizer then loads
        # its own, from its own part of a file).
        if not self.built or not takes(self.inner_optimizer) or count < len(own):
            return stock(self, store)
        for index, variable in enumerate(own):
            variable.assign(store[str(index)])
        self.inner_optimizer.load_own_variables(_Offset(store, len(own)))

    load_own_variables.wraps_stock = stock  # type: ignore[attr-defined]
    return load_own_variables


def eagerly() -> Any:
    """A context in which variables are read and assigned at once, also when
    Keras builds the optimizer while TensorFlow traces the training step."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.init_scope()
    return contextlib.nullcontext()


def patch_loss_scale_loading(takes: Callable[[Any], bool]) -> None:
    """Installs the replacement once; `takes(inner)` says whether the
    wrapped optimizer is a CLR one."""
    cls = keras.optimizers.LossScaleOptimizer
    stock = getattr(cls, LOSS_SCALE_LOAD[0])
    if not hasattr(stock, "wraps_stock"):
        setattr(cls, LOSS_SCALE_LOAD[0], _wrapping_load(stock, takes))
