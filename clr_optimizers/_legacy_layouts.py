"""Optimizer state saved in the layouts of earlier versions.

0.1.0 saved the stock optimizer's variables only: it kept `max_lr` in the
config and had no cycled momentum. This version tracks `max_lr` as a variable
after the stock ones (and the cycled momentum, when there is one, before it).
State in the stock layout therefore lacks the last variable; it loads with
`max_lr` taken from the config, which the constructor has already set.
Dropping the support for 0.1.0 files is deleting this module and its one use.
"""

from __future__ import annotations

from typing import Any

from clr_optimizers._types import Optimizer


def variables_for(
    optimizer: Optimizer, variables: list[Any], saved: int
) -> list[Any] | None:
    """The variables that `saved` stored values belong to, in order, when the
    state is in an earlier layout; `None` when it is not."""
    max_lr = optimizer._max_lr
    if (
        max_lr is not None
        and optimizer._momentum_variable is None
        and optimizer.built
        and saved == len(variables) - 1
    ):
        return [v for v in variables if v is not max_lr]
    return None
