"""Data access: the two products of a minibatch with the coefficients.

Each dataset answers, for a batch of rows (``rows[:B]``, or the contiguous
rows ``start .. start + B - 1`` when ``rows`` is NULL):

* ``forward``:  Z = X_B W          (B x K, C order)
* ``backward``: G += X_B^T D       (d x K, C order)
* ``reforward``: Z = X_B W for the batch of the last ``forward`` call,
  with other coefficients (reusing rows already gathered)
* ``forward_pair``: Z1 = X_B W1 and Z2 = X_B W2 (one read of the batch
  where the layout allows)
* ``columns``: the distinct columns with a stored entry in the batch
  (sparse layouts; -1 for dense data, where every column is present)

with W, Z, D and G in float64 whatever the dtype of X, so that losses,
update rules and schedules are written once, in double precision.
"""

from cython cimport floating


cdef class Dataset:
    cdef readonly Py_ssize_t n_samples
    cdef readonly Py_ssize_t n_features
    cdef Py_ssize_t n_outputs

    cdef void forward(self, const Py_ssize_t* rows, Py_ssize_t start,
                      Py_ssize_t B, const double* W, double* Z) noexcept nogil
    cdef void backward(self, const Py_ssize_t* rows, Py_ssize_t start,
                       Py_ssize_t B, const double* D, double* G) noexcept nogil
    cdef void reforward(self, const Py_ssize_t* rows, Py_ssize_t start,
                        Py_ssize_t B, const double* W, double* Z) noexcept nogil
    cdef void forward_pair(self, const Py_ssize_t* rows, Py_ssize_t start,
                           Py_ssize_t B, const double* W1, const double* W2,
                           double* Z1, double* Z2) noexcept nogil
    cdef Py_ssize_t columns(self, const Py_ssize_t* rows, Py_ssize_t start,
                            Py_ssize_t B, Py_ssize_t* cols) noexcept nogil


cdef class DenseDataset(Dataset):
    cdef const double[:, ::1] X64
    cdef const float[:, ::1] X32
    cdef bint is_float32
    cdef int n_threads
    cdef Py_ssize_t n_chunks
    # Byte buffers, viewed in the dtype of X: the gathered rows of the
    # current shuffled batch (if it fits), and one gradient per chunk.
    cdef bint gathers
    cdef bint _in_buffer
    cdef unsigned char[::1] Xb
    cdef unsigned char[::1] Gc
    # [W1 | W2] and its product, for forward_pair.
    cdef double[::1] Wpair
    cdef double[::1] Zpair
    # float32 shadows of W, Z and D for single-precision BLAS.
    cdef float[::1] W32
    cdef float[::1] Z32
    cdef float[::1] D32

    cdef void _forward_any(self, const Py_ssize_t* rows, Py_ssize_t start,
                           Py_ssize_t B, const double* W, double* Z,
                           Py_ssize_t K) noexcept nogil
    cdef void _forward(self, const floating* X, const Py_ssize_t* rows,
                       Py_ssize_t start, Py_ssize_t B, const floating* W,
                       floating* Z, floating* buf, Py_ssize_t K) noexcept nogil
    cdef void _backward(self, const floating* X, const Py_ssize_t* rows,
                        Py_ssize_t start, Py_ssize_t B, const floating* D,
                        double* G, const floating* buf) noexcept nogil


cdef class CSRDataset(Dataset):
    cdef const double[::1] data64
    cdef const float[::1] data32
    cdef const int[::1] indices
    cdef const int[::1] indptr
    cdef bint is_float32
    # Batch number at which each column was last listed by ``columns``.
    cdef Py_ssize_t[::1] seen
    cdef Py_ssize_t n_calls
