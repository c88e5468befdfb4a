"""Does a cyclical rate reach a given accuracy in fewer epochs than a constant one?

Real, offline data: scikit-learn's handwritten digits (1,797 8x8 images), a
stratified 75/25 split, and a small CNN. For each of the seven optimizers:

- constant: the stock Keras optimizer at its default rate;
- triangular: CLR with the bounds of the range test (`find_lr`, the study's
  rule: `max_lr` at the lowest smoothed loss, base a quarter of it);
- modified_triangular2: the same bounds, amplitude restarting every 3 cycles;
- exp_range: the same bounds, amplitude decaying by `gamma` per update so that
  it halves every 5 epochs.

Half cycles of 2 epochs, three seeds each. Reported: epochs to reach the
target validation accuracy and the best validation accuracy, medians over
seeds; a JSON file and a PNG of validation accuracy per epoch.

    python benchmarks/convergence.py            # full run, several minutes
    python benchmarks/convergence.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
from datetime import date

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import clr_optimizers
from clr_optimizers import OPTIMIZERS, find_lr

POLICIES = ("constant", "triangular", "modified_triangular2", "exp_range")
BATCH_SIZE = 32


def load():
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    return train_test_split(
        x, digits.target, test_size=0.25, stratify=digits.target, random_state=0
    )


def make_model(optimizer, seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def policy_optimizer(optimizer_class, policy, bounds, steps_per_epoch):
    if policy == "constant":
        return optimizer_class()
    base_lr, max_lr = bounds
    clr = {"max_lr": max_lr, "step_size": 2 * steps_per_epoch, "mode": policy}
    if policy == "exp_range":
        clr["gamma"] = 0.5 ** (1 / (5 * steps_per_epoch))
    return optimizer_class(learning_rate=base_lr, clr=clr)


def epochs_to(accuracies, target):
    reached = [i + 1 for i, a in enumerate(accuracies) if a >= target]
    return reached[0] if reached else None


def median_epochs(values):
    """Median over seeds, a seed that never reached the target counting as
    infinitely slow; `None` when the median itself never reached it."""
    median = statistics.median(math.inf if v is None else v for v in values)
    return None if math.isinf(median) else median


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--target", type=float, default=0.97)
    parser.add_argument("--json", default="benchmarks/convergence.json")
    parser.add_argument("--plot", default="benchmarks/convergence.png")
    args = parser.parse_args(argv)
    optimizers = OPTIMIZERS[:2] if args.quick else OPTIMIZERS
    epochs, seeds = (2, 1) if args.quick else (args.epochs, args.seeds)

    x_train, x_val, y_train, y_val = load()
    steps_per_epoch = int(np.ceil(len(x_train) / BATCH_SIZE))
    print(
        f"clr-optimizers {clr_optimizers.__version__}, Keras {keras.__version__}, "
        f"{date.today()}: digits, {len(x_train)} train / {len(x_val)} validation, "
        f"batch {BATCH_SIZE} ({steps_per_epoch} updates per epoch), {epochs} epochs, "
        f"{seeds} seed(s), target validation accuracy {args.target}\n"
    )
    results, curves = [], {}
    for optimizer_class in optimizers:
        name = optimizer_class.__name__
        sweep = find_lr(
            make_model(optimizer_class(), seed=0),
            x_train,
            y_train,
            batch_size=BATCH_SIZE,
            epochs=1 if args.quick else 5,
            verbose=0,
        )
        bounds = sweep.suggestion()
        print(f"{name}: range test suggests base {bounds[0]:.3g}, max {bounds[1]:.3g}")
        for policy in POLICIES:
            runs = []
            for seed in range(seeds):
                optimizer = policy_optimizer(
                    optimizer_class, policy, bounds, steps_per_epoch
                )
                history = make_model(optimizer, seed).fit(
                    x_train,
                    y_train,
                    batch_size=BATCH_SIZE,
                    epochs=epochs,
                    validation_data=(x_val, y_val),
                    verbose=0,
                )
                runs.append(history.history["val_accuracy"])
            curves[(name, policy)] = np.median(np.array(runs), axis=0)
            row = {
                "optimizer": name,
                "policy": policy,
                "bounds": None if policy == "constant" else list(bounds),
                "epochs_to_target": [epochs_to(r, args.target) for r in runs],
                "best_val_accuracy": [max(r) for r in runs],
            }
            row["median_epochs_to_target"] = median_epochs(row["epochs_to_target"])
            row["median_best_val_accuracy"] = statistics.median(
                row["best_val_accuracy"]
            )
            results.append(row)

    print(f"\n{'optimizer':<9} " + "".join(f"{p:>24}" for p in POLICIES))
    print(f"{'':<9} " + "".join(f"{'epochs / best acc':>24}" for _ in POLICIES))
    for optimizer_class in optimizers:
        name = optimizer_class.__name__
        cells = []
        for policy in POLICIES:
            row = next(
                r for r in results if (r["optimizer"], r["policy"]) == (name, policy)
            )
            reached = row["median_epochs_to_target"]
            reached = "never" if reached is None else f"{reached:g}"
            cells.append(f"{reached:>14} / {row['median_best_val_accuracy']:.4f}")
        print(f"{name:<9} " + "".join(f"{c:>24}" for c in cells))
    print(
        f"\n'epochs': median over seeds of the first epoch with validation accuracy "
        f">= {args.target} ('never' if most seeds never got there)."
    )

    with open(args.json, "w") as f:
        json.dump(
            {
                "date": str(date.today()),
                "keras": keras.__version__,
                "epochs": epochs,
                "seeds": seeds,
                "target": args.target,
                "results": results,
            },
            f,
            indent=2,
        )
    print(f"Written to {args.json}")
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("matplotlib is not installed: no plot.")
        return
    figure = Figure(figsize=(13, 6.5), layout="constrained")
    axes = figure.subplots(2, 4, sharex=True, sharey=True).ravel()
    for ax, optimizer_class in zip(axes, optimizers):
        name = optimizer_class.__name__
        for policy in POLICIES:
            ax.plot(np.arange(1, epochs + 1), curves[(name, policy)], label=policy)
        ax.axhline(args.target, color="0.6", lw=0.8, ls=":")
        ax.set_title(name)
        ax.set_ylim(0.5, 1.0)
        ax.grid(alpha=0.3)
    for ax in axes[len(optimizers) :]:
        ax.axis("off")
    axes[0].legend(fontsize=8, loc="lower right")
    for ax in axes[4:]:
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("validation accuracy")
    axes[4].set_ylabel("validation accuracy")
    figure.suptitle(
        f"Digits, small CNN: median validation accuracy over {seeds} seed(s); "
        f"CLR bounds from the range test"
    )
    figure.savefig(args.plot, dpi=100)
    print(f"Plot written to {args.plot}")


if __name__ == "__main__":
    main()
