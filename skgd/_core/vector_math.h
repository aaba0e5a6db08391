/* Vectorised math for loops over many independent values (the losses'
   rows, the lazy rules' catch-ups).

   With glibc's vector math library (setup.py defines SKGD_LIBMVEC on
   x86-64 Linux) a loop of exp calls under `#pragma omp simd` is
   vectorised: exp is declared SIMD-callable (libmvec's variants, within
   4 ulp) and the function holding the loop is compiled twice, for AVX2
   and for baseline x86-64, chosen at load (SKGD_VECTORISED). */
#ifndef SKGD_VECTOR_MATH_H
#define SKGD_VECTOR_MATH_H

#include <math.h>

#if defined(SKGD_LIBMVEC) && defined(__GNUC__) && defined(__x86_64__)
#pragma omp declare simd notinbranch
extern double exp(double);
#define SKGD_VECTORISED __attribute__((target_clones("avx2", "default")))
#else
#define SKGD_VECTORISED
#endif

/* Below this |x|, expm1(x) is its Taylor polynomial to x^7 / 7!: relative
   error below x^7 / 8! < 3e-19, under rounding (the decay a column missed
   is usually a small exponent). Above, exp(x) - 1: exact subtraction,
   relative error below e^x / |x| times exp's (2.3e-14 with libm's exp,
   1e-13 with libmvec's); libm's expm1 is several times dearer and not
   vectorised. */
#define SKGD_EXPM1_TAYLOR 1e-2

/* Both branches are computed and one is chosen, so that a loop of these
   vectorises. */
static inline __attribute__((always_inline)) double skgd_expm1(double x)
{
    double taylor = x * (1.0 + x * (1.0 / 2 + x * (1.0 / 6 + x * (
        1.0 / 24 + x * (1.0 / 120 + x * (1.0 / 720 + x * (1.0 / 5040)))))));
    double shifted = exp(x) - 1.0;
    return fabs(x) < SKGD_EXPM1_TAYLOR ? taylor : shifted;
}

#endif
