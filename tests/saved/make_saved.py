"""Writes the saved models that `tests/test_saved_files.py` loads.

    KERAS_BACKEND=tensorflow python tests/saved/make_saved.py [VERSION]

writes `tests/saved/VERSION/` (default: the installed version) with the
package that Python imports; with `--keras-in-name`,
`tests/saved/VERSION-keras-KERAS/`, which a release also writes at the
oldest Keras the package supports (the floors job loads those). Each file is a small model trained for a few
updates with one CLR optimizer and saved as `.keras`; `manifest.json` records
what that version reported then, and the rates, momentums and weights of the
next updates. Cases that use a feature the version lacks are left out.

The files are kept: every later version must load them and continue the same
schedule. `0.1.0/` was written by the 0.1.0 release, from a checkout of it:

    git worktree add /tmp/v0.1.0 <0.1.0 commit>
    PYTHONPATH=/tmp/v0.1.0 python tests/saved/make_saved.py 0.1.0
"""

import json
import sys
import warnings
from pathlib import Path

import keras
import numpy as np

import clr_optimizers

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
import scale_functions  # noqa: E402, F401  (registers clr_tests>inverse_cycle)

NEXT_UPDATES = 3
# name: (class, clr, other arguments, and optionally what is done after
# training: a factor applied to the learning rate by assignment, as
# `ReduceLROnPlateau` does, or the arguments of `restart()`)
CASES = {
    "sgd_triangular": ("SGD", {"max_lr": 0.06, "step_size": 4}, {}),
    "sgd_rescaled": ("SGD", {"max_lr": 0.06, "step_size": 4}, {}, 0.5),
    "rmsprop_triangular2": (
        "RMSprop",
        {"max_lr": 0.01, "step_size": 2.5, "mode": "triangular2"},
        {"momentum": 0.5},
    ),
    "adagrad_exp_range": (
        "Adagrad",
        {"max_lr": 0.05, "step_size": 3, "mode": "exp_range", "gamma": 0.99},
        {},
    ),
    "adadelta_modified_triangular2": (
        "Adadelta",
        {"max_lr": 1.0, "step_size": 2, "mode": "modified_triangular2"},
        {"decay": 1e-3},
    ),
    "adam_asymmetric_momentum": (
        "Adam",
        {
            "max_lr": 0.01,
            "step_size_up": 2,
            "step_size_down": 5,
            "momentum": [0.85, 0.95],
        },
        {},
    ),
    "adamax_scale_fn": (
        "Adamax",
        {"max_lr": 0.02, "step_size": 3, "scale_fn": "clr_tests>inverse_cycle"},
        {},
    ),
    "adam_scale_fn_iterations": (
        "Adam",
        {
            "max_lr": 0.01,
            "step_size": 3,
            "scale_fn": "clr_tests>slow_decay",
            "scale_mode": "iterations",
        },
        {},
    ),
    # Under mixed_float16: the model's optimizer is a LossScaleOptimizer.
    "adam_mixed_precision": (
        "Adam",
        {"max_lr": 0.01, "step_size": 3, "mode": "exp_range", "gamma": 0.95},
        {"mixed_precision": True},
    ),
    "nadam_triangular2_restart": (
        "Nadam",
        {"max_lr": 0.02, "step_size": 2, "mode": "triangular2", "restart_every": 2},
        {},
    ),
    "nadam_one_cycle": (
        "Nadam",
        {
            "mode": "one_cycle",
            "max_lr": 0.02,
            "total_steps": 20,
            "three_phase": True,
            "momentum": [0.85, 0.95],
        },
        {},
    ),
    "sgd_momentum_restart": (
        "SGD",
        {
            "max_lr": 0.1,
            "step_size_up": 3,
            "step_size_down": 1,
            "mode": "exp_range",
            "gamma": 0.9,
            "restart_every": 2,
            "momentum": [0.8, 0.9],
        },
        {"nesterov": True},
    ),
    # Since 0.3.0: warm restarts, a warmup, a chain, a restart mid-training
    # (the restart point is optimizer state) and groups with bounds of their
    # own (also optimizer state), rescaled after training.
    "sgd_warm_restarts": (
        "SGD",
        {"mode": "warm_restarts", "max_lr": 0.05, "period": 4, "period_mult": 2},
        {"momentum": 0.9},
    ),
    "adam_chain_warmup": (
        "Adam",
        {
            "mode": "chain",
            "max_lr": 0.02,
            "policies": [
                {"step_size": 2, "warmup_steps": 3},
                {"mode": "one_cycle", "max_lr": 0.01, "total_steps": 6},
            ],
            "boundaries": [9],
        },
        {},
    ),
    "rmsprop_restarted": (
        "RMSprop",
        {"max_lr": 0.02, "step_size": 5},
        {},
        {"learning_rate": 0.002, "max_lr": 0.01, "step_size": 2},
    ),
    "sgd_groups_rescaled": (
        "SGD",
        {"max_lr": 0.05, "step_size": 3, "momentum": [0.8, 0.9]},
        {
            "groups": [
                {"layers": ["hidden"], "factor": 0.5, "name": "slow"},
                {"layers": ["out"], "learning_rate": 0.01, "max_lr": 0.08},
            ]
        },
        0.5,
    ),
}


def data(rows=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, 4)).astype("float32"), rng.normal(
        size=(rows, 1)
    ).astype("float32")


def model_with(optimizer, mixed_precision=False):
    keras.utils.set_random_seed(0)
    if mixed_precision:  # the layers keep the policy they were built with
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(3, activation="tanh", name="hidden"),
                keras.layers.Dense(1, name="out"),
            ]
        )
        model.compile(optimizer=optimizer, loss="mse")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model


def clr_optimizer(model):
    """The CLR optimizer of `model`, also inside a LossScaleOptimizer."""
    return getattr(model.optimizer, "inner_optimizer", model.optimizer)


def loss_scale(model):
    """The LossScaleOptimizer's state, if there is one."""
    if not hasattr(model.optimizer, "dynamic_scale"):
        return None
    return [
        float(model.optimizer.dynamic_scale.numpy()),
        int(model.optimizer.step_counter.numpy()),
    ]


def next_rates(model, updates):
    """Trains `updates` more updates; the rate (and momentum) of each, and
    the model's weights before them and after each."""
    x, y = data(seed=1)
    opt = clr_optimizer(model)
    rates, momentums, weights = [], [], [model.get_weights()]
    for k in range(updates):
        model.train_on_batch(x[2 * k : 2 * k + 2], y[2 * k : 2 * k + 2])
        rates.append(opt.current_lr)
        momentums.append(getattr(opt, "current_momentum", None))
        weights.append(model.get_weights())
    return rates, momentums, weights


def main(version, keras_in_name=False):
    out = HERE / (f"{version}-keras-{keras.__version__}" if keras_in_name else version)
    out.mkdir(exist_ok=True)
    manifest = {"keras": keras.__version__, "clr_optimizers": version}
    for name, (class_name, clr, kwargs, *after) in CASES.items():
        cls = getattr(clr_optimizers, class_name)
        learning_rate = (
            {} if clr.get("mode") == "one_cycle" else {"learning_rate": 0.005}
        )
        kwargs = dict(kwargs)
        mixed_precision = kwargs.pop("mixed_precision", False)
        try:
            optimizer = cls(clr=clr, **learning_rate, **kwargs)
        except (TypeError, ValueError) as error:
            print(f"skipped {name}: {error}")
            continue
        model = model_with(optimizer, mixed_precision)
        x, y = data()
        model.fit(x, y, batch_size=2, shuffle=False, verbose=0)  # 12 updates
        for change in after:  # a restart's arguments, or a factor on the rate
            if isinstance(change, dict) and not hasattr(optimizer, "restart"):
                print(f"skipped {name}: this version has no restart()")
                break
            if isinstance(change, dict):
                with warnings.catch_warnings():  # the step is built anew below
                    warnings.simplefilter("ignore")
                    optimizer.restart(**change)
                model.make_train_function(force=True)
            else:
                optimizer.learning_rate = change * float(optimizer.learning_rate)
        else:
            save(model, optimizer, name, class_name, mixed_precision, out, manifest)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def save(model, optimizer, name, class_name, mixed_precision, out, manifest):
    """Saves `model`, then records what it reports and its next updates."""
    model.save(out / f"{name}.keras")
    config = optimizer.get_config()
    scale = loss_scale(model)
    rates, momentums, _ = next_rates(model, NEXT_UPDATES)
    manifest[name] = {
        "class": class_name,
        "config": config,
        "mixed_precision": mixed_precision,
        "loss_scale": scale,
        "next_rates": rates,
        "next_momentums": momentums,
        "weights": [w.tolist() for w in model.get_weights()],
    }
    print(f"wrote {out.name}/{name}.keras")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--keras-in-name"]
    main(args[0] if args else clr_optimizers.__version__, "--keras-in-name" in sys.argv)
