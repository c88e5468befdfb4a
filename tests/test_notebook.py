"""Executes the notebooks; their own assertions are checks too.

Set CLR_UPDATE_NOTEBOOK=1 to write the fresh outputs back into the notebooks.
"""

import os
from pathlib import Path

import pytest
from conftest import BACKEND

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
MUST_PRINT = {
    "reference_notebook.ipynb": [
        *(
            f"{name}: matches the table"
            for name in (
                "SGD",
                "RMSprop",
                "Adagrad",
                "Adadelta",
                "Adam",
                "Adamax",
                "Nadam",
            )
        ),
        "All seven optimizers follow the toy function.",
        "The record of every update matches learning_rates(10_000) for all seven.",
    ],
    "range_test_digits.ipynb": [
        "max_lr = ",
        "CLR triangular ",
        "CLR modified triangular2 ",
        "constant 0.01 ",
    ],
}


def test_every_notebook_is_checked():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(MUST_PRINT)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MUST_PRINT))
def test_notebook_runs(name):
    path = NOTEBOOKS / name
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=1800,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError if any assertion fails

    text = "\n".join(
        output.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    for expected in MUST_PRINT[name]:
        assert expected in text
    if name == "reference_notebook.ipynb":  # the kernel ran on the backend tested
        assert f"| backend {BACKEND}\n" in text
    if os.environ.get("CLR_UPDATE_NOTEBOOK"):
        nbformat.write(nb, path)
