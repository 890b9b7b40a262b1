"""The notebook the notebook instance gets runs end to end, offline, unchanged."""

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "linear_learner.ipynb"


def test_notebook_runs_end_to_end_in_local_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("LL_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("LL_TARGET", "local")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
    )
    assert "feature_dim" in text and "test:binary_classification_accuracy" in text
    assert "did you mean 'sex'" in text
    assert "endpoint stopped" in text
    assert (tmp_path / "run" / "model" / "model.tar.gz").exists()
    assert os.environ["LL_RUN_DIR"] == str(tmp_path / "run")
