import os

# scikit-learn's array-API check runs (instead of being skipped) only when
# SciPy's array-API mode is on, and SciPy reads it once, at import.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import sys

# Test helpers (the NumPy reference) are imported by name from this folder.
sys.path.insert(0, os.path.dirname(__file__))
