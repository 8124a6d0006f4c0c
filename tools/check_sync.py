"""Gate step 1: the notebooks are clean and the library and README are exactly what they export.

Works on a scratch copy, so the working tree is never modified. Exits 1 and lists the files that
differ when `nbdev_export`, `nbdev_clean` or the README generation would change anything.
"""
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIB = "retail_workbench"
BIN = Path(sys.executable).parent


def tree(folder: Path) -> set[str]:
    "Relative paths of the files below `folder`, ignoring caches."
    if not folder.exists():
        return set()
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts}


def differences(original: Path, regenerated: Path) -> list[str]:
    names = tree(original) | tree(regenerated)
    return sorted(n for n in names
                  if not ((original / n).exists() and (regenerated / n).exists()
                          and filecmp.cmp(original / n, regenerated / n, shallow=False)))


def main(root: Path = ROOT) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp)
        for name in ("settings.ini", "README.md"):
            if (root / name).exists():
                shutil.copy(root / name, copy / name)
        shutil.copytree(root / "nbs", copy / "nbs",
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_proc", "_docs"))
        shutil.copytree(root / "tools", copy / "tools", ignore=shutil.ignore_patterns("__pycache__"))
        (copy / LIB).mkdir()
        steps = [[str(BIN / "nbdev_clean")], [str(BIN / "nbdev_export")],
                 [sys.executable, "tools/make_readme.py"]]
        for step in steps:
            result = subprocess.run(step, cwd=copy, capture_output=True, text=True)
            if result.returncode != 0:
                print(f"sync check: `{' '.join(step)}` failed:\n{result.stdout}{result.stderr}")
                return 1
        changed = [f"{LIB}/{n}" for n in differences(root / LIB, copy / LIB)]
        changed += [f"nbs/{n}" for n in differences(root / "nbs", copy / "nbs")
                    if n.endswith(".ipynb")]
        if not filecmp.cmp(root / "README.md", copy / "README.md", shallow=False):
            changed.append("README.md")
    if changed:
        print("notebooks and library are not in sync; these files differ from what "
              "`make export` (nbdev_clean + nbdev_export + README) produces:")
        for name in changed:
            print(f"  {name}")
        print("Edit the notebooks in nbs/, run `make export`, and commit the result.")
        return 1
    print("sync check: notebooks, library and README are in sync")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT))
