"""Models saved by released and earlier versions (`tests/saved/VERSION/`,
written by `tests/saved/make_saved.py` on TensorFlow; from 0.2.0 on also
`VERSION-keras-3.7.0/`, written at the oldest Keras supported, which the
floors job loads) load on every backend
and continue their schedule: the same config, and the rates, momentums and
weights that version recorded for the next updates.

A change that makes one of these files fail to load, or continue
differently, breaks users' saved models: it needs a migration path and a
CHANGELOG entry, not a new file."""

import itertools
import json
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import scale_functions  # noqa: F401  (registers the files' scale functions)
from releases import floors, latest_release
from rounding import assert_within_rounding
from saved.make_saved import CASES, NEXT_UPDATES, clr_optimizer, loss_scale, next_rates

import clr_optimizers

# What can differ at the oldest supported dependencies: the floors job runs it.
pytestmark = pytest.mark.floors

SAVED = Path(__file__).parent / "saved"
MANIFESTS = {
    path.parent.name: json.loads(path.read_text())
    for path in sorted(SAVED.glob("*/manifest.json"))
}
FILES = [
    (version, name)
    for version, manifest in MANIFESTS.items()
    for name in manifest
    if name not in ("keras", "clr_optimizers")
]


def test_every_recorded_file_is_there():
    for version, name in FILES:
        assert (SAVED / version / f"{name}.keras").is_file(), (version, name)


def test_the_latest_release_has_files_at_the_floor_and_the_latest_keras():
    # A release adds its files with `make_saved.py`, at the latest Keras and
    # at the floor (`--keras-in-name`), and keeps the old ones.
    latest = latest_release()
    written = {
        MANIFESTS[d]["keras"]: d
        for d in MANIFESTS
        if MANIFESTS[d]["clr_optimizers"] == latest
    }
    floor = floors()["keras"]
    assert floor in written, (latest, written)  # the floors job loads these
    assert any(_release(k) > _release(floor) for k in written), (latest, written)
    cases = [{name for d, name in FILES if d == dir_} for dir_ in written.values()]
    assert all(names == cases[0] for names in cases), written  # the same cases
    if clr_optimizers.__version__ == latest:  # a release: every case of today
        assert cases[0] == set(CASES), latest
    assert "0.1.0" in MANIFESTS
    everything = {opt.__name__ for opt in clr_optimizers.OPTIMIZERS}
    for directory in MANIFESTS:
        classes = {
            MANIFESTS[directory][name]["class"] for d, name in FILES if d == directory
        }
        assert classes == everything, directory


# Rounded operations on the path from the inputs to one gradient entry of
# make_saved.py's model (4 inputs, Dense(3, tanh), Dense(1), mean squared
# error, batches of 2): the casts to the compute dtype of the inputs, the
# four weights and the loss's gradient (6), the first layer's 4-term dot
# product and its bias (5), tanh (1), the second layer's 3-term dot product
# and its bias (4), the loss and its derivative (3), back through the second
# layer and tanh's derivative (3), and the product with the inputs summed
# over the batch (2). Widening casts and loss scaling (by powers of 2) are
# exact.
ROUNDINGS = 24
# The update rules' own roundings: about ten operations each (Nadam's, the
# longest, has a dozen), plus the bias correction of Adam and Nadam, whose
# `1 - beta_2**t` amplifies the rounding of `beta_2**t` by
# `beta_2**t / (1 - beta_2**t) < 1 / (1 - beta_2**t)` (84 at t = 12).
RULE_ROUNDINGS = 12


def rule_roundings(optimizer, updates):
    """For the last `updates` updates of `optimizer`."""
    if not isinstance(optimizer, clr_optimizers.Adam | clr_optimizers.Nadam):
        return RULE_ROUNDINGS
    # The first of them: the largest amplification.
    first_step = int(optimizer.iterations.numpy()) - updates + 1
    return RULE_ROUNDINGS + 1 / (1 - optimizer.beta_2**first_step)


def _release(version):
    return tuple(int(part) for part in version.split(".")[:3])


def _same_clr(loaded, recorded):
    # 0.1.0 listed every key, `None` for those that do not apply.
    recorded = {k: v for k, v in recorded.items() if v is not None}
    assert loaded.keys() == recorded.keys()
    for key, value in recorded.items():
        if isinstance(value, float):
            assert loaded[key] == pytest.approx(value, rel=1e-6), key
        else:
            assert loaded[key] == value, key


def load(version, name):
    """The saved model, under the policy it was saved with: as with any Keras
    model, one saved under mixed precision loads its LossScaleOptimizer (and
    its state) under that policy."""
    written_by = MANIFESTS[version]["keras"]
    if _release(keras.version()) < _release(written_by):
        pytest.skip(f"Keras {keras.version()} cannot read files of Keras {written_by}")
    if MANIFESTS[version][name].get("mixed_precision"):
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        with warnings.catch_warnings():
            # Keras, and this package, warn when they skip optimizer state.
            warnings.filterwarnings("error", message=".*[Ss]kipping variable loading")
            return keras.models.load_model(SAVED / version / f"{name}.keras")
    finally:
        keras.mixed_precision.set_global_policy("float32")


def assert_weights_continue(model, recorded, rates, weights):
    """The weights after the next updates are the recorded ones, within the
    error that rounding in the model's compute dtype can make (rounding.py).

    Equal weights after the next updates also show that the slot variables
    (Adam's moments, the momentum buffers) were restored, not rebuilt."""
    compute_dtype = model.layers[0].dtype_policy.compute_dtype
    for k, want in enumerate(recorded["weights"]):
        moves = [after[k] - before[k] for before, after in itertools.pairwise(weights)]
        assert_within_rounding(
            weights[-1][k],
            want,
            rates=rates,
            moves=moves,
            compute_dtype=compute_dtype,
            roundings=ROUNDINGS,
            rule_roundings=rule_roundings(clr_optimizer(model), len(rates)),
        )


@pytest.mark.parametrize(("version", "name"), FILES, ids=[f"{v}/{n}" for v, n in FILES])
def test_saved_file_loads_and_continues_its_schedule(version, name):
    recorded = MANIFESTS[version][name]
    model = load(version, name)
    opt = clr_optimizer(model)
    assert type(opt) is getattr(clr_optimizers, recorded["class"])
    assert loss_scale(model) == recorded.get("loss_scale")
    config = opt.get_config()
    for key, value in recorded["config"].items():
        if key == "clr":
            _same_clr(config[key], value)
        elif isinstance(value, float):
            assert config[key] == pytest.approx(value, rel=1e-6), key
        else:
            assert config[key] == value, key
    rates, momentums, weights = next_rates(model, NEXT_UPDATES)
    # The rates and momentums are the schedule's formula, in float32.
    np.testing.assert_allclose(rates, recorded["next_rates"], rtol=1e-6)
    if recorded["next_momentums"][0] is None:
        assert momentums == recorded["next_momentums"]
    else:
        np.testing.assert_allclose(momentums, recorded["next_momentums"], rtol=1e-6)
    assert opt.iterations == recorded["config"]["iterations"] + NEXT_UPDATES
    assert_weights_continue(model, recorded, rates, weights)


MIXED = ("0.2.0", "adam_mixed_precision")


def test_mixed_precision_weights_allow_a_cpu_that_computes_float16_natively():
    """On a CPU with AVX512-FP16 (TensorFlow's oneDNN kernels compute float16
    natively there), the output bias of the mixed-precision file came out as
    0.0076529 after the next updates, where 0.0076517 was recorded: a
    difference of float16 rounding, which the comparison accepts."""
    model = load(*MIXED)
    recorded = MANIFESTS[MIXED[0]][MIXED[1]]
    rates, _, weights = next_rates(model, NEXT_UPDATES)
    bias = recorded["weights"][-1]
    assert bias == pytest.approx([0.0076517], abs=1e-7)
    assert_within_rounding(
        [0.0076529],
        bias,
        rates=rates,
        moves=[after[-1] - before[-1] for before, after in itertools.pairwise(weights)],
        compute_dtype="float16",
        roundings=ROUNDINGS,
        rule_roundings=rule_roundings(clr_optimizer(model), len(rates)),
    )


def test_mixed_precision_weights_reveal_a_slot_reset_after_loading():
    """The comparison is loose enough for float16 rounding, and still tells
    a restored slot variable from a rebuilt one: resetting either of Adam's
    moments of the output bias (the weight of the near miss above) after
    loading changes the weights the next updates reach."""
    recorded = MANIFESTS[MIXED[0]][MIXED[1]]
    for moment in range(2):
        model = load(*MIXED)
        optimizer = clr_optimizer(model)
        # Keras names a slot after its variable's path: `dense_1_bias_momentum`.
        prefix = model.layers[-1].bias.path.replace("/", "_") + "_"
        slots = [v for v in optimizer.variables if v.name.startswith(prefix)]
        assert len(slots) == 2  # the first and the second moment
        slot = slots[moment]
        slot.assign(np.zeros(slot.shape, slot.dtype))
        rates, _, weights = next_rates(model, NEXT_UPDATES)
        with pytest.raises(AssertionError, match="differ by more than rounding"):
            assert_weights_continue(model, recorded, rates, weights)
