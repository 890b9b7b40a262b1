"""Run the project notebook the way Jupyter on the notebook instance would, for the tests."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient


def run_notebook(folder: Path, env: dict | None = None) -> str:
    """Execute ``folder/linear_learner.ipynb`` in ``folder`` (with ``env`` as the kernel's whole
    environment, or this process's) and return every code cell's text output, joined."""
    nb = nbformat.read(folder / "linear_learner.ipynb", as_version=4)
    NotebookClient(  # a print the kernel flushed in two parts is one output again
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
        coalesce_streams=True,
    ).execute(**({} if env is None else {"env": env}))
    return "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
    )
