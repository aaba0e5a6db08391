"""The one-pass row norms of X (``_engine.row_norms``) against NumPy."""

import numpy as np
import pytest
import scipy.sparse as sp
from skgd._core._norms import weighted_row_norms

from skgd import _engine


def numpy_norms(X, sw):
    """The same four numbers written out with NumPy, in float64."""
    A = np.abs(X.toarray() if sp.issparse(X) else X).astype(np.float64)
    l1, sq = A.sum(axis=1), (A * A).sum(axis=1)
    positive = sw > 0
    return (
        sw @ l1 / sw.sum(),
        sw @ sq / sw.sum(),
        sq[positive].max(),
        A.max(),
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["dense", "csr"])
@pytest.mark.parametrize("d", [1, 7, 100, 133])  # vector remainders
def test_row_norms_match_numpy(dtype, layout, d):
    rng = np.random.default_rng(d)
    n = 1000
    X = (rng.standard_normal((n, d)) * np.exp(rng.uniform(-3, 3, d))).astype(dtype)
    X[rng.uniform(size=(n, d)) < 0.5] = 0.0
    X[17] *= 40.0  # the largest row, then given zero weight
    sw = rng.uniform(0.5, 2.0, n)
    sw[17] = 0.0
    data = sp.csr_matrix(X) if layout == "csr" else X
    got = _engine.row_norms(data, sw, "test")
    np.testing.assert_allclose(got, numpy_norms(X, sw), rtol=1e-12)


def test_row_norms_unit_weights_and_threads():
    """A broadcast unit weight is the all-ones weight; the result is the
    same bit for bit on one thread and on several."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5000, 33))
    ones = np.broadcast_to(1.0, 5000)
    got = _engine.row_norms(X, ones, "test")
    np.testing.assert_allclose(got, numpy_norms(X, np.ones(5000)), rtol=1e-12)
    assert weighted_row_norms(X, ones, 1) == weighted_row_norms(X, ones, 2)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_row_norms_reject_non_finite(bad, layout):
    X = np.ones((300, 9))
    X[123, 4] = bad
    data = sp.csr_matrix(X) if layout == "csr" else X
    with pytest.raises(ValueError, match="X"):
        _engine.row_norms(data, np.ones(300), "test")
