"""What one update costs, counted rather than timed.

For one optimizer update (`optimizer.apply(grads, variables)`), relative to
the stock optimizer at a constant rate (a function returning the number,
which costs no operation; Keras's default, a rate variable, which its rules
read once per model variable, is a row of its own), on each installed
backend:

- TensorFlow: the graph operations of the traced update. Every node counts
  once, except constants and inputs (captured variables), which are data
  rather than work; a conditional counts once plus its larger branch, and a
  function call counts as its body. (An update has no loop, whose body
  would run a varying number of times: the count refuses one.)
- JAX: the equations of the update's jaxpr, counted the same way (a
  conditional once plus its larger branch, a nested jaxpr as its body).
- PyTorch: the ATen operations one eager update dispatches, counted with a
  dispatch mode.

and the host synchronisations per update: on PyTorch the reads of a tensor's
value on the host (`aten._local_scalar_dense`, which `.item()` and every
conversion of a tensor to a Python number go through, `aten.item`) and
copies from a device to the host or to NumPy; on TensorFlow and JAX the operations that
call back into Python (`PyFunc`, `EagerPyFunc`, printing; jaxpr
`*_callback`), the only way a compiled step reaches the host.

Each row is measured with 16 model variables (8 dense layers of 8 units) and
with 400 (200 such layers), to show that the cost does not grow with the
model. The rows with groups (`groups=`, discriminative rates) split the
variables among the groups and the optimizer's own bounds in turn, to show
that each group adds a constant number of operations. Keras's own
schedules, driving the stock optimizer, stand beside the rows for scale.

The counts are deterministic for given library versions.

    python benchmarks/cost.py              # every installed backend
    python benchmarks/cost.py --backends tensorflow
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BACKENDS = ("tensorflow", "jax", "torch")
SIZES = (16, 400)

PEAK = 0.06
# name: (optimizer, keyword arguments of the CLR class); the stock baseline
# is the same optimizer class from Keras with `STOCK_ARGUMENTS`, its rate a
# constant that costs no operation (a function returning the number).
STOCK_ARGUMENTS = {
    "SGD": {"learning_rate": 0.01, "momentum": 0.9},
    "Adam": {"learning_rate": 0.001},
}
TRIANGULAR = {"max_lr": PEAK, "step_size": 2000}
ONE_CYCLE = {"mode": "one_cycle", "max_lr": PEAK, "total_steps": 10_000}
MOMENTUM = {"momentum": (0.85, 0.95)}
ROWS: dict[str, tuple[str, dict]] = {
    "triangular": ("SGD", {"clr": TRIANGULAR}),
    "triangular2": ("SGD", {"clr": {**TRIANGULAR, "mode": "triangular2"}}),
    "exp_range": ("SGD", {"clr": {**TRIANGULAR, "mode": "exp_range", "gamma": 0.9999}}),
    "modified_triangular2": (
        "SGD",
        {"clr": {**TRIANGULAR, "mode": "modified_triangular2"}},
    ),
    "triangular, cos ramp": ("SGD", {"clr": {**TRIANGULAR, "ramp": "cos"}}),
    "triangular, decay": ("SGD", {"clr": TRIANGULAR, "decay": 1e-4}),
    "time decay (no clr)": ("SGD", {"decay": 1e-4}),
    "one_cycle": ("SGD", {"clr": ONE_CYCLE}),
    "one_cycle, three phases, linear": (
        "SGD",
        {"clr": {**ONE_CYCLE, "three_phase": True, "anneal_strategy": "linear"}},
    ),
    "warm_restarts": (
        "SGD",
        {"clr": {"mode": "warm_restarts", "max_lr": PEAK, "period": 1000}},
    ),
    "warm_restarts, period_mult 2": (
        "SGD",
        {
            "clr": {
                "mode": "warm_restarts",
                "max_lr": PEAK,
                "period": 1000,
                "period_mult": 2,
            }
        },
    ),
    "polynomial": (
        "SGD",
        {"clr": {"mode": "polynomial", "max_lr": PEAK, "decay_steps": 10_000}},
    ),
    "step": ("SGD", {"clr": {"mode": "step", "max_lr": PEAK, "drop_every": 1000}}),
    "warmup + triangular": ("SGD", {"clr": {**TRIANGULAR, "warmup_steps": 500}}),
    "warmup + one_cycle": ("SGD", {"clr": {**ONE_CYCLE, "warmup_steps": 500}}),
    "chain: triangular, then one_cycle": (
        "SGD",
        {
            "clr": {
                "mode": "chain",
                "max_lr": PEAK,
                "policies": [{"step_size": 2000}, ONE_CYCLE],
                "boundaries": [8000],
            }
        },
    ),
    "triangular + momentum": ("SGD", {"clr": {**TRIANGULAR, **MOMENTUM}}),
    "one_cycle + momentum": ("SGD", {"clr": {**ONE_CYCLE, **MOMENTUM}}),
    "Adam, one_cycle + momentum": ("Adam", {"clr": {**ONE_CYCLE, **MOMENTUM}}),
    **{
        f"triangular, {n} group{'s' * (n > 1)} by factor": (
            "SGD",
            {"clr": TRIANGULAR, "groups": ("factor", n)},
        )
        for n in (1, 2, 8)
    },
    **{
        f"triangular, {n} group{'s' * (n > 1)} with bounds": (
            "SGD",
            {"clr": TRIANGULAR, "groups": ("bounds", n)},
        )
        for n in (1, 2, 8)
    },
}
# Keras's own schedules, driving stock SGD: name -> (class, arguments).
KERAS_ROWS: dict[str, tuple[str, dict]] = {
    "Keras CosineDecay": (
        "CosineDecay",
        {"initial_learning_rate": PEAK, "decay_steps": 10_000},
    ),
    "Keras CosineDecay with warmup": (
        "CosineDecay",
        {
            "initial_learning_rate": 0.0,
            "decay_steps": 10_000,
            "warmup_target": PEAK,
            "warmup_steps": 500,
        },
    ),
    "Keras CosineDecayRestarts": (
        "CosineDecayRestarts",
        {"initial_learning_rate": PEAK, "first_decay_steps": 1000},
    ),
    "Keras PiecewiseConstantDecay": (
        "PiecewiseConstantDecay",
        {"boundaries": [1000, 2000], "values": [PEAK, PEAK / 10, PEAK / 100]},
    ),
}
# The rows that must not cost more than the nearest Keras schedule (or up to
# 25% more, as docs/performance.md justifies operation by operation).
BOUNDS = {
    "one_cycle": "Keras CosineDecay with warmup",
    "warmup + triangular": "Keras CosineDecay with warmup",
    "warm_restarts": "Keras CosineDecayRestarts",
    "warm_restarts, period_mult 2": "Keras CosineDecayRestarts",
}


def shapes(size):
    """The model variables' shapes: dense layers of 8 units."""
    return [(8, 8), (8,)] * (size // 2)


def names(size):
    """The model variables' names (and paths): `v0`, `v1`, ..."""
    return [f"v{i}" for i in range(size)]


def groups(kind, count):
    """`count` groups, each a factor or bounds of its own: variable `i` is in
    group `i % (count + 1)` (0: the optimizer's own bounds), at any size."""
    made = []
    for j in range(1, count + 1):
        paths = [
            name for i, name in enumerate(names(max(SIZES))) if i % (count + 1) == j
        ]
        rate = (
            {"factor": 0.5}
            if kind == "factor"
            else {"learning_rate": 0.002, "max_lr": 0.02}
        )
        made.append({"paths": paths, **rate})
    return made


STOCK_VARIABLE = "Keras SGD, its rate a variable"


def optimizers():
    """name -> a function making a fresh optimizer, with the stock baselines
    under "stock SGD" and "stock Adam"."""
    import keras

    import clr_optimizers

    made = {
        f"stock {name}": (
            lambda name=name, a=a: getattr(keras.optimizers, name)(
                **{**a, "learning_rate": lambda rate=a["learning_rate"]: rate}
            )
        )
        for name, a in STOCK_ARGUMENTS.items()
    }
    # Keras's default: the rate a variable, which the stock rules read once
    # per model variable (and, on PyTorch, `SGD` reads on the host).
    made[STOCK_VARIABLE] = lambda: keras.optimizers.SGD(**STOCK_ARGUMENTS["SGD"])
    for name, (optimizer, arguments) in ROWS.items():
        stock = dict(STOCK_ARGUMENTS[optimizer])
        if "momentum" in arguments.get("clr", {}):  # then its highest value
            stock.pop("momentum", None)
        if "groups" in arguments:
            arguments = {**arguments, "groups": groups(*arguments["groups"])}
        made[name] = lambda o=optimizer, a={**stock, **arguments}: getattr(
            clr_optimizers, o
        )(**a)
    for name, (schedule, arguments) in KERAS_ROWS.items():
        made[name] = lambda s=schedule, a=arguments: keras.optimizers.SGD(
            getattr(keras.optimizers.schedules, s)(**a), momentum=0.9
        )
    return made


def baseline(name):
    return "stock Adam" if ROWS.get(name, ("SGD",))[0] == "Adam" else "stock SGD"


# Counting, one backend each.


def count_tensorflow(make, size):
    import keras
    import tensorflow as tf

    variables = [
        keras.Variable(tf.zeros(s), name=n) for s, n in zip(shapes(size), names(size))
    ]
    optimizer = make()
    optimizer.build(variables)

    @tf.function
    def update(grads):
        optimizer.apply(grads, variables)

    graph = update.get_concrete_function([tf.zeros(s) for s in shapes(size)]).graph
    return _graph_cost(graph)


_DATA = {"Const", "Placeholder", "NoOp"}
_HOST = {"PyFunc", "PyFuncStateless", "EagerPyFunc", "PrintV2", "Print"}


def _graph_cost(graph):
    """(operations, host calls) of a TensorFlow graph, its conditionals
    counted with their larger branch and its calls with their bodies."""
    from tensorflow.python.framework import function_def_to_graph

    def body(name):
        definition = graph._get_function(name).cached_definition
        return _graph_cost(function_def_to_graph.function_def_to_graph(definition))

    ops = host = 0
    for op in graph.get_operations():
        if op.type in _HOST:
            host += 1
        if op.type in ("If", "StatelessIf"):
            branches = [
                body(op.get_attr(b).name) for b in ("then_branch", "else_branch")
            ]
            ops += 1 + max(b[0] for b in branches)
            host += max(b[1] for b in branches)
        elif op.type in ("Case", "StatelessCase"):
            branches = [body(f.name) for f in op.get_attr("branches")]
            ops += 1 + max(b[0] for b in branches)
            host += max(b[1] for b in branches)
        elif op.type in ("PartitionedCall", "StatefulPartitionedCall"):
            inner = body(op.get_attr("f").name)
            ops, host = ops + inner[0], host + inner[1]
        elif op.type in ("While", "StatelessWhile"):  # none in an update
            raise ValueError("a loop's operations run a varying number of times")
        elif op.type not in _DATA:
            ops += 1
    return ops, host


def count_jax(make, size):
    import jax.extend
    import jax.numpy as jnp
    import keras

    variables = [
        keras.Variable(jnp.zeros(s), name=n) for s, n in zip(shapes(size), names(size))
    ]
    optimizer = make()
    optimizer.build(variables)
    values = [v.value for v in optimizer.variables]
    grads = [jnp.zeros(s) for s in shapes(size)]
    trainable = [v.value for v in variables]
    jaxpr = jax.make_jaxpr(optimizer.stateless_apply)(values, grads, trainable)
    return _jaxpr_cost(jaxpr.jaxpr)


def _jaxpr_cost(jaxpr):
    import jax.extend

    closed = (jax.extend.core.ClosedJaxpr, jax.extend.core.Jaxpr)
    ops = host = 0
    for eqn in jaxpr.eqns:
        if "callback" in eqn.primitive.name:
            host += 1
        branches = eqn.params.get("branches")
        inner = [v for v in eqn.params.values() if isinstance(v, closed)]
        if eqn.primitive.name in ("while", "scan"):  # none in an update
            raise ValueError("a loop's equations run a varying number of times")
        if branches:
            costs = [_jaxpr_cost(b.jaxpr) for b in branches]
            ops += 1 + max(c[0] for c in costs)
            host += max(c[1] for c in costs)
        elif inner:
            for sub in inner:
                c = _jaxpr_cost(getattr(sub, "jaxpr", sub))
                ops, host = ops + c[0], host + c[1]
        else:
            ops += 1
    return ops, host


class HostSyncs:
    """Counts, within its block, the ATen operations PyTorch dispatches and
    the host synchronisations among them (`ops`, `syncs`): reads of a
    tensor's value on the host (a tensor passed where PyTorch takes a Python
    number, `.item()`, `float()`), copies from a device to the host, and
    copies to NumPy (`keras.ops.convert_to_numpy`), which on a CPU dispatch
    no operation but on a GPU copy to the host."""

    READS = ("aten._local_scalar_dense", "aten.item", "aten.is_nonzero")
    TO_NUMPY = ("__array__", "numpy", "tolist")

    def __init__(self):
        from torch.overrides import TorchFunctionMode
        from torch.utils._python_dispatch import TorchDispatchMode

        counter = self

        class Dispatched(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                counter.ops += 1
                name = str(func.overloadpacket)
                if name in HostSyncs.READS or _to_host(func, args, kwargs):
                    counter.syncs += 1
                return func(*args, **(kwargs or {}))

        class Called(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                if getattr(func, "__name__", "") in HostSyncs.TO_NUMPY:
                    counter.syncs += 1
                return func(*args, **(kwargs or {}))

        self.ops = self.syncs = 0
        self._modes = (Called(), Dispatched())

    def __enter__(self):
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc):
        for mode in reversed(self._modes):
            mode.__exit__(*exc)


def _to_host(func, args, kwargs):
    """Whether an operation copies a tensor from a device to the host."""
    import torch

    name = str(func.overloadpacket)
    if name == "aten._to_copy":
        source, device = args[0], (kwargs or {}).get("device")
        return (
            device is not None
            and torch.device(device).type == "cpu"
            and (source.device.type != "cpu")
        )
    if name == "aten.copy_":
        return args[0].device.type == "cpu" and args[1].device.type != "cpu"
    return False


def count_torch(make, size):
    import keras
    import torch

    variables = [
        keras.Variable(torch.zeros(s), name=n)
        for s, n in zip(shapes(size), names(size))
    ]
    optimizer = make()
    optimizer.build(variables)
    grads = [torch.zeros(s) for s in shapes(size)]
    optimizer.apply(grads, variables)  # the first update may set things up
    with HostSyncs() as counted:
        optimizer.apply(grads, variables)
    return counted.ops, counted.syncs


def fit_torch(batches=8):
    """Per update of `model.fit` on PyTorch (the 15-10-1 model, batch 20):
    the ATen operations and host syncs of Keras's SGD (its rate a variable,
    the default), of the CLR SGD, and of
    the CLR SGD with a `LearningRateMonitor`, which reads nothing from the
    device per update. Per update means the difference between a fit of
    `2 * batches` updates and one of `batches`, over `batches`: what each
    fit does once (setting up, and the monitor's reading at the end of an
    epoch) cancels out."""
    import keras
    import numpy as np

    import clr_optimizers

    rng = np.random.default_rng(0)
    x = rng.random((40 * batches, 15), dtype=np.float32)
    y = rng.integers(0, 2, (40 * batches, 1)).astype("float32")
    made = optimizers()
    runs = {
        STOCK_VARIABLE: (made[STOCK_VARIABLE], []),
        "triangular": (made["triangular"], []),
        "triangular + monitor": (
            made["triangular"],
            [clr_optimizers.LearningRateMonitor()],
        ),
    }
    result = {}
    for name, (make, callbacks) in runs.items():
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((15,)),
                keras.layers.Dense(10, activation="relu"),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        model.compile(optimizer=make(), loss="binary_crossentropy")
        fit = dict(batch_size=20, epochs=1, verbose=0, callbacks=callbacks)
        model.fit(x, y, **fit)  # the first fit sets things up
        counts = []
        for rows in (20 * batches, 40 * batches):
            with HostSyncs() as counted:
                model.fit(x[:rows], y[:rows], **fit)
            counts.append((counted.ops, counted.syncs))
        (ops, syncs), (more_ops, more_syncs) = counts
        result[name] = [(more_ops - ops) / batches, (more_syncs - syncs) / batches]
    return result


COUNTERS = {
    "tensorflow": count_tensorflow,
    "jax": count_jax,
    "torch": count_torch,
}


def measure(backend, rows=None):
    """{row: {size: [operations, host syncs]}} on this process's backend,
    absolute (not yet relative to the stock optimizer); `rows`, a substring,
    limits the rows (the stock baselines are always measured)."""
    import keras

    assert keras.backend.backend() == backend, keras.backend.backend()
    count = COUNTERS[backend]
    return {
        name: {size: list(count(make, size)) for size in SIZES}
        for name, make in optimizers().items()
        if rows is None or rows in name or name.startswith("stock ")
    }


def measure_child(backend, rows=None):
    """What the child process of one backend reports."""
    measured = {"update": measure(backend, rows)}
    if backend == "torch" and rows is None:
        measured["fit"] = fit_torch()
    return measured


def added(absolute):
    """{row: {size: [operations added, host syncs added]}} over its stock
    baseline."""
    result = {}
    for name, by_size in absolute.items():
        if name.startswith("stock "):
            continue
        stock = absolute[baseline(name)]
        result[name] = {
            size: [by_size[size][i] - stock[size][i] for i in (0, 1)]
            for size in by_size
        }
    return result


def installed(backend):
    return importlib.util.find_spec(backend) is not None


def run_backend(backend, rows=None):
    """Measures in a fresh process, since Keras fixes its backend at import."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(
        [sys.executable, __file__, "--measure", backend]
        + ([] if rows is None else ["--rows", rows]),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"{backend}:\n{out.stderr[-3000:]}")
    measured = json.loads(out.stdout.splitlines()[-1])
    update = measured["update"]
    measured["update"] = {
        name: {int(s): v for s, v in by.items()} for name, by in update.items()
    }
    return measured


def versions():
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("clr-optimizers", "keras", "tensorflow", "jax", "torch"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def cell(small, large):
    """One backend's figures for a row: the operations added (at 16 and at
    400 model variables, one figure where they agree) and the host syncs."""
    ops = f"{small[0]}" if small[0] == large[0] else f"{small[0]} / {large[0]}"
    syncs = f"{small[1]}" if small[1] == large[1] else f"{small[1]} / {large[1]}"
    return f"{ops}, {syncs}"


def markdown(recorded):
    """The table of docs/performance.md, from the recorded figures."""
    added = recorded["added"]
    backends = list(added)
    names = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
    lines = [
        "| row | " + " | ".join(names[b] for b in backends) + " |",
        "|---|" + "---|" * len(backends),
    ]
    for name in added[backends[0]]:
        cells = [cell(*(added[b][name][str(s)] for s in SIZES)) for b in backends]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(results):
    """The printed table: per row and backend, operations added at 16 and 400
    model variables, and host syncs added."""
    backends = list(results)
    names = [n for n in results[backends[0]]]
    header = f"{'row':<34}" + "".join(
        f" {b + ' ops':>16} {'syncs':>5}" for b in backends
    )
    lines = [header, "-" * len(header)]
    for name in names:
        cells = ""
        for b in backends:
            ops, syncs = cell(*(results[b][name][s] for s in SIZES)).split(", ")
            cells += f" {ops:>16} {syncs:>5}"
        lines.append(f"{name:<34}{cells}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS)
    parser.add_argument("--json", default=str(HERE / "cost.json"))
    parser.add_argument(
        "--rows", help="only the rows whose name contains this (for a quick look)"
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print the documentation's table from the JSON file, and stop",
    )
    parser.add_argument("--measure", choices=BACKENDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.markdown:
        with open(args.json) as f:
            print(markdown(json.load(f)))
        return
    if args.measure:  # the child process of one backend
        print(json.dumps(measure_child(args.measure, args.rows)))
        return
    backends = args.backends or [b for b in BACKENDS if installed(b)]
    measured = {backend: run_backend(backend, args.rows) for backend in backends}
    absolute = {backend: m["update"] for backend, m in measured.items()}
    results = {backend: added(a) for backend, a in absolute.items()}
    fit = measured.get("torch", {}).get("fit")
    print(
        "Added per update over the stock optimizer (stock SGD with momentum 0.9, "
        "or stock Adam), at 16 and 400 model variables (one figure where they "
        "agree):\n"
    )
    print(table(results))
    if fit:
        print("\nPyTorch, per update of model.fit (15-10-1 model, batch 20):")
        for name, (ops, syncs) in fit.items():
            print(f"  {name:<22} {ops:6.1f} ATen operations, {syncs:g} host syncs")
    with open(args.json, "w") as f:
        json.dump(
            {
                "versions": versions(),
                "sizes": list(SIZES),
                "added": results,
                "absolute": absolute,
                "torch_fit": fit,
            },
            f,
            indent=1,
        )
    print(f"\nWritten to {args.json}")


if __name__ == "__main__":
    main()
