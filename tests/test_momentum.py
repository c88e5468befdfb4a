"""Momentum cycling: each update rule uses the cycled momentum of its update.

The reference is each Keras update rule restated in NumPy (float64), fed with
the rates and momentums PyTorch's `CyclicLR` and `OneCycleLR` give.
"""

import keras
import numpy as np
import pytest
import torch
from conftest import torch_schedule
from keras import ops

from clr_optimizers import OPTIMIZERS, SGD, Adadelta, Adagrad, Adam, Nadam, cyclical

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

MOMENTUM = (0.8, 0.95)
UPDATES = 24
BATCH, FEATURES, UNITS = 4, 3, 2


def sgd(w, grads, rates, momentums, nesterov=False):
    v = np.zeros_like(w)
    for g, lr, mu in zip(grads, rates, momentums):
        v = mu * v - lr * g
        w = w + (mu * v - lr * g if nesterov else v)
    return w


def rmsprop(w, grads, rates, momentums, rho=0.9, eps=1e-7):
    velocity, m = np.zeros_like(w), np.zeros_like(w)
    for g, lr, mu in zip(grads, rates, momentums):
        velocity = rho * velocity + (1 - rho) * g**2
        m = mu * m + lr * g / np.sqrt(velocity + eps)
        w = w - m
    return w


def adam(w, grads, rates, momentums, beta_2=0.999, eps=1e-7, weight_decay=0.0):
    """Adam; with `weight_decay`, AdamW (Keras decays each weight by
    lr * weight_decay before the Adam rule)."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, (g, lr, b1) in enumerate(zip(grads, rates, momentums), start=1):
        w = w - w * weight_decay * lr
        m = m + (g - m) * (1 - b1)
        v = v + (g**2 - v) * (1 - beta_2)
        alpha = lr * np.sqrt(1 - beta_2**t) / (1 - b1**t)
        w = w - m * alpha / (np.sqrt(v) + eps)
    return w


def adamax(w, grads, rates, momentums, beta_2=0.999, eps=1e-7):
    m, u = np.zeros_like(w), np.zeros_like(w)
    for t, (g, lr, b1) in enumerate(zip(grads, rates, momentums), start=1):
        m = m + (g - m) * (1 - b1)
        u = np.maximum(beta_2 * u, np.abs(g))
        w = w - lr * m / ((1 - b1**t) * (u + eps))
    return w


def nadam(w, grads, rates, momentums, beta_2=0.999, eps=1e-7):
    m, v, u_product = np.zeros_like(w), np.zeros_like(w), 1.0
    for t, (g, lr, b1) in enumerate(zip(grads, rates, momentums), start=1):
        u_t = b1 * (1 - 0.5 * 0.96**t)
        u_t_1 = b1 * (1 - 0.5 * 0.96 ** (t + 1))
        u_product = u_product * u_t
        m = m + (g - m) * (1 - b1)
        v = v + (g**2 - v) * (1 - beta_2)
        m_hat = u_t_1 * m / (1 - u_product * u_t_1) + (1 - u_t) * g / (1 - u_product)
        v_hat = v / (1 - beta_2**t)
        w = w - m_hat * lr / (np.sqrt(v_hat) + eps)
    return w


RULES = {
    "SGD": sgd,
    "SGD nesterov": lambda *a: sgd(*a, nesterov=True),
    "RMSprop": rmsprop,
    "Adam": adam,
    "Adamax": adamax,
    "Nadam": nadam,
}
CLASSES = {c.__name__: c for c in OPTIMIZERS}


def mean_prediction(y_true, y_pred):
    return ops.mean(y_pred)


def batches(seed=0):
    return np.random.default_rng(seed).normal(size=(UPDATES * BATCH, FEATURES))


def gradients(x):
    """The gradient of mean(x @ w) for each batch: it does not depend on w."""
    per_batch = x.reshape(UPDATES, BATCH, FEATURES).mean(axis=1)
    return [np.repeat(g[:, None], UNITS, axis=1) / UNITS for g in per_batch]


def fit(optimizer, x, jit_compile="auto"):
    """Trains a bias-free linear layer on the loss mean(x @ w) with
    `model.fit` (compiled, except where the backend runs eagerly)."""
    start = np.random.default_rng(1).normal(size=(FEATURES, UNITS))
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(UNITS, use_bias=False, kernel_initializer="zeros"),
        ]
    )
    model.layers[0].kernel.assign(start.astype("float32"))
    model.compile(
        optimizer=optimizer,
        loss=mean_prediction,
        jit_compile=jit_compile,
    )
    model.fit(
        x.astype("float32"),
        np.zeros((len(x), UNITS), "float32"),
        batch_size=BATCH,
        shuffle=False,
        verbose=0,
    )
    return start, ops.convert_to_numpy(model.layers[0].kernel)


SCHEDULES = {
    "CyclicLR 3/5": (
        {"max_lr": 0.05, "step_size_up": 3, "step_size_down": 5},
        lambda o: torch.optim.lr_scheduler.CyclicLR(
            o, 0.01, 0.05, 3, 5, base_momentum=MOMENTUM[0], max_momentum=MOMENTUM[1]
        ),
        0.01,
    ),
    "OneCycleLR": (
        {"mode": "one_cycle", "max_lr": 0.05, "total_steps": UPDATES},
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, 0.05, UPDATES, base_momentum=MOMENTUM[0], max_momentum=MOMENTUM[1]
        ),
        None,
    ),
}


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("rule", RULES)
def test_update_rule_uses_the_cycled_momentum(rule, schedule):
    clr, make_scheduler, learning_rate = SCHEDULES[schedule]
    rates, momentums = torch_schedule(make_scheduler, UPDATES, learning_rate or 0.002)
    name, _, variant = rule.partition(" ")
    kwargs = {"nesterov": True} if variant else {}
    if learning_rate is not None:
        kwargs["learning_rate"] = learning_rate
    opt = CLASSES[name](clr={**clr, "momentum": MOMENTUM}, **kwargs)

    x = batches()
    start, trained = fit(opt, x)
    expected = RULES[rule](start, gradients(x), rates, momentums)
    np.testing.assert_allclose(trained, expected, rtol=2e-5, atol=1e-6)
    # With the stock (constant) momentum the result differs clearly.
    constant = RULES[rule](start, gradients(x), rates, [MOMENTUM[1]] * UPDATES)
    assert np.abs(constant - expected).max() > 100 * 1e-6
    assert opt.current_momentum == pytest.approx(momentums[-1], rel=1e-6)
    assert opt.get_config()["current_momentum"] == pytest.approx(
        momentums[-1], rel=1e-6
    )


@pytest.mark.slow_on("torch")
def test_cycled_momentum_under_jit_compile():
    """XLA on TensorFlow and JAX, `torch.compile` on PyTorch."""
    clr, make_scheduler, learning_rate = SCHEDULES["CyclicLR 3/5"]
    rates, momentums = torch_schedule(make_scheduler, UPDATES, learning_rate)
    opt = Adam(learning_rate=learning_rate, clr={**clr, "momentum": MOMENTUM})
    x = batches(2)
    start, trained = fit(opt, x, jit_compile=True)
    expected = adam(start, gradients(x), rates, momentums)
    np.testing.assert_allclose(trained, expected, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("Opt", [Adagrad, Adadelta], ids=lambda o: o.__name__)
def test_optimizers_without_momentum_refuse_to_cycle_it(Opt):
    with pytest.raises(ValueError, match=rf"momentum.*{Opt.__name__} has no momentum"):
        Opt(clr={"max_lr": 0.1, "step_size": 4, "momentum": MOMENTUM})


def test_any_optimizer_with_beta_1_cycles_it():
    AdamW = cyclical(keras.optimizers.AdamW)
    opt = AdamW(
        learning_rate=0.01, clr={"max_lr": 0.05, "step_size": 2, "momentum": MOMENTUM}
    )
    np.testing.assert_allclose(
        opt.momentum_values(5), [0.95, 0.875, 0.8, 0.875, 0.95], rtol=1e-6
    )
    assert opt.get_config()["beta_1"] == 0.95
    Ftrl = cyclical(keras.optimizers.Ftrl)
    with pytest.raises(ValueError, match="Ftrl has no momentum"):
        Ftrl(clr={"max_lr": 0.1, "step_size": 4, "momentum": MOMENTUM})


def test_adamw_cycles_beta_1_with_weight_decay_at_the_cycled_rate():
    AdamW = cyclical(keras.optimizers.AdamW)
    clr, make_scheduler, learning_rate = SCHEDULES["CyclicLR 3/5"]
    rates, momentums = torch_schedule(make_scheduler, UPDATES, learning_rate)
    opt = AdamW(
        learning_rate=learning_rate,
        weight_decay=0.5,
        clr={**clr, "momentum": MOMENTUM},
    )
    x = batches(3)
    start, trained = fit(opt, x)
    expected = adam(start, gradients(x), rates, momentums, weight_decay=0.5)
    np.testing.assert_allclose(trained, expected, rtol=2e-5, atol=1e-6)
    without_decay = adam(start, gradients(x), rates, momentums)
    assert np.abs(without_decay - expected).max() > 1e-3


def test_stock_argument_left_out_equal_or_refused():
    clr = {"max_lr": 0.05, "step_size": 2, "momentum": (0.85, 0.95)}
    assert Adam(learning_rate=0.01, beta_1=0.95, clr=clr).beta_1 == 0.95
    with pytest.raises(ValueError, match=r"`beta_1` and `clr\['momentum'\]` disagree"):
        Adam(learning_rate=0.01, beta_1=0.9, clr=clr)
    with pytest.raises(ValueError, match=r"`momentum` and `clr\['momentum'\]`"):
        SGD(learning_rate=0.01, momentum=0.5, clr=clr)


class Stored(keras.optimizers.Optimizer):
    """Takes `momentum` but keeps it under another name."""

    def __init__(self, learning_rate=0.01, momentum=0.9, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.mu = momentum

    def update_step(self, gradient, variable, learning_rate):
        variable.assign_sub(gradient * learning_rate * self.mu)


def test_a_momentum_the_update_rule_does_not_read_is_refused():
    Cyclical = cyclical(Stored, name="Stored", package="clr_tests_momentum")
    with pytest.raises(ValueError, match=r"does not keep it as the attribute"):
        Cyclical(clr={"max_lr": 0.05, "step_size": 2, "momentum": MOMENTUM})
    Cyclical(clr={"max_lr": 0.05, "step_size": 2})  # fine without


def test_stock_argument_is_the_top_of_the_cycle_and_config_round_trips():
    opt = SGD(
        learning_rate=0.01,
        clr={"max_lr": 0.05, "step_size": 2, "momentum": (0.85, 0.95)},
    )
    assert opt.momentum == 0.95  # so that Keras builds the momentum slots
    x = batches()
    fit(opt, x)
    config = opt.get_config()
    assert config["clr"]["momentum"] == [0.85, 0.95]
    # The cycled variable is in place only during an update.
    assert type(opt.momentum) is float and type(config["momentum"]) is float
    assert config["momentum"] == 0.95
    assert config["iterations"] == UPDATES
    # 24 updates of a 4-update cycle: the last used the top momentum.
    assert config["current_momentum"] == 0.9
    clone = SGD.from_config(config)
    assert clone.clr == opt.clr
    assert clone.current_momentum == 0.95  # a fresh optimizer, before update 1


def test_saved_model_resumes_the_momentum_cycle(tmp_path):
    clr = {"max_lr": 0.05, "step_size_up": 3, "step_size_down": 5, "momentum": MOMENTUM}
    x = batches()
    first, second = x[: len(x) // 2], x[len(x) // 2 :]

    whole = Nadam(learning_rate=0.01, clr=clr)
    _, expected = fit(whole, x)

    opt = Nadam(learning_rate=0.01, clr=clr)
    model = keras.Sequential(
        [keras.Input((FEATURES,)), keras.layers.Dense(UNITS, use_bias=False)]
    )
    model.layers[0].kernel.assign(
        np.random.default_rng(1).normal(size=(FEATURES, UNITS)).astype("float32")
    )
    model.compile(optimizer=opt, loss=mean_prediction)
    y = np.zeros((len(x), UNITS), "float32")
    model.fit(first, y[: len(first)], batch_size=BATCH, shuffle=False, verbose=0)
    model.save(tmp_path / "half.keras")
    loaded = keras.models.load_model(
        tmp_path / "half.keras", custom_objects={"mean_prediction": mean_prediction}
    )
    assert loaded.optimizer.current_momentum == opt.current_momentum
    loaded.fit(second, y[len(first) :], batch_size=BATCH, shuffle=False, verbose=0)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded.layers[0].kernel), expected, rtol=1e-6, atol=1e-7
    )
    assert loaded.optimizer.current_momentum == whole.current_momentum
