"""Write README.md from nbs/index.ipynb: markdown cells as they are, code cells as fenced blocks.

nbdev's own `nbdev_readme` needs Quarto; this keeps the README generated from the notebook without it.
Cells tagged `hide` (or starting with `#| hide`) are left out.
"""
from pathlib import Path

import nbformat

ROOT = Path.cwd()


def render(notebook: Path) -> str:
    nb = nbformat.read(notebook, as_version=4)
    parts = []
    for cell in nb.cells:
        source = cell.source.strip()
        if not source or "hide" in cell.metadata.get("tags", []) or source.startswith("#| hide"):
            continue
        if cell.cell_type == "markdown":
            parts.append(source)
        elif cell.cell_type == "code":
            lines = [l for l in source.splitlines() if not l.startswith("#|")]
            parts.append("```python\n" + "\n".join(lines) + "\n```")
    header = "<!-- generated from nbs/index.ipynb by tools/make_readme.py; edit the notebook -->"
    return header + "\n\n" + "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    (ROOT / "README.md").write_text(render(ROOT / "nbs" / "index.ipynb"))
