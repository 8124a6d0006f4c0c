"""papermill sees every parameter of every template: a `parameters` cell of typed literals whose
comments papermill can parse (an `=` inside a comment made it skip the line, so `-p sample_frac`
was 'unknown' and the template ran at full size)."""
import ast
import logging
from pathlib import Path

import nbformat
import papermill
import pytest

TEMPLATES = sorted((Path(__file__).resolve().parents[2] / "templates").glob("*.ipynb"))


def _assigned(path: Path) -> list[str]:
    cell = next(c for c in nbformat.read(path, as_version=4).cells
                if "parameters" in c.metadata.get("tags", []))
    return [node.targets[0].id for node in ast.parse(cell.source).body
            if isinstance(node, ast.Assign)]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_papermill_parses_every_parameter(path, caplog):
    with caplog.at_level(logging.WARNING, logger="papermill"):
        found = papermill.inspect_notebook(str(path))
    assert list(found) == _assigned(path)
    assert not [r.getMessage() for r in caplog.records if "Unable to parse" in r.getMessage()]
