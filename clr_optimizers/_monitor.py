"""`LearningRateMonitor`: the rate and momentum of every update that training
actually applied, for Jupyter, History, CSVLogger and TensorBoard."""

from __future__ import annotations

import itertools
import os
from typing import Any

import keras
import numpy as np
from keras import ops

from clr_optimizers._keras_private import stock_rate
from clr_optimizers._momentum import ARGUMENTS as MOMENTUM_ARGUMENTS
from clr_optimizers._optimizer import CyclicalOptimizer
from clr_optimizers._plots import _figure_and_axes
from clr_optimizers._policies._base import schedule_rates
from clr_optimizers._state import ScheduleState

_Schedule = keras.optimizers.schedules.LearningRateSchedule
_WRITERS = itertools.count()


def _inner(optimizer: Any) -> Any:
    """The optimizer that updates: a `LossScaleOptimizer`'s inner one, whose
    counter skips the updates the loss scale skipped."""
    while isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer = optimizer.inner_optimizer
    return optimizer


def _schedule_state(optimizer: Any) -> ScheduleState | None:
    """A CLR optimizer's schedule; `None` for a stock rate or schedule."""
    if isinstance(optimizer, CyclicalOptimizer):
        return optimizer.schedule_state
    return None


def _restores(optimizer: Any) -> int:
    state = _schedule_state(optimizer)
    return 0 if state is None else state.restores


class LearningRateMonitor(keras.callbacks.Callback):
    """Records the learning rate (and momentum) of every update of `fit`.

    Nothing is read from the device per update: at the end of each epoch the
    monitor reads the optimizer's update counter once and rebuilds the rates
    of the updates since on the host, from the schedule the training step
    evaluated (for a CLR optimizer, with the bounds in use at each update,
    also after `ReduceLROnPlateau`, `LearningRateScheduler` or any
    assignment). So the record holds every update with
    `steps_per_execution > 1` and `jit_compile=True`, costs no device round
    trip per update, and leaves Keras's asynchronous batch callbacks on. Its
    values are the schedule's to float32 rounding: a compiled step may round
    the last bit differently. Works with the CLR optimizers, classes made by
    `cyclical()`, any Keras optimizer with a constant rate or a
    `LearningRateSchedule`, and a `LossScaleOptimizer` around any of them (an
    update it skips is not an update).

    Attributes:
        learning_rates: NumPy float64 array; entry `k` is the rate of the
            `k + 1`-th update recorded, over every `fit` the monitor was passed
            to (reading it also records updates of a `fit` that an exception
            ended).
        momentum_values: The same for the momentum (`momentum`, or `beta_1`
            in the Adam family), cycled or constant, NaN for updates by an
            optimizer without one; `None` if no optimizer recorded had one
            (Adagrad, Adadelta, and SGD and RMSprop at their default
            `momentum=0`). Where it is `None`, the logs get no `momentum`.
        group_learning_rates: For an optimizer with `groups`, each group's
            rates by name, as `learning_rates` (NaN for updates by an
            optimizer without that group).
        epoch_ends: The number of recorded updates at the end of each epoch.

    Each epoch's logs get `learning_rate` and `momentum`: the values of that
    epoch's last update; with groups, also `learning_rate/<name>` for each
    group (one series per group). History records them, and so does a
    `CSVLogger` placed after the monitor. Keras's `LearningRateScheduler` and
    `ReduceLROnPlateau` write `optimizer.learning_rate` (for a CLR optimizer,
    the floor) under the same key: place the monitor after them.

    For a stock optimizer with a constant rate, the monitor reads the rate
    at the start of each epoch (after `on_epoch_begin` callbacks such as
    `LearningRateScheduler`): a rate assigned between the batches of an
    epoch is recorded from the next epoch on. A CLR optimizer notes every
    assignment and every restored state itself, so there every change is
    recorded where it applied. When a restore moves the counter, the monitor
    goes on from the restored count.

    Args:
        log_dir: With a directory, the monitor writes the scalars
            `learning_rate` and `momentum` at step = the optimizer's update
            number (from 1) into `log_dir/train`, beside the curves of
            `keras.callbacks.TensorBoard(log_dir)`. Needs tensorboardX
            (`pip install "clr-optimizers[tensorboard]"`), on every backend.
            Defaults to `None`.

    Example:

    ```python
    monitor = clr_optimizers.LearningRateMonitor()
    model.fit(x, y, epochs=4, callbacks=[monitor])
    np.testing.assert_allclose(
        monitor.learning_rates,
        model.optimizer.learning_rates(len(monitor.learning_rates)),
        rtol=1e-6,
    )
    monitor.plot()
    ```
    """

    def __init__(self, log_dir: str | os.PathLike[str] | None = None):
        super().__init__()
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.epoch_ends: list[int] = []
        # Recorded updates, by runs of one optimizer: (rates, momentums,
        # groups' rates by name).
        self._segments: list[
            tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray]]
        ] = []
        # The optimizer recorded, its counter recorded up to, and how many
        # times its state had been restored then.
        self._source: Any = None
        self._recorded_to = 0
        self._restores = 0
        self._stock_rate: float | None = None
        self._first_batch = False
        self._read_stock_rate = False
        self._writer: Any = None

    @property
    def learning_rates(self) -> np.ndarray:
        self._catch_up_on_read()
        return np.concatenate([np.zeros(0), *(rates for rates, _, _ in self._segments)])

    @property
    def group_learning_rates(self) -> dict[str, np.ndarray]:
        self._catch_up_on_read()
        names = dict.fromkeys(n for _, _, groups in self._segments for n in groups)
        return {
            name: np.concatenate(
                [
                    np.zeros(0),
                    *(
                        groups.get(name, np.full(len(rates), np.nan))
                        for rates, _, groups in self._segments
                    ),
                ]
            )
            for name in names
        }

    @property
    def momentum_values(self) -> np.ndarray | None:
        self._catch_up_on_read()
        if all(momentums is None for _, momentums, _ in self._segments):
            return None
        return np.concatenate(
            [
                np.zeros(0),
                *(
                    np.full(len(rates), np.nan) if momentums is None else momentums
                    for rates, momentums, _ in self._segments
                ),
            ]
        )

    # Callback hooks.

    def on_train_begin(self, logs: Any = None) -> None:
        self._catch_up()  # updates of an earlier fit that an exception ended
        self._first_batch = True
        if self.log_dir is not None and self._writer is None:
            try:
                from tensorboardX import SummaryWriter
            except ImportError as error:
                raise ImportError(
                    "LearningRateMonitor(log_dir=...) writes TensorBoard files "
                    "with tensorboardX: pip install 'clr-optimizers[tensorboard]'."
                ) from error
            # tensorboardX names a file by the second it opens it: a suffix
            # keeps apart the files of fits that start within one second.
            suffix = f".{os.getpid()}.{next(_WRITERS)}"
            self._writer = SummaryWriter(
                os.path.join(self.log_dir, "train"), filename_suffix=suffix
            )

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._read_stock_rate = True

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        # Once per fit, before its first update and after every
        # `on_train_begin` (a BackupAndRestore may have restored the counter):
        # where recording starts. Once per epoch, for a stock optimizer, the
        # rate its variable holds after the `on_epoch_begin` callbacks.
        if self._first_batch:
            self._first_batch = False
            optimizer = _inner(self.model.optimizer)
            self._catch_up()
            if optimizer is not self._source:
                self._start(optimizer)
        if self._read_stock_rate:
            self._read_stock_rate = False
            rate = stock_rate(self._source)
            # A plain rate: a variable (a schedule or a callable is evaluated).
            plain = not isinstance(rate, _Schedule) and not callable(rate)
            if plain and _schedule_state(self._source) is None:
                self._stock_rate = float(ops.convert_to_numpy(rate))

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self._catch_up()
        self.epoch_ends.append(sum(len(rates) for rates, _, _ in self._segments))
        if logs is None or not self._segments:
            return
        rates, momentums, groups = self._segments[-1]
        logs["learning_rate"] = float(rates[-1])
        if momentums is not None:
            logs["momentum"] = float(momentums[-1])
        for name, values in groups.items():
            logs[f"learning_rate/{name}"] = float(values[-1])

    def on_train_end(self, logs: Any = None) -> None:
        if self._writer is not None:
            # Closed rather than flushed: tensorboardX writes from a queue. The
            # next `fit` opens another file in the same run.
            self._writer.close()
            self._writer = None

    def plot(self, ax: Any = None) -> Any:
        """The recorded rate of every update (and of each group), the
        momentum dashed on a second axis, epoch ends dotted. Returns the
        matplotlib `Axes` (drawn on `ax`, or on a new pyplot figure, which
        Jupyter shows inline)."""
        _, ax = _figure_and_axes(ax, figsize=(8, 3.5), pyplot=True)
        rates = self.learning_rates
        updates = np.arange(1, len(rates) + 1)
        (line,) = ax.plot(updates, rates, lw=1.3, label="learning rate")
        lines = [line]
        for i, (name, values) in enumerate(self.group_learning_rates.items()):
            (group,) = ax.plot(
                updates, values, lw=1.1, color=f"C{i + 2}", label=f"group {name}"
            )
            lines.append(group)
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

    def _start(self, optimizer: Any) -> None:
        self._source = optimizer
        self._recorded_to = _count(optimizer)
        self._restores = _restores(optimizer)
        self._stock_rate = None
        self._read_stock_rate = True

    def _catch_up_on_read(self) -> None:
        # After a fit, also one that an exception ended. Through `self.model`,
        # which on JAX brings the optimizer's variables up to date first.
        model = self.model if self._source is not None else None
        if model is not None and _inner(model.optimizer) is self._source:
            self._catch_up()

    def _catch_up(self) -> None:
        """Records the updates since the last record."""
        optimizer = self._source
        if optimizer is None:
            return
        # On JAX, reading `model` brings the variables up to date (within an
        # epoch, or after an exception, they are not).
        _ = self.model
        now = _count(optimizer)
        restores = _restores(optimizer)
        start = self._recorded_to
        self._recorded_to = now
        if restores != self._restores or now < start:
            # State was loaded: the counter moved without training.
            self._restores = restores
            return
        if now == start:
            return
        counts = np.arange(start, now)
        rates, momentums, groups = self._used(optimizer, counts)
        self._segments.append((rates, momentums, groups))
        if self._writer is not None:
            series = {"learning_rate": rates}
            series.update({f"learning_rate/{n}": v for n, v in groups.items()})
            for tag, values in series.items():
                for count, rate in zip(counts, values):
                    self._writer.add_scalar(tag, rate, int(count) + 1)
            if momentums is not None:
                for count, value in zip(counts, momentums):
                    self._writer.add_scalar("momentum", value, int(count) + 1)

    def _used(
        self, optimizer: Any, counts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
        """The rates, momentums and groups' rates of the updates after
        `counts` applied ones."""
        state = _schedule_state(optimizer)
        if state is not None:
            rates, momentums, groups = state.used(counts)
            if momentums is None:
                momentums = _constant_momentum(optimizer, len(counts))
            return rates, momentums, groups
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
        else:
            value = self._stock_rate
            if value is None:
                value = float(ops.convert_to_numpy(optimizer.learning_rate))
            rates = np.full(len(counts), value, dtype=np.float64)
        return rates, _constant_momentum(optimizer, len(counts)), {}


def _count(optimizer: Any) -> int:
    """Updates applied so far (under gradient accumulation, not micro-batches)."""
    return int(ops.convert_to_numpy(optimizer.iterations))


def _constant_momentum(optimizer: Any, size: int) -> np.ndarray | None:
    """The optimizer's constant momentum, or `None` where it has none: no
    momentum argument (Adagrad, Adadelta) or a `momentum` of 0 (SGD's and
    RMSprop's default, which adds no momentum at all)."""
    for name in MOMENTUM_ARGUMENTS:
        value = vars(optimizer).get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if name == "momentum" and value == 0:
                return None
            return np.full(size, float(value), dtype=np.float64)
    return None
