"""The main job: `python -m clr_optimizers` checks the table and plots."""

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from clr_optimizers import _demo


@pytest.mark.slow
def test_main_job_passes_and_writes_the_plot(tmp_path, capsys):
    png = tmp_path / "schedule.png"
    code = _demo.main(
        ["--optimizers", "SGD", "Adadelta", "--epochs", "3", "--plot", str(png)]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "PASS: 2 optimizer(s)" in out
    for row in ("      1000   0.034975  0.034975", "      3000   0.035025  0.035025"):
        assert row in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow_on("torch")
def test_main_job_fails_on_a_mismatch(monkeypatch, capsys):
    monkeypatch.setitem(_demo.REFERENCE_TABLE, 2000, 0.0599)
    code = _demo.main(["--optimizers", "Adam", "--epochs", "2", "--no-plot"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL: 1 optimizer(s)" in out
    assert "0.059975!" in out


def test_main_job_without_matplotlib(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(_demo.importlib.util, "find_spec", lambda name: None)
    code = _demo.main(
        ["--optimizers", "SGD", "--epochs", "1", "--plot", str(tmp_path / "x.png")]
    )
    assert code == 0
    assert "Plot skipped: matplotlib is not installed" in capsys.readouterr().out
    assert not (tmp_path / "x.png").exists()


def test_module_entry_point(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["clr_optimizers", "--help"])
    with pytest.raises(SystemExit) as exit_status:
        runpy.run_module("clr_optimizers", run_name="__main__")
    assert exit_status.value.code == 0
    assert "--optimizers" in capsys.readouterr().out


@pytest.mark.slow
def test_module_and_console_script_entry_points():
    script = Path(sys.executable).with_name("clr-optimizers")
    assert script.exists(), "console script not installed beside the interpreter"
    for command in ([sys.executable, "-m", "clr_optimizers"], [str(script)]):
        out = subprocess.run(
            command + ["--help"], capture_output=True, text=True, check=True
        )
        assert "--optimizers" in out.stdout


@pytest.mark.slow
def test_the_documentation_plots_are_drawn(tmp_path):
    script = Path(__file__).parents[1] / "docs" / "plots.py"
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    for name in ("policies", "asymmetric", "momentum", "one_cycle", "monitor"):
        assert f"{name}.png" in result.stdout
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
