"""Lazy L2 updates for sparse minibatches of the stateful rules (momentum,
Adagrad, RMSprop, Adam): O(nnz of the batch) per update. Plain SGD is
exact and cheaper with W = a v (_scaled.pyx).

A coordinate W_jk whose column j is absent from a batch gets the gradient
alpha W_jk alone. Instead of touching it, the engine records the step's
decay factor (1 - eta_t alpha) in a running log-product ``log_a`` and
applies what a coordinate missed when its column next appears (or at a
flush, at every epoch's end):

    W_jk <- W_jk * exp(p_jk * (log_a - last_log_a[j]))

with p_jk the update rule's long-run scale of a constant gradient
(``Optimizer.lazy_scale``: 1 / (1 - mu) with momentum, the inverse root
of the second moment for the adaptive rules). This is an approximation:
the coordinate's state (velocity, moments) advances only when its column
appears, and the missed decay is applied at the rule's current rate; a
column present in every batch is updated exactly as on dense data.

Polyak-Ruppert averaging keeps, per coordinate, the sum of W over the
averaged updates; the missed terms of a decaying coordinate are a
geometric series at the mean rate (exact for a constant step).

The per-column work of a batch (the catch-up with G = alpha W, the rule's
step, the averages) is split into ``N_CHUNKS`` fixed slices of the sorted
columns, run by up to ``n_threads`` OpenMP threads; each slice's share of
the squared norms is summed in slice order, so that a fit does not depend
on the number of threads.

The ball constraint ``||W|| <= radius`` (``max_norm``): the projection
(Euclidean with momentum, in the rule's metric otherwise) changes
coordinates by different factors, so every coordinate is first brought up
to date (a flush, O(d K)), then projected. It is needed only when the
stored norm ``sq_w``, an upper bound of ||W||^2 (missed decays only
shrink coordinates), exceeds radius^2; while the constraint is active
this costs O(d K) per update.
"""

from cython.parallel cimport prange
from libc.math cimport INFINITY, expm1, fabs, log1p
import numpy as np

from ._data cimport prefetch
from ._optimizers cimport Optimizer

# Flush (bring every coordinate up to date and restart the product) before
# the product underflows.
cdef double MIN_LOG_A = -200.0
# Columns ahead whose bookkeeping the catch-up prefetches: a rare column's
# arrays are cache misses, overlapped this way.
cdef Py_ssize_t PREFETCH_COLUMNS = 8
# Fixed slices of a batch's columns, handed to threads one at a time (the
# rare columns, the costly ones, are the high indices), and the fewest
# columns for which threads are used (a parallel region costs a few us).
cdef Py_ssize_t N_CHUNKS = 32
cdef Py_ssize_t PARALLEL_COLUMNS = 1024
# Doubles per slice in ``partial``: three sums, padded to a cache line.
cdef Py_ssize_t PART = 8
# Below this |x|, expm1(x) is its Taylor polynomial to x^7 / 7!: relative
# error below x^7 / 8! < 3e-19, under rounding, at ~4x less cost than libm
# (the decay a column missed is usually a small exponent).
cdef double EXPM1_TAYLOR = 1e-2


cdef inline double _expm1(double x) noexcept nogil:
    """e^x - 1 to double precision."""
    if fabs(x) >= EXPM1_TAYLOR:
        return expm1(x)
    return x * (1.0 + x * (1.0 / 2 + x * (1.0 / 6 + x * (1.0 / 24 + x * (
        1.0 / 120 + x * (1.0 / 720 + x * (1.0 / 5040)))))))


def expm1_values(double[::1] x):
    """Python access for tests: ``_expm1`` of each value."""
    out = np.empty(x.shape[0])
    cdef Py_ssize_t i
    for i in range(x.shape[0]):
        out[i] = _expm1(x[i])
    return out


cdef class LazyL2:
    """Bookkeeping of the missed decay of d columns of K coordinates each,
    for theta = [W (d x K), b (K)] of length P; ``cols[:n_cols]`` is the
    current batch's set of columns (filled by ``Dataset.columns``)."""

    def __init__(self, Py_ssize_t d, Py_ssize_t K, Py_ssize_t P,
                 double alpha, double average_start,
                 double radius=INFINITY, int n_threads=1):
        self.d = d
        self.n_threads = max(1, n_threads)
        self.partial = np.zeros(PART * N_CHUNKS)
        self.K = K
        self.dK = d * K
        self.P = P
        self.alpha = alpha
        self.average_start = average_start
        self.averaging = average_start >= 0.0
        self.radius = radius
        self.constrained = radius < INFINITY
        size = d * K if self.constrained else 0
        self.work = np.zeros(max(size, 1))
        self.prev = np.zeros(max(size, 1))
        self.stamps = np.zeros(2 * d)
        self.sum_w = np.zeros(P)
        self.in_batch = np.zeros(d, dtype=np.uint8)
        self.cols = np.zeros(d, dtype=np.intp)
        self.coords = np.zeros(P, dtype=np.intp)

    cdef inline double _n_avg(self, double t) noexcept nogil:
        """Number of averaged updates among the first t."""
        return t - self.average_start if self.averaging and \
            t > self.average_start else 0.0

    cdef void start(self, const double* W, const double* avg,
                    double t) noexcept nogil:
        """Begin at update count t with every coordinate up to date."""
        cdef Py_ssize_t i, j
        cdef double n = self._n_avg(t)
        for j in range(self.d):
            self.stamps[2 * j + 1] = t
        for i in range(self.P):
            self.sum_w[i] = avg[i] * n if n > 0.0 else 0.0
        self._restart(W, avg)

    cdef void _restart(self, const double* W, const double* avg) noexcept nogil:
        """Restart the products (every coordinate is up to date) and
        recompute the squared norms exactly."""
        cdef Py_ssize_t i, j
        self.log_a = 0.0
        for j in range(self.d):
            self.stamps[2 * j] = 0.0
        self.sq_w = 0.0
        self.sq_avg = 0.0
        for i in range(self.dK):
            self.sq_w += W[i] * W[i]
            if avg != NULL:
                self.sq_avg += avg[i] * avg[i]

    cdef void _catch_up_column(self, Optimizer opt, Py_ssize_t j, double* W,
                               double* avg, double t,
                               double* sq) noexcept nogil:
        """Apply the decay column j missed since it was last updated; adds
        the changes of ||W||^2 and ||avg||^2 to sq[0] and sq[1]."""
        cdef Py_ssize_t k, i
        cdef double* stamp = &self.stamps[2 * j]
        cdef double dl = self.log_a - stamp[0]
        cdef double k_gap = t - stamp[1]
        cdef double n = self._n_avg(t)
        cdef double k_avg = n - self._n_avg(stamp[1])
        cdef double p, w0, x, missed, decay, step_decay
        if k_gap == 0.0:
            return  # in the last batch (or just restarted): up to date
        stamp[0] = self.log_a
        stamp[1] = t
        for k in range(self.K):
            i = j * self.K + k
            w0 = W[i]
            if w0 == 0.0:
                continue
            p = opt.lazy_scale(i, t)
            decay = _expm1(p * dl)  # the missed factor, minus 1
            if k_avg > 0.0:
                if dl == 0.0:
                    missed = k_avg
                else:
                    x = p * dl / k_gap
                    step_decay = decay if k_gap == 1.0 else _expm1(x)
                    if step_decay == 0.0:
                        missed = k_avg
                    elif k_avg == k_gap:  # expm1(k_avg x) is decay
                        missed = (1.0 + step_decay) * decay / step_decay
                    else:  # (1 + _expm1: exp, cheap for small exponents)
                        missed = (1.0 + _expm1((k_gap - k_avg + 1.0) * x)) \
                            * _expm1(k_avg * x) / step_decay
                self.sum_w[i] += w0 * missed
            W[i] = w0 + w0 * decay
            sq[0] += W[i] * W[i] - w0 * w0
        if n > 0.0:
            for k in range(self.K):
                i = j * self.K + k
                x = self.sum_w[i] / n
                sq[1] += x * x - avg[i] * avg[i]
                avg[i] = x

    cdef inline bint _threaded(self) noexcept nogil:
        """Whether the batch's per-column work is worth a parallel region.
        The callers branch to a plain loop otherwise: a serialised region
        (``use_threads_if``) still enters the OpenMP runtime, measured 20%
        slower per epoch at batch 32 with ~300 columns per batch."""
        return self.n_threads > 1 and self.n_cols >= PARALLEL_COLUMNS

    cdef inline void _prefetch_column(self, Optimizer opt, Py_ssize_t j,
                                      const double* W,
                                      const double* avg) noexcept nogil:
        cdef Py_ssize_t i = j * self.K
        prefetch(&self.stamps[2 * j])
        prefetch(&W[i])
        opt.prefetch_state(i)
        if avg != NULL:
            prefetch(&avg[i])
            prefetch(&self.sum_w[i])

    cdef void _catch_up_slice(self, Optimizer opt, Py_ssize_t ch,
                              double* W, double* avg, double* G,
                              double t) noexcept nogil:
        """``catch_up`` of slice ch of the columns; its changes of ||W||^2
        and ||avg||^2 and its ||W||^2 after them go to partial[PART ch:]."""
        cdef Py_ssize_t c, j, k, i
        cdef Py_ssize_t lo = ch * self.n_cols // N_CHUNKS
        cdef Py_ssize_t hi = (ch + 1) * self.n_cols // N_CHUNKS
        cdef double* part = &self.partial[PART * ch]
        part[0] = 0.0
        part[1] = 0.0
        part[2] = 0.0
        for c in range(lo, hi):
            if c + PREFETCH_COLUMNS < hi:
                self._prefetch_column(opt, self.cols[c + PREFETCH_COLUMNS],
                                      W, avg)
            j = self.cols[c]
            self._catch_up_column(opt, j, W, avg, t, part)
            for k in range(self.K):
                i = j * self.K + k
                self.coords[c * self.K + k] = i
                G[i] = self.alpha * W[i]
                part[2] += W[i] * W[i]

    cdef void catch_up(self, Optimizer opt, double* W, double* avg,
                       double* G, double t) noexcept nogil:
        """Bring the batch's columns ``cols[:n_cols]`` to update count t,
        list their coordinates (and the intercepts) in ``coords`` and set
        G = alpha W on them (the gradient before its data part)."""
        cdef Py_ssize_t ch, k, m = self.n_cols * self.K
        opt.prepare(t)
        if self._threaded():
            for ch in prange(N_CHUNKS, num_threads=self.n_threads,
                             schedule="dynamic"):
                self._catch_up_slice(opt, ch, W, avg, G, t)
        else:
            for ch in range(N_CHUNKS):
                self._catch_up_slice(opt, ch, W, avg, G, t)
        self.sq_batch = 0.0
        for ch in range(N_CHUNKS):
            self.sq_w += self.partial[PART * ch]
            self.sq_avg += self.partial[PART * ch + 1]
            self.sq_batch += self.partial[PART * ch + 2]
        for k in range(self.dK, self.P):
            self.coords[m] = k
            G[k] = self.alpha * W[k]
            m += 1
        self.n_coords = m

    cdef void _step_slice(self, Optimizer opt, Py_ssize_t ch, double* W,
                          double* G, double* avg, double eta,
                          double t) noexcept nogil:
        """``step`` on slice ch of the coordinates (and of the columns);
        ||W||^2 and the change of ||avg||^2 go to partial[PART ch:]."""
        cdef Py_ssize_t c, i, j
        cdef Py_ssize_t lo = ch * self.n_coords // N_CHUNKS
        cdef Py_ssize_t hi = (ch + 1) * self.n_coords // N_CHUNKS
        cdef double n = self._n_avg(t), old
        cdef double* part = &self.partial[PART * ch]
        part[0] = 0.0
        part[1] = 0.0
        opt.step(W, G, &self.coords[lo], hi - lo, eta, t)
        for c in range(lo, hi):
            i = self.coords[c]
            if i < self.dK:
                part[0] += W[i] * W[i]
            if n > 0.0:
                self.sum_w[i] += W[i]
                old = avg[i]
                avg[i] = self.sum_w[i] / n
                if i < self.dK:
                    part[1] += avg[i] * avg[i] - old * old
        for c in range(ch * self.n_cols // N_CHUNKS,
                       (ch + 1) * self.n_cols // N_CHUNKS):
            j = self.cols[c]
            self.stamps[2 * j] = self.log_a
            self.stamps[2 * j + 1] = t

    cdef void step(self, Optimizer opt, double* W, double* G, double* avg,
                   double eta, double t) noexcept nogil:
        """Update t: the rule on the batch's coordinates, the decay of the
        others recorded, then the projection onto the ball (if any);
        ``avg`` is NULL without averaging."""
        cdef Py_ssize_t c, i, j, ch
        cdef double x = eta * self.alpha
        if x >= 1.0:
            # The decay factor is not positive: update every coordinate.
            for c in range(self.n_cols):
                self.in_batch[self.cols[c]] = 1
            self.flush(opt, W, avg, t - 1.0)
            for j in range(self.d):
                if self.in_batch[j]:
                    self.in_batch[j] = 0
                else:
                    for i in range(j * self.K, (j + 1) * self.K):
                        G[i] = self.alpha * W[i]
            for i in range(self.P):
                self.coords[i] = i
            self.n_coords = self.P
            for j in range(self.d):
                self.cols[j] = j
            self.n_cols = self.d
            self.sq_w = 0.0
        else:
            self.log_a += log1p(-x)
            self.sq_w -= self.sq_batch
        if self._threaded():
            for ch in prange(N_CHUNKS, num_threads=self.n_threads,
                             schedule="dynamic"):
                self._step_slice(opt, ch, W, G, avg, eta, t)
        else:
            for ch in range(N_CHUNKS):
                self._step_slice(opt, ch, W, G, avg, eta, t)
        for ch in range(N_CHUNKS):
            self.sq_w += self.partial[PART * ch]
            self.sq_avg += self.partial[PART * ch + 1]
        if self.constrained and self.sq_w > self.radius * self.radius:
            self._project_all(opt, W, avg, t)
        if self.log_a < MIN_LOG_A:
            self.flush(opt, W, avg, t)

    cdef void _project_all(self, Optimizer opt, double* W, double* avg,
                           double t) noexcept nogil:
        """Project W onto the ball in the rule's metric after update t,
        every coordinate first brought up to date (O(d K)). The averages,
        which counted the unprojected W of update t, are corrected."""
        cdef Py_ssize_t i
        cdef double n = self._n_avg(t)
        self.flush(opt, W, avg, t)
        if n > 0.0:
            for i in range(self.dK):
                self.prev[i] = W[i]
        if not opt.project(W, self.dK, self.radius, t, &self.work[0]):
            return
        if n > 0.0:
            for i in range(self.dK):
                self.sum_w[i] += W[i] - self.prev[i]
                avg[i] = self.sum_w[i] / n
        self._restart(W, avg)

    cdef void flush(self, Optimizer opt, double* W, double* avg,
                    double t) noexcept nogil:
        """Bring every coordinate to update count t and restart the
        products."""
        cdef Py_ssize_t i, j
        cdef double n = self._n_avg(t)
        cdef double sq[2]  # discarded: _restart recomputes the norms
        for j in range(self.d):
            self._catch_up_column(opt, j, W, avg, t, sq)
        if n > 0.0:
            for i in range(self.dK, self.P):
                avg[i] = self.sum_w[i] / n
        self._restart(W, avg)
