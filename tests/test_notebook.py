"""Executes the reference notebook; its own assertions check the SPEC table.

Set CLR_UPDATE_NOTEBOOK=1 to write the fresh outputs back into the notebook.
"""

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "reference_notebook.ipynb"


def test_reference_notebook_runs_and_prints_the_table():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=1800,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError if any assertion fails

    text = "\n".join(
        output.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    for name in ("SGD", "RMSprop", "Adagrad", "Adadelta", "Adam", "Adamax", "Nadam"):
        assert f"{name}: matches the table" in text
    assert "All seven optimizers follow the toy function." in text
    if os.environ.get("CLR_UPDATE_NOTEBOOK"):
        nbformat.write(nb, NOTEBOOK)
