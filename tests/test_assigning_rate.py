"""`optimizer.learning_rate` reads the floor of the schedule (the rate passed
as `learning_rate`); assigning it (as `ReduceLROnPlateau` and
`LearningRateScheduler` do) sets the floor and scales the whole schedule by
the same factor, wherever the cycle stands."""

import math
import re
import warnings

import keras
import numpy as np
import pytest
from conftest import reference_rate
from keras import ops
from rounding import float32_sum_rtol

from clr_optimizers import SGD, Adam, Nadam

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

# Floor 1, peak 5, 3 updates per half cycle: rates 1, 2.33, 3.67, 5, 3.67, ...
CLR = {"max_lr": 5.0, "step_size": 3}
UPDATES_PER_EPOCH = 4


def test_assigning_scales_floor_and_peak_by_hand():
    opt = SGD(learning_rate=1, clr={"max_lr": 5, "step_size": 4})
    opt.iterations.assign(2)
    assert float(opt.learning_rate) == 1.0  # the floor, wherever the cycle is
    with pytest.warns(UserWarning, match="current_lr"):
        assert float(opt.lr) == float(opt.learning_rate)  # the old name
    opt.learning_rate = 0.5  # half of it: floor 0.5, peak 2.5
    assert float(opt.learning_rate) == 0.5
    assert opt.get_config()["learning_rate"] == 0.5
    assert opt.clr["max_lr"] == 2.5
    assert opt.learning_rates(6).tolist() == [0.5, 1, 1.5, 2, 2.5, 2]
    # The config round trip keeps the rescaled schedule.
    again = SGD.from_config(opt.get_config())
    assert again.learning_rates(6).tolist() == [0.5, 1, 1.5, 2, 2.5, 2]
    # Through the old name, as the 2017 callback did.
    opt.lr = 0.25
    assert opt.clr["max_lr"] == 1.25
    assert float(opt.lr) == 0.25


def test_reading_lr_warns_once_that_it_is_the_floor(recwarn):
    """Code ported from the 2017 callback reads `lr` to log the rate: the
    first read says that it is the floor, and where the live rate is."""
    opt = SGD(learning_rate=0.01, clr={"max_lr": 0.05, "step_size": 2})
    opt.iterations.assign(3)  # the third update used the peak
    assert float(opt.current_lr) == pytest.approx(0.05)
    with pytest.warns(UserWarning, match=r"SGD\.lr is the floor.*current_lr"):
        assert float(opt.lr) == pytest.approx(0.01)
    recwarn.clear()
    float(opt.lr), float(opt.learning_rate)  # once per optimizer
    stock = SGD(learning_rate=0.01)  # without a schedule `lr` is the rate
    float(stock.lr)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_keras_reading_every_attribute_leaves_the_warning_for_the_user(tmp_path):
    """Keras's saving reads every attribute, `lr` too: that read neither
    warns nor uses up the warning, which a user's first read then gives
    (also from a module whose name starts with "keras", such as a user's
    keras_callbacks.py)."""
    from clr_optimizers._optimizer import _from_keras

    x = np.ones((4, 2), "float32")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=SGD(0.01, clr={"max_lr": 0.05, "step_size": 2}), loss="mse")
    model.fit(x, x[:, :1], verbose=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*lr is the floor")
        model.save(tmp_path / "model.keras")
    with pytest.warns(UserWarning, match="lr is the floor"):
        float(model.optimizer.lr)
    assert _from_keras("keras") and _from_keras("keras.src.saving.saving_lib")
    assert not _from_keras("keras_callbacks") and not _from_keras("keras_tuner.x")


@pytest.mark.filterwarnings("ignore:.*lr is the floor")  # read by design here
def test_reading_and_assigning_the_same_value_changes_nothing():
    opt = Adam(learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 42})
    before = opt.learning_rates(100)
    for count in (0, 21, 42, 63):
        opt.iterations.assign(count)
        opt.learning_rate = opt.learning_rate
        opt.lr = opt.lr
    np.testing.assert_array_equal(opt.learning_rates(100), before)
    assert opt.clr["max_lr"] == 0.1


@pytest.mark.parametrize(
    ("make", "at"),
    [
        (lambda: SGD(learning_rate=0.01, clr={"max_lr": 0.06, "step_size": 5}), 7),
        (
            lambda: Adam(
                learning_rate=0.001,
                clr={
                    "max_lr": 0.01,
                    "step_size_up": 2,
                    "step_size_down": 7,
                    "mode": "triangular2",
                    "momentum": (0.85, 0.95),
                },
            ),
            12,
        ),
        (
            lambda: SGD(
                learning_rate=0.01,
                clr={"max_lr": 0.1, "step_size": 4, "mode": "exp_range", "gamma": 0.9},
                decay=0.01,
            ),
            9,
        ),
        (
            lambda: Nadam(
                clr={
                    "mode": "one_cycle",
                    "max_lr": 0.02,
                    "total_steps": 30,
                    "three_phase": True,
                    "momentum": (0.8, 0.9),
                }
            ),
            11,
        ),
        (lambda: SGD(learning_rate=0.1, decay=0.05), 6),
    ],
    ids=["triangular", "asymmetric_momentum", "exp_range_decay", "one_cycle", "decay"],
)
def test_assigning_multiplies_every_rate_and_keeps_the_momentum(make, at):
    opt = make()
    before = opt.learning_rates(40)
    momentum = opt.momentum_values(40) if opt.current_momentum is not None else None
    opt.iterations.assign(at)
    target = 0.37 * float(opt.learning_rate)  # 0.37 times the floor
    opt.learning_rate = target
    assert float(opt.learning_rate) == pytest.approx(target, rel=1e-6)
    np.testing.assert_allclose(opt.learning_rates(40), before * 0.37, rtol=2e-6)
    if momentum is not None:
        np.testing.assert_array_equal(opt.momentum_values(40), momentum)
    assert opt.iterations == at  # the position in the cycle is unchanged


def linear_model(optimizer):
    """w of a 1 x 1 kernel, loss w * x with x = 1: SGD takes w down by the
    rate of each update, so w = -(sum of the rates used)."""
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros"),
        ]
    )
    model.compile(optimizer=optimizer, loss=mean_prediction)
    return model


def mean_prediction(y_true, y_pred):
    return ops.mean(y_pred)


class RecordRates(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_end(self, batch, logs=None):
        self.rates.append(self.model.optimizer.current_lr)


def fit(model, epochs, *callbacks):
    record = RecordRates()
    x = np.ones((UPDATES_PER_EPOCH, 1), "float32")
    model.fit(
        x,
        np.zeros_like(x),
        batch_size=1,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[*callbacks, record],
    )
    weight = float(ops.convert_to_numpy(model.layers[0].kernel)[0, 0])
    return np.array(record.rates), weight


def expected_rates(epochs, factor_of_epoch):
    """The documented schedule of `CLR` from floor 1, multiplied in epoch `e`
    by `factor_of_epoch(e)`."""
    return np.array(
        [
            factor_of_epoch(n // UPDATES_PER_EPOCH)
            * reference_rate(n, base=1.0, max_lr=5.0, step_size=3)
            for n in range(epochs * UPDATES_PER_EPOCH)
        ]
    )


def test_reduce_lr_on_plateau_halves_the_cycle_through_fit():
    # The loss falls every epoch, so in mode "max" epoch 1 is the best and
    # each later epoch is a plateau: with patience 0 the callback halves the
    # rate at the end of epochs 2 to 6.
    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor="loss", mode="max", factor=0.5, patience=0
    )
    model = linear_model(SGD(learning_rate=1.0, clr=CLR))
    rates, weight = fit(model, 6, plateau)
    expected = expected_rates(6, lambda e: 0.5 ** max(0, e - 1))
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    assert weight == pytest.approx(-expected.sum(), rel=float32_sum_rtol(expected.size))
    assert model.optimizer.get_config()["learning_rate"] == 0.5**5
    assert model.optimizer.clr["max_lr"] == 5.0 * 0.5**5


def test_learning_rate_scheduler_scales_the_cycle_through_fit():
    # At the start of each epoch: 0.9 times the rate of the next update.
    scheduler = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.9)
    model = linear_model(SGD(learning_rate=1.0, clr=CLR))
    rates, weight = fit(model, 5, scheduler)
    expected = expected_rates(5, lambda e: 0.9 ** (e + 1))
    np.testing.assert_allclose(rates, expected, rtol=2e-6)
    assert weight == pytest.approx(-expected.sum(), rel=float32_sum_rtol(expected.size))


def test_learning_rate_scheduler_sets_the_floor_of_each_epoch():
    wanted = [2.0, 1.0, 0.5]
    scheduler = keras.callbacks.LearningRateScheduler(lambda epoch: wanted[epoch])
    model = linear_model(SGD(learning_rate=1.0, clr=CLR))
    rates, _ = fit(model, 3, scheduler)
    # The floor is the assigned rate, and the whole cycle scales with it.
    expected = expected_rates(3, lambda e: wanted[e])
    np.testing.assert_allclose(rates, expected, rtol=2e-6)


def test_a_constant_schedule_of_rates_keeps_the_bounds_steady():
    # 42 updates per epoch, a half cycle of 42: every epoch ends at a floor
    # or a peak, and the scheduler assigns the floor each time.
    opt = SGD(learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 42})
    expected = opt.learning_rates(42 * 4)
    scheduler = keras.callbacks.LearningRateScheduler(lambda epoch: 0.01)
    model = linear_model(opt)
    record = RecordRates()
    x = np.ones((42, 1), "float32")
    model.fit(x, x, batch_size=1, epochs=4, verbose=0, callbacks=[scheduler, record])
    np.testing.assert_allclose(record.rates, expected, rtol=1e-6)
    assert opt.clr["max_lr"] == 0.1
    assert opt.get_config()["learning_rate"] == 0.01


def test_reduce_lr_on_plateau_reports_the_floor_it_sets(capsys):
    opt = SGD(learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 42})
    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor="loss", mode="max", factor=0.5, patience=0, verbose=1
    )
    model = linear_model(opt)
    x = np.ones((42, 1), "float32")
    model.fit(x, x, batch_size=1, epochs=3, verbose=0, callbacks=[plateau])
    # Keras prints the float32 floor it set: 0.0049999998..., 0.0024999999...
    out = capsys.readouterr().out
    reported = re.findall(r"reducing learning rate to ([0-9.e-]+)\.\n", out)
    np.testing.assert_allclose([float(v) for v in reported], [0.005, 0.0025], rtol=1e-7)
    assert opt.clr["max_lr"] == pytest.approx(0.025)


def test_assigning_through_a_loss_scale_optimizer():
    inner = SGD(learning_rate=1.0, clr=CLR)
    outer = keras.optimizers.LossScaleOptimizer(inner)
    outer.learning_rate = 0.25
    np.testing.assert_allclose(
        inner.learning_rates(4), [0.25, 7 / 12, 11 / 12, 1.25], rtol=1e-6
    )


def test_saved_after_a_reduction_the_model_continues_the_reduced_cycle(tmp_path):
    model = linear_model(SGD(learning_rate=1.0, clr=CLR))
    model.optimizer.learning_rate = 0.5  # floor 0.5, peak 2.5
    fit(model, 1)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(
        tmp_path / "m.keras", custom_objects={"mean_prediction": mean_prediction}
    )
    continued, _ = fit(loaded, 1)
    expected = expected_rates(2, lambda e: 0.5)[UPDATES_PER_EPOCH:]
    np.testing.assert_allclose(continued, expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("value", "error", "words"),
    [
        (lambda step: 0.1, TypeError, "assign a number"),
        (
            keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9),
            TypeError,
            "not a schedule",
        ),
        ("0.1", TypeError, "must be a number"),
        (0.0, ValueError, "greater than 0"),
        (-1.0, ValueError, "greater than 0"),
        (math.nan, ValueError, "finite"),
        (math.inf, ValueError, "finite"),
        (1e38, ValueError, "outside float32's range"),
        (1e-47, ValueError, "outside float32's range"),  # max_lr would be 0
    ],
)
def test_bad_assignments_are_refused_and_change_nothing(value, error, words):
    opt = SGD(learning_rate=1e-3, clr={"max_lr": 0.06, "step_size": 4})
    before = opt.learning_rates(8)
    with pytest.raises(error, match=words):
        opt.learning_rate = value
    np.testing.assert_array_equal(opt.learning_rates(8), before)


def test_decay_alone_scales_its_floor():
    opt = SGD(learning_rate=1e-3, decay=0.5)
    opt.iterations.assign(10**6)
    before = opt.learning_rates(10)
    opt.learning_rate = 2 * float(opt.learning_rate)
    assert opt.get_config()["learning_rate"] == pytest.approx(2e-3, rel=1e-6)
    np.testing.assert_allclose(opt.learning_rates(10), 2 * before, rtol=1e-6)


def test_tensors_and_arrays_of_one_number_can_be_assigned():
    opt = SGD(learning_rate=1.0, clr={"max_lr": 5.0, "step_size": 4})
    opt.learning_rate = ops.convert_to_tensor(0.5)
    assert opt.clr["max_lr"] == 2.5
    opt.learning_rate = np.array(0.25)
    assert opt.clr["max_lr"] == 1.25
    with pytest.raises(TypeError, match="must be a number"):
        opt.learning_rate = np.array([0.1, 0.2])


def test_a_zero_floor_cannot_be_scaled():
    opt = SGD(learning_rate=0.0, clr={"max_lr": 0.06, "step_size": 4})
    with pytest.raises(ValueError, match="the floor is 0"):
        opt.learning_rate = 0.01
    opt.learning_rate = 0.0  # the floor it has: nothing to do
    scheduler = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr)
    fit(linear_model(opt), 2, scheduler)  # as at every epoch start
    assert opt.clr["max_lr"] == 0.06
    assert opt.get_config()["learning_rate"] == 0.0


def test_without_a_schedule_assigning_is_stock():
    opt = SGD(learning_rate=0.1)
    opt.learning_rate = 0.3
    assert opt.get_config()["learning_rate"] == pytest.approx(0.3)
    opt.learning_rate = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    assert float(opt.learning_rate) == pytest.approx(0.1)


def test_the_state_is_the_stock_state_then_the_cycled_momentum_then_its_own():
    stock = keras.optimizers.Adam()
    ours = Adam(clr={"max_lr": 0.01, "step_size": 4, "momentum": (0.85, 0.95)})
    plain = Adam(clr={"max_lr": 0.01, "step_size": 4})
    variables = [keras.Variable(np.zeros((2, 3), "float32"), name="w")]
    for opt in (stock, ours, plain):
        opt.build(variables)
    names = [v.name for v in stock.variables]
    own = ["max_learning_rate", "cycle_start"]
    assert [v.name for v in plain.variables] == names + own
    assert [v.name for v in ours.variables] == [*names, "cycled_beta_1", *own]
    # Not built yet: the counter and the base rate only, as in 0.1.0.
    assert len(Adam(clr={"max_lr": 0.01, "step_size": 4}).variables) == 2


def test_a_backup_restores_the_rescaled_cycle_into_a_fresh_optimizer(tmp_path):
    backup = str(tmp_path / "backup")
    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor="loss", mode="max", factor=0.5, patience=0
    )
    first = linear_model(SGD(learning_rate=1.0, clr=CLR))
    restore = keras.callbacks.BackupAndRestore(backup, delete_checkpoint=False)
    fit(first, 3, plateau, restore)
    # Halved at the end of epochs 2 and 3. A new process would build the
    # optimizer from the original arguments; the backup brings the rescaled
    # floor and peak, and training goes on with them.
    again = linear_model(SGD(learning_rate=1.0, clr=CLR))
    resumed = keras.callbacks.BackupAndRestore(backup)
    rates, _ = fit(again, 4, resumed)  # epochs 1 to 3 are in the backup
    expected = expected_rates(4, lambda e: 0.25)[3 * UPDATES_PER_EPOCH :]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    assert again.optimizer.clr["max_lr"] == 1.25
    assert again.optimizer.get_config()["learning_rate"] == 0.25
    # A later assignment rescales the restored bounds.
    again.optimizer.learning_rate = 2 * float(again.optimizer.learning_rate)
    assert again.optimizer.clr["max_lr"] == 2.5
    assert again.optimizer.get_config()["learning_rate"] == 0.5


def test_state_saved_without_a_cycled_momentum_does_not_load_into_one(tmp_path):
    model = linear_model(Adam(learning_rate=0.5, clr=CLR))
    fit(model, 1)
    model.save_weights(tmp_path / "w.weights.h5")
    other = linear_model(Adam(learning_rate=0.5, clr={**CLR, "momentum": (0.8, 0.9)}))
    fit(other, 1)
    before = [v.numpy() for v in other.optimizer.variables]
    with pytest.warns(UserWarning, match="Skipping variable loading"):
        other.load_weights(tmp_path / "w.weights.h5")
    for got, want in zip(other.optimizer.variables, before, strict=True):
        np.testing.assert_array_equal(got.numpy(), want)


def test_stock_state_loads_into_a_cyclical_optimizer(tmp_path):
    # The stock layout (also 0.1.0's): max_lr stays as the arguments set it.
    stock = linear_model(keras.optimizers.Adam(learning_rate=0.5))
    x = np.ones((UPDATES_PER_EPOCH, 1), "float32")
    stock.fit(x, np.zeros_like(x), batch_size=1, verbose=0)
    stock.save_weights(tmp_path / "w.weights.h5")
    ours = linear_model(Adam(learning_rate=0.5, clr=CLR))
    fit(ours, 1)
    ours.load_weights(tmp_path / "w.weights.h5")
    for got, want in zip(ours.optimizer.variables, stock.optimizer.variables):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert ours.optimizer.clr["max_lr"] == CLR["max_lr"]


def test_assigning_the_value_read_never_drifts():
    opt = SGD(learning_rate=0.007, clr={"max_lr": 0.030218807980418205, "step_size": 5})
    before = opt.learning_rates(50)
    peak = opt.clr["max_lr"]
    for _ in range(30):  # what LearningRateScheduler(lambda epoch: 0.007) does
        opt.learning_rate = 0.007
        opt.learning_rate = float(opt.learning_rate)
    assert opt.clr["max_lr"] == peak
    np.testing.assert_array_equal(opt.learning_rates(50), before)
    assert len(opt.schedule_state.history) == 1  # nothing changed, nothing noted


def test_the_rate_read_is_a_value_not_the_variable():
    opt = SGD(learning_rate=1.0, clr=CLR)
    assert not hasattr(opt.learning_rate, "assign")  # only through the setter
    assert float(opt.learning_rate) == 1.0
