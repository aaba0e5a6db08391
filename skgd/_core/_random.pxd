"""A small, seedable random stream usable without the GIL (splitmix64)."""

from libc.stdint cimport uint64_t


cdef inline uint64_t next_uint64(uint64_t* state) noexcept nogil:
    """Advance ``state`` and return the next 64 random bits (splitmix64)."""
    state[0] += <uint64_t>0x9E3779B97F4A7C15
    cdef uint64_t z = state[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
    return z ^ (z >> 31)


cdef inline void shuffle_indices(Py_ssize_t* idx, Py_ssize_t n,
                                 uint64_t* state) noexcept nogil:
    """Fisher-Yates shuffle of ``idx[:n]`` in place."""
    cdef Py_ssize_t i, j, tmp
    for i in range(n - 1, 0, -1):
        j = <Py_ssize_t>(next_uint64(state) % <uint64_t>(i + 1))
        tmp = idx[i]
        idx[i] = idx[j]
        idx[j] = tmp
