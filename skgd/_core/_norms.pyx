"""Row norms of X in one parallel pass: ``eta0="auto"`` and input checks.

The automatic step sizes need, over the rows of positive weight, the
weighted sums of ||x_i||_1 and ||x_i||^2 and the largest ||x_i||^2; the
input checks need to know that every value of X is finite, and Newton how
large the values are. One pass of C over X computes it all on every core,
without the row-sized temporaries of NumPy's ``abs(X).sum(1)`` (a third of
a default fit's fixed costs) and in place of check_array's separate
finiteness pass. The rows are cut into a fixed number of chunks whose sums
are added in chunk order, so the result does not depend on the number of
threads.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport fabs
import numpy as np
import scipy.sparse as sp

cdef enum:
    # Chunks of rows, whatever the thread count (sets the summation order).
    N_CHUNKS = 64
    # Results per chunk.
    N_OUT = 5


cdef inline void _row_sums(const floating* x, Py_ssize_t m, double* l1,
                           double* sq, double* max_abs) noexcept nogil:
    """||x||_1, ||x||^2 and max(max_abs, ||x||_inf) of ``x[:m]``, with four
    partial sums each (a single running sum would wait on every addition).
    A NaN makes ``l1`` NaN."""
    cdef double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0
    cdef double q0 = 0.0, q1 = 0.0, q2 = 0.0, q3 = 0.0
    cdef double v0, v1, v2, v3, top = max_abs[0]
    cdef Py_ssize_t j = 0
    while j + 4 <= m:
        v0 = fabs(x[j])
        v1 = fabs(x[j + 1])
        v2 = fabs(x[j + 2])
        v3 = fabs(x[j + 3])
        a0 += v0
        a1 += v1
        a2 += v2
        a3 += v3
        q0 += v0 * v0
        q1 += v1 * v1
        q2 += v2 * v2
        q3 += v3 * v3
        top = max(top, max(max(v0, v1), max(v2, v3)))
        j += 4
    while j < m:
        v0 = fabs(x[j])
        a0 += v0
        q0 += v0 * v0
        top = max(top, v0)
        j += 1
    l1[0] = (a0 + a1) + (a2 + a3)
    sq[0] = (q0 + q1) + (q2 + q3)
    max_abs[0] = top


cdef void _chunk(const floating* values, const Py_ssize_t* indptr, Py_ssize_t d,
                 const double* sw, Py_ssize_t lo, Py_ssize_t hi,
                 double* out) noexcept nogil:
    """The N_OUT results of ``weighted_row_norms`` over the rows lo .. hi - 1
    (dense rows of d values when ``indptr`` is NULL, else CSR; unit
    weights when ``sw`` is NULL)."""
    cdef Py_ssize_t i
    cdef double l1, sq, s = 1.0, sum_l1 = 0.0, sum_sq = 0.0, max_sq = 0.0
    cdef double total = 0.0, max_abs = 0.0
    for i in range(lo, hi):
        if indptr == NULL:
            _row_sums(values + i * d, d, &l1, &sq, &max_abs)
        else:
            _row_sums(values + indptr[i], indptr[i + 1] - indptr[i], &l1, &sq,
                      &max_abs)
        total += l1
        if sw != NULL:
            s = sw[i]
            if s == 0.0:
                continue
        sum_l1 += s * l1
        sum_sq += s * sq
        if sq > max_sq:
            max_sq = sq
    out[0] = sum_l1
    out[1] = sum_sq
    out[2] = max_sq
    out[3] = total
    out[4] = max_abs


cdef void _sums(const floating* values, const Py_ssize_t* indptr,
                Py_ssize_t n, Py_ssize_t d, const double* sw, int n_threads,
                double* out) noexcept nogil:
    cdef Py_ssize_t c, k, step = (n + N_CHUNKS - 1) // N_CHUNKS
    cdef double partial[N_OUT * N_CHUNKS]
    for c in prange(N_CHUNKS, num_threads=n_threads, schedule="static"):
        _chunk(values, indptr, d, sw, min(c * step, n), min((c + 1) * step, n),
               &partial[N_OUT * c])
    for k in range(N_OUT):
        out[k] = 0.0
    for c in range(N_CHUNKS):
        for k in range(N_OUT):
            if k == 2 or k == 4:  # maxima
                out[k] = max(out[k], partial[N_OUT * c + k])
            else:
                out[k] += partial[N_OUT * c + k]


def weighted_row_norms(X, sample_weight, int n_threads=1):
    """Sums of the row norms of X, weighted by s_i.

    Parameters
    ----------
    X : ndarray (C-contiguous) or CSR matrix, float32 or float64
    sample_weight : ndarray of shape (n_samples,), float64
        Or a broadcast 1 (stride 0): unit weights, not read.
    n_threads : int

    Returns
    -------
    l1, sq : float
        sum_i s_i ||x_i||_1 and sum_i s_i ||x_i||^2.
    max_sq : float
        max ||x_i||^2 over the rows of positive weight.
    total : float
        sum_i ||x_i||_1 over all rows: finite if and only if every value
        of X is finite and their sum does not overflow.
    max_abs : float
        The largest absolute value in X.
    """
    cdef double out[N_OUT]
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef const Py_ssize_t[::1] indptr
    cdef const Py_ssize_t* ip = NULL
    cdef const double[::1] weights
    cdef const double* sw = NULL  # NULL: unit weights
    if n > 0 and sample_weight.strides[0] != 0:
        weights = np.ascontiguousarray(sample_weight, dtype=np.float64)
        sw = &weights[0]
    elif n > 0 and sample_weight[0] != 1.0:
        raise ValueError("a broadcast sample_weight stands for unit weights")
    if sp.issparse(X):
        indptr = X.indptr.astype(np.intp, copy=False)
        ip = &indptr[0]
        values = X.data
    else:
        values = X.reshape(-1)
    if n == 0 or values.shape[0] == 0:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    cdef const double[::1] v64
    cdef const float[::1] v32
    if values.dtype == np.float32:
        v32 = values
        _sums(&v32[0], ip, n, d, sw, n_threads, out)
    else:
        v64 = values
        _sums(&v64[0], ip, n, d, sw, n_threads, out)
    return tuple(out[k] for k in range(N_OUT))
