"""Does the cycle pay off? CLR against constant, decayed and annealed rates.

Two real, offline problems to compare on, each with a stratified 75/25 split:

- digits: scikit-learn's handwritten digits (1,797 8x8 images, 10 classes)
  and a small CNN. Non-convex: the kind of problem cyclical rates are meant
  for.
- breast_cancer: scikit-learn's Wisconsin diagnostic data (569 cases, 30
  standardised features, binary) and logistic regression. Convex: a cycle is
  not expected to help, because there is no saddle point or poor minimum to
  leave.

For each optimizer and seed, a range test (`find_lr`, 200 batches from 1e-7
to 10) on the freshly built model gives the bounds of every rule (see
`RangeTestResult.suggestions`).
Every contender then trains the same model from the same initial weights for
the same number of epochs:

- keras_default: the stock optimizer at its default rate;
- constant:<rule>: a constant rate at the peak of each rule;
- grid:<k>: a constant rate at `3**k` times the study's peak (min_loss), for
  k = -4 ... 1; `tuned_constant` is the grid point with the best median
  final validation accuracy, and costs the whole grid's runs;
- triangular:<rule>: CLR with each rule's bounds;
- with the bounds of the rule the evidence chooses (below): time_decay (the
  study's SGD with time-based decay, from the peak, `d` = 1 / updates, so the
  rate ends at half its start), cosine_decay (Keras's `CosineDecay` from the
  peak to 0), one_cycle, modified_triangular2 and exp_range (its amplitude
  halving every 5 epochs).

All CLR contenders use half cycles of 2 epochs. SGD has momentum 0.9
throughout; the other optimizers keep their defaults. The rule: in every
(problem, optimizer) cell the four rules are ranked by the median final
validation accuracy of their constant and of their triangular runs; the rule
with the best mean rank is chosen.

The study's protocol (its Table 7), on digits with SGD and momentum 0.9:
train with time-based decay for N epochs from the Keras default rate, then
continue from the same weights for N more epochs (a) with the same decay, (b)
with triangular CLR and (c) with modified triangular2, both with the chosen
rule's bounds from the range test of the untrained model. (A range test of
the trained model is recorded as well.)

A third problem, transfer, is the study's setting (an ImageNet-pretrained
MobileNet fine-tuned with SGD and a cyclical rate), offline: Keras's
MobileNet (alpha 0.25, no weights, the digits upsampled to 32x32) is
pretrained on digits 0-4, once per seed and the same for every contender.
A new 5-way head is then fine-tuned on digits 5-9 from 25 labelled images
per class (drawn by the seed; the other 771 images validate) in two stages:
the head alone on the frozen base, then the whole network but its batch
normalization. Stage 2 compiles a new optimizer, set to the update count
where stage 1 ended, so that every schedule spans both stages (`fine_tune`).
The contenders, all SGD with momentum 0.9: the best of 4 constant rates;
time-based decay; one-cycle; triangular CLR with one rate for every layer;
the same with the pretrained base at a tenth of it (`groups`), or with
fastai's spread over three layer groups (`spread`). Their bounds come from
a range test of the network as stage 2 trains it, by the rule chosen above
(the package's default); triangular CLR with and without the base's tenth
also runs on the bounds of the study's rule, `min_loss`.

Runs are spread over worker processes of one thread each, so each run is
deterministic. Written: a JSON file with every run's validation curves and
PNGs of median validation accuracy per epoch, with the seeds' spread. A run
of some problems (`--problems`) replaces their part of an existing JSON
file and keeps the rest: the transfer problem is its "transfer" part, with
its own command, commit and versions (those of the rest are at the top).

    python benchmarks/convergence.py            # full run, about 40 minutes
    python benchmarks/convergence.py --problems transfer   # about 15 minutes
    python benchmarks/convergence.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import clr_optimizers
from clr_optimizers import find_lr

BATCH_SIZE = 32
SWEEP_MAX = 10.0  # the range test's last rate: beyond divergence on both problems
GRID = range(-4, 2)  # constant rates at 3**k times the study's peak
CLR_MODES = ("modified_triangular2", "exp_range")
FIXED = ("time_decay", "cosine_decay", "one_cycle", *CLR_MODES)
# In plots: the stock rates are grey or dashed, the cyclical ones solid.
STYLES = {
    "keras_default": {"color": "0.55", "ls": ":"},
    "tuned_constant": {"color": "black"},
    "time_decay": {"ls": "--"},
    "cosine_decay": {"ls": "--"},
}
SUMMARY = (
    "keras_default",
    "tuned_constant",
    "time_decay",
    "cosine_decay",
    "one_cycle",
    "triangular",
    *CLR_MODES,
)


# --- problems -------------------------------------------------------------


def load(problem):
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.model_selection import train_test_split

    if problem == "digits":
        data = load_digits()
        x = (data.images / 16.0).astype("float32")[..., None]
    else:
        data = load_breast_cancer()
        x = data.data.astype("float32")
    x_train, x_val, y_train, y_val = train_test_split(
        x, data.target, test_size=0.25, stratify=data.target, random_state=0
    )
    if problem == "breast_cancer":  # standardised with the training split's moments
        mean, std = x_train.mean(axis=0), x_train.std(axis=0)
        x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    return x_train, x_val, y_train, y_val


PROBLEMS = {
    "digits": {
        "description": "handwritten digits, small CNN (non-convex)",
        "target": 0.97,
        "ylim": (0.9, 0.995),
    },
    "breast_cancer": {
        "description": "breast cancer diagnosis, logistic regression (convex)",
        "target": 0.95,
        "ylim": (0.88, 0.98),
    },
}


def make_model(problem, optimizer, seed, steps_per_execution=1):
    keras.utils.set_random_seed(seed)
    if problem == "digits":
        layers = [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
        loss = "sparse_categorical_crossentropy"
    else:
        layers = [keras.Input((30,)), keras.layers.Dense(1, activation="sigmoid")]
        loss = "binary_crossentropy"
    model = keras.Sequential(layers)
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model


# --- contenders -----------------------------------------------------------


def base_args(name):
    return {"momentum": 0.9} if name == "SGD" else {}


def stock(name, learning_rate=None):
    args = base_args(name)
    if learning_rate is not None:
        args["learning_rate"] = learning_rate
    return getattr(keras.optimizers, name)(**args)


def clr_optimizer(name, base_lr, max_lr, clr, groups=None):
    args = base_args(name)
    if base_lr is not None:
        args["learning_rate"] = base_lr
    return getattr(clr_optimizers, name)(
        clr={"max_lr": max_lr, **clr}, groups=groups, **args
    )


def contender(name, kind, bounds, steps_per_epoch, epochs):
    """The optimizer of contender `kind` with `bounds` = (base, peak)."""
    base_lr, peak = bounds
    total = steps_per_epoch * epochs
    half_cycle = {"step_size": 2 * steps_per_epoch}
    schedules = keras.optimizers.schedules
    if kind == "keras_default":
        return stock(name)
    if kind == "constant":
        return stock(name, peak)
    if kind == "time_decay":
        return stock(name, schedules.InverseTimeDecay(peak, 1, 1 / total))
    if kind == "cosine_decay":
        return stock(name, schedules.CosineDecay(peak, total))
    if kind == "one_cycle":
        return clr_optimizer(
            name, None, peak, {"mode": "one_cycle", "total_steps": total}
        )
    if kind == "exp_range":
        gamma = 0.5 ** (1 / (5 * steps_per_epoch))
        return clr_optimizer(
            name, base_lr, peak, {**half_cycle, "mode": kind, "gamma": gamma}
        )
    return clr_optimizer(name, base_lr, peak, {**half_cycle, "mode": kind})


def fit(problem, data, optimizer, seed, epochs, initial_weights=None, model=None):
    x_train, x_val, y_train, y_val = data
    if model is None:
        # One epoch per execution, where Keras allows more than one update
        # (not on PyTorch): the rates are the same, the run is faster.
        torch = keras.backend.backend() == "torch"
        per_execution = 1 if torch else steps_per_epoch(data)
        model = make_model(problem, optimizer, seed, per_execution)
    if initial_weights is not None:
        model.set_weights(initial_weights)
    keras.utils.set_random_seed(seed)
    history = model.fit(
        x_train,
        y_train,
        batch_size=BATCH_SIZE,
        epochs=epochs,
        validation_data=(x_val, y_val),
        verbose=0,
    )
    return model, {
        "val_accuracy": [round(v, 6) for v in history.history["val_accuracy"]],
        "val_loss": [round(v, 6) for v in history.history["val_loss"]],
    }


def steps_per_epoch(data):
    return math.ceil(len(data[0]) / BATCH_SIZE)


def range_test(problem, data, name, seed, steps, weights=None):
    model = make_model(problem, stock(name), seed)
    if weights is not None:
        model.set_weights(weights)
    sweep = find_lr(
        model,
        data[0],
        data[2],
        batch_size=BATCH_SIZE,
        steps=steps,
        max_lr=SWEEP_MAX,
        seed=seed,
        verbose=0,
    )
    return {rule: list(bounds) for rule, bounds in sweep.suggestions.items()}


# --- units of work (one process each) --------------------------------------


def rules_unit(problem, name, seed, epochs, sweep_steps):
    """The range test, and every run that does not depend on the chosen rule."""
    data = load(problem)
    suggestions = range_test(problem, data, name, seed, sweep_steps)
    study = suggestions["min_loss"]
    plans = [("keras_default", "keras_default", (None, None))]
    plans += [(f"constant:{rule}", "constant", b) for rule, b in suggestions.items()]
    plans += [(f"grid:{k}", "constant", (None, study[1] * 3.0**k)) for k in GRID]
    plans += [
        (f"triangular:{rule}", "triangular", b) for rule, b in suggestions.items()
    ]
    return {
        "suggestions": suggestions,
        "runs": train(problem, data, name, seed, epochs, plans),
    }


def fixed_unit(problem, name, seed, epochs, bounds):
    """The contenders that take the chosen rule's bounds."""
    plans = [(kind, kind, bounds) for kind in FIXED]
    return {"runs": train(problem, load(problem), name, seed, epochs, plans)}


def train(problem, data, name, seed, epochs, plans):
    """`plans`: (key, contender kind, bounds) -> {key: curves and bounds}."""
    runs = {}
    for key, kind, bounds in plans:
        optimizer = contender(name, kind, bounds, steps_per_epoch(data), epochs)
        runs[key] = fit(problem, data, optimizer, seed, epochs)[1]
        runs[key]["bounds"] = list(bounds)
    return runs


def protocol_unit(seed, epochs, sweep_steps, rule):
    """The study's Table 7: decay for `epochs`, then three continuations."""
    problem, name = "digits", "SGD"
    data = load(problem)
    spe = steps_per_epoch(data)
    # The bounds: the range test of the untrained model, as in the comparison.
    # One of the trained model is recorded too: its loss only rises from the
    # start of the sweep, so it suggests rates far too low to train with.
    bounds = range_test(problem, data, name, seed, sweep_steps)[rule]
    decay = keras.optimizers.schedules.InverseTimeDecay(0.01, 1, 1 / (2 * epochs * spe))
    model, first = fit(problem, data, stock(name, decay), seed, epochs)
    trained = model.get_weights()
    trained_bounds = range_test(problem, data, name, seed, sweep_steps, trained)[rule]
    # (a) the same optimizer goes on: its count, momentum and decay continue.
    _, decayed = fit(problem, data, None, seed, epochs, model=model)
    after = {"decay": decayed}
    for mode in ("triangular", "modified_triangular2"):
        optimizer = contender(name, mode, bounds, spe, epochs)
        after[mode] = fit(problem, data, optimizer, seed, epochs, trained)[1]
    return {
        "first": first,
        "after": after,
        "bounds": bounds,
        "trained_model_bounds": trained_bounds,
    }


# --- transfer learning ------------------------------------------------------

TRANSFER = {
    "description": (
        "digits 5-9 from 25 labels per class, a network pretrained on digits 0-4"
    ),
    "labels_per_class": 25,
    "batch_size": 16,
    "pretrain_epochs": 30,
    "pretrain_learning_rate": 0.02,
    "stage_epochs": [4, 24],  # stage 1 (the head alone), stage 2 (all but BN)
    "target": 0.9,
}
# The rule of the bounds: the one chosen on digits and breast_cancer, the
# package's default. The grid's constants are 3**k times the study's peak,
# as on digits; the pair on `min_loss` bounds asks whether what discriminative
# rates do depends on the height of the rate.
TRANSFER_RULE = "minimum"
TRANSFER_GRID = (-2, -1, 0, 1)
BASE_FACTOR = 0.1  # clr_discriminative: the pretrained base's share of the rate
SPREAD_RATIO = 100  # clr_spread: fastai's lr_mult, head rate over the first's
TRANSFER_FIXED = ("time_decay", "one_cycle", "clr", "clr_discriminative", "clr_spread")
TRANSFER_STUDY = ("clr:min_loss", "clr_discriminative:min_loss")
TRANSFER_SUMMARY = ("tuned_constant", *TRANSFER_FIXED, *TRANSFER_STUDY)
TRANSFER_STYLES = {
    "tuned_constant": {"color": "black"},
    "time_decay": {"ls": "--"},
    "clr:min_loss": {"ls": ":"},
    "clr_discriminative:min_loss": {"ls": ":"},
}


def load_transfer(seed):
    """(source, target) splits: digits 0-4, 75/25 as the digits problem splits
    them; digits 5-9 (labelled 0-4), `labels_per_class` of each for training,
    drawn by `seed`, and the rest for validation."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images / 16.0).astype("float32")[..., None]
    source, target = data.target < 5, data.target >= 5
    source_split = train_test_split(
        x[source],
        data.target[source],
        test_size=0.25,
        stratify=data.target[source],
        random_state=0,
    )
    labels = data.target[target] - 5
    target_split = train_test_split(
        x[target],
        labels,
        train_size=5 * TRANSFER["labels_per_class"],
        stratify=labels,
        random_state=seed,
    )
    return source_split, target_split


def make_base(network):
    """The body to pretrain: Keras's MobileNet (alpha 0.25, no weights) on
    the digits upsampled to 32x32, its smallest input; or, for smoke runs
    (`"small"`), two depthwise separable convolutions with batch
    normalization, which trace in a fraction of the time."""
    if network == "mobilenet":
        return keras.applications.MobileNet(
            input_shape=(32, 32, 1),
            alpha=0.25,
            include_top=False,
            weights=None,
            pooling="avg",
            name="base",
        )
    inputs = keras.Input((8, 8, 1))
    x = inputs
    for i, filters in enumerate((8, 16)):
        x = keras.layers.SeparableConv2D(filters, 3, padding="same", name=f"sep_{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn_{i}")(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, x, name="base")


def with_head(base, network, name):
    """`base` under a new 5-way softmax head named `name`."""
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Resizing(32, 32)(inputs) if network == "mobilenet" else inputs
    outputs = keras.layers.Dense(5, activation="softmax", name=name)(base(x))
    return keras.Model(inputs, outputs)


def unfreeze(base):
    """Everything trains but batch normalization, which keeps the
    pretraining's statistics and runs in inference mode, as when frozen:
    125 images in batches of 16 are too few to estimate them again."""
    base.trainable = True
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def fit_stage(model, optimizer, data, epochs, seed):
    """Compiles `model` with `optimizer` and trains it for `epochs`."""
    x_train, x_val, y_train, y_val = data
    batch_size = TRANSFER["batch_size"]
    torch = keras.backend.backend() == "torch"
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=1 if torch else math.ceil(len(x_train) / batch_size),
    )
    keras.utils.set_random_seed(seed)
    history = model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=(x_val, y_val),
        verbose=0,
    )
    return history.history


def fine_tune(model, base, optimizers, data, epochs, seed):
    """The recipe: two stages, and the update count carried across them.

    Stage 1 trains the new head on the frozen base (whose batch
    normalization then runs in inference mode) with `optimizers[0]()`.
    Stage 2 unfreezes the base, batch normalization aside, and trains the
    whole network with `optimizers[1]()`: a new optimizer, since a built one
    takes no new variables, and unfreezing means compiling again. Before it
    trains, it is set to the update count where stage 1 ended, so that a
    schedule over both stages goes on from its position in the cycle (a
    decay from what it had decayed to) instead of starting again. Nothing
    else carries across: the momentum starts from zero. Returns the
    validation curves of both stages, end to end, and the update count at
    the end of each stage.
    """
    base.trainable = False
    curves = [fit_stage(model, optimizers[0](), data, epochs[0], seed)]
    updates = [int(keras.ops.convert_to_numpy(model.optimizer.iterations))]
    unfreeze(base)
    optimizer = optimizers[1]()
    optimizer.iterations.assign(updates[0])
    curves.append(fit_stage(model, optimizer, data, epochs[1], seed))
    updates.append(int(keras.ops.convert_to_numpy(optimizer.iterations)))
    run = {
        key: [round(v, 6) for curve in curves for v in curve[key]]
        for key in ("val_accuracy", "val_loss")
    }
    return {**run, "updates": updates}


def transfer_optimizers(kind, bounds, model, base, spe, epochs):
    """Functions that make each stage's optimizer for contender `kind`, SGD
    with momentum 0.9; `bounds` = (floor, peak), `spe` = updates per epoch.
    Every schedule spans both stages; CLR has half cycles of 2 epochs."""
    floor, peak = bounds
    total = spe * sum(epochs)
    if kind == "constant":
        return (lambda: stock("SGD", peak),) * 2
    if kind == "time_decay":  # from the peak to half of it, as on digits

        def decayed():
            schedule = keras.optimizers.schedules.InverseTimeDecay(peak, 1, 1 / total)
            return stock("SGD", schedule)

        return (decayed,) * 2
    if kind == "one_cycle":
        cycle = {"mode": "one_cycle", "total_steps": total}
        return (lambda: clr_optimizer("SGD", None, peak, cycle),) * 2
    half_cycle = {"step_size": 2 * spe}
    groups = None  # clr: one rate for every layer
    if kind == "clr_discriminative":
        groups = [{"layers": base, "factor": BASE_FACTOR, "name": "base"}]
    elif kind == "clr_spread":
        # The base's trainable layers, input side first, in two halves
        # (MobileNet: the stem and blocks 1-6; blocks 7-13), then the head.
        layers = [layer for layer in base.layers if layer.trainable_weights]
        half = len(layers) // 2
        groups = clr_optimizers.spread(
            [layers[:half], layers[half:], model.get_layer("head")],
            peak / SPREAD_RATIO,
            peak,
            names=["early", "late", "head"],
        )
    # Stage 1 trains the head alone: no groups, which would select nothing.
    return (
        lambda: clr_optimizer("SGD", floor, peak, half_cycle),
        lambda: clr_optimizer("SGD", floor, peak, half_cycle, groups),
    )


def transfer_model(network, weights, seed):
    """The pretrained base under a new head, initialised by `seed`; the base
    unfrozen as in stage 2."""
    base = make_base(network)
    base.set_weights(weights)
    keras.utils.set_random_seed(seed)
    model = with_head(base, network, "head")
    unfreeze(base)
    return model, base


def pretrain_unit(seed, network, epochs, sweep_steps):
    """The set-up, the same for every contender: the base pretrained on
    digits 0-4 with Keras's SGD at a constant rate, and the range test of
    the network as stage 2 trains it."""
    keras.backend.clear_session()
    source, target = load_transfer(seed)
    keras.utils.set_random_seed(seed)
    base = make_base(network)
    model = with_head(base, network, "source_head")
    torch = keras.backend.backend() == "torch"
    model.compile(
        optimizer=stock("SGD", TRANSFER["pretrain_learning_rate"]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=1 if torch else steps_per_epoch(source),
    )
    history = model.fit(
        source[0],
        source[2],
        batch_size=BATCH_SIZE,
        epochs=epochs,
        validation_data=(source[1], source[3]),
        verbose=0,
    ).history
    weights = base.get_weights()
    # The sweep starts from the pretrained base and the new head as
    # initialised, everything but batch normalization trainable: as on
    # digits, where a trained model's sweep suggests rates too low to train.
    model = transfer_model(network, weights, seed)[0]
    model.compile(optimizer=stock("SGD"), loss="sparse_categorical_crossentropy")
    sweep = find_lr(
        model,
        target[0],
        target[2],
        batch_size=TRANSFER["batch_size"],
        steps=sweep_steps,
        max_lr=SWEEP_MAX,
        seed=seed,
        verbose=0,
    )
    return {
        "weights": weights,
        "pretraining": {
            "val_accuracy": [round(v, 6) for v in history["val_accuracy"]],
            "val_loss": [round(v, 6) for v in history["val_loss"]],
        },
        "suggestions": {r: list(b) for r, b in sweep.suggestions.items()},
    }


def transfer_plans(suggestions):
    """(contender, kind, bounds) of every fine-tuning run of a seed."""
    study = suggestions["min_loss"]
    plans = [
        (f"grid:{k}", "constant", [None, study[1] * 3.0**k]) for k in TRANSFER_GRID
    ]
    plans += [(kind, kind, suggestions[TRANSFER_RULE]) for kind in TRANSFER_FIXED]
    plans += [(key, key.split(":")[0], study) for key in TRANSFER_STUDY]
    return plans


def transfer_unit(seed, network, weights, epochs, kind, bounds):
    """One contender's fine-tuning, from the seed's pretrained base."""
    keras.backend.clear_session()
    data = load_transfer(seed)[1]
    model, base = transfer_model(network, weights, seed)
    spe = math.ceil(len(data[0]) / TRANSFER["batch_size"])
    optimizers = transfer_optimizers(kind, bounds, model, base, spe, epochs)
    run = fine_tune(model, base, optimizers, data, epochs, seed)
    return {**run, "bounds": list(bounds)}


def init_worker():
    # One thread per process: runs are deterministic, and the processes share
    # the cores between them.
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)


def run_all(jobs, workers):
    """`jobs`: {key: (function, args)} -> {key: result}, in `workers` processes."""
    if workers == 1:
        init_worker()
        return {key: function(*args) for key, (function, args) in jobs.items()}
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=init_worker
    ) as pool:
        futures = {pool.submit(f, *args): key for key, (f, args) in jobs.items()}
        results = {}
        for future in concurrent.futures.as_completed(futures):
            results[futures[future]] = future.result()
            print(".", end="", flush=True)
        print()
        return results


# --- summaries --------------------------------------------------------------


def epochs_to(accuracies, target):
    reached = [i + 1 for i, a in enumerate(accuracies) if a >= target]
    return reached[0] if reached else math.inf


def spread(values):
    """Median, first and third quartiles, each a value of a seed (nearest
    rank), so that inf (never reached) stays inf."""
    q1, median, q3 = np.quantile(
        np.array(values, dtype=float), [0.25, 0.5, 0.75], method="nearest"
    )
    return {"median": float(median), "q1": float(q1), "q3": float(q3)}


def summarise(runs, target):
    """Over seeds: epochs to the target, best and final validation accuracy,
    final validation loss."""
    return {
        "epochs_to_target": spread(
            [epochs_to(r["val_accuracy"], target) for r in runs]
        ),
        "best_val_accuracy": spread([max(r["val_accuracy"]) for r in runs]),
        "final_val_accuracy": spread([r["val_accuracy"][-1] for r in runs]),
        "final_val_loss": spread([r["val_loss"][-1] for r in runs]),
    }


def rank(values):
    """Ranks, 1 for the highest; ties share their mean rank."""
    order = sorted(values, reverse=True)
    return [
        statistics.mean(i + 1 for i, v in enumerate(order) if v == x) for x in values
    ]


def choose_rule(cells, rules):
    """`cells`: {(problem, optimizer): {key: summary}} -> (rule, mean ranks)."""
    ranks = {rule: [] for rule in rules}
    for summaries in cells.values():
        for kind in ("constant", "triangular"):
            scores = [
                summaries[f"{kind}:{rule}"]["final_val_accuracy"]["median"]
                for rule in rules
            ]
            for rule, r in zip(rules, rank(scores)):
                ranks[rule].append(r)
    means = {rule: statistics.mean(r) for rule, r in ranks.items()}
    return min(means, key=means.get), means


def tuned_key(summaries, grid=tuple(f"grid:{k}" for k in GRID)):
    """The grid point with the best median final validation accuracy (then
    best accuracy, then the lowest rate)."""
    return max(
        grid,
        key=lambda key: (
            summaries[key]["final_val_accuracy"]["median"],
            summaries[key]["best_val_accuracy"]["median"],
        ),
    )


def cell(summary, field, digits=3):
    s = summary[field]
    if field == "epochs_to_target":

        def show(v):
            return "never" if math.isinf(v) else f"{v:g}"

        return f"{show(s['median'])} [{show(s['q1'])}-{show(s['q3'])}]"
    return f"{s['median']:.{digits}f} [{s['q1']:.{digits}f}-{s['q3']:.{digits}f}]"


def finite(value):
    """JSON has no infinity: a never-reached target is written as null."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return None if isinstance(value, float) and math.isinf(value) else value


# --- main -----------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sweep-steps", type=int, default=200)
    parser.add_argument("--optimizers", default="SGD,RMSprop,Adam")
    parser.add_argument(
        "--problems",
        default=",".join([*PROBLEMS, "transfer"]),
        help="the problems to run; the JSON file keeps the parts not run",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", default="benchmarks/convergence.json")
    parser.add_argument("--plot", default="benchmarks/convergence.png")
    parser.add_argument(
        "--transfer-plot", default="benchmarks/convergence_transfer.png"
    )
    args = parser.parse_args(argv)
    problems = args.problems.split(",")
    unknown = set(problems) - {*PROBLEMS, "transfer"}
    if unknown:
        parser.error(f"unknown problems: {', '.join(sorted(unknown))}")
    optimizers = args.optimizers.split(",")[: 1 if args.quick else None]
    epochs, seeds, sweep_steps, workers = (
        (2, 1, 30, 1)
        if args.quick
        else (args.epochs, args.seeds, args.sweep_steps, args.workers)
    )
    print(
        f"clr-optimizers {clr_optimizers.__version__}, Keras {keras.__version__} "
        f"({keras.backend.backend()}), {date.today()}: {', '.join(problems)}; "
        f"{seeds} seed(s); {workers} worker process(es) of one thread each"
    )
    result = {}
    if set(problems) != {*PROBLEMS, "transfer"} and os.path.exists(args.json):
        with open(args.json) as f:
            result = json.load(f)  # the parts not run are kept
    compared = {p: about for p, about in PROBLEMS.items() if p in problems}
    command = " ".join(["python", "benchmarks/convergence.py", *(argv or sys.argv[1:])])
    if compared:
        kept = {"transfer": result["transfer"]} if "transfer" in result else {}
        runs = (epochs, seeds, sweep_steps, workers)
        result = {
            "command": command,
            "commit": git_commit(),  # of the code the runs ran
            "versions": versions(),
            **compare(compared, optimizers, *runs, args.plot),
            **kept,
        }
    if "transfer" in problems:
        result["transfer"] = transfer(args.quick, seeds, sweep_steps, workers, command)
        plot_transfer(args.transfer_plot, result["transfer"])
    with open(args.json, "w") as f:
        json.dump(result, f)
    print(f"Written to {args.json}")


def compare(problems, optimizers, epochs, seeds, sweep_steps, workers, plot_path):
    """Digits and breast cancer (those of them in `problems`): every
    contender, optimizer and seed, and the study's protocol with digits."""
    started = time.perf_counter()
    print(f"\n{', '.join(optimizers)}; {epochs} epochs, batch {BATCH_SIZE}")
    for problem, about in problems.items():
        data = load(problem)
        about.update(
            train=len(data[0]),
            validation=len(data[1]),
            steps_per_epoch=steps_per_epoch(data),
        )
        print(
            f"  {problem}: {about['description']}; {about['train']} train / "
            f"{about['validation']} validation, {about['steps_per_epoch']} updates "
            f"per epoch; target validation accuracy {about['target']}"
        )
    units = [(p, n, s) for p in problems for n in optimizers for s in range(seeds)]

    print("\nRange tests, constants, the grid and triangular CLR by every rule")
    first = run_all(
        {u: (rules_unit, (*u, epochs, sweep_steps)) for u in units}, workers
    )
    cells = {}
    for p, n in {(p, n) for p, n, _ in units}:
        per_seed = [first[(p, n, s)]["runs"] for s in range(seeds)]
        cells[(p, n)] = {
            key: summarise([runs[key] for runs in per_seed], problems[p]["target"])
            for key in per_seed[0]
        }
    rules = list(first[units[0]]["suggestions"])  # RangeTestResult.suggestions
    rule, mean_ranks = choose_rule(cells, rules)
    print(
        "Mean rank of each rule (1 is best): "
        + ", ".join(f"{r} {m:.2f}" for r, m in mean_ranks.items())
        + f"; chosen: {rule}"
    )

    print(
        "\nDecays, one-cycle and the other CLR modes, with that rule's bounds;"
        " the study's protocol"
    )
    jobs = {u: (fixed_unit, (*u, epochs, first[u]["suggestions"][rule])) for u in units}
    protocol_epochs = max(1, epochs // 2)
    if "digits" in problems:
        jobs.update(
            {
                ("protocol", s): (
                    protocol_unit,
                    (s, protocol_epochs, sweep_steps, rule),
                )
                for s in range(seeds)
            }
        )
    second = run_all(jobs, workers)
    for p, n in cells:
        per_seed = [second[(p, n, s)]["runs"] for s in range(seeds)]
        for key in FIXED:
            cells[(p, n)][key] = summarise(
                [runs[key] for runs in per_seed], problems[p]["target"]
            )
        tuned = tuned_key(cells[(p, n)])
        cells[(p, n)]["tuned_constant"] = {**cells[(p, n)][tuned], "grid_point": tuned}
        cells[(p, n)]["triangular"] = cells[(p, n)][f"triangular:{rule}"]
    wall = time.perf_counter() - started

    report(problems, optimizers, epochs, seeds, rule, mean_ranks, cells, first)
    protocol = [second[("protocol", s)] for s in range(seeds) if "digits" in problems]
    if protocol:
        report_protocol(protocol, protocol_epochs)
    print(f"\nWall time {wall / 60:.1f} min")

    unit_runs = {u: {**first[u]["runs"], **second[u]["runs"]} for u in units}
    runs = [
        {"problem": p, "optimizer": n, "seed": s, "contender": key, **run}
        for (p, n, s), by_key in unit_runs.items()
        for key, run in by_key.items()
    ]
    result = {
        "date": str(date.today()),
        "clr_optimizers": clr_optimizers.__version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "epochs": epochs,
        "seeds": seeds,
        "sweep_steps": sweep_steps,
        "workers": workers,
        "threads_per_worker": 1,
        "wall_seconds": round(wall),
        "problems": problems,
        "rule": rule,
        "rule_mean_ranks": mean_ranks,
        "suggestions": [
            {"problem": p, "optimizer": n, "seed": s, **first[(p, n, s)]["suggestions"]}
            for p, n, s in units
        ],
        "summaries": [
            {"problem": p, "optimizer": n, "contender": key, **finite(summary)}
            for (p, n), summaries in sorted(cells.items())
            for key, summary in summaries.items()
        ],
        "protocol": {"epochs": protocol_epochs, "runs": protocol},
        "runs": runs,
    }
    plot(plot_path, problems, cells, unit_runs, optimizers, seeds, epochs, rule)
    return result


def transfer(quick, seeds, sweep_steps, workers, command):
    """The transfer problem: its set-up per seed, then every contender's
    fine-tuning; the JSON file's "transfer" part."""
    started, commit = time.perf_counter(), git_commit()  # what the runs run
    network = "small" if quick else "mobilenet"
    pretrain_epochs = 2 if quick else TRANSFER["pretrain_epochs"]
    epochs = [1, 1] if quick else TRANSFER["stage_epochs"]
    data = load_transfer(0)[1]
    setting = {
        **TRANSFER,
        "network": network,
        "pretrain_epochs": pretrain_epochs,
        "stage_epochs": epochs,
        "train": len(data[0]),
        "validation": len(data[1]),
        "steps_per_epoch": math.ceil(len(data[0]) / TRANSFER["batch_size"]),
        "rule": TRANSFER_RULE,
        "grid": list(TRANSFER_GRID),
        "base_factor": BASE_FACTOR,
        "spread_ratio": SPREAD_RATIO,
    }
    print(
        f"\ntransfer: {TRANSFER['description']} ({network}); {setting['train']} "
        f"train / {setting['validation']} validation, batch "
        f"{TRANSFER['batch_size']}, {setting['steps_per_epoch']} updates per "
        f"epoch; {epochs[0]} + {epochs[1]} epochs; target validation accuracy "
        f"{TRANSFER['target']}"
    )
    print("Pretraining on digits 0-4 and the range test of the stage-2 network")
    jobs = {
        s: (pretrain_unit, (s, network, pretrain_epochs, sweep_steps))
        for s in range(seeds)
    }
    first = run_all(jobs, workers)
    print("Fine-tuning: every contender")
    jobs = {
        (s, key): (transfer_unit, (s, network, first[s]["weights"], epochs, *plan))
        for s in range(seeds)
        for key, *plan in transfer_plans(first[s]["suggestions"])
    }
    second = run_all(jobs, workers)
    keys = [key for key, *_ in transfer_plans(first[0]["suggestions"])]
    summaries = {
        key: summarise([second[(s, key)] for s in range(seeds)], TRANSFER["target"])
        for key in keys
    }
    for key, summary in summaries.items():  # the head alone, on the frozen base
        summary["stage_1_val_accuracy"] = spread(
            [second[(s, key)]["val_accuracy"][epochs[0] - 1] for s in range(seeds)]
        )
    grid = [f"grid:{k}" for k in TRANSFER_GRID]
    tuned = tuned_key(summaries, grid)
    summaries["tuned_constant"] = {**summaries[tuned], "grid_point": tuned}
    wall = time.perf_counter() - started
    result = {
        "date": str(date.today()),
        "command": command,
        "commit": commit,
        "versions": versions(),
        "backend": keras.backend.backend(),
        "setting": setting,
        "seeds": seeds,
        "sweep_steps": sweep_steps,
        "workers": workers,
        "threads_per_worker": 1,
        "wall_seconds": round(wall),
        "pretraining": [{"seed": s, **first[s]["pretraining"]} for s in range(seeds)],
        "suggestions": [{"seed": s, **first[s]["suggestions"]} for s in range(seeds)],
        "summaries": [
            {"contender": key, **finite(summary)} for key, summary in summaries.items()
        ],
        "runs": [
            {"seed": s, "contender": key, **second[(s, key)]}
            for s in range(seeds)
            for key in keys
        ],
    }
    report_transfer(result, summaries)
    print(f"\nWall time {wall / 60:.1f} min")
    return result


def git_commit():
    """The checkout's commit, marked `+changes` when the code that runs (the
    package and this script) differs from it, or None outside a checkout.
    (The version is read from the installed package, `versions()`.)"""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit, changes = (
            subprocess.run(
                ["git", *command],
                cwd=here,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            for command in (
                ["rev-parse", "HEAD"],
                ["status", "--porcelain", "--", "../clr_optimizers", __file__],
            )
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+changes" if changes else "")


def versions():
    import sklearn

    found = {
        "clr_optimizers": clr_optimizers.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
    }
    backend = keras.backend.backend()
    found[backend] = sys.modules[backend].__version__
    return found


def report(problems, optimizers, epochs, seeds, rule, mean_ranks, cells, first):
    for problem, about in problems.items():
        print(
            f"\n== {problem}: median [IQR] over {seeds} seed(s); target "
            f"{about['target']}; {epochs} epochs"
        )
        for name in optimizers:
            summaries = cells[(problem, name)]
            peaks = [
                first[(problem, name, s)]["suggestions"][rule][1] for s in range(seeds)
            ]
            tuned = summaries["tuned_constant"]["grid_point"]
            print(
                f"\n{name}: peak by '{rule}' {statistics.median(peaks):.3g} (median); "
                f"tuned constant = {tuned} (study's peak x 3**{tuned.split(':')[1]}), "
                f"chosen from {len(GRID)} runs per seed"
            )
            print(
                f"  {'contender':<22}{'epochs to target':>20}{'final val acc':>22}"
                f"{'best val acc':>22}{'final val loss':>22}"
            )
            for key in SUMMARY:
                s = summaries[key]
                fields = ("final_val_accuracy", "best_val_accuracy", "final_val_loss")
                print(
                    f"  {key:<22}{cell(s, 'epochs_to_target'):>20}"
                    + "".join(f"{cell(s, field):>22}" for field in fields)
                )
            print(
                "  by rule: peak (median), then final val acc of constant / triangular"
            )
            for r in mean_ranks:
                peak = statistics.median(
                    first[(problem, name, s)]["suggestions"][r][1] for s in range(seeds)
                )
                print(
                    f"  {r:<10}{peak:>10.3g}"
                    + "".join(
                        f"{cell(summaries[f'{kind}:{r}'], 'final_val_accuracy'):>22}"
                        for kind in ("constant", "triangular")
                    )
                )
    print(
        "\nepochs to target: the first epoch at or above the target ('never': not in "
        "the budget). Rule ranks: "
        + ", ".join(f"{r} {m:.2f}" for r, m in mean_ranks.items())
    )


def report_protocol(protocol, epochs):
    first = [run["first"]["val_accuracy"][-1] for run in protocol]
    print(
        f"\n== The study's protocol (Table 7): digits, SGD momentum 0.9; time-based "
        f"decay from 0.01 for {epochs} epochs, then {epochs} more"
    )
    peaks = [run["bounds"][1] for run in protocol]
    trained = [run["trained_model_bounds"][1] for run in protocol]
    print(
        f"  CLR peak (median): {statistics.median(peaks):.3g}; the range test of the "
        f"trained model would give {statistics.median(trained):.3g}"
    )
    print(
        f"  before: validation accuracy {statistics.median(first):.3f} "
        f"[{min(first):.3f}-{max(first):.3f}] (median [min-max])"
    )
    for key in ("decay", "triangular", "modified_triangular2"):
        curves = [run["after"][key]["val_accuracy"] for run in protocol]
        finals = [c[-1] for c in curves]
        bests = [max(c) for c in curves]
        at = [c.index(max(c)) + 1 for c in curves]
        print(
            f"  after, {key:<22} final {statistics.median(finals):.3f} "
            f"[{min(finals):.3f}-{max(finals):.3f}], "
            f"best {statistics.median(bests):.3f} at epoch {statistics.median(at):g}"
        )


def plot(path, problems, cells, unit_runs, optimizers, seeds, epochs, rule):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("matplotlib is not installed: no plot.")
        return
    figure = Figure(figsize=(4.2 * len(optimizers), 7.5), layout="constrained")
    axes = figure.subplots(len(problems), len(optimizers), sharex=True, squeeze=False)
    x = np.arange(1, epochs + 1)
    for row, problem in zip(axes, problems):
        for ax, name in zip(row, optimizers):
            summaries = cells[(problem, name)]
            keys = {key: key for key in SUMMARY}
            keys["tuned_constant"] = summaries["tuned_constant"]["grid_point"]
            keys["triangular"] = f"triangular:{rule}"
            for label, key in keys.items():
                style = STYLES.get(label, {})
                curves = np.array(
                    [
                        unit_runs[(problem, name, s)][key]["val_accuracy"]
                        for s in range(seeds)
                    ]
                )
                q1, median, q3 = np.quantile(curves, [0.25, 0.5, 0.75], axis=0)
                (line,) = ax.plot(x, median, label=label, lw=1.2, **style)
                ax.fill_between(x, q1, q3, color=line.get_color(), alpha=0.15, lw=0)
            ax.axhline(problems[problem]["target"], color="0.5", lw=0.8, ls=":")
            ax.set_title(f"{problem}, {name}")
            ax.set_ylim(*problems[problem]["ylim"])
            ax.grid(alpha=0.3)
        row[0].set_ylabel("validation accuracy")
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    axes[0][0].legend(fontsize=7, loc="lower right")
    figure.suptitle(
        f"Median validation accuracy over {seeds} seeds (bands: quartiles); "
        f"peaks by the range test's '{rule}' rule"
    )
    figure.savefig(path, dpi=100)
    print(f"Plot written to {path}")


def report_transfer(result, summaries):
    setting, seeds = result["setting"], result["seeds"]
    epochs = setting["stage_epochs"]
    pretrained = ", ".join(
        f"{run['val_accuracy'][-1]:.3f}" for run in result["pretraining"]
    )
    peaks = {
        rule: statistics.median(s[rule][1] for s in result["suggestions"])
        for rule in (TRANSFER_RULE, "min_loss")
    }
    tuned = summaries["tuned_constant"]["grid_point"]
    print(
        f"\n== transfer: median [IQR] over {seeds} seed(s); target "
        f"{setting['target']}; {epochs[0]} + {epochs[1]} epochs\n"
        f"pretrained on digits 0-4: validation accuracy {pretrained} (by seed); "
        f"peak by "
        f"'{TRANSFER_RULE}' {peaks[TRANSFER_RULE]:.3g}, by 'min_loss' "
        f"{peaks['min_loss']:.3g} (medians); tuned constant = {tuned} (the "
        f"'min_loss' peak x 3**{tuned.split(':')[1]}), chosen from "
        f"{len(TRANSFER_GRID)} runs per seed"
    )
    print(
        f"  {'contender':<30}{'epochs to target':>20}{'after stage 1':>22}"
        f"{'final val acc':>22}{'best val acc':>22}{'final val loss':>22}"
    )
    fields = (
        "epochs_to_target",
        "stage_1_val_accuracy",
        "final_val_accuracy",
        "best_val_accuracy",
        "final_val_loss",
    )
    for key in TRANSFER_SUMMARY:
        s = summaries[key]
        print(
            f"  {key:<30}{cell(s, fields[0]):>20}"
            + "".join(f"{cell(s, field):>22}" for field in fields[1:])
        )


def plot_transfer(path, result):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("matplotlib is not installed: no plot.")
        return
    setting, seeds = result["setting"], result["seeds"]
    summaries = {s["contender"]: s for s in result["summaries"]}
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.subplots()
    epochs = setting["stage_epochs"]
    x = np.arange(1, sum(epochs) + 1)
    for label in TRANSFER_SUMMARY:
        key = summaries[label].get("grid_point") or label
        curves = np.array(
            [run["val_accuracy"] for run in result["runs"] if run["contender"] == key]
        )
        q1, median, q3 = np.quantile(curves, [0.25, 0.5, 0.75], axis=0)
        style = TRANSFER_STYLES.get(label, {})
        (line,) = ax.plot(x, median, label=label, lw=1.2, **style)
        ax.fill_between(x, q1, q3, color=line.get_color(), alpha=0.12, lw=0)
    ax.axvline(epochs[0] + 0.5, color="0.5", lw=0.8)
    ax.axhline(setting["target"], color="0.5", lw=0.8, ls=":")
    ax.set_xlabel(f"epoch (stage 1: the head alone, epochs 1-{epochs[0]})")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(
        f"Fine-tuning on digits 5-9, {setting['train']} labels: median over "
        f"{seeds} seeds (bands: quartiles)",
        fontsize=9,
    )
    figure.savefig(path, dpi=100)
    print(f"Plot written to {path}")


if __name__ == "__main__":
    sys.exit(main())
