"Every notebook in nbs/ runs top to bottom (its cells are the module's documentation and checks)."
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NBS = Path(__file__).resolve().parents[2] / "nbs"
NOTEBOOKS = sorted(p for p in NBS.rglob("*.ipynb")
                   if not p.name.startswith("_") and ".ipynb_checkpoints" not in p.parts)


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(NBS)))
def test_notebook_runs(notebook, workspace_home):
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="retail-workbench",
                            resources={"metadata": {"path": str(notebook.parent)}})
    client.execute()
