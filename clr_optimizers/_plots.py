"""`plot_schedule`: the learning rate (and a cycled momentum) of every update,
without training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from clr_optimizers._checks import check_count
from clr_optimizers._rates import sources_of


def _figure_and_axes(
    ax: Any, figsize: tuple[float, float], pyplot: bool = False
) -> tuple[Any, Any]:
    """`ax` and its figure, or a new figure: a pyplot one (which Jupyter
    shows at the end of the cell) for functions that return the Axes, a
    plain `Figure` (shown when returned) for those that return the figure."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "Plotting needs matplotlib: pip install 'clr-optimizers[plot]'."
        ) from error
    if ax is not None:
        return ax.figure, ax
    if pyplot:
        import matplotlib.pyplot as plt

        figure, ax = plt.subplots(figsize=figsize, layout="constrained")
        return figure, ax
    figure = Figure(figsize=figsize, layout="constrained")
    return figure, figure.subplots()


def plot_schedule(
    schedules: Any,
    updates: int | None = None,
    *,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    learning_rate: float | None = None,
    decay: float | None = None,
    labels: Sequence[str] | None = None,
    ax: Any = None,
) -> Any:
    """Plots the learning rate of every update, one line per schedule.

    Where a schedule cycles the momentum too, its momentum is drawn dashed, in
    the same colour, against a second axis on the right.

    Args:
        schedules: A `clr` dict (with `learning_rate`), a clr_optimizers
            optimizer, a `LearningRateSchedule` (this package's or any
            other), or a list of them.
        updates: How many updates to show. Or give `epochs` and
            `steps_per_epoch`.
        epochs: With `steps_per_epoch`, the number of epochs to show.
        steps_per_epoch: Updates per epoch; when given, the x axis is in epochs.
        learning_rate: For `clr` dicts, the bottom of the cycle (the start
            of a `one_cycle` dict, which can do without it). Defaults to
            `None`.
        decay: For `clr` dicts, time-based decay of the floor. Defaults to
            `None`.
        labels: One legend label per line: per schedule, and per group of
            an optimizer with `groups` (each group is a line of its own,
            after the optimizer's). Defaults to the class and mode.
        ax: A matplotlib `Axes` to draw on. Defaults to a new figure.

    Returns:
        The matplotlib `Figure`, which Jupyter shows inline.

    Example:

    ```python
    plot_schedule(
        {"max_lr": 0.03, "step_size": 2 * 100, "mode": "modified_triangular2"},
        learning_rate=0.0075, epochs=42, steps_per_epoch=100,
    )
    ```
    """
    if isinstance(schedules, Mapping) or not isinstance(schedules, Sequence):
        schedules = [schedules]
    sources = [src for s in schedules for src in sources_of(s, learning_rate, decay)]
    if labels is not None and len(labels) != len(sources):
        raise ValueError(
            f"`labels` has {len(labels)} entries for {len(sources)} lines (a "
            "schedule each, and a group each)."
        )
    if updates is None:
        if epochs is None or steps_per_epoch is None:
            raise ValueError("Pass `updates`, or `epochs` and `steps_per_epoch`.")
        updates = epochs * steps_per_epoch
    elif epochs is not None:
        raise ValueError("Pass either `updates` or `epochs`, not both.")
    updates = check_count("updates", updates)
    steps = np.arange(updates)

    figure, ax = _figure_and_axes(ax, figsize=(8, 3.5))
    x = np.arange(1, updates + 1, dtype=np.float64)
    if steps_per_epoch:
        x /= steps_per_epoch
    momentum_ax = None
    lines = []
    for i, source in enumerate(sources):
        label = labels[i] if labels is not None else source.label
        (line,) = ax.plot(x, source.rates(steps), label=label, lw=1.3)
        lines.append(line)
        if source.momentums is None:
            continue
        if momentum_ax is None:
            momentum_ax = ax.twinx()
            momentum_ax.set_ylabel("momentum (dashed)")
        (dashed,) = momentum_ax.plot(
            x,
            source.momentums(steps),
            ls="--",
            lw=1.1,
            color=line.get_color(),
            label=f"{label}: momentum",
        )
        lines.append(dashed)
    ax.set_xlabel("epoch" if steps_per_epoch else "update")
    ax.set_ylabel("learning rate")
    ax.grid(alpha=0.3)
    ax.legend(handles=lines, fontsize=8)
    return figure
