"""The constructor arguments of a CLR optimizer: the stock class's, by name,
plus `clr=`, `groups=`, `lr=` and `decay=`, checked before the stock
constructor runs."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import keras

from clr_optimizers import _groups, _momentum
from clr_optimizers._checks import as_number, check_number
from clr_optimizers._policies import Chain, Policy, parse
from clr_optimizers._types import Optimizer

EXTRA_ARGUMENTS = ("clr", "groups", "lr", "decay")


@dataclasses.dataclass
class Bound:
    """The arguments for the stock constructor, and what the mixin keeps."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    policy: Policy | None
    momentum_argument: str | None
    groups: tuple[_groups.Group, ...] = ()


def parameters(cls: type, skip: type | None = None) -> dict[str, inspect.Parameter]:
    """The named arguments `cls(...)` accepts, following `**kwargs` up the MRO
    (a subclass that passes `**kwargs` on accepts its parent's arguments);
    `skip` is a class of the MRO whose arguments are not the stock ones."""
    params: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        # The mixin's, and the ones `cyclical()` gives its classes (which
        # only show the signature), take no arguments of their own.
        if init is None or klass is skip or getattr(init, "calls_the_mixin", False):
            continue
        passes_on = False
        for name, param in list(inspect.signature(init).parameters.items())[1:]:
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                passes_on = True
            elif param.kind is not inspect.Parameter.VAR_POSITIONAL:
                params.setdefault(name, param)
        if not passes_on:
            break
    return params


def bind(
    optimizer: Optimizer,
    mixin: type,
    stock_init: Callable[..., None],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    extra: dict[str, Any],
) -> Bound:
    """Checks every argument and returns what the stock constructor receives.

    `stock_init` is the `__init__` that follows `mixin` in the MRO, bound to
    `optimizer`; `extra` holds `clr`, `groups`, `lr` and `decay`.
    """
    clr, lr, decay = extra["clr"], extra["lr"], extra["decay"]
    class_name = type(optimizer).__name__
    signature = inspect.signature(stock_init)
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{class_name}: {error}") from None
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
    params = parameters(type(optimizer), skip=mixin)
    _reject_unknown(class_name, params, kwargs)
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

    if isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule) or (
        callable(learning_rate) and not isinstance(learning_rate, keras.Variable)
    ):
        if clr is not None or decay or extra["groups"] is not None:
            raise TypeError(
                "With `clr`, `groups` or `decay`, `learning_rate` must be a "
                "plain number "
                "(the bottom of the cycle). Received: "
                f"learning_rate={learning_rate!r}."
            )
        return Bound(args, kwargs, None, None)
    learning_rate = check_number(
        "learning_rate", as_number(learning_rate), positive=False
    )
    policy, learning_rate = parse(
        clr,
        learning_rate=learning_rate,
        learning_rate_given=learning_rate_given,
        decay=decay,
    )
    momentum_argument = None
    if policy is not None and policy.momentum is not None:
        momentum_argument = _momentum.argument(class_name, params, kwargs, policy)
    if extra["groups"] is not None and policy is None:
        raise ValueError(
            "`groups` give parts of the model rates of their own within the "
            "schedule: pass `clr` (or `decay`) as well."
        )
    groups = _groups.parse(
        extra["groups"],
        learning_rate,
        None if policy is None else policy.max_lr,
        chain=isinstance(policy, Chain),
    )
    kwargs["learning_rate"] = learning_rate
    return Bound(args, kwargs, policy, momentum_argument, groups)


def _reject_unknown(
    class_name: str, params: Mapping[str, Any], kwargs: Mapping[str, Any]
) -> None:
    """Names an unknown keyword argument, with the closest valid one."""
    unknown = [name for name in kwargs if name not in params]
    if not unknown:
        return
    valid = [*params, *EXTRA_ARGUMENTS]
    name = unknown[0]
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"{class_name} got an unknown argument {name!r}={kwargs[name]!r}.{hint} "
        f"Valid arguments: {', '.join(valid)}."
    )
