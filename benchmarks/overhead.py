"""What the cyclical schedule costs per training step.

Times one epoch of `model.fit` per repetition for each contender, interleaved
round by round (in a new random order each round) in this one process, the
first round discarded as warm-up, and reports medians and the ratio to the
stock optimizer:

- stock: the stock Keras optimizer at a constant rate;
- clr: the same optimizer from clr_optimizers with a triangular cycle;
- clr_momentum: the same, also cycling the momentum (`momentum` of SGD and
  RMSprop, which the stock optimizer here does not use; `beta_1` of the Adam
  family, which it does), for the optimizers that have one;
- callback: the stock optimizer with a per-batch callback that sets the rate
  from a Python counter, the way the 2017 CLR callback worked;
- keras_schedule: the stock optimizer driven by Keras's own in-graph
  `CosineDecay` schedule, for what any in-graph schedule costs;
- monitor: clr with a `LearningRateMonitor` recording every update's rate,
  whose cost should be within noise of clr alone.

Also, when PyTorch is installed: plain `torch.optim.SGD` on the same small
model with and without `torch.optim.lr_scheduler.CyclicLR`, for what a
scheduler's overhead ratio is elsewhere.

    python benchmarks/overhead.py            # full run, several minutes
    python benchmarks/overhead.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from datetime import date

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import clr_optimizers

BASE_LR, MAX_LR = 0.01, 0.06
MODES = {
    "graph": {},
    "jit_compile": {"jit_compile": True},
    "steps_per_execution=32": {"steps_per_execution": 32},
}


class CallbackCLR(keras.callbacks.Callback):
    """The 2017 approach: a Python counter and an assignment before each batch."""

    def __init__(self, step_size):
        super().__init__()
        self.step_size = step_size
        self.n = 0

    def on_train_batch_begin(self, batch, logs=None):
        cycle = np.floor(1 + self.n / (2 * self.step_size))
        x = abs(self.n / self.step_size - 2 * cycle + 1)
        self.model.optimizer.learning_rate = BASE_LR + (MAX_LR - BASE_LR) * max(
            0, 1 - x
        )
        self.n += 1


def reference_model():
    inputs = keras.Input((15,))
    hidden = keras.layers.Dense(10, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))


def mobilenet():
    return keras.applications.MobileNet(
        input_shape=(32, 32, 3), weights=None, classes=10, alpha=0.5
    )


def many_layers():
    """200 small layers: the schedule is computed once per step, not per variable."""
    inputs = keras.Input((8,))
    x = inputs
    for _ in range(200):
        x = keras.layers.Dense(8, activation="tanh")(x)
    return keras.Model(inputs, keras.layers.Dense(1)(x))


WORKLOADS = {
    # name: (model builder, input shape, loss, batch size, steps per repetition)
    "reference 15-10-1": (reference_model, (15,), "binary_crossentropy", 20, 1000),
    "MobileNet 32x32": (
        mobilenet,
        (32, 32, 3),
        "sparse_categorical_crossentropy",
        32,
        20,
    ),
    "200 dense layers": (many_layers, (8,), "mse", 32, 200),
}


def contenders(step_size, optimizer="SGD"):
    stock = getattr(keras.optimizers, optimizer)
    clr = {"max_lr": MAX_LR, "step_size": step_size}
    found = {
        "stock": (lambda: stock(BASE_LR), []),
        "clr": (lambda: getattr(clr_optimizers, optimizer)(BASE_LR, clr=clr), []),
        "callback": (lambda: stock(BASE_LR), [CallbackCLR(step_size)]),
        "monitor": (
            lambda: getattr(clr_optimizers, optimizer)(BASE_LR, clr=clr),
            [clr_optimizers.LearningRateMonitor()],
        ),
        "keras_schedule": (
            lambda: stock(
                keras.optimizers.schedules.CosineDecay(BASE_LR, decay_steps=step_size)
            ),
            [],
        ),
    }
    cls = getattr(clr_optimizers, optimizer)
    try:  # cycling the momentum (beta_1): one more variable, set every update
        cls(BASE_LR, clr={**clr, "momentum": (0.85, 0.95)})
    except ValueError:  # Adagrad, Adadelta: no momentum
        pass
    else:
        found["clr_momentum"] = (
            lambda: cls(BASE_LR, clr={**clr, "momentum": (0.85, 0.95)}),
            [],
        )
    if keras.backend.backend() == "torch":
        # What a plain subclass gets on PyTorch: Keras's generic per-variable
        # update instead of the fused one it uses for its own exact classes.
        unfused = type(optimizer, (clr_optimizers.CyclicalOptimizer, stock), {})
        found["clr_unfused"] = (lambda: unfused(BASE_LR, clr=clr), [])
    return found


def data(shape, loss, rows, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((rows, *shape), dtype=np.float32)
    if loss == "sparse_categorical_crossentropy":
        y = rng.integers(0, 10, size=rows)
    elif loss == "binary_crossentropy":
        y = rng.integers(0, 2, size=rows).astype("float32")
    else:
        y = rng.random((rows, 1), dtype=np.float32)
    return x, y


def time_keras(workload, mode, repetitions, optimizer="SGD"):
    build, shape, loss, batch_size, steps = WORKLOADS[workload]
    # At least one whole execution per repetition.
    steps = max(steps, MODES[mode].get("steps_per_execution", 1))
    x, y = data(shape, loss, steps * batch_size)
    models = {}
    for name, (make_optimizer, callbacks) in contenders(steps // 2, optimizer).items():
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(optimizer=make_optimizer(), loss=loss, **MODES[mode])
        models[name] = (model, callbacks)
    times = {name: [] for name in models}
    order = random.Random(0)
    for repetition in range(repetitions + 1):  # round 0 is warm-up
        # A new order each round, so that no contender always runs first.
        for name in order.sample(list(models), len(models)):
            model, callbacks = models[name]
            start = time.perf_counter()
            model.fit(
                x, y, batch_size=batch_size, epochs=1, verbose=0, callbacks=callbacks
            )
            if repetition:
                times[name].append((time.perf_counter() - start) / steps)
    variables = {name: len(m.optimizer.variables) for name, (m, _) in models.items()}
    parameters = len(models["stock"][0].trainable_variables)
    return times, variables, parameters


def time_torch(repetitions, steps=1000, batch_size=20):
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    x = torch.rand(steps * batch_size, 15)
    y = torch.randint(0, 2, (steps * batch_size, 1)).float()

    def make(scheduled):
        model = torch.nn.Sequential(
            torch.nn.Linear(15, 10),
            torch.nn.ReLU(),
            torch.nn.Linear(10, 1),
            torch.nn.Sigmoid(),
        )
        optimizer = torch.optim.SGD(model.parameters(), lr=BASE_LR)
        scheduler = None
        if scheduled:
            scheduler = torch.optim.lr_scheduler.CyclicLR(
                optimizer, base_lr=BASE_LR, max_lr=MAX_LR, step_size_up=steps // 2
            )
        return model, optimizer, scheduler

    runs = {"torch.optim": make(False), "torch.optim + CyclicLR": make(True)}
    loss_fn = torch.nn.BCELoss()
    times = {name: [] for name in runs}
    for repetition in range(repetitions + 1):
        for name, (model, optimizer, scheduler) in runs.items():
            start = time.perf_counter()
            for i in range(steps):
                xb = x[i * batch_size : (i + 1) * batch_size]
                yb = y[i * batch_size : (i + 1) * batch_size]
                optimizer.zero_grad()
                loss_fn(model(xb), yb).backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
            if repetition:
                times[name].append((time.perf_counter() - start) / steps)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: small model, 1 repetition"
    )
    parser.add_argument("--repetitions", type=int, default=11)
    parser.add_argument(
        "--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS)
    )
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument(
        "--optimizer",
        choices=[opt.__name__ for opt in clr_optimizers.OPTIMIZERS],
        default="SGD",
    )
    parser.add_argument("--json", default="benchmarks/overhead.json")
    args = parser.parse_args(argv)
    modes = args.modes
    if keras.backend.backend() == "torch":  # Keras allows no other value there
        modes = [m for m in modes if "steps_per_execution" not in MODES[m]]
    repetitions = 1 if args.quick else args.repetitions
    workloads = args.workloads
    if args.quick:  # every contender and mode on the small model, briefly
        workloads = workloads[:1]
        build, shape, loss, batch_size, _ = WORKLOADS[workloads[0]]
        WORKLOADS[workloads[0]] = (build, shape, loss, batch_size, 40)

    print(
        f"clr-optimizers {clr_optimizers.__version__}, Keras {keras.__version__}, "
        f"backend {keras.backend.backend()}, {platform.machine()}, "
        f"{os.cpu_count()} cores, {date.today()}; median of {repetitions} "
        "repetitions after a warm-up round\n"
    )
    others = [name for name in contenders(1) if name != "stock"]
    header = f"{'workload':<18} {'mode':<23} {'stock ms':>9}" + "".join(
        f" {name:>14}" for name in others
    )
    print(
        f"{args.optimizer}: median step time of the stock optimizer, and each "
        "contender's ratio to it."
    )
    print(header)
    print("-" * len(header))
    results = []
    for workload in workloads:
        for mode in modes:
            times, variables, parameters = time_keras(
                workload, mode, repetitions, args.optimizer
            )
            med = {name: statistics.median(t) for name, t in times.items()}
            row = {
                "workload": workload,
                "mode": mode,
                "median_step_ms": {k: v * 1e3 for k, v in med.items()},
                "clr_over_stock": med["clr"] / med["stock"],
                "callback_over_stock": med["callback"] / med["stock"],
                "keras_schedule_over_stock": med["keras_schedule"] / med["stock"],
                "over_stock": {name: med[name] / med["stock"] for name in others},
                "optimizer_variables": variables,
                "model_variables": parameters,
                "extra_optimizer_variables": variables["clr"] - variables["stock"],
            }
            results.append(row)
            print(
                f"{workload:<18} {mode:<23} {med['stock'] * 1e3:>9.3f}"
                + "".join(f" {row['over_stock'][name]:>14.3f}" for name in others),
                flush=True,
            )
    torch_times = time_torch(repetitions, steps=50 if args.quick else 1000)
    torch_row = None
    if torch_times is None:
        print("\nPyTorch is not installed: its CyclicLR reference is skipped.")
    else:
        med = {name: statistics.median(t) for name, t in torch_times.items()}
        ratio = med["torch.optim + CyclicLR"] / med["torch.optim"]
        torch_row = {
            "median_step_ms": {k: v * 1e3 for k, v in med.items()},
            "ratio": ratio,
        }
        print(
            f"\nPyTorch, same 15-10-1 model, batch 20: torch.optim "
            f"{med['torch.optim'] * 1e3:.3f} ms, with CyclicLR "
            f"{med['torch.optim + CyclicLR'] * 1e3:.3f} ms, ratio {ratio:.3f}"
        )
    extra = {r["extra_optimizer_variables"] for r in results}
    print(
        "\nOptimizer variables added by clr, for models of "
        + ", ".join(str(p) for p in sorted({r["model_variables"] for r in results}))
        + " variables: "
        + ", ".join(f"{e:g}" for e in sorted(extra))
    )
    worst = max(results, key=lambda r: r["clr_over_stock"])
    print(
        f"Largest clr/stock ratio: {worst['clr_over_stock']:.3f} "
        f"({worst['workload']}, {worst['mode']})"
    )
    with open(args.json, "w") as f:
        json.dump(
            {
                "date": str(date.today()),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "keras": keras.__version__,
                "backend": keras.backend.backend(),
                "optimizer": args.optimizer,
                "repetitions": repetitions,
                "quick": args.quick,
                "keras_results": results,
                "torch": torch_row,
            },
            f,
            indent=2,
        )
    print(f"Written to {args.json}")


if __name__ == "__main__":
    main()
