"""Loss functions of SPEC section 2, one row at a time.

``row(z, y, d, log_arg)`` returns the loss of one row with decision
values ``z[:K]`` and target ``y`` less a log term, whose argument it
writes to ``log_arg`` (1 when there is none: ``batch`` sums the log terms
of a batch as the log of a product), and, when ``d`` is not NULL, writes
the derivative dloss/dz into ``d[:K]``. ``rows`` does the same for a
block of rows (a loss may override it with a vectorised loop: the binary
log loss, the hinges with one output and the squared error do).
Regression targets hold K values per row; classification targets hold
one class index (as a double).
"""

cdef class Loss:
    cdef readonly Py_ssize_t n_outputs
    cdef double row(self, const double* z, const double* y, double* d,
                    double* log_arg) noexcept nogil
    cdef void rows(self, const double* Z, const double* Y, Py_ssize_t ny,
                   Py_ssize_t n, double* D, double* value,
                   double* log_arg) noexcept nogil
    cdef double batch(self, const double* Z, const double* Y,
                      const double* s, Py_ssize_t B, Py_ssize_t ny,
                      double* D) noexcept nogil


cdef class SquaredError(Loss):
    pass


cdef class BinaryLogLoss(Loss):
    pass


cdef class MultinomialLogLoss(Loss):
    pass


cdef class Hinge(Loss):
    cdef bint squared


cdef class SquaredHinge(Hinge):
    pass
