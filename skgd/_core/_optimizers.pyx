"""One class per update rule (see _optimizers.pxd)."""

cimport cython
from libc.math cimport INFINITY, pow, sqrt
import numpy as np

from ._records cimport RecordFinish, finish_record, finished_sums


# Most Newton iterations of the metric projection's multiplier (from the
# left on a concave secular function: monotone, quadratic; a few suffice).
cdef int MAX_PROJECTION_ITER = 100


cdef double _ball_multiplier(const double* y, const double* D, Py_ssize_t n,
                             double radius) noexcept nogil:
    """mu >= 0 with ||z(mu)|| = radius, z_i(mu) = D_i y_i / (D_i + mu),
    for ||y|| > radius.

    ``h(mu) = 1 / ||z(mu)|| - 1 / radius`` is increasing and concave (the
    secular function of a trust-region subproblem with Hessian diag(D) and
    gradient D y; More and Sorensen), so Newton's method from mu = 0, where
    h < 0, increases monotonically to the root without overshooting. With
    s2 = ||z||^2 and s3 = sum z_i^2 / (D_i + mu), h' = s3 / ||z||^3 and the
    Newton step is (||z|| / radius - 1) s2 / s3. For D = const it is exact
    in one step."""
    cdef Py_ssize_t i
    cdef int _it
    cdef double mu = 0.0, s2, s3, q, z, excess, step
    for _it in range(MAX_PROJECTION_ITER):
        s2 = 0.0
        s3 = 0.0
        for i in range(n):
            q = 1.0 / (D[i] + mu)
            z = D[i] * y[i] * q
            s2 += z * z
            s3 += z * z * q
        excess = sqrt(s2) / radius - 1.0
        if not (excess > 4e-16 and s3 > 0.0):
            break
        step = excess * s2 / s3
        mu += step
        if step <= 1e-16 * mu:
            break
    return mu


cdef inline void _momentum_update(double* w, double g, double* v, double eta,
                                  double mu, bint nesterov) noexcept nogil:
    """One coordinate's plain SGD (mu = 0) or momentum step; v its velocity."""
    if mu == 0.0:
        w[0] -= eta * g
        return
    v[0] = mu * v[0] + g
    w[0] -= eta * (g + mu * v[0] if nesterov else v[0])


cdef inline void _adagrad_update(double* w, double g, double* s, double eta,
                                 double eps) noexcept nogil:
    s[0] += g * g
    w[0] -= eta * g / (sqrt(s[0]) + eps)


cdef inline void _rmsprop_update(double* w, double g, double* s, double eta,
                                 double rho, double eps) noexcept nogil:
    s[0] = rho * s[0] + (1.0 - rho) * g * g
    w[0] -= eta * g / (sqrt(s[0]) + eps)


cdef inline void _adam_update(double* w, double g, double* m1, double* m2,
                              double eta_c1, double b1, double b2,
                              double inv_c2, double eps) noexcept nogil:
    """eta_c1 = eta / c1, inv_c2 = 1 / c2 with the bias corrections c1 = 1 -
    beta1^t, c2 = 1 - beta2^t (one division per coordinate, not three)."""
    m1[0] = b1 * m1[0] + (1.0 - b1) * g
    m2[0] = b2 * m2[0] + (1.0 - b2) * g * g
    w[0] -= eta_c1 * m1[0] / (sqrt(m2[0] * inv_c2) + eps)


ctypedef fused Rule:
    SGD
    Adagrad
    RMSprop
    Adam


cdef inline void _step_records(Rule rule, double* rec, RecordFinish f,
                               Py_ssize_t K, const Py_ssize_t* cols,
                               Py_ssize_t n, double eta, double t,
                               double* sums) noexcept nogil:
    """``step_records`` of each rule with K = f.K, or a constant 1
    (``step_records_k1``: the compiler drops the inner loops). The rule's
    constants are read into locals first: read through ``rule``, they
    would be reloaded after every store to a record."""
    cdef Py_ssize_t c, k
    cdef double* w
    cdef double acc[4]
    cdef double mu = 0.0, rho = 0.0, eps = 0.0, b1 = 0.0, b2 = 0.0
    cdef double eta_c1 = 0.0, inv_c2 = 0.0
    cdef bint nesterov = False
    if Rule is SGD:
        mu = rule.momentum
        nesterov = rule.nesterov
    else:
        eps = rule.eps
    if Rule is RMSprop:
        rho = rule.rho
    if Rule is Adam:
        b1 = rule.beta1
        b2 = rule.beta2
        eta_c1 = eta / (1.0 - pow(b1, t))
        inv_c2 = 1.0 / (1.0 - pow(b2, t))
    acc[:] = [0.0, 0.0, 0.0, 0.0]
    for c in range(n):
        w = rec + cols[c] * f.R
        for k in range(K):
            if Rule is SGD:
                _momentum_update(&w[k], w[K + k], &w[2 * K + k], eta, mu,
                                 nesterov)
            elif Rule is Adagrad:
                _adagrad_update(&w[k], w[K + k], &w[2 * K + k], eta, eps)
            elif Rule is RMSprop:
                _rmsprop_update(&w[k], w[K + k], &w[2 * K + k], eta, rho,
                                eps)
            else:
                _adam_update(&w[k], w[K + k], &w[2 * K + k], &w[3 * K + k],
                             eta_c1, b1, b2, inv_c2, eps)
        finish_record(w, &f, K, c, acc)
    finished_sums(acc, sums)


cdef class Optimizer:
    """Base class; ``state_names`` lists the arrays a rule keeps."""

    state_names = ()

    cdef void step(self, double* theta, const double* g,
                   const Py_ssize_t* idx, Py_ssize_t n, double eta,
                   double t) noexcept nogil:
        pass

    cdef void step_records(self, double* rec, const RecordFinish* f,
                           const Py_ssize_t* cols, Py_ssize_t n, double eta,
                           double t, double* sums) noexcept nogil:
        pass

    cdef void step_records_k1(self, double* rec, const RecordFinish* f,
                              const Py_ssize_t* cols, Py_ssize_t n,
                              double eta, double t,
                              double* sums) noexcept nogil:
        self.step_records(rec, f, cols, n, eta, t, sums)

    cdef double* state(self, Py_ssize_t s) noexcept nogil:
        return NULL

    cdef void lazy_divisors(self, const double* s, Py_ssize_t n,
                            double* D) noexcept nogil:
        cdef Py_ssize_t i
        for i in range(n):
            D[i] = 1.0

    cdef void prepare(self, double t) noexcept nogil:
        pass

    cdef double metric(self, Py_ssize_t i, double t) noexcept nogil:
        return 1.0

    cdef bint project(self, double* w, Py_ssize_t n, double radius, double t,
                      double* work) noexcept nogil:
        """Project w[:n] onto ||w|| <= radius in the metric of the rule
        (``work``: n doubles); returns whether w changed.

        Euclidean: ``w * radius / ||w||``. Metric D: ``D w / (D + mu)``
        with mu from :func:`_ball_multiplier`, then scaled onto the sphere
        (a relative correction at the rounding level: mu is approached
        from below). Non-finite w is left alone (the caller reports the
        divergence)."""
        cdef Py_ssize_t i
        cdef double sq = 0.0, mu, c
        for i in range(n):
            sq += w[i] * w[i]
        if not (sq > radius * radius) or sq == INFINITY:
            return False
        if not self.euclidean:
            for i in range(n):
                work[i] = self.metric(i, t)
            mu = _ball_multiplier(w, work, n, radius)
            sq = 0.0
            for i in range(n):
                w[i] = work[i] * w[i] / (work[i] + mu)
                sq += w[i] * w[i]
            if not (sq > radius * radius):
                return True
        c = radius / sqrt(sq)
        for i in range(n):
            w[i] *= c
        return True

    def update(self, double[::1] theta, const double[::1] g, double eta,
               double t):
        """Apply one update in place (Python access, e.g. for minimize)."""
        self.step(&theta[0], &g[0], NULL, theta.shape[0], eta, t)

    def project_onto_ball(self, double[::1] w, double radius, double t):
        """Project w onto ``||w|| <= radius`` in place, in the rule's metric
        after update t (Python access, for tests); returns whether w
        changed."""
        work = np.empty(w.shape[0])
        cdef double[::1] buf = work
        if w.shape[0] == 0:
            return False
        return bool(self.project(&w[0], w.shape[0], radius, t, &buf[0]))

    @classmethod
    def init_state(cls, Py_ssize_t size):
        """Fresh (zero) state arrays for a parameter vector of ``size``."""
        return {name: np.zeros(size) for name in cls.state_names}


@cython.final
cdef class SGD(Optimizer):
    """Plain SGD, heavy-ball momentum or Nesterov momentum (PyTorch's form).

    v = mu v + g;  W -= eta v  (or W -= eta (g + mu v) with nesterov).
    """

    state_names = ("velocity",)

    def __init__(self, state, double momentum=0.0, bint nesterov=False):
        self.euclidean = True
        self.momentum = momentum
        self.lazy_divisor = 1.0 - momentum
        self.nesterov = nesterov
        self.velocity = state["velocity"]

    cdef void step(self, double* theta, const double* g,
                   const Py_ssize_t* idx, Py_ssize_t n, double eta,
                   double t) noexcept nogil:
        cdef Py_ssize_t i, j
        cdef double* v = &self.velocity[0]
        cdef double mu = self.momentum
        cdef bint nesterov = self.nesterov
        for i in range(n):
            j = idx[i] if idx != NULL else i
            _momentum_update(&theta[j], g[j], &v[j], eta, mu, nesterov)

    cdef void step_records(self, double* rec, const RecordFinish* f,
                           const Py_ssize_t* cols, Py_ssize_t n, double eta,
                           double t, double* sums) noexcept nogil:
        _step_records(self, rec, f[0], f.K, cols, n, eta, t, sums)

    cdef void step_records_k1(self, double* rec, const RecordFinish* f,
                              const Py_ssize_t* cols, Py_ssize_t n,
                              double eta, double t,
                              double* sums) noexcept nogil:
        _step_records(self, rec, f[0], 1, cols, n, eta, t, sums)

    cdef double* state(self, Py_ssize_t s) noexcept nogil:
        return &self.velocity[0]

    cdef void lazy_divisors(self, const double* s, Py_ssize_t n,
                            double* D) noexcept nogil:
        cdef Py_ssize_t i
        cdef double divisor = self.lazy_divisor
        for i in range(n):
            D[i] = divisor


cdef class _RootMeanSquare(Optimizer):
    """Adagrad and RMSprop: the step divided by sqrt(s) + eps, s the rule's
    one state array ``sq``."""

    cdef double* state(self, Py_ssize_t s) noexcept nogil:
        return &self.sq[0]

    cdef double metric(self, Py_ssize_t i, double t) noexcept nogil:
        return sqrt(self.sq[i]) + self.eps

    cdef void lazy_divisors(self, const double* s, Py_ssize_t n,
                            double* D) noexcept nogil:
        cdef Py_ssize_t i
        cdef double eps = self.eps
        for i in range(n):
            D[i] = sqrt(s[i]) + eps


@cython.final
cdef class Adagrad(_RootMeanSquare):
    """s += g^2;  W -= eta g / (sqrt(s) + eps)."""

    state_names = ("sum_sq",)

    def __init__(self, state, double eps=1e-8):
        self.eps = eps
        self.sq = state["sum_sq"]
        self.lazy_field = 2

    cdef void step(self, double* theta, const double* g,
                   const Py_ssize_t* idx, Py_ssize_t n, double eta,
                   double t) noexcept nogil:
        cdef Py_ssize_t i, j
        cdef double* sq = &self.sq[0]
        cdef double eps = self.eps
        for i in range(n):
            j = idx[i] if idx != NULL else i
            _adagrad_update(&theta[j], g[j], &sq[j], eta, eps)

    cdef void step_records(self, double* rec, const RecordFinish* f,
                           const Py_ssize_t* cols, Py_ssize_t n, double eta,
                           double t, double* sums) noexcept nogil:
        _step_records(self, rec, f[0], f.K, cols, n, eta, t, sums)

    cdef void step_records_k1(self, double* rec, const RecordFinish* f,
                              const Py_ssize_t* cols, Py_ssize_t n,
                              double eta, double t,
                              double* sums) noexcept nogil:
        _step_records(self, rec, f[0], 1, cols, n, eta, t, sums)


@cython.final
cdef class RMSprop(_RootMeanSquare):
    """s = rho s + (1 - rho) g^2;  W -= eta g / (sqrt(s) + eps)."""

    state_names = ("mean_sq",)

    def __init__(self, state, double rho=0.9, double eps=1e-8):
        self.rho = rho
        self.eps = eps
        self.sq = state["mean_sq"]
        self.lazy_field = 2

    cdef void step(self, double* theta, const double* g,
                   const Py_ssize_t* idx, Py_ssize_t n, double eta,
                   double t) noexcept nogil:
        cdef Py_ssize_t i, j
        cdef double* sq = &self.sq[0]
        cdef double rho = self.rho, eps = self.eps
        for i in range(n):
            j = idx[i] if idx != NULL else i
            _rmsprop_update(&theta[j], g[j], &sq[j], eta, rho, eps)

    cdef void step_records(self, double* rec, const RecordFinish* f,
                           const Py_ssize_t* cols, Py_ssize_t n, double eta,
                           double t, double* sums) noexcept nogil:
        _step_records(self, rec, f[0], f.K, cols, n, eta, t, sums)

    cdef void step_records_k1(self, double* rec, const RecordFinish* f,
                              const Py_ssize_t* cols, Py_ssize_t n,
                              double eta, double t,
                              double* sums) noexcept nogil:
        _step_records(self, rec, f[0], 1, cols, n, eta, t, sums)


@cython.final
cdef class Adam(Optimizer):
    """Bias-corrected Adam (Kingma and Ba, 2015)."""

    state_names = ("m1", "m2")

    def __init__(self, state, double beta1=0.9, double beta2=0.999,
                 double eps=1e-8):
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.m1 = state["m1"]
        self.m2 = state["m2"]
        self.lazy_field = 3
        self.c2_t = -1.0

    cdef void step(self, double* theta, const double* g,
                   const Py_ssize_t* idx, Py_ssize_t n, double eta,
                   double t) noexcept nogil:
        cdef Py_ssize_t i, j
        cdef double eta_c1 = eta / (1.0 - pow(self.beta1, t))
        cdef double inv_c2 = 1.0 / (1.0 - pow(self.beta2, t))
        cdef double* m1 = &self.m1[0]
        cdef double* m2 = &self.m2[0]
        cdef double b1 = self.beta1, b2 = self.beta2, eps = self.eps
        for i in range(n):
            j = idx[i] if idx != NULL else i
            _adam_update(&theta[j], g[j], &m1[j], &m2[j], eta_c1, b1, b2,
                         inv_c2, eps)

    cdef void step_records(self, double* rec, const RecordFinish* f,
                           const Py_ssize_t* cols, Py_ssize_t n, double eta,
                           double t, double* sums) noexcept nogil:
        _step_records(self, rec, f[0], f.K, cols, n, eta, t, sums)

    cdef void step_records_k1(self, double* rec, const RecordFinish* f,
                              const Py_ssize_t* cols, Py_ssize_t n,
                              double eta, double t,
                              double* sums) noexcept nogil:
        _step_records(self, rec, f[0], 1, cols, n, eta, t, sums)

    cdef double* state(self, Py_ssize_t s) noexcept nogil:
        return &self.m1[0] if s == 0 else &self.m2[0]

    cdef void prepare(self, double t) noexcept nogil:
        if t != self.c2_t:
            self.c2_t = t
            self.c2 = 1.0 - pow(self.beta2, t)
            self.inv_c2 = 1.0 / self.c2

    cdef double metric(self, Py_ssize_t i, double t) noexcept nogil:
        # Called for every coordinate of a batch at the same t.
        self.prepare(t)
        return sqrt(self.m2[i] / self.c2) + self.eps

    cdef void lazy_divisors(self, const double* s, Py_ssize_t n,
                            double* D) noexcept nogil:
        cdef Py_ssize_t i
        cdef double inv_c2 = self.inv_c2, eps = self.eps
        for i in range(n):
            D[i] = sqrt(s[i] * inv_c2) + eps
