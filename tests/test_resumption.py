"""Interrupted runs resumed through Keras's callbacks continue the schedule:
the update count travels with the optimizer's saved state, so the cycle
neither restarts nor slips."""

import warnings

import keras
import numpy as np
import pytest
from conftest import reference_rates

from clr_optimizers import Adam

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

CLR = {"max_lr": 0.05, "step_size": 4, "mode": "triangular2"}
BATCH, BATCHES, EPOCHS = 4, 6, 3  # 6 updates per epoch, 18 in all


class Crash(Exception):
    pass


class Record(keras.callbacks.Callback):
    """The rate of each update, and a crash after `crash_after` updates."""

    def __init__(self, crash_after=None):
        super().__init__()
        self.rates, self.crash_after = [], crash_after

    def on_train_batch_end(self, batch, logs=None):
        self.rates.append(self.model.optimizer.current_lr)
        if len(self.rates) == self.crash_after:
            raise Crash


def data():
    rng = np.random.default_rng(0)
    n = BATCH * BATCHES
    return rng.normal(size=(n, 3)).astype("float32"), rng.normal(size=(n, 1))


def fresh_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.set_weights([np.full((3, 1), 0.3), np.zeros(1)])
    model.compile(optimizer=Adam(learning_rate=0.01, clr=CLR), loss="mse")
    return model


def uninterrupted():
    model, record = fresh_model(), Record()
    x, y = data()
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=EPOCHS,
        shuffle=False,
        verbose=0,
        callbacks=[record],
    )
    return record.rates, model.get_weights()


def fit(model, callbacks, epochs=EPOCHS, x_y=None, **kwargs):
    x, y = x_y or data()
    try:
        model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=epochs,
            shuffle=False,
            verbose=0,
            callbacks=callbacks,
            **kwargs,
        )
    except Crash:
        return False
    return True


def test_backup_and_restore_resumes_the_cycle_after_a_crash_mid_epoch(tmp_path):
    rates, weights = uninterrupted()
    backup = str(tmp_path / "backup")
    # Crash in the middle of the second epoch (update 9 of 18).
    assert not fit(fresh_model(), [keras.callbacks.BackupAndRestore(backup), Record(9)])
    # A new process would build the model afresh: the backup restores the
    # weights and the optimizer's state, and Keras reruns the second epoch.
    model, record = fresh_model(), Record()
    assert fit(model, [keras.callbacks.BackupAndRestore(backup), record])
    assert record.rates == rates[BATCHES:]
    for got, want in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_backups_within_an_epoch_continue_the_count(tmp_path):
    backup = str(tmp_path / "backup")
    # Backups every 4 updates; crash after update 11 (the last backup holds 8).
    callbacks = [keras.callbacks.BackupAndRestore(backup, save_freq=4), Record(11)]
    assert not fit(fresh_model(), callbacks)
    model, record = fresh_model(), Record()
    assert fit(model, [keras.callbacks.BackupAndRestore(backup, save_freq=4), record])
    # Keras restarts the interrupted epoch from its first batch; the schedule
    # goes on from the 8 updates the backup holds: no restart, no slip.
    resumed = len(record.rates)
    assert model.optimizer.get_config()["iterations"] == 8 + resumed
    expected = reference_rates(range(8, 8 + resumed), base=0.01, **CLR)
    np.testing.assert_allclose(record.rates, expected, rtol=1e-6)


def test_model_checkpoint_resumes_mid_epoch_exactly(tmp_path):
    rates, weights = uninterrupted()
    path = str(tmp_path / "latest.keras")
    checkpoint = keras.callbacks.ModelCheckpoint(path, save_freq=4)
    # Crash after update 10; the checkpoint holds update 8, the third batch
    # of the second epoch done.
    assert not fit(fresh_model(), [checkpoint, Record(10)])
    model = keras.models.load_model(path)
    assert model.optimizer.get_config()["iterations"] == 8
    x, y = data()
    done = 8 - BATCHES  # batches of the second epoch already trained
    record = Record()
    assert fit(model, [record], epochs=1, x_y=(x[done * BATCH :], y[done * BATCH :]))
    assert fit(model, [record], epochs=1)
    assert record.rates == rates[8:]
    for got, want in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("crash_after", [1, 7, 17])
def test_backup_and_restore_at_any_epoch_boundary_keeps_the_whole_schedule(
    tmp_path, crash_after
):
    rates, _ = uninterrupted()
    backup = str(tmp_path / "backup")
    assert not fit(
        fresh_model(), [keras.callbacks.BackupAndRestore(backup), Record(crash_after)]
    )
    record = Record()
    assert fit(fresh_model(), [keras.callbacks.BackupAndRestore(backup), record])
    start = (crash_after // BATCHES) * BATCHES  # the last completed epoch
    assert record.rates == rates[start:]


def compiled_model(optimizer):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


@pytest.mark.parametrize("mixed", [False, True], ids=["float32", "mixed_float16"])
def test_weights_loaded_into_a_fresh_model_then_fit_continue_the_state(tmp_path, mixed):
    """The optimizer is not built when the weights load: its state waits, and
    is restored when the first training step builds it (on TensorFlow, while
    that step is traced). Under mixed precision the LossScaleOptimizer is not
    built either, and Keras skips its own loss scale with a warning, as for
    any optimizer; the CLR optimizer inside it loads its part of the file."""
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    clr = {"max_lr": 0.1, "step_size": 4}
    if mixed:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = compiled_model(Adam(learning_rate=0.01, clr=clr))
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        path = str(tmp_path / "fit.weights.h5")
        model.save_weights(path)
        inner = getattr(model.optimizer, "inner_optimizer", model.optimizer)
        saved = [np.array(v) for v in inner.variables]
        assert saved[-1] == 0  # the restart point
        fresh = compiled_model(Adam(learning_rate=0.01, clr=clr))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fresh.load_weights(path)
        skipped = [str(w.message) for w in caught if "Skipping" in str(w.message)]
        assert bool(skipped) == mixed, skipped
        assert all("'loss_scale_optimizer'" in text for text in skipped), skipped
        # No build before `fit`: the first training step builds it.
        fresh.fit(x, y, batch_size=8, epochs=1, verbose=0)
        loaded = getattr(fresh.optimizer, "inner_optimizer", fresh.optimizer)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    # From the count restored on (under mixed precision the loss scale skips
    # some updates, in the first fit as after the load).
    restored = int(saved[0])
    applied = int(keras.ops.convert_to_numpy(loaded.iterations))
    assert applied == restored + 4 if not mixed else restored <= applied
    # Noted at construction, and at the restore.
    assert [note.since for note in loaded.schedule_state.history] == [0, restored]
    # A restore recorded in the traced step would set the counter back at
    # every update; the slot variables moved on from the restored ones.
    assert not np.array_equal(np.array(loaded.variables[2]), saved[2])
