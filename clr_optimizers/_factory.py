"""`cyclical`: the one way a CLR optimizer class is made, for the seven
built-in classes as for any other Keras optimizer class."""

from __future__ import annotations

import inspect
from typing import Any

import keras

from clr_optimizers import _docs
from clr_optimizers._arguments import EXTRA_ARGUMENTS, parameters
from clr_optimizers._optimizer import CyclicalOptimizer

_CLASSES: dict[tuple[type, str, str], type] = {}


def cyclical(
    optimizer_class: type, *, name: str | None = None, package: str = "clr_optimizers"
) -> type:
    """A Keras optimizer class with a cyclical learning rate.

    Returns a subclass of `optimizer_class` (any `keras.optimizers.Optimizer`
    subclass: a stock one such as `keras.optimizers.AdamW` or your own) with
    the same arguments and update rule, that also takes `clr=`, `groups=`,
    `lr=` and `decay=`, reports `clr`, `decay`, `iterations` and `current_lr` (and
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
    update rule keeps that rule: Keras's, or where Keras's would read the
    rate or a cycled momentum back to the host, the same rule restated to
    take them as tensors.

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
    if "learning_rate" not in parameters(optimizer_class):
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
        module = _caller_module()
        cls = type(
            name,
            (CyclicalOptimizer, base),
            {
                "__doc__": _class_doc(path, name),
                "__module__": module,
                "__qualname__": name,
                "__init__": _init_showing(optimizer_class, name, module),
                "_tensor_rule": _tensor_rule(base),
            },
        )
        _CLASSES[key] = keras.saving.register_keras_serializable(package=package)(cls)
    return _CLASSES[key]


def _tensor_rule(base: type) -> Any:
    """On PyTorch, the restatement of `base`'s fused update rule that takes
    the rate and a cycled momentum as tensors, where Keras's reads them on
    the host (`_torch_rules`); else `None`, and the class keeps `base`'s."""
    if keras.backend.backend() != "torch":
        return None
    from clr_optimizers import _torch_rules  # imports torch

    return _torch_rules.RULES.get(base)


def _class_doc(path: str, name: str) -> str:
    return f"""`{path}` with a cyclical learning rate.

    The arguments of `{path}`, with the same defaults, and four more:
    `clr`, `groups`, `lr` and `decay` (see `CyclicalOptimizer`, and
    `help({name}.__init__)`).
    Rates may be any plain number. While `clr['momentum']` cycles, the
    stock momentum argument is its highest value.

    Example:

    ```python
    opt = {name}(learning_rate=0.01, clr={{"max_lr": 0.06, "step_size": 2000}})
    ```
    """


def _init_showing(optimizer_class: type, name: str, module: str) -> Any:
    """An `__init__` that is the mixin's, with the signature `inspect`,
    `help()` and editors show: the stock class's arguments, then `clr`,
    `groups`, `lr` and `decay` (the mixin's own takes `*args, **kwargs`)."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        CyclicalOptimizer.__init__(self, *args, **kwargs)

    kinds = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )
    stock = sorted(
        parameters(optimizer_class).values(), key=lambda p: kinds.index(p.kind)
    )
    extra = [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None)
        for n in EXTRA_ARGUMENTS
    ]
    first = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    try:
        signature = inspect.Signature([first, *stock, *extra])
    except ValueError:  # an order Python does not allow: all by keyword
        stock = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in stock]
        signature = inspect.Signature([first, *stock, *extra])
    __init__.__signature__ = signature  # type: ignore[attr-defined]
    __init__.__doc__ = (
        f"`{name}` with the arguments of the stock class, and these.\n\n"
        + _docs.ARGUMENTS
    )
    __init__.__qualname__ = f"{name}.__init__"
    __init__.__module__ = module
    __init__.calls_the_mixin = True  # type: ignore[attr-defined]
    return __init__


def _caller_module() -> str:
    """The module that called `cyclical`, so that pickle finds the class."""
    frame = inspect.currentframe()
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return "__main__" if frame is None else frame.f_globals.get("__name__", "__main__")
