"""The threads of the minibatch loop: a team kept for a fit, whose idle
threads spin for a while before they sleep (thread_team.h), so that
starting the parts of a batch costs ~0.1 us instead of an OpenMP region's
~1 us."""

from cython.parallel cimport prange
import numpy as np


cdef extern from "thread_team.h":
    ctypedef struct skgd_team:
        pass
    skgd_team* skgd_team_start(int n_threads) noexcept nogil
    void skgd_team_stop(skgd_team* team) noexcept nogil
    void skgd_team_run(skgd_team* team, part_fn fn, void* ctx,
                       Py_ssize_t n_parts) noexcept nogil
    void skgd_team_expect_gap(skgd_team* team, long gap_ns) noexcept nogil
    long skgd_team_alone_runs(skgd_team* team) noexcept nogil
    int skgd_team_sleepers(skgd_team* team) noexcept nogil
    void skgd_team_hold(skgd_team* team, int held) noexcept nogil
    long skgd_now_ns() noexcept nogil


cdef class Team:
    """``run(fn, ctx, n)`` calls ``fn(ctx, p)`` for the parts p < n on up
    to ``n_threads`` threads, thread i taking the i-th contiguous range
    (OpenMP's static schedule). Between ``start`` and ``stop`` the threads
    are kept (spinning for 20 us after each run, or as long as
    ``expect_gap`` says, then asleep; the caller's thread runs the range
    of a worker that is late, and runs alone for a while when workers are
    late again and again); otherwise, or where the team cannot be made,
    ``run`` opens an OpenMP region.

    Parameters
    ----------
    n_threads : int
        Threads of the team, the caller's included.
    """

    def __cinit__(self, int n_threads):
        self.n_threads = max(1, n_threads)
        self.threads = NULL

    def __dealloc__(self):
        self.stop()

    cdef void start(self) noexcept nogil:
        if self.threads == NULL:
            self.threads = skgd_team_start(self.n_threads)

    cdef void stop(self) noexcept nogil:
        skgd_team_stop(<skgd_team*>self.threads)
        self.threads = NULL

    cdef void expect_gap(self, long gap_ns) noexcept nogil:
        """The threads that start to wait from now on spin for gap_ns (at
        least 20 us) before they sleep."""
        if self.threads != NULL:
            skgd_team_expect_gap(<skgd_team*>self.threads, gap_ns)

    cdef long now_ns(self) noexcept nogil:
        """A monotonic clock in nanoseconds (0 without POSIX threads, where
        there is no team to keep spinning)."""
        return skgd_now_ns()

    cdef long alone_runs(self) noexcept nogil:
        """Runs in which the caller's thread ran a worker's range (taken
        from a late worker, or in a run made alone)."""
        if self.threads == NULL:
            return 0
        return skgd_team_alone_runs(<skgd_team*>self.threads)

    cdef void run(self, part_fn fn, void* ctx,
                  Py_ssize_t n_parts) noexcept nogil:
        cdef Py_ssize_t p
        if self.threads != NULL:
            skgd_team_run(<skgd_team*>self.threads, fn, ctx, n_parts)
        elif self.n_threads > 1 and n_parts > 1:
            for p in prange(n_parts, num_threads=self.n_threads,
                            schedule="static"):
                fn(ctx, p)
        else:
            for p in range(n_parts):
                fn(ctx, p)


cdef void _count_part(void* ctx, Py_ssize_t part) noexcept nogil:
    (<Py_ssize_t*>ctx)[part] += 1


def run_parts(int n_threads, Py_ssize_t n_parts, Py_ssize_t repeats,
              bint started, long gap_ns=0, bint held=False,
              bint after_sleep=False):
    """Python access for tests: ``repeats`` runs of ``n_parts`` parts on a
    team (kept between runs if ``started``, its waiting threads spinning
    for ``gap_ns``; if ``held``, the workers letting every run pass; if
    ``after_sleep``, each run started once the workers are asleep, or after
    1 s), each part adding one to its count; returns the counts, the runs
    after which a count was not the runs so far (a part not finished when
    ``run`` returned) and the runs in which the caller ran a worker's
    range."""
    counts = np.zeros(max(n_parts, 1), dtype=np.intp)
    cdef Py_ssize_t[::1] c = counts
    cdef Team team = Team(n_threads)
    cdef Py_ssize_t r, p, unfinished = 0
    cdef long alone, deadline
    with nogil:
        if started:
            team.start()
            team.expect_gap(gap_ns)
            if team.threads != NULL:
                skgd_team_hold(<skgd_team*>team.threads, held)
        for r in range(repeats):
            deadline = team.now_ns() + 1_000_000_000
            while (after_sleep and team.threads != NULL
                   and skgd_team_sleepers(<skgd_team*>team.threads)
                   < n_threads - 1 and team.now_ns() < deadline):
                pass
            team.run(_count_part, &c[0], n_parts)
            for p in range(n_parts):
                if c[p] != r + 1:
                    unfinished += 1
                    break
        alone = team.alone_runs()
        if team.threads != NULL:
            skgd_team_hold(<skgd_team*>team.threads, False)
        team.stop()
    return counts[:n_parts], unfinished, alone
