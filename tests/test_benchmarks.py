"""The benchmark scripts run (their --quick smoke mode; timings are not checked)."""

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BACKEND

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def run(script, *args):
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow
def test_overhead_quick(tmp_path):
    path = tmp_path / "overhead.json"
    stdout = run("overhead.py", "--json", str(path))
    assert "the median of the per-round ratios" in stdout
    result = json.loads(path.read_text())
    modes = {row["mode"] for row in result["keras_results"]}
    expected = {
        "tensorflow": {"graph", "jit_compile", "steps_per_execution=32"},
        "jax": {"jit_compile", "steps_per_execution=32"},  # jit_compile=False is eager
        "torch": {"eager", "jit_compile"},  # one step per execution only
    }[BACKEND]
    contenders = {
        "stock_copy",
        "clr",
        "clr_momentum",
        "callback",
        "keras_schedule",
        "monitor",
    }
    if BACKEND == "torch":  # the fused-rule check
        contenders.add("clr_unfused")
    assert modes == expected
    assert result["backend"] == BACKEND
    assert result["device"] == "cpu"
    assert result["versions"][BACKEND]
    assert result["machine"]["cpu"]
    assert result["machine"]["cores"] >= 1
    commit = result["commit"]
    assert commit is None or len(commit.removesuffix("+changes")) == 40
    # One thread per framework, and one core: CPU time over wall time is at
    # most 1, the timer's resolution aside.
    if BACKEND in ("tensorflow", "torch"):
        assert result["threads"][BACKEND] == {"intra_op": 1, "inter_op": 1}
    else:
        assert (
            "--xla_cpu_multi_thread_eigen=false"
            in result["threads"]["jax"]["xla_flags"]
        )
    assert 0 < result["measured_parallelism"] <= 1.05
    for row in result["keras_results"]:
        # max_lr and the restart point, whatever the model
        assert row["extra_optimizer_variables"] == 2
        assert row["rounds"] == 3
        assert row["stock_ms_per_step"] > 0
        assert set(row["contenders"]) == contenders
        assert set(row["block_times"]) == {"stock", *contenders}
        assert all(len(times) == 3 for times in row["block_times"].values())
        for found in row["contenders"].values():
            assert 0 < found["low"] <= found["ratio"] <= found["high"]
            verdict = "no measurable difference"
            if found["low"] > 1:
                verdict = "slower"
            elif found["high"] < 1:
                verdict = "faster"
            assert found["verdict"] == verdict
        if BACKEND == "torch" and row["mode"] == "eager":
            assert set(row["host_syncs"]) == {"stock", "clr"}
            assert row["host_syncs"]["clr"]["per_step"] >= 0
    assert result["torch"]["rounds"] == 3


def cuda_visible():
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if BACKEND == "jax":
        import jax

        return any(device.platform == "gpu" for device in jax.devices())
    import torch

    return torch.cuda.is_available()


@pytest.mark.slow
def test_overhead_cuda_without_a_device(tmp_path):
    """Asking for a GPU the backend does not see ends with one line saying so
    and how to run on the CPU, before anything is timed or written."""
    if cuda_visible():
        pytest.skip("a CUDA device is visible")
    path = tmp_path / "overhead.json"
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "overhead.py"), "--device", "cuda"]
        + ["--json", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode != 0
    assert out.stderr.splitlines()[-1] == (
        f"overhead.py: no CUDA device is visible to {BACKEND}; run with "
        "--device cpu (the default) to measure on the CPU."
    )
    assert not path.exists()


RULES = ("min_loss", "steepest", "valley", "minimum")
CONTENDERS = {
    "keras_default",
    "time_decay",
    "cosine_decay",
    "one_cycle",
    "modified_triangular2",
    "exp_range",
    *(f"{kind}:{rule}" for kind in ("constant", "triangular") for rule in RULES),
    *(f"grid:{k}" for k in range(-4, 2)),
}


def quartiles(values):
    """Nearest-rank quartiles, restated: the sorted values at the positions
    (n - 1) q rounded half to even, as NumPy's "nearest" method does."""
    ordered = sorted(values)
    return [ordered[round((len(ordered) - 1) * q)] for q in (0.25, 0.5, 0.75)]


def check_convergence(result):
    """Every summary follows from the per-seed curves in the same file."""
    runs = {}
    for run in result["runs"]:
        assert len(run["val_accuracy"]) == len(run["val_loss"]) == result["epochs"]
        key = (run["problem"], run["optimizer"], run["contender"])
        runs.setdefault(key, {})[run["seed"]] = run
    units = {(p, o) for p, o, _ in runs}
    for by_seed in runs.values():
        assert set(by_seed) == set(range(result["seeds"]))
    for unit in units:
        assert {c for p, o, c in runs if (p, o) == unit} == CONTENDERS
    target = {name: p["target"] for name, p in result["problems"].items()}
    summaries = {
        (s["problem"], s["optimizer"], s["contender"]): s for s in result["summaries"]
    }
    for (problem, optimizer, contender), by_seed in runs.items():
        curves = [by_seed[s] for s in sorted(by_seed)]
        summary = summaries[(problem, optimizer, contender)]
        reached = [
            next(
                (
                    i + 1
                    for i, a in enumerate(c["val_accuracy"])
                    if a >= target[problem]
                ),
                None,
            )
            for c in curves
        ]
        finals = [c["val_accuracy"][-1] for c in curves]
        bests = [max(c["val_accuracy"]) for c in curves]
        q1, median, q3 = quartiles([float("inf") if r is None else r for r in reached])
        expected = [None if v == float("inf") else v for v in (q1, median, q3)]
        epochs = summary["epochs_to_target"]
        assert [epochs["q1"], epochs["median"], epochs["q3"]] == expected
        losses = [c["val_loss"][-1] for c in curves]
        for field, values in (
            ("final_val_accuracy", finals),
            ("best_val_accuracy", bests),
            ("final_val_loss", losses),
        ):
            # A run that diverged has a NaN loss, in both places.
            assert [summary[field][k] for k in ("q1", "median", "q3")] == pytest.approx(
                quartiles(values), nan_ok=True
            )
    for problem, optimizer in units:
        cell = {
            c: s for (p, o, c), s in summaries.items() if (p, o) == (problem, optimizer)
        }
        # The tuned constant is the grid point with the best median final
        # accuracy (then best accuracy), and its figures are that point's.
        grid = [f"grid:{k}" for k in range(-4, 2)]
        best = max(
            grid,
            key=lambda g: (
                cell[g]["final_val_accuracy"]["median"],
                cell[g]["best_val_accuracy"]["median"],
            ),
        )
        assert cell["tuned_constant"]["grid_point"] == best
        anonymous = {"contender": None, "grid_point": None}
        assert {**cell["tuned_constant"], **anonymous} == {**cell[best], **anonymous}
        chosen = cell[f"triangular:{result['rule']}"]
        assert {**cell["triangular"], **anonymous} == {**chosen, **anonymous}
    # The rule: the best mean rank of its constant's and its triangular
    # run's median final accuracy, over every (problem, optimizer).
    ranks = {rule: [] for rule in RULES}
    for problem, optimizer in units:
        for kind in ("constant", "triangular"):
            scores = {
                rule: summaries[(problem, optimizer, f"{kind}:{rule}")][
                    "final_val_accuracy"
                ]["median"]
                for rule in RULES
            }
            for rule, score in scores.items():
                above = sum(other > score for other in scores.values())
                tied = sum(other == score for other in scores.values())
                ranks[rule].append(above + (tied + 1) / 2)
    means = {rule: sum(r) / len(r) for rule, r in ranks.items()}
    assert result["rule_mean_ranks"] == pytest.approx(means)
    assert means[result["rule"]] == min(means.values())
    # Each run's bounds come from the range test of its own seed: a rule's
    # for the constants and triangular runs, the chosen rule's for the
    # others, the study's peak times 3**k for the grid.
    suggestions = {
        (s["problem"], s["optimizer"], s["seed"]): s for s in result["suggestions"]
    }
    for run in result["runs"]:
        suggestion = suggestions[(run["problem"], run["optimizer"], run["seed"])]
        kind, _, detail = run["contender"].partition(":")
        if kind in ("constant", "triangular"):
            assert run["bounds"] == suggestion[detail]
        elif kind == "grid":
            peak = suggestion["min_loss"][1] * 3.0 ** int(detail)
            assert run["bounds"] == [None, pytest.approx(peak, rel=1e-12)]
        elif kind == "keras_default":
            assert run["bounds"] == [None, None]
        else:
            assert run["bounds"] == suggestion[result["rule"]]
    for seed, protocol in enumerate(result["protocol"]["runs"]):
        key = ("digits", "SGD", seed)
        if key in suggestions:  # the range test of the same untrained model
            assert protocol["bounds"] == suggestions[key][result["rule"]]


@pytest.mark.slow
def test_convergence_quick(tmp_path):
    pytest.importorskip("sklearn")
    path, png = tmp_path / "convergence.json", tmp_path / "convergence.png"
    stdout = run("convergence.py", "--json", str(path), "--plot", str(png))
    assert "The study's protocol (Table 7)" in stdout
    result = json.loads(path.read_text())
    assert result["backend"] == BACKEND
    assert set(result["problems"]) == {"digits", "breast_cancer"}
    assert {run["optimizer"] for run in result["runs"]} == {"SGD"}
    check_convergence(result)
    [protocol] = result["protocol"]["runs"]
    assert set(protocol["after"]) == {"decay", "triangular", "modified_triangular2"}
    assert len(protocol["bounds"]) == len(protocol["trained_model_bounds"]) == 2
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_committed_convergence_figures():
    """The committed figures: a full run whose summaries follow from its
    curves, and whose chosen rule is the range test's default."""
    result = json.loads((BENCHMARKS / "convergence.json").read_text())
    assert result["seeds"] >= 5
    assert {"SGD", "RMSprop", "Adam"} <= {run["optimizer"] for run in result["runs"]}
    assert len(result["protocol"]["runs"]) == result["seeds"]
    check_convergence(result)
    from clr_optimizers import RangeTestResult

    default = inspect.signature(RangeTestResult.suggestion).parameters["rule"].default
    assert result["rule"] == default
