"""What every policy is: a validated configuration and a formula of the update
count, written once with `keras.ops`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import keras
import numpy as np
from keras import backend, ops

from clr_optimizers._checks import counter_dtype, int_max
from clr_optimizers._types import Tensor


class Policy:
    """A learning-rate policy.

    A policy is an immutable configuration (a frozen dataclass) read from a
    `clr` dict by `from_clr`, written back by `to_clr`, and a formula: called
    with the number of updates already applied (an integer tensor), the floor
    and the peak (float32 tensors or numbers), it returns the rate of the next
    update and the weight `w` in [0, 1] that sets a cycled momentum to
    `highest - (highest - lowest) * w`.

    The floor is the optimizer's `learning_rate` and the peak its `max_lr`:
    both reach the formula as arguments, not as fields, because the optimizer
    keeps them in variables that an assignment of the learning rate rescales.
    Every formula is linear in the two, so rescaling both rescales the rate.
    """

    #: The values of `clr["mode"]` this family serves (`None`: no mode given).
    modes: ClassVar[tuple[str | None, ...]] = ()
    #: The `clr` keys of this family, besides `max_lr`, `mode` and `momentum`.
    keys: ClassVar[tuple[str, ...]] = ()

    max_lr: float | None
    momentum: tuple[float, float] | None
    decay: float

    @classmethod
    def from_clr(
        cls,
        clr: Mapping[str, Any],
        *,
        max_lr: float,
        momentum: tuple[float, float] | None,
        learning_rate: float,
        learning_rate_given: bool,
        decay: float,
        strict: bool,
    ) -> tuple[Policy, float]:
        """The policy a validated-in-part `clr` dict describes, and the floor.

        `max_lr` and `momentum` are already checked; `learning_rate_given` says
        whether the caller chose `learning_rate` (a policy may derive it
        otherwise); `strict` asks that a custom function can be saved.
        """
        raise NotImplementedError

    def to_clr(self, peak: float | None = None) -> dict[str, Any] | None:
        """The complete `clr` dict, every default filled in; with `peak`, for
        that peak in place of `max_lr` (every other bound scaled with it)."""
        raise NotImplementedError

    def __call__(
        self, step: Tensor, floor: Tensor, peak: Tensor
    ) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def label(self) -> str:
        """A short description for legends."""
        return str(getattr(self, "mode", type(self).__name__))

    def check(self, floor: float, dtype: Any) -> None:
        """Evaluates what only an evaluation can check (a custom function);
        called once at construction."""

    def momentum_of(self, weight: Tensor) -> Tensor:
        """The cycled momentum at `weight`: `highest - (highest - lowest) w`."""
        assert self.momentum is not None
        lowest, highest = self.momentum
        # Clipped: in float32, `highest - (highest - lowest)` can round below
        # a tiny `lowest`, to 0.
        return ops.clip(highest - (highest - lowest) * weight, lowest, highest)


def decayed(step: Tensor, floor: Tensor, decay: float) -> Tensor:
    """`floor / (1 + decay * step)`: time-based decay, before any cycle."""
    floor = ops.cast(floor, "float32")
    if not decay:
        return floor
    return floor / (1.0 + decay * ops.cast(step, "float32"))


def as_step(step: Any) -> Tensor:
    """A count of applied updates (a number, an array or a tensor) as an
    integer tensor; a float is rounded down, a negative count is 0.

    Integer tensors keep their dtype (Keras's counter is int64 on TensorFlow,
    int32 on JAX and PyTorch); Python and NumPy numbers take the counter's
    dtype, or int64 where they exceed it.
    """
    if not ops.is_tensor(step) and not isinstance(step, keras.Variable):
        array = np.asarray(step)
        if array.dtype.kind not in "iuf":
            raise TypeError(
                f"A step must be a number of updates. Received: step={step!r}."
            )
        array = np.maximum(np.floor(array), 0) if array.dtype.kind == "f" else array
        array = np.maximum(array, 0)
        dtype = counter_dtype()
        if array.size and array.max() > int_max(dtype):
            dtype = "int64"
        tensor = ops.convert_to_tensor(array.astype(dtype), dtype=dtype)
        if backend.standardize_dtype(tensor.dtype) != dtype:  # JAX without x64
            raise ValueError(
                f"A step must be at most {int_max(counter_dtype()):,} on this "
                f"backend, whose integers have 32 bits. Received: step={step!r}."
            )
        return tensor
    step = ops.convert_to_tensor(step)
    dtype = backend.standardize_dtype(step.dtype)
    if "float" in dtype:
        step = ops.cast(ops.floor(step), counter_dtype())
    elif "int" not in dtype:
        raise TypeError(f"A step must be a number of updates. Received: {step!r}.")
    return ops.maximum(step, 0)


def schedule_rates(
    schedule: Callable[[Tensor], Tensor], steps: np.ndarray
) -> np.ndarray:
    """A schedule's rates at `steps`: in one call where the schedule takes an
    array (this package's do), else one call per step."""
    try:
        values = np.asarray(ops.convert_to_numpy(schedule(as_step(steps))))
        if values.shape == np.shape(steps):
            return values.astype(np.float64)
    except Exception:  # a schedule written for one step at a time
        pass
    return np.array(
        [float(ops.convert_to_numpy(schedule(as_step(int(s))))) for s in steps]
    )
