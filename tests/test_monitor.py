"""`LearningRateMonitor`: the record of the rate and momentum of every
update, against the optimizers' own schedule, a NumPy restatement and the
weights training produced; epoch logs, CSV, TensorBoard files and the plot."""

import csv

import keras
import numpy as np
import pytest
from conftest import BACKEND, reference_rate
from keras import ops
from policy_references import Truth
from rounding import float32_sum_rtol

import clr_optimizers
from clr_optimizers import SGD, Adam, LearningRateMonitor, cyclical
from clr_optimizers.schedules import CLRSchedule

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

UPDATES = 7  # per epoch
SPE = pytest.mark.skipif(BACKEND == "torch", reason="Keras allows 1 on PyTorch")
COMPILE = [
    pytest.param({}, id="default"),
    pytest.param({"jit_compile": True}, id="jit", marks=pytest.mark.slow_on("torch")),
    pytest.param({"steps_per_execution": 4}, id="spe4", marks=SPE),
    pytest.param(
        {"steps_per_execution": 4, "jit_compile": True}, id="spe4_jit", marks=SPE
    ),
]


def mean_prediction(y_true, y_pred):
    return ops.mean(y_pred)


def linear_model(optimizer, **compile_kwargs):
    """w of a 1 x 1 kernel with loss w * x, x = 1: plain SGD takes w down by
    the rate of each update, so w = -(sum of the rates used)."""
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros"),
        ]
    )
    model.compile(optimizer=optimizer, loss=mean_prediction, **compile_kwargs)
    return model


def fit(model, epochs, *callbacks, x=None):
    x = np.ones((UPDATES, 1), "float32") if x is None else x
    return model.fit(
        x,
        np.zeros_like(x),
        batch_size=1,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=list(callbacks),
    )


def kernel(model):
    return float(ops.convert_to_numpy(model.layers[0].kernel)[0, 0])


@pytest.mark.parametrize("compile_kwargs", COMPILE)
def test_the_record_is_the_schedule_and_what_training_did(compile_kwargs):
    clr = {"max_lr": 0.5, "step_size_up": 3, "step_size_down": 5, "mode": "triangular2"}
    opt = SGD(learning_rate=0.1, clr=clr)
    monitor = LearningRateMonitor()
    model = linear_model(opt, **compile_kwargs)
    fit(model, 3, monitor)
    record = monitor.learning_rates
    assert record.dtype == np.float64 and record.shape == (3 * UPDATES,)
    np.testing.assert_array_equal(record, opt.learning_rates(3 * UPDATES))
    assert kernel(model) == pytest.approx(
        -record.sum(), rel=float32_sum_rtol(record.size)
    )
    assert monitor.momentum_values is None  # SGD's default: no momentum
    assert monitor.epoch_ends == [7, 14, 21]


@pytest.mark.parametrize("compile_kwargs", COMPILE)
def test_a_cycled_momentum_is_recorded(compile_kwargs):
    clr = {"max_lr": 0.01, "step_size": 4, "momentum": (0.85, 0.95)}
    opt = Adam(learning_rate=0.001, clr=clr)
    monitor = LearningRateMonitor()
    fit(linear_model(opt, **compile_kwargs), 2, monitor)
    np.testing.assert_array_equal(monitor.learning_rates, opt.learning_rates(14))
    np.testing.assert_array_equal(monitor.momentum_values, opt.momentum_values(14))


def test_the_record_continues_across_fits_and_assignments():
    opt = SGD(learning_rate=1.0, clr={"max_lr": 5.0, "step_size": 3})
    monitor = LearningRateMonitor()
    model = linear_model(opt)
    fit(model, 1, monitor)
    opt.learning_rate = 0.5  # between fits: the whole cycle halves
    fit(model, 1, monitor)
    expected = [
        (1.0 if n < UPDATES else 0.5)
        * reference_rate(n, base=1.0, max_lr=5.0, step_size=3)
        for n in range(2 * UPDATES)
    ]
    np.testing.assert_allclose(monitor.learning_rates, expected, rtol=1e-6)
    assert kernel(model) == pytest.approx(
        -sum(expected), rel=float32_sum_rtol(len(expected))
    )
    assert monitor.epoch_ends == [7, 14]


@pytest.mark.parametrize("plateau_first", [True, False], ids=["before", "after"])
def test_reduce_lr_on_plateau_wherever_it_stands_in_the_list(plateau_first):
    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor="loss", mode="max", factor=0.5, patience=0
    )
    monitor = LearningRateMonitor()
    callbacks = [plateau, monitor] if plateau_first else [monitor, plateau]
    model = linear_model(SGD(learning_rate=1.0, clr={"max_lr": 5.0, "step_size": 3}))
    fit(model, 4, *callbacks)
    # Epoch 1 is the best in mode "max" (the loss falls); the rate halves at
    # the end of epochs 2 and 3.
    factor = [1, 1, 0.5, 0.25]
    expected = [
        factor[n // UPDATES] * reference_rate(n, base=1.0, max_lr=5.0, step_size=3)
        for n in range(4 * UPDATES)
    ]
    np.testing.assert_allclose(monitor.learning_rates, expected, rtol=1e-6)
    assert kernel(model) == pytest.approx(
        -sum(expected), rel=float32_sum_rtol(len(expected))
    )


@pytest.mark.parametrize(
    ("schedule", "factor_of_epoch"),
    [
        (lambda epoch: 0.01 * 0.5**epoch, lambda e: 0.5**e),  # absolute
        (lambda epoch, lr: lr * 0.9, lambda e: 0.9 ** (e + 1)),  # multiplicative
    ],
    ids=["absolute", "multiplicative"],
)
def test_learning_rate_scheduler(schedule, factor_of_epoch):
    scheduler = keras.callbacks.LearningRateScheduler(schedule)
    monitor = LearningRateMonitor()
    model = linear_model(SGD(learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 7}))
    fit(model, 3, monitor, scheduler)
    expected = [
        factor_of_epoch(n // UPDATES)
        * reference_rate(n, base=0.01, max_lr=0.1, step_size=7)
        for n in range(3 * UPDATES)
    ]
    np.testing.assert_allclose(monitor.learning_rates, expected, rtol=2e-6)
    assert kernel(model) == pytest.approx(
        -sum(expected), rel=float32_sum_rtol(len(expected))
    )


@pytest.mark.parametrize("compile_kwargs", COMPILE)
def test_stock_optimizers_and_schedules(compile_kwargs):
    cosine = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=20, alpha=0.1)
    ours = CLRSchedule(
        0.01, {"max_lr": 0.06, "step_size": 4, "mode": "exp_range", "gamma": 0.9}
    )
    cases = [
        (keras.optimizers.SGD(learning_rate=0.05, momentum=0.9), [0.05] * 21, 0.9),
        (
            keras.optimizers.SGD(learning_rate=cosine),
            [float(cosine(n)) for n in range(21)],
            None,  # momentum=0: none, and no column of zeros
        ),
        (keras.optimizers.Adam(learning_rate=ours), ours(np.arange(21)), 0.9),
        (keras.optimizers.Adagrad(learning_rate=0.2), [0.2] * 21, None),
    ]
    for optimizer, rates, momentum in cases:
        monitor = LearningRateMonitor()
        fit(linear_model(optimizer, **compile_kwargs), 3, monitor)
        np.testing.assert_allclose(monitor.learning_rates, np.asarray(rates), rtol=1e-6)
        if momentum is None:
            assert monitor.momentum_values is None
        else:
            assert monitor.momentum_values.tolist() == [momentum] * 21


def test_a_stock_rate_set_by_a_scheduler_is_recorded():
    scheduler = keras.callbacks.LearningRateScheduler(
        lambda epoch: [0.3, 0.2, 0.1][epoch]
    )
    monitor = LearningRateMonitor()
    model = linear_model(keras.optimizers.SGD(learning_rate=1.0))
    fit(model, 3, scheduler, monitor)
    expected = np.repeat([0.3, 0.2, 0.1], UPDATES)
    np.testing.assert_allclose(monitor.learning_rates, expected, rtol=1e-6)
    assert kernel(model) == pytest.approx(
        -expected.sum(), rel=float32_sum_rtol(expected.size)
    )


def test_a_class_made_by_cyclical():
    AdamW = cyclical(keras.optimizers.AdamW)
    opt = AdamW(learning_rate=0.001, clr={"max_lr": 0.01, "step_size": 5}, decay=0.01)
    monitor = LearningRateMonitor()
    fit(linear_model(opt), 2, monitor)
    np.testing.assert_array_equal(monitor.learning_rates, opt.learning_rates(14))
    assert monitor.momentum_values.tolist() == [0.9] * 14  # beta_1


def test_a_skipped_update_is_not_an_update():
    inner = SGD(learning_rate=1.0, clr={"max_lr": 5.0, "step_size": 4})
    monitor = LearningRateMonitor()
    model = linear_model(keras.optimizers.LossScaleOptimizer(inner))
    # The gradient is the input: 1, or infinite (a step the loss scale skips).
    x = np.array([[1.0], [1.0], [np.inf], [1.0], [np.inf], [1.0]], "float32")
    fit(model, 1, monitor, x=x)
    assert monitor.learning_rates.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert kernel(model) == -10.0


def test_epoch_logs_history_and_csv(tmp_path):
    clr = {"max_lr": 0.01, "step_size": 4, "momentum": (0.85, 0.95)}
    opt = Adam(learning_rate=0.001, clr=clr)
    monitor = LearningRateMonitor()
    path = tmp_path / "log.csv"
    history = fit(linear_model(opt), 3, monitor, keras.callbacks.CSVLogger(str(path)))
    # Each epoch's value is that of its last update.
    last = [opt.learning_rates(21)[e * UPDATES + UPDATES - 1] for e in range(3)]
    momentum = [opt.momentum_values(21)[e * UPDATES + UPDATES - 1] for e in range(3)]
    np.testing.assert_allclose(history.history["learning_rate"], last, rtol=1e-7)
    np.testing.assert_allclose(history.history["momentum"], momentum, rtol=1e-7)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    np.testing.assert_allclose(
        [float(r["learning_rate"]) for r in rows], last, rtol=1e-6
    )
    np.testing.assert_allclose(
        [float(r["momentum"]) for r in rows], momentum, rtol=1e-6
    )


def read_events(directory):
    """Every scalar in the event files of `directory`, by tag: those written
    as scalars (tensorboardX) and as scalar tensors (TensorFlow 2)."""
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )
    from tensorboard.util.tensor_util import make_ndarray

    events = EventAccumulator(
        str(directory), size_guidance={"scalars": 0, "tensors": 0}
    )
    events.Reload()
    tags = events.Tags()
    found = {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in tags["scalars"]
    }
    for tag in tags["tensors"]:
        values = [(e.step, make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]
        if all(v.dtype.kind == "f" and v.size == 1 for _, v in values):
            found[tag] = [(step, float(v)) for step, v in values]
    return found


def test_tensorboard_scalars_per_update_beside_keras_own(tmp_path):
    pytest.importorskip("tensorboardX")
    clr = {"max_lr": 0.01, "step_size": 4, "momentum": (0.85, 0.95)}
    opt = Adam(learning_rate=0.001, clr=clr)
    monitor = LearningRateMonitor(log_dir=tmp_path)
    callbacks = [monitor]
    if BACKEND == "tensorflow":  # Keras's own TensorBoard writes with TensorFlow
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tmp_path)))
    model = linear_model(opt)
    fit(model, 2, *callbacks)
    fit(model, 1, monitor)  # the record, and the run, go on
    scalars = read_events(tmp_path / "train")
    rates = sorted(scalars["learning_rate"])
    assert [step for step, _ in rates] == list(range(1, 22))
    np.testing.assert_allclose([v for _, v in rates], opt.learning_rates(21), rtol=1e-6)
    momentums = sorted(scalars["momentum"])
    np.testing.assert_allclose(
        [v for _, v in momentums], opt.momentum_values(21), rtol=1e-6
    )
    if BACKEND == "tensorflow":  # in the same run as Keras's epoch curves
        assert [step for step, _ in scalars["epoch_loss"]] == [0, 1]
        # Keras's own per-epoch value is optimizer.learning_rate: the floor.
        assert [v for _, v in scalars["epoch_learning_rate"]] == pytest.approx(
            [0.001, 0.001]
        )


def test_plot_shows_the_record_and_the_epoch_ends(tmp_path):
    pytest.importorskip("matplotlib")
    clr = {"max_lr": 0.01, "step_size": 4, "momentum": (0.85, 0.95)}
    opt = Adam(learning_rate=0.001, clr=clr)
    monitor = LearningRateMonitor()
    fit(linear_model(opt), 3, monitor)
    ax = monitor.plot()
    rate_line = ax.lines[0]
    np.testing.assert_array_equal(rate_line.get_xdata(), np.arange(1, 22))
    np.testing.assert_array_equal(rate_line.get_ydata(), monitor.learning_rates)
    boundaries = [line.get_xdata()[0] for line in ax.lines[1:]]
    assert boundaries == [7.5, 14.5]
    (twin,) = [a for a in ax.figure.axes if a is not ax]
    np.testing.assert_array_equal(twin.lines[0].get_ydata(), monitor.momentum_values)
    ax.figure.savefig(tmp_path / "monitor.png")
    import matplotlib.pyplot as plt

    plt.close(ax.figure)


def test_exported():
    assert clr_optimizers.LearningRateMonitor is LearningRateMonitor
    assert LearningRateMonitor().learning_rates.shape == (0,)
    assert LearningRateMonitor().momentum_values is None


@pytest.mark.parametrize("compile_kwargs", COMPILE[:2])
def test_the_record_is_each_rate_training_used(compile_kwargs):
    clr = {"max_lr": 0.5, "step_size": 3, "mode": "exp_range", "gamma": 0.9}
    opt = SGD(learning_rate=0.1, clr=clr, decay=0.01)
    monitor, truth = LearningRateMonitor(), Truth()
    fit(linear_model(opt, **compile_kwargs), 3, monitor, truth)
    # To float32 rounding: a compiled step may round the last bit otherwise.
    np.testing.assert_allclose(monitor.learning_rates, truth.rates, rtol=1e-6)


def test_restored_weights_move_the_counter_back_and_the_record_follows(tmp_path):
    opt = SGD(learning_rate=1.0, clr={"max_lr": 5.0, "step_size": 3})
    model = linear_model(opt)
    fit(model, 1)
    model.save_weights(tmp_path / "w.weights.h5")  # at update 7
    halve = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr / 2)
    fit(model, 3, halve)
    model.load_weights(tmp_path / "w.weights.h5")  # back to 7, floor 1 again
    monitor, truth = LearningRateMonitor(), Truth()
    fit(model, 1, monitor, truth)
    np.testing.assert_allclose(monitor.learning_rates, truth.rates, rtol=1e-6)
    expected = [
        reference_rate(n, base=1.0, max_lr=5.0, step_size=3) for n in range(7, 14)
    ]
    np.testing.assert_allclose(monitor.learning_rates, expected, rtol=1e-6)


@pytest.mark.parametrize("monitor_first", [True, False], ids=["first", "last"])
def test_backup_and_restore_wherever_the_monitor_stands(tmp_path, monitor_first):
    halve = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 1.0 / 2**epoch)

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("crash")

    first = linear_model(SGD(learning_rate=1.0, clr={"max_lr": 5.0, "step_size": 3}))
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError):
        fit(first, 4, halve, backup, Crash())
    # A fresh process would build the optimizer from the original arguments.
    model = linear_model(SGD(learning_rate=1.0, clr={"max_lr": 5.0, "step_size": 3}))
    monitor, truth = LearningRateMonitor(), Truth()
    restore = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    callbacks = [monitor, restore] if monitor_first else [restore, monitor]
    fit(model, 4, halve, *callbacks, truth)
    # The backup holds epochs 1 and 2 (the crash came after it was written):
    # epochs 3 and 4 ran here, with floors 1/4 and 1/8.
    assert len(monitor.learning_rates) == 2 * UPDATES
    assert monitor.epoch_ends == [7, 14]
    np.testing.assert_allclose(monitor.learning_rates, truth.rates, rtol=1e-6)


def test_a_fit_ended_by_an_exception_is_recorded_when_read():
    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(ops.convert_to_numpy(self.model.optimizer.iterations)) == 11:
                raise KeyboardInterrupt

    opt = SGD(learning_rate=1.0, clr={"max_lr": 5.0, "step_size": 3})
    model = linear_model(opt)
    monitor = LearningRateMonitor()
    with pytest.raises(KeyboardInterrupt):
        fit(model, 3, monitor, Interrupt())
    np.testing.assert_allclose(
        monitor.learning_rates, opt.learning_rates(11), rtol=1e-6
    )
    fit(model, 1, monitor)  # and the record goes on
    np.testing.assert_allclose(
        monitor.learning_rates, opt.learning_rates(18), rtol=1e-6
    )
    assert kernel(model) == pytest.approx(
        -monitor.learning_rates.sum(),
        rel=float32_sum_rtol(monitor.learning_rates.size),
    )


def test_a_model_compiled_again_with_another_optimizer():
    model = linear_model(keras.optimizers.Adagrad(learning_rate=0.2))
    monitor = LearningRateMonitor()
    fit(model, 1, monitor)
    clr = {"max_lr": 0.01, "step_size": 4, "momentum": (0.85, 0.95)}
    opt = Adam(learning_rate=0.001, clr=clr)
    model.compile(optimizer=opt, loss=mean_prediction)
    history = fit(model, 1, monitor)
    np.testing.assert_allclose(
        monitor.learning_rates, [0.2] * UPDATES + list(opt.learning_rates(7)), rtol=1e-6
    )
    momentums = monitor.momentum_values
    assert np.isnan(momentums[:UPDATES]).all()  # Adagrad has none
    np.testing.assert_allclose(momentums[UPDATES:], opt.momentum_values(7), rtol=1e-6)
    assert history.history["momentum"] == pytest.approx([opt.momentum_values(7)[-1]])


def test_epoch_logs_after_the_callbacks_that_write_the_floor():
    scheduler = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr)
    opt = SGD(learning_rate=1.0, clr={"max_lr": 5.0, "step_size": 3})
    monitor = LearningRateMonitor()
    history = fit(linear_model(opt), 2, scheduler, monitor)
    last = opt.learning_rates(14)[[6, 13]]
    np.testing.assert_allclose(history.history["learning_rate"], last, rtol=1e-7)
