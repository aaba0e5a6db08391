"""Compile the Cython core (the rest of the build is in pyproject.toml)."""

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

CORE = ["_data", "_losses", "_schedules", "_optimizers", "_lazy", "_epoch"]

extensions = [
    Extension(
        f"skgd._core.{name}",
        [f"skgd/_core/{name}.pyx"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
        extra_compile_args=["-O3", "-fopenmp"],
        extra_link_args=["-fopenmp"],
    )
    for name in CORE
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )
)
