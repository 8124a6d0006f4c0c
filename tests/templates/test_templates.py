"""Every template in templates/ runs under papermill with its small parameters
(tests/templates/params/<template>.yaml) and writes its metrics JSON beside the executed notebook."""
import json
from pathlib import Path

import papermill
import pytest
import yaml

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
PARAMS = Path(__file__).parent / "params"
NAMES = sorted(p.stem for p in TEMPLATES.glob("*.ipynb"))
SMALL = {p.stem: yaml.safe_load(p.read_text()) or {} for p in PARAMS.glob("*.yaml")}


def test_every_template_has_small_parameters():
    assert sorted(SMALL) == NAMES


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_template_runs_small(name, workspace_home, tmp_path):
    output = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(str(TEMPLATES / f"{name}.ipynb"), str(output),
                               parameters={**SMALL[name], "run_dir": str(tmp_path)}, kernel_name="retail-workbench",
                               cwd=str(tmp_path), progress_bar=False)
    metrics = json.loads((tmp_path / f"{name}.metrics.json").read_text())
    assert metrics, "the template recorded no metrics"
