ctypedef void (*part_fn)(void* ctx, Py_ssize_t part) noexcept nogil


cdef class Team:
    cdef readonly int n_threads
    cdef void* threads  # the running team (skgd_team*), NULL when stopped

    cdef void start(self) noexcept nogil
    cdef void stop(self) noexcept nogil
    cdef void expect_gap(self, long gap_ns) noexcept nogil
    cdef long now_ns(self) noexcept nogil
    cdef long alone_runs(self) noexcept nogil
    cdef void run(self, part_fn fn, void* ctx,
                  Py_ssize_t n_parts) noexcept nogil
