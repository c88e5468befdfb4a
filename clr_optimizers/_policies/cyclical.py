"""The cyclical modes: triangular, triangular2, exp_range, modified_triangular2
and a custom scale function (Smith, 2017, arXiv:1506.01186).

Let `n` be the number of updates already applied, `floor` the learning rate,
`peak` the `max_lr`, and `s_up`, `s_down` the updates in the rising and the
falling half of a cycle (both `step_size` unless given apart):

```
floor_n = floor / (1 + decay * n)
cycle   = floor(1 + n / (s_up + s_down))            # 1, 2, 3, ...
t       = n - (cycle - 1) (s_up + s_down)           # updates into the cycle
h       = min(t / s_up, (s_up + s_down - t) / s_down)
lr(n)   = floor_n + (peak - floor_n) * h * scale
```

With equal halves `h = max(0, 1 - x)`, `x = |n / s - 2 cycle + 1|`, the
paper's form. `scale` is a function of `x = cycle` (scale mode "cycle") or
`x = n` ("iterations"): 1 (`triangular`), `1 / 2**(x - 1)` (`triangular2`),
`gamma**x` (`exp_range`, on `n` unless chosen otherwise) or a registered
function. With `ramp="cos"` each half is a half cosine instead of a straight
line: `h` becomes `(1 - cos(pi h)) / 2`, the same at the floor and the peak.
With `restart_every = K` the scale is evaluated as if counting
started afresh every K cycles (`modified_triangular2` is `triangular2` with
K = 3). A cycled momentum is `highest - (highest - lowest) * h * scale`.

The position in the cycle is computed in integer arithmetic from the
optimizer's integer counter, so it does not drift however long training runs:
no product leaves the counter's range (int64 on TensorFlow, int32 on JAX and
PyTorch).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

from keras import ops

from clr_optimizers._checks import (
    MAX_STEP_DENOMINATOR,
    check_choice,
    check_int,
    check_number,
    check_step_size,
    int_max,
)
from clr_optimizers._policies import _scale_fn
from clr_optimizers._policies._base import (
    REQUIRED,
    Given,
    Key,
    Policy,
    decayed,
    quotient,
    remainder,
)
from clr_optimizers._types import Tensor

MODES = ("triangular", "triangular2", "exp_range", "modified_triangular2")
SCALE_MODES = ("cycle", "iterations")
RAMPS = ("linear", "cos")
# The argument each built-in mode's scale is a function of.
_MODE_SCALE_MODE: dict[str | None, str] = {
    "triangular": "cycle",
    "triangular2": "cycle",
    "exp_range": "iterations",
    "modified_triangular2": "cycle",
}
_DEFAULT_RESTART_EVERY: dict[str | None, int] = {"modified_triangular2": 3}
# Keeps the cycle count modulo `restart_every` far inside int32.
MAX_RESTART_EVERY = 10**6


@dataclasses.dataclass(frozen=True)
class Cyclical(Policy):
    """A cyclical mode, validated, every default filled in."""

    modes = (None, *MODES)
    description = "the cyclical modes"
    keys = (
        Key(
            "step_size",
            "Updates in each half of a cycle (a fraction is read as the nearest "
            "with a denominator of at most 1000).",
            REQUIRED,
            replaces=("step_size_up", "step_size_down"),
        ),
        Key(
            "step_size_up",
            "Updates in the rising half, instead of `step_size`.",
            replaces=("step_size",),
        ),
        Key(
            "step_size_down",
            "Updates in the falling half; defaults to `step_size_up`.",
            replaces=("step_size",),
        ),
        Key("gamma", 'For mode `"exp_range"`, the scale\'s base, in (0, 1].', 1.0),
        Key(
            "restart_every",
            "Cycles after which the amplitude scale starts over (3 for "
            '`"modified_triangular2"`).',
        ),
        Key(
            "scale_fn",
            "A registered custom scale function, an instance of a registered "
            "class, or a registered name, instead of `mode`.",
            replaces=("mode",),
        ),
        Key(
            "scale_mode",
            '`"cycle"` or `"iterations"`: what a custom `scale_fn` receives '
            '(by default `"cycle"`; each mode has its own, `"iterations"` for '
            '`"exp_range"`).',
        ),
        Key("ramp", '`"linear"` or `"cos"`: the shape of each half.', "linear"),
    )

    max_lr: float
    mode: str | None  # None: a custom scale function
    step_size: int | float | None = None
    step_size_up: int | float | None = None
    step_size_down: int | float | None = None
    gamma: float = 1.0
    restart_every: int | None = None
    scale_fn: _scale_fn.Saved | None = None
    scale_mode: str = "cycle"
    ramp: str = "linear"
    momentum: tuple[float, float] | None = None
    decay: float = 0.0
    # The function `scale_fn` names (or the function itself, when it cannot be
    # saved); and `step_fractions` for each counter range it has served.
    function: Callable[..., Any] | None = dataclasses.field(
        default=None, repr=False, compare=False
    )
    _fractions: dict[int, tuple[int, int, int]] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_clr(cls, clr: Mapping[str, Any], given: Given) -> tuple[Cyclical, float]:
        name = given.name
        mode = clr.get("mode")
        step_size = step_size_up = step_size_down = None
        if "step_size" in clr:
            for key in ("step_size_up", "step_size_down"):
                if key in clr:
                    raise ValueError(
                        f"`clr['step_size']` and `clr[{key!r}]` exclude each other: "
                        "give `step_size` for equal halves, or `step_size_up` and "
                        "`step_size_down`."
                    )
            step_size = check_step_size(name("step_size"), clr["step_size"])
        elif "step_size_up" in clr:
            step_size_up = check_step_size(name("step_size_up"), clr["step_size_up"])
            step_size_down = check_step_size(
                name("step_size_down"), clr.get("step_size_down", step_size_up)
            )
        elif "step_size_down" in clr:
            raise ValueError(
                "`clr['step_size_down']` needs `clr['step_size_up']`, the length of "
                "the rising half."
            )
        else:
            raise ValueError(
                "`clr` is missing the required key 'step_size' (or 'step_size_up'). "
                'Example: clr={"max_lr": 0.06, "step_size": 2000}.'
            )

        saved = function = None
        if "scale_fn" in clr:
            if mode is not None:
                raise ValueError(
                    "`clr['mode']` and `clr['scale_fn']` exclude each other: a "
                    f"custom scale function replaces the mode. Received: mode={mode!r}."
                )
            saved, function = _scale_fn.resolve(
                clr["scale_fn"], name=name("scale_fn"), strict=given.strict
            )
        elif mode is None:
            mode = "triangular"

        scale_mode = clr.get("scale_mode")
        if scale_mode is not None:
            check_choice(name("scale_mode"), scale_mode, SCALE_MODES)
        if mode is None or given.any_scale_mode:
            scale_mode = scale_mode or _MODE_SCALE_MODE.get(mode, "cycle")
        else:
            if scale_mode is not None and scale_mode != _MODE_SCALE_MODE[mode]:
                raise ValueError(
                    f"`clr['scale_mode']` is {_MODE_SCALE_MODE[mode]!r} for mode "
                    f"{mode!r} and can be chosen only with a custom `scale_fn`. "
                    f"Received: scale_mode={scale_mode!r}."
                )
            scale_mode = _MODE_SCALE_MODE[mode]

        gamma = clr.get("gamma")
        gamma = (
            cls.default("gamma")
            if gamma is None
            else check_number(name("gamma"), gamma)
        )
        if gamma > 1:
            raise ValueError(
                f"`{name('gamma')}` must be in (0, 1]. Received: gamma={gamma}."
            )
        if gamma != 1.0 and mode != "exp_range":
            raise ValueError(
                f"`{name('gamma')}` is used only by mode 'exp_range'. "
                f"Received: gamma={gamma} with mode={mode!r}."
            )

        ramp = check_choice(name("ramp"), clr.get("ramp", cls.default("ramp")), RAMPS)

        restart_every = clr.get("restart_every")
        if restart_every is None:
            restart_every = _DEFAULT_RESTART_EVERY.get(mode)
        else:
            restart_every = check_int(
                name("restart_every"), restart_every, 1, MAX_RESTART_EVERY, "cycles"
            )

        policy = cls(
            max_lr=given.max_lr,
            mode=mode,
            step_size=step_size,
            step_size_up=step_size_up,
            step_size_down=step_size_down,
            gamma=gamma,
            restart_every=restart_every,
            scale_fn=saved,
            scale_mode=scale_mode,
            ramp=ramp,
            momentum=given.momentum,
            decay=given.decay,
            function=function,
        )
        return policy, given.learning_rate

    def to_clr(self, peak: float | None = None) -> dict[str, Any]:
        if self.function is not None and self.scale_fn is None:
            raise ValueError(
                f"`scale_fn` {_scale_fn.display(None, self.function)!r} "
                f"{_scale_fn.why_unsaved(self.function)} It trains, but a "
                "config cannot hold it, so it cannot be saved. "
                + _scale_fn.HOW_TO_REGISTER
            )
        scale_fn = self.scale_fn
        if isinstance(scale_fn, dict) and self.function is not None:
            scale_fn = _scale_fn.saved_form(self.function)  # as it is now
        return self.clr_dict(
            peak,
            step_size=self.step_size,
            step_size_up=self.step_size_up,
            step_size_down=self.step_size_down,
            gamma=self.gamma,
            restart_every=self.restart_every,
            scale_fn=scale_fn,
            scale_mode=self.scale_mode,
            # Only when chosen: the dict of straight ramps is as 0.2.0 wrote it.
            ramp=None if self.ramp == "linear" else self.ramp,
        )

    @property
    def scale_function(self) -> Callable[[Any], Any]:
        """The amplitude scale, a function of the cycle number (from 1) or of
        the update count: the custom `scale_fn`, or the mode's own."""
        if self.function is not None:
            return self.function
        if self.mode in ("triangular2", "modified_triangular2"):
            return halving
        if self.mode == "exp_range":
            return functools.partial(power_of, self.gamma)
        return one

    def label(self) -> str:
        if self.mode is not None:
            return self.mode if self.ramp == "linear" else f"{self.mode}, cos"
        return f"scale_fn {_scale_fn.display(self.scale_fn, self.function)}"

    @property
    def half_cycles(self) -> tuple[int | float, int | float]:
        """Updates in the rising and in the falling half of a cycle."""
        if self.step_size is not None:
            return self.step_size, self.step_size
        assert self.step_size_up is not None and self.step_size_down is not None
        return self.step_size_up, self.step_size_down

    def __post_init__(self) -> None:
        # For the 32- and 64-bit counters, computed here rather than while a
        # compiled step is traced (filling a cache there would retrace it).
        for counter_max in (2**31 - 1, 2**63 - 1):
            self.fractions(counter_max)

    def fractions(self, counter_max: int) -> tuple[int, int, int]:
        """`step_fractions` of the half cycles for a counter of that range."""
        if counter_max not in self._fractions:
            self._fractions[counter_max] = step_fractions(
                *self.half_cycles, counter_max
            )
        return self._fractions[counter_max]

    def check(self, floor: float, dtype: Any) -> None:
        if self.function is None:
            return
        what = _scale_fn.display(self.scale_fn, self.function)
        for count in (0, 1, min(int(sum(self.half_cycles)), int_max(dtype))):
            step = ops.convert_to_tensor(count, dtype=dtype)
            try:
                rate = float(ops.convert_to_numpy(self(step, floor, self.max_lr)[0]))
            except Exception as error:
                raise ValueError(
                    f"`clr['scale_fn']` {what!r} failed on a float tensor "
                    f"argument; it must compute with `keras.ops`. Error: {error}"
                ) from error
            if not math.isfinite(rate):
                raise ValueError(
                    f"`clr['scale_fn']` {what!r} gave a rate of {rate} at update "
                    f"{count}; the scale must be finite."
                )

    def __call__(
        self, step: Tensor, floor: Tensor, peak: Tensor
    ) -> tuple[Tensor, Tensor]:
        peak = ops.cast(peak, "float32")
        floor_n = decayed(step, floor, self.decay)

        limit = int_max(step.dtype)
        rise, fall, b = self.fractions(limit)
        period = rise + fall
        constant_scale = self.mode == "triangular"
        (q, carry), u = cycle_position(
            step, period, b, limit, with_cycles=not constant_scale
        )
        # 1 - x of the paper: u / rise while rising, (period - u) / fall after.
        # Divided, not multiplied by a reciprocal: a correctly rounded quotient
        # of two float32 values x <= a is at most 1, so the rate never passes
        # the peak.
        if rise == fall and period <= limit:  # (a - |u - a|) / a, cheaper
            triangle = ops.cast(rise - abs(u - rise), "float32") / float(rise)
        else:
            if period > limit:  # then u <= limit < period
                left = ops.cast(limit - u, "float32") + float(period - limit)
            else:
                left = ops.cast(period - u, "float32")
            rising = ops.cast(u, "float32") / float(rise)
            triangle = ops.minimum(rising, left / float(fall))
        if self.ramp == "cos":  # (1 - cos(pi h)) / 2, exact at 0 and 1
            triangle = ops.square(ops.sin((0.5 * math.pi) * triangle))
        if constant_scale:
            return floor_n + (peak - floor_n) * triangle, triangle

        # Completed cycles, as a float (the scale's argument) and, for
        # restarts, modulo `restart_every` in integers that stay small.
        cycles = ops.cast(q, "float32") * float(b) + ops.cast(carry, "float32")
        if self.restart_every is not None:
            k = self.restart_every
            cycles_in_run = remainder(remainder(q, k) * (b % k) + carry, k)
            cycles = ops.cast(cycles_in_run, "float32")
            # Updates since the last restart.
            step_in_run = (cycles * float(period) + ops.cast(u, "float32")) / float(b)
        else:
            step_in_run = ops.cast(step, "float32")

        argument = cycles + 1.0 if self.scale_mode == "cycle" else step_in_run
        scale = ops.cast(self.scale_function(argument), "float32")
        height = triangle * scale
        return floor_n + (peak - floor_n) * height, height


def one(x: Any) -> float:
    """The scale of mode "triangular"."""
    return 1.0


def halving(x: Any) -> Any:
    """`1 / 2**(x - 1)`: the scale of "triangular2", which halves the
    amplitude every cycle (a Python float for a Python number)."""
    if isinstance(x, (int, float)):
        return 0.5 ** (x - 1)
    return ops.power(0.5, ops.convert_to_tensor(x, "float32") - 1.0)


def power_of(gamma: float, x: Any) -> Any:
    """`gamma**x`, the scale of "exp_range", with `log(gamma)` rounded once
    rather than `gamma` (a Python float for a Python number)."""
    if isinstance(x, (int, float)):
        return gamma**x
    return ops.exp(ops.convert_to_tensor(x, "float32") * math.log(gamma))


def step_fractions(
    up: int | float, down: int | float, int_max: int
) -> tuple[int, int, int]:
    """The half cycles `up` and `down` (in updates) as `(U, D, b)`, meaning
    `U / b` and `D / b`, with `(U + D - 1) b` (the largest product
    `cycle_position` forms) within a counter whose largest value is `int_max`.

    Each half is the nearest fraction with a denominator of at most 1000; when
    the two need different denominators whose least common multiple is larger,
    both are rounded to that largest common denominator. On a 32-bit counter a
    fractional cycle longer than 2147 updates gets a smaller denominator, so
    that every product below stays within 32 bits; whole numbers of updates
    are always exact.
    """
    limit = min(MAX_STEP_DENOMINATOR, math.isqrt(int(int_max // (up + down))))
    while True:
        limit = max(1, limit)
        near_up = Fraction(up).limit_denominator(limit)
        near_down = Fraction(down).limit_denominator(limit)
        b = math.lcm(near_up.denominator, near_down.denominator)
        if b <= limit and near_up and near_down:
            rise, fall = int(near_up * b), int(near_down * b)
        else:
            b = limit
            rise = max(1, round(Fraction(up) * b))
            fall = max(1, round(Fraction(down) * b))
            common = math.gcd(rise, fall, b)
            rise, fall, b = rise // common, fall // common, b // common
        if b == 1 or (rise + fall - 1) * b <= int_max:
            return rise, fall, b
        limit -= 1


def cycle_position(
    step: Tensor, period: int, b: int, int_max: int, with_cycles: bool = True
) -> tuple[tuple[Tensor, Tensor], Tensor]:
    """Where `step` updates fall in the cycle, exactly, for a cycle of
    `period / b` updates.

    In units of 1/b of an update one cycle is the integer `period`. Returns
    `(cycles, u)`: the completed cycles as `(q, carry)`, meaning `q b + carry`
    (an integer that may not fit the counter's type; `None` unless
    `with_cycles`), and the position `0 <= u < period` in the current cycle.
    No intermediate value exceeds `int_max`.

    Python operators (and `quotient` and `remainder`) rather than `keras.ops`
    calls: much cheaper per call where each operation runs eagerly (PyTorch).
    """
    # b cycles span exactly `period` updates.
    if period > int_max:  # every count the counter can hold is in the first
        q, offset = 0, step  # type: Tensor, Tensor
    else:
        q = quotient(step, period) if with_cycles else None
        offset = remainder(step, period)
    if b == 1:
        return (q, 0), offset
    # offset * b < period * b, within int_max by the choice of `b` in
    # `step_fractions`.
    scaled = offset * b
    cycles = quotient(scaled, period) if with_cycles else None
    return (q, cycles), remainder(scaled, period)
