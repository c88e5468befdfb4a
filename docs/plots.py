"""Draws the plots of the documentation: `python docs/plots.py [out_dir]`."""

import sys
from pathlib import Path

from clr_optimizers import SGD, plot_schedule

STEPS_PER_EPOCH = 100


def policies():
    """The four cyclical modes of the 2017 paper and the source study, a
    panel each."""
    modes = {
        "triangular": {},
        "triangular2": {},
        "exp_range": {"gamma": 0.9985},
        "modified_triangular2": {},
    }
    panels = {}
    for mode, extra in modes.items():
        label = ", ".join([mode, *(f"{k} {v}" for k, v in extra.items())])
        clr = {"max_lr": 0.06, "step_size": 2 * STEPS_PER_EPOCH, "mode": mode}
        panels[label] = {**clr, **extra}
    return _panels(panels)


def _panels(panels):
    """One `clr` dict a panel, four panels, all with a floor of 0.01."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(10, 5.5), sharex=True, sharey=True)
    for ax, (label, clr) in zip(axes.flat, panels.items()):
        plot_schedule(
            clr,
            learning_rate=0.01,
            epochs=24,
            steps_per_epoch=STEPS_PER_EPOCH,
            labels=[label],
            ax=ax,
        )
        ax.set_xlabel("epoch" if ax in axes[1] else "")
    figure.tight_layout()
    return figure


def asymmetric():
    return plot_schedule(
        [
            {"max_lr": 0.06, "step_size": 2 * STEPS_PER_EPOCH},
            {
                "max_lr": 0.06,
                "step_size_up": STEPS_PER_EPOCH,
                "step_size_down": 3 * STEPS_PER_EPOCH,
                "mode": "triangular2",
            },
        ],
        learning_rate=0.01,
        epochs=16,
        steps_per_epoch=STEPS_PER_EPOCH,
        labels=["step_size=2 epochs", "step_size_up=1, step_size_down=3, triangular2"],
    )


def momentum():
    opt = SGD(
        learning_rate=0.01,
        clr={
            "max_lr": 0.06,
            "step_size_up": STEPS_PER_EPOCH,
            "step_size_down": 3 * STEPS_PER_EPOCH,
            "momentum": (0.85, 0.95),
        },
    )
    return plot_schedule(opt, epochs=12, steps_per_epoch=STEPS_PER_EPOCH)


def one_cycle():
    total = 20 * STEPS_PER_EPOCH
    return plot_schedule(
        [
            {
                "mode": "one_cycle",
                "max_lr": 0.1,
                "total_steps": total,
                "momentum": (0.85, 0.95),
            },
            {
                "mode": "one_cycle",
                "max_lr": 0.1,
                "total_steps": total,
                "three_phase": True,
                "anneal_strategy": "linear",
            },
        ],
        epochs=22,
        steps_per_epoch=STEPS_PER_EPOCH,
        labels=["cos (default)", "three_phase, linear"],
    )


def family():
    """Cosine ramps, warm restarts, a warmup and a chain, a panel each."""
    steps = STEPS_PER_EPOCH
    panels = {
        "ramp cos, triangular2": {
            "max_lr": 0.06,
            "step_size": 2 * steps,
            "mode": "triangular2",
            "ramp": "cos",
        },
        "warm_restarts, period_mult 2, peak_mult 0.7": {
            "mode": "warm_restarts",
            "max_lr": 0.06,
            "period": 2 * steps,
            "period_mult": 2,
            "peak_mult": 0.7,
        },
        "warmup 2 epochs, then triangular": {
            "max_lr": 0.06,
            "step_size": 2 * steps,
            "warmup_steps": 2 * steps,
        },
        "chain: warmup and cycles, then a cosine anneal": {
            "mode": "chain",
            "max_lr": 0.06,
            "policies": [
                {"step_size": steps, "warmup_steps": 2 * steps},
                {
                    "mode": "warm_restarts",
                    "learning_rate": 0.001,
                    "max_lr": 0.01,
                    "period": 10 * steps,
                    "cycle_limit": 1,
                },
            ],
            "boundaries": [12 * steps],
        },
    }
    return _panels(panels)


def monitor():
    """A real fit: what `LearningRateMonitor` recorded, with a scheduler
    halving the cycle from the fifth epoch on."""
    import keras
    import numpy as np

    from clr_optimizers import Adam, LearningRateMonitor

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    clr = {
        "max_lr": 0.01,
        "step_size": 25,
        "mode": "triangular2",
        "momentum": (0.85, 0.95),
    }
    model.compile(optimizer=Adam(learning_rate=0.001, clr=clr), loss="mse")
    x = np.random.default_rng(0).normal(size=(800, 8))
    y = x.sum(axis=1, keepdims=True)
    halve = keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: lr / 2 if epoch == 4 else lr
    )
    recorder = LearningRateMonitor()
    model.fit(x, y, batch_size=32, epochs=8, verbose=0, callbacks=[recorder, halve])
    ax = recorder.plot()
    ax.set_title(
        "LearningRateMonitor after fit: Adam, triangular2, cycled beta_1; "
        "a LearningRateScheduler halves the cycle from epoch 5",
        fontsize=9,
    )
    return ax.figure


def main(out_dir=Path(__file__).parent):
    out_dir = Path(out_dir)
    for draw in (policies, asymmetric, momentum, one_cycle, family, monitor):
        draw().savefig(out_dir / f"{draw.__name__}.png", dpi=110)
        print(f"wrote {out_dir / draw.__name__}.png")


if __name__ == "__main__":
    main(*sys.argv[1:])
