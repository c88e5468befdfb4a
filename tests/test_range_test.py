"""The learning-rate range test and the schedule plots."""

import keras
import numpy as np
import pytest
from conftest import reference_rates

from clr_optimizers import OPTIMIZERS, SGD, Adam, find_lr, plot_schedule

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

# The test problems are tf.data datasets (find_lr reads them on every backend).
tf = pytest.importorskip("tensorflow")


def least_squares(seed, n=64, d=8):
    """A quadratic whose Hessian we construct: 2/n X^T X has eigenvalues
    spread over [lambda_max / 4, lambda_max]. Every batch has the same X and
    fresh noise in y, so each step is gradient descent on the same quadratic."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(n, d)))
    v, _ = np.linalg.qr(rng.normal(size=(d, d)))
    x = ((u * np.linspace(1, 2, d) * np.sqrt(n / 2)) @ v.T).astype("float32")
    lambda_max = np.linalg.eigvalsh(2 / n * x.T.astype(np.float64) @ x).max()
    w = rng.normal(size=(d, 1))

    def batches():
        noise = np.random.default_rng(seed + 1)
        while True:
            yield x, (x @ w + 0.3 * noise.normal(size=(n, 1))).astype("float32")

    dataset = tf.data.Dataset.from_generator(
        batches, output_signature=(tf.TensorSpec((n, d)), tf.TensorSpec((n, 1)))
    )
    return dataset, 2 / lambda_max


def linear_model(d=8, optimizer=None):
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer=optimizer or keras.optimizers.SGD(), loss="mse")
    return model


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_suggestion_lies_below_the_divergence_bound(seed):
    dataset, bound = least_squares(seed)
    keras.utils.set_random_seed(seed)
    result = find_lr(
        linear_model(), dataset, steps=300, min_lr=1e-4, max_lr=10, verbose=0
    )
    assert bound / 10 < result.max_lr < bound
    assert result.base_lr == result.max_lr / 4
    assert result.steepest_lr < result.max_lr
    # The recorded losses rise past the bound, and the sweep stops there.
    past = result.lrs > bound
    assert past.any() and result.stopped_early
    assert result.losses[past].max() > 4 * result.losses[~past].min()
    assert np.all(np.diff(result.lrs) > 0)


def test_losses_are_each_batch_own_loss():
    """Replay plain SGD on a linear model in NumPy: the loss recorded for
    batch k is the loss of that batch under the weights before update k."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype("float32")
    y = rng.normal(size=(40, 1)).astype("float32")
    model = linear_model(d=3)
    w = model.get_weights()[0].astype(np.float64)
    result = find_lr(
        model, x, y, batch_size=40, steps=30, min_lr=1e-3, max_lr=0.5, verbose=0
    )
    expected = []
    for lr in result.lrs:
        residual = x @ w - y
        expected.append(np.mean(residual**2))
        w = w - lr * 2 * x.T @ residual / len(x)
    np.testing.assert_allclose(result.losses, expected, rtol=1e-4)
    # The first loss is what model.evaluate reports on the untouched model.
    assert result.losses[0] == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-5)


def snapshot(model):
    opt = model.optimizer
    return (
        [v.numpy().copy() for v in model.variables],
        [v.numpy().copy() for v in opt.variables],
        opt.get_config(),
    )


def assert_same(before, after):
    for got, want in zip(after[0] + after[1], before[0] + before[1], strict=True):
        np.testing.assert_array_equal(got, want)
    assert after[2] == before[2]


def trained_model():
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(1),
        ]
    )
    model.compile(
        optimizer=Adam(lr=0.001, clr={"max_lr": 0.01, "step_size": 8}),
        loss="mse",
        metrics=["mae"],
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = rng.normal(size=(96, 1)).astype("float32")
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    return model, x, y


def test_restores_everything_bit_for_bit_even_after_nan():
    model, x, y = trained_model()
    before = snapshot(model)
    result = find_lr(
        model,
        x,
        y,
        batch_size=16,
        steps=60,
        min_lr=1e-3,
        max_lr=1e30,
        diverge_factor=1e30,
        verbose=0,
    )
    assert not np.isfinite(result.losses[-1])  # the sweep reached NaN or inf
    assert_same(before, snapshot(model))
    # Training resumes with the user's optimizer where it stopped.
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert model.optimizer.get_config()["iterations"] == before[2]["iterations"] + 6


def test_restores_everything_on_keyboard_interrupt():
    model, x, y = trained_model()
    before = snapshot(model)

    class Interrupted(keras.utils.PyDataset):
        def __len__(self):
            return 20

        def __getitem__(self, index):
            if index == 5:
                raise KeyboardInterrupt
            return x[:16], y[:16]

    with pytest.raises(KeyboardInterrupt):
        find_lr(model, Interrupted(), verbose=0)
    assert_same(before, snapshot(model))


def test_array_dataset_and_pydataset_inputs_agree():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 1

        def __getitem__(self, index):
            return x, y

    keras.utils.set_random_seed(0)
    model = linear_model(d=3)
    dataset = tf.data.Dataset.from_tensors((x, y)).repeat()
    runs = [
        find_lr(model, x, y, batch_size=32, steps=20, verbose=0),
        find_lr(model, dataset, steps=20, verbose=0),
        find_lr(model, Batches(), steps=20, verbose=0),
    ]
    for run in runs[1:]:
        np.testing.assert_allclose(run.losses, runs[0].losses, rtol=1e-5)


@pytest.mark.parametrize("Opt", OPTIMIZERS, ids=lambda o: o.__name__)
def test_optimizer_args_construct_every_optimizer(Opt):
    dataset, _ = least_squares(0)
    result = find_lr(
        linear_model(), dataset, steps=50, min_lr=1e-4, max_lr=10, verbose=0
    )
    # By default the "minimum" rule: a tenth of the lowest loss's rate.
    args = result.optimizer_args(step_size=200, mode="modified_triangular2")
    opt = Opt(**args)
    assert opt.clr["max_lr"] == pytest.approx(result.max_lr / 10, rel=1e-15)
    assert opt.clr["step_size"] == 200
    assert opt.current_lr == pytest.approx(result.max_lr / 40, rel=1e-6)
    study = Opt(**result.optimizer_args(step_size=10, rule="min_loss"))
    assert study.clr["max_lr"] == result.max_lr
    assert result.suggestion() == result.suggestion("minimum")
    steep = Opt(**result.optimizer_args(step_size=10, rule="steepest"))
    assert steep.clr["max_lr"] == result.steepest_lr


def test_bad_range_test_arguments():
    model = linear_model()
    x, y = np.ones((8, 8), "float32"), np.ones((8, 1), "float32")
    with pytest.raises(ValueError, match="max_lr"):
        find_lr(model, x, y, min_lr=1, max_lr=0.1)
    with pytest.raises(ValueError, match=r"steps.*epochs"):
        find_lr(model, x, y, steps=5, epochs=1)
    with pytest.raises(ValueError, match="at least 2 batches"):
        find_lr(model, x, y, batch_size=8, epochs=1)
    with pytest.raises(ValueError, match="smoothing"):
        find_lr(model, x, y, smoothing=1.0)
    with pytest.raises(ValueError, match="compiled"):
        find_lr(keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)]), x, y)
    dataset, _ = least_squares(0)
    with pytest.raises(ValueError, match="pass `steps`"):
        find_lr(model, dataset)
    result = find_lr(model, x, y, batch_size=2, verbose=0)
    with pytest.raises(ValueError, match="rule"):
        result.optimizer_args(step_size=10, rule="median")
    with pytest.raises(ValueError, match="mode"):
        result.optimizer_args(step_size=10, mode="cosine")
    # A range test suggests the bounds of a cycle; one_cycle takes other keys.
    with pytest.raises(ValueError, match="`mode` must be one of 'triangular'"):
        result.optimizer_args(step_size=10, mode="one_cycle")


def test_result_plot_shows_the_recorded_data(tmp_path):
    dataset, _ = least_squares(0)
    result = find_lr(
        linear_model(), dataset, steps=200, min_lr=1e-4, max_lr=10, verbose=0
    )
    figure = result.plot()
    ax = figure.axes[0]
    raw, smooth = ax.lines[0], ax.lines[1]
    np.testing.assert_array_equal(raw.get_xdata(), result.lrs)
    np.testing.assert_array_equal(raw.get_ydata(), result.losses)
    np.testing.assert_array_equal(smooth.get_xdata(), result.smoothed_lrs)
    np.testing.assert_array_equal(smooth.get_ydata(), result.smoothed_losses)
    assert ax.get_xscale() == "log"
    assert raw.get_linestyle() == "None"  # dots, not a band of spikes
    # Each rule: a vertical line at its rate, and a labelled mark on the curve.
    for rule, (_, peak) in result.suggestions.items():
        lines = [line for line in ax.lines if line.get_xdata()[0] == peak]
        assert len(lines) >= 2, rule
        assert any(rule in str(line.get_label()) for line in lines), rule
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert [label.split(":")[0] for label in labels[2:]] == [
        "min_loss",
        "steepest",
        "valley",
        "minimum",
    ]
    figure.savefig(tmp_path / "range_test.png")


def valley_by_definition(losses):
    """fastai's "valley" rule, restated in plain Python: the longest strictly
    decreasing subsequence, its first longest end `e`, `s = e - length`, and
    the index `s + int((e - s) / 3) + int((e - s) / 6)`."""
    n = len(losses)
    longest = [1] * n
    for i in range(n):
        for j in range(i):
            if losses[j] > losses[i]:
                longest[i] = max(longest[i], longest[j] + 1)
    end = longest.index(max(longest))
    start = end - longest[end]
    sections = (end - start) / 3
    return max(0, start + int(sections) + int(sections / 2))


def test_valley_rule_by_hand_and_by_definition():
    from clr_optimizers._range_test import _valley

    # Runs 1 2 1 3 4 5 6 7 5 4: the longest ends at 7 with length 7, so
    # s = 0, (e - s) / 3 = 2.33, and the choice is 0 + 2 + 1 = 3.
    losses = np.array([9, 8, 9, 7, 6, 5, 4, 3, 5, 6], dtype=float)
    assert _valley(losses) == 3 == valley_by_definition(list(losses))
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 40, 200):
        for _ in range(20):
            curve = np.cumsum(rng.normal(-0.2, 1.0, size=n))
            assert _valley(curve) == valley_by_definition(list(curve))


def test_every_rule_suggests_bounds():
    dataset, bound = least_squares(1)
    keras.utils.set_random_seed(1)
    result = find_lr(
        linear_model(), dataset, steps=300, min_lr=1e-4, max_lr=10, verbose=0
    )
    assert result.minimum_lr == result.max_lr / 10
    assert set(result.suggestions) == {"min_loss", "steepest", "valley", "minimum"}
    for base, peak in result.suggestions.values():
        assert base == peak / 4 and 0 < peak < bound
    # The valley lies on the falling part of the curve, before the minimum.
    assert result.valley_lr < result.max_lr
    args = result.optimizer_args(step_size=10, rule="valley")
    assert args["clr"]["max_lr"] == result.valley_lr
    with pytest.raises(ValueError, match="valley"):
        result.suggestion("vally")


def test_plot_schedule_lines_follow_the_formula():
    steps_per_epoch = 50
    triangular = {"max_lr": 0.03, "step_size": 2 * steps_per_epoch}
    modified = {**triangular, "mode": "modified_triangular2"}
    figure = plot_schedule(
        [triangular, SGD(learning_rate=0.0075, clr=modified)],
        epochs=42,
        steps_per_epoch=steps_per_epoch,
        learning_rate=0.0075,
    )
    ax = figure.axes[0]
    assert len(ax.lines) == 2 and ax.get_xlabel() == "epoch"
    updates = 42 * steps_per_epoch
    np.testing.assert_allclose(ax.lines[0].get_xdata(), np.arange(1, updates + 1) / 50)
    for line, clr in zip(ax.lines, (triangular, modified), strict=True):
        expected = reference_rates(range(updates), base=0.0075, **clr)
        np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-6)
    # The peaks of modified triangular2 restart every third cycle.
    peaks = ax.lines[1].get_ydata()[100::200][:4]
    np.testing.assert_allclose(peaks, [0.03, 0.01875, 0.013125, 0.03], rtol=1e-5)


def test_plot_schedule_shows_a_cycled_momentum_beside_the_rate(tmp_path):
    cyclic = SGD(
        learning_rate=0.01,
        clr={
            "max_lr": 0.05,
            "step_size_up": 10,
            "step_size_down": 30,
            "momentum": (0.85, 0.95),
        },
    )
    one_cycle = {"mode": "one_cycle", "max_lr": 0.1, "total_steps": 80}
    figure = plot_schedule([cyclic, SGD(learning_rate=0.01), one_cycle], updates=80)
    rates_ax, momentum_ax = figure.axes
    assert len(rates_ax.lines) == 3  # one rate per schedule
    (momentum,) = momentum_ax.lines  # only the first cycles its momentum
    assert momentum.get_linestyle() == "--"
    assert momentum.get_color() == rates_ax.lines[0].get_color()
    np.testing.assert_array_equal(momentum.get_ydata(), cyclic.momentum_values(80))
    # The momentum is highest where the rate is lowest, and the other way round.
    rates = rates_ax.lines[0].get_ydata()
    assert momentum.get_ydata()[rates.argmin()] == pytest.approx(0.95)
    assert momentum.get_ydata()[rates.argmax()] == pytest.approx(0.85)
    # A one_cycle dict needs no learning rate: it starts at max_lr / 25.
    assert rates_ax.lines[2].get_ydata()[0] == pytest.approx(0.1 / 25)
    legend = [t.get_text() for t in rates_ax.get_legend().get_texts()]
    assert legend == [
        "SGD, triangular",
        "SGD, triangular: momentum",
        "SGD",
        "one_cycle",
    ]
    figure.savefig(tmp_path / "momentum.png")


def test_plot_schedule_bad_arguments():
    with pytest.raises(ValueError, match="learning_rate"):
        plot_schedule({"max_lr": 0.1, "step_size": 5}, updates=10)
    with pytest.raises(ValueError, match="updates"):
        plot_schedule(SGD(clr={"max_lr": 0.1, "step_size": 5}))
    with pytest.raises(TypeError, match="clr_optimizers optimizer"):
        plot_schedule(keras.optimizers.SGD(), updates=10)


def test_unbuilt_model_and_progress_bar(capsys):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(
        optimizer=SGD(lr=0.01, clr={"max_lr": 0.1, "step_size": 4}), loss="mse"
    )
    rng = np.random.default_rng(0)
    x, y = (
        rng.normal(size=(64, 5)).astype("float32"),
        rng.normal(size=(64, 1)).astype("float32"),
    )
    result = find_lr(model, x, y, batch_size=8, epochs=2, verbose=1)
    assert len(result.lrs) == 16
    assert "16/16" in capsys.readouterr().out
    # Built by the range test with its initial weights, which are still there.
    initial = [v.numpy().copy() for v in model.variables]
    keras.utils.set_random_seed(0)
    fresh = keras.Sequential(
        [keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)]
    )
    fresh.build((None, 5))
    for got, want in zip(initial, [v.numpy() for v in fresh.variables], strict=True):
        np.testing.assert_array_equal(got, want)
    assert model.optimizer.get_config()["iterations"] == 0


def test_mixed_precision_loss_scale_optimizer():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model, x, y = trained_model()
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        before = snapshot(model)
        result = find_lr(model, x, y, batch_size=16, steps=30, verbose=0)
        assert np.isfinite(result.losses[0])
        assert_same(before, snapshot(model))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_negative_loss_does_not_stop_the_sweep_early():
    """Cosine similarity falls below zero as the model learns."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 3))).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(), loss="cosine_similarity")
    result = find_lr(
        model, x, y, batch_size=8, steps=80, min_lr=1e-3, max_lr=1.0, verbose=0
    )
    assert result.losses.min() < -0.5
    assert len(result.losses) > 40


@pytest.mark.parametrize(
    "kwargs", [{"epochs": 0}, {"batch_size": 0}, {"steps": 2.5}, {"epochs": True}]
)
def test_counts_must_be_positive_ints(kwargs):
    x, y = np.ones((8, 8), "float32"), np.ones((8, 1), "float32")
    with pytest.raises(ValueError, match="positive int"):
        find_lr(linear_model(), x, y, **kwargs)


def test_numpy_int_steps():
    x, y = np.ones((8, 8), "float32"), np.ones((8, 1), "float32")
    assert len(find_lr(linear_model(), x, y, steps=np.int64(5), verbose=0).lrs) == 5
