"""The layouts of a CLR optimizer's saved state, the current one and those
of earlier versions, recognised here and nowhere else.

Keras saves an optimizer's variables in order, as the values `"0"`, `"1"`,
... of a store (a `.keras` file, a `.weights.h5` backup). A CLR optimizer's
variables are the stock ones, then the cycled momentum (when the momentum
cycles), then its own: `max_lr`, the restart point, then the floor and peak
of each group with bounds of its own (groups came after layout 1, which
files without groups keep). Since layout 1 the store also holds `"layout"`,
the version of that order.

Before it (no `"layout"`):

- 0.2.0 saved the stock variables, the cycled momentum and `max_lr`, with no
  restart point: the schedule starts at update 0.
- 0.1.0 saved the stock variables only (no cycled momentum): `max_lr` is
  taken from the config, which the constructor has already set.

Dropping the support for a version is deleting its branch in `pairs`.

Keras itself changed an order once: before 3.10, `Nadam` created (and
saved) its `u_product` right before its slot variables, since then after
them. Where the values fit the variables only in the older order, they are
taken in it (`keras_order`), so a file saved with an older Keras loads.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

#: A variable whose place Keras moved, the first slot variable it preceded,
#: and what it must hold given the store's values (`keras_order`).
Moved = tuple[Any, Any, Callable[[list[tuple[Any, Any]]], float]]

#: The layout this version writes.
LAYOUT = 1
_KEY = "layout"


@dataclasses.dataclass
class Saved:
    """The values of a store, in order, and the layout it records."""

    values: list[np.ndarray]
    layout: int | None


def read(store: Any) -> Saved:
    keys = set(store.keys())
    layout = int(np.asarray(store[_KEY])) if _KEY in keys else None
    count = len(keys) - (layout is not None)
    return Saved([np.asarray(store[str(i)]) for i in range(count)], layout)


def write_version(store: Any) -> None:
    store[_KEY] = np.asarray(LAYOUT, dtype=np.int32)


def pairs(
    saved: Saved, variables: list[Any], own: list[Any], momentum: Any
) -> list[tuple[Any, Any]] | None:
    """Each variable with the value it restores, or `None` when the saved
    state is not in a layout this version knows for these variables. `own`
    are the schedule's (`max_lr`, the restart point and the groups' bounds,
    or none), `momentum`
    the cycled momentum's (or `None`).

    A variable that the layout lacks is set to its default (the restart
    point to 0) or keeps its value (`max_lr` from the config).
    """
    peak, start = own[:2] if own else (None, None)
    values = saved.values
    if saved.layout is not None and saved.layout > LAYOUT:
        return None  # written by a later version
    if len(values) == len(variables):
        return list(zip(variables, values))
    if saved.layout is not None or start is None:
        return None
    if len(values) == len(variables) - 1:  # 0.2.0
        kept = [v for v in variables if v is not start]
        return [*zip(kept, values), (start, 0)]
    if momentum is None and len(values) == len(variables) - 2:  # 0.1.0
        kept = [v for v in variables if v is not start and v is not peak]
        return [*zip(kept, values), (start, 0)]
    return None


def keras_order(
    paired: list[tuple[Any, Any]], moved: Moved | None
) -> list[tuple[Any, Any]]:
    """`paired`, or the values in the order of Keras before 3.10 (`moved`:
    the variable that came right before the slot variables then, the first
    of those slots, and the value it must hold after a given number of updates)
    where that order fits them and today's does not. Both fit only when
    every slot variable is a scalar; then the value the moved variable
    would get decides: the one nearer what it must hold."""
    if moved is None:
        return paired
    variable, first_slot, expected = moved
    ids = [id(v) for v, _ in paired]
    if id(variable) not in ids or id(first_slot) not in ids:
        return paired
    new, old = ids.index(id(variable)), ids.index(id(first_slot))
    if old > new:
        return paired
    values = [value for _, value in paired]
    # Then: the variable at `old`, the slots after it; now: the slots, then it.
    values[old : new + 1] = [*values[old + 1 : new + 1], values[old]]
    reordered = [(v, value) for (v, _), value in zip(paired, values)]
    if not all(_fits(v, value) for v, value in reordered):
        return paired
    if not all(_fits(v, value) for v, value in paired):
        return reordered
    target = expected(paired)
    today, then = float(np.asarray(paired[new][1])), float(np.asarray(values[new]))
    return reordered if abs(then - target) < abs(today - target) else paired


def _fits(variable: Any, value: Any) -> bool:
    return isinstance(value, int) or tuple(variable.shape) == np.shape(value)


def restore(
    saved: Saved,
    variables: list[Any],
    name: str,
    own: list[Any],
    momentum: Any,
    moved: Moved | None = None,
) -> bool:
    """Assigns the saved values to an optimizer's variables; with a warning,
    and nothing assigned, when the layout is not one this version knows
    (as Keras does for a stock optimizer). Returns whether it restored.
    `moved`: see `keras_order`."""
    paired = pairs(saved, variables, own, momentum)
    if paired is not None:
        paired = keras_order(paired, moved)
    if paired is None:
        warnings.warn(
            f"Skipping variable loading for optimizer '{name}', because it has "
            f"{len(variables)} variables whereas the saved optimizer has "
            f"{len(saved.values)} variables"
            + ("" if saved.layout is None else f" (layout {saved.layout})")
            + ".",
            stacklevel=4,
        )
        return False
    for variable, value in paired:
        variable.assign(value)
    return True
