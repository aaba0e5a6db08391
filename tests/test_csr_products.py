"""The CSR products of Newton (``skgd._core._csr_products``) against
scipy.sparse arithmetic in float64."""

import numpy as np
import pytest
import scipy.sparse as sp

from skgd._core import _csr_products as P


def csr(n, d, density, dtype, seed=0):
    """Random CSR data with a few empty rows and columns."""
    X = sp.random(n, d, density=density, format="csr", random_state=seed)
    X.data = np.random.default_rng(seed).standard_normal(X.nnz)
    keep = np.arange(n) % 7 > 0  # every 7th row empty
    X = sp.diags(keep.astype(float)) @ X
    X.eliminate_zeros()
    return sp.csr_matrix(X, dtype=dtype)


def exact(X):
    """X's values in float64 (float32 values are exact in float64)."""
    return X.astype(np.float64)


CASES = [
    (np.float64, 1),
    (np.float32, 1),
    (np.float64, 3),
    (np.float32, 4),
]


@pytest.mark.parametrize(("dtype", "K"), CASES)
@pytest.mark.parametrize("threads", [1, 2])
def test_products_match_scipy(dtype, K, threads):
    rng = np.random.default_rng(1)
    X = csr(300, 50, 0.1, dtype)
    n, d = X.shape
    V, R = rng.standard_normal((d, K)), rng.standard_normal((n, K))
    Xe = exact(X)
    np.testing.assert_allclose(P.csr_times(X, V, threads), Xe @ V, rtol=1e-13)
    np.testing.assert_allclose(
        P.csr_transpose_times(X, R, n_threads=threads), Xe.T @ R, rtol=1e-12
    )
    np.testing.assert_allclose(
        P.csr_transpose_times(X, R, True, threads),
        Xe.multiply(Xe).T @ R,
        rtol=1e-12,
    )


@pytest.mark.parametrize(("dtype", "K"), CASES)
@pytest.mark.parametrize("coupled", [False, True])
def test_hessian_times_is_two_products(dtype, K, coupled):
    """``X^T (C o (dZ - <Q, dZ>))`` with dZ = X V + v_b, written out."""
    rng = np.random.default_rng(2)
    X = csr(400, 60, 0.08, dtype)
    n, d = X.shape
    V, vb = rng.standard_normal((d, K)), rng.standard_normal(K)
    C, Q = rng.random((n, K)), rng.random((n, K))
    dZ = exact(X) @ V + vb
    R = C * (dZ - (Q * dZ).sum(axis=1, keepdims=True)) if coupled else C * dZ
    out, out_b = P.csr_hessian_times(X, V, vb, C, Q if coupled else None, 2)
    np.testing.assert_allclose(out, exact(X).T @ R, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(out_b, R.sum(axis=0), rtol=1e-12)


def test_transposed_sums_do_not_depend_on_threads():
    """The row ranges are fixed by X, not by the thread count: bit-identical."""
    rng = np.random.default_rng(3)
    X = csr(5000, 40, 0.2, np.float64)
    R = rng.standard_normal((5000, 2))
    one = P.csr_transpose_times(X, R, n_threads=1)
    assert np.array_equal(one, P.csr_transpose_times(X, R, n_threads=2))
    assert np.array_equal(one, P.csr_transpose_times(X, R, n_threads=3))


def test_wide_matrix_uses_one_range():
    """With d K large next to nnz the per-range buffers would outgrow X: one
    range, the same sums."""
    X = csr(50, 2000, 0.01, np.float64)
    assert P._n_parts(X, 1) == 1
    R = np.random.default_rng(4).standard_normal((50, 1))
    np.testing.assert_allclose(
        P.csr_transpose_times(X, R, n_threads=2), X.T @ R, rtol=1e-13
    )


def test_empty_and_int64_indexed_input():
    X = sp.csr_matrix((3, 4))
    assert np.array_equal(P.csr_times(X, np.ones((4, 2))), np.zeros((3, 2)))
    assert np.array_equal(P.csr_transpose_times(X, np.ones((3, 2))), np.zeros((4, 2)))
    Y = csr(30, 8, 0.3, np.float64)
    wide = Y.copy()
    wide.indices, wide.indptr = Y.indices.astype(np.int64), Y.indptr.astype(np.int64)
    with pytest.raises(TypeError, match="int32_indexed"):
        P.csr_times(wide, np.ones((8, 1)))
    narrow = P.int32_indexed(wide)
    assert narrow.indices.dtype == narrow.indptr.dtype == np.int32
    assert np.shares_memory(narrow.data, wide.data)  # values never copied
    assert P.int32_indexed(Y) is Y
    np.testing.assert_allclose(
        P.csr_times(narrow, np.ones((8, 1))), Y @ np.ones((8, 1)), rtol=1e-14
    )
