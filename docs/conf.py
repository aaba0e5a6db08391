"""Sphinx configuration: numpydoc API reference and the sphinx-gallery examples.

``sphinx-build -W -b html docs docs/_build/html`` builds the site, running
every ``examples/plot_*.py`` (the Dask example only where dask, distributed
and dask-ml are installed).
"""

import importlib.util
import re
from pathlib import Path

import skgd

project = "skgd"
author = "skgd developers"
copyright = "skgd developers"
version = release = skgd.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build"]
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
html_theme = "alabaster"
html_static_path = []


def _skip_scikit_learn_members(app, what, name, obj, skip, options):
    """Document the methods skgd defines; leave scikit-learn's own
    (``get_params``, ``score``, ``set_*_request``...) to its documentation."""
    if (getattr(obj, "__module__", None) or "").startswith("sklearn"):
        return True
    return skip


# A shape such as "(n_features_in_,)" would read as an rST link target.
_SHAPE_NAME = re.compile(r"(?<=\()(\w+)_(?=,)")


def _escape_shape_names(app, what, name, obj, options, lines):
    """Escape the trailing underscore of attribute names used in shapes."""
    lines[:] = [_SHAPE_NAME.sub(r"\1\\_", line) for line in lines]


def setup(app):
    """Connect the member filter and the docstring fix."""
    app.connect("autodoc-skip-member", _skip_scikit_learn_members)
    app.connect("autodoc-process-docstring", _escape_shape_names)


def _dask_installed():
    """True when the Dask example can run (dask, distributed and dask-ml)."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("dask", "distributed", "dask_ml")
    )


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

sphinx_gallery_conf = {
    "examples_dirs": str(EXAMPLES),
    "gallery_dirs": "auto_examples",
    # Execute every plot_*.py; without Dask, plot_dask_* is shown, not run.
    "filename_pattern": r"/plot_" if _dask_installed() else r"/plot_(?!dask)",
    "ignore_pattern": r"__init__\.py",
    "doc_module": ("skgd",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skgd": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "matplotlib_animations": False,
    "plot_gallery": "True",
}
