"""Compile the Cython core (the rest of the build is in pyproject.toml).

``SKGD_DEBUG=1`` builds the debug variant: bounds, wraparound and
initialisation checks on every memoryview access, C asserts kept, no
optimisation, baseline x86-64 code only for the dense row kernels (for the
fuzz suite; see README, "Debug build"). Switch
variants with ``build_ext -i --force``.
"""

import os
import platform
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

CORE = [
    "_team",
    "_data",
    "_losses",
    "_norms",
    "_csr_products",
    "_schedules",
    "_optimizers",
    "_lazy",
    "_scaled",
    "_epoch",
]
# C headers a module includes (rebuild it when they change).
HEADERS = {
    "_team": ["thread_team.h"],
    "_data": ["dense_rows.h"],
    "_norms": ["row_norms.h"],
    "_losses": ["vector_math.h"],
    "_lazy": ["vector_math.h"],
}
DEBUG = os.environ.get("SKGD_DEBUG", "0") not in ("", "0")
# glibc's vector math library (x86-64 Linux): vectorised exp in the losses
# and the lazy rules' catch-ups (vector_math.h).
LIBMVEC = (
    sys.platform.startswith("linux")
    and platform.machine() == "x86_64"
    and platform.libc_ver()[0] == "glibc"
)


def _vector_math(name):
    """Macros and libraries of ``name``: libmvec where vector_math.h is."""
    if "vector_math.h" in HEADERS.get(name, ()) and LIBMVEC:
        return [("SKGD_LIBMVEC", "1")], ["mvec"]
    return [], []


extensions = [
    Extension(
        f"skgd._core.{name}",
        [f"skgd/_core/{name}.pyx"],
        include_dirs=[np.get_include(), "skgd/_core"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")]
        + ([("SKGD_BASELINE_ONLY", "1")] if DEBUG else [])
        + _vector_math(name)[0],
        libraries=_vector_math(name)[1],
        depends=[f"skgd/_core/{h}" for h in HEADERS.get(name, ())],
        extra_compile_args=(["-O0", "-g", "-UNDEBUG"] if DEBUG else ["-O3"])
        # errno of the math functions and the floating-point exception
        # flags are never read: sqrt is one instruction, and loops with sqrt,
        # exp or log, or with a choice between two computed values, can be
        # vectorised (neither flag lets the compiler change a result).
        + ["-fopenmp", "-fno-math-errno", "-fno-trapping-math"],
        extra_link_args=["-fopenmp"],
    )
    for name in CORE
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": DEBUG,
            "wraparound": DEBUG,
            "cdivision": True,
            "initializedcheck": DEBUG,
        },
        # Its own C files, so that switching variants regenerates nothing.
        build_dir="build/debug" if DEBUG else None,
    )
)
