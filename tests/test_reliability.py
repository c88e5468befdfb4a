"""Mixed precision, gradient accumulation, the stock optimizer options, and
safe loading of files that name a custom scale function."""

import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import scale_functions  # noqa: F401  (registers the named scale functions)
from conftest import run_updates
from keras import ops

from clr_optimizers import OPTIMIZERS, SGD, Adam

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

TESTS = Path(__file__).parent
CLR = {"max_lr": 5.0, "step_size": 4}


def mean_prediction(y_true, y_pred):
    return ops.mean(y_pred)


def test_loss_scale_optimizer_skips_a_non_finite_step_without_advancing_the_cycle():
    inner = SGD(learning_rate=1.0, clr=CLR)
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.LossScaleOptimizer(inner), loss=mean_prediction
    )
    # The gradient of the loss is the input: 1, or infinite (a skipped step).
    x = np.array([[1.0], [1.0], [np.inf], [1.0], [np.inf], [1.0]], "float32")
    model.fit(x, np.zeros((6, 1)), batch_size=1, shuffle=False, verbose=0)
    # Updates 1, 2, skipped, 3, skipped, 4: the rates used are 1, 2, 3, 4.
    assert float(ops.convert_to_numpy(model.layers[0].kernel)[0, 0]) == -10.0
    assert inner.get_config()["iterations"] == 4
    assert inner.current_lr == 4.0


def test_mixed_float16_training_follows_the_cycle():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)]
        )
        model.compile(
            optimizer=Adam(learning_rate=0.001, clr={**CLR, "max_lr": 0.01}),
            loss="mse",
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    rng = np.random.default_rng(0)
    model.fit(
        rng.normal(size=(40, 3)), rng.normal(size=(40, 1)), batch_size=4, verbose=0
    )
    inner = model.optimizer.inner_optimizer
    # Steps whose float16 gradients overflow are skipped (each halves the
    # loss scale from 2**15) and do not advance the cycle.
    scale = float(ops.convert_to_numpy(model.optimizer.dynamic_scale))
    skipped = round(np.log2(2.0**15 / scale))
    applied = inner.get_config()["iterations"]
    assert applied + skipped == 10 and applied >= 5
    assert inner.current_lr == pytest.approx(inner.learning_rates(applied)[-1])


def linear_fit(optimizer, x, y, batch_size):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.set_weights([np.full((3, 1), 0.5), np.zeros(1)])
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=batch_size, shuffle=False, verbose=0)
    return model.get_weights()


def test_accumulating_k_micro_batches_is_one_update_of_k_times_the_batch():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(96, 3)), rng.normal(size=(96, 1))
    clr = {"max_lr": 0.1, "step_size": 3, "mode": "triangular2"}
    accumulated = SGD(learning_rate=0.01, clr=clr, gradient_accumulation_steps=4)
    large = SGD(learning_rate=0.01, clr=clr)
    got = linear_fit(accumulated, x, y, batch_size=4)
    expected = linear_fit(large, x, y, batch_size=16)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    # step_size counts the 6 applied updates, not the 24 micro-batches.
    assert accumulated.get_config()["iterations"] == 6
    assert accumulated.current_lr == large.current_lr


OPTIONS = {
    "use_ema": {"use_ema": True, "ema_momentum": 0.9},
    "clipnorm": {"clipnorm": 0.1},
    "global_clipnorm": {"global_clipnorm": 0.1},
    "clipvalue": {"clipvalue": 0.05},
    "weight_decay": {"weight_decay": 0.1},
}


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("Opt", OPTIMIZERS, ids=lambda o: o.__name__)
def test_stock_options_work_with_a_schedule(Opt, option):
    kwargs = OPTIONS[option]
    # A flat cycle is the stock optimizer with the same option, exactly.
    stock = getattr(keras.optimizers, Opt.__name__)(learning_rate=0.05, **kwargs)
    flat = Opt(learning_rate=0.05, clr={"max_lr": 0.05, "step_size": 3}, **kwargs)
    expected = run_updates(stock)
    for e, g in zip(expected, run_updates(flat), strict=True):
        np.testing.assert_array_equal(g, e)
    # A real cycle moves the weights differently, and stays finite.
    cycling = Opt(learning_rate=0.05, clr={"max_lr": 0.5, "step_size": 3}, **kwargs)
    moved = run_updates(cycling)
    assert all(np.isfinite(v).all() for v in moved)
    assert any(not np.array_equal(m, e) for m, e in zip(moved[:2], expected[:2]))


LOAD_SCRIPT = textwrap.dedent(
    """
    import sys
    import keras
    import clr_optimizers
    try:
        keras.models.load_model({path!r}, safe_mode=True)
    except Exception as error:
        print(type(error).__name__ + ": " + str(error))
    else:
        print("loaded")
    """
)


@pytest.mark.slow
def test_safe_loading_needs_the_scale_function_registered_in_the_loading_process(
    tmp_path,
):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    clr = {"max_lr": 0.1, "step_size": 4, "scale_fn": "clr_tests>inverse_cycle"}
    model.compile(optimizer=SGD(learning_rate=0.01, clr=clr), loss="mse")
    model.fit(np.ones((8, 2)), np.ones((8, 1)), batch_size=2, verbose=0)
    path = str(tmp_path / "scaled.keras")
    model.save(path)

    def load(prelude=""):
        script = prelude + LOAD_SCRIPT.format(path=path)
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        return out.stdout.strip().splitlines()[-1]

    # The loading process has not imported the module that registers it: the
    # file names the function, and nothing the file names is run or imported.
    message = load()
    assert message.startswith(("ValueError", "TypeError")), message
    assert "clr_tests>inverse_cycle" in message
    assert "register_keras_serializable" in message
    # Registered by the loading process, it loads.
    prelude = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r}); import scale_functions\n"
    )
    assert load(prelude) == "loaded"
