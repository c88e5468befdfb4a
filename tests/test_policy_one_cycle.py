"""Mode "one_cycle" in training: the final rate holds past `total_steps`, and a
saved run resumes where it stopped; given by `epochs` and `steps_per_epoch`, it
equals PyTorch's OneCycleLR update by update and inside `model.fit`."""

import keras
import numpy as np
import pytest
import torch
from conftest import torch_schedule
from keras import ops
from policy_references import (
    MOMENTUM,
    PEAK,
    RTOL,
    UPDATES,
    fit,
    lr_scheduler,
    momenta_of,
    rates_of,
)

from clr_optimizers import OPTIMIZERS, SGD, Adam, LearningRateMonitor

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

ONE = {"mode": "one_cycle", "max_lr": 0.1, "total_steps": 20}


def test_final_rate_and_top_momentum_hold_past_total_steps():
    opt = SGD(clr={**ONE, "momentum": (0.85, 0.95)})
    rates = opt.learning_rates(100)
    final = np.float32(0.1 / 25 / 1e4)
    assert np.all(rates[19:] == rates[19])
    assert rates[19] == pytest.approx(final, rel=1e-6)
    assert np.all(opt.momentum_values(100)[19:] == np.float32(0.95))
    # The rate falls all the way to the final one, never below it.
    assert np.all(np.diff(rates[5:20]) < 0) and rates.min() == rates[19]


@pytest.mark.parametrize("Opt", OPTIMIZERS, ids=lambda o: o.__name__)
def test_training_past_total_steps_keeps_the_final_rate(Opt):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    opt = Opt(clr={**ONE, "total_steps": 6, "pct_start": 0.5})
    model.compile(optimizer=opt, loss="mse")
    history = model.fit(
        np.ones((16, 2)), np.ones((16, 1)), batch_size=2, epochs=2, verbose=0
    )
    assert np.isfinite(history.history["loss"]).all()
    assert opt.get_config()["iterations"] == 16
    assert opt.current_lr == pytest.approx(0.1 / 25 / 1e4, rel=1e-6)


def test_assigning_the_learning_rate_rescales_start_peak_and_final_rate():
    opt = SGD(clr=ONE)  # starts at 0.1 / 25 = 0.004
    opt.learning_rate = 0.002
    rates = opt.learning_rates(20)
    assert rates[0] == pytest.approx(0.002)
    assert rates.max() == pytest.approx(0.05, rel=1e-6)
    assert rates[19] == pytest.approx(0.002 / 1e4, rel=1e-6)


def test_saved_run_resumes_the_one_cycle(tmp_path):
    clr = {**ONE, "total_steps": 24, "three_phase": True, "momentum": (0.85, 0.95)}
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(48, 3)), rng.normal(size=(48, 1))

    def model_with(opt):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.set_weights([np.full((3, 1), 0.1), np.zeros(1)])
        model.compile(optimizer=opt, loss="mse")
        return model

    whole = model_with(Adam(clr=clr))
    whole.fit(x, y, batch_size=2, shuffle=False, verbose=0)

    half = model_with(Adam(clr=clr))
    half.fit(x[:22], y[:22], batch_size=2, shuffle=False, verbose=0)
    half.save(tmp_path / "half.keras")
    loaded = keras.models.load_model(tmp_path / "half.keras")
    assert loaded.optimizer.clr == half.optimizer.clr
    assert loaded.optimizer.get_config() == half.optimizer.get_config()
    loaded.fit(x[22:], y[22:], batch_size=2, shuffle=False, verbose=0)
    for got, want in zip(loaded.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert loaded.optimizer.current_lr == whole.optimizer.current_lr
    assert loaded.optimizer.current_momentum == whole.optimizer.current_momentum


def test_config_records_the_start_rate_that_div_factor_gave():
    opt = SGD(clr={**ONE, "div_factor": 10})
    config = opt.get_config()
    assert config["learning_rate"] == 0.01
    assert "div_factor" not in config["clr"]
    clone = SGD.from_config(config)
    np.testing.assert_array_equal(clone.learning_rates(30), opt.learning_rates(30))
    assert float(ops.convert_to_numpy(clone.learning_rate)) == pytest.approx(0.01)


def test_very_short_phases_and_long_plans_stay_within_bounds():
    # A warm-up ending 3e-5 of an update before the last: rounding its end to
    # float32 must not take the rate past its bounds.
    opt = SGD(
        learning_rate=1.0,
        clr={
            **ONE,
            "max_lr": 1.0,
            "total_steps": 3,
            "pct_start": 0.99999,
            "anneal_strategy": "linear",
            "final_div_factor": 1.0,
        },
    )
    np.testing.assert_array_equal(opt.learning_rates(5), np.ones(5))
    # The same over 11 updates, annealed by cosines: the two shares of the
    # warm-up once summed to 1.0014 (a rate 0.14% above max_lr).
    opt = SGD(
        learning_rate=1.0,
        clr={
            **ONE,
            "max_lr": 1.0,
            "total_steps": 11,
            "pct_start": 0.99999,
            "final_div_factor": 1.0,
        },
    )
    rates = opt.learning_rates(13)
    assert rates.max() <= 1.0
    np.testing.assert_allclose(rates, 1.0, rtol=1.2e-7)  # within 1 float32 ulp
    # A plan longer than a 32-bit counter holds.
    opt = SGD(clr={**ONE, "total_steps": 2**31 + 1, "pct_start": 0.5})
    assert opt.learning_rates(2)[0] == pytest.approx(0.1 / 25)


def test_the_peak_is_max_lr_exactly():
    # low + (high - low) rounds one float32 step past high for about one
    # pair in fifty: the rate is held at the phase's high end.
    rng = np.random.default_rng(0)
    for _ in range(40):
        peak = float(np.float32(rng.uniform(0.001, 1.0)))
        div_factor = float(rng.integers(2, 50))
        opt = SGD(
            clr={**ONE, "max_lr": peak, "div_factor": div_factor, "total_steps": 100}
        )
        rates = np.float32(opt.learning_rates(100))
        assert rates.max() == np.float32(peak), (peak, div_factor)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"total_steps": 5, "pct_start": 0.99999998},
        {"total_steps": 7, "pct_start": 0.5714285571, "three_phase": True},
    ],
)
def test_a_phase_ending_just_below_a_whole_count_matches_pytorch(kwargs):
    # The phase's end rounds up to the count in float32; the count still
    # belongs to the next phase, as in PyTorch.
    clr = {"mode": "one_cycle", "max_lr": 0.1, "anneal_strategy": "linear", **kwargs}
    expected, _ = torch_schedule(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=0.1, anneal_strategy="linear", cycle_momentum=False, **kwargs
        ),
        kwargs["total_steps"],
    )
    opt = SGD(clr=clr)
    np.testing.assert_allclose(
        opt.learning_rates(kwargs["total_steps"]), expected, rtol=RTOL
    )


# One cycle by epochs.


# (id, epochs, steps_per_epoch, further OneCycleLR arguments and clr keys)
ONE_CYCLE_EPOCHS = [
    ("4 x 25", 4, 25, {}),
    ("3 x 33 three_phase linear", 3, 33, {"three_phase": True, "anneal_strategy": "linear"}),
    ("10 x 1 pct_start=0.4", 10, 1, {"pct_start": 0.4}),
    ("1 x 200 div_factor=10", 1, 200, {"div_factor": 10.0, "final_div_factor": 100.0}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("epochs", "steps_per_epoch", "kwargs"),
    [case[1:] for case in ONE_CYCLE_EPOCHS],
    ids=[case[0] for case in ONE_CYCLE_EPOCHS],
)
def test_one_cycle_by_epochs_matches_pytorch(epochs, steps_per_epoch, kwargs):
    total = epochs * steps_per_epoch
    expected, momentums = torch_schedule(
        lambda o: lr_scheduler.OneCycleLR(
            o,
            max_lr=PEAK,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            base_momentum=MOMENTUM[0],
            max_momentum=MOMENTUM[1],
            **kwargs,
        ),
        total,
    )
    clr = {
        "mode": "one_cycle",
        "max_lr": PEAK,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "momentum": MOMENTUM,
        **kwargs,
    }
    opt = SGD(clr=clr)
    np.testing.assert_allclose(rates_of(opt, total), expected, rtol=RTOL)
    np.testing.assert_allclose(momenta_of(opt, total), momentums, rtol=1e-6)
    # The same as total_steps = epochs * steps_per_epoch.
    by_total = {k: v for k, v in clr.items() if k not in ("epochs", "steps_per_epoch")}
    same = SGD(clr={**by_total, "total_steps": total})
    np.testing.assert_array_equal(rates_of(opt, total + 5), rates_of(same, total + 5))
    assert opt.clr["epochs"] == epochs and "total_steps" not in opt.clr


def test_fit_one_cycle_by_epochs_like_pytorch():
    expected, momentums = torch_schedule(
        lambda o: lr_scheduler.OneCycleLR(
            o,
            max_lr=0.5,
            epochs=3,
            steps_per_epoch=UPDATES,
            base_momentum=0.0,
            max_momentum=0.5,
        ),
        3 * UPDATES,
    )
    clr = {
        "mode": "one_cycle",
        "max_lr": 0.5,
        "epochs": 3,
        "steps_per_epoch": UPDATES,
        "momentum": (0.0, 0.5),
    }
    opt = SGD(clr=clr)
    monitor = LearningRateMonitor()
    fit(opt, 3, monitor)
    np.testing.assert_allclose(monitor.learning_rates, expected, rtol=RTOL)
    np.testing.assert_allclose(monitor.momentum_values, momentums, rtol=1e-6, atol=1e-7)
    assert opt.get_config()["iterations"] == 3 * UPDATES
