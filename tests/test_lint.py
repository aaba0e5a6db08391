"""The code base stays ruff- and cython-lint-clean."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "skgd", "tests", "benchmarks", "examples"],
        ["ruff", "format", "--check", "skgd", "tests", "benchmarks", "examples"],
        ["cython-lint", *map(str, sorted((ROOT / "skgd" / "_core").glob("*.p*[dx]")))],
    ],
    ids=["ruff", "ruff-format", "cython-lint"],
)
def test_lint_clean(command):
    assert shutil.which(command[0]), f"{command[0]} is installed by the test extra"
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
