"""One class per update rule (see _optimizers.pxd)."""

from libc.math cimport pow, sqrt
import numpy as np


cdef class Optimizer:
    """Base class; ``state_names`` lists the arrays a rule keeps."""

    state_names = ()

    cdef void step(self, double* theta, const double* g,
                   const Py_ssize_t* idx, Py_ssize_t n, double eta,
                   double t) noexcept nogil:
        pass

    cdef double lazy_scale(self, Py_ssize_t i, double t) noexcept nogil:
        return 1.0

    def update(self, double[::1] theta, const double[::1] g, double eta,
               double t):
        """Apply one update in place (Python access, e.g. for minimize)."""
        self.step(&theta[0], &g[0], NULL, theta.shape[0], eta, t)

    @classmethod
    def init_state(cls, Py_ssize_t size):
        """Fresh (zero) state arrays for a parameter vector of ``size``."""
        return {name: np.zeros(size) for name in cls.state_names}


cdef class SGD(Optimizer):
    """Plain SGD, heavy-ball momentum or Nesterov momentum (PyTorch's form).

    v = mu v + g;  W -= eta v  (or W -= eta (g + mu v) with nesterov).
    """

    state_names = ("velocity",)

    def __init__(self, state, double momentum=0.0, bint nesterov=False):
        self.momentum = momentum
        self.nesterov = nesterov
        self.velocity = state["velocity"]

    cdef void step(self, double* theta, const double* g,
                   const Py_ssize_t* idx, Py_ssize_t n, double eta,
                   double t) noexcept nogil:
        cdef Py_ssize_t i, j
        cdef double mu = self.momentum, v
        for i in range(n):
            j = idx[i] if idx != NULL else i
            if mu == 0.0:
                theta[j] -= eta * g[j]
                continue
            v = mu * self.velocity[j] + g[j]
            self.velocity[j] = v
            theta[j] -= eta * (g[j] + mu * v if self.nesterov else v)

    cdef double lazy_scale(self, Py_ssize_t i, double t) noexcept nogil:
        return 1.0 / (1.0 - self.momentum)


cdef class Adagrad(Optimizer):
    """s += g^2;  W -= eta g / (sqrt(s) + eps)."""

    state_names = ("sum_sq",)

    def __init__(self, state, double eps=1e-8):
        self.eps = eps
        self.sum_sq = state["sum_sq"]

    cdef void step(self, double* theta, const double* g,
                   const Py_ssize_t* idx, Py_ssize_t n, double eta,
                   double t) noexcept nogil:
        cdef Py_ssize_t i, j
        for i in range(n):
            j = idx[i] if idx != NULL else i
            self.sum_sq[j] += g[j] * g[j]
            theta[j] -= eta * g[j] / (sqrt(self.sum_sq[j]) + self.eps)

    cdef double lazy_scale(self, Py_ssize_t i, double t) noexcept nogil:
        return 1.0 / (sqrt(self.sum_sq[i]) + self.eps)


cdef class RMSprop(Optimizer):
    """s = rho s + (1 - rho) g^2;  W -= eta g / (sqrt(s) + eps)."""

    state_names = ("mean_sq",)

    def __init__(self, state, double rho=0.9, double eps=1e-8):
        self.rho = rho
        self.eps = eps
        self.mean_sq = state["mean_sq"]

    cdef void step(self, double* theta, const double* g,
                   const Py_ssize_t* idx, Py_ssize_t n, double eta,
                   double t) noexcept nogil:
        cdef Py_ssize_t i, j
        cdef double rho = self.rho
        for i in range(n):
            j = idx[i] if idx != NULL else i
            self.mean_sq[j] = rho * self.mean_sq[j] + (1.0 - rho) * g[j] * g[j]
            theta[j] -= eta * g[j] / (sqrt(self.mean_sq[j]) + self.eps)

    cdef double lazy_scale(self, Py_ssize_t i, double t) noexcept nogil:
        return 1.0 / (sqrt(self.mean_sq[i]) + self.eps)


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
        self.c2_t = -1.0

    cdef void step(self, double* theta, const double* g,
                   const Py_ssize_t* idx, Py_ssize_t n, double eta,
                   double t) noexcept nogil:
        cdef Py_ssize_t i, j
        cdef double b1 = self.beta1, b2 = self.beta2
        cdef double c1 = 1.0 - pow(b1, t), c2 = 1.0 - pow(b2, t)
        for i in range(n):
            j = idx[i] if idx != NULL else i
            self.m1[j] = b1 * self.m1[j] + (1.0 - b1) * g[j]
            self.m2[j] = b2 * self.m2[j] + (1.0 - b2) * g[j] * g[j]
            theta[j] -= eta * (self.m1[j] / c1) / (
                sqrt(self.m2[j] / c2) + self.eps)

    cdef double lazy_scale(self, Py_ssize_t i, double t) noexcept nogil:
        # Called for every column of a sparse batch at the same t.
        if t != self.c2_t:
            self.c2_t = t
            self.c2 = 1.0 - pow(self.beta2, t)
        return 1.0 / (sqrt(self.m2[i] / self.c2) + self.eps)
