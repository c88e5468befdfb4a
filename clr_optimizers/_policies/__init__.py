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
with it; none re-states a formula. Adding a family is one module and one
entry in `FAMILIES`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clr_optimizers._checks import check_number, check_pair, reject_unknown
from clr_optimizers._policies import warmup
from clr_optimizers._policies._base import Policy
from clr_optimizers._policies.chain import Chain
from clr_optimizers._policies.cyclical import Cyclical
from clr_optimizers._policies.one_cycle import OneCycle
from clr_optimizers._policies.time_decay import TimeDecay
from clr_optimizers._policies.warm_restarts import WarmRestarts
from clr_optimizers._policies.warmup import Warmup

# The families a `clr` dict can describe, each with a description for messages.
FAMILIES: dict[type[Policy], str] = {
    Cyclical: "the cyclical modes",
    OneCycle: "mode 'one_cycle'",
    WarmRestarts: "mode 'warm_restarts'",
    Chain: "mode 'chain'",
}
MODES = tuple(mode for family in FAMILIES for mode in family.modes if mode)
CYCLICAL_MODES = tuple(mode for mode in Cyclical.modes if mode)
# Every key of a `clr` dict: "max_lr", "mode", "momentum" and the warmup's
# serve every family.
KEYS = (
    "max_lr",
    "mode",
    "momentum",
    *warmup.KEYS,
    *dict.fromkeys(key for f in FAMILIES for key in f.keys),
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
    (rather than taking a default): mode "one_cycle" can take its starting
    rate from `div_factor` instead. `strict` refuses a custom function that
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

    mode = clr.get("mode")
    family = next((f for f in FAMILIES if mode in f.modes), None)
    if family is None:
        raise ValueError(
            f"`clr['mode']` must be one of {', '.join(repr(m) for m in MODES)}. "
            f"Received: mode={mode!r}."
        )
    if family is Cyclical and mode is None and "scale_fn" in clr:
        described = "a custom `scale_fn`"
    else:
        described = f"mode {mode or 'triangular'!r}"
    for other, name in FAMILIES.items():
        for key in other.keys:
            if other is not family and key in clr and key not in family.keys:
                raise ValueError(
                    f"`clr[{key!r}]` is not used by {described}; it belongs to "
                    f"{name}. Received: {key}={clr[key]!r}."
                )
    policy, learning_rate = family.from_clr(
        clr,
        max_lr=max_lr,
        momentum=momentum,
        learning_rate=learning_rate,
        learning_rate_given=learning_rate_given,
        decay=decay,
        strict=strict,
    )
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
    "CYCLICAL_MODES",
    "FAMILIES",
    "KEYS",
    "MODES",
    "Chain",
    "Cyclical",
    "OneCycle",
    "Policy",
    "TimeDecay",
    "WarmRestarts",
    "Warmup",
    "check_bounds",
    "parse",
]
