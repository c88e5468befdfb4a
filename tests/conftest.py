"""Shared references for the tests: the schedule formulas restated in NumPy."""

import importlib.util
import math
import os
from fractions import Fraction
from pathlib import Path

if os.environ.get("KERAS_BACKEND") == "torch":
    # PyTorch's CPU threads spin while they wait: with a thread pool in each
    # test worker and notebook kernel, the processes starve each other (the
    # digits notebook took ten times as long). One thread each, set before
    # torch is imported; the notebook kernels and scripts inherit it.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import keras
import numpy as np
import pytest

# The largest update count the optimizer's counter holds: 2**63 - 1 on
# TensorFlow (int64), 2**31 - 1 on JAX and PyTorch (int32).
COUNTER_MAX = int(
    np.iinfo(
        keras.backend.standardize_dtype(keras.optimizers.SGD().iterations.dtype)
    ).max
)
BACKEND = keras.backend.backend()

# The reference notebook's table (docs/verifying.md):
# (iterations, current_lr) after each epoch of 1000 updates.
REFERENCE_TABLE = [
    (1000, 0.034975),
    (2000, 0.059975),
    (3000, 0.035025),
    (4000, 0.010025),
    (5000, 0.034975),
    (6000, 0.059975),
    (7000, 0.035025),
    (8000, 0.010025),
    (9000, 0.034975),
    (10000, 0.059975),
]


def step_fraction(step_size):
    """The documented reading of `step_size`: the nearest fraction with a
    denominator of at most 1000, or on a 32-bit counter at most
    sqrt(counter max / (2 step_size)), so that 2 * numerator * denominator
    fits the counter."""
    limit = math.isqrt(int(COUNTER_MAX // (2 * step_size)))
    return Fraction(step_size).limit_denominator(max(1, min(1000, limit)))


def reference_rate(
    n,
    base,
    max_lr,
    step_size,
    mode="triangular",
    gamma=1.0,
    restart_every=None,
    scale_fn=None,
    scale_mode="cycle",
    decay=0.0,
):
    """The documented schedule (docs/clr-dict.md) for one update count
    `n`, in float64 Python."""
    if mode == "modified_triangular2":
        mode, restart_every = "triangular2", restart_every or 3
    base_n = base / (1 + decay * n)
    # Exact rational arithmetic, so that the reference itself does not drift.
    position = Fraction(n) / step_fraction(step_size)
    cycle = math.floor(1 + position / 2)
    x = float(abs(position - 2 * cycle + 1))
    if restart_every:
        restarts = (cycle - 1) // restart_every
        cycle -= restarts * restart_every
        n = float(n - restarts * restart_every * 2 * step_fraction(step_size))
    if scale_fn is not None:
        scale = scale_fn(cycle if scale_mode == "cycle" else n)
    elif mode == "triangular":
        scale = 1.0
    elif mode == "triangular2":
        scale = 1 / 2 ** (cycle - 1)
    else:
        scale = gamma**n
    return base_n + (max_lr - base_n) * max(0.0, 1 - x) * scale


def reference_rates(steps, **kwargs):
    return np.array([reference_rate(int(n), **kwargs) for n in steps])


def benchmark_script(name):
    """A script of `benchmarks/` as a module, for its counting helpers."""
    path = Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_variables(seed=0):
    rng = np.random.default_rng(seed)
    return [
        keras.Variable(rng.normal(size=(5, 3)).astype("float32"), name="kernel"),
        keras.Variable(rng.normal(size=(3,)).astype("float32"), name="bias"),
    ]


def run_updates(optimizer, steps=20):
    """Applies `steps` fixed random updates to two fresh variables; returns
    the final model and optimizer variables as arrays, those of a CLR
    optimizer without its schedule's own (`max_lr` and the restart point,
    which the stock optimizers lack)."""
    variables = train_variables()
    rng = np.random.default_rng(1)
    for _ in range(steps):
        grads = [
            keras.ops.convert_to_tensor(rng.normal(size=v.shape).astype("float32"))
            for v in variables
        ]
        optimizer.apply(grads, variables)
    schedule = getattr(optimizer, "schedule_state", None)
    own = [] if schedule is None else schedule.variables
    state = [v for v in optimizer.variables if all(v is not o for o in own)]
    return [v.numpy() for v in variables + state]


# The slow tests start first, the longest of them (each trains for minutes on
# one worker) at the head, so that the rest of the suite runs beside them
# instead of after them.
LONGEST_FIRST = ("test_notebook.py", "test_benchmarks.py", "test_main.py")


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by the marks
def pytest_collection_modifyitems(items):
    for item in items:
        if any(BACKEND in mark.args for mark in item.iter_markers("slow_on")):
            item.add_marker(pytest.mark.slow)

    def rank(item):
        name = item.path.name
        return (
            item.get_closest_marker("slow") is None,
            LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST),
        )

    items.sort(key=rank)  # stable: the order within each file is kept


def torch_schedule(make_scheduler, updates, learning_rate=0.01):
    """The learning rate and momentum a PyTorch scheduler sets for each of
    `updates` updates of a PyTorch SGD optimizer (entry k: update k + 1).

    `make_scheduler(optimizer)` builds the scheduler, for example
    `lambda o: torch.optim.lr_scheduler.CyclicLR(o, ...)`.
    """
    rates, momentums = torch_group_schedule(make_scheduler, updates, [learning_rate])
    return rates[:, 0], momentums[:, 0]


def torch_group_schedule(make_scheduler, updates, learning_rates):
    """As `torch_schedule`, for an optimizer with one parameter group per
    entry of `learning_rates`: arrays of shape `(updates, groups)`."""
    import torch

    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": rate}
              for rate in learning_rates]  # fmt: skip
    optimizer = torch.optim.SGD(groups, lr=learning_rates[0], momentum=0.9)
    scheduler = make_scheduler(optimizer)
    rates, momentums = [], []
    for _ in range(updates):
        rates.append([group["lr"] for group in optimizer.param_groups])
        momentums.append([group["momentum"] for group in optimizer.param_groups])
        optimizer.step()  # no gradient: nothing moves, but the order is kept
        scheduler.step()
    return np.array(rates), np.array(momentums)
