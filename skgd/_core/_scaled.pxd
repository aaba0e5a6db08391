from ._data cimport CSRDataset


cdef struct ScaledCall:
    # The arguments of step's column parts.
    const Py_ssize_t* rows
    Py_ssize_t start, B
    const double* D
    double step
    double* v
    bint averaged


cdef class ScaledSGD:
    cdef CSRDataset data
    cdef Py_ssize_t d, dK, P, K, stride
    cdef double alpha, average_start, radius
    cdef bint averaging
    cdef double a, cum_a
    cdef double vv, sv, ss
    cdef double[::1] vu
    cdef double[::1] sums
    cdef readonly double sq_w, sq_avg
    cdef ScaledCall call  # the step in progress

    cdef double _n_avg(self, double t) noexcept nogil
    cdef double* _v(self, double* W) noexcept nogil
    cdef void start(self, const double* W, const double* avg,
                    double t) noexcept nogil
    cdef void forward(self, const Py_ssize_t* rows, Py_ssize_t start,
                      Py_ssize_t B, const double* W, double t, double* Z,
                      double* Zavg) noexcept nogil
    cdef void _apply_part(self, Py_ssize_t q, const Py_ssize_t* rows,
                          Py_ssize_t start, Py_ssize_t B, const double* D,
                          double step, double* v,
                          bint averaged) noexcept nogil
    cdef void step(self, const Py_ssize_t* rows, Py_ssize_t start,
                   Py_ssize_t B, double* W, const double* D, const double* G,
                   double* avg, double eta, double t) noexcept nogil
    cdef void flush(self, double* W, double* avg, double t) noexcept nogil
