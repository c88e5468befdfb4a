"""What every policy is: a validated configuration and a formula of the update
count, written once with `keras.ops`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import keras
import numpy as np
from keras import backend, ops

from clr_optimizers._checks import counter_dtype, int_max
from clr_optimizers._types import Tensor

#: The default of a key that must be given (or that another key replaces).
REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "required"})()


@dataclasses.dataclass(frozen=True)
class Key:
    """One key of a `clr` dict, declared by the family that reads it.

    Parsing, the error messages, `restart`, the schedule objects and the
    reference docs all read these declarations.
    """

    name: str
    #: One line for the reference docs.
    doc: str
    #: What the key is when not given: a value, `None` (off), or `REQUIRED`.
    default: Any = None
    #: Keys that giving this one replaces in an existing configuration
    #: (`restart(step_size=...)` drops `step_size_up` and `step_size_down`).
    replaces: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Given:
    """What `from_clr` receives besides the family's own keys."""

    #: The peak and the cycled momentum, already checked.
    max_lr: float
    momentum: tuple[float, float] | None
    #: The floor, and whether the caller chose it (a family that derives its
    #: floor may take it from its keys instead).
    learning_rate: float
    learning_rate_given: bool = True
    decay: float = 0.0
    #: Refuse a custom function that a config cannot hold.
    strict: bool = True
    #: How messages call a key (`clr['step_size']`, or `step_size` for the
    #: schedule classes of TensorFlow Addons).
    name: Callable[[str], str] = lambda key: f"clr[{key!r}]"
    #: A built-in mode may take either scale mode (TensorFlow Addons' classes).
    any_scale_mode: bool = False


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
    #: How messages and the docs name the family.
    description: ClassVar[str] = ""
    #: The `clr` keys of this family, besides `max_lr`, `mode` and `momentum`.
    keys: ClassVar[tuple[Key, ...]] = ()
    #: Why `decay` does not apply, or `None` where it does.
    no_decay: ClassVar[str | None] = None
    #: How the family can derive the floor when `learning_rate` is not given
    #: (`None`: it cannot, and the floor is required).
    derived_floor: ClassVar[str | None] = None

    max_lr: float | None
    momentum: tuple[float, float] | None
    decay: float

    @classmethod
    def key_names(cls) -> tuple[str, ...]:
        return tuple(key.name for key in cls.keys)

    @classmethod
    def default(cls, name: str) -> Any:
        """The declared default of the family's key `name`."""
        return next(key.default for key in cls.keys if key.name == name)

    @classmethod
    def from_clr(cls, clr: Mapping[str, Any], given: Given) -> tuple[Policy, float]:
        """The policy a `clr` dict of this family describes, and the floor.

        The common keys are already checked (see `Given`), and `clr` holds
        no key of another family.
        """
        raise NotImplementedError

    def to_clr(self, peak: float | None = None) -> dict[str, Any] | None:
        """The complete `clr` dict, every default filled in; with `peak`, for
        that peak in place of `max_lr` (every other bound scaled with it)."""
        raise NotImplementedError

    def clr_dict(self, peak: float | None, **keys: Any) -> dict[str, Any]:
        """A `clr` dict of this family: `max_lr` (or `peak`), `mode`, the
        family's `keys` and `momentum`, leaving out the keys that are `None`."""
        config = {
            "max_lr": self.max_lr if peak is None else peak,
            "mode": getattr(self, "mode", None),
            **keys,
            "momentum": None if self.momentum is None else list(self.momentum),
        }
        return {key: value for key, value in config.items() if value is not None}

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


def count_like(step: Tensor, value: int) -> Any:
    """`value` in the dtype of the counts `step`, so that comparing it with
    them casts nothing in the step (a Python int would be cast on
    TensorFlow): a NumPy number, a constant of the compiled step; on
    PyTorch a tensor, as `torch.compile` does not trace NumPy values."""
    if backend.backend() == "torch":
        return ops.convert_to_tensor(value, dtype=step.dtype)
    return np.asarray(value, dtype=backend.standardize_dtype(step.dtype))


def quotient(count: Any, divisor: int) -> Any:
    """`count // divisor` for a count `>= 0` and an integer divisor `> 0`."""
    if backend.backend() == "jax" and ops.is_tensor(count):
        # JAX's `//` also corrects for negative operands (about ten
        # operations); for these the truncating division is the same.
        from jax import lax

        return lax.div(count, ops.convert_to_tensor(divisor, count.dtype))
    return count // divisor


def remainder(count: Any, divisor: int) -> Any:
    """`count % divisor` for a count `>= 0` and an integer divisor `> 0`."""
    if backend.backend() == "jax" and ops.is_tensor(count):
        from jax import lax  # as in `quotient`

        return lax.rem(count, ops.convert_to_tensor(divisor, count.dtype))
    return count % divisor


def selects_one(step: Tensor) -> bool:
    """Whether a policy made of parts (the pieces of a chain) can evaluate
    only the part that applies at `step`, with a conditional: for a single
    count in a compiled step, where a conditional runs one branch, on
    TensorFlow and JAX. Many counts at once (on the host) need every part;
    so does PyTorch, where choosing a branch reads the count on the host."""
    return len(step.shape) == 0 and backend.backend() != "torch"


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


def host_values(values: Tensor, counts: Any) -> np.ndarray:
    """Values computed for `counts` (a number or an array) as a float64 array
    of their shape (a value that does not depend on the count, repeated)."""
    values = np.asarray(ops.convert_to_numpy(values), dtype=np.float64)
    return np.broadcast_to(values, np.shape(counts)).copy()


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
