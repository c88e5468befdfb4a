"""Custom scale functions given as objects: an instance of a registered class
is saved by its config; what a config cannot hold is refused by the
optimizers with an error that names the key, never an AttributeError."""

import functools

import keras
import numpy as np
import pytest
import scale_functions
from conftest import reference_rates
from keras import ops

from clr_optimizers import SGD, Adam

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

CLR = {"max_lr": 0.06, "step_size": 4}


@pytest.mark.parametrize("scale_mode", ["cycle", "iterations"])
def test_an_instance_of_a_registered_class_is_a_scale_fn(scale_mode, tmp_path):
    clr = {**CLR, "scale_fn": scale_functions.Power(0.8), "scale_mode": scale_mode}
    opt = Adam(learning_rate=0.01, clr=clr)
    reference = {
        "cycle": lambda c: 0.8**c,
        "iterations": lambda n: 0.8**n,
    }[scale_mode]
    expected = reference_rates(
        range(40),
        base=0.01,
        max_lr=0.06,
        step_size=4,
        scale_fn=reference,
        scale_mode=scale_mode,
    )
    np.testing.assert_allclose(opt.learning_rates(40), expected, rtol=2e-6)
    saved = opt.get_config()["clr"]["scale_fn"]
    assert saved["registered_name"] == "clr_tests>Power"
    assert saved["config"] == {"base": 0.8}
    again = Adam.from_config(opt.get_config())
    np.testing.assert_array_equal(again.learning_rates(40), opt.learning_rates(40))

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=opt, loss="mse")
    model.fit(np.ones((8, 2)), np.ones((8, 1)), batch_size=2, verbose=0)
    model.save(tmp_path / "object.keras")
    loaded = keras.models.load_model(tmp_path / "object.keras", safe_mode=True)
    assert isinstance(loaded.optimizer.clr["scale_fn"], dict)
    assert loaded.optimizer.current_lr == opt.current_lr
    np.testing.assert_array_equal(
        loaded.optimizer.learning_rates(40), opt.learning_rates(40)
    )


@pytest.mark.parametrize(
    ("scale_fn", "error", "words"),
    [
        (
            functools.partial(ops.power, 0.5),
            ValueError,
            ["clr['scale_fn']", "functools.partial", "get_config"],
        ),
        (
            scale_functions.Unregistered(),
            ValueError,
            ["clr['scale_fn']", "Unregistered", "not registered"],
        ),
        (scale_functions.Power, TypeError, ["clr['scale_fn']", "instance"]),
        ("clr_tests>Power", ValueError, ["clr['scale_fn']", "class", "instance"]),
        (np.float32(0.5), TypeError, ["clr['scale_fn']"]),
    ],
    ids=["partial", "unregistered_object", "class", "class_name", "number"],
)
def test_what_a_config_cannot_hold_is_refused_naming_the_key(scale_fn, error, words):
    with pytest.raises(error) as info:
        SGD(learning_rate=0.01, clr={**CLR, "scale_fn": scale_fn})
    for word in words:
        assert word in str(info.value), str(info.value)


def test_a_registered_class_that_cannot_be_rebuilt_is_refused():
    @keras.saving.register_keras_serializable(package="clr_tests")
    class NoFromConfig:
        def __call__(self, x):
            return 1.0 / x

        def get_config(self):
            return {}

    with pytest.raises(ValueError, match=r"clr\['scale_fn'\].*from_config"):
        SGD(clr={**CLR, "scale_fn": NoFromConfig()})


def test_custom_objects_reach_the_scale_fn(tmp_path):
    def unregistered(cycle):
        return 1.0 / cycle

    opt = (
        SGD(learning_rate=0.01, clr={**CLR, "scale_fn": "mine>inverse"})
        if False
        else None
    )
    config = {
        "learning_rate": 0.01,
        "clr": {**CLR, "scale_fn": "mine>inverse"},
    }
    objects = {"mine>inverse": unregistered}
    opt = SGD.from_config(config, custom_objects=objects)
    assert opt.clr["scale_fn"] == "mine>inverse"
    again = keras.optimizers.deserialize(
        keras.optimizers.serialize(opt), custom_objects=objects
    )
    np.testing.assert_array_equal(again.learning_rates(20), opt.learning_rates(20))
    with keras.saving.custom_object_scope(objects):
        inside = SGD.from_config(config)
    np.testing.assert_array_equal(inside.learning_rates(20), opt.learning_rates(20))
