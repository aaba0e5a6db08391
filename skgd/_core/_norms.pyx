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
import numpy as np
import scipy.sparse as sp

cdef enum:
    # Chunks of rows, whatever the thread count (sets the summation order).
    N_CHUNKS = 64
    # Results per chunk.
    N_OUT = 5


cdef extern from "row_norms.h":
    void chunk_norms_double "skgd_chunk_norms_double" (
        const double* values, const Py_ssize_t* indptr, Py_ssize_t d,
        const double* sw, Py_ssize_t lo, Py_ssize_t hi,
        double* out) noexcept nogil
    void chunk_norms_float "skgd_chunk_norms_float" (
        const float* values, const Py_ssize_t* indptr, Py_ssize_t d,
        const double* sw, Py_ssize_t lo, Py_ssize_t hi,
        double* out) noexcept nogil


cdef inline void _chunk(const floating* values, const Py_ssize_t* indptr,
                        Py_ssize_t d, const double* sw, Py_ssize_t lo,
                        Py_ssize_t hi, double* out) noexcept nogil:
    """The N_OUT results of ``weighted_row_norms`` over the rows lo .. hi - 1
    (``row_norms.h``)."""
    if floating is double:
        chunk_norms_double(values, indptr, d, sw, lo, hi, out)
    else:
        chunk_norms_float(values, indptr, d, sw, lo, hi, out)


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
