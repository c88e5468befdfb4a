"""Groups of variables with rates of their own: discriminative rates.

A group selects variables by layer or by variable path and gives them either
a `factor` on the optimizer's whole schedule (fastai's `slice`, TensorFlow
Addons' `MultiOptimizer`) or bounds of their own, `learning_rate` and
`max_lr` (PyTorch's per-group lists). Every group follows the optimizer's
policy: the same cycle, at its own height. Variables that no group selects
follow the optimizer's own bounds, the base group.

A selection is held as names and patterns, never as layer objects, so that
a config holds it. A layer is held by its name, which every path of its
variables shows (`"dense_1/kernel"`, `"sequential/dense_1/kernel"`); a model
by the names of its layers that have variables, since a model's own name
shows in its variables' paths only while it is nested (a loaded model's
layers are built on their own).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from clr_optimizers._checks import FLOAT32_MAX, as_number, check_number, reject_unknown

KEYS = ("name", "layers", "paths", "factor", "learning_rate", "max_lr")
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


@dataclasses.dataclass(frozen=True)
class Group:
    """One group: its name, its selection and its rate, validated."""

    name: str
    #: Layer names, each matching the variables whose path has it as a part.
    layers: tuple[str, ...]
    #: Patterns on variable paths (`fnmatch`: `*`, `?`, `[...]`).
    paths: tuple[str, ...]
    #: The factor on the optimizer's rate, or `None` for bounds of its own.
    factor: float | None
    #: Its own floor and peak (with `factor`, `None`).
    learning_rate: float | None = None
    max_lr: float | None = None

    def selects(self, path: str) -> bool:
        parts = path.split("/")[:-1]
        return any(layer in parts for layer in self.layers) or any(
            fnmatch.fnmatchcase(path, pattern) for pattern in self.paths
        )

    def selection(self) -> str:
        """The selection, as a message quotes it."""
        given = [f"layers={list(self.layers)}"] if self.layers else []
        given += [f"paths={list(self.paths)}"] if self.paths else []
        return ", ".join(given)

    def to_config(self, bounds: tuple[float, float] | None = None) -> dict[str, Any]:
        """The dict that gives this group again; `bounds` are its floor and
        peak as the step uses them (an assignment rescales them)."""
        config: dict[str, Any] = {"name": self.name}
        if self.layers:
            config["layers"] = list(self.layers)
        if self.paths:
            config["paths"] = list(self.paths)
        if self.factor is not None:
            config["factor"] = self.factor
        else:
            floor, peak = bounds or (self.learning_rate, self.max_lr)
            config.update(learning_rate=floor, max_lr=peak)
        return config


def parse(
    groups: Any, floor: float, peak: float | None, *, chain: bool
) -> tuple[Group, ...]:
    """The `groups` argument, checked: a list of dicts, each naming its
    selection and its rate. `floor` and `peak` are the optimizer's bounds
    (`peak` is `None` without `clr`); in a chain, whose pieces have bounds
    of their own, a group can only give a factor."""
    if groups is None:
        return ()
    if isinstance(groups, (Mapping, str, bytes)):
        raise TypeError(
            "`groups` must be a list of dicts, one per group, such as "
            "[{'layers': backbone, 'factor': 0.1}]. "
            f"Received: groups={groups!r}."
        )
    groups = list(groups)
    parsed: list[Group] = []
    for position, spec in enumerate(groups):
        default = f"group_{position + 1}"
        if not isinstance(spec, Mapping):
            raise TypeError(
                f"Each group must be a dict such as {{'layers': [...], "
                f"'factor': 0.1}}. Received: groups[{position}]={spec!r}."
            )
        reject_unknown(f"groups[{position}]", spec, KEYS)
        name = spec.get("name", default)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                "A group's `name` must be a non-empty string of letters, "
                "digits, '_', '.' or '-' (it names the group's series in logs). "
                f"Received: groups[{position}]['name']={name!r}."
            )
        if any(group.name == name for group in parsed):
            raise ValueError(
                f"Two groups are named {name!r}; each group needs a name of its own."
            )
        layers, paths = _selection(name, spec.get("layers"), spec.get("paths"))
        parsed.append(_rate(name, spec, layers, paths, floor, peak, chain))
    return tuple(parsed)


def _selection(
    name: str, layers: Any, paths: Any
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The layer names and path patterns of a group's selection."""
    names: list[str] = []
    patterns = list(_strings(name, "paths", paths))
    for layer in _items(layers):
        if isinstance(layer, str):
            names.append(_nonempty(name, "layers", layer))
        else:
            owners = _owners(name, layer)
            names += [n for n in owners if isinstance(n, str)]
            patterns += [p for o in owners if isinstance(o, tuple) for p in o]
    if not names and not patterns and _items(layers):
        raise ValueError(f"Group {name!r}: none of its layers has variables.")
    if not names and not patterns:
        raise ValueError(
            f"Group {name!r} selects nothing: give `layers` (Keras layers or "
            "their names) or `paths` (patterns on variable paths, such as "
            "'conv*')."
        )
    return tuple(dict.fromkeys(names)), tuple(dict.fromkeys(patterns))


def _owners(name: str, layer: Any) -> list[str | tuple[str, ...]]:
    """The names of `layer` and its layers that own variables: a model's
    layers each (its own name is not in their paths once it is loaded), a
    layer by its name, which its variables' paths show; or, for a layer
    whose paths do not, its variables' paths (a tuple). A built layer
    without variables (dropout, pooling) selects nothing."""
    if not isinstance(layer, keras.layers.Layer):
        raise TypeError(
            f"Group {name!r}: `layers` holds Keras layers or layer names. "
            f"Received: {layer!r}."
        )
    if not layer.built:
        raise ValueError(
            f"Group {name!r}: the layer {layer.name!r} is not built yet. "
            "Build the model first (call it on data, or give it an `Input`), "
            "or select the layer by its name."
        )
    if isinstance(layer, keras.Model):
        return [o for sub in layer.layers for o in _owners(name, sub)]
    variables = layer.weights
    if not variables:
        return []
    if all(layer.name in v.path.split("/")[:-1] for v in variables):
        return [layer.name]
    return [tuple(v.path for v in variables)]


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def _strings(name: str, key: str, value: Any) -> list[str]:
    items = _items(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(
                f"Group {name!r}: `{key}` holds strings. Received: {item!r}."
            )
        _nonempty(name, key, item)
    return items


def _nonempty(name: str, key: str, value: str) -> str:
    if not value:
        raise ValueError(f"Group {name!r}: `{key}` holds an empty string.")
    return value


def _rate(
    name: str,
    spec: Mapping[str, Any],
    layers: tuple[str, ...],
    paths: tuple[str, ...],
    floor: float,
    peak: float | None,
    chain: bool,
) -> Group:
    """The group with its factor, or with both its bounds (one derived from
    the other when only one is given)."""
    given = [key for key in ("factor", "learning_rate", "max_lr") if key in spec]
    label = f"groups[{name!r}]"
    if not given:
        raise ValueError(
            f"Group {name!r} gives no rate: give `factor` (on the optimizer's "
            "bounds) or `learning_rate` and `max_lr` (bounds of its own)."
        )
    if "factor" in given:
        if len(given) > 1:
            raise ValueError(
                f"Group {name!r} gives `factor` and bounds "
                f"({', '.join(given[1:])}); give one or the other."
            )
        factor = check_number(f"{label}['factor']", as_number(spec["factor"]))
        if max(floor, peak or 0.0) * factor > FLOAT32_MAX:
            raise ValueError(
                f"Group {name!r}: the factor {factor} takes the optimizer's "
                "bounds outside float32's range."
            )
        return Group(name, layers, paths, factor)
    if chain or peak is None:
        where = (
            "the pieces of a chain have bounds of their own"
            if chain
            else "without `clr` there is no `max_lr`"
        )
        raise ValueError(
            f"Group {name!r} gives bounds of its own, but {where}: give the "
            "group a `factor` on the optimizer's schedule."
        )
    own_floor = spec.get("learning_rate")
    own_peak = spec.get("max_lr")
    if own_floor is not None:
        own_floor = check_number(
            f"{label}['learning_rate']", as_number(own_floor), positive=False
        )
    if own_peak is not None:
        own_peak = check_number(f"{label}['max_lr']", as_number(own_peak))
    if own_peak is None:  # in the optimizer's proportion
        if own_floor is None or floor == 0:
            raise ValueError(
                f"Group {name!r}: give `max_lr`; it cannot be derived from "
                "`learning_rate` when the optimizer's floor is 0."
            )
        own_peak = check_number(f"{label}['max_lr']", own_floor * peak / floor)
    if own_floor is None:
        own_floor = own_peak * floor / peak
    if np.float32(own_peak) < np.float32(own_floor):
        raise ValueError(
            f"Group {name!r}: `max_lr` must be at least `learning_rate` (the "
            f"bottom of its cycle). Received: max_lr={own_peak}, "
            f"learning_rate={own_floor}."
        )
    return Group(name, layers, paths, None, own_floor, own_peak)


def assign(groups: Sequence[Group], paths: Sequence[str]) -> list[int]:
    """The group of each variable (by its path): 0 for the base group, `i + 1`
    for `groups[i]`. A variable that two groups select, and a group that
    selects none of `paths`, are errors that name the groups."""
    chosen: list[int] = []
    for path in paths:
        matches = [i for i, group in enumerate(groups) if group.selects(path)]
        if len(matches) > 1:
            first, second = (groups[i] for i in matches[:2])
            raise ValueError(
                f"The variable {path!r} is selected by two groups, {first.name!r} "
                f"({first.selection()}) and {second.name!r} "
                f"({second.selection()}); a variable belongs to one group at "
                "most."
            )
        chosen.append(matches[0] + 1 if matches else 0)
    for i, group in enumerate(groups):
        if i + 1 not in chosen:
            examples = ", ".join(repr(p) for p in list(paths)[:3])
            raise ValueError(
                f"Group {group.name!r} ({group.selection()}) selects none of "
                f"the {len(paths)} variables the optimizer updates, whose "
                f"paths are such as {examples}. A frozen layer's variables are "
                "not updated."
            )
    return chosen


def spread(
    layer_groups: Sequence[Any],
    low: float,
    high: float,
    names: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Groups whose rates spread geometrically from `low` to `high`.

    fastai's `lr_max=slice(low, high)`: the rates of `n` layer groups, first
    (the input side) to last (the head), are `low * q**i` with
    `q = (high / low) ** (1 / (n - 1))`. Each group gets the factor that
    takes the optimizer's `max_lr`, which should be `high`, to its rate, so
    that the last group follows the optimizer's own bounds and every group
    keeps the shape of the cycle (in one-cycle, the start and the final rate
    scale alike).

    Args:
        layer_groups: One entry per group, in order from the input: a layer,
            a layer name, or a list of them.
        low: The rate of the first group, greater than 0.
        high: The rate of the last group, at least `low`: the optimizer's
            `max_lr`.
        names: The groups' names. Defaults to `group_1`, `group_2`, ...

    Returns:
        The list to pass as `groups`.

    Example:

    ```python
    model = keras.Sequential(
        [keras.Input((4,)), *(keras.layers.Dense(8) for _ in range(3)),
         keras.layers.Dense(1)]
    )
    groups = spread(model.layers, 1e-4, 1e-2)  # rates 1e-4 ... 1e-2
    opt = SGD(
        learning_rate=1e-3,
        clr={"max_lr": 1e-2, "mode": "one_cycle", "total_steps": 1000},
        groups=groups,
    )
    model.compile(optimizer=opt, loss="mse")
    ```
    """
    low = check_number("low", as_number(low))
    high = check_number("high", as_number(high))
    if high < low:
        raise ValueError(
            f"`high` must be at least `low`. Received: low={low}, high={high}."
        )
    count = len(layer_groups)
    if count == 0:
        raise ValueError("`layer_groups` must hold at least one group.")
    if names is not None and len(names) != count:
        raise ValueError(f"`names` has {len(names)} entries for {count} layer groups.")
    ratio = (high / low) ** (1 / (count - 1)) if count > 1 else 1.0
    groups = []
    for i, layers in enumerate(layer_groups):
        group = {"layers": layers, "factor": low * ratio**i / high}
        if i == count - 1:
            group["factor"] = 1.0
        if names is not None:
            group["name"] = names[i]
        groups.append(group)
    return groups
