"""Data access: the two products of a minibatch with the coefficients.

Each dataset answers, for a batch of rows (``rows[:B]``, or the contiguous
rows ``start .. start + B - 1`` when ``rows`` is NULL):

* ``forward``:  Z = X_B W          (B x K, C order)
* ``backward``: G += X_B^T D       (d x K, C order)

with W, Z, D and G in float64 whatever the dtype of X, so that losses,
update rules and schedules are written once, in double precision.
"""

cdef class Dataset:
    cdef readonly Py_ssize_t n_samples
    cdef readonly Py_ssize_t n_features
    cdef Py_ssize_t n_outputs

    cdef void forward(self, const Py_ssize_t* rows, Py_ssize_t start,
                      Py_ssize_t B, const double* W, double* Z) noexcept nogil
    cdef void backward(self, const Py_ssize_t* rows, Py_ssize_t start,
                       Py_ssize_t B, const double* D, double* G) noexcept nogil


cdef class DenseDataset(Dataset):
    cdef const double[:, ::1] X64
    cdef const float[:, ::1] X32
    cdef bint is_float32
    # float32 shadows of W, Z, D and G for single-precision BLAS.
    cdef float[::1] W32
    cdef float[::1] Z32
    cdef float[::1] D32
    cdef float[::1] G32


cdef class CSRDataset(Dataset):
    cdef const double[::1] data64
    cdef const float[::1] data32
    cdef const int[::1] indices
    cdef const int[::1] indptr
    cdef bint is_float32
