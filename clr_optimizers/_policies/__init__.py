"""The policy layer: every learning-rate policy, the one place its
configuration, its checks and its formula are written.

Each family of policies is one module with one frozen dataclass (a subclass
of `Policy`): `cyclical` (the 2017 modes and custom scale functions, with
straight or cosine ramps), `one_cycle`, `warm_restarts` (SGDR), `chain`
(policies in sequence), and `time_decay` (`decay` without a cycle); `warmup`
puts a linear warmup before any of them. `parse` turns the
arguments `clr=`, `decay=` and `learning_rate=` into one of them. The
optimizers, the schedule objects, the plots and the learning-rate monitor
evaluate what `parse` returns, and the range test checks its suggestions
with it; none re-states a formula. Each family declares its keys (with
their defaults, one line of docs each, and the keys each replaces), whether
`decay` applies and how it derives its floor; parsing, the messages,
`restart`, the schedule objects and the reference docs read those
declarations. Adding a family is one module and one entry in `FAMILIES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from clr_optimizers._checks import check_number, check_pair, reject_unknown
from clr_optimizers._policies import warmup
from clr_optimizers._policies._base import REQUIRED, Given, Key, Policy
from clr_optimizers._policies.chain import Chain
from clr_optimizers._policies.cyclical import Cyclical
from clr_optimizers._policies.one_cycle import OneCycle
from clr_optimizers._policies.polynomial import Polynomial
from clr_optimizers._policies.step import Step
from clr_optimizers._policies.time_decay import TimeDecay
from clr_optimizers._policies.warm_restarts import WarmRestarts
from clr_optimizers._policies.warmup import Warmup

# The families a `clr` dict can describe, in the order the docs list them.
FAMILIES: tuple[type[Policy], ...] = (
    Cyclical,
    OneCycle,
    WarmRestarts,
    Polynomial,
    Step,
    Chain,
)
MODES = tuple(mode for family in FAMILIES for mode in family.modes if mode)
CYCLICAL_MODES = tuple(mode for mode in Cyclical.modes if mode)
# The keys that serve every family, besides the warmup's.
COMMON = (
    Key(
        "max_lr",
        "The peak of the schedule, at least `learning_rate` (the floor).",
        REQUIRED,
    ),
    Key(
        "mode",
        "The policy: one of " + ", ".join(f'`"{m}"`' for m in MODES) + ".",
        "triangular",
        replaces=("scale_fn", "scale_mode"),
    ),
    Key(
        "momentum",
        "A pair `(lowest, highest)` that cycles the optimizer's momentum "
        "(`momentum`, or `beta_1` in the Adam family) opposite to the rate.",
    ),
)
# Every declaration of a `clr` key (a family may share a name with another,
# as `gamma`), and every key's name.
DECLARED = (*COMMON, *warmup.KEYS, *(key for f in FAMILIES for key in f.keys))
KEYS = tuple(dict.fromkeys(key.name for key in DECLARED))


def replaced_by(key: str) -> tuple[str, ...]:
    """The keys that giving `key` replaces in an existing configuration (in
    any family that declares it)."""
    replaced = (other for k in DECLARED if k.name == key for other in k.replaces)
    return tuple(dict.fromkeys(replaced))


def family_of(clr: Mapping[str, Any]) -> type[Policy]:
    """The family whose `mode` a `clr` dict names."""
    mode = clr.get("mode")
    family = next((f for f in FAMILIES if mode in f.modes), None)
    if family is None:
        raise ValueError(
            f"`clr['mode']` must be one of {', '.join(repr(m) for m in MODES)}. "
            f"Received: mode={mode!r}."
        )
    return family


def check_floor_derivable(clr: Any) -> None:
    """Without `learning_rate`, `clr` must name a family that derives it."""
    family = family_of(clr) if isinstance(clr, Mapping) else None
    if family is None or family.derived_floor is None:
        derives = [f for f in FAMILIES if f.derived_floor is not None]
        raise ValueError(
            "`learning_rate` (the floor of the schedule) is required; only "
            + " and ".join(
                f"{f.description}, which can take it as {f.derived_floor},"
                for f in derives
            )
            + " can do without it."
        )


def _hint(key: str) -> str | None:
    if key == "base_lr":
        return (
            " The floor of the cycle is the optimizer's `learning_rate` (the "
            "2017 callback's base_lr); `clr` holds the peak, `max_lr`."
        )
    return None


def parse(
    clr: Any,
    *,
    learning_rate: float,
    learning_rate_given: bool = True,
    decay: float = 0.0,
    strict: bool = True,
) -> tuple[Policy | None, float]:
    """The policy that `clr` and `decay` describe, and the floor of its rate.

    Returns `None` for `clr=None` without decay (a plain rate).
    `learning_rate_given` says whether the caller chose `learning_rate`
    (rather than taking a default): a family with a `derived_floor` can
    take it from its keys instead. `strict` refuses a custom function that
    a config cannot hold.
    """
    if clr is None:
        return (TimeDecay(decay) if decay else None), learning_rate
    if not isinstance(clr, dict):
        raise TypeError(
            "`clr` must be None or a dict with the keys "
            f"{', '.join(KEYS)}. Received: clr={clr!r} of type {type(clr).__name__}."
        )
    reject_unknown("`clr`", clr, KEYS, hint=_hint)
    # A key given as None means the key is not given, as in a normalised dict.
    clr = {key: value for key, value in clr.items() if value is not None}
    warming, clr = warmup.split(clr)
    if "max_lr" not in clr:
        raise ValueError(
            "`clr` is missing the required key 'max_lr'. Example: "
            'clr={"max_lr": 0.06, "step_size": 2000}.'
        )
    max_lr = check_number("clr['max_lr']", clr["max_lr"])
    momentum = clr.get("momentum")
    if momentum is not None:
        momentum = check_pair("clr['momentum']", momentum)

    family = family_of(clr)
    mode = clr.get("mode")
    if family is Cyclical and mode is None and "scale_fn" in clr:
        described = "a custom `scale_fn`"
    else:
        described = f"mode {mode or 'triangular'!r}"
    own = family.key_names()
    for key in clr:
        owners = [f.description for f in FAMILIES if key in f.key_names()]
        if owners and key not in own:
            raise ValueError(
                f"`clr[{key!r}]` is not used by {described}; it belongs to "
                f"{' and '.join(owners)}. Received: {key}={clr[key]!r}."
            )
    if decay and family.no_decay is not None:
        raise ValueError(
            f"`decay` does not apply to {described}: {family.no_decay}. "
            f"Received: decay={decay}."
        )
    given = Given(
        max_lr=max_lr,
        momentum=momentum,
        learning_rate=learning_rate,
        learning_rate_given=learning_rate_given,
        decay=decay,
        strict=strict,
    )
    policy, learning_rate = family.from_clr(clr, given)
    check_bounds(learning_rate, max_lr)
    return Warmup.wrap(policy, warming), learning_rate


def check_bounds(
    floor: float,
    peak: float,
    floor_name: str = "learning_rate",
    peak_name: str = "clr['max_lr']",
) -> None:
    """The peak must be at least the floor, compared as the float32 values the
    training step uses (so that a config read back from a variable passes)."""
    if np.float32(peak) < np.float32(floor):
        raise ValueError(
            f"`{peak_name}` must be at least the learning rate `{floor_name}` "
            f"(the bottom of the cycle). Received: {peak_name}={peak}, "
            f"{floor_name}={floor}."
        )


__all__ = [
    "COMMON",
    "CYCLICAL_MODES",
    "DECLARED",
    "FAMILIES",
    "KEYS",
    "MODES",
    "REQUIRED",
    "Chain",
    "Cyclical",
    "Given",
    "Key",
    "OneCycle",
    "Policy",
    "Polynomial",
    "Step",
    "TimeDecay",
    "WarmRestarts",
    "Warmup",
    "check_bounds",
    "check_floor_derivable",
    "family_of",
    "parse",
    "replaced_by",
]
