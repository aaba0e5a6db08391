"""Learning-rate schedules of SPEC section 3: eta as a function of the step.

``eta(t, epoch)`` gives the step size of update ``t`` (counted from 1) in
epoch ``epoch`` (counted from 0). ``on_plateau()`` is called when the
stopping rule fires; a schedule that reacts (``adaptive``) lowers its step
and returns True to continue training.
"""

cdef class Schedule:
    cdef public double eta0
    # True for "line_search": eta() is the first trial step, the loop
    # backtracks from it and reports the accepted step to accept().
    cdef readonly bint line_search
    cdef double eta(self, double t, Py_ssize_t epoch) noexcept nogil
    cdef bint on_plateau(self) noexcept nogil
    cdef void accept(self, double eta) noexcept nogil
