"""Custom scale functions: how one is named in a config, and found again.

A config is pure data, so it refers to a custom scale function by the name
under which it is registered with Keras, or to an instance of a registered
class by that class's serialized config. Loading a file then runs only code
that the loading process has registered, also under `safe_mode=True`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import math
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import keras

HOW_TO_REGISTER = (
    "Register it with `@keras.saving.register_keras_serializable("
    'package="my_package")` on a module-level function (it receives the '
    "cycle number or the update count as a float tensor and returns the "
    "amplitude scale) or on a class with `__call__`, `get_config` and "
    "`from_config`, import "
    "that module before building or loading, and pass the function, an "
    'instance of the class, or the function\'s name "my_package>name".'
)

# The saved form of a scale function: its registered name, or the serialized
# config of an instance of a registered class.
Saved = str | dict[str, Any]

# The `custom_objects` of the `from_config` call under way, if any.
_CUSTOM_OBJECTS: contextvars.ContextVar[Mapping[str, Any] | None] = (
    contextvars.ContextVar("custom_objects", default=None)
)


@contextlib.contextmanager
def also_found_in(custom_objects: Mapping[str, Any] | None) -> Iterator[None]:
    """Names are also looked up in `custom_objects` within the block (besides
    Keras's registry and any `custom_object_scope`, which stay in force)."""
    token = _CUSTOM_OBJECTS.set(dict(custom_objects or {}))
    try:
        yield
    finally:
        _CUSTOM_OBJECTS.reset(token)


def _find(name: str) -> Any:
    found = (_CUSTOM_OBJECTS.get() or {}).get(name)
    return found if found is not None else keras.saving.get_registered_object(name)


def resolve(
    scale_fn: Any, *, name: str, strict: bool
) -> tuple[Saved | None, Callable[..., Any]]:
    """`(saved form, callable)` for a `scale_fn` argument.

    `strict` refuses a callable that cannot be saved (a lambda, a
    `functools.partial`, an unregistered function or class); otherwise its
    saved form is `None`, and asking for it later (`Cyclical.to_clr`) raises
    `why_unsaved`.
    """
    if isinstance(scale_fn, str):
        found = _find(scale_fn)
        if found is None or not callable(found):
            raise ValueError(
                f"`{name}`: no function is registered under the name {scale_fn!r}. "
                + HOW_TO_REGISTER
            )
        if inspect.isclass(found):
            raise ValueError(
                f"`{name}`: {scale_fn!r} is a class; pass an instance of it. "
                + HOW_TO_REGISTER
            )
        return scale_fn, found
    if isinstance(scale_fn, dict):  # an instance of a registered class, saved
        try:
            instance = keras.saving.deserialize_keras_object(
                scale_fn, custom_objects=dict(_CUSTOM_OBJECTS.get() or {})
            )
        except Exception as error:
            raise ValueError(
                f"`{name}` could not be rebuilt from {scale_fn!r}: {error} "
                + HOW_TO_REGISTER
            ) from error
        if not callable(instance):
            raise TypeError(f"`{name}` rebuilt from {scale_fn!r} is not callable.")
        return scale_fn, instance
    if not callable(scale_fn) or inspect.isclass(scale_fn):
        raise TypeError(
            f"`{name}` must be a registered function, an instance of a registered "
            "class with `__call__`, or a function's registered name (str). "
            f"Received: {scale_fn!r}."
        )
    reason = why_unsaved(scale_fn)
    if reason is None:
        return saved_form(scale_fn), scale_fn
    if strict:
        raise ValueError(f"`{name}` {reason} " + HOW_TO_REGISTER)
    # It trains; saving it (`model.save`, `ModelCheckpoint`) would raise, at
    # the first save: say so now, and name a built-in scale it equals.
    same = built_in_equal(scale_fn)
    warnings.warn(
        f"`{name}` {reason} The schedule trains, but saving it (`model.save`, "
        "`ModelCheckpoint`) raises. "
        + (f"It equals {same}, which saves. " if same else HOW_TO_REGISTER),
        UnsavedScaleFunction,
        stacklevel=5,  # the schedule's caller
    )
    return None, scale_fn


class UnsavedScaleFunction(UserWarning):
    """A schedule's custom scale function that a config cannot hold."""


def built_in_equal(scale_fn: Callable[..., Any]) -> str | None:
    """What built-in scale `scale_fn` equals on the counts 1 to 50, if any:
    `1` (triangular), `1 / 2**(x - 1)` (triangular2) or `gamma**x`
    (exp_range); `None` for any other, or one that needs tensors."""
    counts = range(1, 51)
    try:
        values = [float(scale_fn(float(x))) for x in counts]
    except Exception:
        return None

    def same(expected: list[float]) -> bool:
        return all(math.isclose(v, e, rel_tol=1e-9) for v, e in zip(values, expected))

    if same([1.0] * len(values)):
        return 'mode "triangular" (`TriangularCyclicalLearningRate`)'
    if same([0.5 ** (x - 1) for x in counts]):
        return (
            'mode "triangular2" (`Triangular2CyclicalLearningRate`) with '
            'scale_mode "cycle"'
        )
    gamma = values[0]
    if 0 < gamma <= 1 and same([gamma**x for x in counts]):
        return (
            f'mode "exp_range" with gamma={gamma!r} '
            f"(`ExponentialCyclicalLearningRate(gamma={gamma!r})`) with "
            'scale_mode "iterations"'
        )
    return None


def saved_form(scale_fn: Callable[..., Any]) -> Saved:
    """The registered name of a function, or the config of an instance, as
    it is now (an instance is serialized when its config is asked for)."""
    if inspect.isfunction(scale_fn) or inspect.isbuiltin(scale_fn):
        return str(keras.saving.get_registered_name(scale_fn))
    return dict(keras.saving.serialize_keras_object(scale_fn))


def why_unsaved(scale_fn: Callable[..., Any]) -> str | None:
    """Why `scale_fn` cannot be saved in a config, or `None` if it can."""
    if isinstance(scale_fn, functools.partial):
        return (
            f"is a functools.partial ({scale_fn!r}), which a config cannot "
            "name: use a registered class that keeps the bound arguments in "
            "its `get_config`."
        )
    if inspect.isfunction(scale_fn) or inspect.isbuiltin(scale_fn):
        if scale_fn.__name__ == "<lambda>":
            return (
                "cannot be a lambda: a lambda cannot be saved in a config or "
                "loaded safely."
            )
        registered = keras.saving.get_registered_name(scale_fn)
        if _find(registered) is not scale_fn:
            return f"{registered!r} is not registered with Keras."
        return None
    cls = type(scale_fn)
    registered = keras.saving.get_registered_name(cls)
    if _find(registered) is not cls:
        return (
            f"is an instance of {cls.__qualname__}, which is not registered with Keras."
        )
    if not all(
        callable(getattr(scale_fn, method, None))
        for method in ("get_config", "from_config")
    ):
        return (
            f"is an instance of {cls.__qualname__}, which lacks the "
            "`get_config` and `from_config` that save and rebuild it."
        )
    return None


def display(saved: Saved | None, scale_fn: Callable[..., Any] | None) -> str:
    """How messages and legends name a scale function."""
    if isinstance(saved, str):
        return saved
    if isinstance(saved, dict):
        return str(saved.get("registered_name") or saved.get("class_name"))
    return getattr(scale_fn, "__name__", None) or type(scale_fn).__name__
