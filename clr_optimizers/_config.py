"""Validation and normalisation of the `clr` dict and the plain-number arguments.

Everything a user can get wrong is checked here, at construction, so that a bad
value never reaches the compiled training step.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import keras
import numpy as np

MODES = ("triangular", "triangular2", "exp_range", "modified_triangular2")
SCALE_MODES = ("cycle", "iterations")
KEYS = (
    "max_lr",
    "step_size",
    "mode",
    "gamma",
    "restart_every",
    "scale_fn",
    "scale_mode",
)

# The scale of each built-in mode is evaluated on the cycle number, except
# exp_range, which decays with the update count.
_MODE_SCALE_MODE = {
    "triangular": "cycle",
    "triangular2": "cycle",
    "exp_range": "iterations",
    "modified_triangular2": "cycle",
}
_DEFAULT_RESTART_EVERY = {"modified_triangular2": 3}

# A fractional step size is used as the nearest fraction with at most this
# denominator, so that the cycle position can be computed in integers.
MAX_STEP_DENOMINATOR = 1000
# Keeps every integer in the cycle arithmetic far inside int64.
MAX_STEP_SIZE = 10**12
# Keeps the cycle count modulo `restart_every` far inside int32.
MAX_RESTART_EVERY = 10**6
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_number(name: str, value: Any, *, positive: bool = True) -> float:
    """Returns `value` as a float, or raises naming `name` and what is accepted."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a number (int or float). "
            f"Received: {name}={value!r} of type {type(value).__name__}."
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number. Received: {name}={value}.")
    # The training step computes in float32, where a larger value is infinite.
    if abs(value) > FLOAT32_MAX:
        raise ValueError(
            f"`{name}` must be a finite float32 number, at most {FLOAT32_MAX:.4g}. "
            f"Received: {name}={value}."
        )
    if positive and value <= 0:
        raise ValueError(f"`{name}` must be greater than 0. Received: {name}={value}.")
    if not positive and value < 0:
        raise ValueError(f"`{name}` must be 0 or greater. Received: {name}={value}.")
    return value


def resolve_scale_fn(scale_fn: Any) -> tuple[str, Callable]:
    """Returns the registered name of a scale function and the function itself.

    A config refers to a custom scale function only by the name under which it
    was registered with `keras.saving.register_keras_serializable`, so that the
    config stays pure data and loading a file never runs code the file names.
    """
    how_to_register = (
        "Register it with `@keras.saving.register_keras_serializable("
        'package="my_package")` on a module-level function (it receives the '
        "cycle number or the update count as a float tensor and returns the "
        "amplitude scale), import that module before building or loading the "
        'optimizer, and pass the function or its name "my_package>name".'
    )
    if isinstance(scale_fn, str):
        # Also finds names given through `custom_objects` or a
        # `keras.saving.custom_object_scope`.
        fn = keras.saving.get_registered_object(scale_fn)
        if fn is None or not callable(fn):
            raise ValueError(
                f"`scale_fn`: no function is registered under the name {scale_fn!r}. "
                + how_to_register
            )
        return scale_fn, fn
    if callable(scale_fn):
        if getattr(scale_fn, "__name__", "") == "<lambda>":
            raise ValueError(
                "`scale_fn` cannot be a lambda: a lambda cannot be saved in a "
                "config or loaded safely. " + how_to_register
            )
        name = keras.saving.get_registered_name(scale_fn)
        if keras.saving.get_registered_object(name) is not scale_fn:
            raise ValueError(
                f"`scale_fn` {name!r} is not registered with Keras. " + how_to_register
            )
        return name, scale_fn
    raise TypeError(
        "`scale_fn` must be a registered function or its registered name (str). "
        f"Received: scale_fn={scale_fn!r}."
    )


def _step_fraction(step_size: float) -> Fraction:
    return Fraction(step_size).limit_denominator(MAX_STEP_DENOMINATOR)


@dataclasses.dataclass(frozen=True)
class CyclicalConfig:
    """A validated `clr` dict, with every default filled in."""

    max_lr: float
    step_size: int | float
    mode: str | None
    gamma: float
    restart_every: int | None
    scale_fn: str | None
    scale_mode: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def normalize_clr(
    clr: Any, learning_rate: float
) -> tuple[CyclicalConfig | None, Callable | None]:
    """Validates a `clr` argument against the base `learning_rate`.

    Returns the normalised config (or `None` for `clr=None`) and the custom
    scale function it names, if any.
    """
    if clr is None:
        return None, None
    if not isinstance(clr, dict):
        raise TypeError(
            "`clr` must be None or a dict with the keys "
            f"{', '.join(KEYS)}. Received: clr={clr!r} of type {type(clr).__name__}."
        )
    for key in clr:
        if key not in KEYS:
            close = difflib.get_close_matches(str(key), KEYS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"`clr` has an unknown key {key!r}.{hint} "
                f"Valid keys: {', '.join(KEYS)}."
            )
    for key in ("max_lr", "step_size"):
        if clr.get(key) is None:
            raise ValueError(
                f"`clr` is missing the required key {key!r}. Example: "
                'clr={"max_lr": 0.06, "step_size": 2000}.'
            )

    max_lr = check_number("clr['max_lr']", clr["max_lr"])
    # Compared as the float32 values the training step uses, so that a config
    # read back from a float32 variable still passes.
    if np.float32(max_lr) < np.float32(learning_rate):
        raise ValueError(
            "`clr['max_lr']` must be at least the learning rate (the bottom of "
            f"the cycle). Received: max_lr={max_lr}, learning_rate={learning_rate}."
        )

    step_size = clr["step_size"]
    check_number("clr['step_size']", step_size)
    if step_size > MAX_STEP_SIZE:
        raise ValueError(
            f"`clr['step_size']` must be at most {MAX_STEP_SIZE:.0e} updates. "
            f"Received: step_size={step_size}."
        )
    if isinstance(step_size, numbers.Integral):
        step_size = int(step_size)
    else:
        step_size = float(step_size)
        if _step_fraction(step_size) == 0:
            raise ValueError(
                "`clr['step_size']` must be at least "
                f"1/{MAX_STEP_DENOMINATOR} of an update. "
                f"Received: step_size={step_size}."
            )

    scale_fn_name, scale_fn = None, None
    if clr.get("scale_fn") is not None:
        if clr.get("mode") is not None:
            raise ValueError(
                "`clr['mode']` and `clr['scale_fn']` exclude each other: a custom "
                f"scale function replaces the mode. Received: mode={clr['mode']!r}."
            )
        scale_fn_name, scale_fn = resolve_scale_fn(clr["scale_fn"])
        mode = None
    else:
        mode = clr.get("mode")
        if mode is None:
            mode = "triangular"
        if not isinstance(mode, str) or mode not in MODES:
            raise ValueError(
                f"`clr['mode']` must be one of {', '.join(repr(m) for m in MODES)}. "
                f"Received: mode={mode!r}."
            )

    scale_mode = clr.get("scale_mode")
    if scale_mode is not None and (
        not isinstance(scale_mode, str) or scale_mode not in SCALE_MODES
    ):
        accepted = ", ".join(repr(m) for m in SCALE_MODES)
        raise ValueError(
            f"`clr['scale_mode']` must be one of {accepted}. "
            f"Received: scale_mode={scale_mode!r}."
        )
    if mode is None:
        scale_mode = scale_mode or "cycle"
    else:
        if scale_mode is not None and scale_mode != _MODE_SCALE_MODE[mode]:
            raise ValueError(
                f"`clr['scale_mode']` is {_MODE_SCALE_MODE[mode]!r} for mode "
                f"{mode!r} and can be chosen only with a custom `scale_fn`. "
                f"Received: scale_mode={scale_mode!r}."
            )
        scale_mode = _MODE_SCALE_MODE[mode]

    gamma = clr.get("gamma")
    gamma = 1.0 if gamma is None else check_number("clr['gamma']", gamma)
    if gamma > 1:
        raise ValueError(f"`clr['gamma']` must be in (0, 1]. Received: gamma={gamma}.")
    if gamma != 1.0 and mode != "exp_range":
        raise ValueError(
            "`clr['gamma']` is used only by mode 'exp_range'. "
            f"Received: gamma={gamma} with mode={mode!r}."
        )

    restart_every = clr.get("restart_every")
    if restart_every is None:
        restart_every = _DEFAULT_RESTART_EVERY.get(mode)
    else:
        if isinstance(restart_every, bool) or not isinstance(
            restart_every, numbers.Integral
        ):
            raise TypeError(
                "`clr['restart_every']` must be an int (a number of cycles) or "
                f"None. Received: restart_every={restart_every!r}."
            )
        restart_every = int(restart_every)
        if not 1 <= restart_every <= MAX_RESTART_EVERY:
            raise ValueError(
                "`clr['restart_every']` must be between 1 and "
                f"{MAX_RESTART_EVERY:,} cycles. "
                f"Received: restart_every={restart_every}."
            )

    config = CyclicalConfig(
        max_lr=max_lr,
        step_size=step_size,
        mode=mode,
        gamma=gamma,
        restart_every=restart_every,
        scale_fn=scale_fn_name,
        scale_mode=scale_mode,
    )
    return config, scale_fn
