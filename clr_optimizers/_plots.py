"""`plot_schedule`: the learning rate (and a cycled momentum) of every update,
without training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from clr_optimizers.optimizers import SGD


def _figure_and_axes(ax, figsize):
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "Plotting needs matplotlib: pip install 'clr-optimizers[plot]'."
        ) from error
    if ax is not None:
        return ax.figure, ax
    figure = Figure(figsize=figsize, layout="constrained")
    return figure, figure.subplots()


def _as_optimizer(schedule, learning_rate):
    if isinstance(schedule, Mapping):
        if learning_rate is not None:
            return SGD(learning_rate=learning_rate, clr=dict(schedule))
        if schedule.get("mode") != "one_cycle":
            raise ValueError(
                "`learning_rate` (the bottom of the cycle) is needed to plot a "
                "`clr` dict; or pass an optimizer."
            )
        return SGD(clr=dict(schedule))  # the start is max_lr / div_factor
    if not hasattr(schedule, "learning_rates"):
        raise TypeError(
            "Each schedule must be a `clr` dict or a clr_optimizers optimizer. "
            f"Received: {schedule!r}."
        )
    return schedule


def _label(optimizer) -> str:
    clr = optimizer.clr
    if clr is None:
        return type(optimizer).__name__
    mode = clr.get("mode") or f"scale_fn {clr['scale_fn']}"
    return f"{type(optimizer).__name__}, {mode}"


def plot_schedule(
    schedules,
    updates: int | None = None,
    *,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    learning_rate: float | None = None,
    labels: Sequence[str] | None = None,
    ax=None,
):
    """Plots the learning rate of every update, one line per schedule.

    Where a schedule cycles the momentum too, its momentum is drawn dashed, in
    the same colour, against a second axis on the right.

    Args:
        schedules: A clr_optimizers optimizer, a `clr` dict (with
            `learning_rate`), or a list of them.
        updates: How many updates to show. Or give `epochs` and
            `steps_per_epoch`.
        epochs: With `steps_per_epoch`, the number of epochs to show.
        steps_per_epoch: Updates per epoch; when given, the x axis is in epochs.
        learning_rate: For `clr` dicts, the bottom of the cycle (the start
            of a `one_cycle` dict, which can do without it). Defaults to
            `None`.
        labels: One legend label per schedule. Defaults to the class and mode.
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
    optimizers = [_as_optimizer(s, learning_rate) for s in schedules]
    if labels is not None and len(labels) != len(optimizers):
        raise ValueError(
            f"`labels` has {len(labels)} entries for {len(optimizers)} schedules."
        )
    if updates is None:
        if epochs is None or steps_per_epoch is None:
            raise ValueError("Pass `updates`, or `epochs` and `steps_per_epoch`.")
        updates = epochs * steps_per_epoch
    elif epochs is not None:
        raise ValueError("Pass either `updates` or `epochs`, not both.")

    figure, ax = _figure_and_axes(ax, figsize=(8, 3.5))
    x = np.arange(1, updates + 1, dtype=np.float64)
    if steps_per_epoch:
        x /= steps_per_epoch
    momentum_ax = None
    lines = []
    for i, optimizer in enumerate(optimizers):
        label = labels[i] if labels is not None else _label(optimizer)
        (line,) = ax.plot(x, optimizer.learning_rates(updates), label=label, lw=1.3)
        lines.append(line)
        if optimizer.current_momentum is None:
            continue
        if momentum_ax is None:
            momentum_ax = ax.twinx()
            momentum_ax.set_ylabel("momentum (dashed)")
        (dashed,) = momentum_ax.plot(
            x,
            optimizer.momentum_values(updates),
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
