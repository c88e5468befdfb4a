"""A cycled momentum, and how it reaches a stock update rule unchanged.

The stock rules read their momentum from an attribute (`self.momentum` in SGD
and RMSprop, `self.beta_1` in the Adam family). While a CLR optimizer
updates, that attribute is a variable holding the momentum of the current
update, set from the same schedule evaluation as the rate; afterwards the
stock float is put back.
"""

from __future__ import annotations

import contextlib
import numbers
import operator
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import keras

from clr_optimizers._types import Optimizer

if TYPE_CHECKING:
    from clr_optimizers._policies import Policy

# The argument of a stock optimizer that a cycled momentum replaces, in order
# of preference: SGD's and RMSprop's `momentum`, the Adam family's `beta_1`.
ARGUMENTS = ("momentum", "beta_1")


def argument(
    class_name: str, params: Mapping[str, Any], kwargs: dict[str, Any], policy: Policy
) -> str:
    """The stock argument that `policy.momentum` cycles; sets it in `kwargs`
    to the highest value, so that the stock class builds its momentum slots
    and its config stays truthful."""
    name = next((name for name in ARGUMENTS if name in params), None)
    if name is None:
        raise ValueError(
            f"`clr['momentum']`: {class_name} has no momentum to cycle (it takes "
            f"none of the arguments {', '.join(ARGUMENTS)})."
        )
    assert policy.momentum is not None
    highest = policy.momentum[1]
    given = kwargs.get(name, highest)
    if not isinstance(given, numbers.Real) or float(given) != highest:
        raise ValueError(
            f"`{name}` and `clr['momentum']` disagree: while the momentum "
            f"cycles, `{name}` is its highest value. Leave `{name}` out. "
            f"Received: {name}={given!r}, clr['momentum']={list(policy.momentum)}."
        )
    kwargs[name] = highest
    return name


def check_stored(optimizer: Optimizer, name: str | None, policy: Policy) -> None:
    """The stock class must keep the argument `name` that the momentum cycles
    (if any) as the attribute its update rule reads, or swapping the
    attribute would not cycle anything."""
    if name is None:
        return
    assert policy.momentum is not None
    highest = policy.momentum[1]
    stored = vars(optimizer).get(name)
    if not isinstance(stored, numbers.Real) or float(stored) != highest:
        raise ValueError(
            f"`clr['momentum']`: {type(optimizer).__name__} takes `{name}` but "
            f"does not keep it as the attribute `self.{name}` that its update "
            "rule reads, so it cannot be cycled."
        )


def variable(optimizer: Optimizer, name: str, highest: float) -> CycledValue:
    """The optimizer variable that holds the momentum of the current update."""
    with keras.name_scope(optimizer.name, caller=optimizer):
        return CycledValue(
            initializer=keras.initializers.Constant(highest),
            shape=(),
            dtype="float32",
            trainable=False,
            aggregation="only_first_replica",
            name=f"cycled_{name}",
            largest=highest,
        )


@contextlib.contextmanager
def swapped(
    optimizer: Optimizer,
    name: str | None,
    variable: CycledValue | None,
    value: Any,
) -> Iterator[None]:
    """`optimizer.<name>` is `variable`, holding `value`, within the block
    (nothing changes where the momentum does not cycle, `value` is `None`)."""
    if name is None or variable is None or value is None:
        yield
        return
    variable.assign(value)
    stock = getattr(optimizer, name)
    object.__setattr__(optimizer, name, variable)
    try:
        with variable.holding(value):
            yield
    finally:
        object.__setattr__(optimizer, name, stock)


class CycledValue(keras.Variable):
    """A hyperparameter that changes with every update.

    Stock update rules read their momentum attribute both as a number and in
    Python tests such as `if self.momentum != 0:`, which decide whether
    momentum is used at all. Compared with a Python number, this variable
    answers as its largest value (momentum is in use); in every other use it
    is its current value.
    """

    def __init__(self, *args: Any, largest: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._largest = largest
        self._held: Any = None
        self._complements: dict[float, Any] = {}

    @contextlib.contextmanager
    def holding(self, value: Any) -> Iterator[None]:
        """Within the block, reads give `value` (what was just assigned)
        without reading the variable, and `c - self` for a number `c` is
        computed once: the stock rules read the momentum, and the Adam family
        computes `1 - beta_1`, once per model variable, which would otherwise
        add operations in proportion to the model."""
        self._held, self._complements = value, {}
        try:
            yield
        finally:
            self._held, self._complements = None, {}

    @property
    def value(self) -> Any:
        if self._held is not None:
            return self._maybe_autocast(self._held)
        return super().value

    def __rsub__(self, other: Any) -> Any:
        if self._held is None or not isinstance(other, numbers.Real):
            return super().__rsub__(other)
        key = float(other)
        if key not in self._complements:
            self._complements[key] = super().__rsub__(other)
        return self._complements[key]

    def _compare(
        self,
        other: Any,
        python: Callable[[float, float], bool],
        tensor: Callable[[Any], Any],
    ) -> Any:
        if isinstance(other, numbers.Real):
            return python(self._largest, float(other))
        return tensor(other)

    def __eq__(self, other: Any) -> Any:
        return self._compare(other, operator.eq, super().__eq__)

    def __ne__(self, other: Any) -> Any:
        return self._compare(other, operator.ne, super().__ne__)

    def __lt__(self, other: Any) -> Any:
        return self._compare(other, operator.lt, super().__lt__)

    def __le__(self, other: Any) -> Any:
        return self._compare(other, operator.le, super().__le__)

    def __gt__(self, other: Any) -> Any:
        return self._compare(other, operator.gt, super().__gt__)

    def __ge__(self, other: Any) -> Any:
        return self._compare(other, operator.ge, super().__ge__)
