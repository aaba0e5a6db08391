/* The sums of weighted_row_norms (_norms.pyx) over a chunk of rows of X,
   dense or CSR, float64 or float32: per row ||x||_1 and ||x||^2 (in
   double), and over the chunk the weighted sums of both, the largest
   ||x||^2 of a row of positive weight, the unweighted sum of ||x||_1 (NaN
   or inf when X is not finite) and the largest |x_j|.

   A row's sums are reductions under `omp simd`, so they are vectorised
   (the scalar loop ran at ~4 cycles per value: float64 200000 x 100 took
   16 ms on two cores against 9 ms for X @ w); compiled for x86-64-v3
   (AVX2) and baseline x86-64, chosen at load. simdlen(8) gives two
   independent vector sums per value of a row under AVX2 (one sum waited
   on every add: 13.5 -> 11 ms). The lanes are summed in an order fixed by
   the build, so results do not depend on threads. */
#ifndef SKGD_ROW_NORMS_H
#define SKGD_ROW_NORMS_H

#include <math.h>
#include <stddef.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(SKGD_BASELINE_ONLY)
#define SKGD_NORMS_KERNEL \
    __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SKGD_NORMS_KERNEL
#endif

/* out[0..4]: sum s_i ||x_i||_1, sum s_i ||x_i||^2, max ||x_i||^2 (s_i > 0),
   sum ||x_i||_1, max |x_ij| over rows lo .. hi - 1; dense rows of d values
   when indptr is NULL, else CSR; unit weights when sw is NULL. */
#define SKGD_CHUNK_NORMS(NAME, T)                                           \
static SKGD_NORMS_KERNEL void skgd_chunk_norms_##NAME(                      \
    const T* values, const Py_ssize_t* indptr, Py_ssize_t d,                \
    const double* sw, Py_ssize_t lo, Py_ssize_t hi, double* out)            \
{                                                                           \
    double sum_l1 = 0.0, sum_sq = 0.0, max_sq = 0.0, total = 0.0;           \
    double top = 0.0;                                                       \
    Py_ssize_t i, j;                                                        \
    for (i = lo; i < hi; i++) {                                             \
        const T* x = values + (indptr == NULL ? i * d : indptr[i]);         \
        Py_ssize_t m = indptr == NULL ? d : indptr[i + 1] - indptr[i];      \
        double l1 = 0.0, sq = 0.0, s = sw == NULL ? 1.0 : sw[i];            \
        _Pragma("omp simd simdlen(8) reduction(+:l1, sq) reduction(max:top)") \
        for (j = 0; j < m; j++) {                                           \
            double v = fabs((double)x[j]);                                  \
            l1 += v;                                                        \
            sq += v * v;                                                    \
            top = top > v ? top : v;                                        \
        }                                                                   \
        total += l1;                                                        \
        if (s == 0.0) continue;                                             \
        sum_l1 += s * l1;                                                   \
        sum_sq += s * sq;                                                   \
        if (sq > max_sq) max_sq = sq;                                       \
    }                                                                       \
    out[0] = sum_l1;                                                        \
    out[1] = sum_sq;                                                        \
    out[2] = max_sq;                                                        \
    out[3] = total;                                                         \
    out[4] = top;                                                           \
}

SKGD_CHUNK_NORMS(double, double)
SKGD_CHUNK_NORMS(float, float)

#endif
