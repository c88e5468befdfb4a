"""Config round trip, Keras (de)serialisation, .keras files and pickling."""

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import scale_functions  # noqa: F401  (registers the custom scale functions)

import clr_optimizers
from clr_optimizers import OPTIMIZERS, SGD, Adam

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

CLR = {"max_lr": 0.06, "step_size": 7, "mode": "modified_triangular2"}
TESTS = Path(__file__).parent


def trained(optimizer, updates=5):
    variables = [keras.Variable(np.ones((3, 2), "float32"))]
    for _ in range(updates):
        optimizer.apply([keras.ops.full((3, 2), 0.5)], variables)
    return optimizer


@pytest.mark.parametrize("Opt", OPTIMIZERS, ids=lambda o: o.__name__)
def test_config_round_trip(Opt):
    opt = trained(Opt(lr=0.01, clr=CLR, decay=1e-4))
    config = opt.get_config()
    assert config["clr"] == {
        "max_lr": 0.06,
        "step_size": 7,
        "mode": "modified_triangular2",
        "gamma": 1.0,
        "restart_every": 3,
        "scale_mode": "cycle",
    }
    assert config["decay"] == 1e-4
    assert config["iterations"] == 5
    assert isinstance(config["learning_rate"], float)
    fresh = Opt.from_config(config)
    assert type(fresh) is Opt
    fresh_config = fresh.get_config()
    assert fresh_config["iterations"] == 0
    for key in config:
        if key not in ("iterations", "current_lr"):
            assert fresh_config[key] == config[key], key
    # A fresh optimizer from the config follows the same schedule.
    assert fresh.current_lr == pytest.approx(0.01)
    assert trained(fresh).current_lr == opt.current_lr


def test_config_is_plain_json_data():
    import json

    opt = SGD(
        lr=0.01,
        clr={"max_lr": 0.05, "step_size": 4, "scale_fn": "clr_tests>inverse_cycle"},
    )
    config = opt.get_config()
    assert config["clr"]["scale_fn"] == "clr_tests>inverse_cycle"
    assert json.loads(json.dumps(config)) == config


@pytest.mark.parametrize("Opt", OPTIMIZERS, ids=lambda o: o.__name__)
def test_keras_deserialize_and_get_return_our_class(Opt):
    opt = Opt(lr=0.01, clr=CLR)
    serialized = keras.optimizers.serialize(opt)
    assert serialized["registered_name"] == f"clr_optimizers>{Opt.__name__}"
    for restored in (
        keras.optimizers.deserialize(dict(serialized)),
        keras.optimizers.get(dict(serialized)),
    ):
        assert type(restored) is Opt
        assert restored.clr == opt.clr


@pytest.mark.parametrize("Opt", [SGD, Adam], ids=lambda o: o.__name__)
def test_pickle(Opt):
    opt = trained(Opt(lr=0.01, clr=CLR))
    clone = pickle.loads(pickle.dumps(opt))
    assert type(clone) is Opt
    assert clone.clr == opt.clr
    assert clone.get_config() == opt.get_config()


def test_pickle_model_with_custom_scale_fn():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    clr = {
        "max_lr": 0.05,
        "step_size": 3,
        "scale_fn": "clr_tests>slow_decay",
        "scale_mode": "iterations",
    }
    model.compile(optimizer=SGD(lr=0.01, clr=clr), loss="mse")
    model.fit(np.ones((8, 2)), np.ones((8, 1)), batch_size=2, verbose=0)
    clone = pickle.loads(pickle.dumps(model))
    assert clone.optimizer.clr == model.optimizer.clr
    assert clone.optimizer.current_lr == model.optimizer.current_lr


RESUME_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, keras
    import clr_optimizers
    sys.path.insert(0, {tests!r})
    import scale_functions

    model = keras.models.load_model({path!r})
    opt = model.optimizer
    before = opt.get_config()
    rng = np.random.default_rng(1)
    x, y = rng.random((60, 4), dtype=np.float32), rng.random((60, 1), dtype=np.float32)
    rates = []
    for _ in range(3):
        model.fit(x, y, batch_size=6, epochs=1, verbose=0, shuffle=False)
        rates.append(opt.current_lr)
    print(json.dumps({{
        "class": type(opt).__module__ + "." + type(opt).__name__,
        "before": before,
        "rates": rates,
        "weights": [w.tolist() for w in model.get_weights()],
    }}))
    """
)


def make_model(optimizer):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(5, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model


def fit_epochs(model, epochs):
    rng = np.random.default_rng(1)
    x, y = rng.random((60, 4), dtype=np.float32), rng.random((60, 1), dtype=np.float32)
    rates = []
    for _ in range(epochs):
        model.fit(x, y, batch_size=6, epochs=1, verbose=0, shuffle=False)
        rates.append(model.optimizer.current_lr)
    return rates


@pytest.mark.slow
@pytest.mark.parametrize(
    "Opt, clr",
    [
        (SGD, {"max_lr": 0.1, "step_size": 7, "mode": "triangular2"}),
        (Adam, {"max_lr": 0.05, "step_size": 4.5, "mode": "exp_range", "gamma": 0.99}),
        (
            clr_optimizers.Nadam,
            {"max_lr": 0.05, "step_size": 3, "scale_fn": "clr_tests>inverse_cycle"},
        ),
    ],
    ids=["SGD", "Adam", "Nadam_scale_fn"],
)
def test_keras_file_resumes_in_a_fresh_process(tmp_path, Opt, clr):
    """Save after 2 epochs, load in a new process with no custom_objects and
    train 3 more: same rates and weights as 5 uninterrupted epochs."""
    uninterrupted = make_model(Opt(lr=0.01, clr=clr, decay=1e-3))
    rates = fit_epochs(uninterrupted, 5)

    model = make_model(Opt(lr=0.01, clr=clr, decay=1e-3))
    fit_epochs(model, 2)
    path = str(tmp_path / "m.keras")
    model.save(path)

    script = RESUME_SCRIPT.format(path=path, tests=str(TESTS))
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["class"] == f"clr_optimizers.optimizers.{Opt.__name__}"
    assert result["before"]["iterations"] == 20
    assert result["before"]["clr"] == model.optimizer.clr
    assert result["before"]["decay"] == 1e-3
    np.testing.assert_allclose(result["rates"], rates[2:], rtol=0, atol=0)
    for got, expected in zip(
        result["weights"], uninterrupted.get_weights(), strict=True
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_pickled_optimizer_keeps_its_slots_until_built():
    grad = [keras.ops.full((3, 2), 0.5)]
    weights = [keras.Variable(np.ones((3, 2), "float32"))]
    opt = Adam(lr=0.01, clr=CLR)
    for _ in range(5):
        opt.apply(grad, weights)
    clone = pickle.loads(pickle.dumps(opt))
    assert clone.get_config() == opt.get_config()
    # The moments come back when the clone is built on variables of the same shape.
    clone_weights = [keras.Variable(weights[0].numpy())]
    for _ in range(3):
        opt.apply(grad, weights)
        clone.apply(grad, clone_weights)
    np.testing.assert_array_equal(clone_weights[0].numpy(), weights[0].numpy())
    for got, expected in zip(clone.variables, opt.variables, strict=True):
        np.testing.assert_array_equal(got.numpy(), expected.numpy())


@pytest.mark.parametrize(
    "shapes", [[(2, 3), (3,)], [(), ()]], ids=["arrays", "scalars"]
)
@pytest.mark.parametrize(
    "clr",
    [
        {"max_lr": 0.02, "step_size": 3},
        {"max_lr": 0.02, "step_size": 3, "momentum": (0.8, 0.95)},
    ],
    ids=["constant_momentum", "cycled_momentum"],
)
def test_nadam_state_in_the_order_of_keras_before_3_10_loads(shapes, clr):
    """Keras before 3.10 created (and saved) Nadam's `u_product` right
    before the slot variables, Keras 3.10 after them. From 3.10 on, state in
    either order loads into the right variables, also where every slot is a
    scalar and both orders fit the shapes (the value `u_product` must hold
    decides); before, state in that Keras's order does."""
    from clr_optimizers import Nadam

    def trained():
        weights = [keras.Variable(np.full(s, 0.5, "float32")) for s in shapes]
        opt = Nadam(learning_rate=0.01, clr=clr)
        opt.build(weights)
        for k in range(7):
            grads = [
                keras.ops.convert_to_tensor(
                    np.full(s, 0.3 * (k + 1) - 0.7 * i, "float32")
                )
                for i, s in enumerate(shapes)
            ]
            opt.apply(grads, weights)
        return opt, weights

    opt, _ = trained()
    store = {}
    opt.save_own_variables(store)
    values = [store[str(i)] for i in range(len(store) - 1)]
    ids = [id(v) for v in opt.variables]
    moved = ids.index(id(opt._u_product))
    first_slot = min(ids.index(id(v)) for v in opt._momentums + opt._velocities)
    orders = [values]
    if first_slot < moved:  # Keras 3.10 and later: the slots, then it
        old = [*values[:first_slot], values[moved], *values[first_slot:moved]]
        orders.append([*old, *values[moved + 1 :]])
    for order in orders:
        fresh, _ = trained()
        fresh.load_own_variables(
            {**{str(i): v for i, v in enumerate(order)}, "layout": store["layout"]}
        )
        for variable, value in zip(fresh.variables, values):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(variable), value, variable.path
            )
