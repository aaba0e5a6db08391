"""Whole-matrix products of CSR X with dense blocks, on every core.

Newton on CSR data (``skgd._newton``) reads X only through these: the
decision values ``X V``, the gradient's ``X^T R``, the Jacobi
preconditioner's ``(X o X)^T C`` and the Hessian-vector product
``X^T (C o (X V + v_b))``, which reads each row once for both of its
products. Every result is in float64 whatever the dtype of X; X is never
copied.

``X V`` splits the rows between the threads. The transposed products add
into d x K outputs: X is cut into ``N_PARTS`` ranges of rows with as many
stored values each, every range sums into its own buffer, and the buffers
are added in range order, so that the result does not depend on the number
of threads. The buffers cost ``(N_PARTS - 1) d K`` doubles; when that is
more than a quarter of X's values, one range (and one thread) is used.
"""

from cython cimport floating
from cython.parallel cimport prange
import numpy as np

from ._data cimport csr_add_outer, csr_dot

cdef enum:
    N_PARTS = 4


cdef void _times(const floating* data, const int* indices, const int* indptr,
                 Py_ssize_t row, const double* V, Py_ssize_t K,
                 double* z) noexcept nogil:
    """``z[:K] = x_row V`` (V: d x K, C order)."""
    cdef Py_ssize_t p, k
    cdef const double* v
    if K == 1:
        z[0] = csr_dot(data, indices, indptr[row], indptr[row + 1], V)
        return
    for k in range(K):
        z[k] = 0.0
    for p in range(indptr[row], indptr[row + 1]):
        v = V + indices[p] * K
        for k in range(K):
            z[k] += data[p] * v[k]


cdef void _hessian_row(const floating* data, const int* indices,
                       const int* indptr, Py_ssize_t row, const double* V,
                       const double* vb, const double* c, const double* q,
                       Py_ssize_t K, double* r, double* out,
                       double* out_b) noexcept nogil:
    """One row's term of ``X^T (C o (dZ - <Q, dZ>))``, dZ = X V + v_b.

    ``q`` NULL: diagonal row Hessians, ``r = c o dz``; otherwise the
    softmax's, ``r = c o (dz - <q, dz>)``. ``r`` is K doubles of scratch.
    """
    cdef Py_ssize_t k
    cdef double mean = 0.0
    _times(data, indices, indptr, row, V, K, r)
    for k in range(K):
        r[k] += vb[k]
    if q != NULL:
        for k in range(K):
            mean += q[k] * r[k]
    for k in range(K):
        r[k] = c[k] * (r[k] - mean)
        out_b[k] += r[k]
    csr_add_outer(data, indices, indptr[row], indptr[row + 1], r, K, False,
                  out)


def _n_parts(X, K):
    """Row ranges of a transposed product (see the module docstring)."""
    if (N_PARTS - 1) * X.shape[1] * K > X.nnz // 4:
        return 1
    return min(N_PARTS, max(X.shape[0], 1))


def _part_bounds(X, Py_ssize_t parts):
    """First rows of ``parts`` ranges with as many stored values each."""
    targets = np.arange(parts + 1) * (X.nnz / parts)
    bounds = np.searchsorted(X.indptr, targets, side="left").astype(np.intp)
    bounds[0], bounds[parts] = 0, X.shape[0]
    return np.maximum.accumulate(bounds)


def int32_indexed(X):
    """CSR X with int32 ``indices`` and ``indptr``, sharing X's values.

    X itself when its index arrays are int32 already (scipy's choice below
    2**31 stored values); otherwise new index arrays, never new values.

    Raises
    ------
    ValueError
        When X holds more than 2**31 - 1 stored values.
    """
    if X.indices.dtype == np.int32 and X.indptr.dtype == np.int32:
        return X
    if X.nnz > np.iinfo(np.int32).max:
        raise ValueError(
            "X has more than 2**31 - 1 stored values; skgd's sparse "
            "core indexes them with int32. Split X into smaller parts."
        )
    return type(X)((X.data, X.indices.astype(np.int32),
                    X.indptr.astype(np.int32)), shape=X.shape, copy=False)


def _csr_arrays(X):
    """data, indices and indptr of X, which ``int32_indexed`` returned."""
    if X.indices.dtype != np.int32 or X.indptr.dtype != np.int32:
        raise TypeError("pass X through int32_indexed first")
    return X.data, X.indices, X.indptr


def csr_times(X, V, int n_threads=1):
    """``X V`` for V of shape (d, K).

    Parameters
    ----------
    X : CSR matrix of shape (n, d), float32 or float64, int32 indices
    V : ndarray of shape (d, K)
    n_threads : int

    Returns
    -------
    ndarray of shape (n, K), float64
    """
    data, indices, indptr = _csr_arrays(X)
    cdef const double[:, ::1] v = np.ascontiguousarray(V, dtype=np.float64)
    cdef Py_ssize_t n = X.shape[0], K = v.shape[1]
    Z = np.zeros((n, K))
    if n == 0 or K == 0 or X.nnz == 0:
        return Z
    cdef double[:, ::1] z = Z
    if data.dtype == np.float32:
        _times_rows[float](data, indices, indptr, &v[0, 0], K, &z[0, 0],
                           n, n_threads)
    else:
        _times_rows[double](data, indices, indptr, &v[0, 0], K, &z[0, 0],
                            n, n_threads)
    return Z


cdef void _times_rows(const floating[::1] data, const int[::1] indices,
                      const int[::1] indptr, const double* V, Py_ssize_t K,
                      double* Z, Py_ssize_t n, int n_threads):
    cdef Py_ssize_t i
    for i in prange(n, nogil=True, schedule="static", num_threads=n_threads):
        _times(&data[0], &indices[0], &indptr[0], i, V, K, &Z[i * K])


def csr_transpose_times(X, R, bint squared=False, int n_threads=1):
    """``X^T R`` (or ``(X o X)^T R`` when ``squared``) for R of shape (n, K).

    Parameters
    ----------
    X : CSR matrix of shape (n, d), float32 or float64, int32 indices
    R : ndarray of shape (n, K)
    squared : bool
        Multiply by the squares of the stored values.
    n_threads : int

    Returns
    -------
    ndarray of shape (d, K), float64
    """
    return _transposed(X, R, None, None, None, squared, n_threads)[0]


def csr_hessian_times(X, V, vb, C, Q=None, int n_threads=1):
    """``X^T R`` and the column sums of R, R = C o (dZ - <Q, dZ>) row by row,
    for dZ = X V + v_b: a Hessian-vector product in one read of X.

    Parameters
    ----------
    X : CSR matrix of shape (n, d), float32 or float64, int32 indices
    V : ndarray of shape (d, K)
    vb : ndarray of shape (K,)
        The intercept's part of the direction (zeros without intercept).
    C : ndarray of shape (n, K)
        Weighted curvature of the rows.
    Q : ndarray of shape (n, K) or None
        Softmax probabilities (multinomial), or None for losses whose row
        Hessians are diagonal.
    n_threads : int

    Returns
    -------
    out : ndarray of shape (d, K)
    out_b : ndarray of shape (K,)
    """
    return _transposed(X, C, V, vb, Q, False, n_threads)


def _transposed(X, R, V, vb, Q, bint squared, int n_threads):
    """X^T R (V None), or the Hessian product of ``csr_hessian_times``."""
    data, indices, indptr = _csr_arrays(X)
    cdef const double[:, ::1] r = np.ascontiguousarray(R, dtype=np.float64)
    cdef Py_ssize_t d = X.shape[1], K = r.shape[1]
    cdef Py_ssize_t parts = _n_parts(X, K)
    cdef const Py_ssize_t[::1] bounds = _part_bounds(X, parts)
    cdef double[:, ::1] out = np.zeros((parts, d * K))
    cdef double[:, ::1] out_b = np.zeros((parts, K))
    cdef double[:, ::1] scratch = np.zeros((parts, K))
    cdef const double[:, ::1] v, q
    cdef const double[::1] v_b
    cdef const double* vp = NULL
    cdef const double* qp = NULL
    cdef const double* bp = NULL
    if V is not None:
        v = np.ascontiguousarray(V, dtype=np.float64).reshape(d, K)
        v_b = np.ascontiguousarray(vb, dtype=np.float64)
        vp, bp = &v[0, 0], &v_b[0]
        if Q is not None:
            q = np.ascontiguousarray(Q, dtype=np.float64)
            qp = &q[0, 0]
    if X.nnz > 0 and K > 0 and d > 0:
        if data.dtype == np.float32:
            _transposed_parts[float](
                data, indices, indptr, bounds, &r[0, 0], vp, bp, qp, K,
                squared, out, out_b, scratch, min(n_threads, parts))
        else:
            _transposed_parts[double](
                data, indices, indptr, bounds, &r[0, 0], vp, bp, qp, K,
                squared, out, out_b, scratch, min(n_threads, parts))
    total = np.asarray(out[0]).reshape(d, K)
    total_b = np.asarray(out_b[0])
    for part in range(1, parts):
        total += np.asarray(out[part]).reshape(d, K)
        total_b += np.asarray(out_b[part])
    return total, total_b


cdef void _transposed_parts(
    const floating[::1] data, const int[::1] indices, const int[::1] indptr,
    const Py_ssize_t[::1] bounds, const double* R, const double* V,
    const double* vb, const double* Q, Py_ssize_t K, bint squared,
    double[:, ::1] out, double[:, ::1] out_b, double[:, ::1] scratch,
    int n_threads,
):
    cdef Py_ssize_t part, i
    for part in prange(bounds.shape[0] - 1, nogil=True, schedule="static",
                       num_threads=n_threads):
        for i in range(bounds[part], bounds[part + 1]):
            if V == NULL:
                csr_add_outer(&data[0], &indices[0], indptr[i],
                              indptr[i + 1], &R[i * K], K, squared,
                              &out[part, 0])
            else:
                _hessian_row(&data[0], &indices[0], &indptr[0], i, V, vb,
                             &R[i * K], NULL if Q == NULL else &Q[i * K], K,
                             &scratch[part, 0], &out[part, 0],
                             &out_b[part, 0])
