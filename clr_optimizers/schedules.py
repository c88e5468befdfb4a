"""Every policy as a Keras `LearningRateSchedule`, for any optimizer.

`CLRSchedule(learning_rate, clr)` takes any `clr` dict the CLR optimizers
take; TensorFlow Addons' four cyclical schedules keep their names, arguments,
defaults and config keys, so that migrating from them is changing the
import. Each is computed from the integer update count with the same exact
arithmetic as the optimizers, inside the compiled step, and is registered
with Keras: a model saved with one loads wherever `clr_optimizers` is
imported, also with `safe_mode=True`.

```python
import keras
from clr_optimizers.schedules import CLRSchedule

schedule = CLRSchedule(0.01, {"max_lr": 0.06, "step_size": 2000})
model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss="mse")
```

`schedule(step)` is the rate of the update that follows `step` applied
updates, the number a stock optimizer passes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from clr_optimizers._checks import as_number, check_number, counter_dtype
from clr_optimizers._policies import (
    Cyclical,
    Given,
    Policy,
    TimeDecay,
    check_bounds,
    check_floor_derivable,
    parse,
)
from clr_optimizers._policies._base import as_step
from clr_optimizers._policies._scale_fn import (
    UnsavedScaleFunction as UnsavedScaleFunction,  # the warning, to filter it
)
from clr_optimizers._types import Tensor

_PACKAGE = "clr_optimizers"


def _check_name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string. Received: name={name!r}.")
    return name


class _PolicySchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A schedule that evaluates a policy between fixed bounds."""

    _policy: Policy
    _floor: float
    _peak: float | None

    def __call__(self, step: Any) -> Tensor:
        rate, _ = self._policy(as_step(step), self._floor, self._peak)
        return rate


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CLRSchedule(_PolicySchedule):
    """A `clr` dict as a learning-rate schedule.

    `CLRSchedule(r, clr)(k)` is the rate that `SGD(learning_rate=r, clr=clr)`
    uses for update `k + 1`: the same modes, asymmetric halves,
    `restart_every`, `decay` and `one_cycle`, from the same formulas (see "The `clr`
    dict" in the documentation). A schedule sets only the rate: a `clr` that
    cycles the momentum needs a CLR optimizer or `cyclical()`.

    Args:
        learning_rate: The floor of the cycle (in mode "one_cycle" the start,
            which `clr['div_factor']` can give instead). Defaults to `None`,
            for mode "one_cycle" only.
        clr: The schedule, as for the CLR optimizers. `None` with `decay`
            gives time-based decay, and with neither a constant rate.
            Defaults to `None`.
        decay: Time-based decay of the floor, `learning_rate / (1 + decay n)`.
            Defaults to `None`.
        name: The schedule's name. Defaults to `"CLRSchedule"`.

    Example:

    ```python
    schedule = CLRSchedule(0.0075, {"max_lr": 0.03, "step_size": 2 * 100,
                                    "mode": "modified_triangular2"})
    keras.optimizers.SGD(learning_rate=schedule, momentum=0.9)
    ```
    """

    def __init__(
        self,
        learning_rate: float | None = None,
        clr: dict[str, Any] | None = None,
        decay: float | None = None,
        name: str = "CLRSchedule",
    ):
        super().__init__()
        if isinstance(clr, dict) and clr.get("momentum") is not None:
            raise ValueError(
                "`clr['momentum']`: a schedule sets only the learning rate, and a "
                "stock optimizer takes no schedule for its momentum. To cycle the "
                "momentum, use a CLR optimizer (clr_optimizers.SGD(..., clr={...})) "
                "or make one with clr_optimizers.cyclical(YourOptimizer). "
                f"Received: momentum={clr['momentum']!r}."
            )
        given = learning_rate is not None
        if not given:
            check_floor_derivable(clr)
        floor = 0.0
        if given:
            floor = check_number(
                "learning_rate", as_number(learning_rate), positive=False
            )
        decay = 0.0 if decay is None else check_number("decay", decay, positive=False)
        policy, floor = parse(
            clr,
            learning_rate=floor,
            learning_rate_given=given,
            decay=decay,
            strict=False,
        )
        self._policy = policy or TimeDecay(0.0)  # neither: a constant rate
        self._floor = floor
        self._peak = self._policy.max_lr
        self.name = _check_name(name)
        self._policy.check(floor, counter_dtype())

    @property
    def learning_rate(self) -> float:
        return self._floor

    @property
    def clr(self) -> dict[str, Any] | None:
        return self._policy.to_clr()

    @property
    def decay(self) -> float:
        return self._policy.decay

    def get_config(self) -> dict[str, Any]:
        return {
            "learning_rate": self._floor,
            "clr": self.clr,
            "decay": self.decay,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CyclicalLearningRate(_PolicySchedule):
    """TensorFlow Addons' `CyclicalLearningRate`, for Keras 3.

    ```
    cycle = floor(1 + step / (2 step_size))
    x     = |step / step_size - 2 cycle + 1|
    lr    = initial + (maximal - initial) * max(0, 1 - x) * scale_fn(m)
    ```

    where `m` is `cycle` (`scale_mode="cycle"`) or `step` (`"iterations"`)
    and `step` the number of updates already applied. The position in the
    cycle is computed exactly in integers, so the rate does not drift at
    large step counts.

    Args:
        initial_learning_rate: The floor of the cycle.
        maximal_learning_rate: The peak of the cycle.
        step_size: Updates per half cycle (a fraction is read as the nearest
            fraction with a denominator of at most 1000).
        scale_fn: The amplitude scale, a function of `m` written with
            `keras.ops` (or plain arithmetic). Any callable trains; to save
            the schedule, register it with
            `keras.saving.register_keras_serializable`: a registered function
            is saved by name, an instance of a registered class by its
            `get_config`.
        scale_mode: `"cycle"` or `"iterations"`: what `scale_fn` receives.
            Defaults to `"cycle"`.
        name: The schedule's name. Defaults to `"CyclicalLearningRate"`.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        maximal_learning_rate: float,
        step_size: float,
        scale_fn: Callable[..., Any] | str | dict[str, Any],
        scale_mode: str = "cycle",
        name: str = "CyclicalLearningRate",
    ):
        super().__init__()
        self._build(
            initial_learning_rate,
            maximal_learning_rate,
            step_size,
            scale_mode,
            name,
            {"scale_fn": scale_fn},
        )

    _policy: Cyclical

    def _build(
        self,
        initial: float,
        maximal: float,
        step_size: float,
        scale_mode: str,
        name: str,
        clr: dict[str, Any],
    ) -> None:
        initial = check_number(
            "initial_learning_rate", as_number(initial), positive=False
        )
        maximal = check_number("maximal_learning_rate", as_number(maximal))
        check_bounds(
            initial,
            maximal,
            floor_name="initial_learning_rate",
            peak_name="maximal_learning_rate",
        )
        clr = {
            "max_lr": maximal,
            "step_size": as_number(step_size),
            "scale_mode": scale_mode,
            **clr,
        }
        given = Given(
            max_lr=maximal,
            momentum=None,
            learning_rate=initial,
            strict=False,
            name=lambda key: key,
            any_scale_mode=True,
        )
        self._policy, _ = Cyclical.from_clr(clr, given)
        self._floor, self._peak = initial, maximal
        self._policy.check(initial, counter_dtype())
        self.initial_learning_rate = initial
        self.maximal_learning_rate = maximal
        self.step_size = self._policy.step_size
        self.scale_mode = self._policy.scale_mode
        self.name = _check_name(name)

    @property
    def scale_fn(self) -> Callable[..., Any]:
        """The amplitude scale, a function of the cycle or of the step (for
        the three named classes, their built-in scale, as in Addons)."""
        return self._policy.scale_function

    def get_config(self) -> dict[str, Any]:
        config = {
            "initial_learning_rate": self.initial_learning_rate,
            "maximal_learning_rate": self.maximal_learning_rate,
            "scale_fn": self._policy.to_clr()["scale_fn"],
            "step_size": self.step_size,
            "scale_mode": self.scale_mode,
        }
        config["name"] = self.name
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TriangularCyclicalLearningRate(CyclicalLearningRate):
    """TensorFlow Addons' `TriangularCyclicalLearningRate`: `scale_fn` is 1.

    Args:
        initial_learning_rate: The floor of the cycle.
        maximal_learning_rate: The peak of the cycle.
        step_size: Updates per half cycle.
        scale_mode: `"cycle"` or `"iterations"` (no effect on a constant
            scale). Defaults to `"cycle"`.
        name: Defaults to `"TriangularCyclicalLearningRate"`.
    """

    _mode = "triangular"

    def __init__(
        self,
        initial_learning_rate: float,
        maximal_learning_rate: float,
        step_size: float,
        scale_mode: str = "cycle",
        name: str = "TriangularCyclicalLearningRate",
    ):
        _PolicySchedule.__init__(self)
        self._build(
            initial_learning_rate,
            maximal_learning_rate,
            step_size,
            scale_mode,
            name,
            {"mode": self._mode},
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "maximal_learning_rate": self.maximal_learning_rate,
            "step_size": self.step_size,
            "scale_mode": self.scale_mode,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Triangular2CyclicalLearningRate(TriangularCyclicalLearningRate):
    """TensorFlow Addons' `Triangular2CyclicalLearningRate`: `scale_fn(m)` is
    `1 / 2**(m - 1)`, which halves the amplitude every cycle.

    Args:
        initial_learning_rate: The floor of the cycle.
        maximal_learning_rate: The peak of the first cycle.
        step_size: Updates per half cycle.
        scale_mode: `"cycle"` or `"iterations"`. Defaults to `"cycle"`.
        name: Defaults to `"Triangular2CyclicalLearningRate"`.
    """

    _mode = "triangular2"

    def __init__(
        self,
        initial_learning_rate: float,
        maximal_learning_rate: float,
        step_size: float,
        scale_mode: str = "cycle",
        name: str = "Triangular2CyclicalLearningRate",
    ):
        super().__init__(
            initial_learning_rate, maximal_learning_rate, step_size, scale_mode, name
        )


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ExponentialCyclicalLearningRate(CyclicalLearningRate):
    """TensorFlow Addons' `ExponentialCyclicalLearningRate`: `scale_fn(m)` is
    `gamma**m`.

    Args:
        initial_learning_rate: The floor of the cycle.
        maximal_learning_rate: The peak of the cycle, before the scale.
        step_size: Updates per half cycle.
        scale_mode: `"cycle"` or `"iterations"`. Defaults to `"iterations"`.
        gamma: The scale's base, in (0, 1]. Defaults to `1.0`.
        name: Defaults to `"ExponentialCyclicalLearningRate"`.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        maximal_learning_rate: float,
        step_size: float,
        scale_mode: str = "iterations",
        gamma: float = 1.0,
        name: str = "ExponentialCyclicalLearningRate",
    ):
        _PolicySchedule.__init__(self)
        gamma = as_number(gamma)
        self._build(
            initial_learning_rate,
            maximal_learning_rate,
            step_size,
            scale_mode,
            name,
            {"mode": "exp_range", "gamma": gamma},
        )
        self.gamma = self._policy.gamma

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "maximal_learning_rate": self.maximal_learning_rate,
            "step_size": self.step_size,
            "scale_mode": self.scale_mode,
            "gamma": self.gamma,
            "name": self.name,
        }


__all__ = [
    "CLRSchedule",
    "CyclicalLearningRate",
    "ExponentialCyclicalLearningRate",
    "Triangular2CyclicalLearningRate",
    "TriangularCyclicalLearningRate",
]
