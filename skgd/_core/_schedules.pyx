"""Learning-rate schedules, one small class each (see _schedules.pxd)."""

from libc.math cimport cos, exp, floor, pow, M_PI
import numpy as np


cdef class Schedule:
    """Base class: a constant step ``eta0``."""

    def __init__(self, double eta0):
        self.eta0 = eta0

    cdef double eta(self, double t, Py_ssize_t epoch) noexcept nogil:
        return self.eta0

    cdef bint on_plateau(self) noexcept nogil:
        return False

    cdef void accept(self, double eta) noexcept nogil:
        pass

    def plateau(self):
        """Python access to ``on_plateau``: True if training goes on."""
        return self.on_plateau()

    def __call__(self, t, epoch=0):
        """Step sizes for update counts ``t`` (array-like) in ``epoch``."""
        t = np.asarray(t, dtype=np.float64)
        epoch = np.broadcast_to(np.asarray(epoch, dtype=np.intp), t.shape)
        out = np.empty(t.shape)
        for i in np.ndindex(t.shape):
            out[i] = self.eta(t[i], epoch[i])
        return out


cdef class Constant(Schedule):
    """eta0."""


cdef class InvScaling(Schedule):
    """eta0 / t^power_t."""
    cdef double power_t

    def __init__(self, double eta0, double power_t):
        self.eta0 = eta0
        self.power_t = power_t

    cdef double eta(self, double t, Py_ssize_t epoch) noexcept nogil:
        return self.eta0 / pow(t, self.power_t)


cdef class InverseTime(Schedule):
    """eta0 / (1 + decay t)."""
    cdef double decay

    def __init__(self, double eta0, double decay):
        self.eta0 = eta0
        self.decay = decay

    cdef double eta(self, double t, Py_ssize_t epoch) noexcept nogil:
        return self.eta0 / (1.0 + self.decay * t)


cdef class Exponential(Schedule):
    """eta0 exp(-decay t)."""
    cdef double decay

    def __init__(self, double eta0, double decay):
        self.eta0 = eta0
        self.decay = decay

    cdef double eta(self, double t, Py_ssize_t epoch) noexcept nogil:
        return self.eta0 * exp(-self.decay * t)


cdef class Step(Schedule):
    """eta0 gamma^floor(epoch / step_size)."""
    cdef double gamma
    cdef Py_ssize_t step_size

    def __init__(self, double eta0, double gamma, Py_ssize_t step_size):
        self.eta0 = eta0
        self.gamma = gamma
        self.step_size = step_size

    cdef double eta(self, double t, Py_ssize_t epoch) noexcept nogil:
        return self.eta0 * pow(self.gamma, floor(epoch / self.step_size))


cdef class Linear(Schedule):
    """(1 - t/T) eta0 + (t/T) eta_end for t <= T, then eta_end."""
    cdef double eta_end, T

    def __init__(self, double eta0, double eta_end, double T):
        self.eta0 = eta0
        self.eta_end = eta_end
        self.T = T

    cdef double eta(self, double t, Py_ssize_t epoch) noexcept nogil:
        if t >= self.T:
            return self.eta_end
        return (1.0 - t / self.T) * self.eta0 + (t / self.T) * self.eta_end


cdef class Cosine(Schedule):
    """eta_end + (eta0 - eta_end) (1 + cos(pi t / T)) / 2, then eta_end."""
    cdef double eta_end, T

    def __init__(self, double eta0, double eta_end, double T):
        self.eta0 = eta0
        self.eta_end = eta_end
        self.T = T

    cdef double eta(self, double t, Py_ssize_t epoch) noexcept nogil:
        if t >= self.T:
            return self.eta_end
        return self.eta_end + 0.5 * (self.eta0 - self.eta_end) * (
            1.0 + cos(M_PI * t / self.T))


cdef class Optimal(Schedule):
    """1 / (alpha (t0 + t - 1)), scikit-learn's "optimal" schedule.

    ``t0 = 1 / (alpha typw)`` with ``typw = sqrt(1 / sqrt(alpha))`` is
    scikit-learn's heuristic, so that update t here takes the same step as
    sample t in ``SGDClassifier(learning_rate="optimal")``.
    """
    cdef double alpha, t0

    def __init__(self, double alpha):
        self.alpha = alpha
        self.t0 = 1.0 / (alpha * (1.0 / alpha ** 0.5) ** 0.5)
        self.eta0 = 1.0 / (alpha * self.t0)

    cdef double eta(self, double t, Py_ssize_t epoch) noexcept nogil:
        return 1.0 / (self.alpha * (self.t0 + t - 1.0))


cdef class Adaptive(Schedule):
    """eta0, divided by ``factor`` each time the objective plateaus.

    Training stops once the step has fallen below ``min_ratio`` times its
    first value (scikit-learn divides by 5 and stops below 1e-6).
    """
    cdef public double first_eta0
    cdef double factor, min_ratio

    def __init__(self, double eta0, double factor=5.0, double min_ratio=1e-6,
                 first_eta0=None):
        self.eta0 = eta0
        self.factor = factor
        self.min_ratio = min_ratio
        self.first_eta0 = eta0 if first_eta0 is None else first_eta0

    cdef bint on_plateau(self) noexcept nogil:
        if self.eta0 / self.factor < self.min_ratio * self.first_eta0:
            return False
        self.eta0 /= self.factor
        return True


cdef class LineSearch(Schedule):
    """Backtracking (Armijo) line search on the batch objective.

    Each update starts at twice the step accepted by the previous one (at
    ``eta0`` for the first), so the step can grow where the objective is
    flat as well as shrink where it is curved.
    """

    def __init__(self, double eta0):
        self.eta0 = eta0
        self.line_search = True

    cdef void accept(self, double eta) noexcept nogil:
        self.eta0 = 2.0 * eta
