"""What spans the policy families (cosine ramps, warm restarts, warmup, chains,
one-cycle by epochs), the reading of a `clr` dict: each round-trips through
`get_config` and through a schedule object's serialization; the compiled step
of `model.fit` follows them, against NumPy restatements of the formulas; bad
input is refused with an error that names the key; and `decay` is refused
where a policy anneals."""

import json
import re
from fractions import Fraction

import keras
import numpy as np
import pytest
from keras import ops
from policy_references import (
    CHAINS,
    FLOOR,
    MOMENTUM,
    PEAK,
    RTOL,
    UPDATES,
    WARM,
    Truth,
    cyclical_rates,
    fit,
    joined,
    momenta_of,
    rates_of,
    sgdr_rates,
    with_warmup,
)

from clr_optimizers import SGD, Adam, LearningRateMonitor
from clr_optimizers._policies import FAMILIES, REQUIRED, parse
from clr_optimizers.schedules import CLRSchedule

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

CONFIGS = {
    "cos ramp": (FLOOR, {"max_lr": PEAK, "step_size_up": 2.5, "step_size_down": 7.25, "mode": "exp_range", "gamma": 0.99, "ramp": "cos"}),
    "warm_restarts": (FLOOR, {"mode": "warm_restarts", "max_lr": PEAK, "period": 2.5, "period_mult": 1.5, "peak_mult": 0.8, "cycle_limit": 6}),
    "warmup": (FLOOR, {"max_lr": PEAK, "step_size": 4, "mode": "triangular2", "warmup_steps": 9, "warmup_factor": 0.2}),
    "chain": CHAINS["warmups in pieces, one_cycle"][:2],
    "one_cycle epochs": (None, {"mode": "one_cycle", "max_lr": PEAK, "epochs": 3, "steps_per_epoch": 17, "three_phase": True}),
    "polynomial": (FLOOR, {"mode": "polynomial", "max_lr": PEAK, "decay_steps": 30, "power": 2.0, "cycle": True, "warmup_steps": 5}),
    "step drop_at": (FLOOR, {"mode": "step", "max_lr": PEAK, "drop_at": [10, 40], "factors": [1.0, 0.5, 0.125]}),
    "step drop_every": (FLOOR, {"mode": "step", "max_lr": PEAK, "drop_every": 25, "gamma": 0.3}),
}  # fmt: skip


@pytest.mark.parametrize("name", CONFIGS)
def test_config_round_trip(name):
    learning_rate, clr = CONFIGS[name]
    given = {} if learning_rate is None else {"learning_rate": learning_rate}
    opt = Adam(**given, clr={**clr, "momentum": MOMENTUM})
    config = opt.get_config()
    json.dumps(config)  # plain data
    again = Adam.from_config(config)
    assert again.clr == opt.clr
    np.testing.assert_array_equal(rates_of(again, 120), rates_of(opt, 120))
    np.testing.assert_array_equal(momenta_of(again, 120), momenta_of(opt, 120))
    for key, value in clr.items():
        if key != "policies":
            assert opt.clr[key] == value
    plain = SGD(**given, clr=clr)
    again = SGD.from_config(plain.get_config())
    np.testing.assert_array_equal(rates_of(again, 120), rates_of(plain, 120))
    # A schedule object: the optimizer's rates, also after serialization.
    schedule = CLRSchedule(learning_rate, clr)
    restored = keras.optimizers.schedules.deserialize(
        json.loads(json.dumps(keras.optimizers.schedules.serialize(schedule)))
    )
    for each in (schedule, restored):
        np.testing.assert_array_equal(
            np.asarray(ops.convert_to_numpy(each(np.arange(256))), np.float64)[:120],
            rates_of(plain, 120),
        )


FIT_CHAIN = {
    "mode": "chain",
    "max_lr": 0.5,
    "policies": [
        {"step_size": 3, "mode": "triangular2", "ramp": "cos", "warmup_steps": 4, "warmup_factor": 0.25},
        {"mode": "warm_restarts", "period": 4, "period_mult": 1.5, "peak_mult": 0.8},
    ],
    "boundaries": [13],
}  # fmt: skip


@pytest.mark.parametrize("how", ["optimizer", "schedule"])
def test_fit_uses_the_policies_in_the_compiled_step(how):
    updates = 4 * UPDATES
    pieces = [
        with_warmup(cyclical_rates(updates, floor=0.1, peak=0.5, up=3, down=3, mode="triangular2", ramp="cos"), 4, 0.25),
        sgdr_rates(updates, floor=0.1, peak=0.5, period=4, period_mult=Fraction(3, 2), peak_mult=0.8),
    ]  # fmt: skip
    expected = joined(pieces, [13], updates)
    truth = Truth()
    if how == "optimizer":
        opt = SGD(learning_rate=0.1, clr=FIT_CHAIN)
        monitor = LearningRateMonitor()
        fit(opt, 4, monitor, truth)
        # The monitor evaluates the schedule an epoch at a time. TensorFlow's
        # float32 cos can round the last bit differently for an element
        # depending on the length of the array and its place in it, so the
        # record equals `learning_rates` to float32 rounding, not bit for bit.
        np.testing.assert_allclose(
            monitor.learning_rates, rates_of(opt, updates), rtol=1e-6
        )
        np.testing.assert_allclose(monitor.learning_rates, expected, rtol=RTOL)
    else:
        fit(keras.optimizers.SGD(learning_rate=CLRSchedule(0.1, FIT_CHAIN)), 4, truth)
    np.testing.assert_allclose(truth.rates, expected, rtol=1e-6)


CHAIN = {
    "mode": "chain",
    "max_lr": PEAK,
    "policies": [{"step_size": 4}, {"mode": "warm_restarts", "period": 10}],
    "boundaries": [8],
}
ONE = {"mode": "one_cycle", "max_lr": PEAK}
POLY = {"mode": "polynomial", "max_lr": PEAK, "decay_steps": 10}
STEP = {"mode": "step", "max_lr": PEAK, "drop_at": [5, 9]}
CYCLE = {"max_lr": PEAK, "step_size": 4}

# (id, clr, error, the key the message names)
BAD = [
    ("ramp unknown", {**CYCLE, "ramp": "cosine"}, ValueError, "ramp"),
    ("ramp not a string", {**CYCLE, "ramp": 1}, ValueError, "ramp"),
    ("ramp on warm_restarts", {**WARM, "ramp": "cos"}, ValueError, "ramp"),
    ("ramp on one_cycle", {**ONE, "total_steps": 100, "ramp": "cos"}, ValueError, "ramp"),
    ("period missing", {"mode": "warm_restarts", "max_lr": PEAK}, ValueError, "period"),
    ("period 0", {**WARM, "period": 0}, ValueError, "period"),
    ("period negative", {**WARM, "period": -5}, ValueError, "period"),
    ("period a string", {**WARM, "period": "10"}, TypeError, "period"),
    ("period too long", {**WARM, "period": 10**13}, ValueError, "period"),
    ("period on a cycle", {**CYCLE, "period": 10}, ValueError, "period"),
    ("period_mult below 1", {**WARM, "period_mult": 0.5}, ValueError, "period_mult"),
    ("period_mult a string", {**WARM, "period_mult": "2"}, TypeError, "period_mult"),
    ("period_mult too close to 1", {**WARM, "period_mult": 1 + 1e-9}, ValueError, "period_mult"),
    ("peak_mult above 1", {**WARM, "peak_mult": 1.5}, ValueError, "peak_mult"),
    ("peak_mult 0", {**WARM, "peak_mult": 0}, ValueError, "peak_mult"),
    ("peak_mult negative", {**WARM, "peak_mult": -0.5}, ValueError, "peak_mult"),
    ("cycle_limit 0", {**WARM, "cycle_limit": 0}, ValueError, "cycle_limit"),
    ("cycle_limit a float", {**WARM, "cycle_limit": 2.5}, TypeError, "cycle_limit"),
    ("cycle_limit a bool", {**WARM, "cycle_limit": True}, TypeError, "cycle_limit"),
    ("cycle_limit on a cycle", {**CYCLE, "cycle_limit": 3}, ValueError, "cycle_limit"),
    ("warmup_steps 0", {**CYCLE, "warmup_steps": 0}, ValueError, "warmup_steps"),
    ("warmup_steps negative", {**WARM, "warmup_steps": -3}, ValueError, "warmup_steps"),
    ("warmup_steps a float", {**CYCLE, "warmup_steps": 2.5}, TypeError, "warmup_steps"),
    ("warmup_steps too long", {**CYCLE, "warmup_steps": 10**13}, ValueError, "warmup_steps"),
    ("warmup_factor above 1", {**CYCLE, "warmup_steps": 5, "warmup_factor": 1.5}, ValueError, "warmup_factor"),
    ("warmup_factor negative", {**CYCLE, "warmup_steps": 5, "warmup_factor": -0.1}, ValueError, "warmup_factor"),
    ("warmup_factor a string", {**CYCLE, "warmup_steps": 5, "warmup_factor": "0.1"}, TypeError, "warmup_factor"),
    ("warmup_factor alone", {**CYCLE, "warmup_factor": 0.5}, ValueError, "warmup_steps"),
    ("policies missing", {"mode": "chain", "max_lr": PEAK, "boundaries": [8]}, ValueError, "policies"),
    ("boundaries missing", {"mode": "chain", "max_lr": PEAK, "policies": CHAIN["policies"]}, ValueError, "boundaries"),
    ("policies a dict", {**CHAIN, "policies": {"step_size": 4}}, TypeError, "policies"),
    ("policies a string", {**CHAIN, "policies": "step_size"}, TypeError, "policies"),
    ("one policy", {**CHAIN, "policies": [{"step_size": 4}], "boundaries": []}, ValueError, "policies"),
    ("piece not a dict", {**CHAIN, "policies": [{"step_size": 4}, 10]}, TypeError, "clr['policies'][1]"),
    ("piece with momentum", {**CHAIN, "policies": [{"step_size": 4}, {**WARM, "momentum": MOMENTUM}]}, ValueError, "clr['policies'][1]['momentum']"),
    ("piece with a bad key", {**CHAIN, "policies": [{"step_size": 4}, {"mode": "warm_restarts", "perod": 10}]}, ValueError, "clr['policies'][1]"),
    ("piece with a bad period", {**CHAIN, "policies": [{"step_size": 4}, {"mode": "warm_restarts", "period": 0}]}, ValueError, "clr['policies'][1]"),
    ("piece floor above its peak", {**CHAIN, "policies": [{"step_size": 4, "learning_rate": 0.5}, WARM]}, ValueError, "clr['policies'][0]"),
    ("piece floor a string", {**CHAIN, "policies": [{"step_size": 4, "learning_rate": "0.5"}, WARM]}, TypeError, "clr['policies'][0]['learning_rate']"),
    ("boundaries a number", {**CHAIN, "boundaries": 8}, TypeError, "boundaries"),
    ("boundaries too many", {**CHAIN, "boundaries": [8, 9]}, ValueError, "boundaries"),
    ("boundaries not increasing", {**CHAIN, "policies": [CYCLE, WARM, WARM], "boundaries": [8, 8]}, ValueError, "boundaries"),
    ("boundary 0", {**CHAIN, "boundaries": [0]}, ValueError, "boundaries"),
    ("boundary a float", {**CHAIN, "boundaries": [8.5]}, TypeError, "boundaries"),
    ("epochs alone", {**ONE, "epochs": 3}, ValueError, "steps_per_epoch"),
    ("steps_per_epoch alone", {**ONE, "steps_per_epoch": 30}, ValueError, "epochs"),
    ("epochs with total_steps", {**ONE, "total_steps": 90, "epochs": 3, "steps_per_epoch": 30}, ValueError, "total_steps"),
    ("epochs 0", {**ONE, "epochs": 0, "steps_per_epoch": 30}, ValueError, "epochs"),
    ("epochs a float", {**ONE, "epochs": 2.5, "steps_per_epoch": 30}, TypeError, "epochs"),
    ("steps_per_epoch a string", {**ONE, "epochs": 3, "steps_per_epoch": "30"}, TypeError, "steps_per_epoch"),
    ("one update in all", {**ONE, "epochs": 1, "steps_per_epoch": 1}, ValueError, "steps_per_epoch"),
    ("epochs on a cycle", {**CYCLE, "epochs": 3}, ValueError, "epochs"),
    ("decay_steps missing", {"mode": "polynomial", "max_lr": PEAK}, ValueError, "decay_steps"),
    ("decay_steps 0", {**POLY, "decay_steps": 0}, ValueError, "decay_steps"),
    ("decay_steps a float", {**POLY, "decay_steps": 2.5}, TypeError, "decay_steps"),
    ("power 0", {**POLY, "power": 0}, ValueError, "power"),
    ("cycle a string", {**POLY, "cycle": "yes"}, TypeError, "cycle"),
    ("power on a cycle", {**CYCLE, "power": 2.0}, ValueError, "power"),
    ("neither drop_at nor drop_every", {"mode": "step", "max_lr": PEAK}, ValueError, "drop_at"),
    ("drop_at and drop_every", {**STEP, "drop_every": 5}, ValueError, "drop_every"),
    ("drop_at empty", {**STEP, "drop_at": []}, TypeError, "drop_at"),
    ("drop_at not increasing", {**STEP, "drop_at": [5, 5]}, ValueError, "drop_at"),
    ("drop_at 0", {**STEP, "drop_at": [0]}, ValueError, "drop_at"),
    ("drop_every 0", {"mode": "step", "max_lr": PEAK, "drop_every": 0}, ValueError, "drop_every"),
    ("factors too few", {**STEP, "factors": [1.0, 0.5]}, ValueError, "factors"),
    ("factor above 1", {**STEP, "factors": [1.0, 0.5, 2.0]}, ValueError, "factors"),
    ("factors and gamma", {**STEP, "factors": [1, 0.5, 0.1], "gamma": 0.5}, ValueError, "factors"),
    ("factors without drop_at", {"mode": "step", "max_lr": PEAK, "drop_every": 5, "factors": [1, 0.5]}, ValueError, "factors"),
    ("gamma above 1", {**STEP, "gamma": 1.5}, ValueError, "gamma"),
    ("drop_at on a cycle", {**CYCLE, "drop_at": [5]}, ValueError, "drop_at"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("clr", "error", "key"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_bad_input_names_the_key(clr, error, key):
    named = key if "[" in key else f"'{key}'"  # as in clr['period']
    with pytest.raises(error) as raised:
        SGD(learning_rate=FLOOR, clr=clr)
    assert named in str(raised.value)
    with pytest.raises(error) as raised:
        CLRSchedule(FLOOR, clr)
    assert named in str(raised.value)


@pytest.mark.parametrize(
    "clr",
    [WARM, CHAIN, POLY, STEP],
    ids=["warm_restarts", "chain", "polynomial", "step"],
)
def test_decay_is_refused_where_a_policy_anneals(clr):
    with pytest.raises(ValueError, match="`decay` does not apply"):
        SGD(learning_rate=FLOOR, clr=clr, decay=0.01)


# The least each family needs.
MINIMAL = {
    "Cyclical": {"step_size": 4},
    "OneCycle": {"mode": "one_cycle", "total_steps": 100},
    "WarmRestarts": {"mode": "warm_restarts", "period": 10},
    "Polynomial": {"mode": "polynomial", "decay_steps": 10},
    "Step": {"mode": "step", "drop_every": 5},
    "Chain": {"mode": "chain", "policies": [{"step_size": 4}, WARM], "boundaries": [8]},
}  # fmt: skip


def test_every_family_is_declared_and_its_defaults_are_the_parsed_ones():
    assert set(MINIMAL) == {family.__name__ for family in FAMILIES}
    for family in FAMILIES:
        assert family.description and family.keys
        clr = {"max_lr": PEAK, **MINIMAL[family.__name__]}
        policy, _ = parse(clr, learning_rate=FLOOR)
        assert isinstance(policy, family)
        filled = policy.to_clr()
        for key in family.keys:
            assert key.doc.endswith("."), key
            if key.default not in (None, REQUIRED) and key.name in filled:
                assert filled[key.name] == key.default, (family.__name__, key)
        assert {k.name for k in family.keys if k.default is REQUIRED} <= {
            *clr,
            *(other for k in family.keys for other in k.replaces if k.name in clr),
        }


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
def test_decay_applies_as_each_family_declares(family):
    clr = {"max_lr": PEAK, **MINIMAL[family.__name__]}
    if family.no_decay is None:
        assert SGD(learning_rate=FLOOR, clr=clr, decay=0.01).decay == 0.01
    else:
        with pytest.raises(ValueError, match=re.escape(family.no_decay)):
            SGD(learning_rate=FLOOR, clr=clr, decay=0.01)


def test_restart_into_another_family_drops_the_old_family_keys():
    opt = SGD(learning_rate=FLOOR, clr={"max_lr": PEAK, "step_size": 4})
    opt.restart(mode="step", drop_every=3, gamma=0.5)
    assert opt.clr == {
        "max_lr": PEAK,
        "mode": "step",
        "drop_every": 3,
        "gamma": 0.5,
    }
    np.testing.assert_allclose(
        opt.learning_rates(7), FLOOR + (PEAK - FLOOR) * 0.5 ** (np.arange(7) // 3)
    )
