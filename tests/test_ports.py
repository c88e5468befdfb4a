"""Ports: six patterns of code that scheduled the rate of a Keras model,
each re-created in a few lines and ported as the migration guides (from the
2017 callback, from TensorFlow Addons, from fastai) and the `clr` dict page
say.

Each test trains a tiny model with the port, checks the rate of every update
against an independent reference (the original's formula restated in NumPy,
or Keras's own schedule object) and checks that the port logs the live rate
where the original logged one: `LearningRateMonitor`, `optimizer.current_lr`
or the monitor's epoch logs, never `optimizer.learning_rate`, which for a
CLR optimizer is the floor of the schedule."""

import csv
import math

import keras
import numpy as np
import pytest
from conftest import reference_rates
from keras import ops
from policy_references import KERAS_RTOL, RTOL, keras_rates
from test_monitor import read_events

import clr_optimizers
from clr_optimizers import (
    SGD,
    Adam,
    LearningRateMonitor,
    RestartCycle,
    cyclical,
    schedules,
)


def data(samples, features=3, classes=None, seed=0):
    """Random inputs, and targets: a regression on their sum, or one-hot
    labels of `classes` classes."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, features)).astype("float32")
    if classes is None:
        return x, x.sum(axis=1, keepdims=True)
    labels = rng.integers(0, classes, size=samples)
    return x, np.eye(classes, dtype="float32")[labels]


def small_model(features=3, outputs=1, activation=None):
    return keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(4, activation="relu"),
            keras.layers.Dense(outputs, activation=activation),
        ]
    )


# The originals' formulas, restated in NumPy (float64).


def callback_rate(k, base_lr, max_lr, step_size, mode="triangular", gamma=1.0):
    """The rates of the 2017 `CyclicLR` callback and of Addons' schedules
    after each of the update counts `k`: Smith's cycle between `base_lr`
    and `max_lr` with halves of `step_size` updates, its height scaled by
    the mode (`reference_rates`, the documented formula restated)."""
    return reference_rates(
        np.atleast_1d(k),
        base=base_lr,
        max_lr=max_lr,
        step_size=step_size,
        mode=mode,
        gamma=gamma,
    )


def callback_history(batches, *args, **kwargs):
    """`history["lr"]` and `history["iterations"]` of a new 2017 callback
    after `batches` batches of one `fit`, in the order of its events: at the
    start of training it set `base_lr`; at the end of batch k it counted k,
    appended the rate the optimizer held, which batch k had used, and only
    then set the rate for k batches done, which batch k + 1 used. (The order
    of the callback's versions from 2018 on, which code copied; the first
    versions set the rate before appending it.)"""
    held = callback_rate(0, *args, **kwargs)[0]  # base_lr
    lr, iterations = [], []
    for k in range(1, batches + 1):
        lr.append(float(held))
        iterations.append(k)
        held = callback_rate(k, *args, **kwargs)[0]
    return np.array(lr), np.array(iterations)


def one_cycle_keras_style(step, start, peak, cycle, peak_share, final_scale):
    """A Keras one-cycle `LearningRateSchedule` of the kind that peaks at a
    share of the cycle: over `cycle` updates (twice its half-cycle argument)
    a half cosine rises from `start` to `peak` in the first
    `peak_share * cycle` updates and another falls to `start * final_scale`
    at the end of the cycle; then the cycle repeats. Step s is in the rising
    part while the share of the cycle done, 1 - |c - s / cycle| with c the
    cycle counted from 1, is at most `peak_share`."""
    step = np.asarray(step, dtype=np.float64)
    c = np.floor(1 + step / cycle)
    rising = 1 - np.abs(c - step / cycle) <= peak_share
    into = step - (c - 1) * cycle
    up = peak_share * cycle

    def anneal(a, b, t, length):  # from a at t = 0 to b at t = length
        return b + 0.5 * (a - b) * (1 + np.cos(np.pi * t / length))

    return np.where(
        rising,
        anneal(start, peak, into, up),
        anneal(peak, start * final_scale, into - up, cycle - up),
    )


class BatchRates(keras.callbacks.Callback):
    """A port of the 2017 callback's per-batch history: after each batch,
    `optimizer.current_lr` (the rate that batch used) and the update
    count."""

    def __init__(self):
        super().__init__()
        self.history = {"lr": [], "iterations": []}

    def on_train_batch_end(self, batch, logs=None):
        optimizer = self.model.optimizer  # on JAX, brought up to date
        self.history["lr"].append(optimizer.current_lr)
        self.history["iterations"].append(int(optimizer.iterations))


@pytest.mark.parametrize("route", ["schedule", "optimizer"])
def test_an_addons_cyclical_schedule_with_a_halving_lambda(route):
    """Addons' `CyclicalLearningRate` given the halving lambda as its
    `scale_fn` (scale mode "cycle") and a half cycle of 2 epochs, given to
    SGD, its rate plotted by step. Ported by the Addons guide: first the
    import changes (the same schedule, which trains and warns that the lambda
    cannot be saved, naming the built-in schedule it equals); then the second
    step, a CLR optimizer with mode "triangular2"."""
    floor, peak, batch_size, epochs = 1e-4, 1e-2, 8, 8
    x, y = data(24, classes=4)
    steps_per_epoch = len(x) // batch_size
    step_size = 2 * steps_per_epoch
    updates = epochs * steps_per_epoch
    # The lambda halves the height every cycle: mode triangular2's scale.
    expected = callback_rate(np.arange(updates), floor, peak, step_size, "triangular2")

    with pytest.warns(
        schedules.UnsavedScaleFunction, match="Triangular2CyclicalLearningRate"
    ):
        schedule = schedules.CyclicalLearningRate(
            initial_learning_rate=floor,
            maximal_learning_rate=peak,
            scale_fn=lambda x: 1 / (2.0 ** (x - 1)),
            step_size=step_size,
        )
    # The plot of the schedule by step.
    np.testing.assert_allclose(keras_rates(schedule, updates), expected, rtol=RTOL)
    if route == "schedule":
        optimizer = keras.optimizers.SGD(schedule)
    else:
        # A CLR optimizer's config must hold its scale function: the lambda
        # is refused, the mode the warning named is the port.
        with pytest.raises(ValueError, match="scale_fn"):
            SGD(
                learning_rate=floor,
                clr={
                    "max_lr": peak,
                    "step_size": step_size,
                    "scale_fn": lambda x: 1 / (2.0 ** (x - 1)),
                },
            )
        optimizer = SGD(
            learning_rate=floor,
            clr={"max_lr": peak, "step_size": step_size, "mode": "triangular2"},
        )
        np.testing.assert_allclose(
            optimizer.learning_rates(updates), expected, rtol=RTOL
        )

    model = small_model(outputs=4, activation="softmax")
    model.compile(
        optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"]
    )
    monitor = LearningRateMonitor()
    model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        callbacks=[monitor],
        verbose=0,
    )
    np.testing.assert_allclose(monitor.learning_rates, expected, rtol=RTOL)
    # Two peaks, the second half as far above the floor as the first.
    first, second = monitor.learning_rates[[step_size, 3 * step_size]]
    assert np.isclose(first, peak, rtol=RTOL)
    assert np.isclose(second - floor, (peak - floor) / 2, rtol=RTOL)


@pytest.mark.parametrize("mode", ["triangular", "triangular2"])
def test_the_2017_callback_in_fit_logging_the_rate_of_every_batch(mode):
    """The 2017 `CyclicLR` callback in `model.fit` beside early stopping on
    the validation loss, its half cycle a float number of epochs times the
    batches per epoch (the last batch partial), driving an SGD with momentum
    whose own rate it overwrote; its `history["lr"]` logged the rate of each
    batch. Ported by the 2017 guide: the callback goes, its `base_lr`
    becomes the optimizer's `learning_rate` and the rest its `clr`; the rate
    of each batch is logged by `LearningRateMonitor`, and read after each
    batch from `optimizer.current_lr`."""
    base_lr, max_lr, batch_size, epochs = 1e-4, 1e-2, 16, 6
    x, y = data(40)
    steps_per_epoch = math.ceil(len(x) / batch_size)  # 3: 16, 16 and 8 samples
    step_size = 1.5 * steps_per_epoch  # 4.5 updates
    optimizer = SGD(
        learning_rate=base_lr,
        momentum=0.9,
        clr={"max_lr": max_lr, "step_size": step_size, "mode": mode},
    )
    model = small_model()
    model.compile(optimizer=optimizer, loss="mse")
    monitor, batch_rates = LearningRateMonitor(), BatchRates()
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=20, mode="min", min_delta=0.005
    )
    model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=data(16, seed=1),
        callbacks=[stop, monitor, batch_rates],
        verbose=0,
    )
    updates = epochs * steps_per_epoch
    history_lr, history_iterations = callback_history(
        updates, base_lr, max_lr, step_size, mode
    )
    # The same rate for the same batch: validation batches are no updates.
    np.testing.assert_allclose(monitor.learning_rates, history_lr, rtol=RTOL)
    np.testing.assert_allclose(batch_rates.history["lr"], history_lr, rtol=RTOL)
    assert batch_rates.history["iterations"] == history_iterations.tolist()
    np.testing.assert_array_equal(  # the guide's `history["iterations"]`
        np.arange(1, len(monitor.learning_rates) + 1), history_iterations
    )
    # Up and down: the peak falls between updates 4 and 5.
    assert np.ptp(history_lr) > 0.8 * (max_lr - base_lr)
    # The callback's third choice of mode was a misspelling that it met only
    # at the end of the first batch; the port refuses it at construction.
    with pytest.raises(ValueError, match="exp_range"):
        SGD(
            learning_rate=base_lr, clr={"max_lr": max_lr, "step_size": 4, "mode": "exp"}
        )


@pytest.mark.parametrize(
    "restart", ["RestartCycle", "restart", "new optimizer", "none"]
)
def test_a_new_2017_callback_per_cross_validation_fold(restart):
    """K-fold cross-validation that puts the model's first weights back and
    compiles it again with the same Adam before each fold, and passes each
    fold's `fit` a new 2017 callback: every fold starts a fresh cycle at the
    floor, while Adam's state and update count carry over. Ported: the
    optimizer keeps the count, so each fold restarts the cycle with
    `RestartCycle(0)` or `optimizer.restart()`, or compiles with a new
    optimizer; without either (the last case) the second fold continues the
    first fold's cycle (the count runs on across calls of `fit`)."""
    base_lr, max_lr, step_size, batch_size, epochs = 1e-3, 1e-2, 3, 5, 2
    x, y = data(40)
    folds = np.array_split(np.random.default_rng(1).permutation(len(x)), 2)

    def make_optimizer():
        return Adam(
            learning_rate=base_lr,
            beta_1=0.9,
            beta_2=0.999,
            epsilon=1e-08,
            decay=0.0,
            clr={"max_lr": max_lr, "step_size": step_size},
        )

    model = small_model()
    start_weights = model.get_weights()
    optimizer = make_optimizer()
    records = []
    for held_out in folds:
        train = np.setdiff1d(np.arange(len(x)), held_out)
        model.set_weights(start_weights)
        if restart == "new optimizer":
            optimizer = make_optimizer()
        elif restart == "restart":
            optimizer.restart()
        model.compile(optimizer=optimizer, loss="mae", metrics=["mse"])
        monitor = LearningRateMonitor()  # a new record per fold
        callbacks = (
            [RestartCycle(0), monitor] if restart == "RestartCycle" else [monitor]
        )
        model.fit(
            x[train],
            y[train],
            batch_size=batch_size,
            epochs=epochs,
            callbacks=callbacks,
            verbose=0,
        )
        records.append(monitor.learning_rates)

    per_fold = epochs * len(x) // 2 // batch_size  # 8 updates
    fresh = callback_rate(np.arange(per_fold), base_lr, max_lr, step_size)
    np.testing.assert_allclose(records[0], fresh, rtol=RTOL)
    if restart == "none":
        carried_on = callback_rate(
            np.arange(per_fold, 2 * per_fold), base_lr, max_lr, step_size
        )
        np.testing.assert_allclose(records[1], carried_on, rtol=RTOL)
        assert records[1][0] > 5 * base_lr  # not the floor
    else:
        np.testing.assert_allclose(records[1], fresh, rtol=RTOL)
        assert np.isclose(records[1][0], base_lr)  # the floor again
    # As in the original, a reused optimizer keeps counting its updates.
    reused = restart != "new optimizer"
    assert int(optimizer.iterations) == (2 if reused else 1) * per_fold


class LiveRateTensorBoard(keras.callbacks.TensorBoard):
    """A port of a TensorBoard subclass that added the optimizer's rate to
    each epoch's logs: the live rate, `optimizer.current_lr`, where the
    original read `optimizer.lr`. Under "lr", written as `epoch_lr`: Keras's
    TensorBoard overwrites its own copy of "learning_rate" with
    `optimizer.learning_rate`."""

    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs
        logs["lr"] = self.model.optimizer.current_lr
        super().on_epoch_end(epoch, logs)


@pytest.mark.parametrize("name", ["adam", "ftrl"])
def test_an_optimizer_given_by_name_and_a_tensorboard_logging_its_rate(name, tmp_path):
    """A model compiled with the optimizer as a string, the 2017 callback
    in mode "exp_range" between a rate and 5 times it, and a TensorBoard
    subclass that logged the optimizer's rate at the end of each epoch.
    Ported by the 2017 guide: `clr_optimizers.get(name, learning_rate=...,
    clr=...)`, and the subclass logs `optimizer.current_lr`: read as before,
    `optimizer.lr` (which warns) and `optimizer.learning_rate` are the floor
    at every epoch's end."""
    base_lr, step_size, gamma, batch_size, epochs = 1e-3, 5, 0.97, 10, 5
    clr = {
        "max_lr": base_lr * 5,
        "step_size": step_size,
        "mode": "exp_range",
        "gamma": gamma,
    }
    optimizer = clr_optimizers.get(name, learning_rate=base_lr, clr=clr)
    assert type(optimizer).__name__.lower() == name
    model = small_model(outputs=5, activation="softmax")
    model.compile(optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    x, y = data(40, classes=5)
    floors = []
    trap = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: floors.append(
            float(ops.convert_to_numpy(model.optimizer.learning_rate))
        )
    )
    monitor = LearningRateMonitor()
    history = model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        callbacks=[monitor, LiveRateTensorBoard(log_dir=str(tmp_path)), trap],
        verbose=0,
    )
    steps_per_epoch = len(x) // batch_size
    updates = epochs * steps_per_epoch
    rates = callback_rate(
        np.arange(updates), base_lr, 5 * base_lr, step_size, "exp_range", gamma
    )
    np.testing.assert_allclose(monitor.learning_rates, rates, rtol=RTOL)
    last_of_each_epoch = rates[steps_per_epoch - 1 :: steps_per_epoch]
    scalars = read_events(tmp_path / "train")
    logged = [value for _, value in sorted(scalars["epoch_lr"])]
    np.testing.assert_allclose(logged, last_of_each_epoch, rtol=RTOL)
    assert np.ptp(logged) > base_lr  # it moves along the cycle
    np.testing.assert_allclose(history.history["lr"], last_of_each_epoch, rtol=RTOL)
    np.testing.assert_allclose(
        history.history["learning_rate"], last_of_each_epoch, rtol=RTOL
    )
    # The original's value at an epoch's end was the rate it had just set,
    # for the first batch of the next epoch: the monitor records it there.
    ends = np.arange(steps_per_epoch, updates, steps_per_epoch)
    np.testing.assert_allclose(
        monitor.learning_rates[ends],
        callback_rate(ends, base_lr, 5 * base_lr, step_size, "exp_range", gamma),
        rtol=RTOL,
    )
    # The trap: `optimizer.lr`, `optimizer.learning_rate` and Keras's own
    # epoch curve are the floor.
    with pytest.warns(UserWarning, match="current_lr"):
        old_reading = float(ops.convert_to_numpy(model.optimizer.lr))
    assert np.isclose(old_reading, base_lr, rtol=RTOL)
    np.testing.assert_allclose(floors, [base_lr] * epochs, rtol=RTOL)
    keras_curve = [value for _, value in sorted(scalars["epoch_learning_rate"])]
    np.testing.assert_allclose(keras_curve, [base_lr] * epochs, rtol=RTOL)


@pytest.mark.parametrize("route", ["optimizer", "schedule"])
def test_cosine_decay_restarts_with_halving_peaks(route, tmp_path):
    """Keras's `CosineDecayRestarts` with periods of equal length (`t_mul`
    1), a first period of the training's updates divided by the number of
    cycles wanted and rounded up, and each peak half the last (`m_mul`
    0.5), given to Adam; Keras's TensorBoard logged the rate as
    `epoch_learning_rate` and a `CSVLogger` the epoch logs. Ported: the
    CLR Adam with mode "warm_restarts" (its floor `alpha` times the rate: 0)
    and `LearningRateMonitor`, which logs every update's rate to TensorBoard
    and each epoch's last to the CSV file; or `CLRSchedule` with the stock
    Adam, whose rate Keras's TensorBoard logs as before."""
    pytest.importorskip("tensorboardX")
    lr_rate, steps_per_epoch, epochs, cycles, t_mul = 1e-3, 4, 5, 3, 1
    first_steps = steps_per_epoch * epochs / (cycles**t_mul - t_mul + 1)
    period = np.ceil(first_steps)  # 7 updates
    reference = keras.optimizers.schedules.CosineDecayRestarts(
        initial_learning_rate=np.float64(lr_rate),
        first_decay_steps=period,
        t_mul=t_mul,
        m_mul=0.5,
    )
    updates = steps_per_epoch * epochs
    expected = keras_rates(reference, updates + 1)
    clr = {
        "mode": "warm_restarts",
        "max_lr": lr_rate,
        "period": period,
        "period_mult": t_mul,
        "peak_mult": 0.5,
    }
    if route == "optimizer":
        optimizer = Adam(learning_rate=0.0, clr=clr)
    else:
        optimizer = keras.optimizers.Adam(schedules.CLRSchedule(0.0, clr))
    model = small_model(outputs=3)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalFocalCrossentropy(from_logits=True),
        metrics=[keras.metrics.CategoricalAccuracy(name="acc")],
    )
    monitor = LearningRateMonitor(log_dir=str(tmp_path))
    callbacks = [
        monitor,
        keras.callbacks.CSVLogger(str(tmp_path / "history.csv")),
        keras.callbacks.TensorBoard(log_dir=str(tmp_path), write_steps_per_second=True),
    ]
    x, y = data(steps_per_epoch * 8, classes=3)
    model.fit(x, y, batch_size=8, epochs=epochs, callbacks=callbacks, verbose=0)

    np.testing.assert_allclose(
        monitor.learning_rates, expected[:updates], rtol=KERAS_RTOL, atol=1e-9
    )
    # Three peaks, each half the last.
    np.testing.assert_allclose(
        expected[[0, 7, 14]], [lr_rate, lr_rate / 2, lr_rate / 4], rtol=KERAS_RTOL
    )
    scalars = read_events(tmp_path / "train")
    per_update = sorted(scalars["learning_rate"])
    assert [step for step, _ in per_update] == list(range(1, updates + 1))
    np.testing.assert_allclose(
        [value for _, value in per_update],
        expected[:updates],
        rtol=KERAS_RTOL,
        atol=1e-9,
    )
    with open(tmp_path / "history.csv") as f:
        epoch_rates = [float(row["learning_rate"]) for row in csv.DictReader(f)]
    ends = np.arange(steps_per_epoch, updates + 1, steps_per_epoch)
    np.testing.assert_allclose(
        epoch_rates, expected[ends - 1], rtol=KERAS_RTOL, atol=1e-9
    )
    keras_curve = [value for _, value in sorted(scalars["epoch_learning_rate"])]
    if route == "optimizer":
        # Keras's own curve is the floor, here 0: the monitor's is the rate.
        assert keras_curve == [0.0] * epochs
    else:
        # As the original's: the schedule at the count of updates done, the
        # rate of the next update.
        np.testing.assert_allclose(
            keras_curve, expected[ends], rtol=KERAS_RTOL, atol=1e-9
        )


def test_a_keras_one_cycle_schedule_that_peaks_at_a_share_of_the_cycle():
    """A Keras one-cycle `LearningRateSchedule` that rises by a half cosine
    from the peak / 25 to the peak over 30% of the cycle and falls to 1e-4
    of its start at the end of the cycle, with a second one that cycles
    Adam's `beta_1` from 0.95 down to 0.85 and back, given to AdamW.
    It puts the peak after `0.3 T` updates and the final rate after T, where
    PyTorch's one-cycle puts them one update earlier: ported with the
    conversion of the one-cycle section of the `clr` dict page and the
    fastai guide, `total_steps` T + 1 and `pct_start` (0.3 T + 1) / (T + 1),
    and a cycled momentum."""
    steps_per_epoch, epochs = 4, 5
    peak, peak_share, final_scale = 0.03, 0.3, 1e-4
    start = peak / 25.0
    T = steps_per_epoch * epochs  # the cycle: twice the half-cycle argument
    AdamW = cyclical(keras.optimizers.AdamW)
    clr = {
        "mode": "one_cycle",
        "max_lr": peak,
        "total_steps": T + 1,
        "pct_start": (peak_share * T + 1) / (T + 1),
        "final_div_factor": 1 / final_scale,
        "momentum": (0.85, 0.95),
    }
    optimizer = AdamW(learning_rate=start, weight_decay=1e-4, clr=clr)
    model = small_model()
    model.compile(optimizer=optimizer, loss="mse")
    monitor = LearningRateMonitor()
    x, y = data(steps_per_epoch * 8)
    model.fit(x, y, batch_size=8, epochs=epochs, callbacks=[monitor], verbose=0)

    steps = np.arange(T)
    rates = one_cycle_keras_style(steps, start, peak, T, peak_share, final_scale)
    momentums = one_cycle_keras_style(steps, 0.95, 0.85, T, peak_share, 1.0)
    np.testing.assert_allclose(monitor.learning_rates, rates, rtol=RTOL)
    np.testing.assert_allclose(monitor.momentum_values, momentums, rtol=1e-6)
    np.testing.assert_allclose(optimizer.learning_rates(T), rates, rtol=RTOL)
    assert monitor.learning_rates.argmax() == peak_share * T
    assert np.isclose(monitor.learning_rates[0], start)

    # Without the conversion: the same start, peak and final rate, each
    # phase one update shorter.
    same_shape = AdamW(
        learning_rate=start, clr={**clr, "total_steps": T, "pct_start": peak_share}
    )
    shifted = same_shape.learning_rates(T)
    assert shifted.argmax() == peak_share * T - 1
    assert np.isclose(shifted[-1], start * final_scale)  # reached at T - 1
    assert rates[-1] > 2 * start * final_scale  # the original's comes at T
