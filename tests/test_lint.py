"""The code base stays ruff- and cython-lint-clean."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ["skgd", "tests", "benchmarks", "examples", "setup.py"]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", *PYTHON],
        ["ruff", "format", "--check", *PYTHON],
        ["cython-lint", *map(str, sorted((ROOT / "skgd" / "_core").glob("*.p*[dx]")))],
    ],
    ids=["ruff", "ruff-format", "cython-lint"],
)
def test_lint_clean(command):
    assert shutil.which(command[0]), f"{command[0]} is installed by the test extra"
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
