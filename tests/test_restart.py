"""Restarting the schedule mid-training: `optimizer.restart()` and the
`RestartCycle` callback, against the 2017 CLR callback's `_reset`, which set
its own count of batches to 0 and took new bounds and a new step size.

The reference is that callback's formula restated in NumPy
(`callback_rate`), evaluated on the count since the restart."""

import warnings

import keras
import numpy as np
import pytest
from conftest import BACKEND
from rounding import assert_within_rounding

from clr_optimizers import SGD, Adam, LearningRateMonitor, RestartCycle

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors


def callback_rate(k, base_lr, max_lr, step_size, mode="triangular", gamma=1.0):
    """The 2017 callback's rate after k batches since its last `_reset`."""
    k = np.asarray(k, dtype=np.float64)
    cycle = np.floor(1 + k / (2 * step_size))
    x = np.abs(k / step_size - 2 * cycle + 1)
    scale = {
        "triangular": np.ones_like(k),
        "triangular2": 1 / 2.0 ** (cycle - 1),
        "exp_range": gamma**k,
    }[mode]
    return base_lr + (max_lr - base_lr) * np.maximum(0, 1 - x) * scale


@pytest.mark.parametrize(
    "mode, before, after, at",
    [
        ("triangular", (0.001, 0.006, 5), (0.002, 0.004, 3), 7),
        ("triangular2", (0.01, 0.1, 4), (0.01, 0.05, 2), 13),
        ("exp_range", (0.001, 0.01, 3), (0.0005, 0.02, 6), 40),
    ],
)
def test_restart_matches_the_2017_reset(mode, before, after, at):
    base, peak, step = before
    extra = {"gamma": 0.99} if mode == "exp_range" else {}
    opt = SGD(
        learning_rate=base,
        clr={"max_lr": peak, "step_size": step, "mode": mode, **extra},
    )
    np.testing.assert_allclose(
        opt.learning_rates(at),
        callback_rate(np.arange(at), base, peak, step, mode, 0.99),
        rtol=1e-6,
    )
    opt.iterations.assign(at)
    new_base, new_peak, new_step = after
    opt.restart(learning_rate=new_base, max_lr=new_peak, step_size=new_step)
    expected = callback_rate(np.arange(50), new_base, new_peak, new_step, mode, 0.99)
    # From the schedule's new start ...
    np.testing.assert_allclose(opt.learning_rates(50), expected, rtol=1e-6)
    # ... which the training step reads at the optimizer's own count.
    got = [
        float(opt.schedule_state.rates(at + k))
        for k in (0, 1, new_step, 2 * new_step + 1)
    ]
    want = expected[[0, 1, new_step, 2 * new_step + 1]]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert opt.clr["step_size"] == new_step and opt.clr["max_lr"] == new_peak
    assert opt.get_config()["learning_rate"] == new_base


def test_restart_without_arguments_keeps_the_bounds_and_the_step_size():
    opt = SGD(learning_rate=1.0, clr={"max_lr": 5.0, "step_size": 4})
    opt.iterations.assign(6)
    before = opt.clr
    opt.restart()
    assert opt.clr == before
    # Update 7 (after 6 applied) is the first of the new cycle.
    np.testing.assert_allclose(
        [float(opt.schedule_state.rates(n)) for n in range(6, 10)], [1.0, 2.0, 3.0, 4.0]
    )


def test_restart_also_restarts_a_cycled_momentum_and_keeps_the_slots():
    opt = Adam(
        learning_rate=0.01,
        clr={"max_lr": 0.05, "step_size": 2, "momentum": (0.85, 0.95)},
    )
    variable = keras.Variable(np.ones(3, dtype="float32"))
    for _ in range(3):
        opt.apply_gradients([(keras.ops.ones(3), variable)])
    slots = [np.array(v) for v in opt.variables]
    with warnings.catch_warnings():
        # New bounds only: variables that a compiled step reads, no warning.
        warnings.simplefilter("error", UserWarning)
        opt.restart(max_lr=0.03)
    assert opt.current_momentum == 0.95  # the first momentum of the new cycle
    np.testing.assert_allclose(opt.momentum_values(5), [0.95, 0.9, 0.85, 0.9, 0.95])
    np.testing.assert_allclose(opt.learning_rates(3), [0.01, 0.02, 0.03], rtol=1e-6)
    for got, want in zip(opt.variables[:-3], slots[:-3]):  # Adam's moments kept
        np.testing.assert_array_equal(np.array(got), want)


def test_assigning_the_rate_after_a_restart_scales_the_new_cycle():
    opt = SGD(learning_rate=1.0, clr={"max_lr": 5.0, "step_size": 4})
    opt.iterations.assign(3)
    opt.restart(max_lr=3.0, step_size=2)
    opt.learning_rate = 2.0  # the next update's rate, the floor: factor 2
    np.testing.assert_allclose(opt.learning_rates(5), [2, 4, 6, 4, 2])


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 3)).astype("float32"), rng.normal(size=(32, 1))


def compiled(opt, **kwargs):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.set_weights([np.full((3, 1), 0.3), np.zeros(1)])
    model.compile(optimizer=opt, loss="mse", **kwargs)
    return model


COMPILE = [{}]
if BACKEND != "torch":  # PyTorch runs one step per execution, eagerly
    COMPILE += [{"steps_per_execution": 2}, {"jit_compile": True}]


@pytest.mark.parametrize("compile_args", COMPILE)
def test_restart_cycle_restarts_a_compiled_fit(compile_args):
    opt = SGD(
        learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 4, "momentum": (0.8, 0.9)}
    )
    model = compiled(opt, **compile_args)
    monitor = LearningRateMonitor()
    restart = RestartCycle([1, 2], max_lr=0.05, step_size=2)
    x, y = data()
    with warnings.catch_warnings():
        # The callback rebuilds the step itself: no warning.
        warnings.filterwarnings("error", message="A training step")
        model.fit(x, y, batch_size=8, epochs=3, callbacks=[restart, monitor], verbose=0)
    first = callback_rate(np.arange(4), 0.01, 0.1, 4)
    again = callback_rate(np.arange(4), 0.01, 0.05, 2)
    np.testing.assert_allclose(
        monitor.learning_rates, np.concatenate([first, again, again]), rtol=1e-6
    )
    # The momentum runs against the rate, in each new cycle too.
    height = np.concatenate([(first - 0.01) / 0.09, *2 * [(again - 0.01) / 0.04]])
    np.testing.assert_allclose(monitor.momentum_values, 0.9 - 0.1 * height, rtol=1e-6)
    assert opt.get_config()["iterations"] == 12
    assert opt.clr["step_size"] == 2


class RestartAt(keras.callbacks.Callback):
    """A user's own callback that restarts with new bounds at an epoch."""

    def __init__(self, epoch, **kwargs):
        super().__init__()
        self.epoch, self.kwargs = epoch, kwargs

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.optimizer.restart(**self.kwargs)


@pytest.mark.parametrize("compile_args", COMPILE)
def test_a_restart_from_any_callback_takes_effect_in_the_compiled_step(compile_args):
    """The restart point is state from construction: new bounds from the
    user's own callback apply at once, with no rebuild and no warning."""
    opt = SGD(learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 4})
    model = compiled(opt, **compile_args)
    monitor = LearningRateMonitor()
    x, y = data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=2,
            shuffle=False,
            callbacks=[RestartAt(1, max_lr=0.05), monitor],
            verbose=0,
        )
    first = callback_rate(np.arange(4), 0.01, 0.1, 4)
    again = callback_rate(np.arange(4), 0.01, 0.05, 4)
    np.testing.assert_allclose(
        monitor.learning_rates, np.concatenate([first, again]), rtol=1e-6
    )
    # The weights moved by those rates: the step read them, not only the
    # monitor's record.
    rates = np.concatenate([first, again])
    reference = compiled(keras.optimizers.SGD(learning_rate=0.01))
    trajectory = [reference.get_weights()]
    for rate, start in zip(rates, range(0, 32, 8)):
        reference.optimizer.learning_rate = float(rate)
        reference.train_on_batch(x[start : start + 8], y[start : start + 8])
        trajectory.append(reference.get_weights())
    for rate, start in zip(rates[4:], range(0, 32, 8)):
        reference.optimizer.learning_rate = float(rate)
        reference.train_on_batch(x[start : start + 8], y[start : start + 8])
        trajectory.append(reference.get_weights())
    # Within the rounding of a float32 Dense layer's forward and backward
    # pass (3 inputs, 8 examples: about 20 roundings on a gradient entry),
    # the rate's own float32 rounding and SGD's product and sum.
    for index, (got, want) in enumerate(zip(model.get_weights(), trajectory[-1])):
        moves = np.diff([weights[index] for weights in trajectory], axis=0)
        assert_within_rounding(
            got,
            want,
            rates=rates,
            moves=moves,
            compute_dtype="float32",
            roundings=20,
            rule_roundings=3,
        )


def test_new_keys_from_a_callback_warn_with_the_call_that_applies_them():
    opt = SGD(learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 4})
    model = compiled(opt)
    x, y = data()
    with pytest.warns(
        UserWarning, match=r"call `model.make_train_function\(force=True\)`"
    ):
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=2,
            shuffle=False,
            callbacks=[RestartAt(1, step_size=2)],
            verbose=0,
        )


def test_a_restarted_model_saves_and_resumes_its_cycle(tmp_path):
    opt = SGD(learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 4})
    model = compiled(opt)
    x, y = data()
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=2,
        callbacks=[RestartCycle(1, max_lr=0.05, step_size=3)],
        verbose=0,
    )
    path = str(tmp_path / "restarted.keras")
    model.save(path)
    loaded = keras.models.load_model(path).optimizer
    assert loaded.clr == opt.clr and loaded.clr["step_size"] == 3
    np.testing.assert_allclose(
        [float(loaded.schedule_state.rates(n)) for n in range(8, 16)],
        callback_rate(np.arange(4, 12), 0.01, 0.05, 3),
        rtol=1e-6,
    )
    assert loaded.get_config()["current_lr"] == opt.get_config()["current_lr"]


class Crash(Exception):
    pass


class CrashAfter(keras.callbacks.Callback):
    def __init__(self, updates):
        super().__init__()
        self.updates, self.seen = updates, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.updates:
            raise Crash


def test_backup_and_restore_resumes_after_a_restart(tmp_path):
    """A crash in the epoch after the restart: the backup restores the restart
    point and the bounds, and `RestartCycle` the new step size."""
    clr = {"max_lr": 0.1, "step_size": 4}
    x, y = data()

    def run(callbacks):
        model = compiled(SGD(learning_rate=0.01, clr=clr))
        monitor = LearningRateMonitor()
        try:
            model.fit(
                x,
                y,
                batch_size=8,
                epochs=4,
                shuffle=False,
                verbose=0,
                callbacks=[*callbacks, monitor],
            )
        except Crash:
            return None, None
        return monitor.learning_rates, model.get_weights()

    def restart():
        return RestartCycle(1, max_lr=0.05, step_size=3)

    rates, weights = run([restart()])
    backup = str(tmp_path / "backup")
    assert (
        run([keras.callbacks.BackupAndRestore(backup), restart(), CrashAfter(10)])[0]
        is None
    )
    resumed, resumed_weights = run(
        [keras.callbacks.BackupAndRestore(backup), restart()]
    )
    # Keras reruns the third epoch (updates 9 to 16) from the backup of the second.
    np.testing.assert_allclose(resumed, rates[8:], rtol=1e-6)
    for got, want in zip(resumed_weights, weights, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_restart_between_fits_warns_that_a_compiled_step_keeps_the_old_keys():
    opt = SGD(learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 4})
    model = compiled(opt)
    x, y = data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    with pytest.warns(UserWarning, match=r"make_train_function\(force=True\)"):
        opt.restart(step_size=2)
    with warnings.catch_warnings():
        # New bounds only: variables, no warning.
        warnings.filterwarnings("error", message="A training step")
        opt.restart(max_lr=0.05)
    model.make_train_function(force=True)
    monitor = LearningRateMonitor()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[monitor])
    np.testing.assert_allclose(
        monitor.learning_rates, callback_rate(np.arange(4), 0.01, 0.05, 2), rtol=1e-6
    )


def test_bad_restarts_fail_clearly():
    with pytest.raises(ValueError, match="without `clr`"):
        SGD(learning_rate=0.01).restart()
    opt = SGD(learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 4})
    with pytest.raises(ValueError, match="max_lr"):
        opt.restart(max_lr=0.001)
    with pytest.raises(ValueError, match="momentum"):
        opt.restart(momentum=(0.8, 0.9))
    with pytest.raises(ValueError, match="step_size"):
        opt.restart(step_size=-1)
    with pytest.raises(ValueError, match="stepsize"):
        opt.restart(stepsize=3)
    assert opt.clr["step_size"] == 4  # nothing changed by a refused restart
    with pytest.raises(TypeError, match="epochs"):
        RestartCycle("1")
    with pytest.raises(ValueError, match="epochs"):
        RestartCycle([-1])
    model = compiled(keras.optimizers.SGD())
    x, y = data()
    with pytest.raises(TypeError, match="RestartCycle"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[RestartCycle(0)])


def test_a_crash_in_the_restart_epoch_resumes_from_the_backup_before_it(tmp_path):
    """The backup predates the restart; the callback restarts the resumed run
    again, as the uninterrupted one."""
    clr = {"max_lr": 0.1, "step_size": 4}
    x, y = data()

    def callbacks(backup):
        return [
            keras.callbacks.BackupAndRestore(backup),
            RestartCycle(1, max_lr=0.05, step_size=3),
        ]

    def fit(extra):
        model = compiled(SGD(learning_rate=0.01, clr=clr))
        monitor = LearningRateMonitor()
        model.fit(
            x,
            y,
            batch_size=8,
            epochs=3,
            shuffle=False,
            verbose=0,
            callbacks=[*extra, monitor],
        )
        return model, monitor.learning_rates

    model, rates = fit([RestartCycle(1, max_lr=0.05, step_size=3)])
    backup = str(tmp_path / "backup")
    with pytest.raises(Crash):
        fit([*callbacks(backup), CrashAfter(6)])  # in epoch 2, the restart's
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*[Ss]kipping variable loading")
        resumed, resumed_rates = fit(callbacks(backup))
    assert resumed.optimizer.get_config()["iterations"] == 12
    np.testing.assert_allclose(resumed_rates, rates[4:], rtol=1e-6)
    for got, want in zip(resumed.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_state_saved_before_a_restart_loads_into_a_restarted_optimizer(tmp_path):
    x, y = data()
    model = compiled(SGD(learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 4}))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    saved = [np.array(v) for v in model.optimizer.variables]
    path = str(tmp_path / "before.weights.h5")
    model.save_weights(path)
    model.optimizer.restart(max_lr=0.05)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*[Ss]kipping variable loading")
        model.load_weights(path)
    opt = model.optimizer
    assert opt.schedule_state.start_value == 0  # the schedule from 0, as saved
    for got, want in zip(opt.variables, saved, strict=True):
        np.testing.assert_array_equal(np.array(got), want)
    np.testing.assert_allclose(opt.learning_rates(3), [0.01, 0.0325, 0.055], rtol=1e-6)


def test_a_loss_scale_optimizer_keeps_its_state_through_a_backup_after_a_restart(
    tmp_path,
):
    x, y = data()

    def model_with_restart():
        inner = SGD(learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 4})
        model = compiled(keras.optimizers.LossScaleOptimizer(inner))
        return model, RestartCycle(1, max_lr=0.05)

    model, restart = model_with_restart()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[restart])
    path = str(tmp_path / "restarted.weights.h5")
    model.save_weights(path)
    fresh, restart = model_with_restart()
    restart.set_model(fresh)  # as fit does before any callback runs
    fresh.optimizer.build(fresh.trainable_variables)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*[Ss]kipping variable loading")
        fresh.load_weights(path)
    for got, want in zip(
        fresh.optimizer.variables, model.optimizer.variables, strict=True
    ):
        np.testing.assert_array_equal(np.array(got), np.array(want))
    assert fresh.optimizer.inner_optimizer.schedule_state.start_value == 4


def test_a_chain_keeps_an_assigned_rate_through_its_config():
    opt = SGD(
        learning_rate=0.01,
        clr={
            "mode": "chain",
            "max_lr": 0.1,
            "policies": [{"step_size": 2}, {"mode": "warm_restarts", "period": 3}],
            "boundaries": [4],
        },
    )
    opt.learning_rate = 0.02  # every piece doubles
    np.testing.assert_allclose(
        opt.learning_rates(4), [0.02, 0.11, 0.2, 0.11], rtol=1e-6
    )
    clone = SGD.from_config(opt.get_config())
    np.testing.assert_allclose(
        clone.learning_rates(12), opt.learning_rates(12), rtol=1e-6
    )
    with pytest.raises(ValueError, match="policies"):
        opt.restart(learning_rate=0.01)


def test_a_config_after_a_restart_starts_its_schedule_at_its_own_count():
    opt = SGD(learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 2})
    opt.iterations.assign(6)
    opt.restart()
    clone = SGD.from_config(opt.get_config())  # a config has no counter
    np.testing.assert_allclose(
        [float(clone.schedule_state.rates(n)) for n in range(4)],
        [0.01, 0.055, 0.1, 0.055],
        rtol=1e-6,
    )


def test_restart_replaces_the_keys_a_new_key_excludes():
    opt = SGD(
        learning_rate=0.01, clr={"max_lr": 0.1, "step_size_up": 2, "step_size_down": 3}
    )
    opt.restart(step_size=2)
    assert opt.clr["step_size"] == 2 and "step_size_up" not in opt.clr
    cycle = SGD(
        clr={"mode": "one_cycle", "max_lr": 0.1, "epochs": 2, "steps_per_epoch": 5}
    )
    cycle.restart(total_steps=20)
    assert cycle.clr["total_steps"] == 20 and "epochs" not in cycle.clr


def test_plots_after_a_restart_show_the_new_schedule_from_its_start():
    from clr_optimizers._rates import source_of

    opt = SGD(learning_rate=0.01, clr={"max_lr": 0.05, "step_size": 2})
    opt.iterations.assign(6)
    opt.restart()
    np.testing.assert_allclose(
        source_of(opt).rates(np.arange(6)), opt.learning_rates(6)
    )
    np.testing.assert_allclose(
        opt.learning_rates(4), [0.01, 0.03, 0.05, 0.03], rtol=1e-6
    )


def test_restart_cycle_checks_its_arguments_when_training_starts():
    x, y = data()
    model = compiled(SGD(learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 4}))
    with pytest.raises(ValueError, match="step_sise"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[RestartCycle(10, step_sise=2)])
    with pytest.raises(ValueError, match="max_lr"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[RestartCycle(10, max_lr=0.001)])
    decaying = compiled(SGD(learning_rate=0.01, decay=0.1))
    with pytest.raises(TypeError, match="RestartCycle"):
        decaying.fit(x, y, epochs=1, verbose=0, callbacks=[RestartCycle(1)])


@pytest.mark.parametrize(
    "clr",
    [
        {"max_lr": 0.1, "step_size": 4},
        {"mode": "warm_restarts", "max_lr": 0.1, "period": 4, "period_mult": 2},
    ],
    ids=["triangular", "warm_restarts"],
)
def test_a_count_before_the_restart_point_is_read_as_the_restart_point(clr):
    # The counter set back below the restart point (by hand): the step
    # reads the restart point's rate, as the host does, not a rate from a
    # negative count.
    opt = SGD(learning_rate=0.01, clr=clr)
    opt.build([keras.Variable(np.zeros(2, "float32"))])
    opt.iterations.assign(10)
    opt.restart()
    opt.iterations.assign(7)
    state = opt.schedule_state
    rate = float(keras.ops.convert_to_numpy(state(opt.iterations)[0]))
    assert rate == state.rates(np.array([7]))[0] == state.rates(np.array([10]))[0]
