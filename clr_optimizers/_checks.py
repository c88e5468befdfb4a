"""The checks of plain numbers and names that every argument goes through.

Each check returns the normalised value or raises a `TypeError` (wrong type)
or `ValueError` (wrong value) whose message names the argument, what is
accepted and what was received; so a bad value fails at construction and
never reaches a compiled training step.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from typing import Any

import keras
import numpy as np
from keras import backend, ops

# The training step computes in float32, where a larger value is infinite.
FLOAT32_MAX = float(np.finfo(np.float32).max)
# A fractional step size is used as the nearest fraction with at most this
# denominator, so that the cycle position can be computed in integers.
MAX_STEP_DENOMINATOR = 1000
# Keeps every integer in the cycle arithmetic far inside int64.
MAX_STEP_SIZE = 10**12


def check_number(name: str, value: Any, *, positive: bool = True) -> float:
    """`value` as a float: finite, within float32's range, and greater than 0
    (`positive`) or at least 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a number (int or float). "
            f"Received: {name}={value!r} of type {type(value).__name__}."
        )
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(
            f"`{name}` must be a finite number. Received: {name}={number}."
        )
    if abs(number) > FLOAT32_MAX:
        raise ValueError(
            f"`{name}` must be a finite float32 number, at most {FLOAT32_MAX:.4g}. "
            f"Received: {name}={number}."
        )
    if positive and number <= 0:
        raise ValueError(f"`{name}` must be greater than 0. Received: {name}={number}.")
    if not positive and number < 0:
        raise ValueError(f"`{name}` must be 0 or greater. Received: {name}={number}.")
    return number


def check_int(name: str, value: Any, lowest: int, highest: int, unit: str) -> int:
    """A whole number of `unit` (cycles, updates) in [lowest, highest]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` must be an int (a number of {unit}). Received: {value!r}."
        )
    number = int(value)
    if not lowest <= number <= highest:
        raise ValueError(
            f"`{name}` must be between {lowest} and {highest:,} {unit}. "
            f"Received: {number}."
        )
    return number


def check_step_size(name: str, value: Any) -> int | float:
    """A length in updates: an int, or a float of at least 1/1000 update."""
    check_number(name, value)
    if value > MAX_STEP_SIZE:
        raise ValueError(
            f"`{name}` must be at most {MAX_STEP_SIZE:.0e} updates. Received: {value}."
        )
    if isinstance(value, numbers.Integral):
        return int(value)
    number = float(value)
    if Fraction(number).limit_denominator(MAX_STEP_DENOMINATOR) == 0:
        raise ValueError(
            f"`{name}` must be at least 1/{MAX_STEP_DENOMINATOR} of an update. "
            f"Received: {number}."
        )
    return number


def check_fraction(name: str, value: Any, *, zero: bool) -> float:
    """A number in [0, 1) when `zero` is allowed, else in (0, 1)."""
    number = check_number(name, value, positive=False)
    if not (0 <= number < 1 if zero else 0 < number < 1):
        interval = "[0, 1)" if zero else "(0, 1)"
        raise ValueError(f"`{name}` must be in {interval}. Received: {number}.")
    return number


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False. Received: {value!r}.")
    return bool(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        accepted = ", ".join(repr(choice) for choice in choices)
        raise ValueError(
            f"`{name}` must be one of {accepted}. Received: {name}={value!r}."
        )
    return value


def check_pair(name: str, value: Any) -> tuple[float, float]:
    """`(lowest, highest)` with 0 <= lowest <= highest < 1 (a momentum range)."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(
            f"`{name}` must be a pair (lowest, highest), for example "
            f"(0.85, 0.95). Received: {value!r}."
        )
    if len(value) != 2:
        raise ValueError(
            f"`{name}` must be a pair (lowest, highest), for example "
            f"(0.85, 0.95). Received: {value!r}."
        )
    low, high = (check_fraction(name, v, zero=True) for v in value)
    if low > high:
        raise ValueError(
            f"`{name}` is (lowest, highest): the first value must not exceed "
            f"the second. Received: {value!r}."
        )
    return low, high


def check_count(name: str, value: Any) -> int:
    """A number of updates to show or evaluate: an int of at least 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an int. Received: {value!r}.")
    if value < 1:
        raise ValueError(f"`{name}` must be at least 1. Received: {value}.")
    return int(value)


def reject_unknown(
    what: str,
    given: Iterable[str],
    valid: Sequence[str],
    hint: Callable[[str], str | None] | None = None,
) -> None:
    """Names the first of `given` that is not in `valid`, with the closest
    valid one (or `hint(name)`, when it knows better)."""
    for name in given:
        if name in valid:
            continue
        better = hint(name) if hint else None
        if better is None:
            close = difflib.get_close_matches(str(name), valid, n=1)
            better = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"{what} has an unknown key {name!r}.{better} "
            f"Valid keys: {', '.join(valid)}."
        )


def as_number(value: Any) -> Any:
    """A 0-d array, tensor or variable as a Python float; anything else
    unchanged."""
    is_array = isinstance(value, (np.ndarray, keras.Variable)) or ops.is_tensor(value)
    if is_array and len(ops.shape(value)) == 0:
        return float(np.asarray(ops.convert_to_numpy(value)))
    return value


def int_max(dtype: Any) -> int:
    """The largest value of an integer dtype."""
    return int(np.iinfo(backend.standardize_dtype(dtype)).max)


def counter_dtype() -> str:
    """The dtype of Keras's update counter on this backend: int64 on
    TensorFlow, int32 on JAX and PyTorch."""
    return str(backend.standardize_dtype("int"))
