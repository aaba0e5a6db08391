from ._data cimport CSRDataset
from ._optimizers cimport Optimizer


cdef struct LazyCall:
    # The arguments of forward's or step's column parts (``opt`` the
    # Optimizer, borrowed; Z1, Z2 forward's products, D step's input).
    void* opt
    const Py_ssize_t* rows
    Py_ssize_t start, B
    double t, eta
    double* Z1
    double* Z2
    const double* D


cdef struct SyncCall:
    # The arguments of ``_sync_half`` (``opt`` the Optimizer, borrowed, or
    # NULL: no catch-up; W NULL: no write-out).
    void* opt
    double t
    double* W
    double* avg


cdef class LazyL2:
    cdef CSRDataset data
    cdef Py_ssize_t d, K, dK, P
    cdef double alpha, average_start, radius
    cdef bint averaging, constrained
    cdef Py_ssize_t n_state
    # One record of R doubles per column of W (R a multiple of 8, records
    # on cache-line boundaries): its K coefficients, their gradients, the
    # rule's state (n_state x K), when averaging the sums of the averaged
    # iterates and the averages (K each), then log_a and the update count
    # when the column was last brought up to date.
    cdef Py_ssize_t R, off_g, off_sum, off_avg, off_stamp
    cdef double[::1] store
    cdef double* rec
    cdef double log_a
    cdef double inv_n  # 1 / the averaged updates at the catch-ups' count
    cdef double[::1] sum_b  # the intercepts' sums of averaged iterates
    cdef double[::1] work, prev
    # The column parts (filtering whole rows at column filter_split if
    # not 0); the batch's columns of part q at cols[q (d + 1):], n_cols[q]
    # of them.
    cdef Py_ssize_t n_parts
    cdef int filter_split
    cdef Py_ssize_t[::1] cols
    # The batch number (from 1) that last listed each column.
    cdef int[::1] seen
    cdef int batch
    cdef Py_ssize_t n_cols[2]
    # Per column part (a cache line each): forward's three sums, then
    # step's two, then a sync's two (``_sync_half``).
    cdef double[::1] partial
    cdef Py_ssize_t[::1] bias_coords
    # Per column part, the scratch of a catch-up (see _catch_up).
    cdef Py_ssize_t catch_block, catch_stride
    cdef double[::1] catch_values
    cdef Py_ssize_t[::1] catch_at
    cdef readonly double sq_w, sq_avg
    cdef LazyCall call  # the forward in progress
    # A step whose column parts wait to run with the next forward's (the
    # same thread takes part q of both: each part's total, not each
    # phase's, is balanced, and the threads meet once per batch).
    cdef LazyCall pending
    cdef bint has_pending
    cdef SyncCall sync  # the catch-up of every column in progress
    cdef double sq_batch  # ||W||^2 over the batch's coordinates

    cdef inline double* _scratch(self, Py_ssize_t q,
                                 int array) noexcept nogil
    cdef inline double _n_avg(self, double t) noexcept nogil
    cdef inline double _inv_n(self, double t) noexcept nogil
    cdef void start(self, Optimizer opt, const double* W, const double* avg,
                    double t) noexcept nogil
    cdef void _restart(self) noexcept nogil
    cdef void _sync_half(self, Py_ssize_t q) noexcept nogil
    cdef void _sync(self, SyncCall call) noexcept nogil
    cdef void _prepare(self, Optimizer opt, double t) noexcept nogil
    cdef void _catch_up(self, Optimizer opt, const Py_ssize_t* cols,
                        Py_ssize_t first, Py_ssize_t m, double t,
                        Py_ssize_t q, double* sq,
                        bint gradients) noexcept nogil
    cdef void _apply_decays(self, Optimizer opt, Py_ssize_t n, double t,
                            Py_ssize_t q, double* sq,
                            bint gradients) noexcept nogil
    cdef void _catch_up_all(self, Optimizer opt, double t, double* W,
                            double* avg) noexcept nogil
    cdef void _run_pending(self) noexcept nogil
    cdef void _add_step_sums(self) noexcept nogil
    cdef void _forward_part(self, Optimizer opt, Py_ssize_t q,
                            const Py_ssize_t* rows, Py_ssize_t start,
                            Py_ssize_t B, double t, double* Z1,
                            double* Z2) noexcept nogil
    cdef void forward(self, Optimizer opt, const Py_ssize_t* rows,
                      Py_ssize_t start, Py_ssize_t B, double t,
                      bint averaged, double* Z, double* Zavg) noexcept nogil
    cdef void _step_records(self, Optimizer opt, const Py_ssize_t* cols,
                            Py_ssize_t m, double eta, double t,
                            double* part) noexcept nogil
    cdef void _part_bounds(self, Py_ssize_t q, const int** starts,
                           const int** ends) noexcept nogil
    cdef void _add_gradients_part(self, Py_ssize_t q, const Py_ssize_t* rows,
                                  Py_ssize_t start, Py_ssize_t B,
                                  const double* D) noexcept nogil
    cdef void _step_part(self, Optimizer opt, Py_ssize_t q,
                         const Py_ssize_t* rows, Py_ssize_t start,
                         Py_ssize_t B, const double* D, double eta,
                         double t) noexcept nogil
    cdef void _dense_step(self, Optimizer opt, const Py_ssize_t* rows,
                          Py_ssize_t start, Py_ssize_t B, const double* D,
                          double eta, double t) noexcept nogil
    cdef void step(self, Optimizer opt, const Py_ssize_t* rows,
                   Py_ssize_t start, Py_ssize_t B, const double* D,
                   double* W, double* G, double* avg, double eta,
                   double t) noexcept nogil
    cdef void _project_all(self, Optimizer opt, double* W, double* avg,
                           double t) noexcept nogil
    cdef void flush(self, Optimizer opt, double* W, double* avg,
                    double t) noexcept nogil
