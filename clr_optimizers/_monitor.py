"""`LearningRateMonitor`: the rate and momentum of every update that training
actually applied, for Jupyter, History, CSVLogger and TensorBoard."""

from __future__ import annotations

import itertools
import os

import keras
import numpy as np
from keras import ops

from clr_optimizers._keras_private import raw_iterations, stock_rate
from clr_optimizers._momentum import ARGUMENTS as MOMENTUM_ARGUMENTS
from clr_optimizers._optimizer import CyclicalOptimizer
from clr_optimizers._plots import _figure_and_axes
from clr_optimizers._rates import schedule_rates

_Schedule = keras.optimizers.schedules.LearningRateSchedule
_WRITERS = itertools.count()


def _inner(optimizer):
    """The optimizer that updates: a `LossScaleOptimizer`'s inner one, whose
    counter skips the updates the loss scale skipped."""
    while isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = optimizer.inner_optimizer
    return optimizer


class LearningRateMonitor(keras.callbacks.Callback):
    """Records the learning rate (and momentum) of every update of `fit`.

    Nothing is read from the device per update: at the end of each epoch the
    monitor reads the optimizer's update counter once and rebuilds the rates
    of the updates since on the host, from the same schedule the training
    step evaluated (for a CLR optimizer, with the bounds in use at each
    update, also after `ReduceLROnPlateau`, `LearningRateScheduler` or any
    assignment). So the record is exact with `steps_per_execution > 1` and
    `jit_compile=True`, costs no device round trip per update, and leaves
    Keras's asynchronous batch callbacks on. Works with the CLR optimizers,
    classes made by `cyclical()`, any Keras optimizer with a constant rate or
    a `LearningRateSchedule`, and a `LossScaleOptimizer` around any of them
    (an update it skips is not an update).

    Attributes:
        learning_rates: NumPy float64 array; entry `k` is the rate that
            update `k + 1` used, over every `fit` the monitor was passed to.
        momentum_values: The same for the momentum (`momentum`, or `beta_1`
            in the Adam family), cycled or constant; `None` for an optimizer
            that has none (Adagrad, Adadelta).
        epoch_ends: The number of recorded updates at the end of each epoch.

    Each epoch's logs get `learning_rate` and `momentum`: the values of that
    epoch's last update, which History and a `CSVLogger` placed after the
    monitor record.

    For a stock optimizer with a constant rate, the monitor reads the rate
    at the start of each epoch (after `on_epoch_begin` callbacks such as
    `LearningRateScheduler`): a rate assigned between the batches of an
    epoch is recorded from the next epoch on. A CLR optimizer notes every
    assignment itself, so there every change is recorded where it applied.

    Args:
        log_dir: With a directory, the monitor writes the scalars
            `learning_rate` and `momentum` at step = update number (from 1)
            into `log_dir/train`, beside the curves of
            `keras.callbacks.TensorBoard(log_dir)`. Needs tensorboardX
            (`pip install "clr-optimizers[tensorboard]"`), on every backend.
            Defaults to `None`.

    Example:

    ```python
    monitor = clr_optimizers.LearningRateMonitor()
    model.fit(x, y, epochs=4, callbacks=[monitor])
    assert np.allclose(monitor.learning_rates,
                       model.optimizer.learning_rates(len(monitor.learning_rates)))
    monitor.plot()
    ```
    """

    def __init__(self, log_dir: str | os.PathLike | None = None):
        super().__init__()
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self._rates: list[np.ndarray] = []
        self._momentums: list[np.ndarray] = []
        self._has_momentum: bool | None = None
        self.epoch_ends: list[int] = []
        self._recorded_to: int | None = None  # counter value recorded up to
        self._stock_rate: float | None = None
        self._read_stock_rate = False
        self._writer = None

    @property
    def learning_rates(self) -> np.ndarray:
        return np.concatenate([np.zeros(0), *self._rates])

    @property
    def momentum_values(self) -> np.ndarray | None:
        if not self._has_momentum:
            return None
        return np.concatenate([np.zeros(0), *self._momentums])

    def _optimizer(self):
        return _inner(self.model.optimizer)

    # Callback hooks.

    def on_train_begin(self, logs=None):
        optimizer = self._optimizer()
        self._recorded_to = self._count(optimizer)
        self._read_stock_rate = True
        if self.log_dir is not None and self._writer is None:
            try:
                from tensorboardX import SummaryWriter
            except ImportError as error:
                raise ImportError(
                    "LearningRateMonitor(log_dir=...) writes TensorBoard files "
                    "with tensorboardX: pip install 'clr-optimizers[tensorboard]'."
                ) from error
            # tensorboardX names a file by the second it opens it: a suffix
            # keeps the files of fits that start within one second apart.
            suffix = f".{os.getpid()}.{next(_WRITERS)}"
            self._writer = SummaryWriter(
                os.path.join(self.log_dir, "train"), filename_suffix=suffix
            )

    def on_epoch_begin(self, epoch, logs=None):
        self._read_stock_rate = True

    def on_train_batch_begin(self, batch, logs=None):
        # The rate a stock optimizer's variable holds for this epoch, read
        # once, after the callbacks of `on_epoch_begin` have set it.
        if self._read_stock_rate:
            self._read_stock_rate = False
            optimizer = self._optimizer()
            if not isinstance(optimizer, CyclicalOptimizer) or (
                optimizer._policy is None
            ):
                rate = stock_rate(optimizer)
                if isinstance(rate, keras.Variable):
                    self._stock_rate = float(ops.convert_to_numpy(rate))

    def on_epoch_end(self, epoch, logs=None):
        self._catch_up()
        self.epoch_ends.append(sum(len(r) for r in self._rates))
        if logs is not None and self.epoch_ends[-1]:
            logs["learning_rate"] = float(self.learning_rates[-1])
            if self._has_momentum:
                logs["momentum"] = float(self.momentum_values[-1])

    def on_train_end(self, logs=None):
        self._catch_up()  # training stopped within an epoch
        if self._writer is not None:
            # Closed rather than flushed: tensorboardX writes from a queue. The
            # next `fit` opens another file in the same run.
            self._writer.close()
            self._writer = None

    def plot(self, ax=None):
        """The recorded rate of every update, the momentum dashed on a second
        axis, epoch ends dotted. Returns the matplotlib `Axes` (drawn on `ax`,
        or on a new pyplot figure, which Jupyter shows inline)."""
        _, ax = _figure_and_axes(ax, figsize=(8, 3.5), pyplot=True)
        rates = self.learning_rates
        updates = np.arange(1, len(rates) + 1)
        (line,) = ax.plot(updates, rates, lw=1.3, label="learning rate")
        lines = [line]
        momentums = self.momentum_values
        if momentums is not None:
            twin = ax.twinx()
            (dashed,) = twin.plot(
                updates, momentums, ls="--", lw=1.1, color="C1", label="momentum"
            )
            twin.set_ylabel("momentum (dashed)")
            lines.append(dashed)
        for end in self.epoch_ends[:-1]:
            ax.axvline(end + 0.5, color="0.6", lw=0.7, ls=":")
        ax.set_xlabel("update (dotted: epoch ends)")
        ax.set_ylabel("learning rate")
        ax.grid(alpha=0.3)
        ax.legend(handles=lines, fontsize=8)
        return ax

    # Rebuilding the record.

    @staticmethod
    def _count(optimizer) -> int:
        """Updates applied so far (under gradient accumulation, not
        micro-batches)."""
        return int(ops.convert_to_numpy(optimizer.iterations))

    def _catch_up(self) -> None:
        if self._recorded_to is None:
            return
        optimizer = self._optimizer()
        now = self._count(optimizer)
        start, self._recorded_to = self._recorded_to, now
        if now <= start:
            return
        counts = np.arange(start, now)
        rates, momentums = self._used(optimizer, counts)
        self._rates.append(rates)
        if self._has_momentum is None:
            self._has_momentum = momentums is not None
        if momentums is not None:
            self._momentums.append(momentums)
        if self._writer is not None:
            first = sum(len(r) for r in self._rates[:-1]) + 1
            for i, rate in enumerate(rates):
                self._writer.add_scalar("learning_rate", rate, first + i)
            if momentums is not None:
                for i, value in enumerate(momentums):
                    self._writer.add_scalar("momentum", value, first + i)

    def _used(self, optimizer, counts: np.ndarray):
        """The rates and momentums of the updates after `counts` applied ones."""
        if isinstance(optimizer, CyclicalOptimizer) and optimizer._policy is not None:
            return _cyclical_rates(optimizer, counts)
        rate = stock_rate(optimizer)
        if isinstance(rate, _Schedule):
            # Keras evaluates a schedule at its raw call count, which under
            # gradient accumulation counts micro-batches: update j (from 0)
            # is applied at call (j + 1) k - 1.
            steps = counts
            k = optimizer.gradient_accumulation_steps
            if k:
                steps = (counts + 1) * k - 1
            rates = schedule_rates(rate, steps)
        elif isinstance(rate, keras.Variable):
            value = self._stock_rate
            if value is None:
                value = float(ops.convert_to_numpy(rate))
            rates = np.full(len(counts), value, dtype=np.float64)
        else:  # a callable rate
            rates = np.full(
                len(counts),
                float(ops.convert_to_numpy(optimizer.learning_rate)),
                dtype=np.float64,
            )
        return rates, _constant_momentum(optimizer, len(counts))


def _constant_momentum(optimizer, size: int) -> np.ndarray | None:
    for name in MOMENTUM_ARGUMENTS:
        value = vars(optimizer).get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return np.full(size, float(value), dtype=np.float64)
    return None


def _cyclical_rates(optimizer: CyclicalOptimizer, counts: np.ndarray):
    """A CLR optimizer's rates at `counts`, with the bounds it noted in use
    from each count on (the last note at or before a count applies)."""
    policy = optimizer._policy
    log = optimizer._bounds_log
    cycled = optimizer._momentum_argument is not None
    rates = np.empty(len(counts))
    momentums = np.empty(len(counts))
    dtype = raw_iterations(optimizer).dtype
    starts = np.array([entry[0] for entry in log])
    # Which note applies to each count: the last one at or before it.
    which = np.maximum(np.searchsorted(starts, counts, side="right") - 1, 0)
    for index in np.unique(which):
        _, floor, peak = log[index]
        mask = which == index
        step = ops.convert_to_tensor(counts[mask], dtype=dtype)
        rate, weight = policy(step, floor, peak)
        rates[mask] = ops.convert_to_numpy(rate)
        if cycled:  # in float32, as the training step computes it
            momentums[mask] = ops.convert_to_numpy(policy.momentum_of(weight))
    if cycled:
        return rates, momentums
    return rates, _constant_momentum(optimizer, len(counts))
