"""The documentation builds with warnings as errors, running the gallery.

``sphinx-build -W -b html docs docs/_build/html`` on a copy of ``docs/``
and ``examples/``, so that sphinx-gallery executes every example afresh
(it skips examples whose output is already there) and the checkout is left
untouched.
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import skgd

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("plot_*.py"))
DASK = all(importlib.util.find_spec(m) for m in ("dask", "distributed", "dask_ml"))


def build_env():
    """The environment, with the skgd this test imports first on the path."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    package_parent = str(Path(skgd.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_parent, env.get("PYTHONPATH")) if p
    )
    return env


def test_docs_build_without_warnings_and_run_the_examples(tmp_path):
    for folder in ("docs", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    html = tmp_path / "docs" / "_build" / "html"
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html"]
    start = time.perf_counter()
    result = subprocess.run(
        [*command, str(tmp_path / "docs"), str(html)],
        cwd=tmp_path,
        env=build_env(),
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    assert seconds < 180, f"the docs build took {seconds:.0f} s"

    pages = ["index", "user_guide", "api", "auto_examples/index"]
    pages += [f"auto_examples/{name}" for name in EXAMPLES]
    api = ["SGDLinearRegressor", "SGDLogisticClassifier", "HingeSVM", "minimize"]
    api += [f"plotting.{name}" for name in ("plot_loss_curves", "plot_schedule",
                                            "plot_trajectory")]  # fmt: skip
    pages += [f"generated/skgd.{name}" for name in api]
    missing = [page for page in pages if not (html / f"{page}.html").is_file()]
    assert not missing

    # Every example ran and drew its figures (the Dask one where Dask is).
    images = tmp_path / "docs" / "auto_examples" / "images"
    executed = {name for name in EXAMPLES if DASK or "dask" not in name}
    drawn = {p.name[len("sphx_glr_") :].rsplit("_", 1)[0]
             for p in images.glob("sphx_glr_plot_*_0*.png")}  # fmt: skip
    assert drawn == executed
    assert len(EXAMPLES) == 8

    guide = re.sub(r"<[^>]+>", "", (html / "user_guide.html").read_text())
    for text in ("1 / (C * S)", "alpha_r / S", "Choosing a solver", "line_search",
                 "max_norm", "constraint_multiplier_"):  # fmt: skip
        assert text in guide
