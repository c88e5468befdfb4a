"""`cyclical`: CLR for any Keras optimizer class, the one mechanism."""

import pickle

import keras
import numpy as np
import pytest
from conftest import BACKEND, reference_rates, run_updates

import clr_optimizers
from clr_optimizers import OPTIMIZERS, CyclicalOptimizer, cyclical

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

CLR = {"max_lr": 0.05, "step_size": 3, "mode": "triangular2"}


class ScaledSGD(keras.optimizers.SGD):
    """A user's own optimizer: SGD with the step multiplied by `factor`."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def update_step(self, gradient, variable, learning_rate):
        super().update_step(gradient, variable, learning_rate * self.factor)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class NoRate(keras.optimizers.SGD):
    def __init__(self, momentum=0.0):
        super().__init__(learning_rate=0.1, momentum=momentum)


# Made at module level under their own names, as the README says, so that
# pickle finds them.
AdamW = cyclical(keras.optimizers.AdamW)
Lion = cyclical(keras.optimizers.Lion)
Lamb = cyclical(keras.optimizers.Lamb)
Ftrl = cyclical(keras.optimizers.Ftrl)
Adafactor = cyclical(keras.optimizers.Adafactor)
ScaledSGDCLR = cyclical(ScaledSGD, name="ScaledSGDCLR", package="clr_tests")

MADE = {
    AdamW: keras.optimizers.AdamW,
    Lion: keras.optimizers.Lion,
    Lamb: keras.optimizers.Lamb,
    Ftrl: keras.optimizers.Ftrl,
    Adafactor: keras.optimizers.Adafactor,
    ScaledSGDCLR: ScaledSGD,
}
ids = [stock.__name__ for stock in MADE.values()]


@pytest.mark.parametrize("Opt, Stock", MADE.items(), ids=ids)
def test_flat_cycle_matches_the_stock_class_exactly(Opt, Stock):
    stock = Stock(learning_rate=0.05)
    ours = Opt(learning_rate=0.05, clr={"max_lr": 0.05, "step_size": 3})
    assert isinstance(ours, Stock) and isinstance(ours, CyclicalOptimizer)
    for e, g in zip(run_updates(stock), run_updates(ours), strict=True):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("Opt, Stock", MADE.items(), ids=ids)
def test_cycles_and_reports_like_the_seven(Opt, Stock):
    opt = Opt(learning_rate=0.01, clr=CLR)
    expected = reference_rates(range(20), base=0.01, **opt.clr)
    np.testing.assert_allclose(opt.learning_rates(20), expected, rtol=1e-6)
    run_updates(opt, steps=7)
    config = opt.get_config()
    assert config["iterations"] == 7
    assert config["current_lr"] == pytest.approx(expected[6], rel=1e-6)
    assert set(config) == set(Stock().get_config()) | {
        "clr",
        "decay",
        "iterations",
        "current_lr",
    }
    again = Opt.from_config(config)
    assert again.get_config() == {**config, "iterations": 0, "current_lr": 0.01}


@pytest.mark.parametrize("Opt", list(MADE), ids=ids)
def test_saved_and_loaded_with_a_model(Opt, tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=Opt(learning_rate=0.01, clr=CLR), loss="mse")
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 1), "float32")
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is Opt
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.get_config()["iterations"] == 4


@pytest.mark.parametrize("Opt", list(MADE), ids=ids)
def test_pickled(Opt):
    opt = Opt(learning_rate=0.01, clr=CLR)
    assert pickle.loads(pickle.dumps(opt)).get_config() == opt.get_config()


def test_user_subclass_keeps_its_own_update_rule():
    plain = cyclical(keras.optimizers.SGD)(learning_rate=0.01, clr=CLR)
    scaled = ScaledSGDCLR(factor=3.0, learning_rate=0.01, clr=CLR)
    start = run_updates(plain, steps=0)[0]
    moved_plain = run_updates(plain, steps=1)[0] - start
    moved_scaled = run_updates(scaled, steps=1)[0] - start
    np.testing.assert_allclose(moved_scaled, 3 * moved_plain, rtol=1e-5, atol=1e-6)
    assert np.abs(moved_plain).max() > 1e-3
    assert keras.saving.get_registered_name(ScaledSGDCLR) == "clr_tests>ScaledSGDCLR"


def test_the_seven_are_made_by_cyclical():
    for opt in OPTIMIZERS:
        assert cyclical(getattr(keras.optimizers, opt.__name__)) is opt
        assert keras.saving.get_registered_name(opt) == f"clr_optimizers>{opt.__name__}"
    assert cyclical(keras.optimizers.AdamW) is AdamW


def test_on_torch_the_fused_update_rule_is_kept():
    for opt in [*OPTIMIZERS, AdamW, Lion]:
        stock = getattr(keras.optimizers, opt.__name__)
        fused = type(stock.__new__(stock))
        assert opt.__bases__ == (CyclicalOptimizer, fused)
        assert (fused is not stock) == (BACKEND == "torch")


@pytest.mark.parametrize(
    "argument, error, words",
    [
        (keras.optimizers.Adam(), TypeError, "optimizer class"),
        (int, TypeError, "optimizer class"),
        ("Adam", TypeError, "optimizer class"),
        (clr_optimizers.Adam, TypeError, "already has a cyclical"),
        (NoRate, TypeError, "no `learning_rate`"),
        (keras.optimizers.LossScaleOptimizer, TypeError, "wrap"),
    ],
    ids=["instance", "not-optimizer", "name", "already", "no-rate", "loss-scale"],
)
def test_rejects_what_it_cannot_make(argument, error, words):
    with pytest.raises(error, match=words):
        cyclical(argument)


@pytest.mark.parametrize("argument", ["name", "package"])
@pytest.mark.parametrize("value", ["", "a>b", 3, "a b"])
def test_rejects_a_bad_name_or_package(argument, value):
    with pytest.raises(ValueError, match=f"`{argument}` must be a Python identifier"):
        cyclical(keras.optimizers.Adam, **{argument: value})


def test_get_gives_the_clr_optimizer_for_a_name_that_compile_takes():
    """Code that compiled with `optimizer="adam"`: the name, with `clr`."""
    clr = {"max_lr": 0.06, "step_size": 4}
    for name, cls in (("adam", clr_optimizers.Adam), ("SGD", clr_optimizers.SGD)):
        opt = clr_optimizers.get(name, learning_rate=0.01, clr=clr)
        assert type(opt) is cls
        np.testing.assert_allclose(
            opt.learning_rates(5), [0.01, 0.0225, 0.035, 0.0475, 0.06], rtol=1e-6
        )
    ftrl = clr_optimizers.get("ftrl", learning_rate=0.01, clr=clr)
    assert isinstance(ftrl, keras.optimizers.Ftrl)
    assert isinstance(ftrl, clr_optimizers.CyclicalOptimizer)
    assert type(clr_optimizers.get("ftrl")) is type(ftrl)  # one class per base
    # A serialized config keeps its arguments; the keyword arguments win.
    config = keras.optimizers.serialize(
        keras.optimizers.SGD(momentum=0.9, learning_rate=0.5)
    )
    opt = clr_optimizers.get(config, learning_rate=0.01, clr=clr)
    assert opt.get_config()["momentum"] == 0.9
    assert opt.get_config()["learning_rate"] == 0.01
    with pytest.raises(TypeError, match="an optimizer's name"):
        clr_optimizers.get(keras.optimizers.SGD())
    with pytest.raises(ValueError):
        clr_optimizers.get("no_such_optimizer")
