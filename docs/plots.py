"""Draws the schedule plots in the README: `python docs/plots.py [out_dir]`."""

import sys
from pathlib import Path

from clr_optimizers import SGD, plot_schedule

STEPS_PER_EPOCH = 100


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


def main(out_dir=Path(__file__).parent):
    out_dir = Path(out_dir)
    for draw in (asymmetric, momentum, one_cycle):
        draw().savefig(out_dir / f"{draw.__name__}.png", dpi=110)
        print(f"wrote {out_dir / draw.__name__}.png")


if __name__ == "__main__":
    main(*sys.argv[1:])
