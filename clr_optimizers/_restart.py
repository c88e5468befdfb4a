"""`RestartCycle`: restarts a CLR optimizer's schedule at given epochs, as the
2017 CLR callback's `_reset` did, optionally with new bounds or step size."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import keras
from keras import ops

from clr_optimizers._checks import check_int
from clr_optimizers._monitor import _inner
from clr_optimizers._optimizer import CyclicalOptimizer
from clr_optimizers._state import ScheduleState


class RestartCycle(keras.callbacks.Callback):
    """Restarts the schedule of a CLR optimizer at the start of given epochs.

    At the beginning of each epoch in `epochs` (counted from 0, as Keras
    counts them) it calls the optimizer's `restart` with the arguments given
    here: the schedule starts afresh at that update, optionally with new
    bounds and new `clr` keys (such as `step_size`); the training step is
    built anew only when the keys change what it computes. The restart point and the
    bounds are optimizer state, so a resumed fit (`BackupAndRestore`, or a
    saved model) continues from them; a fit resumed after the restart epoch
    with this callback uses the changed keys again. `RestartCycle(0)` among
    the callbacks of each `fit` starts each call at a fresh cycle, as a
    2017 CLR callback created anew per call (per cross-validation fold) did.

    Args:
        epochs: An epoch, or the epochs, at whose start to restart.
        learning_rate: The new floor. Defaults to `None` (unchanged).
        max_lr: The new peak. Defaults to `None` (unchanged).
        **clr: Other `clr` keys to change, such as `step_size`.

    Example:

    ```python
    opt = SGD(learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 4})
    model.compile(optimizer=opt, loss="mse")
    restart = RestartCycle(1, max_lr=0.05, step_size=2)
    model.fit(x, y, batch_size=8, epochs=2, callbacks=[restart], verbose=0)
    ```
    """

    def __init__(
        self,
        epochs: int | Iterable[int],
        learning_rate: float | None = None,
        max_lr: float | None = None,
        **clr: Any,
    ) -> None:
        super().__init__()
        if isinstance(epochs, int) and not isinstance(epochs, bool):
            epochs = [epochs]
        if isinstance(epochs, (str, bytes)) or not isinstance(epochs, Iterable):
            raise TypeError(
                "`epochs` must be an epoch or a list of epochs (ints). "
                f"Received: epochs={epochs!r}."
            )
        self.epochs = sorted(
            {check_int("epochs", e, 0, 10**9, "epochs") for e in epochs}
        )
        if not self.epochs:
            raise ValueError("`epochs` must name at least one epoch.")
        self.learning_rate = learning_rate
        self.max_lr = max_lr
        self.clr = clr
        self._first_epoch = True

    def _state(self) -> tuple[CyclicalOptimizer, ScheduleState]:
        optimizer = _inner(self.model.optimizer)
        state = getattr(optimizer, "schedule_state", None)
        if (
            not isinstance(optimizer, CyclicalOptimizer)
            or state is None
            or state.peak is None
        ):
            raise TypeError(
                "`RestartCycle` restarts the schedule of a clr_optimizers "
                "optimizer made with `clr`. Received: "
                f"{type(optimizer).__name__}."
            )
        return optimizer, state

    def on_train_begin(self, logs: Any = None) -> None:
        # Fails early on an optimizer without a cycle, or on arguments that
        # the restart would refuse.
        _, state = self._state()
        state.plan(self.learning_rate, self.max_lr, self.clr)
        self._first_epoch = True

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        optimizer, state = self._state()
        count = int(ops.convert_to_numpy(optimizer.iterations))
        changed = False
        if epoch in self.epochs:
            changed = state.restart(
                count, self.learning_rate, self.max_lr, self.clr, warn=False
            )
        elif self._first_epoch and self.clr and self.epochs[0] < epoch:
            # Resumed after a restart: the bounds and the restart point were
            # restored as state; the configuration is not state.
            changed = state.reconfigure(self.clr, count)
        self._first_epoch = False
        if changed:  # the step computes another formula: build it anew
            self.model.make_train_function(force=True)
