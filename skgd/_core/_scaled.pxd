from ._data cimport CSRDataset


cdef class ScaledSGD:
    cdef CSRDataset data
    cdef Py_ssize_t dK, P, K
    cdef double alpha, average_start, radius
    cdef bint averaging
    cdef double a, cum_a
    cdef double vv, sv, ss
    cdef double[::1] u
    cdef readonly double sq_w, sq_avg

    cdef double _n_avg(self, double t) noexcept nogil
    cdef void start(self, const double* W, const double* avg,
                    double t) noexcept nogil
    cdef void forward(self, const Py_ssize_t* rows, Py_ssize_t start,
                      Py_ssize_t B, const double* W, double t, double* Z,
                      double* Zavg) noexcept nogil
    cdef void step(self, const Py_ssize_t* rows, Py_ssize_t start,
                   Py_ssize_t B, double* W, const double* D, const double* G,
                   double* avg, double eta, double t) noexcept nogil
    cdef void flush(self, double* W, double* avg, double t) noexcept nogil
