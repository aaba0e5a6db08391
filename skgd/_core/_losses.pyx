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

    /* sum_i value[i] + log(prod_i log_arg[i]) over n rows (log_arg >= 1):
       four lanes of sums and products in a fixed order, so that a block
       has the same total whether or not its derivatives were asked for.
       The product of a block of 64 rows overflows only past 2^16 classes
       (each argument is at most K); then each lane is logged alone. */
    static inline double skgd_row_sum(const double* value,
                                      const double* log_arg, Py_ssize_t n)
    {
        double t[4] = {0.0, 0.0, 0.0, 0.0}, p[4] = {1.0, 1.0, 1.0, 1.0};
        double product;
        Py_ssize_t i, k;
        for (i = 0; i + 4 <= n; i += 4)
            for (k = 0; k < 4; k++) {
                t[k] += value[i + k];
                p[k] *= log_arg[i + k];
            }
        for (; i < n; i++) {
            t[0] += value[i];
            p[0] *= log_arg[i];
        }
        product = (p[0] * p[1]) * (p[2] * p[3]);
        return ((t[0] + t[1]) + (t[2] + t[3]))
            + (isinf(product) ? (log(p[0]) + log(p[1])) + (log(p[2]) + log(p[3]))
               : log(product));
    }

    /* Hinge (squared = 0) or squared hinge (squared = 1) of n rows with
       one output (targets 0 or 1), without branches so that it
       vectorises: p = max(1 - y z, 0) with y = +-1, value p or p^2,
       d = -y [p > 0] or -2 y p (+0 where p = 0, as the per-row code). */
    static SKGD_VECTORISED void skgd_hinge_rows(
        const double* z, const double* y, Py_ssize_t ny, Py_ssize_t n,
        int squared, double* d, double* value, double* log_arg)
    {
        Py_ssize_t i;
        #pragma omp simd
        for (i = 0; i < n; i++) {
            double sgn = 2.0 * y[i * ny] - 1.0;
            double margin = 1.0 - sgn * z[i];
            double p = margin > 0.0 ? margin : 0.0;
            value[i] = squared ? p * p : p;
            if (d != NULL)
                d[i] = margin > 0.0 ? (squared ? -2.0 * sgn * p : -sgn) : 0.0;
            log_arg[i] = 1.0;
        }
    }

    /* Squared error 0.5 |z - y|^2 of n rows of K outputs (targets: K
       values at the start of each row's ny), d = z - y. */
    static SKGD_VECTORISED void skgd_squared_error_rows(
        const double* z, const double* y, Py_ssize_t K, Py_ssize_t ny,
        Py_ssize_t n, double* d, double* value, double* log_arg)
    {
        Py_ssize_t i, k;
        if (K == 1) {
            #pragma omp simd
            for (i = 0; i < n; i++) {
                double r = z[i] - y[i * ny];
                value[i] = 0.5 * r * r;
                if (d != NULL) d[i] = r;
                log_arg[i] = 1.0;
            }
            return;
        }
        for (i = 0; i < n; i++) {
            double total = 0.0;
            for (k = 0; k < K; k++) {
                double r = z[i * K + k] - y[i * ny + k];
                total += 0.5 * r * r;
                if (d != NULL) d[i * K + k] = r;
            }
            value[i] = total;
            log_arg[i] = 1.0;
        }
    }
    """
    void binary_log_rows "skgd_binary_log_rows" (
        const double* z, const double* y, Py_ssize_t ny, Py_ssize_t n,
        double* d, double* value, double* log_arg) noexcept nogil
    double row_sum "skgd_row_sum" (
        const double* value, const double* log_arg, Py_ssize_t n) noexcept nogil
    void hinge_rows "skgd_hinge_rows" (
        const double* z, const double* y, Py_ssize_t ny, Py_ssize_t n,
        int squared, double* d, double* value, double* log_arg) noexcept nogil
    void squared_error_rows "skgd_squared_error_rows" (
        const double* z, const double* y, Py_ssize_t K, Py_ssize_t ny,
        Py_ssize_t n, double* d, double* value, double* log_arg) noexcept nogil


# Rows per call of ``Loss.rows`` (stack buffers of ``batch``).
cdef enum:
    ROW_BLOCK = 64


cdef inline bint _all_ones(const double* s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if s[i] != 1.0:
            return False
    return True


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

        The log terms of a block of unit-weight rows are summed as the log
        of their product (``row_sum``): rounding the product adds an
        absolute error of 1.1e-16 per row. A block whose weights are all
        1 is summed the same way, so that weights of ones give the fit
        without weights bit for bit.
        """
        cdef Py_ssize_t block, lo, n, j, i, k, K = self.n_outputs
        cdef double total = 0.0, w
        cdef double value[ROW_BLOCK]
        cdef double log_arg[ROW_BLOCK]
        for block in range((B + ROW_BLOCK - 1) // ROW_BLOCK):
            lo = block * ROW_BLOCK
            n = min(<Py_ssize_t>ROW_BLOCK, B - lo)
            self.rows(Z + lo * K, Y + lo * ny, ny, n,
                      D + lo * K if D != NULL else NULL, value, log_arg)
            if s == NULL or _all_ones(s + lo, n):
                total += row_sum(value, log_arg, n)
                continue
            for j in range(n):
                i = lo + j
                w = s[i]
                if w == 0.0:
                    # A zero-weight row contributes nothing, not even a NaN.
                    if D != NULL:
                        for k in range(K):
                            D[i * K + k] = 0.0
                    continue
                total += w * value[j]
                if log_arg[j] != 1.0:
                    total += w * log(log_arg[j])
                if D != NULL and w != 1.0:
                    for k in range(K):
                        D[i * K + k] *= w
        return total

    def loss_and_gradient(self, const double[:, ::1] Z,
                          const double[:, ::1] Y, const double[::1] s=None,
                          bint gradient=True):
        """Python access for tests: (sum_i s_i loss_i, s_i dloss/dZ or
        None); unit weights when s is None."""
        D = np.zeros((Z.shape[0], self.n_outputs)) if gradient else None
        cdef double[:, ::1] Dv = D
        total = self.batch(&Z[0, 0], &Y[0, 0], &s[0] if s is not None else NULL,
                           Z.shape[0], Y.shape[1],
                           &Dv[0, 0] if gradient else NULL)
        return total, D


cdef inline double _label_sign(double y, Py_ssize_t k, Py_ssize_t K) noexcept nogil:
    """+1 / -1 target of column k: class 1 for K == 1, one-vs-rest else."""
    if K == 1:
        return 1.0 if y == 1.0 else -1.0
    return 1.0 if y == <double>k else -1.0


cdef class SquaredError(Loss):
    """0.5 (y - z)^2 summed over the K outputs."""

    cdef void rows(self, const double* Z, const double* Y, Py_ssize_t ny,
                   Py_ssize_t n, double* D, double* value,
                   double* log_arg) noexcept nogil:
        squared_error_rows(Z, Y, self.n_outputs, ny, n, D, value, log_arg)


cdef class BinaryLogLoss(Loss):
    """log(1 + exp(-y z)) with y = +1 for class 1, -1 for class 0 (K = 1)."""

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

    def __init__(self, Py_ssize_t n_outputs=1):
        super().__init__(n_outputs)
        self.squared = False

    cdef double row(self, const double* z, const double* y, double* d,
                    double* log_arg) noexcept nogil:
        cdef Py_ssize_t k, K = self.n_outputs
        cdef double sgn, margin, total = 0.0
        log_arg[0] = 1.0
        for k in range(K):
            sgn = _label_sign(y[0], k, K)
            margin = max(1.0 - sgn * z[k], 0.0)
            total += margin * margin if self.squared else margin
            if d != NULL:
                d[k] = 0.0 if margin == 0.0 else (
                    -2.0 * sgn * margin if self.squared else -sgn)
        return total

    cdef void rows(self, const double* Z, const double* Y, Py_ssize_t ny,
                   Py_ssize_t n, double* D, double* value,
                   double* log_arg) noexcept nogil:
        if self.n_outputs == 1:
            hinge_rows(Z, Y, ny, n, self.squared, D, value, log_arg)
        else:
            Loss.rows(self, Z, Y, ny, n, D, value, log_arg)


cdef class SquaredHinge(Hinge):
    """max(0, 1 - y z)^2 per column: binary (K = 1) or joint one-vs-rest."""

    def __init__(self, Py_ssize_t n_outputs=1):
        super().__init__(n_outputs)
        self.squared = True
