"""The seven optimizers: untouched update rules, the table through model.fit."""

import inspect

import keras
import numpy as np
import pytest
from conftest import BACKEND, REFERENCE_TABLE, reference_rate, run_updates

from clr_optimizers import OPTIMIZERS, SGD, Adam
from clr_optimizers._demo import run_reference

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

STOCK = {opt: getattr(keras.optimizers, opt.__name__) for opt in OPTIMIZERS}
# Non-default hyperparameters, so that every argument is seen to pass through.
EXTRA = {
    "SGD": {"momentum": 0.9, "nesterov": True},
    "RMSprop": {"rho": 0.8, "momentum": 0.5, "centered": True},
    "Adagrad": {"initial_accumulator_value": 0.2},
    "Adadelta": {"rho": 0.9},
    "Adam": {"beta_1": 0.8, "amsgrad": True},
    "Adamax": {"beta_2": 0.99},
    "Nadam": {"epsilon": 1e-5},
}


@pytest.mark.parametrize("Opt", OPTIMIZERS, ids=lambda o: o.__name__)
@pytest.mark.parametrize("extra", [False, True], ids=["defaults", "custom_args"])
def test_flat_cycle_matches_stock_optimizer_exactly(Opt, extra):
    kwargs = EXTRA[Opt.__name__] if extra else {}
    stock = STOCK[Opt](learning_rate=0.05, **kwargs)
    ours = Opt(learning_rate=0.05, clr={"max_lr": 0.05, "step_size": 3}, **kwargs)
    expected, got = run_updates(stock), run_updates(ours)
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("Opt", OPTIMIZERS, ids=lambda o: o.__name__)
def test_without_clr_is_the_stock_optimizer(Opt):
    stock, ours = STOCK[Opt](), Opt()
    for e, g in zip(run_updates(stock), run_updates(ours), strict=True):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("Opt", OPTIMIZERS, ids=lambda o: o.__name__)
def test_same_arguments_and_defaults_as_stock(Opt):
    """Every stock argument is accepted by name, with the stock default."""
    stock = inspect.signature(STOCK[Opt].__init__).parameters
    defaults = {
        name: p.default
        for name, p in stock.items()
        if p.default is not inspect.Parameter.empty
    }
    ours = Opt(**defaults).get_config()
    reference = STOCK[Opt]().get_config()
    assert set(ours) == set(reference) | {"clr", "decay", "iterations", "current_lr"}
    for name in reference:
        if name == "learning_rate":  # ours is the shortest float for the float32
            assert np.float32(ours[name]) == np.float32(reference[name])
        elif name != "name":
            assert ours[name] == reference[name], name
    assert Opt().get_config()["learning_rate"] == defaults["learning_rate"]


def sgd_steps(optimizer, updates):
    """How far plain SGD moves w at each update for a gradient of 1: the rate."""
    w = keras.Variable(np.zeros(1, dtype="float32"))
    steps = []
    for _ in range(updates):
        before = float(w.numpy()[0])
        optimizer.apply([keras.ops.ones((1,))], [w])
        steps.append(before - float(w.numpy()[0]))
    return steps


def test_sgd_update_uses_the_cyclical_rate():
    """Plain SGD: w <- w - lr(n) g, with lr(n) by hand for base 1, max 5, s 4."""
    opt = SGD(learning_rate=1, clr={"max_lr": 5, "step_size": 4})
    assert sgd_steps(opt, 6) == [1, 2, 3, 4, 5, 4]


def test_decay_lowers_the_floor_in_the_update():
    opt = SGD(learning_rate=0.1, decay=0.5)
    np.testing.assert_allclose(sgd_steps(opt, 3), [0.1, 0.1 / 1.5, 0.1 / 2], rtol=1e-6)


def test_decay_with_a_cycle_in_the_update():
    """base_n = 1 / (1 + 0.1 n); lr = base_n + (5 - base_n) * triangle(n)."""
    opt = SGD(learning_rate=1, clr={"max_lr": 5, "step_size": 4}, decay=0.1)
    expected = [
        reference_rate(n, base=1, max_lr=5, step_size=4, decay=0.1) for n in range(10)
    ]
    assert expected[4] == 5 and expected[8] == pytest.approx(1 / 1.8)
    np.testing.assert_allclose(sgd_steps(opt, 10), expected, rtol=1e-6)


def test_lr_alias_int_rates_and_positional_learning_rate():
    assert SGD(lr=1).get_config()["learning_rate"] == 1.0
    assert SGD(0.5).get_config()["learning_rate"] == 0.5
    assert Adam(lr=0.01, clr={"max_lr": 1, "step_size": 10}).clr["max_lr"] == 1.0


def test_current_lr_and_iterations_before_and_after_updates():
    opt = SGD(learning_rate=1, clr={"max_lr": 5, "step_size": 4})
    assert opt.current_lr == 1.0  # the rate the first update will use
    assert opt.get_config()["iterations"] == 0
    w = keras.Variable(np.zeros(1, dtype="float32"))
    for applied, rate in [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 4)]:
        opt.apply([keras.ops.ones((1,))], [w])
        config = opt.get_config()
        assert (config["iterations"], config["current_lr"]) == (applied, rate)
        assert opt.current_lr == rate
        assert isinstance(config["iterations"], int)
        assert isinstance(config["current_lr"], float)


def test_current_lr_without_clr():
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([2], [1.0, 0.5])
    opt = SGD(learning_rate=schedule)
    w = keras.Variable(np.zeros(1, dtype="float32"))
    rates = []
    for _ in range(5):
        opt.apply([keras.ops.ones((1,))], [w])
        rates.append(opt.current_lr)
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5]
    assert SGD(learning_rate=0.25).current_lr == 0.25


def test_learning_rate_property_is_the_floor_and_the_update_reads_its_own_rate():
    opt = SGD(learning_rate=1, clr={"max_lr": 5, "step_size": 4})
    opt.iterations.assign(6)
    assert float(opt.learning_rate) == 1.0
    assert float(keras.ops.convert_to_numpy(opt._get_current_learning_rate())) == 3.0


only_one_step_per_execution = pytest.mark.skipif(
    BACKEND == "torch", reason="Keras allows only steps_per_execution=1 on PyTorch"
)


def assert_table(table, step_size, updates_per_epoch):
    """After each epoch, `iterations` is the updates applied so far, n, and
    `current_lr` the rate of the last of them: lr(n - 1), from n - 1 applied."""
    expected = [updates_per_epoch * (k + 1) for k in range(len(table))]
    assert [it for it, _ in table] == expected
    np.testing.assert_allclose(
        [lr for _, lr in table],
        [
            reference_rate(it - 1, base=0.01, max_lr=0.06, step_size=step_size)
            for it in expected
        ],
        atol=1e-8,  # the rate in float32
    )


# The reference notebook's table scaled down a hundredfold: a half cycle of 20
# updates and epochs of 10, so the ten rows have the table's shape (rising,
# peak, falling, floor, and through the second and third cycles). The
# full-size table is checked for all seven optimizers by the reference
# notebook (test_notebook.py), on every backend, and by the main job.
SCALED_CLR = {"max_lr": 0.06, "step_size": 20}
HOW = [
    pytest.param({}, id="fit"),
    pytest.param(
        {"jit_compile": True}, id="jit_compiled", marks=pytest.mark.slow_on("torch")
    ),
    pytest.param(
        {"steps_per_execution": 10},
        id="steps_per_execution",
        marks=only_one_step_per_execution,
    ),
]


@pytest.mark.parametrize("compile_kwargs", HOW)
@pytest.mark.parametrize("Opt", OPTIMIZERS, ids=lambda o: o.__name__)
def test_the_table_scaled_down_through_fit(Opt, compile_kwargs):
    table = run_reference(
        Opt, rows=40, batch_size=4, epochs=10, clr=SCALED_CLR, **compile_kwargs
    )
    assert_table(table, step_size=20, updates_per_epoch=10)


@pytest.mark.slow
def test_spec_table_through_fit():
    """The full-size table, 1000 updates per epoch; on PyTorch, whose trainer
    takes about 2 ms per update of this model, its first cycle."""
    epochs = 4 if BACKEND == "torch" else len(REFERENCE_TABLE)
    table = run_reference(SGD, rows=4000, batch_size=4, epochs=epochs)
    np.testing.assert_allclose(table, REFERENCE_TABLE[:epochs], atol=1e-6, rtol=0)
    assert_table(table, step_size=2000, updates_per_epoch=1000)


@only_one_step_per_execution
def test_steps_per_execution_uses_a_new_rate_at_every_update():
    """Ten updates per compiled call, each with its own rate (a host-side
    callback would see only every tenth)."""
    opt = SGD(learning_rate=0.01, clr={"max_lr": 0.05, "step_size": 4})
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer=opt, loss="mse", steps_per_execution=10)
    model.layers[0].kernel.assign([[1.0]])
    # Loss (w - 0)^2 for x = 1 has gradient 2 w, so w <- w (1 - 2 lr(n)).
    x, y = np.ones((20, 1), "float32"), np.zeros((20, 1), "float32")
    model.fit(x, y, batch_size=1, epochs=1, verbose=0, shuffle=False)
    expected = np.prod(
        [
            1 - 2 * reference_rate(n, base=0.01, max_lr=0.05, step_size=4)
            for n in range(20)
        ]
    )
    assert opt.get_config()["iterations"] == 20
    np.testing.assert_allclose(
        model.layers[0].kernel.numpy()[0, 0], expected, rtol=1e-5
    )


def test_gradient_accumulation_counts_applied_updates():
    opt = SGD(
        learning_rate=1,
        clr={"max_lr": 5, "step_size": 4},
        gradient_accumulation_steps=2,
    )
    w = keras.Variable(np.zeros(1, dtype="float32"))
    for _ in range(8):  # 8 micro-batches: 4 updates, with rates 1, 2, 3, 4
        opt.apply([keras.ops.ones((1,))], [w])
    assert float(w.numpy()[0]) == -10.0
    config = opt.get_config()
    assert (config["iterations"], config["current_lr"]) == (4, 4.0)


@pytest.mark.skipif(BACKEND != "jax", reason="Keras's stateless path is JAX's")
def test_jax_stateless_apply_in_one_jitted_step():
    """As Keras's JAX trainer does: optimizer state in and out as arrays, one
    trace for every update, the rate read from the counter each time."""
    import jax

    opt = SGD(learning_rate=1, clr={"max_lr": 5, "step_size": 4})
    w = keras.Variable(np.zeros(1, "float32"))
    opt.build([w])
    traces = []

    @jax.jit
    def step(optimizer_values, weight):
        traces.append(1)
        grads = [keras.ops.ones((1,))]
        [weight], optimizer_values = opt.stateless_apply(
            optimizer_values, grads, [weight]
        )
        return optimizer_values, weight

    values, weight = [v.value for v in opt.variables], w.value
    moves = []
    for _ in range(9):
        values, new_weight = step(values, weight)
        moves.append(float(weight[0] - new_weight[0]))
        weight = new_weight
    assert moves == [1, 2, 3, 4, 5, 4, 3, 2, 1]
    assert len(traces) == 1
    # The stateless step left the optimizer's own variables alone.
    assert int(opt.iterations.numpy()) == 0
