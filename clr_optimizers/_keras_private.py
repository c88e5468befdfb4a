"""The private parts of Keras this package relies on, each named here once.

Keras may rename or change any of them in any release. `HOOKS` are the
methods the `CyclicalOptimizer` mixin overrides (with the arguments Keras
calls them with); `ATTRIBUTES` are the attributes it reads, through the
functions below. `tests/test_keras_private.py` checks every entry against
the installed Keras, and that the package uses no other private name of a
Keras optimizer, so that an upgrade that breaks one fails at that test, with
a message that says where the package uses it.
"""

from __future__ import annotations

from typing import Any

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
        "the place of the stock attribute while the stock rule runs",
    ),
    "_track_variable": (
        ("variable",),
        "CyclicalOptimizer.build: tracks max_lr and the cycled momentum as "
        "optimizer variables, so that they are saved and restored",
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
    "_variables": (
        "the tracked optimizer variables, in saving order: CyclicalOptimizer "
        "finds whether max_lr is tracked yet"
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
