"""Run every benchmark (`benchmarks/bench_*.py`), or those whose name contains an argument.

Each benchmark is a script that prints what it measured and a ratio against a named baseline
measured in the same run. Results are also appended to `benchmarks/results/<name>.jsonl`.
"""
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(patterns: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if patterns:
        scripts = [s for s in scripts if any(p in s.stem for p in patterns)]
    if not scripts:
        print("no benchmark matches", patterns)
        return 1
    failed = []
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, str(script)], cwd=HERE.parent)
        print(f"--- {script.stem}: {time.perf_counter() - started:.1f} s, exit {result.returncode}")
        if result.returncode:
            failed.append(script.stem)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
