"""The schedule objects: TensorFlow Addons' four classes against Addons'
formula, `CLRSchedule` against the CLR optimizers, and both as the
`learning_rate` of stock Keras optimizers (fit, compiled, saved, loaded)."""

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import scale_functions
from conftest import BACKEND, COUNTER_MAX
from keras import ops
from rounding import float32_sum_rtol

import clr_optimizers
from clr_optimizers import SGD, Adam
from clr_optimizers.schedules import (
    CLRSchedule,
    CyclicalLearningRate,
    ExponentialCyclicalLearningRate,
    Triangular2CyclicalLearningRate,
    TriangularCyclicalLearningRate,
)

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

TESTS = Path(__file__).parent


def values(schedule, steps):
    return np.asarray(ops.convert_to_numpy(schedule(np.asarray(steps))), np.float64)


def round_trip(schedule, serialize):
    if not serialize:
        return schedule
    config = keras.optimizers.schedules.serialize(schedule)
    json.dumps(config)  # plain data
    return keras.optimizers.schedules.deserialize(config)


def addons_rate(step, initial, maximal, step_size, scale_fn, scale_mode):
    """TensorFlow Addons' `CyclicalLearningRate.__call__`, in float64 NumPy."""
    step = np.asarray(step, np.float64)
    cycle = np.floor(1 + step / (2 * step_size))
    x = np.abs(step / step_size - 2 * cycle + 1)
    mode_step = cycle if scale_mode == "cycle" else step
    return initial + (maximal - initial) * np.maximum(0, 1 - x) * scale_fn(mode_step)


# The cases of Addons' test file, with its formulas. (Three of its four tests
# were skipped as failing: their expected values assumed step_size 2000 and
# the wrong scale mode; here each follows Addons' formula.)
SERIALIZE = pytest.mark.parametrize(
    "serialize", [False, True], ids=["object", "config"]
)


@SERIALIZE
def test_addons_triangular(serialize):
    schedule = round_trip(
        TriangularCyclicalLearningRate(
            initial_learning_rate=0.1, maximal_learning_rate=1, step_size=40
        ),
        serialize,
    )
    expected = np.concatenate(
        [np.linspace(0.1, 1, num=41), np.linspace(1, 0.1, num=41)[1:]]
    )
    np.testing.assert_allclose(values(schedule, range(81)), expected, rtol=1e-6)
    # One step at a time, as an optimizer calls it.
    for step in (0, 17, 40, 63, 80):
        assert float(schedule(step)) == pytest.approx(expected[step], rel=1e-6)


@SERIALIZE
def test_addons_triangular2_halves_the_second_cycle(serialize):
    schedule = round_trip(
        Triangular2CyclicalLearningRate(
            initial_learning_rate=0.1, maximal_learning_rate=1, step_size=2000
        ),
        serialize,
    )
    middle = (1 + 0.1) / 2
    expected = np.concatenate(
        [
            np.linspace(0.1, 1, num=2001)[1:],
            np.linspace(1, 0.1, num=2001)[1:],
            np.linspace(0.1, middle, num=2001)[1:],
            np.linspace(middle, 0.1, num=2001)[1:],
        ]
    )
    got = values(schedule, range(1, 8001))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(
        got,
        addons_rate(
            range(1, 8001), 0.1, 1, 2000, lambda c: 1 / 2.0 ** (c - 1), "cycle"
        ),
        rtol=1e-6,
    )


@SERIALIZE
def test_addons_exponential(serialize):
    schedule = round_trip(
        ExponentialCyclicalLearningRate(
            initial_learning_rate=0.1,
            maximal_learning_rate=1,
            step_size=2000,
            gamma=0.996,
        ),
        serialize,
    )
    steps = np.arange(1, 8001)
    expected = addons_rate(steps, 0.1, 1, 2000, lambda n: 0.996**n, "iterations")
    np.testing.assert_allclose(values(schedule, steps), expected, rtol=1e-6)


@SERIALIZE
@pytest.mark.parametrize("scale_mode", ["cycle", "iterations"])
def test_addons_custom_scale_fn_in_both_scale_modes(serialize, scale_mode):
    schedule = round_trip(
        CyclicalLearningRate(
            initial_learning_rate=0.1,
            maximal_learning_rate=1,
            step_size=2000,
            scale_fn=scale_functions.addons_decay,
            scale_mode=scale_mode,
        ),
        serialize,
    )
    steps = np.arange(1, 8001)
    expected = addons_rate(
        steps, 0.1, 1, 2000, lambda x: 1 / (5 ** (x * 0.0001)), scale_mode
    )
    np.testing.assert_allclose(values(schedule, steps), expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("make", "scale", "scale_mode"),
    [
        (
            lambda: Triangular2CyclicalLearningRate(0.1, 1, 5, scale_mode="iterations"),
            lambda n: 1 / 2.0 ** (n - 1),
            "iterations",
        ),
        (
            lambda: ExponentialCyclicalLearningRate(0.1, 1, 5, "cycle", gamma=0.8),
            lambda c: 0.8**c,
            "cycle",
        ),
        (
            lambda: TriangularCyclicalLearningRate(0.1, 1, 5, scale_mode="iterations"),
            lambda n: 1.0,
            "iterations",
        ),
    ],
    ids=["triangular2_iterations", "exponential_cycle", "triangular_iterations"],
)
def test_addons_scale_modes_other_than_the_default(make, scale, scale_mode):
    steps = np.arange(60)
    expected = addons_rate(steps, 0.1, 1, 5, scale, scale_mode)
    np.testing.assert_allclose(values(make(), steps), expected, rtol=1e-6, atol=1e-9)


def test_addons_names_arguments_defaults_and_config_keys():
    common = ["initial_learning_rate", "maximal_learning_rate", "step_size"]
    cases = [
        (
            CyclicalLearningRate(0.1, 1, 4, scale_functions.addons_decay),
            [*common[:2], "scale_fn", "step_size", "scale_mode"],
            "CyclicalLearningRate",
        ),
        (TriangularCyclicalLearningRate(0.1, 1, 4), [*common, "scale_mode"], None),
        (Triangular2CyclicalLearningRate(0.1, 1, 4), [*common, "scale_mode"], None),
        (
            ExponentialCyclicalLearningRate(0.1, 1, 4),
            [*common, "scale_mode", "gamma"],
            None,
        ),
    ]
    for schedule, keys, _ in cases:
        config = schedule.get_config()
        # Addons' keys, and the name, which Addons' config left out.
        assert sorted(config) == sorted([*keys, "name"])
        assert config["name"] == type(schedule).__name__
        assert type(schedule).from_config(config).get_config() == config
    assert cases[0][0].scale_mode == "cycle"
    assert cases[3][0].get_config()["scale_mode"] == "iterations"
    assert cases[3][0].get_config()["gamma"] == 1.0
    assert cases[0][0].get_config()["scale_fn"] == "clr_tests>addons_decay"
    assert cases[0][0].scale_fn is scale_functions.addons_decay
    # The named classes expose their built-in scale, as Addons' did.
    assert [cases[i][0].scale_fn(3.0) for i in (1, 2)] == [1.0, 0.25]
    gamma = ExponentialCyclicalLearningRate(0.1, 1, 4, gamma=0.5).scale_fn
    assert gamma(3.0) == 0.125
    assert (
        keras.optimizers.schedules.serialize(cases[1][0])["registered_name"]
        == "clr_optimizers>TriangularCyclicalLearningRate"
    )


def test_a_lambda_trains_and_saving_it_fails_naming_scale_fn():
    schedule = CyclicalLearningRate(0.1, 1, 4, scale_fn=lambda x: 1 / (2.0 ** (x - 1)))
    np.testing.assert_allclose(values(schedule, [0, 4, 12]), [0.1, 1, 0.55], rtol=1e-6)
    model = linear_model(keras.optimizers.SGD(learning_rate=schedule))
    fit(model, 8)
    assert kernel(model) == pytest.approx(
        -values(schedule, range(8)).sum(), rel=float32_sum_rtol(8)
    )
    for save in (
        lambda: keras.optimizers.schedules.serialize(schedule),
        lambda: schedule.get_config(),
    ):
        with pytest.raises(ValueError) as info:
            save()
        message = str(info.value)
        for words in ("scale_fn", "lambda", "register_keras_serializable"):
            assert words in message, message


def test_an_unregistered_function_or_object_trains_and_saving_it_fails():
    for scale_fn, words in (
        (scale_functions.unregistered, "not registered"),
        (scale_functions.Unregistered(), "not registered"),
    ):
        schedule = CLRSchedule(
            0.1, {"max_lr": 1.0, "step_size": 4, "scale_fn": scale_fn}
        )
        assert np.isfinite(values(schedule, range(10))).all()
        with pytest.raises(ValueError, match=words) as info:
            schedule.get_config()
        assert "scale_fn" in str(info.value)


def test_a_registered_object_saves_by_its_config():
    schedule = CyclicalLearningRate(
        0.1, 1, 4, scale_fn=scale_functions.Power(0.5), scale_mode="iterations"
    )
    config = schedule.get_config()
    assert config["scale_fn"]["registered_name"] == "clr_tests>Power"
    assert config["scale_fn"]["config"] == {"base": 0.5}
    again = round_trip(schedule, True)
    assert isinstance(again.scale_fn, scale_functions.Power)
    np.testing.assert_array_equal(values(again, range(30)), values(schedule, range(30)))
    expected = addons_rate(range(30), 0.1, 1, 4, lambda n: 0.5**n, "iterations")
    np.testing.assert_allclose(values(again, range(30)), expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: TriangularCyclicalLearningRate(0.1, 1, step_size=0), ["step_size"]),
        (lambda: TriangularCyclicalLearningRate(0.1, 1, "40"), ["step_size", "number"]),
        (
            lambda: TriangularCyclicalLearningRate(1, 0.1, 40),
            ["maximal_learning_rate", "initial_learning_rate"],
        ),
        (
            lambda: TriangularCyclicalLearningRate(-0.1, 1, 40),
            ["initial_learning_rate"],
        ),
        (
            lambda: Triangular2CyclicalLearningRate(0.1, 1, 40, scale_mode="epochs"),
            ["scale_mode", "'cycle'"],
        ),
        (lambda: ExponentialCyclicalLearningRate(0.1, 1, 40, gamma=1.5), ["gamma"]),
        (lambda: CyclicalLearningRate(0.1, 1, 40, scale_fn=3), ["scale_fn"]),
        (
            lambda: CyclicalLearningRate(0.1, 1, 40, scale_fn=lambda x: x / 0.0),
            ["scale_fn", "finite"],
        ),
        (
            lambda: CyclicalLearningRate(0.1, 1, 40, scale_fn=lambda x: float(x) + "a"),
            ["scale_fn", "keras.ops"],
        ),
        (lambda: TriangularCyclicalLearningRate(0.1, 1, 40, name=5), ["name"]),
        (lambda: CyclicalLearningRate(0.1, 1, 40, scale_fn="nope>none"), ["scale_fn"]),
        (lambda: CLRSchedule(clr={"max_lr": 1.0, "step_size": 4}), ["learning_rate"]),
        (lambda: CLRSchedule(0.1, {"max_lr": 1.0}), ["step_size"]),
        (
            lambda: CLRSchedule(0.1, {"max_lr": 1.0, "step_size": 4}, decay=-1),
            ["decay"],
        ),
        (
            lambda: CLRSchedule("0.1", {"max_lr": 1.0, "step_size": 4}),
            ["learning_rate"],
        ),
    ],
)
def test_bad_arguments_fail_naming_them(make, words):
    with pytest.raises((ValueError, TypeError)) as info:
        make()
    for word in words:
        assert word in str(info.value), str(info.value)


def test_a_cycled_momentum_is_refused_with_the_way_to_get_it():
    clr = {"max_lr": 1.0, "step_size": 4, "momentum": (0.85, 0.95)}
    with pytest.raises(ValueError) as info:
        CLRSchedule(0.1, clr)
    message = str(info.value)
    assert "momentum" in message and "cyclical(" in message
    assert "clr_optimizers.SGD" in message


# Every kind of `clr` the optimizers take.
CLR_CASES = {
    "triangular": (0.01, {"max_lr": 0.06, "step_size": 20}, None),
    "triangular2": (
        0.01,
        {"max_lr": 0.06, "step_size": 7.5, "mode": "triangular2"},
        None,
    ),
    "exp_range": (
        0.01,
        {"max_lr": 0.06, "step_size": 10, "mode": "exp_range", "gamma": 0.99},
        None,
    ),
    "modified_triangular2": (
        0.0075,
        {"max_lr": 0.03, "step_size": 6, "mode": "modified_triangular2"},
        None,
    ),
    "asymmetric": (
        0.01,
        {
            "max_lr": 0.06,
            "step_size_up": 3,
            "step_size_down": 11,
            "mode": "triangular2",
        },
        None,
    ),
    "restart_every": (
        0.01,
        {
            "max_lr": 0.06,
            "step_size": 4,
            "mode": "exp_range",
            "gamma": 0.9,
            "restart_every": 2,
        },
        None,
    ),
    "decay": (0.01, {"max_lr": 0.06, "step_size": 10}, 1e-3),
    "decay_only": (0.1, None, 0.05),
    "scale_fn": (
        0.01,
        {"max_lr": 0.06, "step_size": 5, "scale_fn": "clr_tests>inverse_cycle"},
        None,
    ),
    "scale_fn_object": (
        0.01,
        {
            "max_lr": 0.06,
            "step_size": 5,
            "scale_fn": scale_functions.Power(0.98),
            "scale_mode": "iterations",
        },
        None,
    ),
    "one_cycle": (
        None,
        {"mode": "one_cycle", "max_lr": 0.1, "total_steps": 100, "three_phase": True},
        None,
    ),
    "one_cycle_linear": (
        0.002,
        {
            "mode": "one_cycle",
            "max_lr": 0.1,
            "total_steps": 77,
            "anneal_strategy": "linear",
        },
        None,
    ),
}


@pytest.mark.parametrize("case", CLR_CASES)
def test_clr_schedule_is_the_optimizers_schedule(case):
    learning_rate, clr, decay = CLR_CASES[case]
    schedule = round_trip(CLRSchedule(learning_rate, clr, decay=decay), True)
    given = {} if learning_rate is None else {"learning_rate": learning_rate}
    optimizer = SGD(**given, clr=clr, decay=decay)
    steps = np.arange(400)
    np.testing.assert_array_equal(
        values(schedule, steps), optimizer.learning_rates(400)
    )
    far = [COUNTER_MAX - 1, COUNTER_MAX // 3, 10**9 + 7]
    expected = ops.convert_to_numpy(optimizer.schedule_state.rates(np.array(far)))
    np.testing.assert_array_equal(values(schedule, far), expected)
    assert schedule.get_config()["clr"] == optimizer.clr
    assert schedule.learning_rate == pytest.approx(
        optimizer.get_config()["learning_rate"], rel=1e-7
    )


def test_steps_of_every_kind():
    schedule = CLRSchedule(1.0, {"max_lr": 5.0, "step_size": 4})
    assert float(schedule(3)) == 4.0
    assert float(schedule(np.int64(3))) == 4.0
    assert float(schedule(3.7)) == 4.0  # rounded down
    assert float(schedule(-5)) == 1.0  # before the first update
    assert float(schedule(ops.convert_to_tensor(5, "int32"))) == 4.0
    assert float(schedule(ops.convert_to_tensor(5.0))) == 4.0
    counter = keras.Variable(6, dtype="int", trainable=False)
    assert float(schedule(counter)) == 3.0
    # Exact at the end of the counter's range: 2**63 - 2 on TensorFlow, where
    # a float32 count would be off by whole cycles.
    assert float(schedule(COUNTER_MAX - 1)) == float(schedule((COUNTER_MAX - 1) % 8))
    with pytest.raises(TypeError, match="number of updates"):
        schedule("3")


def test_a_constant_schedule_is_the_plain_rate_bit_for_bit():
    variables, grads = train_problem()
    results = []
    for rate in (0.01, CLRSchedule(0.01)):
        weights = [keras.Variable(v) for v in variables]
        optimizer = keras.optimizers.Adam(learning_rate=rate)
        for grad in grads:
            optimizer.apply(grad, weights)
        results.append([w.numpy() for w in weights])
    for got, expected in zip(*results):
        np.testing.assert_array_equal(got, expected)


def train_problem(steps=20):
    rng = np.random.default_rng(0)
    variables = [
        rng.normal(size=(4, 3)).astype("float32"),
        rng.normal(size=3).astype("float32"),
    ]
    grads = [
        [
            ops.convert_to_tensor(rng.normal(size=v.shape).astype("float32"))
            for v in variables
        ]
        for _ in range(steps)
    ]
    return variables, grads


@pytest.mark.parametrize(
    "Stock, Ours", [(keras.optimizers.Adam, Adam), (keras.optimizers.SGD, SGD)]
)
def test_a_stock_optimizer_with_the_schedule_equals_the_clr_optimizer(Stock, Ours):
    clr = {
        "max_lr": 0.06,
        "step_size_up": 3,
        "step_size_down": 5,
        "mode": "triangular2",
    }
    variables, grads = train_problem()
    results = []
    for optimizer in (
        Stock(learning_rate=CLRSchedule(0.01, clr)),
        Ours(learning_rate=0.01, clr=clr),
    ):
        weights = [keras.Variable(v) for v in variables]
        for grad in grads:
            optimizer.apply(grad, weights)
        results.append([w.numpy() for w in weights])
    for got, expected in zip(*results):
        np.testing.assert_array_equal(got, expected)


def mean_prediction(y_true, y_pred):
    return ops.mean(y_pred)


def linear_model(optimizer, **compile_kwargs):
    """A 1 x 1 kernel with loss w * x, x = 1: SGD takes w down by the rate of
    each update, so w = -(sum of the rates used)."""
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros"),
        ]
    )
    model.compile(optimizer=optimizer, loss=mean_prediction, **compile_kwargs)
    return model


def fit(model, updates, epochs=1):
    x = np.ones((updates, 1), "float32")
    model.fit(x, x, batch_size=1, epochs=epochs, shuffle=False, verbose=0)


def kernel(model):
    return float(ops.convert_to_numpy(model.layers[0].kernel)[0, 0])


COMPILE = [
    {},
    pytest.param({"jit_compile": True}, marks=pytest.mark.slow_on("torch")),
    pytest.param(
        {"steps_per_execution": 4},
        marks=pytest.mark.skipif(
            BACKEND == "torch", reason="Keras allows 1 on PyTorch"
        ),
    ),
    pytest.param(
        {"steps_per_execution": 4, "jit_compile": True},
        marks=pytest.mark.skipif(
            BACKEND == "torch", reason="Keras allows 1 on PyTorch"
        ),
    ),
]


@pytest.mark.parametrize(
    "compile_kwargs", COMPILE, ids=["graph", "jit", "spe4", "spe4_jit"]
)
@pytest.mark.parametrize(
    "schedule",
    [
        CLRSchedule(0.01, {"max_lr": 0.06, "step_size": 3, "mode": "triangular2"}),
        Triangular2CyclicalLearningRate(0.01, 0.06, 3),
        CyclicalLearningRate(
            0.01, 0.06, 2.5, scale_functions.addons_decay, "iterations"
        ),
    ],
    ids=["CLRSchedule", "Triangular2", "custom"],
)
def test_model_fit_with_a_stock_optimizer_uses_every_rate(schedule, compile_kwargs):
    model = linear_model(keras.optimizers.SGD(learning_rate=schedule), **compile_kwargs)
    fit(model, 12, epochs=2)
    assert int(model.optimizer.iterations) == 24
    expected = values(schedule, range(24))
    assert kernel(model) == pytest.approx(
        -expected.sum(), rel=float32_sum_rtol(expected.size)
    )


LOAD_AND_CONTINUE = textwrap.dedent(
    """
    import json, sys
    import numpy as np, keras
    from keras import ops
    import clr_optimizers

    def load_and_continue(path):
        model = keras.models.load_model(path, safe_mode=True)
        x = np.ones((6, 1), "float32")
        model.fit(x, 0 * x, batch_size=1, epochs=1, shuffle=False, verbose=0)
        return {{
            "schedule": type(model.optimizer._learning_rate).__name__,
            "iterations": int(ops.convert_to_numpy(model.optimizer.iterations)),
            "weights": [w.tolist() for w in model.get_weights()],
        }}

    # Only `import clr_optimizers`: the package's schedules load.
    results = [load_and_continue(path) for path in {plain!r}]
    # A file that names a registered scale function needs its module.
    sys.path.insert(0, {tests!r})
    import scale_functions
    results.append(load_and_continue({registered!r}))
    print(json.dumps(results))
    """
)


@pytest.mark.slow
def test_saved_with_a_stock_optimizer_each_loads_safely_in_a_new_process(tmp_path):
    schedules = {
        "CLRSchedule": CLRSchedule(
            0.01, {"max_lr": 0.06, "step_size": 4, "mode": "exp_range", "gamma": 0.9}
        ),
        "ExponentialCyclicalLearningRate": ExponentialCyclicalLearningRate(
            0.01, 0.06, 4, gamma=0.9
        ),
        "CyclicalLearningRate": CyclicalLearningRate(
            0.01, 0.06, 4, scale_functions.Power(0.7)
        ),
    }

    def mse_model(schedule):
        model = keras.Sequential(
            [keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="ones")]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=schedule), loss="mse"
        )
        return model

    def train(model, updates):
        x = np.ones((updates, 1), "float32")
        model.fit(x, 0 * x, batch_size=1, shuffle=False, verbose=0)

    paths, uninterrupted = [], []
    for name, schedule in schedules.items():
        whole = mse_model(schedule)
        train(whole, 4)
        train(whole, 6)
        uninterrupted.append(whole.get_weights())
        model = mse_model(schedule)
        train(model, 4)
        paths.append(str(tmp_path / f"{name}.keras"))
        model.save(paths[-1])
    script = LOAD_AND_CONTINUE.format(
        plain=paths[:2], registered=paths[2], tests=str(TESTS)
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    for name, result, weights in zip(schedules, results, uninterrupted, strict=True):
        assert result["schedule"] == name
        assert result["iterations"] == 10
        for got, expected in zip(result["weights"], weights, strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_the_package_exports_the_schedules():
    assert clr_optimizers.schedules.CLRSchedule is CLRSchedule
    for name in clr_optimizers.schedules.__all__:
        cls = getattr(clr_optimizers.schedules, name)
        assert issubclass(cls, keras.optimizers.schedules.LearningRateSchedule)
        assert keras.saving.get_registered_object(f"clr_optimizers>{name}") is cls


@pytest.mark.slow_on("jax")  # each schedule object is traced anew there
def test_plot_schedule_draws_schedule_objects_without_an_optimizer():
    ours = CLRSchedule(0.01, {"max_lr": 0.06, "step_size": 5, "mode": "triangular2"})
    # Keras's own schedule, which evaluates one step at a time (a warm-up
    # written with a conditional).
    keras_cosine = keras.optimizers.schedules.CosineDecay(
        0.0, 40, warmup_target=0.05, warmup_steps=10
    )
    figure = clr_optimizers.plot_schedule([ours, keras_cosine], updates=50)
    (ax,) = figure.axes
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), values(ours, range(50)))
    expected = [float(keras_cosine(step)) for step in range(50)]
    np.testing.assert_allclose(ax.lines[1].get_ydata(), expected, rtol=1e-6)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["CLRSchedule", "CosineDecay"]


def test_addons_float32_formula_drifts_where_these_stay_exact():
    steps = np.arange(10**7, 10**7 + 4000, 7)
    exact = addons_rate(steps, 0.01, 0.06, 2000, lambda c: 1.0, "cycle")
    step32, size32 = steps.astype(np.float32), np.float32(2000)
    cycle = np.floor(1 + step32 / (2 * size32))
    x = np.abs(step32 / size32 - 2 * cycle + 1)
    addons_float32 = 0.01 + (0.06 - 0.01) * np.maximum(0, 1 - x)
    assert np.max(np.abs(addons_float32 - exact)) > 1e-6
    ours = values(TriangularCyclicalLearningRate(0.01, 0.06, 2000), steps)
    assert np.max(np.abs(ours - exact)) < 1e-7


def test_an_unsavable_scale_fn_warns_at_construction_naming_its_built_in_equal():
    """TensorFlow Addons' most copied snippet passes this lambda, which
    trains but fails at the first save: the warning comes at construction,
    and names the class that gives the same rates and saves."""
    with pytest.warns(
        clr_optimizers.schedules.UnsavedScaleFunction,
        match=r"lambda.*saving it.*raises.*Triangular2CyclicalLearningRate",
    ):
        snippet = CyclicalLearningRate(
            1e-4, 1e-2, step_size=5, scale_fn=lambda x: 1 / (2.0 ** (x - 1))
        )
    built_in = Triangular2CyclicalLearningRate(1e-4, 1e-2, step_size=5)
    steps = np.arange(200)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(snippet(steps)), ops.convert_to_numpy(built_in(steps))
    )
    with pytest.warns(match=r"ExponentialCyclicalLearningRate\(gamma=0\.99\)"):
        CyclicalLearningRate(
            1e-4, 1e-2, step_size=5, scale_fn=lambda x: 0.99**x, scale_mode="iterations"
        )
    with pytest.warns(match="register_keras_serializable"):  # no equal
        CyclicalLearningRate(1e-4, 1e-2, step_size=5, scale_fn=lambda x: 1 / x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", clr_optimizers.schedules.UnsavedScaleFunction)
        # A registered function saves; a plot saves nothing: neither warns.
        CyclicalLearningRate(1e-4, 1e-2, 5, scale_fn=scale_functions.inverse_cycle)
        clr_optimizers.plot_schedule(
            {"max_lr": 0.1, "step_size": 2, "scale_fn": lambda x: 1.0},
            8,
            learning_rate=0.01,
        )
