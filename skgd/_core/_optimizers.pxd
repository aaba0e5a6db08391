"""Update rules of SPEC section 3, element-wise on a flat parameter vector.

The parameters are theta = [W (d x K, C order), b (K)]; ``step`` applies
one update with gradient ``g`` and step ``eta`` at update count ``t``
(from 1) to the coordinates ``idx[:n]`` of theta (``theta[:n]`` when
``idx`` is NULL). Each rule keeps its state in arrays of the same length
as theta, owned by the caller so that ``partial_fit`` and ``warm_start``
continue from it; the intercept thereby gets the same rule with its own
state.

``metric(i, t)`` is the diagonal D_i the rule divided its last step of
coordinate i by (1 for SGD, with or without momentum; ``sqrt(s_i) + eps``
for the adaptive rules, Adam's ``s`` bias-corrected at update t).
``project(w, n, radius, t, work)`` projects ``w[:n]`` onto the ball
``||w|| <= radius`` in that metric (Euclidean when ``euclidean``):
``argmin_{||z|| <= r} (z - w)^T D (z - w)``, the projection under which
projected gradient descent with the rule converges to the constrained
optimum (see ``skgd.minimize``).

``step`` and ``step_records`` on disjoint coordinates, ``lazy_divisors``
and ``metric`` may run in several threads at once, the latter two after
``prepare(t)`` (which computes what they share at update count t).

The sparse engine (_lazy.pyx) keeps the coefficients of each column of W
in a record of its own, one cache line for K = 1: ``w[k]`` the
coefficient k of the column, ``w[K + k]`` its gradient and
``w[(2 + s) K + k]`` its value of state array s (``state_names`` order),
for k < K. ``step_records`` is ``step`` on the records at ``rec + j R`` of
the columns j in ``cols[:n]`` (R, K and the engine's part of the records
in ``f``), each record handed right after its update to
``_records.finish_record`` (with its place c in ``cols`` and local sums,
added into ``sums[:2]`` at the end); ``step_records_k1`` is the same for
K = 1, a loop of its own. ``state(s)`` is the flat state array s (length
P) that the records are read from and written back to.

``lazy_divisors(s, n, D)`` sets D[i] to what the rule divides a constant
gradient of a coordinate by in the long run (1 for plain SGD, 1 - mu with
momentum, the root of the second moment plus eps for the adaptive rules),
s[i] the coordinate's value of the record field ``lazy_field`` (its state
array ``lazy_field - 2``; 0 when D depends on no state): one loop over
contiguous values, which vectorises. The sparse engine applies the weight
decay a coordinate missed at the rate 1 / D[i] (given as D: the engine
divides once for both of its exponents).
"""

from ._records cimport RecordFinish


cdef class Optimizer:
    cdef bint euclidean
    cdef Py_ssize_t lazy_field
    cdef void step(self, double* theta, const double* g,
                   const Py_ssize_t* idx, Py_ssize_t n, double eta,
                   double t) noexcept nogil
    cdef void step_records(self, double* rec, const RecordFinish* f,
                           const Py_ssize_t* cols, Py_ssize_t n, double eta,
                           double t, double* sums) noexcept nogil
    cdef void step_records_k1(self, double* rec, const RecordFinish* f,
                              const Py_ssize_t* cols, Py_ssize_t n,
                              double eta, double t,
                              double* sums) noexcept nogil
    cdef double* state(self, Py_ssize_t s) noexcept nogil
    cdef void lazy_divisors(self, const double* s, Py_ssize_t n,
                            double* D) noexcept nogil
    cdef void prepare(self, double t) noexcept nogil
    cdef double metric(self, Py_ssize_t i, double t) noexcept nogil
    cdef bint project(self, double* w, Py_ssize_t n, double radius, double t,
                      double* work) noexcept nogil


cdef class SGD(Optimizer):
    cdef double momentum, lazy_divisor
    cdef bint nesterov
    cdef double[::1] velocity


cdef class _RootMeanSquare(Optimizer):
    cdef double eps
    cdef double[::1] sq  # sum_sq (Adagrad) or mean_sq (RMSprop)


cdef class Adagrad(_RootMeanSquare):
    pass


cdef class RMSprop(_RootMeanSquare):
    cdef double rho


cdef class Adam(Optimizer):
    cdef double beta1, beta2, eps
    cdef double[::1] m1, m2
    # 1 - beta2^t and its inverse at t = c2_t (lazy_divisors' cache)
    cdef double c2_t, c2, inv_c2
