"""Plain SGD on sparse minibatches at O(nnz of the batch): W = a v.

The update W <- (1 - eta alpha) W - eta X_B^T D multiplies every
coordinate by the same factor, so W is kept as a scale ``a`` times a
vector ``v`` (SPEC section 3's scale trick): the decay multiplies ``a``
and only the batch's columns of ``v`` change, by -eta (X_B^T D) / a.

Polyak-Ruppert averaging keeps the sum S of the averaged iterates as
S = cum_a v - u, ``cum_a`` the running sum of the scales: adding
W_t = a_t v_t to S is ``cum_a += a_t``, and a change dv of v on the batch's
columns is ``u += cum_a dv``. The monitored objective needs ||W||^2 and
||S||^2; they follow from ||v||^2, <S, v> and ||S||^2, updated in O(nnz).
Every stored value then reads and moves both v_j and u_j: they are kept
interleaved in one array ``vu`` (column j's K values of v, then its K of
u), so that each costs one cache line, not two (averaged epoch on a
200k x 100k text-like CSR problem: 50 -> 47 ms); without averaging v is W
itself. The batch's values are applied in the dataset's column parts,
on two threads for large batches (see _data.pxd).

With ``max_norm = r`` the Euclidean projection onto ||W|| <= r is a
scaling of W, applied to ``a`` in O(1) (||W||^2 = a^2 ||v||^2 is known).

The sparse fit is the dense fit: same batches, same steps, same intercept
update, to rounding. ``flush`` writes W = a v and the average out (at
every epoch's end, and before ``a`` underflows or ``cum_a`` grows large
enough to cost precision) and restarts with a = 1.
"""

from cython cimport floating
from libc.math cimport INFINITY, sqrt
import numpy as np

from ._data cimport CSRDataset

# Flush before the scale underflows or the running sums lose precision.
cdef double MIN_SCALE = 1e-9
cdef double MAX_CUM_SCALE = 1e4
# Doubles per column part in ``sums`` (two sums, padded to a cache line:
# the parts run on different threads).
cdef Py_ssize_t PART = 8
# The costs that place the split of the column parts (see
# CSRDataset.prepare_minibatches): a stored value, and a distinct column
# of the batch (its coefficients' cache miss) as much again. On
# bench_sparse's columns, numbered by frequency, the split falls at 62% of
# the stored values (60% was the best share of values there: averaged sgd
# epoch 33.5 ms at 0.5, 30.4 at 0.6, 31 at 0.65-0.7); with its columns
# permuted at half of them.
VALUE_COST = 1.0
COLUMN_COST = 1.0
CATCH_UP_COST = 0.0


cdef inline void _move(double* v, double* u, Py_ssize_t c, double dv,
                       double cum_a, bint averaged, double* vv,
                       double* sv) noexcept nogil:
    """v[c] += dv, and its changes of ||v||^2 and <S, v> added to vv and
    sv (u[c] += cum_a dv when averaging)."""
    cdef double v_old = v[c]
    v[c] = v_old + dv
    vv[0] += dv * (2.0 * v_old + dv)
    if averaged:
        sv[0] += (cum_a * v_old - u[c]) * dv
        u[c] += cum_a * dv


cdef void _apply(const floating* data, const int* indices, const int* starts,
                 const int* ends, const Py_ssize_t* rows, Py_ssize_t start,
                 Py_ssize_t B, Py_ssize_t K, const double* D, double step,
                 double* v, double* u, Py_ssize_t stride, double cum_a,
                 bint averaged, double* sums) noexcept nogil:
    """v += step X_B^T D over row r's values starts[r] .. ends[r] - 1, one
    stored value at a time, adding the changes of ||v||^2 and <S, v> to
    sums[0] and sums[1], and u += cum_a dv (averaging); column j's K values
    of v and u at j stride.

    The parts of a coordinate's change may come in any order: S = cum_a v
    - u does not move with them, so each part adds S_j dv to <S, v>.
    With K = 1 the stored values go in pairs to two pairs of sums (half
    the length of their chains of dependent additions)."""
    cdef Py_ssize_t i, r, p, end, k, c
    cdef double x
    cdef double vv0 = sums[0], vv1 = 0.0, sv0 = sums[1], sv1 = 0.0
    for i in range(B):
        r = rows[i] if rows != NULL else start + i
        p = starts[r]
        end = ends[r]
        if K == 1:
            x = step * D[i]
            while p + 1 < end:
                _move(v, u, indices[p] * stride, x * data[p], cum_a,
                      averaged, &vv0, &sv0)
                _move(v, u, indices[p + 1] * stride, x * data[p + 1], cum_a,
                      averaged, &vv1, &sv1)
                p += 2
            if p < end:
                _move(v, u, indices[p] * stride, x * data[p], cum_a,
                      averaged, &vv0, &sv0)
            continue
        for p in range(p, end):
            x = step * data[p]
            c = indices[p] * stride
            for k in range(K):
                _move(v, u, c + k, x * D[i * K + k], cum_a, averaged,
                      &vv0, &sv0)
    sums[0] = vv0 + vv1
    sums[1] = sv0 + sv1


cdef class ScaledSGD:
    """W = a v for the d x K coefficients of theta = [W, b] (length P),
    read through the CSR batches of ``data``; ``average_start < 0`` for no
    averaging; ``radius`` the ball constraint (infinite for none)."""

    def __init__(self, CSRDataset data, Py_ssize_t K, Py_ssize_t P,
                 double alpha, double average_start, double radius=INFINITY):
        self.data = data
        self.d = data.n_features
        self.K = K
        self.dK = data.n_features * K
        self.P = P
        self.alpha = alpha
        self.average_start = average_start
        self.averaging = average_start >= 0.0
        self.radius = radius
        # v and u interleaved; without averaging, the scratch of a dense
        # step (v is then W).
        self.stride = 2 * K if self.averaging else K
        self.vu = np.zeros(self.d * self.stride)
        self.sums = np.zeros(2 * PART)

    cdef double _n_avg(self, double t) noexcept nogil:
        """Number of averaged updates among the first t."""
        return t - self.average_start if self.averaging and \
            t > self.average_start else 0.0

    cdef inline double* _v(self, double* W) noexcept nogil:
        """Where v is kept (u follows each column's K values of v)."""
        return &self.vu[0] if self.averaging else W

    cdef void start(self, const double* W, const double* avg,
                    double t) noexcept nogil:
        """Begin at update count t from W (a = 1) and its average."""
        cdef Py_ssize_t i, j, k, c
        cdef double n = self._n_avg(t), s
        self.a = 1.0
        self.cum_a = 0.0
        self.vv = 0.0
        self.sv = 0.0
        self.ss = 0.0
        for j in range(self.d):
            for k in range(self.K):
                i = j * self.K + k
                s = n * avg[i] if n > 0.0 else 0.0
                if self.averaging:
                    c = j * self.stride + k
                    self.vu[c] = W[i]
                    self.vu[c + self.K] = -s
                self.vv += W[i] * W[i]
                self.sv += s * W[i]
                self.ss += s * s
        self.sq_w = self.vv
        self.sq_avg = self.ss / (n * n) if n > 0.0 else 0.0

    cdef void forward(self, const Py_ssize_t* rows, Py_ssize_t start,
                      Py_ssize_t B, const double* W, double t, double* Z,
                      double* Zavg) noexcept nogil:
        """Z = X_B (a v) and, when averaging, Zavg = X_B S / n (B x K
        values; meaningful once an averaged update was made), both without
        intercepts; sets ``sq_w`` and ``sq_avg``."""
        cdef Py_ssize_t i
        cdef double n = self._n_avg(t)
        if self.averaging:
            self.data.forward_pair(rows, start, B, &self.vu[0],
                                   &self.vu[self.K], self.stride, Z, Zavg)
            if n > 0.0:
                for i in range(B * self.K):
                    Zavg[i] = (self.cum_a * Z[i] - Zavg[i]) / n
                self.sq_avg = self.ss / (n * n)
        else:
            self.data.forward(rows, start, B, W, Z)
        for i in range(B * self.K):
            Z[i] *= self.a
        self.sq_w = self.a * self.a * self.vv

    cdef void _apply_part(self, Py_ssize_t q, const Py_ssize_t* rows,
                          Py_ssize_t start, Py_ssize_t B, const double* D,
                          double step, double* v,
                          bint averaged) noexcept nogil:
        """``_apply`` on the dataset's column part q; its sums go to
        sums[PART q:]."""
        cdef const int* starts
        cdef const int* ends
        cdef double* sums = &self.sums[PART * q]
        self.data._part_bounds(q, &starts, &ends)
        sums[0] = 0.0
        sums[1] = 0.0
        if self.data.is_float32:
            _apply(&self.data.data32[0], &self.data.indices[0], starts, ends,
                   rows, start, B, self.K, D, step, v, v + self.K,
                   self.stride, self.cum_a, averaged, sums)
        else:
            _apply(&self.data.data64[0], &self.data.indices[0], starts, ends,
                   rows, start, B, self.K, D, step, v, v + self.K,
                   self.stride, self.cum_a, averaged, sums)

    cdef void step(self, const Py_ssize_t* rows, Py_ssize_t start,
                   Py_ssize_t B, double* W, const double* D, const double* G,
                   double* avg, double eta, double t) noexcept nogil:
        """Update t from the batch's loss derivatives D (B x K, divided by
        the batch weight) and the intercepts' gradient in G[dK:]; ``avg``
        is NULL without averaging."""
        cdef Py_ssize_t i
        cdef double x = eta * self.alpha
        cdef double n = self._n_avg(t), a_t, sq = 0.0
        cdef bint averaged = n > 0.0
        cdef double* v = self._v(W)
        cdef double* grad = &self.vu[0]
        cdef Py_ssize_t q
        if x >= 1.0:
            # The decay factor is not positive: a dense step, with X_B^T D
            # in vu (which the flush has written out; start refills it).
            self.flush(W, avg, t - 1.0)
            for i in range(self.dK):
                grad[i] = 0.0
            self.data.backward(rows, start, B, D, grad)
            for i in range(self.dK):
                W[i] = (1.0 - x) * W[i] - eta * grad[i]
                sq += W[i] * W[i]
            if sq > self.radius * self.radius:
                for i in range(self.dK):
                    W[i] *= self.radius / sqrt(sq)
        else:
            a_t = self.a * (1.0 - x)
            # The column parts of the dataset's products (on two threads
            # for large batches), their sums added in part order.
            self.call = ScaledCall(rows, start, B, D, -eta / a_t, v,
                                   averaged)
            self.data.run_parts(_scaled_apply_part, <void*>self, B,
                                self.data.n_parts)
            for q in range(self.data.n_parts):
                self.vv += self.sums[PART * q]
                self.sv += self.sums[PART * q + 1]
            if a_t * a_t * self.vv > self.radius * self.radius:
                a_t = self.radius / sqrt(self.vv)
            self.a = a_t
            if averaged:
                self.ss += a_t * (2.0 * self.sv + a_t * self.vv)
                self.sv += a_t * self.vv
                self.cum_a += a_t
        for i in range(self.dK, self.P):
            W[i] -= eta * G[i]
            if averaged:
                avg[i] += (W[i] - avg[i]) / n
        if x >= 1.0:
            if averaged:
                for i in range(self.dK):
                    avg[i] += (W[i] - avg[i]) / n
            self.start(W, avg, t)
        elif self.a < MIN_SCALE or self.cum_a > MAX_CUM_SCALE:
            self.flush(W, avg, t)

    cdef void flush(self, double* W, double* avg, double t) noexcept nogil:
        """Write W = a v and the average at update count t, and restart."""
        cdef Py_ssize_t i, j, k, c
        cdef double n = self._n_avg(t)
        cdef double* v = self._v(W)
        for j in range(self.d):
            for k in range(self.K):
                i = j * self.K + k
                c = j * self.stride + k
                if n > 0.0:
                    avg[i] = (self.cum_a * v[c] - v[c + self.K]) / n
                W[i] = self.a * v[c]
        self.start(W, avg, t)


cdef void _scaled_apply_part(void* engine, Py_ssize_t q) noexcept nogil:
    """A team's part: column part q of ``ScaledSGD.step``."""
    cdef ScaledCall* c = &(<ScaledSGD>engine).call
    (<ScaledSGD>engine)._apply_part(q, c.rows, c.start, c.B, c.D, c.step, c.v,
                                    c.averaged)
