"""Dense (row kernels and BLAS) and CSR (O(nnz)) implementations of the
minibatch products."""

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from openmp cimport omp_get_num_threads
from libc.string cimport memcpy
import numpy as np

from ._losses cimport Loss
from ._team cimport Team
from scipy.linalg.cython_blas cimport (
    dgemv, sgemv, dgemm, sgemm,
)


cdef inline void _add_bias(double* Z, const double* bias, Py_ssize_t B,
                           Py_ssize_t K) noexcept nogil:
    """Z[i, k] += bias[k] for the B x K decision values Z."""
    cdef Py_ssize_t i, k
    cdef double b0 = bias[0]
    if K == 1:
        # (b0 in a register: Z might alias bias, so the loop below reloads)
        for i in range(B):
            Z[i] += b0
        return
    for i in range(B):
        for k in range(K):
            Z[i * K + k] += bias[k]


cdef inline double _sum(const double* x, Py_ssize_t n) noexcept nogil:
    """sum(x[:n]) in four interleaved sums (a fixed order)."""
    cdef Py_ssize_t j
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    for j in range(0, n - 3, 4):
        s0 += x[j]
        s1 += x[j + 1]
        s2 += x[j + 2]
        s3 += x[j + 3]
    for j in range(n - n % 4, n):
        s0 += x[j]
    return (s0 + s1) + (s2 + s3)


cdef class Dataset:
    """Interface shared by all data layouts (see _data.pxd)."""

    cdef void forward(self, const Py_ssize_t* rows, Py_ssize_t start,
                      Py_ssize_t B, const double* W, double* Z) noexcept nogil:
        pass

    cdef void backward(self, const Py_ssize_t* rows, Py_ssize_t start,
                       Py_ssize_t B, const double* D, double* G) noexcept nogil:
        pass

    cdef void forward_pair(self, const Py_ssize_t* rows, Py_ssize_t start,
                           Py_ssize_t B, const double* W1, const double* W2,
                           Py_ssize_t stride, double* Z1,
                           double* Z2) noexcept nogil:
        pass

    cdef void loss_gradient(self, Loss loss, const Py_ssize_t* rows,
                            Py_ssize_t start, Py_ssize_t B, const double* Y,
                            const double* s, Py_ssize_t ny, const double* W,
                            const double* A, const double* bias,
                            const double* bias_avg, double* Z, double* Zavg,
                            double* D, double* G,
                            double* values) noexcept nogil:
        cdef Py_ssize_t i, K = self.n_outputs, dK = self.n_features * K
        if A != NULL:
            self.forward_pair(rows, start, B, W, A, self.n_outputs, Z, Zavg)
        else:
            self.forward(rows, start, B, W, Z)
        if bias != NULL:
            _add_bias(Z, bias, B, K)
            if A != NULL:
                _add_bias(Zavg, bias_avg, B, K)
        values[0] = loss.batch(Z, Y, s, B, ny, D)
        values[1] = loss.batch(Zavg, Y, s, B, ny, NULL) if A != NULL else 0.0
        for i in range(dK + K):
            G[i] = 0.0
        self.backward(rows, start, B, D, G)
        for i in range(B * K):
            G[dK + i % K] += D[i]

    cdef double objective(self, Loss loss, const Py_ssize_t* rows,
                          Py_ssize_t start, Py_ssize_t B, const double* Y,
                          const double* s, Py_ssize_t ny, const double* W,
                          const double* bias, double* Z) noexcept nogil:
        self.forward(rows, start, B, W, Z)
        if bias != NULL:
            _add_bias(Z, bias, B, self.n_outputs)
        return loss.batch(Z, Y, s, B, ny, NULL)


# ---------------------------------------------------------------- dense --

cdef inline void _gemv(char trans, int m, int n, floating alpha,
                       const floating* A, int lda, const floating* x,
                       floating beta, floating* y) noexcept nogil:
    """Column-major y = alpha op(A) x + beta y."""
    cdef int one = 1
    if floating is float:
        sgemv(&trans, &m, &n, &alpha, <float*>A, &lda, <float*>x, &one,
              &beta, y, &one)
    else:
        dgemv(&trans, &m, &n, &alpha, <double*>A, &lda, <double*>x, &one,
              &beta, y, &one)


cdef inline void _gemm(char ta, char tb, int m, int n, int k,
                       const floating* A, int lda, const floating* B, int ldb,
                       floating beta, floating* C, int ldc) noexcept nogil:
    """Column-major C = op(A) op(B) + beta C."""
    cdef floating one = 1.0
    if floating is float:
        sgemm(&ta, &tb, &m, &n, &k, &one, <float*>A, &lda, <float*>B, &ldb,
              &beta, C, &ldc)
    else:
        dgemm(&ta, &tb, &m, &n, &k, &one, <double*>A, &lda, <double*>B, &ldb,
              &beta, C, &ldc)


# A batch is cut into a power-of-two number of row chunks (at most
# MAX_CHUNKS) of at least CHUNK_SIZE values each; a chunk is read in blocks
# of a power-of-two number of rows (at most MAX_BLOCK_ROWS, BLOCK_BYTES).
cdef Py_ssize_t CHUNK_SIZE = 4096
cdef Py_ssize_t MAX_CHUNKS = 8
cdef Py_ssize_t BLOCK_BYTES = 32768
cdef Py_ssize_t MAX_BLOCK_ROWS = 64
# Bytes per cache line: the threads' workspaces do not share one.
cdef Py_ssize_t CACHE_LINE = 64


cdef Py_ssize_t _power_of_two_at_most(Py_ssize_t n) noexcept:
    cdef Py_ssize_t p = 1
    while 2 * p <= n:
        p *= 2
    return p


# Row-major arrays are read by column-major BLAS as their transposes:
# X_B (B x d) is X_B^T (d x B, ld d) and W (d x K) is W^T (K x d, ld K).

cdef void _dense_forward(const floating* X, int d, int B, const floating* W,
                         int K, floating* Z) noexcept nogil:
    """Z = X W for B contiguous rows."""
    if K == 1:
        _gemv(c'T', d, B, 1.0, X, d, W, 0.0, Z)
    else:
        _gemm(c'N', c'N', K, B, d, W, K, X, d, 0.0, Z, K)


cdef void _dense_backward(const floating* X, int d, int B, const floating* D,
                          int K, floating* G) noexcept nogil:
    """G += X^T D for B contiguous rows."""
    if K == 1:
        _gemv(c'N', d, B, 1.0, X, d, D, 1.0, G)
    else:
        _gemm(c'N', c'T', K, d, B, D, K, X, d, 1.0, G, K)


cdef extern from "dense_rows.h":
    void prefetch_ahead "skgd_prefetch_ahead" (
        const void* X, size_t row_bytes, const Py_ssize_t* rows,
        Py_ssize_t start, Py_ssize_t i, Py_ssize_t ahead) noexcept nogil
    void dots_double "skgd_dots_double" (
        const double* X, Py_ssize_t d, const Py_ssize_t* rows,
        Py_ssize_t start, Py_ssize_t n, Py_ssize_t ahead, const double* w,
        const double* a, double* z, double* za) noexcept nogil
    void dots_float "skgd_dots_float" (
        const float* X, Py_ssize_t d, const Py_ssize_t* rows,
        Py_ssize_t start, Py_ssize_t n, Py_ssize_t ahead, const float* w,
        const float* a, double* z, double* za) noexcept nogil
    void add_rows_double "skgd_add_rows_double" (
        const double* X, Py_ssize_t d, const Py_ssize_t* rows,
        Py_ssize_t start, Py_ssize_t n, const double* D,
        double* g) noexcept nogil
    void add_rows_float "skgd_add_rows_float" (
        const float* X, Py_ssize_t d, const Py_ssize_t* rows,
        Py_ssize_t start, Py_ssize_t n, const double* D,
        float* g) noexcept nogil


cdef inline void _dots(const floating* X, Py_ssize_t d,
                       const Py_ssize_t* rows, Py_ssize_t start, Py_ssize_t n,
                       Py_ssize_t ahead, const floating* w, const floating* a,
                       double* z, double* za) noexcept nogil:
    """z = X_B w and, if a, za = X_B a (K = 1; dense_rows.h)."""
    if floating is float:
        dots_float(X, d, rows, start, n, ahead, w, a, z, za)
    else:
        dots_double(X, d, rows, start, n, ahead, w, a, z, za)


cdef inline void _add_rows(const floating* X, Py_ssize_t d,
                           const Py_ssize_t* rows, Py_ssize_t start,
                           Py_ssize_t n, const double* D,
                           floating* g) noexcept nogil:
    """g += X_B^T D (K = 1; dense_rows.h)."""
    if floating is float:
        add_rows_float(X, d, rows, start, n, D, g)
    else:
        add_rows_double(X, d, rows, start, n, D, g)


cdef inline void _gather(const floating* X, int d, const Py_ssize_t* rows,
                         Py_ssize_t B, Py_ssize_t ahead,
                         floating* out) noexcept nogil:
    """Copy rows ``rows[:B]`` of X into ``out``, prefetching the rows up to
    ``rows[ahead - 1]`` ahead so that random rows arrive at streaming
    speed."""
    cdef Py_ssize_t i, row_bytes = d * sizeof(floating)
    for i in range(B):
        prefetch_ahead(X, row_bytes, rows, 0, i, ahead)
        memcpy(out + i * d, X + rows[i] * d, row_bytes)


cdef inline void _to_double(const floating* src, double* dst,
                            Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        dst[j] = src[j]


cdef void _chunk_pass(const floating* X, int d, const Py_ssize_t* rows,
                      Py_ssize_t start, Py_ssize_t n, Py_ssize_t reach,
                      Py_ssize_t R, int K,
                      const floating* W, const floating* A,
                      const double* bias, const double* bias_avg, Loss loss,
                      const double* Y, const double* s, Py_ssize_t ny,
                      floating* G, floating* buf, float* ftmp, double* dtmp,
                      double* tbuf, double* values) noexcept nogil:
    """One chunk of n rows, R rows at a time (K = 1: read in place by the
    row kernels; K > 1: gathered into ``buf`` when shuffled, for BLAS);
    rows up to ``reach`` from the chunk's first are prefetched ahead.
    Per block: Z = X W + bias and, if A, Zavg = X A + bias_avg; then the
    loss of the block while it is in cache: values =
    [sum s loss(Z), sum s loss(Zavg), column sums of D (K values)] and, if
    G, D = s dloss(Z) and G = X^T D. Y and s are whole (row r at Y + r ny,
    s[r]). Block-local buffers: ``dtmp`` 3 R K doubles (Z, Zavg, D),
    ``ftmp`` 3 R K floats (the same in float32), ``tbuf`` R (ny + 1)
    doubles (a shuffled block's targets and weights)."""
    cdef Py_ssize_t block, lo, nb, j, k, RK = R * K
    cdef const floating* Xb = NULL
    cdef const Py_ssize_t* at_rows
    cdef double column_sum
    cdef double* Zb = dtmp
    cdef double* Zab = dtmp + RK
    cdef double* Db = dtmp + 2 * RK
    cdef floating* Zf
    cdef floating* Af
    cdef floating* Df
    cdef const double* sb
    cdef const double* Yb
    if floating is float:
        Zf = ftmp
        Af = ftmp + RK
        Df = ftmp + 2 * RK
    else:
        Zf = Zb
        Af = Zab
        Df = Db
    for k in range(2 + K):
        values[k] = 0.0
    if G != NULL:
        for j in range(d * K):
            G[j] = 0.0
    for block in range((n + R - 1) // R):
        lo = block * R
        nb = min(R, n - lo)
        at_rows = rows + lo if rows != NULL else NULL
        if at_rows != NULL:
            for j in range(nb):
                prefetch(&Y[at_rows[j] * ny])
                if s != NULL:
                    prefetch(&s[at_rows[j]])
        if K == 1:
            _dots(X, d, at_rows, start + lo, nb, reach - lo, W, A, Zb, Zab)
        else:
            if rows == NULL:
                Xb = X + (start + lo) * d
            elif nb == 1:
                Xb = X + rows[lo] * d
            else:
                _gather(X, d, at_rows, nb, reach - lo, buf)
                Xb = buf
            _dense_forward(Xb, d, nb, W, K, Zf)
            if A != NULL:
                _dense_forward(Xb, d, nb, A, K, Af)
            if floating is float:
                _to_double(Zf, Zb, nb * K)
                if A != NULL:
                    _to_double(Af, Zab, nb * K)
        if bias != NULL:
            _add_bias(Zb, bias, nb, K)
            if A != NULL:
                _add_bias(Zab, bias_avg, nb, K)
        if at_rows == NULL:
            Yb = Y + (start + lo) * ny
            sb = s + start + lo if s != NULL else NULL
        else:
            # Targets and weights of the block's rows, read by this thread
            # (gathered by the caller they would move between the cores).
            if ny == 1:
                for j in range(nb):
                    tbuf[j] = Y[at_rows[j]]
            else:
                for j in range(nb):
                    for k in range(ny):
                        tbuf[j * ny + k] = Y[at_rows[j] * ny + k]
            if s != NULL:
                for j in range(nb):
                    tbuf[nb * ny + j] = s[at_rows[j]]
            Yb = tbuf
            sb = tbuf + nb * ny if s != NULL else NULL
        values[0] += loss.batch(Zb, Yb, sb, nb, ny, Db if G != NULL else NULL)
        if A != NULL:
            values[1] += loss.batch(Zab, Yb, sb, nb, ny, NULL)
        if G == NULL:
            continue
        if K == 1:
            values[2] += _sum(Db, nb)
        else:
            for k in range(K):
                column_sum = 0.0
                for j in range(nb):
                    column_sum += Db[j * K + k]
                values[2 + k] += column_sum
        if K == 1:
            _add_rows(X, d, at_rows, start + lo, nb, Db, G)
            continue
        if floating is float:
            for j in range(nb * K):
                Df[j] = <float>Db[j]
        _dense_backward(Xb, d, nb, Df, K, G)


cdef class DenseDataset(Dataset):
    """C-contiguous float32 or float64 rows, read in place (never copied).

    A batch is cut into ``n_chunks`` row chunks (a number that depends on
    the batch shape only, so results do not depend on the thread count),
    processed by up to ``n_threads`` OpenMP threads. A chunk is read in
    blocks of ``block_rows`` rows, and ``loss_gradient`` passes each block
    through the loss and back while it is still in cache: X is read once
    per batch. With one output the products are the row kernels of
    dense_rows.h on the rows where they are (both decision values of an
    averaged fit in one read); with K > 1 a shuffled block is gathered
    into a small per-chunk buffer, so that each product is one BLAS call
    on cached memory.
    Each chunk's gradient goes to its own buffer and the buffers are summed
    in chunk order.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), C-contiguous, float32/64
    n_outputs : int
        Columns K of the coefficient matrix.
    max_batch : int
        Largest batch that will be requested (sets the chunks).
    n_threads : int
        OpenMP threads for the batch products.
    """

    def __init__(self, X, Py_ssize_t n_outputs, Py_ssize_t max_batch,
                 int n_threads=1):
        self.n_samples, self.n_features = X.shape
        self.n_outputs = n_outputs
        self.blockwise = True
        self.is_float32 = X.dtype == np.float32
        cdef Py_ssize_t d = self.n_features, K = n_outputs
        cdef Py_ssize_t itemsize = X.dtype.itemsize
        self.n_chunks = _power_of_two_at_most(
            max(1, min(MAX_CHUNKS, max_batch * d // CHUNK_SIZE)))
        self.n_threads = max(1, min(n_threads, self.n_chunks))
        self.team = Team(self.n_threads)
        self.block_rows = _power_of_two_at_most(
            max(1, min(MAX_BLOCK_ROWS, BLOCK_BYTES // max(1, d * itemsize))))
        cdef Py_ssize_t R = self.block_rows
        sizes = [(2 + K) * 8, 3 * R * K * 8, 3 * R * K * 4 * self.is_float32,
                 d * K * itemsize, R * d * itemsize, R * (K + 1) * 8]
        cdef Py_ssize_t i, offset = 0
        for i in range(6):
            if i > 0:
                self.at[i - 1] = offset
            offset += (sizes[i] + CACHE_LINE - 1) // CACHE_LINE * CACHE_LINE
        self.chunk_bytes = offset
        self.work = np.zeros(self.n_chunks * offset + CACHE_LINE, np.uint8)
        self.work_start = -self.work.base.ctypes.data % CACHE_LINE
        if self.is_float32:
            self.X32 = X
            self.W32 = np.zeros(2 * max(d * K, 1), np.float32)
        else:
            self.X64 = X

    cdef void loss_gradient(self, Loss loss, const Py_ssize_t* rows,
                            Py_ssize_t start, Py_ssize_t B, const double* Y,
                            const double* s, Py_ssize_t ny, const double* W,
                            const double* A, const double* bias,
                            const double* bias_avg, double* Z, double* Zavg,
                            double* D, double* G,
                            double* values) noexcept nogil:
        self._pass(loss, rows, start, B, Y, s, ny, W, A, bias, bias_avg, G,
                   values)

    cdef double objective(self, Loss loss, const Py_ssize_t* rows,
                          Py_ssize_t start, Py_ssize_t B, const double* Y,
                          const double* s, Py_ssize_t ny, const double* W,
                          const double* bias, double* Z) noexcept nogil:
        cdef double value[1]
        self._pass(loss, rows, start, B, Y, s, ny, W, NULL, bias, NULL, NULL,
                   value)
        return value[0]

    cdef void _pass(self, Loss loss, const Py_ssize_t* rows, Py_ssize_t start,
                    Py_ssize_t B, const double* Y, const double* s,
                    Py_ssize_t ny, const double* W, const double* A,
                    const double* bias, const double* bias_avg, double* G,
                    double* values) noexcept nogil:
        """The chunks of the batch on the team's threads (``_chunk``: float32
        X on float32 copies of W and A), then their loss sums (values[0],
        and values[1] with A) and, with G, their gradients summed in chunk
        order."""
        cdef Py_ssize_t c, j, k, dK = self.n_features * self.n_outputs
        cdef Py_ssize_t K = self.n_outputs, size = self.chunk_bytes
        cdef unsigned char* work = &self.work[self.work_start]
        cdef const double* vals
        self.job = DenseJob(rows, start, B,
                            (B + self.n_chunks - 1) // self.n_chunks, ny, W,
                            A, bias, bias_avg, Y, s, <void*>loss, G != NULL)
        if self.is_float32:
            for j in range(dK):
                self.W32[j] = <float>W[j]
                if A != NULL:
                    self.W32[dK + j] = <float>A[j]
            self.job.W = &self.W32[0]
            self.job.A = &self.W32[dK] if A != NULL else NULL
        self.team.run(_dense_chunk, <void*>self, self.n_chunks)
        values[0] = 0.0
        if A != NULL:
            values[1] = 0.0
        for c in range(self.n_chunks):
            vals = <double*>(work + c * size)
            values[0] += vals[0]
            if A != NULL:
                values[1] += vals[1]
        if G == NULL:
            return
        for j in range(dK + K):
            G[j] = 0.0
        for c in range(self.n_chunks):
            vals = <double*>(work + c * size)
            if self.is_float32:
                _add_to(<float*>(work + c * size + self.at[2]), G, dK)
            else:
                _add_to(<double*>(work + c * size + self.at[2]), G, dK)
            for k in range(K):
                G[dK + k] += vals[2 + k]

    cdef void _chunk_at(self, Py_ssize_t c) noexcept nogil:
        if self.is_float32:
            self._chunk(&self.X32[0, 0], c)
        else:
            self._chunk(&self.X64[0, 0], c)

    cdef void _chunk(self, const floating* X, Py_ssize_t c) noexcept nogil:
        """Chunk c of the pass in ``job`` (``_chunk_pass``). Each thread
        takes consecutive chunks and prefetches across them (and into the
        next thread's first rows, which costs little)."""
        cdef DenseJob* job = &self.job
        cdef Py_ssize_t lo = min(c * job.chunk, job.B)
        cdef Py_ssize_t n_c = min(job.chunk, job.B - lo)
        cdef unsigned char* w = &self.work[self.work_start] \
            + c * self.chunk_bytes
        _chunk_pass(X, self.n_features,
                    job.rows + lo if job.rows != NULL else NULL,
                    job.start + lo, n_c, job.B - lo, self.block_rows,
                    self.n_outputs, <const floating*>job.W,
                    <const floating*>job.A, job.bias, job.bias_avg,
                    <Loss>job.loss, job.Y, job.s, job.ny,
                    <floating*>(w + self.at[2]) if job.gradient else NULL,
                    <floating*>(w + self.at[3]), <float*>(w + self.at[1]),
                    <double*>(w + self.at[0]), <double*>(w + self.at[4]),
                    <double*>w)


cdef void _dense_chunk(void* dataset, Py_ssize_t c) noexcept nogil:
    """A team's part: chunk c of a dense pass."""
    (<DenseDataset>dataset)._chunk_at(c)


cdef inline void _add_to(const floating* x, double* y,
                         Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        y[j] += x[j]


def row_kernels(const floating[:, ::1] X, const Py_ssize_t[::1] rows,
                Py_ssize_t batch_size, bint average, int n_threads):
    """The dense epoch's row kernels alone, for benchmarks/bench_epoch.py:
    one epoch over X in the order ``rows``, each batch cut into the chunks
    and blocks of ``DenseDataset`` and read by the same threads, with the
    decision values (at W and, if ``average``, at A) and the gradient's
    sum of rows, but no loss, no update and no wait between batches: the
    memory floor of a shuffled epoch in this design. The decision values
    are taken at W = A = 1e-3 and D = 1e-3 z; returns the sum of the
    threads' gradients, X^T D (for the tests: every row counted once)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef DenseDataset geometry = DenseDataset(np.asarray(X), 1, batch_size,
                                              n_threads)
    cdef Py_ssize_t C = geometry.n_chunks, R = geometry.block_rows
    cdef int T = geometry.n_threads
    # Per thread: z, za and D (R each), a cache line apart.
    cdef Py_ssize_t stride = (3 * R + 7) // 8 * 8 + 8
    cdef double[::1] work = np.zeros(T * stride)
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] wa = np.full(2 * d, 1e-3, dtype=dtype)
    # (rows of g padded: the threads' sums do not share a cache line)
    cdef floating[:, ::1] g = np.zeros((T, (d + 15) // 16 * 16 + 16),
                                       dtype=dtype)
    cdef Py_ssize_t k, start, b, chunk, c, lo, hi, j, blo, nb, i, tid
    cdef double* z
    cdef int team
    with nogil, parallel(num_threads=T):
        tid = threadid()
        team = omp_get_num_threads()  # (OpenMP may give fewer than T)
        z = &work[tid * stride]
        for k in range((n + batch_size - 1) // batch_size):
            start = k * batch_size
            b = min(batch_size, n - start)
            chunk = (b + C - 1) // C
            # prange's static schedule: consecutive chunks per thread.
            for c in range(tid * C // team, (tid + 1) * C // team):
                lo = min(c * chunk, b)
                hi = min(lo + chunk, b)
                for j in range((hi - lo + R - 1) // R):
                    blo = lo + j * R
                    nb = min(R, hi - blo)
                    _dots(&X[0, 0], d, &rows[start + blo], 0, nb, b - blo,
                          &wa[0], &wa[d] if average else NULL, z, z + R)
                    for i in range(nb):
                        z[2 * R + i] = 1e-3 * z[i]
                    _add_rows(&X[0, 0], d, &rows[start + blo], 0, nb,
                              z + 2 * R, &g[tid, 0])
    return np.asarray(g)[:, :d].sum(axis=0, dtype=np.float64)


# ------------------------------------------------------------------ CSR --

cdef inline void _csr_dot_pair(const floating* data, const int* indices,
                               Py_ssize_t lo, Py_ssize_t hi, const double* w1,
                               const double* w2, Py_ssize_t stride, double* z1,
                               double* z2) noexcept nogil:
    """``csr_dot`` with w1 and w2 in one loop, column j's values at
    w1[j stride] and w2[j stride]."""
    cdef Py_ssize_t p, j, k
    cdef double even1 = 0.0, odd1 = 0.0, even2 = 0.0, odd2 = 0.0
    for p in range(lo, hi - 1, 2):
        j = indices[p] * stride
        k = indices[p + 1] * stride
        even1 += data[p] * w1[j]
        odd1 += data[p + 1] * w1[k]
        even2 += data[p] * w2[j]
        odd2 += data[p + 1] * w2[k]
    if (hi - lo) % 2:
        j = indices[hi - 1] * stride
        even1 += data[hi - 1] * w1[j]
        even2 += data[hi - 1] * w2[j]
    z1[0] = even1 + odd1
    z2[0] = even2 + odd2


cdef void _csr_forward(const floating* data, const int* indices,
                       const int* starts, const int* ends,
                       const Py_ssize_t* rows, Py_ssize_t start, Py_ssize_t B,
                       const double* W1, const double* W2, Py_ssize_t K,
                       Py_ssize_t stride, double* Z1, double* Z2) noexcept nogil:
    """Z1 = X_B W1 and, unless W2 is NULL, Z2 = X_B W2, over row r's values
    starts[r] .. ends[r] - 1; column j's K values at W[j stride]."""
    cdef Py_ssize_t i, r, p, k, j
    cdef double v
    for i in range(B):
        if rows != NULL:
            prefetch_csr_rows(data, sizeof(floating), indices, starts, ends,
                              rows, i, B)
        r = rows[i] if rows != NULL else start + i
        if K == 1 and W2 == NULL:  # (forward: stride K = 1)
            Z1[i] = csr_dot(data, indices, starts[r], ends[r], W1)
            continue
        if K == 1:
            _csr_dot_pair(data, indices, starts[r], ends[r], W1, W2, stride,
                          &Z1[i], &Z2[i])
            continue
        for k in range(K):
            Z1[i * K + k] = 0.0
            if W2 != NULL:
                Z2[i * K + k] = 0.0
        for p in range(starts[r], ends[r]):
            v = data[p]
            j = indices[p] * stride
            for k in range(K):
                Z1[i * K + k] += v * W1[j + k]
                if W2 != NULL:
                    Z2[i * K + k] += v * W2[j + k]


cdef void _csr_backward(const floating* data, const int* indices,
                        const int* starts, const int* ends,
                        const Py_ssize_t* rows, Py_ssize_t start, Py_ssize_t B,
                        const double* D, Py_ssize_t K, double* G) noexcept nogil:
    cdef Py_ssize_t i, r
    for i in range(B):
        r = rows[i] if rows != NULL else start + i
        csr_add_outer(data, indices, starts[r], ends[r], D + i * K, K, False,
                      G)


# The two column parts of a sparse minibatch's products run on two threads
# when the batch holds at least this many stored values; the part boundary
# is a multiple of SPLIT_ALIGN columns (a cache line of float64 values).
cdef Py_ssize_t PARALLEL_BATCH_VALUES = 2048
cdef int SPLIT_ALIGN = 8
# Stored values sampled to place the split.
cdef Py_ssize_t SPLIT_SAMPLE = 1 << 20


cdef inline Py_ssize_t _row_cut(const int* indices, Py_ssize_t lo,
                                Py_ssize_t hi, int split) noexcept nogil:
    """The first of the stored values lo .. hi - 1 at a column >= split;
    -1 if their columns are not increasing."""
    cdef Py_ssize_t p, cut = hi
    for p in range(lo, hi):
        if p > lo and indices[p] <= indices[p - 1]:
            return -1
        if indices[p] >= split and cut == hi:
            cut = p
    return cut


cdef bint _cuts(const int* indices, const int* indptr, Py_ssize_t n,
                int split, int* cut, int n_threads) noexcept nogil:
    """cut[r] = the first of row r's values at a column >= split; False
    (and cut undefined) if a row's indices are not increasing."""
    cdef Py_ssize_t r, c, unsorted = 0
    for r in prange(n, num_threads=n_threads, schedule="static"):
        c = _row_cut(indices, indptr[r], indptr[r + 1], split)
        if c < 0:
            unsorted += 1
        cut[r] = <int>c
    return unsorted == 0


def _sampled_column_counts(const int[::1] indices, Py_ssize_t first,
                           Py_ssize_t last, Py_ssize_t step,
                           Py_ssize_t n_features):
    """How often each column appears among the stored values first,
    first + step, ... < last, counted in place (``np.bincount`` on the
    strided int32 sample copies it: 14 MB for 2^20 values)."""
    counts = np.zeros(n_features, dtype=np.intp)
    cdef Py_ssize_t[::1] c = counts
    cdef Py_ssize_t i
    with nogil:
        for i in range((last - first + step - 1) // step):
            c[indices[first + i * step]] += 1
    return counts


cdef class CSRDataset(Dataset):
    """CSR rows (float32 or float64 values, int32 indices), read in place.

    Parameters
    ----------
    X : scipy.sparse CSR matrix or array with int32 index arrays
    n_outputs : int
        Columns K of the coefficient matrix.
    n_threads : int
        OpenMP threads of the minibatch work (its two column parts).
    """

    def __init__(self, X, Py_ssize_t n_outputs, int n_threads=1):
        self.n_samples, self.n_features = X.shape
        self.n_outputs = n_outputs
        self.n_threads = max(1, n_threads)
        self.team = Team(min(self.n_threads, 2))  # (two column parts)
        self.is_float32 = X.data.dtype == np.float32
        data, indices = X.data, X.indices
        if data.shape[0] == 0:
            # No stored value: one unread slot, so that taking the address
            # of the first element stays in bounds (checked in debug builds).
            data = np.zeros(1, dtype=data.dtype)
            indices = np.zeros(1, dtype=indices.dtype)
        if self.is_float32:
            self.data32 = data
        else:
            self.data64 = data
        self.indices = indices
        self.indptr = X.indptr
        self.n_parts = 1
        self.split_parts = 1
        self.split = 0
        self.cut = np.empty(0, dtype=np.intc)
        self.scratch = np.empty(0)

    def prepare_minibatches(self, Py_ssize_t batch_size, double value_cost,
                            double column_cost, double catch_up_cost=0.0):
        """Set up the products for batches of up to ``batch_size`` rows, in
        two column parts (see _data.pxd) that balance the caller's two
        threads: part 1 from the column below which lies half the expected
        cost of a batch, ``value_cost`` per stored value plus
        ``column_cost`` per distinct column (column j is in a batch with
        probability p_j = 1 - (1 - f_j)^batch_size, f_j its share of the
        rows) plus ``catch_up_cost`` per column absent from the batch
        before (probability p_j (1 - p_j)), rounded to a cache line of
        float64 coefficients. O(nnz) once per dataset, batch size and
        costs."""
        if self.scratch.shape[0] < 2 * batch_size * self.n_outputs:
            self.scratch = np.zeros(2 * batch_size * self.n_outputs)
        key = (batch_size, value_cost, column_cost, catch_up_cost)
        if self.cut.shape[0] and key == self.split_key:
            self.n_parts = self.split_parts
            return
        self.split_key = key
        self.split_parts = 1
        self.n_parts = 1
        self.split = 0
        self.cut = np.empty(max(self.n_samples, 1), dtype=np.intc)
        cdef Py_ssize_t first = self.indptr[0]
        cdef Py_ssize_t last = self.indptr[self.n_samples]
        n_values = last - first
        self.values_per_row = n_values // max(self.n_samples, 1)
        if self.n_features < 2 * SPLIT_ALIGN or n_values == 0:
            return
        # The split column from a sample of the stored values (it moves
        # the balance of the threads, not the result).
        step = max(1, n_values // SPLIT_SAMPLE)
        rows_share = np.minimum(_sampled_column_counts(
            self.indices, first, last, step, self.n_features)
            * (step / self.n_samples), 1.0)
        present = 1.0 - (1.0 - rows_share) ** batch_size
        cost = np.cumsum(
            value_cost * batch_size * rows_share
            + column_cost * present
            + catch_up_cost * present * (1.0 - present))
        column = int(np.searchsorted(cost, 0.5 * cost[self.n_features - 1]))
        column = (column + SPLIT_ALIGN // 2) // SPLIT_ALIGN * SPLIT_ALIGN
        if not 0 < column < self.n_features:
            return
        self.split = column
        from .._engine import pass_threads  # (_engine imports this module)
        if _cuts(&self.indices[0], &self.indptr[0], self.n_samples, column,
                 &self.cut[0], pass_threads(n_values)):
            self.split_parts = 2
        self.n_parts = self.split_parts

    def cut_positions(self):
        """Python access for tests: each row's first value of part 1."""
        return np.asarray(self.cut).copy()

    cdef void _part_bounds(self, Py_ssize_t q, const int** starts,
                           const int** ends) noexcept nogil:
        """Row r's values of part q: starts[r] .. ends[r] - 1."""
        cdef const int* cut = &self.cut[0] if self.n_parts == 2 else NULL
        starts[0] = &self.indptr[0]
        ends[0] = &self.indptr[1]
        if q == 0 and cut != NULL:
            ends[0] = cut
        elif q == 1:
            starts[0] = cut

    cdef bint _parallel(self, Py_ssize_t B,
                        Py_ssize_t n_parts) noexcept nogil:
        """Whether the n_parts column parts of a batch of B rows run on two
        threads."""
        return n_parts == 2 and self.n_threads > 1 and \
            B * self.values_per_row >= PARALLEL_BATCH_VALUES

    cdef void run_parts(self, part_fn fn, void* ctx, Py_ssize_t B,
                        Py_ssize_t n_parts) noexcept nogil:
        """``fn(ctx, q)`` for the n_parts column parts q of a batch of B
        rows: on the team's two threads if ``_parallel``, else in turn."""
        cdef Py_ssize_t q
        if self._parallel(B, n_parts):
            self.team.run(fn, ctx, 2)
        else:
            for q in range(n_parts):
                fn(ctx, q)

    cdef void _forward_part(self, Py_ssize_t q, const Py_ssize_t* rows,
                            Py_ssize_t start, Py_ssize_t B, const double* W1,
                            const double* W2, Py_ssize_t stride, double* Z1,
                            double* Z2) noexcept nogil:
        """``forward_pair`` (``forward`` for W2 NULL) on part q, into Z1,
        Z2 (part 0) or ``scratch`` (part 1)."""
        cdef const int* starts
        cdef const int* ends
        cdef Py_ssize_t BK = B * self.n_outputs
        self._part_bounds(q, &starts, &ends)
        if q == 1:
            Z1 = &self.scratch[0]
            Z2 = &self.scratch[BK]
        if self.is_float32:
            _csr_forward(&self.data32[0], &self.indices[0], starts, ends,
                         rows, start, B, W1, W2, self.n_outputs, stride, Z1,
                         Z2)
        else:
            _csr_forward(&self.data64[0], &self.indices[0], starts, ends,
                         rows, start, B, W1, W2, self.n_outputs, stride, Z1,
                         Z2)

    cdef void forward(self, const Py_ssize_t* rows, Py_ssize_t start,
                      Py_ssize_t B, const double* W, double* Z) noexcept nogil:
        self.forward_pair(rows, start, B, W, NULL, self.n_outputs, Z, NULL)

    cdef void forward_pair(self, const Py_ssize_t* rows, Py_ssize_t start,
                           Py_ssize_t B, const double* W1, const double* W2,
                           Py_ssize_t stride, double* Z1,
                           double* Z2) noexcept nogil:
        cdef Py_ssize_t i, BK = B * self.n_outputs
        self.call = CSRCall(rows, start, B, stride, W1, W2, Z1, Z2)
        self.run_parts(_csr_forward_part, <void*>self, B, self.n_parts)
        if self.n_parts == 2:
            for i in range(BK):
                Z1[i] += self.scratch[i]
                if W2 != NULL:
                    Z2[i] += self.scratch[BK + i]

    cdef void _backward_part(self, Py_ssize_t q, const Py_ssize_t* rows,
                             Py_ssize_t start, Py_ssize_t B, const double* D,
                             double* G) noexcept nogil:
        cdef const int* starts
        cdef const int* ends
        self._part_bounds(q, &starts, &ends)
        if self.is_float32:
            _csr_backward(&self.data32[0], &self.indices[0], starts, ends,
                          rows, start, B, D, self.n_outputs, G)
        else:
            _csr_backward(&self.data64[0], &self.indices[0], starts, ends,
                          rows, start, B, D, self.n_outputs, G)

    cdef void backward(self, const Py_ssize_t* rows, Py_ssize_t start,
                       Py_ssize_t B, const double* D, double* G) noexcept nogil:
        # The parts write disjoint columns of G.
        self.call = CSRCall(rows, start, B, 0, D, NULL, G, NULL)
        self.run_parts(_csr_backward_part, <void*>self, B, self.n_parts)


cdef void _csr_forward_part(void* dataset, Py_ssize_t q) noexcept nogil:
    """A team's part: column part q of ``forward_pair``."""
    cdef CSRCall* c = &(<CSRDataset>dataset).call
    (<CSRDataset>dataset)._forward_part(q, c.rows, c.start, c.B, c.W1, c.W2,
                                        c.stride, c.Z1, c.Z2)


cdef void _csr_backward_part(void* dataset, Py_ssize_t q) noexcept nogil:
    """A team's part: column part q of ``backward``."""
    cdef CSRCall* c = &(<CSRDataset>dataset).call
    (<CSRDataset>dataset)._backward_part(q, c.rows, c.start, c.B, c.W1, c.Z1)
