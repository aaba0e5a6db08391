"""A small, seedable random stream usable without the GIL (splitmix64)."""

from libc.stdint cimport uint64_t


cdef inline uint64_t next_uint64(uint64_t* state) noexcept nogil:
    """Advance ``state`` and return the next 64 random bits (splitmix64)."""
    state[0] += <uint64_t>0x9E3779B97F4A7C15
    cdef uint64_t z = state[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
    return z ^ (z >> 31)


cdef extern from *:
    """
    /* floor(x m / 2^64): a number below m from 64 random bits x, by a
       multiplication instead of a division (Lemire; its bias, at most
       m / 2^64, is that of x % m). */
    static inline uint64_t skgd_below(uint64_t x, uint64_t m)
    {
        return (uint64_t)(((unsigned __int128)x * m) >> 64);
    }
    """
    uint64_t below "skgd_below" (uint64_t x, uint64_t m) noexcept nogil


cdef inline void shuffle_indices(Py_ssize_t* idx, Py_ssize_t n,
                                 uint64_t* state) noexcept nogil:
    """Fisher-Yates shuffle of ``idx[:n]`` in place."""
    cdef Py_ssize_t i, j, tmp
    for i in range(n - 1, 0, -1):
        j = <Py_ssize_t>below(next_uint64(state), <uint64_t>(i + 1))
        tmp = idx[i]
        idx[i] = idx[j]
        idx[j] = tmp


cdef inline void shuffle_runs(Py_ssize_t* rows, Py_ssize_t n, Py_ssize_t run,
                              Py_ssize_t* starts,
                              uint64_t* state) noexcept nogil:
    """Write to ``rows[:n]`` the runs of ``run`` consecutive rows in random
    order; the runs start at a random phase (a shorter run ``[0, phase)``
    first), so which rows share a run changes every epoch. ``starts`` holds
    ``n // run + 2`` values."""
    cdef Py_ssize_t phase = <Py_ssize_t>below(next_uint64(state),
                                              <uint64_t>run)
    cdef Py_ssize_t m = 0, q, r, s, end, k = 0
    if phase > 0:
        starts[0] = 0
        m = 1
    s = phase
    while s < n:
        starts[m] = s
        m += 1
        s += run
    shuffle_indices(starts, m, state)
    for q in range(m):
        s = starts[q]
        end = phase if s < phase else min(s + run, n)
        for r in range(s, end):
            rows[k] = r
            k += 1


cdef inline void next_epoch_order(Py_ssize_t* rows, Py_ssize_t n,
                                  Py_ssize_t run, Py_ssize_t* starts,
                                  uint64_t* state) noexcept nogil:
    """Reshuffle ``rows[:n]`` for the next epoch: runs of ``run`` rows
    (``starts`` as in `shuffle_runs`), or single rows when ``run == 1``."""
    if run > 1:
        shuffle_runs(rows, n, run, starts, state)
    else:
        shuffle_indices(rows, n, state)
