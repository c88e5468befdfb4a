"""The benchmark scripts run (their --quick smoke mode; timings are not checked)."""

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


def test_overhead_quick(tmp_path):
    path = tmp_path / "overhead.json"
    stdout = run("overhead.py", "--json", str(path))
    assert "clr/stock" in stdout
    result = json.loads(path.read_text())
    modes = {row["mode"] for row in result["keras_results"]}
    expected = {"graph", "jit_compile", "steps_per_execution=32"}
    contenders = {"clr", "clr_momentum", "callback", "keras_schedule", "monitor"}
    if BACKEND == "torch":  # one step per execution only; the fused-rule check
        expected.discard("steps_per_execution=32")
        contenders.add("clr_unfused")
    assert modes == expected
    assert result["backend"] == BACKEND
    for row in result["keras_results"]:
        assert row["extra_optimizer_variables"] == 1  # max_lr, whatever the model
        assert set(row["over_stock"]) == contenders
        assert all(ratio > 0 for ratio in row["over_stock"].values())


def test_convergence_quick(tmp_path):
    pytest.importorskip("sklearn")
    path, png = tmp_path / "convergence.json", tmp_path / "convergence.png"
    stdout = run("convergence.py", "--json", str(path), "--plot", str(png))
    assert "epochs / best acc" in stdout
    result = json.loads(path.read_text())
    policies = {row["policy"] for row in result["results"]}
    assert policies == {"constant", "triangular", "modified_triangular2", "exp_range"}
    assert png.read_bytes()[:4] == b"\x89PNG"
