"""Numerically stable losses and their derivatives (see _losses.pxd)."""

from libc.math cimport exp, log, fabs
import numpy as np


# The product of the log arguments of unit-weight rows is logged when it
# passes this bound (each argument is at most K).
cdef double LOG_FLUSH = 1e150


cdef class Loss:
    """Base class: ``n_outputs`` is K, the columns of the decision values."""

    def __init__(self, Py_ssize_t n_outputs=1):
        self.n_outputs = n_outputs

    cdef double row(self, const double* z, const double* y, double* d,
                    double* log_arg) noexcept nogil:
        log_arg[0] = 1.0
        return 0.0

    cdef double batch(self, const double* Z, const double* Y,
                      const double* s, Py_ssize_t B, Py_ssize_t ny,
                      double* D) noexcept nogil:
        """Return sum_i s_i loss_i; write D_ik = s_i dloss_i/dz_ik if D
        (s_i = 1 when s is NULL).

        The log terms of unit-weight rows are summed as the log of their
        product, taken when it passes LOG_FLUSH (after 500 rows or more for
        the binary log loss) instead of once per row: rounding the product
        adds an absolute error of 1.1e-16 per row.
        """
        cdef Py_ssize_t i, k, K = self.n_outputs
        cdef double total = 0.0, w = 1.0, product = 1.0, log_arg
        for i in range(B):
            if s != NULL:
                w = s[i]
                if w == 0.0:
                    # A zero-weight row contributes nothing, not even a NaN.
                    if D != NULL:
                        for k in range(K):
                            D[i * K + k] = 0.0
                    continue
            if D != NULL:
                total += w * self.row(Z + i * K, Y + i * ny, D + i * K,
                                      &log_arg)
                if w != 1.0:
                    for k in range(K):
                        D[i * K + k] *= w
            else:
                total += w * self.row(Z + i * K, Y + i * ny, NULL, &log_arg)
            if w != 1.0:
                total += w * log(log_arg)
                continue
            product *= log_arg
            if product > LOG_FLUSH:
                total += log(product)
                product = 1.0
        return total + log(product)

    def loss_and_gradient(self, const double[:, ::1] Z,
                          const double[:, ::1] Y, const double[::1] s):
        """Python access for tests: (sum_i s_i loss_i, s_i dloss/dZ)."""
        D = np.zeros((Z.shape[0], self.n_outputs))
        cdef double[:, ::1] Dv = D
        total = self.batch(&Z[0, 0], &Y[0, 0], &s[0], Z.shape[0],
                           Y.shape[1], &Dv[0, 0])
        return total, D


cdef inline double _label_sign(double y, Py_ssize_t k, Py_ssize_t K) noexcept nogil:
    """+1 / -1 target of column k: class 1 for K == 1, one-vs-rest else."""
    if K == 1:
        return 1.0 if y == 1.0 else -1.0
    return 1.0 if y == <double>k else -1.0


cdef class SquaredError(Loss):
    """0.5 (y - z)^2 summed over the K outputs."""

    cdef double row(self, const double* z, const double* y, double* d,
                    double* log_arg) noexcept nogil:
        cdef Py_ssize_t k
        cdef double r, total = 0.0
        log_arg[0] = 1.0
        for k in range(self.n_outputs):
            r = z[k] - y[k]
            total += 0.5 * r * r
            if d != NULL:
                d[k] = r
        return total


cdef class BinaryLogLoss(Loss):
    """log(1 + exp(-y z)) with y = +1 for class 1, -1 for class 0 (K = 1)."""

    cdef double row(self, const double* z, const double* y, double* d,
                    double* log_arg) noexcept nogil:
        cdef double sgn = 1.0 if y[0] == 1.0 else -1.0
        cdef double m = sgn * z[0]
        cdef double e = exp(-fabs(m))
        if d != NULL:
            # d/dz = -y sigmoid(-m), written so exp never overflows.
            d[0] = -sgn * (e / (1.0 + e) if m > 0 else 1.0 / (1.0 + e))
        # log1p(e) as log(1 + e): the rounding of 1 + e is an absolute
        # error of at most 1.1e-16, and the batch sums these logs as one.
        log_arg[0] = 1.0 + e
        return 0.0 if m > 0 else -m


cdef class MultinomialLogLoss(Loss):
    """-log softmax(z)_y over K >= 2 classes, via a shifted log-sum-exp."""

    cdef double row(self, const double* z, const double* y, double* d,
                    double* log_arg) noexcept nogil:
        cdef Py_ssize_t k, K = self.n_outputs, c = <Py_ssize_t>y[0]
        cdef double zmax = z[0], sumexp = 0.0, e
        for k in range(1, K):
            if z[k] > zmax:
                zmax = z[k]
        for k in range(K):
            e = exp(z[k] - zmax)
            sumexp += e
            if d != NULL:
                d[k] = e
        if d != NULL:
            for k in range(K):
                d[k] /= sumexp
            d[c] -= 1.0
        log_arg[0] = sumexp
        return zmax - z[c]


cdef class Hinge(Loss):
    """max(0, 1 - y z) per column: binary (K = 1) or joint one-vs-rest."""

    cdef double row(self, const double* z, const double* y, double* d,
                    double* log_arg) noexcept nogil:
        cdef Py_ssize_t k, K = self.n_outputs
        cdef double sgn, margin, total = 0.0
        log_arg[0] = 1.0
        for k in range(K):
            sgn = _label_sign(y[0], k, K)
            margin = 1.0 - sgn * z[k]
            if margin > 0.0:
                total += margin
            if d != NULL:
                d[k] = -sgn if margin > 0.0 else 0.0
        return total


cdef class SquaredHinge(Loss):
    """max(0, 1 - y z)^2 per column: binary (K = 1) or joint one-vs-rest."""

    cdef double row(self, const double* z, const double* y, double* d,
                    double* log_arg) noexcept nogil:
        cdef Py_ssize_t k, K = self.n_outputs
        cdef double sgn, margin, total = 0.0
        log_arg[0] = 1.0
        for k in range(K):
            sgn = _label_sign(y[0], k, K)
            margin = 1.0 - sgn * z[k]
            if margin > 0.0:
                total += margin * margin
            if d != NULL:
                d[k] = -2.0 * sgn * margin if margin > 0.0 else 0.0
        return total
