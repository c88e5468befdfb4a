"""The main job: check the reference notebook's table and plot the schedules.

Run it with `python -m clr_optimizers` or the `clr-optimizers` command.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from typing import Any

import keras
import numpy as np

import clr_optimizers
from clr_optimizers._plots import plot_schedule
from clr_optimizers.optimizers import OPTIMIZERS

REFERENCE_LR = 0.01
REFERENCE_CLR = {"max_lr": 0.06, "step_size": 2000}
# The reference notebook's table: every optimizer prints these after each epoch
# of 1000 updates.
REFERENCE_TABLE = {
    1000: 0.034975,
    2000: 0.059975,
    3000: 0.035025,
    4000: 0.010025,
    5000: 0.034975,
    6000: 0.059975,
    7000: 0.035025,
    8000: 0.010025,
    9000: 0.034975,
    10000: 0.059975,
}
TOLERANCE = 1e-6


def reference_model(seed: int = 0) -> keras.Model:
    """The reference notebook's model: 15 inputs -> 10 relu -> 1 sigmoid."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(15,))
    hidden = keras.layers.Dense(10, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))


def run_reference(
    optimizer_class: type,
    *,
    rows: int = 20_000,
    batch_size: int = 20,
    epochs: int = 10,
    seed: int = 0,
    clr: dict[str, Any] | None = None,
    **compile_kwargs: Any,
) -> list[tuple[int, float]]:
    """Trains as the reference notebook does (with its `clr` dict unless one
    is given); returns `(iterations, current_lr)` read from `get_config()`
    after each epoch."""
    rng = np.random.default_rng(seed)
    x = rng.random((rows, 15), dtype=np.float32)
    y = rng.integers(0, 2, size=rows)
    model = reference_model(seed)
    model.compile(
        optimizer=optimizer_class(lr=REFERENCE_LR, clr=clr or REFERENCE_CLR),
        loss="binary_crossentropy",
        metrics=["accuracy"],
        **compile_kwargs,
    )
    table = []
    for _ in range(epochs):
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        config = model.optimizer.get_config()
        table.append((config["iterations"], config["current_lr"]))
    return table


def plot_schedules(path: str, measured: dict[str, list[tuple[int, float]]]) -> None:
    """Writes a PNG: the reference schedule with the measured points, and the
    other modes with the same bounds."""
    from matplotlib.figure import Figure

    modes: dict[str, dict[str, Any]] = {
        "triangular": {},
        "triangular2": {"mode": "triangular2"},
        "exp_range, gamma 0.9999": {"mode": "exp_range", "gamma": 0.9999},
        "modified_triangular2": {"mode": "modified_triangular2"},
    }
    fig = Figure(figsize=(11, 7), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True, sharey=True).ravel()
    for ax, (title, extra) in zip(axes, modes.items()):
        plot_schedule(
            {**REFERENCE_CLR, **extra},
            updates=24_000,
            learning_rate=REFERENCE_LR,
            labels=[title],
            ax=ax,
        )
    if measured:
        points = np.array([row for table in measured.values() for row in table])
        axes[0].plot(
            points[:, 0],
            points[:, 1],
            "o",
            ms=6,
            mfc="none",
            label=f"current_lr after each epoch ({', '.join(measured)})",
        )
        axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(
        "clr-optimizers: the learning rate of every update "
        "(learning_rate 0.01, max_lr 0.06, step_size 2000)"
    )
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="clr-optimizers",
        description="Check the reference notebook's table for the CLR optimizers "
        "and plot their schedules.",
    )
    names = [opt.__name__ for opt in OPTIMIZERS]
    parser.add_argument("--optimizers", nargs="+", choices=names, default=names)
    parser.add_argument("--epochs", type=int, default=10, choices=range(1, 11))
    parser.add_argument(
        "--steps-per-execution",
        type=int,
        default=None,
        help="updates per compiled call of model.fit (the schedule still "
        "advances at every update); 1 is the notebook's setting; defaults to "
        "10, or 1 on PyTorch, which allows no other value",
    )
    parser.add_argument("--plot", default="clr_schedule.png", help="PNG to write")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    if args.steps_per_execution is None:
        args.steps_per_execution = 1 if keras.backend.backend() == "torch" else 10

    rows, batch_size = 20_000, 20
    print(
        f"clr-optimizers {clr_optimizers.__version__}, Keras {keras.__version__}, "
        f"backend {keras.backend.backend()}\n"
        f"Reference notebook: model 15 -> 10 -> 1, Opt(lr={REFERENCE_LR}, "
        f"clr={REFERENCE_CLR}),\n{rows:,} rows in batches of {batch_size} "
        f"({rows // batch_size} updates per epoch), {args.epochs} epochs of "
        f"model.fit each, steps_per_execution={args.steps_per_execution}.\n"
    )
    measured = {}
    for name in args.optimizers:
        optimizer_class = getattr(clr_optimizers, name)
        start = time.perf_counter()
        measured[name] = run_reference(
            optimizer_class,
            rows=rows,
            batch_size=batch_size,
            epochs=args.epochs,
            steps_per_execution=args.steps_per_execution,
        )
        print(f"  {name:<9} trained in {time.perf_counter() - start:5.1f} s")

    header = f"\n{'iterations':>10}  {'expected':>9}" + "".join(
        f"  {name:>9}" for name in measured
    )
    print(header)
    worst = 0.0
    for row, expected_it in enumerate(list(REFERENCE_TABLE)[: args.epochs]):
        expected = REFERENCE_TABLE[expected_it]
        line = f"{expected_it:>10}  {expected:>9.6f}"
        for table in measured.values():
            iterations, lr = table[row]
            error = abs(lr - expected) if iterations == expected_it else float("inf")
            worst = max(worst, error)
            mark = " " if error <= TOLERANCE else "!"
            line += f"  {lr:>8.6f}{mark}"
        print(line)
    passed = worst <= TOLERANCE
    verdict = "PASS" if passed else "FAIL"
    print(
        f"\n{verdict}: {len(measured)} optimizer(s), largest error {worst:.1e} "
        f"(tolerance {TOLERANCE:.0e})"
    )

    if args.no_plot:
        pass
    elif importlib.util.find_spec("matplotlib") is None:
        print(
            "Plot skipped: matplotlib is not installed "
            "(pip install 'clr-optimizers[plot]')."
        )
    else:
        plot_schedules(args.plot, measured)
        print(f"Schedule plot written to {args.plot}")
    return 0 if passed else 1
