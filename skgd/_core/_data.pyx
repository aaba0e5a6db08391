"""Dense (BLAS) and CSR (O(nnz)) implementations of the minibatch products."""

from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memcpy
import numpy as np
from scipy.linalg.cython_blas cimport (
    ddot, sdot, daxpy, saxpy, dgemv, sgemv, dgemm, sgemm, dger, sger,
)


cdef class Dataset:
    """Interface shared by all data layouts (see _data.pxd)."""

    cdef void forward(self, const Py_ssize_t* rows, Py_ssize_t start,
                      Py_ssize_t B, const double* W, double* Z) noexcept nogil:
        pass

    cdef void backward(self, const Py_ssize_t* rows, Py_ssize_t start,
                       Py_ssize_t B, const double* D, double* G) noexcept nogil:
        pass

    cdef void reforward(self, const Py_ssize_t* rows, Py_ssize_t start,
                        Py_ssize_t B, const double* W, double* Z) noexcept nogil:
        self.forward(rows, start, B, W, Z)

    cdef void forward_pair(self, const Py_ssize_t* rows, Py_ssize_t start,
                           Py_ssize_t B, const double* W1, const double* W2,
                           double* Z1, double* Z2) noexcept nogil:
        self.forward(rows, start, B, W1, Z1)
        self.reforward(rows, start, B, W2, Z2)

    cdef Py_ssize_t columns(self, const Py_ssize_t* rows, Py_ssize_t start,
                            Py_ssize_t B, Py_ssize_t* cols) noexcept nogil:
        return -1


# ---------------------------------------------------------------- dense --

cdef inline floating _dot(int n, const floating* x,
                          const floating* y) noexcept nogil:
    cdef int one = 1
    if floating is float:
        return sdot(&n, <float*>x, &one, <float*>y, &one)
    else:
        return ddot(&n, <double*>x, &one, <double*>y, &one)


cdef inline void _axpy(int n, floating a, const floating* x,
                       floating* y) noexcept nogil:
    cdef int one = 1
    if floating is float:
        saxpy(&n, &a, <float*>x, &one, y, &one)
    else:
        daxpy(&n, &a, <double*>x, &one, y, &one)


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


cdef inline void _ger(int m, int n, const floating* x, const floating* y,
                      floating* A, int lda) noexcept nogil:
    """Column-major A += x y^T."""
    cdef int one = 1
    cdef floating a = 1.0
    if floating is float:
        sger(&m, &n, &a, <float*>x, &one, <float*>y, &one, A, &lda)
    else:
        dger(&m, &n, &a, <double*>x, &one, <double*>y, &one, A, &lda)


# Largest gather buffer (bytes): beyond it shuffled rows are read in place.
cdef Py_ssize_t GATHER_BYTES = 4 << 20
# A batch is cut into chunks of at least CHUNK_SIZE values, at most MAX_CHUNKS.
cdef Py_ssize_t CHUNK_SIZE = 8192
cdef Py_ssize_t MAX_CHUNKS = 4


# Row-major arrays are read by column-major BLAS as their transposes:
# X_B (B x d) is X_B^T (d x B, ld d) and W (d x K) is W^T (K x d, ld K).

cdef void _dense_forward(const floating* X, int d, const Py_ssize_t* rows,
                         Py_ssize_t start, int B, const floating* W, int K,
                         floating* Z) noexcept nogil:
    cdef int i
    cdef const floating* x
    if rows == NULL:
        x = X + start * d
        if K == 1:
            _gemv(c'T', d, B, 1.0, x, d, W, 0.0, Z)
        else:
            _gemm(c'N', c'N', K, B, d, W, K, x, d, 0.0, Z, K)
        return
    for i in range(B):
        x = X + rows[i] * d
        if K == 1:
            Z[i] = _dot(d, x, W)
        else:
            _gemv(c'N', K, d, 1.0, W, K, x, 0.0, Z + i * K)


cdef void _dense_backward(const floating* X, int d, const Py_ssize_t* rows,
                          Py_ssize_t start, int B, const floating* D, int K,
                          floating* G) noexcept nogil:
    cdef int i
    cdef const floating* x
    if rows == NULL:
        x = X + start * d
        if K == 1:
            _gemv(c'N', d, B, 1.0, x, d, D, 1.0, G)
        else:
            _gemm(c'N', c'T', K, d, B, D, K, x, d, 1.0, G, K)
        return
    for i in range(B):
        x = X + rows[i] * d
        if K == 1:
            _axpy(d, D[i], x, G)
        else:
            _ger(K, d, D + i * K, x, G, K)


cdef extern from *:
    void __builtin_prefetch(const void* address) noexcept nogil

# Rows prefetched ahead of the one being copied by _gather.
cdef enum:
    PREFETCH_AHEAD = 8


cdef inline void _gather(const floating* X, int d, const Py_ssize_t* rows,
                         int B, floating* out) noexcept nogil:
    """Copy rows ``rows[:B]`` of X into ``out``, prefetching rows ahead so
    that random rows arrive at streaming speed."""
    cdef int i, line, row_bytes = d * sizeof(floating)
    cdef const char* ahead
    for i in range(B):
        if i + PREFETCH_AHEAD < B:
            ahead = <const char*>(X + rows[i + PREFETCH_AHEAD] * d)
            for line in range(0, row_bytes, 64):
                __builtin_prefetch(ahead + line)
        memcpy(out + i * d, X + rows[i] * d, row_bytes)


cdef void _forward_chunk(const floating* X, int d, const Py_ssize_t* rows,
                         Py_ssize_t start, int B, const floating* W, int K,
                         floating* Z, floating* buf,
                         bint gathered) noexcept nogil:
    """Z = X_B W for one chunk, gathering shuffled rows into ``buf`` first
    unless ``gathered`` (``buf`` NULL: read the rows in place)."""
    if rows != NULL and buf != NULL:
        if not gathered:
            _gather(X, d, rows, B, buf)
        _dense_forward(buf, d, NULL, 0, B, W, K, Z)
    else:
        _dense_forward(X, d, rows, start, B, W, K, Z)


cdef void _backward_chunk(const floating* X, int d, const Py_ssize_t* rows,
                          Py_ssize_t start, int B, const floating* D, int K,
                          floating* G, const floating* buf) noexcept nogil:
    """G += X_B^T D for one chunk, reading the rows its forward gathered."""
    if rows != NULL and buf != NULL:
        _dense_backward(buf, d, NULL, 0, B, D, K, G)
    else:
        _dense_backward(X, d, rows, start, B, D, K, G)


cdef class DenseDataset(Dataset):
    """C-contiguous float32 or float64 rows, read in place (never copied).

    A batch is cut into ``n_chunks`` row chunks (a number that depends on
    the batch shape only, so results do not depend on the thread count),
    processed by up to ``n_threads`` OpenMP threads; each chunk's gradient
    goes to its own buffer and the buffers are summed in chunk order. A
    shuffled batch is gathered into a contiguous buffer (when ``max_batch x
    n_features`` fits in ``GATHER_BYTES``) so that each product is one BLAS
    call on cached memory; ``backward`` reuses the rows gathered by the
    ``forward`` of the same batch.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), C-contiguous, float32/64
    n_outputs : int
        Columns K of the coefficient matrix.
    max_batch : int
        Largest batch that will be requested (sizes the buffers).
    n_threads : int
        OpenMP threads for the batch products.
    """

    def __init__(self, X, Py_ssize_t n_outputs, Py_ssize_t max_batch,
                 int n_threads=1):
        self.n_samples, self.n_features = X.shape
        self.n_outputs = n_outputs
        self.is_float32 = X.dtype == np.float32
        self.n_chunks = max(1, min(MAX_CHUNKS,
                                   max_batch * self.n_features // CHUNK_SIZE))
        self.n_threads = max(1, min(n_threads, self.n_chunks))
        cdef Py_ssize_t dK = self.n_features * n_outputs
        cdef Py_ssize_t gather = max_batch * self.n_features
        if gather * X.dtype.itemsize > GATHER_BYTES:
            gather = 0
        self.gathers = gather > 0
        self.Xb = np.zeros(max(gather, 1) * X.dtype.itemsize, np.uint8)
        self.Gc = np.zeros(self.n_chunks * dK * X.dtype.itemsize, np.uint8)
        self.Wpair = np.zeros(2 * dK)
        self.Zpair = np.zeros(2 * max_batch * n_outputs)
        if self.is_float32:
            self.X32 = X
            self.W32 = np.zeros(2 * dK, np.float32)
            self.Z32 = np.zeros(2 * max_batch * n_outputs, np.float32)
            self.D32 = np.zeros(max_batch * n_outputs, np.float32)
        else:
            self.X64 = X

    cdef void forward(self, const Py_ssize_t* rows, Py_ssize_t start,
                      Py_ssize_t B, const double* W, double* Z) noexcept nogil:
        self._forward_any(rows, start, B, W, Z, self.n_outputs)

    cdef void forward_pair(self, const Py_ssize_t* rows, Py_ssize_t start,
                           Py_ssize_t B, const double* W1, const double* W2,
                           double* Z1, double* Z2) noexcept nogil:
        """Both products in one read of the batch: X_B [W1 | W2]."""
        cdef Py_ssize_t i, j, k, K = self.n_outputs
        for j in range(self.n_features):
            for k in range(K):
                self.Wpair[j * 2 * K + k] = W1[j * K + k]
                self.Wpair[j * 2 * K + K + k] = W2[j * K + k]
        self._forward_any(rows, start, B, &self.Wpair[0], &self.Zpair[0], 2 * K)
        for i in range(B):
            for k in range(K):
                Z1[i * K + k] = self.Zpair[i * 2 * K + k]
                Z2[i * K + k] = self.Zpair[i * 2 * K + K + k]

    cdef void _forward_any(self, const Py_ssize_t* rows, Py_ssize_t start,
                           Py_ssize_t B, const double* W, double* Z,
                           Py_ssize_t K) noexcept nogil:
        """Z = X_B W for W with K columns, in the dtype of X."""
        cdef Py_ssize_t j
        if not self.is_float32:
            self._forward(<const double*>&self.X64[0, 0], rows, start, B, W, Z,
                          <double*>&self.Xb[0], K)
            return
        for j in range(self.n_features * K):
            self.W32[j] = <float>W[j]
        self._forward(<const float*>&self.X32[0, 0], rows, start, B,
                      &self.W32[0], &self.Z32[0], <float*>&self.Xb[0], K)
        for j in range(B * K):
            Z[j] = self.Z32[j]

    cdef void reforward(self, const Py_ssize_t* rows, Py_ssize_t start,
                        Py_ssize_t B, const double* W, double* Z) noexcept nogil:
        if rows != NULL and self.gathers:
            # The batch already sits contiguously in the buffer.
            self._in_buffer = True
        self.forward(rows, start, B, W, Z)
        self._in_buffer = False

    cdef void backward(self, const Py_ssize_t* rows, Py_ssize_t start,
                       Py_ssize_t B, const double* D, double* G) noexcept nogil:
        cdef Py_ssize_t j, K = self.n_outputs
        if not self.is_float32:
            self._backward(<const double*>&self.X64[0, 0], rows, start, B, D,
                           G, <const double*>&self.Xb[0])
            return
        for j in range(B * K):
            self.D32[j] = <float>D[j]
        self._backward(<const float*>&self.X32[0, 0], rows, start, B,
                       &self.D32[0], G, <const float*>&self.Xb[0])

    cdef void _forward(self, const floating* X, const Py_ssize_t* rows,
                       Py_ssize_t start, Py_ssize_t B, const floating* W,
                       floating* Z, floating* buf, Py_ssize_t K) noexcept nogil:
        cdef Py_ssize_t c, lo, n_c, d = self.n_features
        cdef Py_ssize_t chunk = (B + self.n_chunks - 1) // self.n_chunks
        cdef floating* chunk_buf
        if self.n_chunks == 1:
            _forward_chunk(X, d, rows, start, B, W, K, Z,
                           buf if self.gathers else NULL, self._in_buffer)
            return
        for c in prange(self.n_chunks, num_threads=self.n_threads,
                        schedule="static", chunksize=1):
            lo = c * chunk
            n_c = min(chunk, B - lo)
            if n_c <= 0:
                continue
            chunk_buf = buf + lo * d if self.gathers else NULL
            _forward_chunk(X, d, rows + lo if rows != NULL else NULL,
                           start + lo, n_c, W, K, Z + lo * K, chunk_buf,
                           self._in_buffer)

    cdef void _backward(self, const floating* X, const Py_ssize_t* rows,
                        Py_ssize_t start, Py_ssize_t B, const floating* D,
                        double* G, const floating* buf) noexcept nogil:
        cdef Py_ssize_t c, j, lo, n_c, d = self.n_features, K = self.n_outputs
        cdef Py_ssize_t dK = d * K
        cdef Py_ssize_t chunk = (B + self.n_chunks - 1) // self.n_chunks
        cdef floating* Gc = <floating*>&self.Gc[0]
        cdef const floating* chunk_buf
        if self.n_chunks == 1 and sizeof(floating) == sizeof(double):
            _backward_chunk(X, d, rows, start, B, D, K, <floating*>G,
                            buf if self.gathers else NULL)
            return
        for c in prange(self.n_chunks, num_threads=self.n_threads,
                        schedule="static", chunksize=1):
            lo = c * chunk
            n_c = min(chunk, B - lo)
            for j in range(dK):
                Gc[c * dK + j] = 0.0
            if n_c <= 0:
                continue
            chunk_buf = buf + lo * d if self.gathers else NULL
            _backward_chunk(X, d, rows + lo if rows != NULL else NULL,
                            start + lo, n_c, D + lo * K, K, Gc + c * dK,
                            chunk_buf)
        for c in range(self.n_chunks):
            for j in range(dK):
                G[j] += Gc[c * dK + j]


# ------------------------------------------------------------------ CSR --

cdef void _csr_forward(const floating* data, const int* indices,
                       const int* indptr, const Py_ssize_t* rows,
                       Py_ssize_t start, Py_ssize_t B, const double* W,
                       Py_ssize_t K, double* Z) noexcept nogil:
    cdef Py_ssize_t i, r, p, k
    cdef double acc, v
    cdef const double* w
    for i in range(B):
        r = rows[i] if rows != NULL else start + i
        if K == 1:
            acc = 0.0
            for p in range(indptr[r], indptr[r + 1]):
                acc += data[p] * W[indices[p]]
            Z[i] = acc
            continue
        for k in range(K):
            Z[i * K + k] = 0.0
        for p in range(indptr[r], indptr[r + 1]):
            v = data[p]
            w = W + indices[p] * K
            for k in range(K):
                Z[i * K + k] += v * w[k]


cdef void _csr_forward_pair(const floating* data, const int* indices,
                            const int* indptr, const Py_ssize_t* rows,
                            Py_ssize_t start, Py_ssize_t B, const double* W1,
                            const double* W2, Py_ssize_t K, double* Z1,
                            double* Z2) noexcept nogil:
    cdef Py_ssize_t i, r, p, k, j
    cdef double v, acc1, acc2
    for i in range(B):
        r = rows[i] if rows != NULL else start + i
        if K == 1:
            acc1 = 0.0
            acc2 = 0.0
            for p in range(indptr[r], indptr[r + 1]):
                j = indices[p]
                acc1 += data[p] * W1[j]
                acc2 += data[p] * W2[j]
            Z1[i] = acc1
            Z2[i] = acc2
            continue
        for k in range(K):
            Z1[i * K + k] = 0.0
            Z2[i * K + k] = 0.0
        for p in range(indptr[r], indptr[r + 1]):
            v = data[p]
            j = indices[p] * K
            for k in range(K):
                Z1[i * K + k] += v * W1[j + k]
                Z2[i * K + k] += v * W2[j + k]


cdef void _csr_backward(const floating* data, const int* indices,
                        const int* indptr, const Py_ssize_t* rows,
                        Py_ssize_t start, Py_ssize_t B, const double* D,
                        Py_ssize_t K, double* G) noexcept nogil:
    cdef Py_ssize_t i, r, p, k
    cdef double v
    cdef double* g
    for i in range(B):
        r = rows[i] if rows != NULL else start + i
        if K == 1:
            v = D[i]
            for p in range(indptr[r], indptr[r + 1]):
                G[indices[p]] += data[p] * v
            continue
        for p in range(indptr[r], indptr[r + 1]):
            v = data[p]
            g = G + indices[p] * K
            for k in range(K):
                g[k] += v * D[i * K + k]


cdef class CSRDataset(Dataset):
    """CSR rows (float32 or float64 values, int32 indices), read in place.

    Parameters
    ----------
    X : scipy.sparse CSR matrix or array with int32 index arrays
    n_outputs : int
        Columns K of the coefficient matrix.
    """

    def __init__(self, X, Py_ssize_t n_outputs):
        self.n_samples, self.n_features = X.shape
        self.n_outputs = n_outputs
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
        self.seen = np.full(self.n_features, -1, dtype=np.intp)
        self.n_calls = 0

    cdef Py_ssize_t columns(self, const Py_ssize_t* rows, Py_ssize_t start,
                            Py_ssize_t B, Py_ssize_t* cols) noexcept nogil:
        cdef Py_ssize_t i, r, p, j, m = 0
        for i in range(B):
            r = rows[i] if rows != NULL else start + i
            for p in range(self.indptr[r], self.indptr[r + 1]):
                j = self.indices[p]
                if self.seen[j] != self.n_calls:
                    self.seen[j] = self.n_calls
                    cols[m] = j
                    m += 1
        self.n_calls += 1
        return m

    cdef void forward(self, const Py_ssize_t* rows, Py_ssize_t start,
                      Py_ssize_t B, const double* W, double* Z) noexcept nogil:
        if self.is_float32:
            _csr_forward(&self.data32[0], &self.indices[0], &self.indptr[0],
                         rows, start, B, W, self.n_outputs, Z)
        else:
            _csr_forward(&self.data64[0], &self.indices[0], &self.indptr[0],
                         rows, start, B, W, self.n_outputs, Z)

    cdef void forward_pair(self, const Py_ssize_t* rows, Py_ssize_t start,
                           Py_ssize_t B, const double* W1, const double* W2,
                           double* Z1, double* Z2) noexcept nogil:
        if self.is_float32:
            _csr_forward_pair(&self.data32[0], &self.indices[0],
                              &self.indptr[0], rows, start, B, W1, W2,
                              self.n_outputs, Z1, Z2)
        else:
            _csr_forward_pair(&self.data64[0], &self.indices[0],
                              &self.indptr[0], rows, start, B, W1, W2,
                              self.n_outputs, Z1, Z2)

    cdef void backward(self, const Py_ssize_t* rows, Py_ssize_t start,
                       Py_ssize_t B, const double* D, double* G) noexcept nogil:
        if self.is_float32:
            _csr_backward(&self.data32[0], &self.indices[0], &self.indptr[0],
                          rows, start, B, D, self.n_outputs, G)
        else:
            _csr_backward(&self.data64[0], &self.indices[0], &self.indptr[0],
                          rows, start, B, D, self.n_outputs, G)
