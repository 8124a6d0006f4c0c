"Every notebook in nbs/ runs top to bottom (its cells are the module's documentation and checks)."
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NBS = Path(__file__).resolve().parents[2] / "nbs"
NOTEBOOKS = sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith("_"))


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(notebook, workspace_home):
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(NBS)}})
    client.execute()
