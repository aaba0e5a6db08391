"""Lazy L2 updates for sparse minibatches of the stateful rules (momentum,
Adagrad, RMSprop, Adam): O(nnz of the batch) per update. Plain SGD is
exact and cheaper with W = a v (_scaled.pyx).

A coordinate W_jk whose column j is absent from a batch gets the gradient
alpha W_jk alone. Instead of touching it, the engine records the step's
decay factor (1 - eta_t alpha) in a running log-product ``log_a`` and
applies what a coordinate missed when its column next appears (or at a
flush, at every epoch's end):

    W_jk <- W_jk * exp((log_a - last_log_a[j]) / D_jk)

with D_jk what the update rule divides a constant gradient by in the long
run (``Optimizer.lazy_divisors``: 1 - mu with momentum, the root of the
second moment plus eps for the adaptive rules). This is an approximation:
the coordinate's state (velocity, moments) advances only when its column
appears, and the missed decay is applied at the rule's current rate; a
column present in every batch is updated exactly as on dense data.

Polyak-Ruppert averaging keeps, per coordinate, the sum of W over the
averaged updates; the missed terms of a decaying coordinate are a
geometric series at the mean rate (exact for a constant step).

Everything the engine keeps of a column of W -- its coefficients, their
gradients, the rule's state, the average's sums, the column's stamps --
lives in one record, a cache line for K = 1 (the flat arrays, which the
caller owns, are read at ``start`` and written back at ``flush``, once
per epoch; a flush brings each half of the columns up to date, writes it
out and sums its norms on a thread of its own: 5.0 -> 2.8M cycles per
epoch, of a 56 ms adam epoch on bench_sparse). A batch is worked in two
column parts of the dataset (see _data.pxd; on rows with unsorted
indices, two parts that filter the rows by column), on two threads for
large batches, each part in its thread:

* ``forward``: a first read of the batch lists the part's columns (a
  compact array of batch numbers, not the records, marks the columns
  seen: a short loop over a small array, so that the batch's rows are
  read with many cache misses in flight), their records are brought up
  to date with gradient alpha W, then Z = X_B W (and X_B avg). The catch-up
  goes by blocks of columns: their gaps, the rule's divisors (a loop per
  rule), the decays in one vector loop (libmvec's exp), then the records'
  updates; no column waits for the one before it (adam epoch on
  bench_sparse 151-170 -> 132-136 ms, one column at a time before);
* ``step``: the gradients' data part X_B^T D, then the rule, the
  averages and the stamps on the part's columns. Its parts wait for the
  next ``forward`` (or a flush): each thread takes a part's step and then
  the same part's forward, so the threads meet once per batch and each
  part's total, not each phase, is balanced (adam epoch on bench_sparse
  63.3 -> 59.8 ms, the same bits).

Each thread thus keeps its part's records in its own cache. The parts'
sums (squared norms) are added in part order, so that a fit does not
depend on the number of threads.

The ball constraint ``||W|| <= radius`` (``max_norm``): the projection
(Euclidean with momentum, in the rule's metric otherwise) changes
coordinates by different factors, so every coordinate is first brought up
to date (a flush, O(d K)), then projected. It is needed only when the
stored norm ``sq_w``, an upper bound of ||W||^2 (missed decays only
shrink coordinates), exceeds radius^2; while the constraint is active
this costs O(d K) per update.
"""

from cython cimport floating
from libc.limits cimport INT_MAX
from libc.math cimport INFINITY, exp, log1p
import numpy as np

from ._data cimport CSRDataset, prefetch, prefetch_csr_rows
from ._optimizers cimport Optimizer
from ._records cimport RecordFinish

# Flush (bring every coordinate up to date and restart the product) before
# the product underflows.
cdef double MIN_LOG_A = -200.0
# Doubles per column part in ``partial``: forward's three sums, step's
# two and a sync's two, padded to a cache line (the parts run on different
# threads).
cdef Py_ssize_t PART = 8
# The costs that place the split of the column parts (see
# CSRDataset.prepare_minibatches): a batch's distinct columns, and half as
# much again for those absent from the batch before (their catch-up takes
# the decays' exps), whose catch-ups and steps cost more than their
# values' products. (The split was at 80% of the stored values, which
# suited bench_sparse's columns, numbered by frequency, but not columns in
# another order, as a vectorizer's alphabetical ones: adam epoch 220 ms
# with the columns permuted, 143 then. The catch-up's term, with each
# part's step and forward on one thread: rdtsc per batch on bench_sparse,
# parts 165k and 186k cycles without it, 174k and 172k with it; 180k and
# 182k either way with its columns permuted.)
VALUE_COST = 0.0
COLUMN_COST = 1.0
CATCH_UP_COST = 0.5
# A catch-up of every column (a flush, at every epoch's end) runs its two
# halves on the team's threads from this many columns on.
cdef Py_ssize_t PARALLEL_SYNC_COLUMNS = 8192
# Coordinates per block of a catch-up: its arrays stay in the cache.
cdef Py_ssize_t CATCH_UP_BLOCK = 256
# The arrays of a part's catch-up scratch (``LazyL2._scratch``): the
# coordinates' missed log-decays, gaps, averaged gaps, the rule's divisors
# of their decays, decays, missed terms of the average and the rule's state
# the divisors depend on.
cdef enum:
    CATCH_LOG_DECAY, CATCH_GAP, CATCH_AVG_GAP, CATCH_DIVISOR, CATCH_DECAY, \
        CATCH_MISSED, CATCH_STATE, CATCH_ARRAYS
# A catch-up fetches the record of the column this many ahead: its first
# read of the record. (The listing marked the columns in the records before
# and the catch-up fetched 8 ahead: adam epoch on bench_sparse 64-65 -> 62
# ms, 84 -> 75 with its columns permuted.)
cdef Py_ssize_t CATCH_UP_PREFETCH = 16


cdef extern from *:
    """
    #include "vector_math.h"

    /* The decays of n coordinates (n a multiple of 4, so that each takes
       the vector path): with exponent y = dl / D spread over kg missed
       updates, decay = e^y - 1 and the terms the average's sum missed
       (averaging all along) missed = sum_{i=1..kg} e^{i y / kg}
       = e^{y / kg} decay / s with s = e^{y / kg} - 1: kg when s = 0,
       e^y when kg = 1. (Not (1 + s) decay / s: 1 + s loses the relative
       precision of a small e^{y / kg}.) One division gives both exponents
       (with the rule's rates 1 / D instead, there was one more: adam's
       decays on bench_sparse, rdtsc per batch, 26-28k -> 25-26k cycles
       in the frequent columns' part, 48k -> 45-46k in the rare ones'). */
    static SKGD_VECTORISED void skgd_missed_decays(
        const double* D, const double* dl, const double* kg, Py_ssize_t n,
        double* decay, double* missed)
    {
        Py_ssize_t i;
        #pragma omp simd
        for (i = 0; i < n; i++) {
            double r = 1.0 / (D[i] * kg[i]);
            double x = dl[i] * r, y = x * kg[i];
            double e = skgd_expm1(y);
            double s = skgd_expm1(x);
            double ex = exp(x);
            double sum = ex * e / s;  /* (chosen without a branch) */
            decay[i] = e;
            missed[i] = kg[i] == 1.0 ? ex : s == 0.0 ? kg[i] : sum;
        }
    }

    /* The decays alone (no average to catch up): decay = e^{dl / D} - 1. */
    static SKGD_VECTORISED void skgd_decays(
        const double* D, const double* dl, Py_ssize_t n, double* decay)
    {
        Py_ssize_t i;
        #pragma omp simd
        for (i = 0; i < n; i++)
            decay[i] = skgd_expm1(dl[i] / D[i]);
    }
    """
    double _expm1 "skgd_expm1" (double x) noexcept nogil
    void missed_decays "skgd_missed_decays" (
        const double* D, const double* dl, const double* kg, Py_ssize_t n,
        double* decay, double* missed) noexcept nogil
    void decays "skgd_decays" (const double* D, const double* dl,
                               Py_ssize_t n, double* decay) noexcept nogil


cdef double _partly_missed(double y, double k_gap, double k_avg) noexcept nogil:
    """The terms the average's sum missed when it averaged the last k_avg
    of k_gap missed updates of total exponent y: sum_{i = k_gap - k_avg +
    1 .. k_gap} e^{i y / k_gap}."""
    cdef double x = y / k_gap, s = _expm1(x)
    if s == 0.0:
        return k_avg
    return exp((k_gap - k_avg + 1.0) * x) * _expm1(k_avg * x) / s


def missed_decays_values(double[::1] D, double[::1] dl, double[::1] kg):
    """Python access for tests: (decay, missed) of the catch-up's vector
    loop for each coordinate."""
    cdef Py_ssize_t n = D.shape[0], n4 = (n + 3) // 4 * 4
    args = np.ones((3, n4))
    args[0, :n] = D
    args[1, :n] = dl
    args[2, :n] = kg
    out = np.zeros((2, n4))
    cdef double[:, ::1] a = args
    cdef double[:, ::1] o = out
    missed_decays(&a[0, 0], &a[1, 0], &a[2, 0], n4, &o[0, 0], &o[1, 0])
    return out[0, :n], out[1, :n]


def partly_missed_values(double[::1] y, double[::1] kg, double[::1] k_avg):
    """Python access for tests: ``_partly_missed`` of each coordinate."""
    out = np.empty(y.shape[0])
    cdef Py_ssize_t i
    for i in range(y.shape[0]):
        out[i] = _partly_missed(y[i], kg[i], k_avg[i])
    return out


cdef inline bint _skip(const int* indices, Py_ssize_t p, int split,
                       Py_ssize_t q) noexcept nogil:
    """Whether stored value p lies outside column part q (split > 0: the
    parts filter whole rows by column)."""
    return split > 0 and (indices[p] >= split) != q


cdef Py_ssize_t _collect(LazyL2 lz, const floating* data, const int* indices,
                         const int* starts, const int* ends,
                         const Py_ssize_t* rows, Py_ssize_t start,
                         Py_ssize_t B, int split, Py_ssize_t q,
                         Py_ssize_t* cols) noexcept nogil:
    """List in ``cols`` the columns of row r's values starts[r] .. ends[r]
    - 1 not yet seen in the batch (``seen`` not the batch's number, set
    here); returns their number; cols[m] is written too. The first read of
    a shuffled batch: a short loop on a small array, so that many cache
    misses are in flight (the records are fetched ahead by the catch-up),
    and without a branch on whether a column is new (a frequent column's
    second value in a batch is as likely as not)."""
    cdef Py_ssize_t i, r, p, j, m = 0
    cdef int* seen = &lz.seen[0]
    cdef int batch = lz.batch
    for i in range(B):
        if rows != NULL:
            prefetch_csr_rows(data, sizeof(floating), indices, starts, ends,
                              rows, i, B)
        r = rows[i] if rows != NULL else start + i
        for p in range(starts[r], ends[r]):
            if _skip(indices, p, split, q):
                continue
            j = indices[p]
            cols[m] = j
            m += seen[j] != batch
            seen[j] = batch
    return m


cdef void _products(LazyL2 lz, const floating* data, const int* indices,
                    const int* starts, const int* ends,
                    const Py_ssize_t* rows, Py_ssize_t start, Py_ssize_t B,
                    int split, Py_ssize_t q, double* Z1,
                    double* Z2) noexcept nogil:
    """Z1 = X_B W and, unless Z2 is NULL, Z2 = X_B avg over row r's values
    starts[r] .. ends[r] - 1."""
    cdef Py_ssize_t i, r, p, k, K = lz.K, R = lz.R, a = lz.off_avg
    cdef double x, z1, z2
    cdef double* w
    for i in range(B):
        r = rows[i] if rows != NULL else start + i
        if K == 1:
            z1 = 0.0
            z2 = 0.0
            for p in range(starts[r], ends[r]):
                if _skip(indices, p, split, q):
                    continue
                w = lz.rec + indices[p] * R
                z1 += data[p] * w[0]
                if Z2 != NULL:
                    z2 += data[p] * w[a]
            Z1[i] = z1
            if Z2 != NULL:
                Z2[i] = z2
            continue
        for k in range(K):
            Z1[i * K + k] = 0.0
            if Z2 != NULL:
                Z2[i * K + k] = 0.0
        for p in range(starts[r], ends[r]):
            if _skip(indices, p, split, q):
                continue
            w = lz.rec + indices[p] * R
            x = data[p]
            for k in range(K):
                Z1[i * K + k] += x * w[k]
                if Z2 != NULL:
                    Z2[i * K + k] += x * w[a + k]


cdef void _add_gradients(LazyL2 lz, const floating* data, const int* indices,
                         const int* starts, const int* ends,
                         const Py_ssize_t* rows, Py_ssize_t start,
                         Py_ssize_t B, int split, Py_ssize_t q,
                         const double* D) noexcept nogil:
    """The records' gradients += X_B^T D over row r's values starts[r] ..
    ends[r] - 1."""
    cdef Py_ssize_t i, r, p, k, K = lz.K, R = lz.R
    cdef double* grad = lz.rec + lz.off_g
    cdef double d0
    for i in range(B):
        r = rows[i] if rows != NULL else start + i
        d0 = D[i * K]
        for p in range(starts[r], ends[r]):
            if _skip(indices, p, split, q):
                continue
            if K == 1:
                grad[indices[p] * R] += data[p] * d0
                continue
            for k in range(K):
                grad[indices[p] * R + k] += data[p] * D[i * K + k]


cdef class LazyL2:
    """Bookkeeping of the missed decay of the d columns of K coordinates
    of theta = [W (d x K), b (K)] (length P) for an update rule with
    ``n_state`` state arrays, on the CSR batches of ``data``;
    ``average_start < 0`` for no averaging, ``radius`` the ball constraint
    (infinite for none)."""

    def __init__(self, CSRDataset data, Py_ssize_t K, Py_ssize_t P,
                 Py_ssize_t n_state, double alpha, double average_start,
                 double radius=INFINITY):
        cdef Py_ssize_t d = data.n_features
        self.data = data
        self.d = d
        self.K = K
        self.dK = d * K
        self.P = P
        self.n_state = n_state
        self.alpha = alpha
        self.average_start = average_start
        self.averaging = average_start >= 0.0
        self.radius = radius
        self.constrained = radius < INFINITY
        size = d * K if self.constrained else 0
        self.work = np.zeros(max(size, 1))
        self.prev = np.zeros(max(size, 1))
        self.off_g = K
        self.off_sum = (2 + n_state) * K
        self.off_avg = self.off_sum + K
        self.off_stamp = self.off_sum + (2 * K if self.averaging else 0)
        self.R = (self.off_stamp + 2 + 7) // 8 * 8
        # Extra room to start the records on a cache line.
        self.store = np.zeros(d * self.R + 8)
        cdef size_t misalign = (<size_t>&self.store[0]) % 64
        self.rec = &self.store[(64 - misalign) % 64 // 8]
        self.sum_b = np.zeros(max(P - self.dK, 1))
        # Part q's columns of a batch at cols[q (d + 1):] (the listing
        # writes one past its last column).
        self.cols = np.zeros(2 * (d + 1), dtype=np.intp)
        self.seen = np.zeros(max(d, 1), dtype=np.intc)
        self.partial = np.zeros(2 * PART)
        # The dataset's column parts; on rows with unsorted indices, two
        # parts that filter whole rows by column (each thread reads every
        # value's column but keeps its own records).
        self.n_parts = data.n_parts
        self.filter_split = 0
        if data.n_parts == 1 and data.split > 0:
            self.n_parts = 2
            self.filter_split = data.split
        self.bias_coords = np.arange(self.dK, max(P, self.dK + 1),
                                     dtype=np.intp)
        # Each part's catch-up scratch: CATCH_ARRAYS arrays of catch_block
        # values (room for a block of columns and the padding to 4), and
        # the coordinates' places in the records.
        self.catch_block = (max(CATCH_UP_BLOCK, K) + 3 + 3) // 4 * 4
        self.catch_stride = (CATCH_ARRAYS * self.catch_block + 7) // 8 * 8
        self.catch_values = np.zeros(2 * self.catch_stride)
        self.catch_at = np.zeros(2 * self.catch_block, dtype=np.intp)

    cdef inline double* _scratch(self, Py_ssize_t q,
                                 int array) noexcept nogil:
        """Array ``array`` (a CATCH_ value) of part q's catch-up scratch."""
        return &self.catch_values[q * self.catch_stride
                                  + array * self.catch_block]

    cdef inline double _n_avg(self, double t) noexcept nogil:
        """Number of averaged updates among the first t."""
        return t - self.average_start if self.averaging and \
            t > self.average_start else 0.0

    cdef inline double _inv_n(self, double t) noexcept nogil:
        """1 / ``_n_avg(t)``, 0 for none."""
        cdef double n = self._n_avg(t)
        return 1.0 / n if n > 0.0 else 0.0

    cdef void start(self, Optimizer opt, const double* W, const double* avg,
                    double t) noexcept nogil:
        """Begin at update count t from the flat arrays (W, the rule's state
        and the average), every coordinate up to date."""
        cdef Py_ssize_t i, j, k, s
        cdef double n = self._n_avg(t)
        cdef double* r
        self.has_pending = False
        for j in range(self.d):
            r = self.rec + j * self.R
            for k in range(self.K):
                i = j * self.K + k
                r[k] = W[i]
                r[self.off_g + k] = 0.0
                for s in range(self.n_state):
                    r[(2 + s) * self.K + k] = opt.state(s)[i]
                if self.averaging:
                    r[self.off_sum + k] = avg[i] * n if n > 0.0 else 0.0
                    r[self.off_avg + k] = avg[i]
            r[self.off_stamp + 1] = t
        for i in range(self.dK, self.P):
            self.sum_b[i - self.dK] = avg[i] * n if n > 0.0 else 0.0
        self._restart()

    cdef void _restart(self) noexcept nogil:
        """Restart the product (every coordinate is up to date) and
        recompute the squared norms exactly."""
        self._sync(SyncCall(NULL, 0.0, NULL, NULL))

    cdef void _sync(self, SyncCall call) noexcept nogil:
        """Both halves of the columns with ``call``'s arguments (see
        ``_sync_half``; a catch-up of large d on the team's threads), then
        the product restarted and the norms the halves' sums (in half
        order)."""
        self.sync = call
        if call.opt != NULL and self.d >= PARALLEL_SYNC_COLUMNS:
            self.data.team.run(_lazy_sync_half, <void*>self, 2)
        else:
            self._sync_half(0)
            self._sync_half(1)
        self.log_a = 0.0
        self.sq_w = self.partial[5] + self.partial[PART + 5]
        self.sq_avg = self.partial[6] + self.partial[PART + 6]

    cdef void _sync_half(self, Py_ssize_t q) noexcept nogil:
        """Half q of the columns, with ``sync``'s arguments: brought up to
        update count sync.t (unless sync.opt is NULL), written out to the
        flat arrays (unless sync.W is NULL), their stamps restarted; their
        ||W||^2 and ||avg||^2 to partial[PART q + 5:]."""
        cdef Py_ssize_t i, j, k, s, K = self.K, R = self.R
        cdef Py_ssize_t lo = q * ((self.d + 1) // 2)
        cdef Py_ssize_t hi = min(self.d, lo + (self.d + 1) // 2)
        cdef Py_ssize_t stamp = self.off_stamp, o_avg = self.off_avg
        cdef double sq[2]
        cdef double sq_w = 0.0, sq_avg = 0.0
        cdef double* r
        cdef double* W = self.sync.W
        cdef double* avg = self.sync.avg
        if self.sync.opt != NULL:
            # (its sums are discarded: the norms are recomputed below)
            self._catch_up(<Optimizer>self.sync.opt, NULL, lo, hi - lo,
                           self.sync.t, q, sq, False)
        for j in range(lo, hi):
            r = self.rec + j * R
            r[stamp] = 0.0
            for k in range(K):
                sq_w += r[k] * r[k]
                if self.averaging:
                    sq_avg += r[o_avg + k] * r[o_avg + k]
                if W != NULL:
                    i = j * K + k
                    W[i] = r[k]
                    for s in range(self.n_state):
                        (<Optimizer>self.sync.opt).state(s)[i] = \
                            r[(2 + s) * K + k]
                    if self.averaging:
                        avg[i] = r[o_avg + k]
        self.partial[PART * q + 5] = sq_w
        self.partial[PART * q + 6] = sq_avg

    cdef void _prepare(self, Optimizer opt, double t) noexcept nogil:
        """Set up the catch-ups to update count t."""
        self.inv_n = self._inv_n(t)
        opt.prepare(t)

    cdef void _catch_up(self, Optimizer opt, const Py_ssize_t* cols,
                        Py_ssize_t first, Py_ssize_t m, double t,
                        Py_ssize_t q, double* sq,
                        bint gradients) noexcept nogil:
        """Apply the decay columns cols[:m] (first .. first + m - 1 when cols
        is NULL) missed since they were last brought up to date (after
        ``_prepare(opt, t)``); adds the changes of ||W||^2 and ||avg||^2 to
        sq[0] and sq[1]; with ``gradients``, also sets the columns'
        gradients to alpha W and adds their ||W||^2 to sq[2] (forward's
        one pass over the batch's columns). Block by block (in part q's
        scratch): a first loop lists the coordinates, their exponents and
        gaps, then the rule's divisors and the decays are taken in loops
        over the block, a last loop applies them. The coordinates'
        computations (a sqrt, divisions, exps) are independent: they
        overlap instead of waiting one for another."""
        cdef Py_ssize_t c, j, k, n = 0, K = self.K
        cdef double* dl = self._scratch(q, CATCH_LOG_DECAY)
        cdef double* kg = self._scratch(q, CATCH_GAP)
        cdef double* k_avg = self._scratch(q, CATCH_AVG_GAP)
        cdef double* state = self._scratch(q, CATCH_STATE)
        cdef Py_ssize_t* at = &self.catch_at[q * self.catch_block]
        cdef Py_ssize_t field = opt.lazy_field * K
        cdef double n_t = self._n_avg(t), n_last
        cdef double sq_w = 0.0, d_sq_w = sq[0]
        cdef double* r
        # The object's fields in locals: the compiler reloads them after
        # every store through a double* otherwise (adam epoch on
        # bench_sparse 58 -> 56 ms).
        cdef double* rec = self.rec
        cdef Py_ssize_t R = self.R, stamp = self.off_stamp, og = self.off_g
        cdef Py_ssize_t full = self.catch_block - 3 - K
        cdef double log_a = self.log_a, alpha = self.alpha
        cdef double avg_from = self.average_start if self.averaging \
            else INFINITY
        for c in range(m):
            if cols != NULL and c + CATCH_UP_PREFETCH < m:
                prefetch(rec + cols[c + CATCH_UP_PREFETCH] * R)
            j = cols[c] if cols != NULL else first + c
            r = rec + j * R
            if n > full:
                self._apply_decays(opt, n, t, q, sq, gradients)
                n = 0
            # A column stamped t (in the last batch, or just restarted) is
            # up to date: its entries are written but not counted (a branch
            # would wait for the record and often be mispredicted).
            n_last = r[stamp + 1] - avg_from if r[stamp + 1] > avg_from \
                else 0.0
            if K == 1:  # (the K loop alone: adam 53 -> 55 ms)
                at[n] = j * R
                dl[n] = log_a - r[stamp]
                kg[n] = t - r[stamp + 1]
                k_avg[n] = n_t - n_last
                if field > 0:
                    state[n] = r[field]
                if gradients:
                    r[og] = alpha * r[0]
                    sq_w += r[0] * r[0]
            else:
                for k in range(K):
                    at[n + k] = j * R + k
                    dl[n + k] = log_a - r[stamp]
                    kg[n + k] = t - r[stamp + 1]
                    k_avg[n + k] = n_t - n_last
                    if field > 0:
                        state[n + k] = r[field + k]
                    if gradients:
                        r[og + k] = alpha * r[k]
                        sq_w += r[k] * r[k]
            n += K * (r[stamp + 1] != t)
            r[stamp] = log_a
            r[stamp + 1] = t
        if n > 0:
            self._apply_decays(opt, n, t, q, sq, gradients)
        if gradients:  # their norm before the decays, plus its change
            sq[2] += sq_w + (sq[0] - d_sq_w)

    cdef void _apply_decays(self, Optimizer opt, Py_ssize_t n, double t,
                            Py_ssize_t q, double* sq,
                            bint gradients) noexcept nogil:
        """The decays of the n coordinates listed in part q's scratch:
        W *= 1 + decay (and the gradient alpha W with ``gradients``); the
        average's sum gains the missed terms."""
        cdef Py_ssize_t i, n4 = (n + 3) // 4 * 4
        cdef double* dl = self._scratch(q, CATCH_LOG_DECAY)
        cdef double* kg = self._scratch(q, CATCH_GAP)
        cdef double* k_avg = self._scratch(q, CATCH_AVG_GAP)
        cdef double* D = self._scratch(q, CATCH_DIVISOR)
        cdef double* decay = self._scratch(q, CATCH_DECAY)
        cdef double* missed = self._scratch(q, CATCH_MISSED)
        cdef double* state = self._scratch(q, CATCH_STATE)
        cdef Py_ssize_t* at = &self.catch_at[q * self.catch_block]
        cdef bint averaged = self._n_avg(t) > 0.0
        cdef double w0, x, d_sq_w = 0.0, d_sq_avg = 0.0
        cdef double* w
        cdef double* rec = self.rec
        cdef Py_ssize_t o_sum = self.off_sum, o_avg = self.off_avg
        cdef Py_ssize_t og = self.off_g
        cdef double alpha = self.alpha, inv_n = self.inv_n
        opt.lazy_divisors(state, n, D)
        for i in range(n, n4):
            D[i] = 1.0
            dl[i] = 0.0
            kg[i] = 1.0
        if averaged:
            missed_decays(D, dl, kg, n4, decay, missed)
        else:
            decays(D, dl, n4, decay)
        for i in range(n):
            w = rec + at[i]
            w0 = w[0]
            if w0 != 0.0:
                if k_avg[i] > 0.0:
                    w[o_sum] += w0 * (
                        missed[i] if k_avg[i] == kg[i]
                        else _partly_missed(dl[i] / D[i], kg[i], k_avg[i]))
                w[0] = w0 + w0 * decay[i]
                d_sq_w += w[0] * w[0] - w0 * w0
                if gradients:
                    w[og] = alpha * w[0]
            if averaged:
                x = w[o_sum] * inv_n
                d_sq_avg += x * x - w[o_avg] * w[o_avg]
                w[o_avg] = x
        sq[0] += d_sq_w
        sq[1] += d_sq_avg

    cdef void _catch_up_all(self, Optimizer opt, double t, double* W,
                            double* avg) noexcept nogil:
        """Bring every column to update count t and restart the product;
        write the records out to W, the rule's state and avg unless W is
        NULL. Its halves run on the team's threads for large d."""
        self._run_pending()
        self._prepare(opt, t)
        self._sync(SyncCall(<void*>opt, t, W, avg))

    cdef void _run_pending(self) noexcept nogil:
        """Run the pending step's column parts (if any)."""
        if self.has_pending:
            self.data.run_parts(_lazy_step_part, <void*>self,
                                self.pending.B, self.n_parts)
            self._add_step_sums()

    cdef void _add_step_sums(self) noexcept nogil:
        """After the pending step's parts: their sums, in part order."""
        cdef Py_ssize_t q
        for q in range(self.n_parts):
            self.sq_w += self.partial[PART * q + 3]
            self.sq_avg += self.partial[PART * q + 4]
        self.has_pending = False

    cdef void _forward_part(self, Optimizer opt, Py_ssize_t q,
                            const Py_ssize_t* rows, Py_ssize_t start,
                            Py_ssize_t B, double t, double* Z1,
                            double* Z2) noexcept nogil:
        """``forward`` on the dataset's column part q, into Z1, Z2 (part 0)
        or the dataset's scratch (part 1); sums to partial[PART q:]."""
        cdef const int* starts
        cdef const int* ends
        cdef Py_ssize_t m, BK = B * self.K
        cdef double* part = &self.partial[PART * q]
        cdef Py_ssize_t* cols = &self.cols[q * (self.d + 1)]
        self._part_bounds(q, &starts, &ends)
        if q == 1:
            Z1 = &self.data.scratch[0]
            if Z2 != NULL:
                Z2 = &self.data.scratch[BK]
        if self.data.is_float32:
            m = _collect(self, &self.data.data32[0], &self.data.indices[0],
                         starts, ends, rows, start, B, self.filter_split, q,
                         cols)
        else:
            m = _collect(self, &self.data.data64[0], &self.data.indices[0],
                         starts, ends, rows, start, B, self.filter_split, q,
                         cols)
        self.n_cols[q] = m
        part[0] = 0.0
        part[1] = 0.0
        part[2] = 0.0
        self._catch_up(opt, cols, 0, m, t, q, part, True)
        if self.data.is_float32:
            _products(self, &self.data.data32[0], &self.data.indices[0],
                      starts, ends, rows, start, B, self.filter_split, q,
                      Z1, Z2)
        else:
            _products(self, &self.data.data64[0], &self.data.indices[0],
                      starts, ends, rows, start, B, self.filter_split, q,
                      Z1, Z2)

    cdef void forward(self, Optimizer opt, const Py_ssize_t* rows,
                      Py_ssize_t start, Py_ssize_t B, double t,
                      bint averaged, double* Z, double* Zavg) noexcept nogil:
        """Z = X_B W and, if ``averaged``, Zavg = X_B avg (without the
        intercepts) at update count t, the batch's columns brought up to
        date first; sets ``sq_w`` and ``sq_avg``."""
        cdef Py_ssize_t q, i, BK = B * self.K
        cdef double* Z2 = Zavg if averaged else NULL
        self._prepare(opt, t)
        self.call = LazyCall(<void*>opt, rows, start, B, t, 0.0, Z, Z2, NULL)
        if self.batch == INT_MAX:
            self.seen[:] = 0
            self.batch = 0
        self.batch += 1
        if self.has_pending:
            self.data.run_parts(_lazy_step_forward_part, <void*>self, B,
                                self.n_parts)
            self._add_step_sums()
        else:
            self.data.run_parts(_lazy_forward_part, <void*>self, B,
                                self.n_parts)
        self.sq_batch = 0.0
        for q in range(self.n_parts):
            self.sq_w += self.partial[PART * q]
            self.sq_avg += self.partial[PART * q + 1]
            self.sq_batch += self.partial[PART * q + 2]
        if self.n_parts == 2:
            for i in range(BK):
                Z[i] += self.data.scratch[i]
                if averaged:
                    Zavg[i] += self.data.scratch[BK + i]

    cdef void _step_records(self, Optimizer opt, const Py_ssize_t* cols,
                            Py_ssize_t m, double eta, double t,
                            double* part) noexcept nogil:
        """The rule's step on columns cols[:m] (their gradients formed),
        each record finished in the same loop: their ||W||^2 and the change
        of their ||avg||^2 to part[0] and part[1], their averages and
        stamps updated."""
        cdef RecordFinish f = RecordFinish(
            self.R, self.K, self.off_sum, self.off_avg, self.off_stamp,
            self.log_a, t, self._inv_n(t), self._n_avg(t) > 0.0)
        if self.K == 1:
            opt.step_records_k1(self.rec, &f, cols, m, eta, t, part)
        else:
            opt.step_records(self.rec, &f, cols, m, eta, t, part)

    cdef void _part_bounds(self, Py_ssize_t q, const int** starts,
                           const int** ends) noexcept nogil:
        """Row r's values of part q lie in starts[r] .. ends[r] - 1 (whole
        rows when the parts filter by column)."""
        self.data._part_bounds(0 if self.filter_split else q, starts, ends)

    cdef void _add_gradients_part(self, Py_ssize_t q, const Py_ssize_t* rows,
                                  Py_ssize_t start, Py_ssize_t B,
                                  const double* D) noexcept nogil:
        cdef const int* starts
        cdef const int* ends
        self._part_bounds(q, &starts, &ends)
        if self.data.is_float32:
            _add_gradients(self, &self.data.data32[0], &self.data.indices[0],
                           starts, ends, rows, start, B, self.filter_split,
                           q, D)
        else:
            _add_gradients(self, &self.data.data64[0], &self.data.indices[0],
                           starts, ends, rows, start, B, self.filter_split,
                           q, D)

    cdef void _step_part(self, Optimizer opt, Py_ssize_t q,
                         const Py_ssize_t* rows, Py_ssize_t start,
                         Py_ssize_t B, const double* D, double eta,
                         double t) noexcept nogil:
        """``step`` on the dataset's column part q; sums to
        partial[PART q + 3:]."""
        cdef Py_ssize_t* cols = &self.cols[q * (self.d + 1)]
        self._add_gradients_part(q, rows, start, B, D)
        self._step_records(opt, cols, self.n_cols[q], eta, t,
                           &self.partial[PART * q + 3])

    cdef void _dense_step(self, Optimizer opt, const Py_ssize_t* rows,
                          Py_ssize_t start, Py_ssize_t B, const double* D,
                          double eta, double t) noexcept nogil:
        """``step`` on every column (eta alpha >= 1: the decay factor is
        not positive, no decay can be deferred)."""
        cdef Py_ssize_t j, k, q
        cdef Py_ssize_t* cols = &self.cols[0]
        cdef double* r
        self._catch_up_all(opt, t - 1.0, NULL, NULL)
        for j in range(self.d):
            r = self.rec + j * self.R
            if self.seen[j] != self.batch:  # not in the batch
                for k in range(self.K):
                    r[self.off_g + k] = self.alpha * r[k]
            cols[j] = j
        for q in range(self.n_parts):
            self._add_gradients_part(q, rows, start, B, D)
        self._step_records(opt, cols, self.d, eta, t, &self.partial[0])
        self.sq_w = self.partial[0]
        self.sq_avg += self.partial[1]

    cdef void step(self, Optimizer opt, const Py_ssize_t* rows,
                   Py_ssize_t start, Py_ssize_t B, const double* D,
                   double* W, double* G, double* avg, double eta,
                   double t) noexcept nogil:
        """Update t: the batch's loss derivatives D (B x K, divided by the
        batch weight) make the gradients' data part, the rule steps the
        batch's columns (after ``forward``) and the intercepts (W[dK:],
        gradient in G[dK:]), the decay of the other columns is recorded,
        then W is projected onto the ball (if any); ``avg`` is NULL
        without averaging."""
        cdef Py_ssize_t i
        cdef double x = eta * self.alpha, n = self._n_avg(t)
        if x >= 1.0:
            self._dense_step(opt, rows, start, B, D, eta, t)
        else:
            # The columns' parts wait for the next forward (or flush); they
            # read D and the batch's rows, which the caller keeps until
            # then. The ball needs ||W|| now.
            self.log_a += log1p(-x)
            self.sq_w -= self.sq_batch
            self.pending = LazyCall(<void*>opt, rows, start, B, t, eta, NULL,
                                    NULL, D)
            self.has_pending = True
            if self.constrained:
                self._run_pending()
        opt.step(W, G, &self.bias_coords[0], self.P - self.dK, eta, t)
        if n > 0.0:
            for i in range(self.dK, self.P):
                self.sum_b[i - self.dK] += W[i]
                avg[i] = self.sum_b[i - self.dK] / n
        if self.constrained and self.sq_w > self.radius * self.radius:
            self._project_all(opt, W, avg, t)
        if self.log_a < MIN_LOG_A:
            self._catch_up_all(opt, t, NULL, NULL)

    cdef void _project_all(self, Optimizer opt, double* W, double* avg,
                           double t) noexcept nogil:
        """Project W onto the ball in the rule's metric after update t,
        every coordinate first brought up to date (O(d K)). The averages,
        which counted the unprojected W of update t, are corrected."""
        cdef Py_ssize_t i, j, k
        cdef double n = self._n_avg(t)
        cdef double* r
        self.flush(opt, W, avg, t)
        for i in range(self.dK):
            self.prev[i] = W[i]
        if not opt.project(W, self.dK, self.radius, t, &self.work[0]):
            return
        for j in range(self.d):
            r = self.rec + j * self.R
            for k in range(self.K):
                i = j * self.K + k
                r[k] = W[i]
                if n > 0.0:
                    r[self.off_sum + k] += W[i] - self.prev[i]
                    r[self.off_avg + k] = r[self.off_sum + k] / n
                    avg[i] = r[self.off_avg + k]
        self._restart()

    cdef void flush(self, Optimizer opt, double* W, double* avg,
                    double t) noexcept nogil:
        """Bring every coordinate to update count t, write the records out
        to the flat arrays (W, the rule's state, the average) and restart
        the product."""
        cdef Py_ssize_t i
        cdef double n = self._n_avg(t)
        self._catch_up_all(opt, t, W, avg)
        if n > 0.0:
            for i in range(self.dK, self.P):
                avg[i] = self.sum_b[i - self.dK] / n


cdef void _lazy_forward_part(void* engine, Py_ssize_t q) noexcept nogil:
    """A team's part: column part q of ``LazyL2.forward``."""
    cdef LazyCall* c = &(<LazyL2>engine).call
    (<LazyL2>engine)._forward_part(<Optimizer>c.opt, q, c.rows, c.start, c.B,
                                   c.t, c.Z1, c.Z2)


cdef void _lazy_step_forward_part(void* engine,
                                  Py_ssize_t q) noexcept nogil:
    """A team's part: column part q of the pending step, then of
    ``LazyL2.forward`` (both touch part q's columns alone: neither waits
    for the other part)."""
    _lazy_step_part(engine, q)
    _lazy_forward_part(engine, q)


cdef void _lazy_sync_half(void* engine, Py_ssize_t q) noexcept nogil:
    """A team's part: half q of ``LazyL2._catch_up_all``."""
    (<LazyL2>engine)._sync_half(q)


cdef void _lazy_step_part(void* engine, Py_ssize_t q) noexcept nogil:
    """A team's part: column part q of the pending ``LazyL2.step``."""
    cdef LazyCall* c = &(<LazyL2>engine).pending
    (<LazyL2>engine)._step_part(<Optimizer>c.opt, q, c.rows, c.start, c.B,
                                c.D, c.eta, c.t)
