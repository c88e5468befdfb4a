"""`RestartCycle`: restarts a CLR optimizer's schedule at given epochs, as the
2017 CLR callback's `_reset` did, optionally with new bounds or step size."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import keras

from clr_optimizers._checks import check_int
from clr_optimizers._monitor import _inner
from clr_optimizers._optimizer import CyclicalOptimizer


class RestartCycle(keras.callbacks.Callback):
    """Restarts the schedule of a CLR optimizer at the start of given epochs.

    At the beginning of each epoch in `epochs` (counted from 0, as Keras
    counts them) it calls the optimizer's `restart` with the arguments given
    here: the schedule starts afresh at that update, optionally with new
    bounds and new `clr` keys (such as `step_size`), and the training step is
    built anew when the configuration changed. The restart point and the
    bounds are optimizer state, so a resumed fit (`BackupAndRestore`, or a
    saved model) continues from them; a fit resumed after the restart epoch
    with this callback uses the changed keys again.

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

    def _optimizer(self) -> CyclicalOptimizer:
        optimizer = _inner(self.model.optimizer)
        if not isinstance(optimizer, CyclicalOptimizer) or optimizer._max_lr is None:
            raise TypeError(
                "`RestartCycle` restarts the schedule of a clr_optimizers "
                "optimizer made with `clr`. Received: "
                f"{type(optimizer).__name__}."
            )
        return optimizer

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        optimizer = _inner(getattr(model, "optimizer", None))
        if isinstance(optimizer, CyclicalOptimizer) and optimizer._max_lr is not None:
            # The restart point joins the state before training starts: a
            # backup taken after a restart then loads (whatever the order of
            # the callbacks), and the step is not rebuilt for it.
            optimizer._track_start()

    def on_train_begin(self, logs: Any = None) -> None:
        # Fails early on an optimizer without a cycle, or on arguments that
        # the restart would refuse.
        self._optimizer()._restarted(self.learning_rate, self.max_lr, self.clr)
        self._first_epoch = True

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        optimizer = self._optimizer()
        before, kept = optimizer._policy, optimizer._keeps_start
        with warnings.catch_warnings():  # the training step is rebuilt below
            warnings.filterwarnings("ignore", message="A training step that is")
            if epoch in self.epochs:
                optimizer.restart(self.learning_rate, self.max_lr, **self.clr)
            elif self._first_epoch and self.clr and self.epochs[0] < epoch:
                # Resumed after a restart: the bounds and the restart point
                # were restored as state; the configuration is not state.
                _, _, policy = optimizer._restarted(None, None, self.clr)
                optimizer._use(policy, self.clr, first=False)
                optimizer._log_bounds()
        self._first_epoch = False
        if optimizer._policy is not before or optimizer._keeps_start is not kept:
            self.model.make_train_function(force=True)
