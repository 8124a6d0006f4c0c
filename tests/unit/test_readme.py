"""The README's shell commands run as written.

Every line of every ```bash block of README.md is run, in order, with bash, in a temporary copy of
the parts of the project the commands read (templates/, tests/fixtures/, pipeline.yaml), with
`.venv` pointing at the environment running the tests and the default workspace (`./workspace`).
Only the commands in `NOT_RUN` are left out, each for the reason given there.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

# Commands the test does not run, and why. Nothing else may be left out.
NOT_RUN = {
    "make demo": "a make target: bootstraps .venv and runs the whole demo (many minutes)",
    "make test": "a make target: it is the gate this test is part of",
    "rwb serve": "a server that runs until Ctrl-C; tests/unit/test_serving.py serves and queries",
}


def readme_commands(text: str) -> list[str]:
    "The commands of the ```bash blocks of `text`: continuation lines joined, comments kept."
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for command in re.sub(r"\\\n\s*", "", block).splitlines():
            if command.strip() and not command.lstrip().startswith("#"):
                commands.append(command.strip())
    return commands


def _program(command: str) -> str:
    "The command without its trailing comment and surplus spaces."
    return " ".join(command.split(" #", 1)[0].split())


def test_commands_are_found_and_every_skip_is_in_the_readme():
    commands = [_program(c) for c in readme_commands(README.read_text())]
    assert any(c.startswith("rwb ingest") for c in commands)
    assert any(c.startswith(".venv/bin/papermill templates/") for c in commands)
    assert set(NOT_RUN) <= set(commands), "NOT_RUN lists a command the README no longer shows"
    assert readme_commands("```bash\na \\\n  b  # c\n# d\n```") == ["a b  # c"]


@pytest.fixture
def project_copy(tmp_path):
    "A folder with what README commands read, `.venv` linked to the running environment."
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copytree(ROOT / "templates", copy / "templates")
    shutil.copytree(ROOT / "tests" / "fixtures", copy / "tests" / "fixtures")
    shutil.copy(ROOT / "pipeline.yaml", copy / "pipeline.yaml")
    (copy / ".venv").symlink_to(Path(sys.prefix))
    return copy


@pytest.mark.slow
def test_readme_commands_run_as_written(project_copy, monkeypatch):
    monkeypatch.delenv("RWB_HOME")  # the README's paths assume the default ./workspace
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "PATH": f"{project_copy / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    ran = []
    for command in readme_commands(README.read_text()):
        if _program(command) in NOT_RUN:
            continue
        done = subprocess.run(["bash", "-c", command], cwd=project_copy, env=env,
                              capture_output=True, text=True, timeout=600)
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"`{command}` exited {done.returncode}:\n{output[-3000:]}"
        for warning in ("Passed unknown parameter", "Unable to parse line"):
            assert warning not in output, f"`{command}` printed {warning!r}:\n{output[-3000:]}"
        ran.append(_program(command))
    assert len(ran) == len(readme_commands(README.read_text())) - len(NOT_RUN)
    # what the prose around the commands promises
    runs = project_copy / "workspace" / "runs" / "propensity"
    assert (runs / "train_propensity.ipynb").exists()
    assert (runs / "train_propensity.metrics.json").exists(), "metrics not beside the notebook"
    assert (project_copy / "workspace" / "world").is_dir()
