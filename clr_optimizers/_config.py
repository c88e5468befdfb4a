"""Validation and normalisation of the `clr` dict and the plain-number arguments.

Everything a user can get wrong is checked here, at construction, so that a bad
value never reaches the compiled training step.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import keras
import numpy as np

# The cyclical modes, then the one-cycle policy.
CYCLICAL_MODES = ("triangular", "triangular2", "exp_range", "modified_triangular2")
MODES = (*CYCLICAL_MODES, "one_cycle")
SCALE_MODES = ("cycle", "iterations")
ANNEAL_STRATEGIES = ("cos", "linear")
# The keys of the cyclical modes and those of "one_cycle"; "max_lr", "mode" and
# "momentum" serve both.
CYCLE_KEYS = (
    "step_size",
    "step_size_up",
    "step_size_down",
    "gamma",
    "restart_every",
    "scale_fn",
    "scale_mode",
)
ONE_CYCLE_KEYS = (
    "total_steps",
    "pct_start",
    "div_factor",
    "final_div_factor",
    "anneal_strategy",
    "three_phase",
)
KEYS = ("max_lr", "mode", *CYCLE_KEYS, "momentum", *ONE_CYCLE_KEYS)

# The scale of each built-in cyclical mode is evaluated on the cycle number,
# except exp_range, which decays with the update count.
_MODE_SCALE_MODE = {
    "triangular": "cycle",
    "triangular2": "cycle",
    "exp_range": "iterations",
    "modified_triangular2": "cycle",
}
_DEFAULT_RESTART_EVERY = {"modified_triangular2": 3}
# PyTorch's `OneCycleLR` defaults.
_ONE_CYCLE_DEFAULTS = {
    "pct_start": 0.3,
    "div_factor": 25.0,
    "final_div_factor": 1e4,
    "anneal_strategy": "cos",
    "three_phase": False,
}

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


def _check_step_size(key: str, value: Any) -> int | float:
    """A half cycle's length in updates: an int, or a float of at least 1/1000."""
    check_number(f"clr[{key!r}]", value)
    if value > MAX_STEP_SIZE:
        raise ValueError(
            f"`clr[{key!r}]` must be at most {MAX_STEP_SIZE:.0e} updates. "
            f"Received: {key}={value}."
        )
    if isinstance(value, numbers.Integral):
        return int(value)
    value = float(value)
    if Fraction(value).limit_denominator(MAX_STEP_DENOMINATOR) == 0:
        raise ValueError(
            f"`clr[{key!r}]` must be at least 1/{MAX_STEP_DENOMINATOR} of an "
            f"update. Received: {key}={value}."
        )
    return value


def _check_int(key: str, value: Any, lowest: int, highest: int, unit: str) -> int:
    """A whole number of `unit` (cycles, updates) in [lowest, highest]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`clr[{key!r}]` must be an int (a number of {unit}). "
            f"Received: {key}={value!r}."
        )
    value = int(value)
    if not lowest <= value <= highest:
        raise ValueError(
            f"`clr[{key!r}]` must be between {lowest} and {highest:,} {unit}. "
            f"Received: {key}={value}."
        )
    return value


def _check_fraction_of_one(key: str, value: Any, *, upper_open: bool) -> float:
    check_number(f"clr[{key!r}]", value, positive=False)
    value = float(value)
    if not (0 <= value < 1 if upper_open else 0 < value < 1):
        interval = "[0, 1)" if upper_open else "(0, 1)"
        raise ValueError(f"`clr[{key!r}]` must be in {interval}. Received: {value}.")
    return value


def _check_momentum(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(
            "`clr['momentum']` must be a pair (lowest, highest), for example "
            f"(0.85, 0.95). Received: momentum={value!r}."
        )
    if len(value) != 2:
        raise ValueError(
            "`clr['momentum']` must be a pair (lowest, highest), for example "
            f"(0.85, 0.95). Received: momentum={value!r}."
        )
    low, high = (_check_fraction_of_one("momentum", v, upper_open=True) for v in value)
    if low > high:
        raise ValueError(
            "`clr['momentum']` is (lowest, highest): the first value must not "
            f"exceed the second. Received: momentum={value!r}."
        )
    return low, high


@dataclasses.dataclass(frozen=True)
class CyclicalConfig:
    """A validated `clr` dict, with every default filled in.

    Keys that do not apply to the mode are `None` (and left out of `to_dict`).
    """

    max_lr: float
    mode: str | None
    step_size: int | float | None = None
    step_size_up: int | float | None = None
    step_size_down: int | float | None = None
    gamma: float | None = None
    restart_every: int | None = None
    scale_fn: str | None = None
    scale_mode: str | None = None
    momentum: tuple[float, float] | None = None
    total_steps: int | None = None
    pct_start: float | None = None
    final_div_factor: float | None = None
    anneal_strategy: str | None = None
    three_phase: bool | None = None

    @property
    def half_cycles(self) -> tuple[int | float, int | float]:
        """Updates in the rising and in the falling half of a cycle."""
        if self.step_size is not None:
            return self.step_size, self.step_size
        return self.step_size_up, self.step_size_down

    def to_dict(self) -> dict:
        config = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        if self.momentum is not None:
            config["momentum"] = list(self.momentum)
        return config


def normalize_clr(
    clr: Any, learning_rate: float, learning_rate_given: bool = True
) -> tuple[CyclicalConfig | None, Callable | None, float]:
    """Validates a `clr` argument against the base `learning_rate`.

    `learning_rate_given` says whether the caller chose `learning_rate`
    (rather than taking the optimizer's default): mode "one_cycle" can take
    the starting rate from `div_factor` instead.

    Returns the normalised config (or `None` for `clr=None`), the custom scale
    function it names, if any, and the base learning rate.
    """
    if clr is None:
        return None, None, learning_rate
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
    # A key given as None means the key is not given, as in a normalised dict.
    clr = {key: value for key, value in clr.items() if value is not None}
    if "max_lr" not in clr:
        raise ValueError(
            "`clr` is missing the required key 'max_lr'. Example: "
            'clr={"max_lr": 0.06, "step_size": 2000}.'
        )
    max_lr = check_number("clr['max_lr']", clr["max_lr"])
    momentum = _check_momentum(clr.get("momentum"))

    scale_fn = None
    if clr.get("mode") == "one_cycle":
        config, learning_rate = _one_cycle(
            clr, max_lr, momentum, learning_rate, learning_rate_given
        )
    else:
        config, scale_fn = _cyclical(clr, max_lr, momentum)

    # Compared as the float32 values the training step uses, so that a config
    # read back from a float32 variable still passes.
    if np.float32(max_lr) < np.float32(learning_rate):
        raise ValueError(
            "`clr['max_lr']` must be at least the learning rate (the bottom of "
            f"the cycle). Received: max_lr={max_lr}, learning_rate={learning_rate}."
        )
    return config, scale_fn, learning_rate


def _reject_keys(clr: dict, keys, schedule: str, used_by: str) -> None:
    for key in keys:
        if key in clr:
            raise ValueError(
                f"`clr[{key!r}]` is not used by {schedule}; it belongs to "
                f"{used_by}. Received: {key}={clr[key]!r}."
            )


def _cyclical(
    clr: dict, max_lr: float, momentum
) -> tuple[CyclicalConfig, Callable | None]:
    """The cyclical modes: triangular, triangular2, exp_range,
    modified_triangular2 or a custom scale function."""
    mode = clr.get("mode")
    schedule = f"mode {mode or 'triangular'!r}"
    if "scale_fn" in clr and mode is None:
        schedule = "a custom `scale_fn`"
    _reject_keys(clr, ONE_CYCLE_KEYS, schedule, "mode 'one_cycle'")

    step_size = step_size_up = step_size_down = None
    if "step_size" in clr:
        for key in ("step_size_up", "step_size_down"):
            if key in clr:
                raise ValueError(
                    f"`clr['step_size']` and `clr[{key!r}]` exclude each other: "
                    "give `step_size` for equal halves, or `step_size_up` and "
                    "`step_size_down`."
                )
        step_size = _check_step_size("step_size", clr["step_size"])
    elif "step_size_up" in clr:
        step_size_up = _check_step_size("step_size_up", clr["step_size_up"])
        step_size_down = _check_step_size(
            "step_size_down", clr.get("step_size_down", step_size_up)
        )
    elif "step_size_down" in clr:
        raise ValueError(
            "`clr['step_size_down']` needs `clr['step_size_up']`, the length of "
            "the rising half."
        )
    else:
        raise ValueError(
            "`clr` is missing the required key 'step_size' (or 'step_size_up'). "
            'Example: clr={"max_lr": 0.06, "step_size": 2000}.'
        )

    scale_fn_name, scale_fn = None, None
    if "scale_fn" in clr:
        if mode is not None:
            raise ValueError(
                "`clr['mode']` and `clr['scale_fn']` exclude each other: a custom "
                f"scale function replaces the mode. Received: mode={mode!r}."
            )
        scale_fn_name, scale_fn = resolve_scale_fn(clr["scale_fn"])
    else:
        mode = "triangular" if mode is None else mode
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
        restart_every = _check_int(
            "restart_every", restart_every, 1, MAX_RESTART_EVERY, "cycles"
        )

    config = CyclicalConfig(
        max_lr=max_lr,
        mode=mode,
        step_size=step_size,
        step_size_up=step_size_up,
        step_size_down=step_size_down,
        gamma=gamma,
        restart_every=restart_every,
        scale_fn=scale_fn_name,
        scale_mode=scale_mode,
        momentum=momentum,
    )
    return config, scale_fn


def _one_cycle(
    clr: dict, max_lr: float, momentum, learning_rate: float, learning_rate_given
) -> tuple[CyclicalConfig, float]:
    """Mode "one_cycle": warm up from the learning rate to `max_lr`, then
    anneal to the learning rate / `final_div_factor` over `total_steps`."""
    _reject_keys(clr, CYCLE_KEYS, "mode 'one_cycle'", "the cyclical modes")
    values = {**_ONE_CYCLE_DEFAULTS, **clr}

    total_steps = clr.get("total_steps")
    if total_steps is None:
        raise ValueError(
            "`clr` is missing the key 'total_steps' that mode 'one_cycle' "
            'needs. Example: clr={"mode": "one_cycle", "max_lr": 0.1, '
            '"total_steps": 10000}.'
        )
    total_steps = _check_int("total_steps", total_steps, 2, MAX_STEP_SIZE, "updates")

    pct_start = _check_fraction_of_one(
        "pct_start", values["pct_start"], upper_open=False
    )
    three_phase = values["three_phase"]
    if not isinstance(three_phase, (bool, np.bool_)):
        raise TypeError(
            f"`clr['three_phase']` must be True or False. Received: {three_phase!r}."
        )
    three_phase = bool(three_phase)
    # The phases end after these updates (as in PyTorch's `OneCycleLR`); each
    # must be longer than the one before it ends.
    warm_up_end = pct_start * total_steps - 1
    if warm_up_end <= 0:
        raise ValueError(
            "`clr['pct_start']` * `clr['total_steps']` must exceed 1 update "
            f"(the warm-up). Received: pct_start={pct_start}, "
            f"total_steps={total_steps}."
        )
    if three_phase and 2 * warm_up_end >= total_steps - 1:
        raise ValueError(
            "With `three_phase`, the warm-up and the matching descent must end "
            "before the last update: 2 * pct_start * total_steps must be less "
            f"than total_steps + 1. Received: pct_start={pct_start}, "
            f"total_steps={total_steps}."
        )

    anneal = values["anneal_strategy"]
    if not isinstance(anneal, str) or anneal not in ANNEAL_STRATEGIES:
        raise ValueError(
            "`clr['anneal_strategy']` must be 'cos' or 'linear'. "
            f"Received: anneal_strategy={anneal!r}."
        )
    final_div_factor = check_number(
        "clr['final_div_factor']", values["final_div_factor"]
    )
    if final_div_factor < 1:
        raise ValueError(
            "`clr['final_div_factor']` must be at least 1: the final rate is the "
            "learning rate divided by it. "
            f"Received: final_div_factor={final_div_factor}."
        )

    if "div_factor" in clr:
        if learning_rate_given:
            raise ValueError(
                "Pass either `learning_rate` or `clr['div_factor']` (which sets "
                "it to max_lr / div_factor), not both. Received: "
                f"learning_rate={learning_rate}, div_factor={clr['div_factor']!r}."
            )
        div_factor = check_number("clr['div_factor']", clr["div_factor"])
        if div_factor < 1:
            raise ValueError(
                "`clr['div_factor']` must be at least 1: the starting rate is "
                f"max_lr / div_factor. Received: div_factor={div_factor}."
            )
        learning_rate = max_lr / div_factor
    elif not learning_rate_given:
        learning_rate = max_lr / _ONE_CYCLE_DEFAULTS["div_factor"]

    config = CyclicalConfig(
        max_lr=max_lr,
        mode="one_cycle",
        momentum=momentum,
        total_steps=total_steps,
        pct_start=pct_start,
        final_div_factor=final_div_factor,
        anneal_strategy=anneal,
        three_phase=three_phase,
    )
    return config, learning_rate
