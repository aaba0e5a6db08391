"""Data access: the two products of a minibatch with the coefficients.

Each dataset answers, for a batch of rows (``rows[:B]``, or the contiguous
rows ``start .. start + B - 1`` when ``rows`` is NULL):

* ``forward``:  Z = X_B W          (B x K, C order)
* ``backward``: G += X_B^T D       (d x K, C order)
* ``forward_pair``: Z1 = X_B W1 and Z2 = X_B W2 in one read of the
  batch, column j's K values of W1 and W2 at j stride (stride K for
  d x K arrays, 2 K for the two interleaved in one array)

  (these three for the sparse layout, whose lazy and scaled updates need
  the products apart; the dense layout answers only the two below)
* ``loss_gradient``: the whole minibatch pass: Z = X_B W + b, the loss
  and its derivative D = s dloss(Z) (s NULL: unit weights),
  G = [X_B 1]^T D (d K + K values,
  overwritten: the intercept's part is the column sums of D), and the
  weighted loss sums at W and, when given, at the average A (the dense
  layout reads each block of rows once for all of it); Z, Zavg and D are
  B x K scratch that a ``blockwise`` layout does not touch
* ``objective``: the weighted loss sum at W + bias alone (the line
  search's trial points; Z is scratch, as above)

with W, Z, D and G in float64 whatever the dtype of X, so that losses,
update rules and schedules are written once, in double precision. The
targets Y (ny per row) and weights s of ``loss_gradient`` and ``objective``
are the batch's, in batch order, except for a ``blockwise`` layout, which
takes the whole arrays and reads row r's at Y + r ny and s[r] in its own
threads.
"""

from cython cimport floating

from ._losses cimport Loss
from ._team cimport Team, part_fn


cdef extern from *:
    """
    #define prefetch(address) __builtin_prefetch(address)
    /* Forced inline: GCC 12 drops a call whose only effects are prefetches
       (its mod/ref analysis finds it does nothing) unless it is inlined
       before that analysis runs. */
    #if defined(__GNUC__)
    #define SKGD_ALWAYS_INLINE static inline __attribute__((always_inline))
    #else
    #define SKGD_ALWAYS_INLINE static inline
    #endif
    /* Prefetch the cache lines of the bytes [first, last). */
    SKGD_ALWAYS_INLINE void prefetch_range(const void* first, const void* last)
    {
        const char* line = (const char*)((size_t)first & ~(size_t)63);
        for (; line < (const char*)last; line += 64) __builtin_prefetch(line);
    }
    /* Shuffled CSR rows: prefetch the row bounds of rows[i + 12] and the
       values (of `itemsize` bytes) and indices of rows[i + 6], so that a
       random row's cache misses overlap with the work on the rows before.
       Row r's stored values are starts[r] .. ends[r] - 1 (a whole row, or
       the part of it in a range of columns). */
    SKGD_ALWAYS_INLINE void prefetch_csr_rows(
        const void* data, size_t itemsize, const int* indices,
        const int* starts, const int* ends, const Py_ssize_t* rows,
        Py_ssize_t i, Py_ssize_t B)
    {
        const char* values = (const char*)data;
        Py_ssize_t r;
        if (i + 12 < B) {
            __builtin_prefetch(&starts[rows[i + 12]]);
            __builtin_prefetch(&ends[rows[i + 12]]);
        }
        if (i + 6 < B) {
            r = rows[i + 6];
            prefetch_range(values + starts[r] * itemsize,
                           values + ends[r] * itemsize);
            prefetch_range(&indices[starts[r]], &indices[ends[r]]);
        }
    }
    """
    void prefetch(const void* address) noexcept nogil
    void prefetch_csr_rows(const void* data, size_t itemsize,
                           const int* indices, const int* starts,
                           const int* ends, const Py_ssize_t* rows,
                           Py_ssize_t i, Py_ssize_t B) noexcept nogil


cdef inline double csr_dot(const floating* data, const int* indices,
                           Py_ssize_t lo, Py_ssize_t hi,
                           const double* w) noexcept nogil:
    """Stored values lo .. hi - 1 of a CSR row dotted with w, in two
    sums (even and odd positions: half the chain of dependent adds)."""
    cdef Py_ssize_t p
    cdef double even = 0.0, odd = 0.0
    for p in range(lo, hi - 1, 2):
        even += data[p] * w[indices[p]]
        odd += data[p + 1] * w[indices[p + 1]]
    if (hi - lo) % 2:
        even += data[hi - 1] * w[indices[hi - 1]]
    return even + odd


cdef inline void csr_add_outer(const floating* data, const int* indices,
                               Py_ssize_t lo, Py_ssize_t hi, const double* r,
                               Py_ssize_t K, bint squared,
                               double* out) noexcept nogil:
    """``out += x^T r`` for the CSR row x of stored values lo .. hi - 1 and
    r of K values (``squared``: ``(x o x)^T r``); out is d x K, C order."""
    cdef Py_ssize_t p, k
    cdef double x, r0 = r[0]
    cdef double* o
    if K == 1 and not squared:
        for p in range(lo, hi):
            out[indices[p]] += data[p] * r0
        return
    for p in range(lo, hi):
        x = data[p]
        if squared:
            x = x * x
        o = out + indices[p] * K
        for k in range(K):
            o[k] += x * r[k]


cdef class Dataset:
    cdef readonly Py_ssize_t n_samples
    cdef readonly Py_ssize_t n_features
    cdef Py_ssize_t n_outputs
    cdef readonly int n_threads  # OpenMP threads the engine may use
    # The threads of the batches' parallel parts (started for a fit by the
    # epoch loop).
    cdef readonly Team team
    # loss_gradient and objective work block by block and do not use the
    # caller's B x K buffers (Z, Zavg, D).
    cdef readonly bint blockwise

    cdef void forward(self, const Py_ssize_t* rows, Py_ssize_t start,
                      Py_ssize_t B, const double* W, double* Z) noexcept nogil
    cdef void backward(self, const Py_ssize_t* rows, Py_ssize_t start,
                       Py_ssize_t B, const double* D, double* G) noexcept nogil
    cdef void forward_pair(self, const Py_ssize_t* rows, Py_ssize_t start,
                           Py_ssize_t B, const double* W1, const double* W2,
                           Py_ssize_t stride, double* Z1,
                           double* Z2) noexcept nogil
    cdef void loss_gradient(self, Loss loss, const Py_ssize_t* rows,
                            Py_ssize_t start, Py_ssize_t B, const double* Y,
                            const double* s, Py_ssize_t ny, const double* W,
                            const double* A, const double* bias,
                            const double* bias_avg, double* Z, double* Zavg,
                            double* D, double* G,
                            double* values) noexcept nogil
    cdef double objective(self, Loss loss, const Py_ssize_t* rows,
                          Py_ssize_t start, Py_ssize_t B, const double* Y,
                          const double* s, Py_ssize_t ny, const double* W,
                          const double* bias, double* Z) noexcept nogil


cdef struct DenseJob:
    # The arguments of a dense pass (``DenseDataset._pass``): W and A in
    # the dtype of X, the Loss borrowed, ``gradient`` whether to form G.
    const Py_ssize_t* rows
    Py_ssize_t start, B, chunk, ny
    const void* W
    const void* A
    const double* bias
    const double* bias_avg
    const double* Y
    const double* s
    void* loss
    bint gradient


cdef class DenseDataset(Dataset):
    cdef const double[:, ::1] X64
    cdef const float[:, ::1] X32
    cdef bint is_float32
    cdef Py_ssize_t n_chunks
    cdef Py_ssize_t block_rows
    # One workspace per chunk, each on cache lines of its own (the threads
    # write them): the chunk's loss sums (2 + K doubles), a block's
    # products and loss derivatives (3 R K doubles; and 3 R K floats for
    # float32 X), the chunk's gradient (d K) and gathered rows (R d), both
    # in the dtype of X, and a block's targets and weights (R (K + 1)
    # doubles: ny <= K). ``at`` holds the offsets of the last five in bytes.
    cdef unsigned char[::1] work
    cdef Py_ssize_t work_start
    cdef Py_ssize_t chunk_bytes
    cdef Py_ssize_t at[5]
    # float32 shadows of W and A: float32 X is multiplied in single
    # precision.
    cdef float[::1] W32

    # The pass in progress, read by its chunks' threads.
    cdef DenseJob job

    cdef void _pass(self, Loss loss, const Py_ssize_t* rows, Py_ssize_t start,
                    Py_ssize_t B, const double* Y, const double* s,
                    Py_ssize_t ny, const double* W, const double* A,
                    const double* bias, const double* bias_avg, double* G,
                    double* values) noexcept nogil
    cdef void _chunk_at(self, Py_ssize_t c) noexcept nogil
    cdef void _chunk(self, const floating* X, Py_ssize_t c) noexcept nogil


cdef struct CSRCall:
    # The arguments of a CSR product's column parts: forward_pair's (W1,
    # W2 at ``stride``, into Z1, Z2) or backward's (D in W1, G in Z1).
    const Py_ssize_t* rows
    Py_ssize_t start, B, stride
    const double* W1
    const double* W2
    double* Z1
    double* Z2


cdef class CSRDataset(Dataset):
    cdef const double[::1] data64
    cdef const float[::1] data32
    cdef const int[::1] indices
    cdef const int[::1] indptr
    cdef bint is_float32
    # The minibatch products run in two parts of the columns (below and
    # from ``split``), each on one thread, which keeps its part of the
    # coefficients in its own cache; row r's values of part 0 are
    # indptr[r] .. cut[r] - 1, of part 1 cut[r] .. indptr[r + 1] - 1. One
    # part (``n_parts`` 1) for rows with unsorted indices or narrow X
    # (``split`` 0: no split column).
    # ``scratch`` holds part 1's products (2 B K values). Set up by
    # ``prepare_minibatches``; ``split_parts`` the parts once split for
    # ``split_key`` (its batch size and costs).
    cdef readonly Py_ssize_t n_parts
    cdef Py_ssize_t split_parts
    cdef object split_key
    cdef readonly int split
    cdef int[::1] cut
    cdef double[::1] scratch
    cdef Py_ssize_t values_per_row

    cdef void _part_bounds(self, Py_ssize_t q, const int** starts,
                           const int** ends) noexcept nogil
    cdef bint _parallel(self, Py_ssize_t B,
                        Py_ssize_t n_parts) noexcept nogil
    cdef void run_parts(self, part_fn fn, void* ctx, Py_ssize_t B,
                        Py_ssize_t n_parts) noexcept nogil
    cdef CSRCall call  # the product in progress
    cdef void _forward_part(self, Py_ssize_t q, const Py_ssize_t* rows,
                            Py_ssize_t start, Py_ssize_t B, const double* W1,
                            const double* W2, Py_ssize_t stride, double* Z1,
                            double* Z2) noexcept nogil
    cdef void _backward_part(self, Py_ssize_t q, const Py_ssize_t* rows,
                             Py_ssize_t start, Py_ssize_t B, const double* D,
                             double* G) noexcept nogil
