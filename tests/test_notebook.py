"""examples/quickstart.ipynb executes from top to bottom (SPEC section 7)."""

import os
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

import skgd

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def kernel_env():
    """The environment, with the skgd this test imports first on the path."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    package_parent = str(Path(skgd.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_parent, env.get("PYTHONPATH")) if p
    )
    return env


def test_quickstart_notebook_runs_and_plots(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(env=kernel_env())  # raises CellExecutionError on any error
    outputs = [out for cell in notebook.cells if cell.cell_type == "code"
               for out in cell.outputs]  # fmt: skip
    assert not [out for out in outputs if out.output_type == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) == 3
    text = "".join(out.get("text", "") for out in outputs)
    assert "solver newton" in text
    accuracy = float(re.search(r"test accuracy (\d\.\d+)", text).group(1))
    assert accuracy > 0.93
