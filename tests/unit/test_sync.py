"The gate's sync check: hand edits to generated files fail it; cleaning keeps papermill tags."
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def project_copy(tmp_path):
    "A copy of the files the sync check reads."
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("settings.ini", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    for folder in ("nbs", "retail_workbench", "tools"):
        shutil.copytree(ROOT / folder, copy / folder,
                        ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    return copy


def check(copy):
    return subprocess.run([sys.executable, str(copy / "tools" / "check_sync.py"), str(copy)],
                          capture_output=True, text=True)


def test_clean_copy_is_in_sync(project_copy):
    result = check(project_copy)
    assert result.returncode == 0, result.stdout


def test_hand_edited_module_fails_the_gate(project_copy):
    module = project_copy / "retail_workbench" / "core.py"
    module.write_text(module.read_text() + "\nHAND_EDIT = True\n")
    result = check(project_copy)
    assert result.returncode == 1
    assert "notebooks and library are not in sync" in result.stdout
    assert "retail_workbench/core.py" in result.stdout


def test_stray_module_and_stale_readme_fail_the_gate(project_copy):
    (project_copy / "retail_workbench" / "extra.py").write_text("x = 1\n")
    (project_copy / "README.md").write_text("# edited by hand\n")
    result = check(project_copy)
    assert result.returncode == 1
    assert "retail_workbench/extra.py" in result.stdout and "README.md" in result.stdout


def test_parameters_tag_survives_nbdev_clean(tmp_path):
    shutil.copy(ROOT / "settings.ini", tmp_path / "settings.ini")
    (tmp_path / "nbs").mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("epochs = 10  # training epochs")
    params.metadata["tags"] = ["parameters"]
    params.metadata["collapsed"] = True          # other metadata is cleaned away
    params.execution_count = 3
    nb.cells = [params, nbformat.v4.new_code_cell("print(epochs)")]
    path = tmp_path / "nbs" / "template.ipynb"
    nbformat.write(nb, path)
    subprocess.run([str(BIN / "nbdev_clean"), "--fname", str(path)], cwd=tmp_path, check=True)
    cleaned = nbformat.read(path, as_version=4)
    assert cleaned.cells[0].metadata == {"tags": ["parameters"]}
    assert cleaned.cells[0].execution_count is None


def test_templates_keep_their_parameters_tag():
    for template in sorted((ROOT / "templates").glob("*.ipynb")):
        nb = nbformat.read(template, as_version=4)
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert "parameters" in first_code.metadata.get("tags", []), template.name
