"""On PyTorch, the update rules of `_torch_rules`: Keras's fused rules, bit
for bit, that read nothing back to the host, also with a cycled momentum."""

import keras
import numpy as np
import pytest
import torch
from conftest import BACKEND, benchmark_script, run_updates, train_variables

from clr_optimizers import OPTIMIZERS, cyclical

pytestmark = pytest.mark.skipif(
    BACKEND != "torch", reason="Keras's fused update rules are PyTorch's"
)

# Counts the reads of a tensor's value on the host, and copies to NumPy:
# each a synchronisation on a GPU.
HostSyncs = benchmark_script("cost").HostSyncs
AdamW = cyclical(keras.optimizers.AdamW)
CLASSES = {c.__name__: c for c in (*OPTIMIZERS, AdamW)}
FLAT = {"max_lr": 0.05, "step_size": 5}
CYCLE = {"max_lr": 0.05, "step_size": 3, "momentum": (0.85, 0.95)}

# The replaced rules and their variants: (class, stock arguments, the
# argument a cycled momentum replaces or None).
REPLACED = {
    "SGD": ("SGD", {}, "momentum"),
    "SGD momentum": ("SGD", {"momentum": 0.9}, "momentum"),
    "SGD nesterov": ("SGD", {"momentum": 0.9, "nesterov": True}, "momentum"),
    "Adadelta": ("Adadelta", {"rho": 0.9}, None),
    "Adam": ("Adam", {}, "beta_1"),
    "Adam amsgrad": ("Adam", {"amsgrad": True}, "beta_1"),
    "AdamW": ("AdamW", {}, "beta_1"),
    "Adamax": ("Adamax", {}, "beta_1"),
    "Nadam": ("Nadam", {}, "beta_1"),
}
MOMENTUM = {name: case for name, case in REPLACED.items() if case[2] is not None}
# A momentum m for which 1 - m is the same in float32 as in float64 (where
# Keras's stock rule computes it, from its Python float).
DYADIC = 0.875


def stock(name):
    return getattr(keras.optimizers, name)


def without(kwargs, key):
    return {k: v for k, v in kwargs.items() if k != key}


def decayed(kwargs, weight_decay):
    """`kwargs` with `weight_decay` when given (AdamW's default is 0.004)."""
    return kwargs if weight_decay is None else {**kwargs, "weight_decay": weight_decay}


def assert_bitwise_equal(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("weight_decay", [None, 0.01], ids=["", "weight_decay"])
@pytest.mark.parametrize("case", REPLACED)
def test_flat_cycle_gives_stock_keras_weights_bitwise(case, weight_decay):
    name, kwargs, _ = REPLACED[case]
    assert CLASSES[name]._tensor_rule is not None  # the replacement runs
    kwargs = decayed(kwargs, weight_decay)
    expected = run_updates(stock(name)(learning_rate=0.05, **kwargs))
    got = run_updates(CLASSES[name](learning_rate=0.05, clr=FLAT, **kwargs))
    assert_bitwise_equal(got, expected)


@pytest.mark.parametrize("weight_decay", [None, 0.01], ids=["", "weight_decay"])
@pytest.mark.parametrize("case", MOMENTUM)
def test_flat_cycled_momentum_gives_stock_keras_weights_bitwise(case, weight_decay):
    name, kwargs, argument = MOMENTUM[case]
    kwargs = decayed(without(kwargs, argument), weight_decay)
    expected = run_updates(
        stock(name)(learning_rate=0.05, **{argument: DYADIC}, **kwargs)
    )
    clr = {**FLAT, "momentum": (DYADIC, DYADIC)}
    *got, momentum = run_updates(CLASSES[name](learning_rate=0.05, clr=clr, **kwargs))
    assert_bitwise_equal(got, expected)
    assert momentum == np.float32(DYADIC)  # the variable that holds it


@pytest.mark.parametrize("weight_decay", [None, 0.01], ids=["", "weight_decay"])
@pytest.mark.parametrize("case", REPLACED)
def test_cycled_values_give_keras_rule_weights_bitwise(case, weight_decay, monkeypatch):
    """With a rate and a momentum that do cycle, Keras's own rule fed the
    same values (which it reads on the host) gives the same weights."""
    name, kwargs, argument = REPLACED[case]
    kwargs = decayed(without(kwargs, argument), weight_decay)
    clr = CYCLE if argument is not None else without(CYCLE, "momentum")
    got = run_updates(CLASSES[name](learning_rate=0.01, clr=clr, **kwargs))
    monkeypatch.setattr(CLASSES[name], "_tensor_rule", None)
    expected = run_updates(CLASSES[name](learning_rate=0.01, clr=clr, **kwargs))
    assert_bitwise_equal(got, expected)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
@pytest.mark.parametrize("case", ["SGD nesterov", "Adadelta", "Adam", "Adamax"])
def test_other_float_dtypes_give_stock_keras_weights_bitwise(case, dtype):
    """For float16 and bfloat16, PyTorch's `add` with `alpha` and `addcmul`
    round differently: there the rules make Keras's call."""
    name, kwargs, _ = REPLACED[case]

    def updated(optimizer):
        variables = [keras.Variable(v.numpy(), dtype=dtype) for v in train_variables()]
        rng = np.random.default_rng(1)
        for _ in range(10):
            grads = [
                keras.ops.cast(rng.normal(size=v.shape).astype("float32"), dtype)
                for v in variables
            ]
            optimizer.apply(grads, variables)
        return [
            keras.ops.convert_to_numpy(keras.ops.cast(v, "float32")) for v in variables
        ]

    expected = updated(stock(name)(learning_rate=0.05, **kwargs))
    got = updated(CLASSES[name](learning_rate=0.05, clr=FLAT, **kwargs))
    assert_bitwise_equal(got, expected)


def test_the_identities_the_rules_rely_on_hold_on_this_machine():
    """`addcmul` with a 0-dim tensor computes as `add` with `alpha` (the same
    fused multiply-add, or the same separate multiply and add), and dividing
    or multiplying by a 0-dim tensor as by the Python float."""
    rng = np.random.default_rng(0)
    for dtype in (torch.float32, torch.float64):
        for size in (1, 15, 16, 17, 1000, 4099):
            a, b = (torch.tensor(rng.normal(size=size), dtype=dtype) for _ in "ab")
            c = torch.tensor(rng.uniform(-0.2, 0.2), dtype=torch.float32).to(dtype)
            added = [a.clone()]
            torch._foreach_add_(added, [b], alpha=float(c))
            scaled = [a.clone()]
            torch._foreach_addcmul_(scaled, [b], [c])
            assert torch.equal(scaled[0], added[0]), (dtype, size)
            for op in (torch._foreach_div, torch._foreach_mul):
                assert torch.equal(op([a], c)[0], op([a], float(c))[0]), (op, size)
    # Nadam: Keras divides by `1 - convert_to_numpy(u)`, the rule by `1 - u`.
    for u in (0.5, 0.123456789, 3e-5, 2e-9, 1e-30):
        u = torch.tensor(u, dtype=torch.float32)
        from_numpy = 1 - keras.ops.convert_to_numpy(u)
        assert torch.tensor(float(from_numpy), dtype=torch.float32) == 1 - u


def host_reads(optimizer, updates=3):
    """The host reads of each of `updates` eager `optimizer.apply` calls (the
    first also builds the optimizer)."""
    variables = train_variables()
    rng = np.random.default_rng(1)
    counts = []
    for _ in range(updates):
        grads = [
            torch.tensor(rng.normal(size=v.shape), dtype=torch.float32)
            for v in variables
        ]
        with HostSyncs() as counted:
            optimizer.apply(grads, variables)
        counts.append(counted.syncs)
    return counts


# Every exported class, with the variants whose rules differ: (class, stock
# arguments, whether it has a momentum to cycle).
EXPORTED = {
    "SGD": ("SGD", {}, True),
    "SGD nesterov": ("SGD", {"nesterov": True}, True),
    "RMSprop": ("RMSprop", {}, True),
    "RMSprop centered": ("RMSprop", {"centered": True}, True),
    "Adagrad": ("Adagrad", {}, False),
    "Adadelta": ("Adadelta", {}, False),
    "Adam": ("Adam", {}, True),
    "Adam amsgrad": ("Adam", {"amsgrad": True}, True),
    "Adamax": ("Adamax", {}, True),
    "Nadam": ("Nadam", {}, True),
}
SCHEDULES = {"rate": without(CYCLE, "momentum"), "momentum": CYCLE}


@pytest.mark.parametrize("weight_decay", [None, 0.01], ids=["", "weight_decay"])
@pytest.mark.parametrize("cycled", SCHEDULES)
@pytest.mark.parametrize("case", EXPORTED)
def test_no_host_read_per_update(case, cycled, weight_decay):
    name, kwargs, has_momentum = EXPORTED[case]
    if cycled == "momentum" and not has_momentum:
        pytest.skip(f"{name} has no momentum")
    kwargs = decayed(kwargs, weight_decay)
    optimizer = CLASSES[name](learning_rate=0.01, clr=SCHEDULES[cycled], **kwargs)
    assert host_reads(optimizer) == [0, 0, 0]


# Host reads per update of Keras's own rule, stock (at the stock momentum)
# and in a CLR class with a cycled momentum. RMSprop and Adagrad make none,
# so `_torch_rules` leaves them alone.
KERAS_READS = {
    "SGD": (1, 1),  # alpha=-learning_rate
    "SGD nesterov": (2, 3),  # twice alpha=-learning_rate, alpha=self.momentum
    "RMSprop": (0, 0),
    "RMSprop centered": (0, 0),
    "Adagrad": (0, None),
    "Adadelta": (1, None),  # alpha=lr
    "Adam": (0, 1),  # alpha=1 - self.beta_1
    "Adam amsgrad": (0, 1),
    "Adamax": (0, 1),
    "Nadam": (2, 3),  # twice convert_to_numpy, alpha=1 - self.beta_1
}


@pytest.mark.parametrize("case", EXPORTED)
def test_keras_rules_read_on_the_host_where_replaced(case, monkeypatch):
    name, kwargs, _ = EXPORTED[case]
    at_stock, cycled = KERAS_READS[case]
    momentum = {"momentum": 0.9} if name == "SGD" else {}
    assert (
        host_reads(stock(name)(learning_rate=0.01, **momentum, **kwargs))
        == [at_stock] * 3
    )
    assert (CLASSES[name]._tensor_rule is not None) == (at_stock + (cycled or 0) > 0)
    if cycled is not None:
        monkeypatch.setattr(CLASSES[name], "_tensor_rule", None)
        optimizer = CLASSES[name](learning_rate=0.01, clr=CYCLE, **kwargs)
        assert host_reads(optimizer) == [cycled] * 3


@pytest.mark.parametrize("stock_class", [keras.optimizers.Lion, keras.optimizers.Lamb])
def test_other_classes_keep_keras_rule(stock_class):
    Opt = cyclical(stock_class)
    assert Opt._tensor_rule is None
    expected = run_updates(stock_class(learning_rate=0.05), steps=5)
    got = run_updates(Opt(learning_rate=0.05, clr=FLAT), steps=5)
    assert_bitwise_equal(got, expected)


def test_a_user_subclass_of_a_stock_class_keeps_its_rule():
    class Mine(keras.optimizers.Adam):
        pass

    Opt = cyclical(Mine, name="Mine", package="test_torch_rules")
    assert Opt._tensor_rule is None
