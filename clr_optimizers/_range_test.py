"""`find_lr`: the learning-rate range test that chooses `max_lr` and the base rate.

The rate grows exponentially from `min_lr` to `max_lr`, one step per batch,
while the loss of each batch is recorded. Where the smoothed loss is lowest is
the study's `max_lr`, and `base_lr = max_lr / 4`; the suggestion by default is
a tenth of that rate (the "minimum" rule), which `benchmarks/convergence.py`
found the best of four rules. The model is trained on a copy of its optimizer
and everything is put back afterwards.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np

from clr_optimizers._checks import check_number
from clr_optimizers._optimizer import CyclicalOptimizer
from clr_optimizers._plots import _figure_and_axes
from clr_optimizers._policies import CYCLICAL_MODES, parse

# Each rule: the attribute that holds its peak, and how plots and messages
# describe it.
RULES = {
    "min_loss": ("max_lr", "lowest smoothed loss (the study's rule)"),
    "steepest": ("steepest_lr", "steepest descent"),
    "valley": ("valley_lr", "valley"),
    "minimum": ("minimum_lr", "lowest loss / 10"),
}
DEFAULT_RULE = "minimum"  # the best mean rank in benchmarks/convergence.py


@dataclasses.dataclass
class RangeTestResult:
    """What `find_lr` recorded, and the bounds it suggests.

    `suggestion()` and `optimizer_args()` use the "minimum" rule unless told
    otherwise: a peak of `max_lr / 10`, a floor of a quarter of that. The
    attributes keep their definitions: `max_lr` is the study's peak.

    Attributes:
        lrs: The learning rate of each batch.
        losses: The loss of each batch (its own, not a running mean).
        smoothed_losses: The exponential moving average of `losses`, with bias
            correction.
        smoothed_lrs: The rate each smoothed loss stands for: the rate at the
            centre of the batches it averages, which lies behind `lrs`.
        max_lr: The study's rule: the rate of the lowest smoothed loss (at
            `smoothed_lrs`).
        base_lr: `max_lr / 4`.
        steepest_lr: The rate where the smoothed loss falls fastest (per
            decade of rate) before its minimum: a more cautious `max_lr`.
        stopped_early: Whether the sweep stopped because the loss diverged.
        valley_lr: fastai's "valley" rule (its default since 2.4): along
            the longest run of smoothed losses that keeps falling (not
            necessarily from one batch to the next), the rate about half
            way down.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    smoothed_lrs: np.ndarray
    max_lr: float
    base_lr: float
    steepest_lr: float
    stopped_early: bool
    valley_lr: float = math.nan

    @property
    def minimum_lr(self) -> float:
        """The peak by fastai's "minimum" rule, the rate of the lowest
        smoothed loss divided by 10."""
        return self.max_lr / 10

    @property
    def suggestions(self) -> dict[str, tuple[float, float]]:
        """`(base_lr, max_lr)` by every rule, by name."""
        return {rule: self.suggestion(rule) for rule in RULES}

    def suggestion(self, rule: str = DEFAULT_RULE) -> tuple[float, float]:
        """`(base_lr, max_lr)` by `rule`: `"minimum"` (the default: the rate
        of the lowest smoothed loss / 10), `"min_loss"` (the study's rule: that
        rate itself), `"steepest"` or `"valley"`; the base is always a quarter
        of the peak."""
        if rule not in RULES:
            raise ValueError(
                f"`rule` must be one of {', '.join(map(repr, RULES))}. "
                f"Received: rule={rule!r}."
            )
        peak = float(getattr(self, RULES[rule][0]))
        return peak / 4, peak

    def optimizer_args(
        self,
        step_size: int | float,
        mode: str = "triangular",
        rule: str = DEFAULT_RULE,
    ) -> dict[str, Any]:
        """The arguments for a CLR optimizer with the suggested bounds.

        `Adam(**result.optimizer_args(step_size=2 * steps_per_epoch))`.
        """
        base_lr, max_lr = self.suggestion(rule)
        if mode not in CYCLICAL_MODES:
            raise ValueError(
                f"`mode` must be one of {', '.join(map(repr, CYCLICAL_MODES))}. "
                f"Received: mode={mode!r}."
            )
        check_number("step_size", step_size)
        clr = {"max_lr": max_lr, "step_size": step_size, "mode": mode}
        parse(clr, learning_rate=base_lr)  # what an optimizer will check
        return {"learning_rate": base_lr, "clr": clr}

    def plot(self, ax: Any = None) -> Any:
        """Loss against learning rate (log axis), suggestions marked.

        Returns the matplotlib `Figure`.
        """
        figure, ax = _figure_and_axes(ax, figsize=(7, 4))
        # Each batch's own loss as faint dots behind the curve: lines between
        # noisy batches would draw a band that hides it.
        ax.plot(
            self.lrs,
            self.losses,
            ls="none",
            marker=".",
            ms=2,
            color="0.6",
            alpha=0.5,
            label="batch loss",
        )
        ax.plot(self.smoothed_lrs, self.smoothed_losses, lw=1.8, label="smoothed loss")
        styles = {"min_loss": "--", "steepest": "-.", "valley": "-", "minimum": ":"}
        for index, (rule, (attribute, description)) in enumerate(RULES.items()):
            rate = float(getattr(self, attribute))
            if not math.isfinite(rate):
                continue
            color = f"C{index + 1}"
            ax.axvline(rate, color=color, ls=styles[rule], lw=1.2)
            # The point of the curve the rule chose (or, for a rate between
            # batches, the nearest), marked where the line meets it.
            nearest = int(np.argmin(np.abs(np.log(self.smoothed_lrs / rate))))
            ax.plot(
                rate,
                self.smoothed_losses[nearest],
                marker="o",
                color=color,
                ls=styles[rule],
                label=f"{rule}: {description}, {rate:.3g}",
            )
        ax.set_xscale("log")
        finite = self.smoothed_losses[np.isfinite(self.smoothed_losses)]
        if finite.size:
            low, high = finite.min(), finite[0]
            ax.set_ylim(low - 0.1 * (high - low), high + 0.6 * (high - low) + 1e-12)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.set_title("Learning-rate range test")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        return figure


def _take(arrays: Any, index: np.ndarray) -> Any:
    if arrays is None:
        return None
    return keras.tree.map_structure(lambda a: np.asarray(a)[index], arrays)


Batch = tuple[Any, Any, Any]


def _batches(
    x: Any, y: Any, sample_weight: Any, batch_size: int | None, seed: int
) -> tuple[int | None, Callable[[], Iterator[Batch]]]:
    """`(batches per epoch or None, epoch)`: `epoch()` yields `(x, y, sw)`."""
    if isinstance(x, keras.utils.PyDataset):

        def dataset_epoch() -> Iterator[Batch]:
            for i in range(len(x)):
                yield _unpack(x[i])

        return len(x), dataset_epoch
    leaves = keras.tree.flatten(x)
    if leaves and all(hasattr(v, "__array__") for v in leaves):
        x, y, sample_weight = (
            None if a is None else keras.tree.map_structure(np.asarray, a)
            for a in (x, y, sample_weight)
        )
        n, size = len(leaves[0]), batch_size or 32
        rng = np.random.default_rng(seed)

        def array_epoch() -> Iterator[Batch]:
            order = rng.permutation(n)
            for start in range(0, n, size):
                index = np.sort(order[start : start + size])
                yield _take(x, index), _take(y, index), _take(sample_weight, index)

        return math.ceil(n / size), array_epoch
    if y is not None or sample_weight is not None:
        raise ValueError(
            "`y` and `sample_weight` go with array inputs; a dataset "
            "yields (x, y) or (x, y, sample_weight) itself."
        )
    length: int | None = None
    if hasattr(x, "cardinality"):
        length = int(x.cardinality())
        length = length if length >= 0 else None
    elif hasattr(x, "__len__"):
        length = len(x)

    def epoch() -> Iterator[Batch]:
        # A tf.data dataset yields TensorFlow tensors, which the JAX and PyTorch
        # backends do not take: read it as NumPy arrays.
        for batch in x.as_numpy_iterator() if hasattr(x, "as_numpy_iterator") else x:
            yield _unpack(batch)

    return length, epoch


def _unpack(batch: Any) -> Batch:
    if isinstance(batch, tuple):
        return tuple(batch) + (None,) * (3 - len(batch))
    return batch, None, None


def _loop(epoch: Callable[[], Iterator[Batch]], steps: int) -> Iterator[Batch]:
    produced = 0
    while produced < steps:
        empty = True
        for batch in epoch():
            empty = False
            yield batch
            produced += 1
            if produced == steps:
                return
        if empty:
            raise ValueError("The data yielded no batch.")


def _sweep_optimizer(optimizer: Any, learning_rate: float) -> Any:
    """A fresh optimizer of the same kind with a plain, settable rate."""
    wrapper = None
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        wrapper, optimizer = optimizer, optimizer.inner_optimizer
    config = optimizer.get_config()
    config["learning_rate"] = float(learning_rate)
    if isinstance(optimizer, CyclicalOptimizer):
        config.update(clr=None, decay=None, groups=None)
    sweep = type(optimizer).from_config(config)
    if wrapper is not None:
        wrapper_config = wrapper.get_config()
        wrapper_config.pop("inner_optimizer", None)
        wrapper_config.pop("name", None)
        sweep = keras.optimizers.LossScaleOptimizer(sweep, **wrapper_config)
    return sweep


def find_lr(
    model: keras.Model,
    x: Any,
    y: Any = None,
    *,
    batch_size: int | None = None,
    min_lr: float = 1e-7,
    max_lr: float = 1.0,
    steps: int | None = None,
    epochs: int | None = None,
    sample_weight: Any = None,
    smoothing: float | None = None,
    diverge_factor: float = 4.0,
    seed: int = 0,
    verbose: int = 1,
) -> RangeTestResult:
    """Runs the learning-rate range test on a compiled model.

    The rate of batch `k` of `N` is `min_lr * (max_lr / min_lr) ** (k / (N - 1))`.
    The sweep stops early once the smoothed loss exceeds `diverge_factor`
    times its lowest value (see below) or is not finite. Afterwards the
    model's variables (weights, and the state of its metrics) are restored bit
    for bit, and its optimizer is never touched: the sweep trains a fresh
    optimizer of the same class and arguments. This holds when the loss goes
    to NaN and on Ctrl-C.

    Args:
        model: A compiled Keras model, with any optimizer.
        x: NumPy arrays (or a dict or list of them), a `tf.data.Dataset` or a
            `keras.utils.PyDataset`.
        y: Targets, with array inputs.
        batch_size: Batch size for array inputs. Defaults to 32.
        min_lr: The first rate. Defaults to `1e-7`.
        max_lr: The last rate. Defaults to `1.0`.
        steps: Number of batches. Or give `epochs`; defaults to one epoch.
        epochs: Number of passes over the data.
        sample_weight: Per-sample weights, with array inputs.
        smoothing: The moving average's factor in [0, 1). Defaults to `None`:
            an average over about a twentieth of the sweep's batches (at most
            `0.98`), so that a short sweep is not smoothed flat.
        diverge_factor: Stop when the smoothed loss exceeds its lowest value
            by `diverge_factor - 1` times that value's size (for a positive
            loss: exceeds `diverge_factor` times the lowest). Defaults to `4.0`.
        seed: Seed of the shuffling of array inputs. Defaults to `0`.
        verbose: 1 shows a progress bar. Defaults to `1`.

    Returns:
        A `RangeTestResult`.

    Example:

    ```python
    result = find_lr(model, x_train, y_train, batch_size=64, epochs=2)
    model.compile(optimizer=Adam(**result.optimizer_args(step_size=2 * steps)),
                  loss="sparse_categorical_crossentropy")
    ```
    """
    if getattr(model, "optimizer", None) is None or not getattr(
        model, "compiled", False
    ):
        raise ValueError("`find_lr` needs a compiled model: call model.compile first.")
    min_lr = check_number("min_lr", min_lr)
    max_lr = check_number("max_lr", max_lr)
    if max_lr <= min_lr:
        raise ValueError(
            "`max_lr` must exceed `min_lr`. "
            f"Received: min_lr={min_lr}, max_lr={max_lr}."
        )
    if smoothing is not None:
        smoothing = check_number("smoothing", smoothing, positive=False)
        if smoothing >= 1:
            raise ValueError(f"`smoothing` must be in [0, 1). Received: {smoothing}.")
    diverge_factor = check_number("diverge_factor", diverge_factor)
    if diverge_factor <= 1:
        raise ValueError(f"`diverge_factor` must exceed 1. Received: {diverge_factor}.")
    if steps is not None and epochs is not None:
        raise ValueError("Pass either `steps` or `epochs`, not both.")
    given: tuple[tuple[str, Any], ...] = (
        ("batch_size", batch_size),
        ("epochs", epochs),
        ("steps", steps),
    )
    for name, value in given:
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, numbers.Integral)
            or value < 1
        ):
            raise ValueError(f"`{name}` must be a positive int. Received: {value!r}.")

    per_epoch, epoch = _batches(x, y, sample_weight, batch_size, seed)
    if steps is None:
        if per_epoch is None:
            raise ValueError(
                "The data has no known length: pass `steps`, the number of batches."
            )
        steps = (epochs or 1) * per_epoch
    steps = int(steps)
    if steps < 2:
        raise ValueError(
            f"The sweep needs at least 2 batches. Received: steps={steps}."
        )

    lrs = min_lr * (max_lr / min_lr) ** (np.arange(steps) / (steps - 1))
    if smoothing is None:
        smoothing = min(0.98, max(0.0, 1 - 20 / steps))
    original = model.optimizer
    sweep = _sweep_optimizer(original, min_lr)
    batches = _loop(epoch, steps)
    first = next(batches)
    if not model.built:
        model.predict_on_batch(first[0])
    # Metric variables may be created by the first training step; those that
    # exist now are put back, the others are reset at the next fit anyway.
    saved = [(v, v.numpy().copy()) for v in model.variables + model.metrics_variables]
    inner = sweep.inner_optimizer if hasattr(sweep, "inner_optimizer") else sweep

    losses: list[float] = []
    smoothed: list[float] = []
    average, best = 0.0, math.inf
    stopped_early = False
    progress = (
        keras.utils.Progbar(steps, stateful_metrics=["lr", "loss"]) if verbose else None
    )
    try:
        model.optimizer, model.train_function = sweep, None
        for k, (bx, by, bw) in enumerate(itertools.chain([first], batches)):
            inner.learning_rate = float(lrs[k])
            # The loss of this batch alone: some Keras versions (3.7) keep a
            # running mean across `train_on_batch` calls.
            model.reset_metrics()
            logs = model.train_on_batch(bx, by, sample_weight=bw, return_dict=True)
            loss = float(logs["loss"])
            average = smoothing * average + (1 - smoothing) * loss
            mean = average / (1 - smoothing ** (k + 1))
            losses.append(loss)
            smoothed.append(mean)
            if progress is not None:
                progress.update(k + 1, [("lr", float(lrs[k])), ("loss", loss)])
            # Diverged: risen above the best by (factor - 1) times its size,
            # which also holds for losses that go negative.
            if not math.isfinite(mean) or mean > best + (diverge_factor - 1) * abs(
                best
            ):
                stopped_early = k + 1 < steps
                break
            best = min(best, mean)
    finally:
        model.optimizer, model.train_function = original, None
        for variable, value in saved:
            variable.assign(value)

    return _suggest(
        lrs[: len(losses)],
        np.array(losses),
        np.array(smoothed),
        smoothing,
        stopped_early,
    )


def _averaged_lrs(lrs: np.ndarray, smoothing: float) -> np.ndarray:
    """The rate each smoothed loss stands for: the moving average at batch k
    weighs batch k - a by smoothing**a, so its centre lies `mean age` batches
    back, and the sweep's rate there is lrs[k] / ratio**(mean age)."""
    k = np.arange(len(lrs), dtype=np.float64)
    if smoothing == 0 or len(lrs) < 2:
        return lrs.copy()
    beta = smoothing
    # Mean of a over a = 0..k with weights beta**a, in closed form.
    total = (1 - beta ** (k + 1)) / (1 - beta)
    moment = (beta - (k + 1) * beta ** (k + 1) + k * beta ** (k + 2)) / (1 - beta) ** 2
    age = moment / total
    ratio = lrs[1] / lrs[0]
    return np.asarray(lrs * ratio ** (-age))


def _suggest(
    lrs: np.ndarray,
    losses: np.ndarray,
    smoothed: np.ndarray,
    smoothing: float,
    stopped_early: bool,
) -> RangeTestResult:
    at = _averaged_lrs(lrs, smoothing)
    finite = np.where(np.isfinite(smoothed), smoothed, np.inf)
    lowest = int(np.argmin(finite))
    # The first `window` averages rest on too few batches to have a slope.
    window = round(1 / (1 - smoothing))
    steepest = lowest
    if lowest - window > 1:
        slopes = np.gradient(finite[window : lowest + 1])
        steepest = window + int(np.argmin(slopes))
    max_lr = float(at[lowest])
    valley = window + _valley(finite[window:]) if len(finite) > window else lowest
    return RangeTestResult(
        lrs=lrs,
        losses=losses,
        smoothed_losses=smoothed,
        smoothed_lrs=at,
        max_lr=max_lr,
        base_lr=max_lr / 4,
        steepest_lr=float(at[steepest]),
        stopped_early=stopped_early,
        valley_lr=float(at[valley]),
    )


def _valley(losses: np.ndarray) -> int:
    """fastai's "valley" rule: the index a little past the middle of the
    longest falling run of `losses`.

    With `run[i]` the length of the longest strictly decreasing subsequence
    of `losses` ending at `i`, `e` the first index of the longest and
    `s = e - run[e]`, the choice is `s + floor((e - s) / 3) + floor((e - s) / 6)`.
    """
    n = len(losses)
    run = np.ones(n, dtype=np.int64)
    for i in range(1, n):
        higher = losses[:i] > losses[i]
        if higher.any():
            run[i] = run[:i][higher].max() + 1
    end = int(np.argmax(run))
    start = end - int(run[end])
    third = (end - start) / 3
    return max(0, start + int(third) + int(third / 2))
