"""Numerically stable losses and their derivatives (see _losses.pxd)."""

from libc.math cimport exp, log
import numpy as np


cdef extern from *:
    """
    #include "vector_math.h"

    /* The binary log loss of n rows (targets: class indices 0 or 1): with
       y = +-1 and m = y z, log(1 + e^-m) less its log term, max(-m, 0);
       the log's argument 1 + e with e = e^-|m| (its rounding is an
       absolute error of at most 1.1e-16; the batch sums these logs as
       one); d = -y sigmoid(-m) = -y (m > 0 ? e : 1) / (1 + e), so that
       exp never overflows. Written without branches, which would keep the
       loop from being vectorised: h = [m >= +0] from the sign bit (at
       m = 0 both choices are 1, since e = 1). */
    static SKGD_VECTORISED void skgd_binary_log_rows(
        const double* z, const double* y, Py_ssize_t ny, Py_ssize_t n,
        double* d, double* value, double* log_arg)
    {
        Py_ssize_t i;
        #pragma omp simd
        for (i = 0; i < n; i++) {
            double sgn = 2.0 * y[i * ny] - 1.0;
            double m = sgn * z[i];
            double e = exp(-fabs(m));
            double h = 0.5 + copysign(0.5, m);
            if (d != NULL) d[i] = -sgn * (h * e + (1.0 - h)) / (1.0 + e);
            log_arg[i] = 1.0 + e;
            value[i] = 0.5 * (fabs(m) - m);
        }
    }
    """
    void binary_log_rows "skgd_binary_log_rows" (
        const double* z, const double* y, Py_ssize_t ny, Py_ssize_t n,
        double* d, double* value, double* log_arg) noexcept nogil


# The product of the log arguments of unit-weight rows is logged when it
# passes this bound (each argument is at most K).
cdef double LOG_FLUSH = 1e150
# Rows per call of ``Loss.rows`` (stack buffers of ``batch``).
cdef enum:
    ROW_BLOCK = 64


cdef class Loss:
    """Base class: ``n_outputs`` is K, the columns of the decision values."""

    def __init__(self, Py_ssize_t n_outputs=1):
        self.n_outputs = n_outputs

    cdef double row(self, const double* z, const double* y, double* d,
                    double* log_arg) noexcept nogil:
        log_arg[0] = 1.0
        return 0.0

    cdef void rows(self, const double* Z, const double* Y, Py_ssize_t ny,
                   Py_ssize_t n, double* D, double* value,
                   double* log_arg) noexcept nogil:
        """``row`` of n rows: value[i] and log_arg[i], and D if not NULL."""
        cdef Py_ssize_t i, K = self.n_outputs
        for i in range(n):
            value[i] = self.row(Z + i * K, Y + i * ny,
                                D + i * K if D != NULL else NULL, &log_arg[i])

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
        cdef Py_ssize_t block, lo, n, j, i, k, K = self.n_outputs
        cdef double total = 0.0, w = 1.0, product = 1.0
        cdef double value[ROW_BLOCK]
        cdef double log_arg[ROW_BLOCK]
        for block in range((B + ROW_BLOCK - 1) // ROW_BLOCK):
            lo = block * ROW_BLOCK
            n = min(<Py_ssize_t>ROW_BLOCK, B - lo)
            self.rows(Z + lo * K, Y + lo * ny, ny, n,
                      D + lo * K if D != NULL else NULL, value, log_arg)
            for j in range(n):
                i = lo + j
                if s != NULL:
                    w = s[i]
                    if w == 0.0:
                        # A zero-weight row contributes nothing, not even a
                        # NaN.
                        if D != NULL:
                            for k in range(K):
                                D[i * K + k] = 0.0
                        continue
                total += w * value[j]
                if w != 1.0:
                    if D != NULL:
                        for k in range(K):
                            D[i * K + k] *= w
                    total += w * log(log_arg[j])
                    continue
                product *= log_arg[j]
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
        cdef double value
        binary_log_rows(z, y, 1, 1, d, &value, log_arg)
        return value

    cdef void rows(self, const double* Z, const double* Y, Py_ssize_t ny,
                   Py_ssize_t n, double* D, double* value,
                   double* log_arg) noexcept nogil:
        binary_log_rows(Z, Y, ny, n, D, value, log_arg)


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
