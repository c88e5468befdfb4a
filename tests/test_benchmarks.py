"""The benchmark scripts run (their --quick smoke mode; timings are not checked)."""

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BACKEND
from releases import latest_release

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


def check_summary(summary, curves, target):
    """A summary's quartiles are those of its seeds' curves."""
    reached = [
        next((i + 1 for i, a in enumerate(c["val_accuracy"]) if a >= target), None)
        for c in curves
    ]
    q1, median, q3 = quartiles([float("inf") if r is None else r for r in reached])
    expected = [None if v == float("inf") else v for v in (q1, median, q3)]
    epochs = summary["epochs_to_target"]
    assert [epochs["q1"], epochs["median"], epochs["q3"]] == expected
    for field, values in (
        ("final_val_accuracy", [c["val_accuracy"][-1] for c in curves]),
        ("best_val_accuracy", [max(c["val_accuracy"]) for c in curves]),
        ("final_val_loss", [c["val_loss"][-1] for c in curves]),
    ):
        # A run that diverged has a NaN loss, in both places.
        assert [summary[field][k] for k in ("q1", "median", "q3")] == pytest.approx(
            quartiles(values), nan_ok=True
        )


def check_provenance(part):
    """Where the figures of `part` (the file, or its transfer part) come
    from: the command, the commit of the code that ran and the versions."""
    commit = part["commit"]
    assert commit is None or len(commit.removesuffix("+changes")) == 40
    assert part["versions"]["clr_optimizers"]
    assert {"keras", "numpy", "scikit-learn", "python", part["backend"]} <= set(
        part["versions"]
    )
    assert "benchmarks/convergence.py" in part["command"]


def check_convergence(result):
    """Every summary follows from the per-seed curves in the same file."""
    check_provenance(result)
    assert result["versions"]["clr_optimizers"] == result["clr_optimizers"]
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
        check_summary(summary, curves, target[problem])
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


TRANSFER_CONTENDERS = {
    *(f"grid:{k}" for k in (-2, -1, 0, 1)),
    "time_decay",
    "one_cycle",
    "clr",
    "clr_discriminative",
    "clr_spread",
    "clr:min_loss",
    "clr_discriminative:min_loss",
}


def check_transfer(transfer):
    """The transfer part: every contender and seed, stage 2 starting at the
    update count where stage 1 ended, summaries that follow from the
    per-seed curves, bounds from each seed's range test, and where the
    figures come from."""
    setting, seeds = transfer["setting"], transfer["seeds"]
    first, second = setting["stage_epochs"]
    per_epoch = setting["steps_per_epoch"]
    assert setting["train"] == 5 * setting["labels_per_class"]
    assert setting["train"] + setting["validation"] == 896  # digits 5-9
    assert per_epoch == -(-setting["train"] // setting["batch_size"])
    check_provenance(transfer)
    assert [p["seed"] for p in transfer["pretraining"]] == list(range(seeds))
    for pretraining in transfer["pretraining"]:
        assert len(pretraining["val_accuracy"]) == setting["pretrain_epochs"]
    runs = {}
    for run in transfer["runs"]:
        assert len(run["val_accuracy"]) == len(run["val_loss"]) == first + second
        assert run["updates"] == [per_epoch * first, per_epoch * (first + second)]
        runs.setdefault(run["contender"], {})[run["seed"]] = run
    assert set(runs) == TRANSFER_CONTENDERS
    for by_seed in runs.values():
        assert set(by_seed) == set(range(seeds))
    summaries = {s["contender"]: s for s in transfer["summaries"]}
    assert set(summaries) == {*TRANSFER_CONTENDERS, "tuned_constant"}
    for contender, by_seed in runs.items():
        curves = [by_seed[s] for s in range(seeds)]
        summary = summaries[contender]
        check_summary(summary, curves, setting["target"])
        stage_1 = [c["val_accuracy"][first - 1] for c in curves]
        assert [
            summary["stage_1_val_accuracy"][k] for k in ("q1", "median", "q3")
        ] == pytest.approx(quartiles(stage_1))
    grid = [f"grid:{k}" for k in (-2, -1, 0, 1)]
    best = max(
        grid,
        key=lambda g: (
            summaries[g]["final_val_accuracy"]["median"],
            summaries[g]["best_val_accuracy"]["median"],
        ),
    )
    assert summaries["tuned_constant"]["grid_point"] == best
    anonymous = {"contender": None, "grid_point": None}
    assert {**summaries["tuned_constant"], **anonymous} == {
        **summaries[best],
        **anonymous,
    }
    # The grid: the study's (min_loss) peak times 3**k; the pair marked
    # min_loss: its bounds; the others: the bounds of the setting's rule.
    suggestions = {s["seed"]: s for s in transfer["suggestions"]}
    assert set(suggestions) == set(range(seeds))
    for run in transfer["runs"]:
        suggestion = suggestions[run["seed"]]
        kind, _, detail = run["contender"].partition(":")
        if kind == "grid":
            peak = suggestion["min_loss"][1] * 3.0 ** int(detail)
            assert run["bounds"] == [None, pytest.approx(peak, rel=1e-12)]
        else:
            assert run["bounds"] == suggestion[detail or setting["rule"]]


@pytest.mark.slow
def test_convergence_quick(tmp_path):
    pytest.importorskip("sklearn")
    path, png = tmp_path / "convergence.json", tmp_path / "convergence.png"
    transfer_png = tmp_path / "convergence_transfer.png"
    stdout = run(
        "convergence.py",
        "--json",
        str(path),
        "--plot",
        str(png),
        "--transfer-plot",
        str(transfer_png),
    )
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
    transfer = result["transfer"]
    assert transfer["seeds"] == 1
    assert transfer["setting"]["network"] == "small"
    check_transfer(transfer)
    assert transfer_png.read_bytes()[:4] == b"\x89PNG"


def test_committed_convergence_figures():
    """The committed figures: a full run whose summaries follow from its
    curves, and whose chosen rule is the range test's default."""
    result = json.loads((BENCHMARKS / "convergence.json").read_text())
    # A run of the latest release's code, committed, in full.
    for part in (result, result["transfer"]):
        assert part["versions"]["clr_optimizers"] == latest_release()
        assert part["commit"] is not None and "+changes" not in part["commit"]
        assert "--quick" not in part["command"]
    assert result["seeds"] >= 5
    assert {"SGD", "RMSprop", "Adam"} <= {run["optimizer"] for run in result["runs"]}
    assert len(result["protocol"]["runs"]) == result["seeds"]
    check_convergence(result)
    from clr_optimizers import RangeTestResult

    default = inspect.signature(RangeTestResult.suggestion).parameters["rule"].default
    assert result["rule"] == default
    # The transfer problem: MobileNet, bounds by the same rule.
    transfer = result["transfer"]
    assert transfer["seeds"] >= 5
    assert transfer["setting"]["network"] == "mobilenet"
    assert transfer["setting"]["rule"] == default
    # Every seed's set-up worked: its pretraining learnt digits 0-4.
    assert min(p["val_accuracy"][-1] for p in transfer["pretraining"]) >= 0.9
    check_transfer(transfer)
