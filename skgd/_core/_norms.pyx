"""Weighted row-norm sums of X in one parallel pass (for ``eta0="auto"``).

The automatic step sizes need, over the rows of positive weight, the
weighted means of ||x_i||_1 and ||x_i||^2 and the largest ||x_i||^2. One
pass of C over X computes them all, on every core, without the row-sized
temporaries of NumPy's ``abs(X).sum(1)``: a third of the time of a default
fit's fixed costs was spent there. The rows are cut into a fixed number of
chunks whose sums are added in chunk order, so the result does not depend
on the number of threads.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport fabs
import numpy as np
import scipy.sparse as sp

cdef enum:
    # Chunks of rows, whatever the thread count (sets the summation order).
    N_CHUNKS = 64


cdef inline void _row_sums(const floating* x, Py_ssize_t m,
                           double* l1, double* sq) noexcept nogil:
    """||x||_1 and ||x||^2 of ``x[:m]``, with four partial sums each (a
    single running sum would wait on every addition)."""
    cdef double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0
    cdef double q0 = 0.0, q1 = 0.0, q2 = 0.0, q3 = 0.0
    cdef double v
    cdef Py_ssize_t j = 0
    while j + 4 <= m:
        a0 += fabs(x[j])
        a1 += fabs(x[j + 1])
        a2 += fabs(x[j + 2])
        a3 += fabs(x[j + 3])
        q0 += <double>x[j] * x[j]
        q1 += <double>x[j + 1] * x[j + 1]
        q2 += <double>x[j + 2] * x[j + 2]
        q3 += <double>x[j + 3] * x[j + 3]
        j += 4
    while j < m:
        v = x[j]
        a0 += fabs(v)
        q0 += v * v
        j += 1
    l1[0] = (a0 + a1) + (a2 + a3)
    sq[0] = (q0 + q1) + (q2 + q3)


cdef void _chunk(const floating* values, const int* indptr, Py_ssize_t d,
                 const double* sw, Py_ssize_t lo, Py_ssize_t hi,
                 double* out) noexcept nogil:
    """out = [sum s_i ||x_i||_1, sum s_i ||x_i||^2, max ||x_i||^2] over the
    rows lo .. hi - 1 of positive weight (dense rows of d values when
    ``indptr`` is NULL, else CSR)."""
    cdef Py_ssize_t i
    cdef double l1, sq, sum_l1 = 0.0, sum_sq = 0.0, max_sq = 0.0
    for i in range(lo, hi):
        if sw[i] == 0.0:
            continue
        if indptr == NULL:
            _row_sums(values + i * d, d, &l1, &sq)
        else:
            _row_sums(values + indptr[i], indptr[i + 1] - indptr[i], &l1, &sq)
        sum_l1 += sw[i] * l1
        sum_sq += sw[i] * sq
        if sq > max_sq:
            max_sq = sq
    out[0] = sum_l1
    out[1] = sum_sq
    out[2] = max_sq


cdef void _sums(const floating* values, const int* indptr, Py_ssize_t n,
                Py_ssize_t d, const double* sw, int n_threads,
                double* out) noexcept nogil:
    cdef Py_ssize_t c, step = (n + N_CHUNKS - 1) // N_CHUNKS
    cdef double partial[3 * N_CHUNKS]
    for c in prange(N_CHUNKS, num_threads=n_threads, schedule="static"):
        _chunk(values, indptr, d, sw, min(c * step, n), min((c + 1) * step, n),
               &partial[3 * c])
    out[0] = 0.0
    out[1] = 0.0
    out[2] = 0.0
    for c in range(N_CHUNKS):
        out[0] += partial[3 * c]
        out[1] += partial[3 * c + 1]
        out[2] = max(out[2], partial[3 * c + 2])


def weighted_row_norms(X, const double[::1] sample_weight, int n_threads=1):
    """Sums over the rows of X of positive weight s_i.

    Parameters
    ----------
    X : ndarray (C-contiguous) or CSR matrix (int32 indices), float32/64
    sample_weight : ndarray of shape (n_samples,)
    n_threads : int

    Returns
    -------
    l1 : float
        sum_i s_i ||x_i||_1
    sq : float
        sum_i s_i ||x_i||^2
    max_sq : float
        max_i ||x_i||^2
    """
    cdef double out[3]
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef const int[::1] indptr
    cdef const int* ip = NULL
    if sp.issparse(X):
        indptr = X.indptr
        ip = &indptr[0]
        values = X.data
    else:
        values = X.reshape(-1)
    if n == 0 or values.shape[0] == 0:
        return 0.0, 0.0, 0.0
    cdef const double[::1] v64
    cdef const float[::1] v32
    if values.dtype == np.float32:
        v32 = values
        _sums(&v32[0], ip, n, d, &sample_weight[0], n_threads, out)
    else:
        v64 = values
        _sums(&v64[0], ip, n, d, &sample_weight[0], n_threads, out)
    return out[0], out[1], out[2]
