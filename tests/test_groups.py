"""Groups of variables with rates of their own (discriminative rates): each
group's rates against PyTorch's per-group lists and fastai's geometric
spread, the weights against each group's stock Keras rule, compiled steps,
saving and resuming, the monitor, and the errors."""

import csv

import keras
import numpy as np
import pytest
import torch
from conftest import BACKEND, torch_group_schedule
from rounding import UNIT_ROUNDOFF, assert_within_rounding
from test_monitor import read_events
from test_restart import Crash, CrashAfter

import clr_optimizers
from clr_optimizers import SGD, Adam, LearningRateMonitor, Nadam, spread

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

MOMENTUM = (0.85, 0.95)
# A rate is the policy's float32 value (within 2e-6 of PyTorch's float64,
# as in test_pytorch_parity) times a factor, one more float32 rounding.
RATE_RTOL = 2e-6 + UNIT_ROUNDOFF["float32"]


def named_variables(names, seed=0):
    rng = np.random.default_rng(seed)
    return [
        keras.Variable(rng.normal(size=(4, 3)).astype("float32"), name=name)
        for name in names
    ]


# Parity, rate by rate.

CYCLIC = [
    ("triangular", {}, {}),
    ("triangular2", {"mode": "triangular2"}, {"mode": "triangular2"}),
    ("exp_range", {"mode": "exp_range", "gamma": 0.99}, {"mode": "exp_range", "gamma": 0.99}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("clr", "torch_args"), [c[1:] for c in CYCLIC], ids=[c[0] for c in CYCLIC]
)
def test_rates_and_momentum_match_pytorch_cyclic_lr_with_lists(clr, torch_args):
    """`CyclicLR(base_lr=[...], max_lr=[...])`: the optimizer's bounds are the
    first group's, the others are groups with bounds of their own."""
    floors, peaks, updates = [0.01, 0.001, 0.002], [0.06, 0.004, 0.02], 60
    rates, momentums = torch_group_schedule(
        lambda o: torch.optim.lr_scheduler.CyclicLR(
            o,
            base_lr=floors,
            max_lr=peaks,
            step_size_up=3,
            step_size_down=5,
            base_momentum=MOMENTUM[0],
            max_momentum=MOMENTUM[1],
            **torch_args,
        ),
        updates,
        floors,
    )
    opt = SGD(
        learning_rate=floors[0],
        clr={"max_lr": peaks[0], "step_size_up": 3, "step_size_down": 5, **clr,
             "momentum": MOMENTUM},
        groups=[
            {"name": "a", "paths": "a*", "learning_rate": floors[1], "max_lr": peaks[1]},
            {"name": "b", "paths": "b*", "learning_rate": floors[2], "max_lr": peaks[2]},
        ],
    )  # fmt: skip
    for column, group in enumerate([None, "a", "b"]):
        np.testing.assert_allclose(
            opt.learning_rates(updates, group), rates[:, column], rtol=RATE_RTOL
        )
    # One momentum for all groups, which PyTorch cycles alike in each.
    np.testing.assert_allclose(opt.momentum_values(updates), momentums[:, 2], rtol=1e-6)


def test_rates_and_momentum_match_pytorch_one_cycle_lr_with_lists():
    """`OneCycleLR(max_lr=[...])`: a group with its own `max_lr` starts at
    it over `div_factor`, as the optimizer's start is its peak's."""
    peaks, total = [0.1, 0.01, 0.03], 100
    rates, momentums = torch_group_schedule(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o,
            max_lr=peaks,
            total_steps=total,
            three_phase=True,
            base_momentum=MOMENTUM[0],
            max_momentum=MOMENTUM[1],
        ),
        total,
        peaks,
    )
    opt = SGD(
        clr={"mode": "one_cycle", "max_lr": peaks[0], "total_steps": total,
             "three_phase": True, "momentum": MOMENTUM},
        groups=[{"paths": "a*", "max_lr": peaks[1]}, {"paths": "b*", "factor": 0.3}],
    )  # fmt: skip
    for column, group in enumerate([None, "group_1", "group_2"]):
        np.testing.assert_allclose(
            opt.learning_rates(total, group), rates[:, column], rtol=RATE_RTOL
        )
    np.testing.assert_allclose(opt.momentum_values(total), momentums[:, 1], rtol=1e-6)


def even_mults(start, stop, n):
    """fastai's spread of `lr_max=slice(start, stop)` over `n` layer groups."""
    step = (stop / start) ** (1 / (n - 1))
    return np.array([start * step**i for i in range(n)])


@pytest.mark.parametrize("count", [2, 3, 5])
def test_spread_is_fastais_geometric_spread(count):
    low, high, total = 1e-5, 1e-2, 200
    names = [f"g{i}" for i in range(count)]
    groups = spread([f"layer{i}" for i in range(count)], low, high, names=names)
    want = even_mults(low, high, count)
    factors = np.array([group["factor"] for group in groups])
    np.testing.assert_allclose(factors * high, want, rtol=1e-13)
    assert factors[-1] == 1.0
    assert [group["layers"] for group in groups] == [f"layer{i}" for i in range(count)]
    # Every group's one-cycle at its own peak: PyTorch's, given the spread.
    rates, _ = torch_group_schedule(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=list(want), total_steps=total, cycle_momentum=False
        ),
        total,
        list(want),
    )
    opt = SGD(
        clr={"mode": "one_cycle", "max_lr": high, "total_steps": total},
        groups=groups,
    )
    for column, name in enumerate(names):
        np.testing.assert_allclose(
            opt.learning_rates(total, name), rates[:, column], rtol=RATE_RTOL
        )


def test_spread_of_one_group_and_its_errors():
    assert spread(["head"], 1e-3, 1e-2) == [{"layers": "head", "factor": 1.0}]
    with pytest.raises(ValueError, match="`high` must be at least `low`"):
        spread(["a", "b"], 1e-2, 1e-3)
    with pytest.raises(ValueError, match="`low` must be greater than 0"):
        spread(["a", "b"], 0, 1e-3)
    with pytest.raises(ValueError, match="`names` has 1 entries for 2"):
        spread(["a", "b"], 1e-3, 1e-2, names=["x"])


# The weights, against each group's stock rule at that group's rate.

RULES = [
    ("SGD nesterov, cycled momentum, weight decay",
     clr_optimizers.SGD, keras.optimizers.SGD,
     {"momentum": 0.9, "nesterov": True, "weight_decay": 0.05},
     {"momentum": (0.8, 0.9)}),
    ("Adam, weight decay", clr_optimizers.Adam, keras.optimizers.Adam,
     {"weight_decay": 0.05}, {}),
    ("RMSprop", clr_optimizers.RMSprop, keras.optimizers.RMSprop, {}, {}),
    # Its rule advances a product of momentum factors once per update.
    ("Nadam", clr_optimizers.Nadam, keras.optimizers.Nadam, {}, {}),
    ("AdamW by cyclical()", clr_optimizers.cyclical(keras.optimizers.AdamW),
     keras.optimizers.AdamW, {"weight_decay": 0.05}, {}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("Opt", "Stock", "kwargs", "clr"), [r[1:] for r in RULES], ids=[r[0] for r in RULES]
)
def test_each_group_updates_by_its_stock_rule_at_its_rate(Opt, Stock, kwargs, clr):
    """Three groups (the optimizer's own bounds, a factor, bounds of their
    own): each variable ends where the stock optimizer, fed its group's rate
    (and the cycled momentum) at each update, takes it."""
    updates = 12
    names = ["body_kernel", "body_bias", "head_kernel", "rest_kernel"]
    opt = Opt(
        learning_rate=0.01,
        clr={"max_lr": 0.05, "step_size": 3, **clr},
        groups=[
            {"name": "body", "paths": "body_*", "factor": 0.1},
            {"name": "head", "layers": [], "paths": ["head_*"],
             "learning_rate": 0.02, "max_lr": 0.03},
        ],
        **kwargs,
    )  # fmt: skip
    ours = named_variables(names)
    groups = {"body": ours[:2], "head": ours[2:3], None: ours[3:]}
    references = {
        group: (Stock(learning_rate=0.01, **kwargs), named_variables(names)[index])
        for group, index in (("body", slice(0, 2)), ("head", slice(2, 3)), (None, slice(3, 4)))
    }  # fmt: skip
    momentums = opt.momentum_values(updates) if clr else None
    rng = np.random.default_rng(1)
    for k in range(updates):
        grads = [rng.normal(size=(4, 3)).astype("float32") for _ in names]
        opt.apply([keras.ops.convert_to_tensor(g) for g in grads], ours)
        for group, (stock, variables) in references.items():
            stock.learning_rate = float(opt.learning_rates(k + 1, group)[k])
            if momentums is not None:
                stock.momentum = float(momentums[k])
            chosen = [grads[names.index(v.name)] for v in variables]
            stock.apply([keras.ops.convert_to_tensor(g) for g in chosen], variables)
    for group, (_, variables) in references.items():
        for got, want in zip(groups[group], variables, strict=True):
            # The same operations on the same float32 values.
            np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=group)


# Compiled steps: the weights against the gradient computed in NumPy.

COMPILE = {
    "plain": {},
    "jit_compile": {"jit_compile": True},
    "steps_per_execution": {"steps_per_execution": 2},
    "mixed_float16": {"mixed": True},
}
BATCH, BATCHES = 8, 4


def two_branch_model(policy):
    """`body(x) + head(x)`: two Dense layers whose gradients NumPy restates."""
    inputs = keras.Input((3,))
    body = keras.layers.Dense(1, name="body", dtype=policy)(inputs)
    head = keras.layers.Dense(1, name="head", dtype=policy)(inputs)
    outputs = keras.layers.Add(dtype=policy)([body, head])
    model = keras.Model(
        inputs, keras.layers.Activation("linear", dtype="float32")(outputs)
    )
    model.set_weights(
        [np.full((3, 1), 0.2), np.zeros(1), np.full((3, 1), -0.1), np.zeros(1)]
    )
    return model  # fmt: skip


@pytest.mark.parametrize("name", list(COMPILE))
def test_compiled_fit_updates_each_group_at_its_rate(name):
    if name == "steps_per_execution" and BACKEND == "torch":
        pytest.skip("PyTorch's trainer runs one step per execution")
    options = dict(COMPILE[name])
    mixed = options.pop("mixed", False)
    policy = "mixed_float16" if mixed else "float32"
    opt = SGD(
        learning_rate=0.01,
        clr={"max_lr": 0.1, "step_size": 2},
        groups=[{"layers": "body", "factor": 0.25}],
    )
    model = two_branch_model(policy)
    model.compile(optimizer=opt, loss="mse", **options)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH * BATCHES, 3)).astype("float32")
    y = rng.normal(size=(BATCH * BATCHES, 1)).astype("float32")
    model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    updates = 2 * BATCHES
    assert opt.get_config()["iterations"] == updates
    base, body = opt.learning_rates(updates), opt.learning_rates(updates, "group_1")
    np.testing.assert_allclose(body, base * 0.25, rtol=RATE_RTOL)
    # Plain SGD on mean squared error: the gradient of `x w_body + x w_head`
    # is the same for both kernels, each moved by its group's rate.
    weights = [np.full((3, 1), 0.2), np.zeros(1), np.full((3, 1), -0.1), np.zeros(1)]
    trajectory = [weights]
    for k in range(updates):
        start = (k % BATCHES) * BATCH
        xb, yb = x[start : start + BATCH], y[start : start + BATCH]
        w = trajectory[-1]
        residual = 2 * (xb @ (w[0] + w[2]) + w[1] + w[3] - yb) / BATCH
        grads = [xb.T @ residual, residual.sum(axis=0)]
        trajectory.append(
            [w[0] - body[k] * grads[0], w[1] - body[k] * grads[1],
             w[2] - base[k] * grads[0], w[3] - base[k] * grads[1]]
        )  # fmt: skip
    for index, got in enumerate(model.get_weights()):
        rates = body if index < 2 else base
        moves = np.diff([weights[index] for weights in trajectory], axis=0)
        # A gradient entry: 3 products and sums per output, the residual, the
        # mean and its product with the inputs, over 8 examples (about 20
        # roundings in the compute dtype); SGD's product and sum in float32.
        assert_within_rounding(
            got,
            trajectory[-1][index],
            rates=rates,
            moves=moves,
            compute_dtype="float16" if mixed else "float32",
            roundings=20,
            rule_roundings=3,
        )


# Saving, resuming, rescaling.

GROUPS = [
    {"name": "body", "layers": "body", "factor": 0.1},
    {"name": "head", "layers": "head", "learning_rate": 0.002, "max_lr": 0.02},
]


def grouped_model():
    model = two_branch_model("float32")
    model.compile(
        optimizer=Adam(
            learning_rate=0.01,
            clr={"max_lr": 0.05, "step_size": 3, "momentum": (0.85, 0.95)},
            groups=GROUPS,
        ),
        loss="mse",
    )
    return model


def data():
    rng = np.random.default_rng(2)
    return (
        rng.normal(size=(32, 3)).astype("float32"),
        rng.normal(size=(32, 1)).astype("float32"),
    )


def test_a_saved_model_with_groups_loads_and_resumes_exactly(tmp_path):
    x, y = data()
    whole = grouped_model()
    whole.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    model = grouped_model()
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    # An assignment rescales every group alike, and a saved file keeps it.
    model.optimizer.learning_rate = 0.02
    whole_rescaled = grouped_model()
    whole_rescaled.set_weights(model.get_weights())
    path = tmp_path / "grouped.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    config = loaded.optimizer.get_config()
    assert config["groups"] == [
        {"name": "body", "layers": ["body"], "factor": 0.1},
        {"name": "head", "layers": ["head"], "learning_rate": 0.004, "max_lr": 0.04},
    ]
    assert config["iterations"] == 8
    for group in (None, "body", "head"):
        np.testing.assert_array_equal(
            loaded.optimizer.learning_rates(12, group),
            model.optimizer.learning_rates(12, group),
        )
    np.testing.assert_allclose(
        loaded.optimizer.learning_rates(12, "head"),
        2 * grouped_model().optimizer.learning_rates(12, "head"),
        rtol=RATE_RTOL,
    )
    # Resumed: one more epoch from the file is the epoch the model in memory
    # trains, update for update.
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    loaded.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for got, want in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert whole.optimizer.get_config()["iterations"] == 12


def rescaled_model():
    """A grouped model whose bounds an assignment halved (as
    `ReduceLROnPlateau(factor=0.5)` would): a fresh one has other bounds."""
    model = grouped_model()
    model.optimizer.learning_rate = 0.005
    return model


def test_backup_and_restore_resumes_every_groups_schedule(tmp_path):
    x, y = data()
    whole = rescaled_model()
    whole.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(Crash):
        rescaled_model().fit(
            x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
            callbacks=[backup, CrashAfter(6)],
        )  # fmt: skip
    resumed = grouped_model()
    monitor = LearningRateMonitor()
    resumed.fit(
        x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "backup")), monitor],
    )  # fmt: skip
    # The backup held epoch 1 (4 updates) and the halved bounds, which a fresh
    # model lacks: the rest ran again from there.
    assert resumed.optimizer.get_config()["groups"][1]["max_lr"] == 0.01
    for group in ("body", "head"):
        np.testing.assert_array_equal(
            monitor.group_learning_rates[group],
            whole.optimizer.learning_rates(12, group)[4:],
        )
    for got, want in zip(resumed.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_the_range_test_sweeps_a_model_whose_optimizer_has_groups():
    """`find_lr` trains a copy of the optimizer without its schedule (and so
    without its groups), and leaves the model's own untouched."""
    model = grouped_model()
    x, y = data()
    result = clr_optimizers.find_lr(model, x, y, batch_size=8, steps=6)
    assert len(result.lrs) > 1 and result.lrs[0] == 1e-7
    assert model.optimizer.get_config()["groups"][0]["name"] == "body"


def test_assignment_scales_every_group_and_restart_keeps_their_bounds():
    opt = SGD(
        learning_rate=0.01,
        clr={"max_lr": 0.05, "step_size": 3},
        groups=[{"paths": "a*", "factor": 0.5}, {"paths": "b*", "max_lr": 0.2}],
    )
    before = {g: opt.learning_rates(6, g) for g in (None, "group_1", "group_2")}
    np.testing.assert_allclose(before["group_2"][0], 0.04, rtol=RATE_RTOL)  # 0.2 / 5
    opt.learning_rate = 0.001  # ReduceLROnPlateau's division by 10
    for group, rates in before.items():
        np.testing.assert_allclose(
            opt.learning_rates(6, group), rates / 10, rtol=2 * RATE_RTOL
        )
    opt.restart(learning_rate=0.01, max_lr=0.1)
    np.testing.assert_allclose(
        opt.learning_rates(4), [0.01, 0.04, 0.07, 0.1], rtol=RATE_RTOL
    )
    np.testing.assert_allclose(
        opt.learning_rates(4, "group_1"), [0.005, 0.02, 0.035, 0.05], rtol=RATE_RTOL
    )
    # A group with bounds of its own keeps them (as assigned, a tenth).
    np.testing.assert_allclose(
        opt.learning_rates(6, "group_2"), before["group_2"] / 10, rtol=2 * RATE_RTOL
    )  # fmt: skip


def test_groups_follow_a_chain_and_a_warmup_by_their_factor():
    clr = {
        "mode": "chain",
        "max_lr": 0.1,
        "policies": [
            {"mode": "one_cycle", "total_steps": 10, "warmup_steps": 3},
            {"mode": "triangular", "learning_rate": 0.001, "max_lr": 0.01, "step_size": 2},
        ],
        "boundaries": [13],
    }  # fmt: skip
    opt = SGD(learning_rate=0.01, clr=clr, groups=[{"paths": "a*", "factor": 0.2}])
    np.testing.assert_allclose(
        opt.learning_rates(30, "group_1"), opt.learning_rates(30) * 0.2, rtol=RATE_RTOL
    )


# The monitor and the plots.


def test_monitor_writes_a_series_per_group_to_history_csv_and_tensorboard(tmp_path):
    if BACKEND != "tensorflow":
        pytest.importorskip("tensorboardX")
    x, y = data()
    model = grouped_model()
    monitor = LearningRateMonitor(log_dir=tmp_path)
    path = tmp_path / "log.csv"
    history = model.fit(
        x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
        callbacks=[monitor, keras.callbacks.CSVLogger(str(path))],
    )  # fmt: skip
    for group in ("body", "head"):
        expected = model.optimizer.learning_rates(8, group)
        np.testing.assert_array_equal(monitor.group_learning_rates[group], expected)
        np.testing.assert_array_equal(
            history.history[f"learning_rate/{group}"], expected[[3, 7]]
        )
        with path.open() as file:
            column = [
                float(row[f"learning_rate/{group}"]) for row in csv.DictReader(file)
            ]
        np.testing.assert_allclose(column, expected[[3, 7]], rtol=1e-12)
        scalars = read_events(tmp_path / "train")[f"learning_rate/{group}"]
        assert [step for step, _ in scalars] == list(range(1, 9))
        np.testing.assert_allclose([v for _, v in scalars], expected, rtol=1e-7)
    assert "learning_rate" in history.history


def test_plot_schedule_draws_each_group():
    pytest.importorskip("matplotlib")
    opt = grouped_model().optimizer
    figure = clr_optimizers.plot_schedule(opt, 20)
    lines = figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == [
        "Adam, triangular",
        "Adam, triangular: group body",
        "Adam, triangular: group head",
    ]
    for line, group in zip(lines, (None, "body", "head"), strict=True):
        np.testing.assert_array_equal(line.get_ydata(), opt.learning_rates(20, group))


# Errors.

ERRORS = [
    ("not a list", {"layers": "a", "factor": 0.1}, TypeError, "must be a list of dicts"),
    ("unknown key", [{"layer": "a", "factor": 0.1}], ValueError, "unknown key 'layer'. Did you mean 'layers'"),
    ("empty selection", [{"name": "x", "layers": [], "factor": 0.1}], ValueError, "Group 'x' selects nothing"),
    ("no rate", [{"name": "x", "layers": "a"}], ValueError, "Group 'x' gives no rate"),
    ("factor and bounds", [{"name": "x", "layers": "a", "factor": 0.1, "max_lr": 0.1}], ValueError, "gives `factor` and bounds"),
    ("factor 0", [{"name": "x", "layers": "a", "factor": 0}], ValueError, r"groups\['x'\]\['factor'\]` must be greater than 0"),
    ("factor negative", [{"name": "x", "layers": "a", "factor": -1}], ValueError, "must be greater than 0"),
    ("factor text", [{"name": "x", "layers": "a", "factor": "0.1"}], TypeError, "must be a number"),
    ("peak below floor", [{"name": "x", "layers": "a", "learning_rate": 0.1, "max_lr": 0.01}], ValueError, "Group 'x': `max_lr` must be at least `learning_rate`"),
    ("same name", [{"name": "x", "layers": "a", "factor": 0.1}, {"name": "x", "layers": "b", "factor": 0.2}], ValueError, "Two groups are named 'x'"),
    ("bad name", [{"name": "a b", "layers": "a", "factor": 0.1}], ValueError, "non-empty string"),
    ("layer object", [{"layers": [object()], "factor": 0.1}], TypeError, "holds Keras layers or layer names"),
    ("path not a string", [{"paths": [3], "factor": 0.1}], TypeError, "`paths` holds strings"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("groups", "error", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_bad_groups_are_refused_at_construction_naming_the_group(
    groups, error, message
):
    with pytest.raises(error, match=message):
        SGD(learning_rate=0.01, clr={"max_lr": 0.1, "step_size": 4}, groups=groups)


def test_bounds_need_a_schedule_with_bounds():
    chain = {"mode": "chain", "max_lr": 0.1, "boundaries": [10],
             "policies": [{"mode": "one_cycle", "total_steps": 10}, {"step_size": 2}]}  # fmt: skip
    with pytest.raises(ValueError, match="the pieces of a chain have bounds"):
        SGD(
            learning_rate=0.01,
            clr=chain,
            groups=[{"name": "x", "layers": "a", "max_lr": 0.1}],
        )
    with pytest.raises(ValueError, match="pass `clr`"):
        SGD(learning_rate=0.01, groups=[{"layers": "a", "factor": 0.1}])
    with pytest.raises(ValueError, match="without `clr` there is no `max_lr`"):
        SGD(learning_rate=0.01, decay=0.1, groups=[{"layers": "a", "max_lr": 0.1}])


def test_an_unbuilt_layer_is_refused_with_what_to_do():
    with pytest.raises(ValueError, match=r"is not built yet\. Build the model"):
        SGD(
            clr={"max_lr": 0.1, "step_size": 4},
            groups=[{"layers": keras.layers.Dense(2), "factor": 0.1}],
        )


def test_an_overlap_and_a_selection_of_nothing_fail_at_build_naming_both():
    variables = named_variables(["body_kernel", "head_kernel"])
    overlap = SGD(
        clr={"max_lr": 0.1, "step_size": 4},
        groups=[
            {"name": "one", "paths": "body*", "factor": 0.1},
            {"name": "two", "paths": "*kernel", "factor": 0.2},
        ],
    )
    with pytest.raises(
        ValueError, match=r"'body_kernel' is selected by two groups, 'one'.*and 'two'"
    ):
        overlap.build(variables)
    unknown = SGD(
        clr={"max_lr": 0.1, "step_size": 4},
        groups=[{"name": "neck", "layers": "neck", "factor": 0.1}],
    )
    with pytest.raises(ValueError, match=r"Group 'neck' .* selects none of the 2"):
        unknown.build(variables)
    with pytest.raises(ValueError, match="No group is named 'neck'"):
        SGD(clr={"max_lr": 0.1, "step_size": 4}).learning_rates(3, "neck")


def test_a_layer_object_is_held_by_the_names_of_its_layers_with_variables(tmp_path):
    """A config holds no layer objects: a layer by its name, a model by the
    names of its layers with variables (a nested model's own name leaves its
    variables' paths once the model is loaded), a layer without variables by
    nothing. The loaded model's optimizer selects the same variables."""
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(2, name="conv")(keras.layers.Activation("tanh")(inputs))
    base = keras.Model(inputs, hidden, name="base")
    inner = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, name="a")], name="inner")  # fmt: skip
    model = keras.Sequential([keras.Input((3,)), base, inner, keras.layers.Dense(1, name="top")])  # fmt: skip
    assert model.get_layer("inner").weights[0].path == "inner/a/kernel"
    opt = Nadam(
        learning_rate=0.01,
        clr={"max_lr": 0.1, "step_size": 4},
        groups=[
            {"layers": base, "factor": 0.1},
            {"layers": [inner, model.get_layer("top")], "factor": 0.5},
        ],
    )
    config = opt.get_config()["groups"]
    assert config == [
        {"name": "group_1", "layers": ["conv"], "factor": 0.1},
        {"name": "group_2", "layers": ["a", "top"], "factor": 0.5},
    ]
    with pytest.raises(ValueError, match="'x': none of its layers has variables"):
        Nadam(
            clr={"max_lr": 0.1, "step_size": 4},
            groups=[{"name": "x", "layers": base.layers[:2], "factor": 0.1}],
        )
    model.compile(optimizer=opt, loss="mse")
    x, y = data()
    model.fit(x, y[:, :1], batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert opt._group_of == [1, 1, 2, 2, 2, 2]
    path = tmp_path / "nested.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.get_layer("inner").weights[0].path == "a/kernel"  # no "inner/"
    loaded.fit(x, y[:, :1], batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert loaded.optimizer._group_of == opt._group_of
    model.fit(x, y[:, :1], batch_size=8, epochs=1, shuffle=False, verbose=0)
    for got, want in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
