/* Row kernels of the dense minibatch pass for one output (K = 1), in the
   dtype of X: the decision values of a block of rows (at W and, when
   averaging, at the average A, in one read of each row) and the
   gradient's X^T D. The rows are read where they are (a shuffled batch
   names them through `rows`), so nothing is gathered and no BLAS call is
   made per block.

   Each dot product keeps four independent vector sums of 32 bytes (AVX2
   registers; pairs of SSE registers in the baseline build), summed in a
   fixed order: the chain of dependent adds is a sixteenth (double) or a
   thirty-second (float) of d long; the last d % L values (L lanes) are
   one masked vector, not a chain of scalar steps (float32 rows of 100
   features in cache: 10 -> 7 ns per row). Compiled for x86-64-v3 (AVX2,
   FMA) and for baseline x86-64, chosen at load (GCC's target_clones). */
#ifndef SKGD_DENSE_ROWS_H
#define SKGD_DENSE_ROWS_H

#include <stddef.h>

/* SKGD_BASELINE_ONLY (the debug build) compiles the baseline code alone,
   so that the fuzz suite runs it on machines that would pick AVX2. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(SKGD_BASELINE_ONLY)
#define SKGD_DENSE_KERNEL \
    __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SKGD_DENSE_KERNEL
#endif

/* Rows ahead of the current one whose cache lines a block prefetches
   (here and in _data.pyx's gather of K > 1 blocks). */
#define SKGD_ROWS_AHEAD 8

/* Prefetch the cache lines of the row SKGD_ROWS_AHEAD after row i of a
   block (rows[i + SKGD_ROWS_AHEAD], or start + i + SKGD_ROWS_AHEAD when
   rows is NULL) if it is among the block's first `ahead` rows. Contiguous
   rows gain too: the hardware prefetcher alone keeps too few lines in
   flight for one core to stream at its full bandwidth. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void skgd_prefetch_ahead(const void* X, size_t row_bytes,
                                       const Py_ssize_t* rows,
                                       Py_ssize_t start, Py_ssize_t i,
                                       Py_ssize_t ahead)
{
    const char* next;
    size_t j;
    if (i + SKGD_ROWS_AHEAD >= ahead) return;
    next = (const char*)X + (rows != NULL ? rows[i + SKGD_ROWS_AHEAD]
                             : start + i + SKGD_ROWS_AHEAD) * row_bytes;
    for (j = 0; j < row_bytes; j += 64) __builtin_prefetch(next + j);
}

#define SKGD_ROW(X, d, rows, start, i) \
    ((X) + ((rows) != NULL ? (rows)[i] : (start) + (i)) * (d))

/* Unaligned load of one 32-byte vector (4 doubles or 8 floats). */
#define SKGD_LOAD(V, p) \
    ({ V v_; __builtin_memcpy(&v_, (p), sizeof(V)); v_; })

typedef double skgd_vector_double __attribute__((vector_size(32)));
typedef float skgd_vector_float __attribute__((vector_size(32)));
/* Lane masks of the same widths (all bits set: the lane is kept). */
typedef long long skgd_mask_double __attribute__((vector_size(32)));
typedef int skgd_mask_float __attribute__((vector_size(32)));

/* The sum of the lanes of v, as a tree (two dependent adds for doubles,
   three for floats, instead of four or eight in a row). */
static inline __attribute__((always_inline)) double skgd_lane_sum_double(
    skgd_vector_double v)
{
    return (v[0] + v[2]) + (v[1] + v[3]);
}

static inline __attribute__((always_inline)) float skgd_lane_sum_float(
    skgd_vector_float v)
{
    return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
}

#define SKGD_DENSE_ROWS(T, NAME)                                            \
/* x . w (and x . a into *za when a is not NULL) in four vector sums;     \
   `tail` keeps the last d % L lanes of a vector. */                       \
static inline __attribute__((always_inline)) T skgd_dot_##NAME(          \
    const T* x, const T* w, const T* a, Py_ssize_t d,                       \
    skgd_mask_##NAME tail, T* za)                                           \
{                                                                           \
    typedef skgd_vector_##NAME V;                                           \
    const Py_ssize_t L = sizeof(V) / sizeof(T);                             \
    V s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};                               \
    V t0 = {0}, t1 = {0}, t2 = {0}, t3 = {0};                               \
    T s = 0, t = 0;                                                         \
    Py_ssize_t j = 0;                                                       \
    for (; j + 4 * L <= d; j += 4 * L) {                                    \
        V x0 = SKGD_LOAD(V, x + j), x1 = SKGD_LOAD(V, x + j + L);           \
        V x2 = SKGD_LOAD(V, x + j + 2 * L), x3 = SKGD_LOAD(V, x + j + 3 * L);\
        s0 += x0 * SKGD_LOAD(V, w + j);                                     \
        s1 += x1 * SKGD_LOAD(V, w + j + L);                                 \
        s2 += x2 * SKGD_LOAD(V, w + j + 2 * L);                             \
        s3 += x3 * SKGD_LOAD(V, w + j + 3 * L);                             \
        if (a != NULL) {                                                    \
            t0 += x0 * SKGD_LOAD(V, a + j);                                 \
            t1 += x1 * SKGD_LOAD(V, a + j + L);                             \
            t2 += x2 * SKGD_LOAD(V, a + j + 2 * L);                         \
            t3 += x3 * SKGD_LOAD(V, a + j + 3 * L);                         \
        }                                                                   \
    }                                                                       \
    for (; j + L <= d; j += L) {                                            \
        V x0 = SKGD_LOAD(V, x + j);                                         \
        s1 += x0 * SKGD_LOAD(V, w + j);                                     \
        if (a != NULL) t1 += x0 * SKGD_LOAD(V, a + j);                      \
    }                                                                       \
    if (j < d && d >= L) {                                                  \
        /* The last L values, those the vectors above summed zeroed. */    \
        V xt = SKGD_LOAD(V, x + d - L);                                     \
        skgd_mask_##NAME bits;                                              \
        __builtin_memcpy(&bits, &xt, sizeof(xt));                           \
        bits &= tail;                                                       \
        __builtin_memcpy(&xt, &bits, sizeof(xt));                           \
        s2 += xt * SKGD_LOAD(V, w + d - L);                                 \
        if (a != NULL) t2 += xt * SKGD_LOAD(V, a + d - L);                  \
        j = d;                                                              \
    }                                                                       \
    for (; j < d; j++) {                                                    \
        s += x[j] * w[j];                                                   \
        if (a != NULL) t += x[j] * a[j];                                    \
    }                                                                       \
    s0 = (s0 + s1) + (s2 + s3);                                             \
    t0 = (t0 + t1) + (t2 + t3);                                             \
    s += skgd_lane_sum_##NAME(s0);                                          \
    t += skgd_lane_sum_##NAME(t0);                                          \
    *za = t;                                                                \
    return s;                                                               \
}                                                                           \
                                                                            \
/* z[i] = x_i . w and, when a is not NULL, za[i] = x_i . a for the n rows  \
   x_i of X (rows[i], or start + i when rows is NULL); `ahead` rows are    \
   valid in rows[] (those past n are prefetched). */                       \
static SKGD_DENSE_KERNEL void skgd_dots_##NAME(                            \
    const T* X, Py_ssize_t d, const Py_ssize_t* rows, Py_ssize_t start,    \
    Py_ssize_t n, Py_ssize_t ahead, const T* w, const T* a, double* z,     \
    double* za)                                                             \
{                                                                           \
    const Py_ssize_t L = sizeof(skgd_vector_##NAME) / sizeof(T);            \
    skgd_mask_##NAME tail;                                                  \
    Py_ssize_t i;                                                           \
    T at_a;                                                                 \
    for (i = 0; i < L; i++) tail[i] = i >= L - d % L ? -1 : 0;              \
    for (i = 0; i < n; i++) {                                               \
        skgd_prefetch_ahead(X, d * sizeof(T), rows, start, i, ahead);       \
        z[i] = skgd_dot_##NAME(SKGD_ROW(X, d, rows, start, i), w, a, d,     \
                               tail, &at_a);                                \
        if (a != NULL) za[i] = at_a;                                        \
    }                                                                       \
}                                                                           \
                                                                            \
/* g += sum_i D[i] x_i over the same n rows, four rows per sweep of g. */  \
static SKGD_DENSE_KERNEL void skgd_add_rows_##NAME(                        \
    const T* X, Py_ssize_t d, const Py_ssize_t* rows, Py_ssize_t start,    \
    Py_ssize_t n, const double* D, T* g)                                    \
{                                                                           \
    Py_ssize_t i, j;                                                        \
    for (i = 0; i + 4 <= n; i += 4) {                                       \
        const T* x0 = SKGD_ROW(X, d, rows, start, i);                       \
        const T* x1 = SKGD_ROW(X, d, rows, start, i + 1);                   \
        const T* x2 = SKGD_ROW(X, d, rows, start, i + 2);                   \
        const T* x3 = SKGD_ROW(X, d, rows, start, i + 3);                   \
        T d0 = (T)D[i], d1 = (T)D[i + 1], d2 = (T)D[i + 2],                 \
          d3 = (T)D[i + 3];                                                 \
        for (j = 0; j < d; j++)                                             \
            g[j] += (d0 * x0[j] + d1 * x1[j]) + (d2 * x2[j] + d3 * x3[j]); \
    }                                                                       \
    for (; i < n; i++) {                                                    \
        const T* x0 = SKGD_ROW(X, d, rows, start, i);                       \
        T d0 = (T)D[i];                                                     \
        for (j = 0; j < d; j++)                                             \
            g[j] += d0 * x0[j];                                             \
    }                                                                       \
}

SKGD_DENSE_ROWS(double, double)
SKGD_DENSE_ROWS(float, float)

#endif
