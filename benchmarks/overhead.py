"""What the cyclical schedule costs per training step.

Each contender trains its own copy of the same model with `model.fit`, and
its step time is compared with the stock optimizer's:

- stock: the stock Keras optimizer at a constant rate;
- stock_copy: a second copy of stock, whose ratio should be 1: its interval
  shows what the run can resolve, and how often an interval misses 1 by
  chance (one in twenty, at 95%) or because two copies of one model differ
  (where their buffers fall in memory, say);
- clr: the same optimizer from clr_optimizers with a triangular cycle;
- clr_momentum: the same, also cycling the momentum (`momentum` of SGD and
  RMSprop, which the stock optimizer here does not use; `beta_1` of the Adam
  family, which it does), for the optimizers that have one;
- callback: the stock optimizer with a per-batch callback that sets the rate
  from a Python counter, the way the 2017 CLR callback worked;
- keras_schedule: the stock optimizer driven by Keras's own in-graph
  `CosineDecay` schedule, for what any in-graph schedule costs;
- monitor: clr with a `LearningRateMonitor` recording every update's rate.
  Its work is per epoch (reading the counter, rebuilding the epoch's record),
  so it weighs more in the short epochs timed here (the rows record their
  length) than in real ones;
- clr_unfused (PyTorch only): our class built on the stock class instead of
  on Keras's fused variant, which is what a plain subclass gets there.

Also, when PyTorch is installed: plain `torch.optim.SGD` on the 15-10-1 model
with and without `torch.optim.lr_scheduler.CyclicLR`, timed the same way, for
what a scheduler costs elsewhere.

How it is timed, and why. The differences worth knowing are a few percent of
a step that takes a fraction of a millisecond on the small model, on a
machine that other work shares; medians of whole wall-clock epochs did not
resolve them (the same row measured twice moved by 15%). So:

- CPU time of one thread. On the CPU each framework runs its ops on one
  thread (TensorFlow's intra- and inter-op pools, PyTorch's intra- and
  inter-op threads, XLA's Eigen threads), and the process is pinned to one
  core, so that one thread runs at a time: recent XLA CPU runtimes size
  their thread pool from the cores the process may use and ignore the Eigen
  flag (with it, a large matmul still keeps two cores busy). Each block is
  timed with `time.process_time()`, the CPU time of this process's threads,
  to which other processes on the machine add nothing, where a wall clock
  would count the time spent waiting for them. The header reports the
  parallelism measured during a large matmul (CPU time over wall time),
  which is at most 1 on one thread.
- Short blocks, paired by round. A block is one epoch of `fit`, about 0.05 s of the
  stock step, and long enough that what a call of fit costs besides its
  steps (the epoch's iterator, the callbacks: the same for every contender,
  so it dilutes their ratios) is at most a tenth of it; the rows record
  that share. A round runs one block of the stock optimizer and one of each
  contender, in a new random order, so that a drift in the machine's speed
  affects a contender's block and the stock block of its round alike. Each
  round gives a ratio, contender over stock; the figure is the median of the
  rounds' ratios, with a 95% percentile-bootstrap interval over the rounds.
  A contender whose interval contains 1 shows no measurable difference.
  `--seconds` sets the time of each row's rounds (or `--rounds` their
  number); the interval narrows as its square root. On a 2-core machine
  that other work shared, the default 75 s gave intervals of 0.4% to 1.2%
  either side on the 15-10-1 model; the 200-layer model's blocks vary
  more from one to the next on TensorFlow, and its intervals there were
  several times as wide.
- The garbage collector is paused during each block, as in `timeit`, so
  that a collection falls between blocks instead of in one contender's.

A GPU's work does not show in the host's CPU time: `--device cuda` times each
block with the wall clock up to a synchronisation with the device, and leaves
the frameworks' threads at their defaults. On PyTorch the rows also count the
host synchronisations (reads of a tensor's value on the host, which wait for
the device's queue to drain) of stock and clr, per step and per call of fit,
from epochs of two lengths; in eager mode only, since torch.compile runs
eagerly while the counting dispatch mode is active.

With the default 75 s per row, the default run takes about 12 minutes on
TensorFlow (compiling seven copies of the 200-layer model with XLA takes two
of them), 6 on JAX and 6 on PyTorch, on a 2-core machine.

    python benchmarks/overhead.py            # the default run
    python benchmarks/overhead.py --quick    # smoke run, every mode briefly
    python benchmarks/overhead.py --workloads "MobileNet 32x32"  # not default
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import NamedTuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

# Keras, the frameworks and clr_optimizers are imported by main(), after
# limit_threads(): XLA reads its flags, and every framework sizes its thread
# pools, once, when it starts.

BASE_LR, MAX_LR = 0.01, 0.06
STEP_SIZE = 1000  # the cost of a step does not depend on the cycle's length
BLOCK_SECONDS = 0.05  # the stock optimizer's time per block, at least
MIN_ROUNDS = 10  # below this, a bootstrap over rounds says little
RESAMPLES = 2000
SEED = 0

MODES = {
    # TensorFlow: a tf.function graph without XLA.
    "graph": {"jit_compile": False},
    # PyTorch: Keras's eager trainer, its default there.
    "eager": {"jit_compile": False},
    # XLA on TensorFlow and JAX, torch.compile on PyTorch.
    "jit_compile": {"jit_compile": True},
    "steps_per_execution=32": {"steps_per_execution": 32},
}
BACKEND_MODES = {
    "tensorflow": ["graph", "jit_compile", "steps_per_execution=32"],
    # Keras always compiles the step with XLA on JAX; `jit_compile=False`
    # there runs it op by op, a debugging mode.
    "jax": ["jit_compile", "steps_per_execution=32"],
    # Keras allows one step per execution only on PyTorch.
    "torch": ["eager", "jit_compile"],
}
# Left out unless asked for with --modes: torch.compile takes minutes for
# each copy of the 200-layer model.
NOT_BY_DEFAULT = {("torch", "200 dense layers", "jit_compile")}


class Workload(NamedTuple):
    build: object  # () -> keras.Model
    shape: tuple[int, ...]
    loss: str
    batch_size: int


def reference_model():
    """The reference notebook's model: the smallest step, where the
    schedule's few scalar operations weigh most."""
    import keras

    inputs = keras.Input((15,))
    hidden = keras.layers.Dense(10, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))


def many_layers():
    """200 small layers: the schedule is computed once per step, not per variable."""
    import keras

    inputs = keras.Input((8,))
    x = inputs
    for _ in range(200):
        x = keras.layers.Dense(8, activation="tanh")(x)
    return keras.Model(inputs, keras.layers.Dense(1)(x))


def mobilenet():
    import keras

    return keras.applications.MobileNet(
        input_shape=(32, 32, 3), weights=None, classes=10, alpha=0.5
    )


WORKLOADS = {
    "reference 15-10-1": Workload(reference_model, (15,), "binary_crossentropy", 20),
    "200 dense layers": Workload(many_layers, (8,), "mse", 32),
    # Not in the default run: with a step of 60 to 250 ms (on two cores), a
    # row would need several minutes for as many rounds as the others.
    "MobileNet 32x32": Workload(
        mobilenet, (32, 32, 3), "sparse_categorical_crossentropy", 32
    ),
}
DEFAULT_WORKLOADS = ["reference 15-10-1", "200 dense layers"]


def limit_threads():
    """Restrict every framework to one thread on one core, before any starts.

    Sets what must be set before a framework is imported; main() sets
    TensorFlow's and PyTorch's own thread counts once they are. Returns the
    core the process is pinned to, or None where the system pins nothing.
    """
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # no framework claims a GPU
    os.environ["JAX_PLATFORMS"] = "cpu"
    # XLA's Eigen threads, for JAX and for TensorFlow's jit_compile.
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()
    os.environ["OMP_NUM_THREADS"] = "1"  # oneDNN, in TensorFlow and PyTorch
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def framework_threads(backend):
    """One intra-op and one inter-op thread in TensorFlow and PyTorch (which
    runs the CyclicLR reference on every backend); the settings as read back."""
    threads = {}
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        threads["tensorflow"] = {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        }
    if backend == "jax":
        threads["jax"] = {"xla_flags": os.environ["XLA_FLAGS"]}
    try:
        import torch
    except ImportError:
        return threads
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    threads["torch"] = {
        "intra_op": torch.get_num_threads(),
        "inter_op": torch.get_num_interop_threads(),
    }
    return threads


def parallelism(seconds=0.5):
    """CPU time over wall time while the backend multiplies large matrices:
    about 1 on one thread, up to the number of cores on more."""
    import keras

    a = keras.ops.ones((800, 800))
    keras.ops.convert_to_numpy(keras.ops.matmul(a, a))
    wall, cpu, end = time.perf_counter(), time.process_time(), 0.0
    while end < seconds:
        keras.ops.convert_to_numpy(keras.ops.matmul(a, a))
        end = time.perf_counter() - wall
    return (time.process_time() - cpu) / end


def require_device(device, backend):
    """Exit with one line if the backend sees no CUDA device."""
    if device != "cuda":
        return
    if backend == "tensorflow":
        import tensorflow as tf

        visible = bool(tf.config.list_physical_devices("GPU"))
    elif backend == "jax":
        import jax

        visible = any(d.platform == "gpu" for d in jax.devices())
    else:
        import torch

        visible = torch.cuda.is_available()
    if not visible:
        sys.exit(
            f"overhead.py: no CUDA device is visible to {backend}; run with "
            "--device cpu (the default) to measure on the CPU."
        )


def synchronize(backend, device):
    """A function of the model that waits until the work queued so far is
    done, so that a block's time holds all of its own work and none of the
    next block's: JAX dispatches asynchronously even on the CPU, and a GPU
    runs behind the host."""
    if backend == "jax":

        def wait(model):  # the step's outputs are ready together
            import jax

            jax.block_until_ready([v.value for v in model.trainable_variables])

        return wait
    if device == "cpu":
        return lambda model: None
    if backend == "torch":
        import torch

        return lambda model: torch.cuda.synchronize()
    import tensorflow as tf

    return lambda model: tf.test.experimental.sync_devices()


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform()}


def git_commit():
    """The checkout's commit, marked `+changes` when files differ from it
    (the figures are of the working tree), or None outside a checkout."""
    here = Path(__file__).parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+changes" if changed else "")


def callback_clr(step_size):
    """The 2017 approach: a Python counter and an assignment before each batch."""
    import keras

    class CallbackCLR(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.n = 0

        def on_train_batch_begin(self, batch, logs=None):
            cycle = np.floor(1 + self.n / (2 * step_size))
            x = abs(self.n / step_size - 2 * cycle + 1)
            rate = BASE_LR + (MAX_LR - BASE_LR) * max(0, 1 - x)
            self.model.optimizer.learning_rate = rate
            self.n += 1

    return CallbackCLR()


def contenders(optimizer="SGD"):
    """name: (make the optimizer, make the callbacks), stock first."""
    import keras

    import clr_optimizers

    stock = getattr(keras.optimizers, optimizer)
    ours = getattr(clr_optimizers, optimizer)
    clr = {"max_lr": MAX_LR, "step_size": STEP_SIZE}
    found = {
        "stock": (lambda: stock(BASE_LR), list),
        "stock_copy": (lambda: stock(BASE_LR), list),
        "clr": (lambda: ours(BASE_LR, clr=clr), list),
        "callback": (lambda: stock(BASE_LR), lambda: [callback_clr(STEP_SIZE)]),
        "monitor": (
            lambda: ours(BASE_LR, clr=clr),
            lambda: [clr_optimizers.LearningRateMonitor()],
        ),
        "keras_schedule": (
            lambda: stock(
                keras.optimizers.schedules.CosineDecay(BASE_LR, decay_steps=STEP_SIZE)
            ),
            list,
        ),
    }
    momentum = {**clr, "momentum": (0.85, 0.95)}
    try:  # cycling the momentum (beta_1): one more variable, set every update
        ours(BASE_LR, clr=momentum)
    except ValueError:  # Adagrad, Adadelta: no momentum
        pass
    else:
        found["clr_momentum"] = (lambda: ours(BASE_LR, clr=momentum), list)
    if keras.backend.backend() == "torch":
        # What a plain subclass gets on PyTorch: Keras's generic per-variable
        # update instead of the fused one it uses for its own exact classes.
        unfused = type(optimizer, (clr_optimizers.CyclicalOptimizer, stock), {})
        found["clr_unfused"] = (lambda: unfused(BASE_LR, clr=clr), list)
    return found


def data(workload, steps, seed=0):
    """The positional and keyword arguments of `fit` for an epoch of `steps`.

    On TensorFlow a batched tf.data.Dataset, built once: from arrays, `fit`
    builds and traces its own input pipeline on every call, which took 45 ms
    of CPU time (70 steps of the small model) at the start of every block.
    """
    import keras

    rng = np.random.default_rng(seed)
    rows = steps * workload.batch_size
    x = rng.random((rows, *workload.shape), dtype=np.float32)
    if workload.loss == "sparse_categorical_crossentropy":
        y = rng.integers(0, 10, size=rows)
    elif workload.loss == "binary_crossentropy":
        y = rng.integers(0, 2, size=rows).astype("float32")
    else:
        y = rng.random((rows, 1), dtype=np.float32)
    if keras.backend.backend() != "tensorflow":
        return (x, y), {"batch_size": workload.batch_size, "shuffle": False}
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(workload.batch_size)
    return (dataset,), {"shuffle": False}


def timed(run, clock, sync):
    """The clock's time for run() and the device's work it queued.

    The garbage collector is paused meanwhile, as in `timeit`: the
    collections it postpones run between blocks, untimed, instead of in
    whichever block they fall.
    """
    gc.disable()
    try:
        start = clock()
        sync(run())
        return clock() - start
    finally:
        gc.enable()


def interval(ratios):
    """The median of the per-round ratios and its 95% percentile-bootstrap
    interval, resampling whole rounds."""
    ratios = np.asarray(ratios)
    rng = np.random.default_rng(SEED)
    picks = rng.integers(0, len(ratios), size=(RESAMPLES, len(ratios)))
    low, high = np.percentile(np.median(ratios[picks], axis=1), [2.5, 97.5])
    return float(np.median(ratios)), float(low), float(high)


def summarise(ratios):
    ratio, low, high = interval(ratios)
    if low <= 1.0 <= high:
        verdict = "no measurable difference"
    else:
        verdict = "slower" if low > 1.0 else "faster"
    return {"ratio": ratio, "low": low, "high": high, "verdict": verdict}


def describe(result):
    span = f"[{result['low']:.3f}, {result['high']:.3f}]"
    if result["verdict"] == "no measurable difference":
        return f"no measurable difference {span}"
    return f"{result['ratio']:.3f} {span}"


def run_rounds(blocks, budget, rounds, seed=SEED):
    """Run `blocks` (name: () -> seconds) round by round, each round one
    block of each in a new random order, until there are `rounds` rounds or,
    without `rounds`, for `budget` seconds of wall time and at least
    MIN_ROUNDS. Returns name: its block's time in each round.

    (Running each contender's block right beside a stock block of its own
    instead costs almost twice the blocks per round, and measured in the same
    minutes on this benchmark's machine, its ratios were hardly less
    scattered: the noise is that of each block, not a drift over a round.)
    """
    order = random.Random(seed)
    times = {name: [] for name in blocks}
    start = time.perf_counter()

    def more():
        done = len(times["stock"])
        if rounds:
            return done < rounds
        return done < MIN_ROUNDS or time.perf_counter() - start < budget

    while more():
        for name in order.sample(list(blocks), len(blocks)):
            times[name].append(blocks[name]())
    return times


def compare(times, steps):
    """The stock step time in ms and each contender's ratios to it, round by
    round, from run_rounds()."""
    times = {name: np.asarray(t) for name, t in times.items()}
    stock = times.pop("stock")
    contenders = {
        name: {
            **summarise(t / stock),
            "ms_per_step": float(np.median(t)) / steps * 1e3,
        }
        for name, t in times.items()
    }
    return float(np.median(stock)) / steps * 1e3, contenders


def block_length(run, short, per_execution, seconds):
    """The steps of a block, the time of a call of fit besides its steps, and
    the time of a step, from run(steps) on epochs of `short` and 4 * `short`
    steps (the median of three of each).

    A block is `seconds` of the stock step, or longer where fit's own work
    per call (the epoch's iterator, the callbacks), which is the same for
    every contender and dilutes their ratios, would be more than a tenth of
    it.
    """
    times = [sorted(run(n) for _ in range(3))[1] for n in (short, 4 * short)]
    step = max((times[1] - times[0]) / (3 * short), 1e-9)
    call = max(times[0] - short * step, 0.0)
    executions = max(seconds, 9 * call) / step / per_execution
    return per_execution * max(1, round(executions)), call, step


def count_host_syncs(run):
    """The host synchronisations while run() runs (`cost.HostSyncs`: reads
    of a tensor's value on the host, copies to the host or to NumPy), which
    on a GPU wait for the device's queue to drain. PyTorch only."""
    from cost import HostSyncs

    with HostSyncs() as counted:
        run()
    return counted.syncs


def host_syncs(block, workload, steps):
    """Host synchronisations per step and per call of fit, from counts over
    epochs of `steps` and 2 * `steps` steps of block(inputs)."""
    counts = [count_host_syncs(block(data(workload, n))) for n in (steps, 2 * steps)]
    per_step = (counts[1] - counts[0]) / steps
    return {"per_step": per_step, "per_fit_call": counts[0] - steps * per_step}


def time_keras(workload_name, mode, args, clock, sync):
    """One row: every contender on its own copy of the workload's model,
    compiled in `mode`, timed against stock."""
    import keras

    started = time.perf_counter()
    workload = WORKLOADS[workload_name]
    per_execution = MODES[mode].get("steps_per_execution", 1)
    if keras.backend.backend() == "torch" and mode == "jit_compile":
        import torch._dynamo

        # torch.compile keeps a compiled step per model, up to 8 per function
        # by default, and runs the steps of any further models eagerly.
        torch._dynamo.config.recompile_limit = 64
    models = {}
    for name, (make_optimizer, make_callbacks) in contenders(args.optimizer).items():
        keras.utils.set_random_seed(0)
        model = workload.build()
        model.compile(optimizer=make_optimizer(), loss=workload.loss, **MODES[mode])
        models[name] = (model, make_callbacks())

    def block(name, inputs):
        model, callbacks = models[name]
        positional, keywords = inputs

        def run():
            model.fit(*positional, epochs=1, verbose=0, callbacks=callbacks, **keywords)
            return model

        return lambda: timed(run, clock, sync)

    # Every model compiles its step on a short epoch, and the stock model's
    # epochs of two lengths give the block's length.
    short = per_execution * max(1, 8 // per_execution)
    inputs = {n: data(workload, n) for n in (short, 4 * short)}
    for name in models:
        block(name, inputs[short])()
    steps, call, step = block_length(
        lambda n: block("stock", inputs[n])(), short, per_execution, args.block_seconds
    )
    inputs = data(workload, steps)
    blocks = {name: block(name, inputs) for name in models}
    run_rounds(blocks, 0, 1)  # warm-up: the first epochs of this length
    times = run_rounds(blocks, args.seconds, args.rounds)
    stock_ms, results = compare(times, steps)
    row = {
        "workload": workload_name,
        "mode": mode,
        "jit_compile": bool(models["stock"][0].jit_compile),
        "steps_per_execution": per_execution,
        "batch_size": workload.batch_size,
        "steps_per_block": steps,
        # What one call of fit costs besides its steps, and its share of a
        # stock block: every ratio understates the per-step difference by
        # up to that share.
        "fit_call_ms": call * 1e3,
        "fit_call_share": call / (call + steps * step),
        "rounds": len(times["stock"]),
        "stock_ms_per_step": stock_ms,
        "contenders": results,
        # Every block's time in seconds, round by round, for other statistics.
        "block_times": times,
    }
    if keras.backend.backend() == "torch" and mode == "eager":
        # Not under torch.compile, which runs eagerly while a dispatch mode
        # (the counter) is active.
        row["host_syncs"] = {
            name: host_syncs(lambda i, n=name: block(n, i), workload, max(steps, 8))
            for name in ("stock", "clr")
        }
    variables = {name: len(m.optimizer.variables) for name, (m, _) in models.items()}
    row["optimizer_variables"] = variables
    row["model_variables"] = len(models["stock"][0].trainable_variables)
    row["extra_optimizer_variables"] = variables["clr"] - variables["stock"]
    # All of it: building, compiling and warming up included.
    row["wall_seconds"] = time.perf_counter() - started
    return row


def time_torch(args, clock, batch_size=20):
    """torch.optim.SGD on the 15-10-1 model, with and without CyclicLR."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    loss_fn = torch.nn.BCELoss()

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
                optimizer, base_lr=BASE_LR, max_lr=MAX_LR, step_size_up=STEP_SIZE
            )
        return model, optimizer, scheduler

    def block(model, optimizer, scheduler, x, y):
        def run():
            for i in range(len(x) // batch_size):
                xb = x[i * batch_size : (i + 1) * batch_size]
                yb = y[i * batch_size : (i + 1) * batch_size]
                optimizer.zero_grad()
                loss_fn(model(xb), yb).backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()

        return lambda: timed(run, clock, lambda _: None)

    def inputs(steps):
        x = torch.rand(steps * batch_size, 15)
        return x, torch.randint(0, 2, (steps * batch_size, 1)).float()

    runs = {"stock": make(False), "cyclic_lr": make(True)}
    probe = inputs(50)
    for run in runs.values():
        block(*run, *probe)()
    step = block(*runs["stock"], *probe)() / 50
    steps = max(1, round(args.block_seconds / step))
    data = inputs(steps)
    blocks = {name: block(*run, *data) for name, run in runs.items()}
    run_rounds(blocks, 0, 1)
    # A quarter of a row's time: one contender, and no call of fit to amortise.
    times = run_rounds(blocks, args.seconds / 4, args.rounds)
    stock_ms, results = compare(times, steps)
    return {
        "steps_per_block": steps,
        "rounds": len(times["stock"]),
        "stock_ms_per_step": stock_ms,
        "cyclic_lr": results["cyclic_lr"],
    }


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: the small model in every mode, 3 rounds of short blocks",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=75.0,
        help="wall time of the timed rounds of each workload and mode "
        f"(default: %(default)s; at least {MIN_ROUNDS} rounds)",
    )
    parser.add_argument(
        "--rounds", type=int, help="a fixed number of rounds instead of --seconds"
    )
    parser.add_argument(
        "--block-seconds",
        type=float,
        default=BLOCK_SECONDS,
        help="the stock optimizer's time per block (default: %(default)s)",
    )
    parser.add_argument(
        "--workloads", nargs="+", choices=list(WORKLOADS), default=DEFAULT_WORKLOADS
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=list(MODES),
        help="default: every mode the backend has (but torch.compile of the "
        "200-layer model)",
    )
    parser.add_argument(
        "--optimizer", default="SGD", help="a class of clr_optimizers.OPTIMIZERS"
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="cpu: CPU time of one thread; cuda: wall time per step on the GPU",
    )
    parser.add_argument(
        "--json",
        help="where to write the figures (default: overhead_<backend>.json here)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.workloads = args.workloads[:1]
        args.rounds, args.block_seconds = 3, 0.005
    return parser, args


def main(argv=None):
    parser, args = parse_args(argv)
    core = limit_threads() if args.device == "cpu" else None
    import keras

    import clr_optimizers

    backend = keras.backend.backend()
    require_device(args.device, backend)
    if args.json is None:
        args.json = str(Path(__file__).parent / f"overhead_{backend}.json")
    if args.optimizer not in [o.__name__ for o in clr_optimizers.OPTIMIZERS]:
        parser.error(f"--optimizer: no optimizer {args.optimizer!r}")
    if args.device == "cpu":
        threads = framework_threads(backend)
        clock, clock_name = time.process_time, "CPU time (time.process_time)"
    else:
        threads = "framework defaults"
        clock, clock_name = time.perf_counter, "wall time up to a device sync"
    sync = synchronize(backend, args.device)
    modes = [m for m in args.modes or MODES if m in BACKEND_MODES[backend]]
    versions = {
        "clr_optimizers": clr_optimizers.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    for name in ("tensorflow", "jax", "torch"):
        if name in sys.modules:
            versions[name] = sys.modules[name].__version__
    host = {**machine(), "pinned_to_core": core}
    measured = parallelism() if args.device == "cpu" else None
    commit = git_commit()

    print(", ".join(f"{k} {v}" for k, v in versions.items()))
    print(
        f"backend {backend} on {args.device}; {host['cpu']}, {host['cores']} cores"
        + (f", pinned to core {core}" if core is not None else "")
        + f"; {date.today()}, commit {commit[:12] if commit else None}"
    )
    if args.device == "cpu":
        print(
            "threads: "
            + "; ".join(
                f"{name} " + ", ".join(f"{k} {v}" for k, v in t.items())
                for name, t in threads.items()
            )
            + f"; measured parallelism {measured:.2f} (CPU time / wall time)"
        )
    budget = f"{args.rounds} rounds" if args.rounds else f"{args.seconds:g} s"
    print(
        f"clock: {clock_name}; {budget} of paired blocks per row\n\n"
        f"{args.optimizer}: contender/stock, the median of the per-round ratios "
        "[95% bootstrap interval]"
    )
    results = []
    started = time.perf_counter()
    for workload in args.workloads:
        for mode in modes:
            if args.modes is None and (backend, workload, mode) in NOT_BY_DEFAULT:
                continue
            row = time_keras(workload, mode, args, clock, sync)
            results.append(row)
            print(
                f"\n{workload}, {mode}: stock {row['stock_ms_per_step']:.3f} "
                f"ms/step; {row['rounds']} rounds of {row['steps_per_block']} steps"
            )
            for name, result in row["contenders"].items():
                print(f"  {name:<16} {describe(result)}", flush=True)
            for name, syncs in row.get("host_syncs", {}).items():
                print(
                    f"  host syncs of {name}: {syncs['per_step']:g} per step, "
                    f"{syncs['per_fit_call']:g} per call of fit"
                )
    torch_row = time_torch(args, clock) if args.device == "cpu" else None
    if torch_row is None:
        print("\nPyTorch's CyclicLR reference: skipped (PyTorch absent, or a GPU).")
    else:
        print(
            f"\nPyTorch, 15-10-1 model, batch 20: torch.optim "
            f"{torch_row['stock_ms_per_step']:.3f} ms/step; with CyclicLR "
            f"{describe(torch_row['cyclic_lr'])} ({torch_row['rounds']} rounds)"
        )
    extra = sorted({r["extra_optimizer_variables"] for r in results})
    print(
        "\nOptimizer variables added by clr, for models of "
        + ", ".join(str(p) for p in sorted({r["model_variables"] for r in results}))
        + " variables: "
        + ", ".join(f"{e:g}" for e in extra)
    )
    worst = max(results, key=lambda r: r["contenders"]["clr"]["ratio"])
    print(
        f"Largest clr/stock ratio: {describe(worst['contenders']['clr'])} "
        f"({worst['workload']}, {worst['mode']})"
    )
    total = time.perf_counter() - started
    print(f"Measured in {total / 60:.1f} minutes")
    with open(args.json, "w") as f:
        json.dump(
            {
                "date": str(date.today()),
                "commit": commit,
                "versions": versions,
                "backend": backend,
                "device": args.device,
                "machine": host,
                "threads": threads,
                "measured_parallelism": measured,
                "clock": clock_name,
                "optimizer": args.optimizer,
                "quick": args.quick,
                "seconds": None if args.rounds else args.seconds,
                "block_seconds": args.block_seconds,
                "wall_seconds": total,
                "bootstrap": {"resamples": RESAMPLES, "seed": SEED, "level": 0.95},
                "keras_results": results,
                "torch": torch_row,
            },
            f,
            indent=2,
        )
    print(f"Written to {args.json}")


if __name__ == "__main__":
    main()
