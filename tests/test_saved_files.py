"""Models saved by released and earlier versions (`tests/saved/VERSION/`,
written by `tests/saved/make_saved.py` on TensorFlow) load on every backend
and continue their schedule: the same config, and the rates, momentums and
weights that version recorded for the next updates.

A change that makes one of these files fail to load, or continue
differently, breaks users' saved models: it needs a migration path and a
CHANGELOG entry, not a new file."""

import json
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import scale_functions  # noqa: F401  (registers the files' scale functions)
from saved.make_saved import CASES, NEXT_UPDATES, clr_optimizer, loss_scale, next_rates

import clr_optimizers

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


def test_the_released_version_and_this_one_have_files_for_every_optimizer():
    # `__version__` is the installed package's: when it changes (a release),
    # add that version's files with `make_saved.py`, and keep the old ones.
    assert {"0.1.0", clr_optimizers.__version__} <= set(MANIFESTS)
    everything = {opt.__name__ for opt in clr_optimizers.OPTIMIZERS}
    for version in MANIFESTS:
        classes = {
            MANIFESTS[version][name]["class"] for v, name in FILES if v == version
        }
        assert classes == everything, version
    # This version's files cover every case, with momentum and one-cycle.
    assert {name for v, name in FILES if v == clr_optimizers.__version__} == set(CASES)


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


@pytest.mark.parametrize(("version", "name"), FILES, ids=[f"{v}/{n}" for v, n in FILES])
def test_saved_file_loads_and_continues_its_schedule(version, name):
    written_by = MANIFESTS[version]["keras"]
    if _release(keras.version()) < _release(written_by):
        pytest.skip(f"Keras {keras.version()} cannot read files of Keras {written_by}")
    recorded = MANIFESTS[version][name]
    # As with any Keras model, a model saved under mixed precision loads its
    # LossScaleOptimizer (and its state) under that policy.
    if recorded.get("mixed_precision"):
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        with warnings.catch_warnings():
            # Keras, and this package, warn when they skip optimizer state.
            warnings.filterwarnings("error", message=".*[Ss]kipping variable loading")
            model = keras.models.load_model(SAVED / version / f"{name}.keras")
    finally:
        keras.mixed_precision.set_global_policy("float32")
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
    rates, momentums = next_rates(model, NEXT_UPDATES)
    np.testing.assert_allclose(rates, recorded["next_rates"], rtol=1e-6)
    if recorded["next_momentums"][0] is None:
        assert momentums == recorded["next_momentums"]
    else:
        np.testing.assert_allclose(momentums, recorded["next_momentums"], rtol=1e-6)
    assert opt.iterations == recorded["config"]["iterations"] + NEXT_UPDATES
    # Equal weights after the next updates also show that the slot variables
    # (Adam's moments, the momentum buffers) were restored, not rebuilt.
    for got, want in zip(model.get_weights(), recorded["weights"], strict=True):
        np.testing.assert_allclose(got, np.array(want), rtol=1e-5, atol=1e-6)
