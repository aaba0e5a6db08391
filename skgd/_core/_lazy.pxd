from ._optimizers cimport Optimizer


cdef class LazyL2:
    cdef Py_ssize_t d, K, dK, P
    cdef double alpha, average_start, radius
    cdef bint averaging, constrained
    cdef double[::1] work, prev
    cdef int n_threads
    cdef double[::1] partial  # three sums per slice of a batch's columns
    cdef double log_a
    # Per column: log_a and the update count when it was last brought up
    # to date (interleaved: one cache line for both).
    cdef double[::1] stamps
    cdef double[::1] sum_w
    cdef unsigned char[::1] in_batch
    cdef Py_ssize_t[::1] cols
    cdef Py_ssize_t[::1] coords
    cdef Py_ssize_t n_cols, n_coords
    cdef readonly double sq_w, sq_avg
    cdef double sq_batch  # ||W||^2 over the batch's coordinates

    cdef inline double _n_avg(self, double t) noexcept nogil
    cdef void _restart(self, const double* W,
                       const double* avg) noexcept nogil
    cdef void _catch_up_column(self, Optimizer opt, Py_ssize_t j, double* W,
                               double* avg, double t,
                               double* sq) noexcept nogil
    cdef bint _threaded(self) noexcept nogil
    cdef void _prefetch_column(self, Optimizer opt, Py_ssize_t j,
                               const double* W,
                               const double* avg) noexcept nogil
    cdef void start(self, const double* W, const double* avg,
                    double t) noexcept nogil
    cdef void _catch_up_slice(self, Optimizer opt, Py_ssize_t ch,
                              double* W, double* avg, double* G,
                              double t) noexcept nogil
    cdef void catch_up(self, Optimizer opt, double* W, double* avg,
                       double* G, double t) noexcept nogil
    cdef void _step_slice(self, Optimizer opt, Py_ssize_t ch, double* W,
                          double* G, double* avg, double eta,
                          double t) noexcept nogil
    cdef void step(self, Optimizer opt, double* W, double* G, double* avg,
                   double eta, double t) noexcept nogil
    cdef void _project_all(self, Optimizer opt, double* W, double* avg,
                           double t) noexcept nogil
    cdef void flush(self, Optimizer opt, double* W, double* avg,
                    double t) noexcept nogil
